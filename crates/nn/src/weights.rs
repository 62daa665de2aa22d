//! The weights file: one JSON document (serde) with the architecture, the
//! activation variant, the inference-form tensors ([`InferenceModel`]), the
//! full training-form state, the training configuration, the final
//! accuracies and the per-layer max |input|.
//!
//! Format (version 1):
//! ```text
//! { "format": "slaf-he-weights", "version": 1,
//!   "arch": "cnn1" | "cnn2" | "cnn2-nopad" | "cryptonets",
//!   "variant": "relu" | "x2" | "slaf" | "slaf-r" | "slaf-p",
//!   "activations": [ { "name": "act1", "kind": "slaf", "coeffs": [..] }, .. ],
//!   "inference": { "arch", "conv": { "geom", "weight", "bias" }, "act1", "dense1", "act2", "fc2" },
//!   "state": [ { "name": "conv1.weight", "shape": [..], "values": [..] }, .. ],
//!   "config": { TrainConfig }, "report": { TrainReport } }
//! ```
//! A name ending in `.gz` is written gzip-compressed; loading detects gzip.
//! [`WeightsFile::load`] validates everything and fails with a typed
//! [`NnError`] naming the problem.

use super::NnError;
use super::act::{ActKind, MaxAbs};
use super::inference::{InferenceAct, InferenceModel};
use super::model::{Layer, Model, NamedTensor};
use super::spec::ModelSpec;
use super::train::{TrainConfig, TrainReport, Variant};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Value of the `format` field.
pub const FORMAT: &str = "slaf-he-weights";
/// Current format version (2: the inference form is a stage list and the
/// network may be any spec; version 1 files, with the papers' fixed form,
/// are read and converted).
pub const VERSION: u32 = 2;
/// Largest weights document read (bytes of JSON, after decompression):
/// CNN2's is about 30 MB. A larger one (a decompression bomb, say) is
/// refused before it is held in memory.
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// One activation layer as trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActRecord {
    /// Layer name (`act1`, `act2`).
    pub name: String,
    /// Which activation (stored by name: `relu`, `x2`, `slaf` or `slaf-p`).
    pub kind: ActKind,
    /// SLAF: `a0..ad`; SLAF-P: the coefficients of s; empty otherwise.
    pub coeffs: Vec<f64>,
    /// Max |input| seen in training and test passes.
    pub max_abs: MaxAbs,
}

/// The whole weights file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightsFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// Network (a preset is stored as its name, under the key `arch`).
    #[serde(rename = "arch", with = "super::spec::by_name")]
    pub model: ModelSpec,
    /// Activation variant.
    pub variant: Variant,
    /// Activation layers in order.
    pub activations: Vec<ActRecord>,
    /// Inference (collapsed) form: what encrypted inference loads.
    pub inference: InferenceModel,
    /// Training-form state dict.
    pub state: Vec<NamedTensor>,
    /// How the model was trained.
    pub config: TrainConfig,
    /// Accuracies, epoch logs, max |input|.
    pub report: TrainReport,
}

impl WeightsFile {
    /// Assemble the file for a trained model.
    pub fn new(model: &Model, config: &TrainConfig, report: &TrainReport) -> Result<Self, NnError> {
        let activations = model
            .layers
            .iter()
            .filter_map(|(n, l)| match l {
                Layer::Act(a) => {
                    let mut act = a.act.clone();
                    let coeffs = act
                        .param()
                        .map(|p| p.value.iter().map(|&v| f64::from(v)).collect())
                        .unwrap_or_default();
                    Some(ActRecord {
                        name: n.clone(),
                        kind: a.act.kind(),
                        coeffs,
                        max_abs: a.max_abs,
                    })
                }
                _ => None,
            })
            .collect();
        let w = Self {
            format: FORMAT.to_string(),
            version: VERSION,
            model: model.spec.clone(),
            variant: config.variant,
            activations,
            inference: InferenceModel::from_model(model)?,
            state: model.state(),
            config: config.clone(),
            report: report.clone(),
        };
        w.validate()?;
        Ok(w)
    }

    /// Check format, version, shapes against the architecture, and finiteness.
    pub fn validate(&self) -> Result<(), NnError> {
        if self.format != FORMAT {
            return Err(NnError::InvalidWeights {
                detail: format!("format is {:?}, expected {FORMAT:?}", self.format),
            });
        }
        if !(1..=VERSION).contains(&self.version) {
            return Err(NnError::InvalidWeights {
                detail: format!("version {} is not supported (1..={VERSION})", self.version),
            });
        }
        if self.inference.name != self.model.name || self.config.model != self.model {
            return Err(NnError::InvalidWeights {
                detail: "the model differs between the header, the inference form and the config"
                    .into(),
            });
        }
        self.inference.validate()?;
        // The training-form state must load into a fresh model of this spec,
        // and the inference form must be the one that state gives.
        let model = self.to_model()?;
        self.check_activations(&model)?;
        let derived = InferenceModel::from_model(&model)?;
        if derived != self.inference {
            return Err(NnError::InvalidWeights {
                detail: format!(
                    "the stored inference form of {} is not the one its trained state gives",
                    self.model.name
                ),
            });
        }
        Ok(())
    }

    /// The activation records and the inference form's activations must
    /// be those of the training-form state: a file whose parts disagree
    /// would run encrypted inference on another model than it reports.
    fn check_activations(&self, model: &Model) -> Result<(), NnError> {
        let bad = |detail: String| Err(NnError::InvalidWeights { detail });
        let derived: Vec<Option<Vec<f64>>> = model
            .layers
            .iter()
            .filter_map(|(_, l)| match l {
                Layer::Act(a) => Some(a.act.as_polynomial()),
                _ => None,
            })
            .collect();
        if derived.len() != self.activations.len() {
            return bad(format!(
                "{} activation records for {} activation layers",
                self.activations.len(),
                derived.len()
            ));
        }
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs())))
        };
        let stored = self.inference.acts();
        for (i, (want, rec)) in derived.iter().zip(&self.activations).enumerate() {
            let inf = stored.get(i).copied();
            let ok = match (want, inf) {
                (None, Some(InferenceAct::Relu)) => rec.kind == ActKind::Relu,
                (Some(c), Some(InferenceAct::Poly { coeffs })) => {
                    close(c, coeffs) && (rec.kind != ActKind::Slaf || close(c, &rec.coeffs))
                }
                _ => false,
            };
            if !ok {
                return bad(format!(
                    "activation {} ({}, {:?}): the record and the inference form disagree with the trained state",
                    i + 1,
                    rec.name,
                    rec.kind
                ));
            }
        }
        Ok(())
    }

    /// Rebuild the training-form model (evaluation-ready) from the state.
    pub fn to_model(&self) -> Result<Model, NnError> {
        let spec = match self.activations.first().map(|a| a.kind) {
            Some(ActKind::Relu) => super::model::ActSpec::Relu,
            Some(ActKind::X2) => super::model::ActSpec::Square,
            Some(ActKind::Slaf) => super::model::ActSpec::Slaf {
                degree: self.activations[0].coeffs.len().saturating_sub(1),
                init: None,
            },
            Some(ActKind::SlafP) => super::model::ActSpec::SlafP {
                r: self.model.slafp_range(),
                trainable: self.config.slafp_trainable,
                init: self.config.slafp_init,
            },
            None => {
                return Err(NnError::InvalidWeights {
                    detail: "the file records no activation layer".into(),
                });
            }
        };
        let mut m = Model::from_spec(&self.model, &spec, 0, false)?;
        m.load_state(&self.state)?;
        Ok(m)
    }

    /// Write JSON to `path`; gzip-compressed when the name ends in `.gz`.
    pub fn save(&self, path: &Path) -> Result<(), NnError> {
        self.validate()?;
        let text = serde_json::to_string(self).map_err(|e| NnError::InvalidWeights {
            detail: format!("cannot serialise: {e}"),
        })?;
        let io = |source| NnError::Io {
            path: path.to_path_buf(),
            source,
        };
        if path.extension().is_some_and(|e| e == "gz") {
            use std::io::Write;
            let file = std::fs::File::create(path).map_err(io)?;
            let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::default());
            enc.write_all(text.as_bytes()).map_err(io)?;
            enc.finish().map_err(io)?;
            Ok(())
        } else {
            std::fs::write(path, text).map_err(io)
        }
    }

    /// Read and validate a weights file (plain or gzip-compressed JSON).
    pub fn load(path: &Path) -> Result<Self, NnError> {
        let io = |source| NnError::Io {
            path: path.to_path_buf(),
            source,
        };
        let too_big = || NnError::InvalidWeights {
            detail: format!(
                "{}: more than {MAX_JSON_BYTES} bytes of JSON",
                path.display()
            ),
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_JSON_BYTES {
            return Err(too_big());
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let text = if bytes.starts_with(&[0x1f, 0x8b]) {
            use std::io::Read;
            let mut s = String::new();
            // One byte past the cap tells a capped read from a full one.
            flate2::read::GzDecoder::new(bytes.as_slice())
                .take(MAX_JSON_BYTES + 1)
                .read_to_string(&mut s)
                .map_err(io)?;
            if s.len() as u64 > MAX_JSON_BYTES {
                return Err(too_big());
            }
            s
        } else {
            String::from_utf8(bytes).map_err(|_| NnError::InvalidWeights {
                detail: format!("{}: not UTF-8 text", path.display()),
            })?
        };
        Self::from_json(&text).map_err(|e| match e {
            NnError::InvalidWeights { detail } => NnError::InvalidWeights {
                detail: format!("{}: {detail}", path.display()),
            },
            other => other,
        })
    }

    /// Parse and validate JSON text.
    pub fn from_json(text: &str) -> Result<Self, NnError> {
        let w: Self = serde_json::from_str(text).map_err(|e| NnError::InvalidWeights {
            detail: format!("malformed JSON: {e}"),
        })?;
        w.validate()?;
        Ok(w)
    }
}
