//! Encrypted inference: runs a trained model's chain form
//! ([`slaf_nn::ChainForm`]: a first conv, then (activation, dense) pairs,
//! any number of them; the papers' conv1' → act1 → dense1 → act2 → fc2 is
//! the two-pair case) on CKKS ciphertexts and reports accuracy, agreement
//! with plaintext, precision and time per stage.
//!
//! Two engines share the types of this module and the one [`Engine`]
//! trait that the evaluation harness of `slaf-experiments` drives:
//! - [`per_image`]: one image per ciphertext (the original's design, for
//!   latency): im2col layout, convolution by plaintext multiplies and
//!   rotation sums, every later linear stage by the diagonal method with
//!   BSGS;
//! - [`batched`]: one image per slot (CryptoNets-style SIMD, for
//!   throughput): every layer is a scalar-times-ciphertext sum, no rotations.
//!
//! Each engine is split into a keyless circuit that any party may hold
//! ([`batched::BatchedCircuit`], [`per_image::PerImageCircuit`]: they take
//! an [`slaf_ckks::Evaluator`] with a client's evaluation keys per call,
//! as the server of [`slaf_service`] does) and an in-process engine that
//! adds the client's keys, encryption and decryption
//! ([`batched::BatchedEngine`], [`per_image::PerImageEngine`]).
//!
//! Invariants: both engines follow [`plan::ActPlan`] (one rule set), so the
//! depth a summary reports is the depth that ran; stage times and precision
//! reports are indexed by chain-form stage and named by
//! [`StageTimes::stage_name`] in both; the plaintext reference is
//! [`slaf_nn::InferenceModel::forward`] for logits and
//! [`slaf_nn::ChainForm::forward_stages`] for intermediates.
//!
//! [`plan`] computes the multiplicative depth and picks CKKS parameters.
//! The evaluation harness (`slaf_experiments::harness`) drives an engine
//! over a range of test images and builds the summary.

pub mod batched;
pub mod per_image;
pub mod plan;

use serde::{Deserialize, Serialize};
use slaf_ckks::CkksError;
use slaf_ckks::circuits::CircuitError;
use slaf_nn::NnError;

/// Errors of encrypted inference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeNnError {
    /// The CKKS layer failed.
    #[error(transparent)]
    Ckks(#[from] CkksError),
    /// A circuit (polynomial evaluation, linear transform) failed.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// The model or weights file is unusable.
    #[error(transparent)]
    Nn(#[from] NnError),
    /// The model has an activation that CKKS cannot evaluate (ReLU).
    #[error(
        "activation {layer} is ReLU, which CKKS cannot evaluate; use a polynomial variant (x2, slaf, slaf-p)"
    )]
    NonPolynomialActivation {
        /// `act1` or `act2`.
        layer: String,
    },
    /// The chosen modulus chain is too short for the circuit.
    #[error(
        "the CKKS parameters have {available} rescale levels but the circuit needs depth {needed} ({detail})"
    )]
    ChainTooShort {
        /// Depth the circuit consumes.
        needed: usize,
        /// Levels the parameters provide.
        available: usize,
        /// Per-layer breakdown.
        detail: String,
    },
    /// The slot layout does not fit the ring.
    #[error("layout does not fit: {detail}")]
    Layout {
        /// What does not fit.
        detail: String,
    },
    /// Bad request (image count, offset, mode).
    #[error("invalid request: {detail}")]
    InvalidRequest {
        /// What is wrong.
        detail: String,
    },
    /// The MNIST test images could not be loaded.
    #[error(transparent)]
    Data(#[from] slaf_nn::data::DataError),
}

/// Precision of one layer (debug option): decrypted vs plaintext values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerPrecision {
    /// The chain-form stage ([`StageTimes::stage_name`]): `conv`, `act1`, `fc1`, ….
    pub layer: String,
    /// Max |decrypted - plaintext| over every value of the layer.
    pub max_abs_error: f64,
    /// 99th percentile of |decrypted - plaintext| (over several batches:
    /// the largest of the batches' percentiles).
    #[serde(default)]
    pub p99_abs_error: f64,
    /// −log2 of `max_abs_error`.
    pub bits: f64,
    /// Max |plaintext| over the compared values (for scale).
    pub max_abs_value: f64,
    /// Values compared.
    pub samples: usize,
}

impl LayerPrecision {
    pub(crate) fn new(layer: &str, got: &[f64], want: &[f64]) -> Self {
        let errs: Vec<f64> = got.iter().zip(want).map(|(a, b)| (a - b).abs()).collect();
        let err = errs.iter().copied().fold(0.0f64, f64::max);
        Self {
            layer: layer.to_string(),
            max_abs_error: err,
            p99_abs_error: batched::p99(errs),
            bits: -err.max(f64::MIN_POSITIVE).log2(),
            max_abs_value: want.iter().fold(0.0f64, |m, v| m.max(v.abs())),
            samples: got.len(),
        }
    }

    /// Merge two measurements of the same layer (worst error).
    pub fn merge(&mut self, o: &LayerPrecision) {
        if o.max_abs_error > self.max_abs_error {
            self.max_abs_error = o.max_abs_error;
            self.bits = o.bits;
        }
        self.p99_abs_error = self.p99_abs_error.max(o.p99_abs_error);
        self.max_abs_value = self.max_abs_value.max(o.max_abs_value);
        self.samples += o.samples;
    }
}

/// What one [`Engine::infer_images`] call returns.
#[derive(Clone, Debug)]
pub struct EngineOutput {
    /// Logits per image, in input order.
    pub logits: Vec<Vec<f64>>,
    /// Stage times of the whole call (ms).
    pub times: StageTimes,
    /// Per-stage precision, when it was asked for.
    pub precision: Option<Vec<LayerPrecision>>,
}

/// An in-process encrypted-inference engine (keys, encryption, the
/// circuit and decryption in one value): what the evaluation harness drives, whatever the
/// layout. Both engines plan with [`plan::ActPlan`], so the depth a
/// summary reports is the depth the engine ran.
pub trait Engine: Send + Sync {
    /// The layout.
    fn mode(&self) -> Mode;
    /// The CKKS parameters it runs on.
    fn params(&self) -> &slaf_ckks::CkksParameters;
    /// Most images one [`Self::infer_images`] call takes (1 per image,
    /// the slot count when batched).
    fn images_per_call(&self) -> usize;
    /// Progress units [`Self::infer_images`] reports for `images` images.
    fn progress_units(&self, images: usize) -> u64;
    /// Encrypt `images` (each [`Self::pixels`] values in [0, 1]), run the
    /// circuit and decrypt. `progress` is called with units done;
    /// `precision` also decrypts every stage against
    /// [`slaf_nn::ChainForm::forward_stages`] (those decryptions are not
    /// timed, except in the batched engine's stage buckets).
    fn infer_images(
        &self,
        images: &[&[f32]],
        progress: Option<&(dyn Fn(u64) + Sync)>,
        precision: bool,
    ) -> Result<EngineOutput, HeNnError>;
    /// Input values per image.
    fn pixels(&self) -> usize;
    /// Level the inputs are encrypted at.
    fn start_level(&self) -> usize;
    /// Scale of the decrypted logits.
    fn output_scale(&self) -> f64;
    /// Bytes of one ciphertext at the start level.
    fn ciphertext_bytes(&self) -> usize;
    /// Bytes of the encrypted input of one call.
    fn input_bytes(&self) -> usize;
    /// Bytes of the evaluation keys the server needs.
    fn key_bytes(&self) -> usize;
}

/// Which engine runs the inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Mode {
    /// One image per ciphertext.
    PerImage,
    /// One image per slot.
    Batched,
}

impl Mode {
    /// The CLI spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::PerImage => "per-image",
            Self::Batched => "batched",
        }
    }
}

/// Wall time per stage, in milliseconds (per image in per-image mode, per
/// batch in batched mode): encryption, one entry per stage of the model's
/// chain form (conv, act1, fc1, act2, fc2, act3, fc3, …), and decryption.
///
/// It is written as one JSON object `{"encrypt": …, "conv": …, "act1": …,
/// …, "decrypt": …}` in pipeline order, so the papers' five-stage form reads
/// and writes exactly as it did when the stages were fixed fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageTimes {
    /// Encoding and encryption of the input.
    pub encrypt: f64,
    /// One value per chain-form stage, named by [`Self::stage_name`].
    pub stages: Vec<f64>,
    /// Decryption and decoding.
    pub decrypt: f64,
}

impl StageTimes {
    /// Zero times for a chain form of `stages` stages (1 + 2 · activations).
    pub fn zeros(stages: usize) -> Self {
        Self {
            encrypt: 0.0,
            stages: vec![0.0; stages],
            decrypt: 0.0,
        }
    }

    /// The name of chain-form stage `i`: `conv`, then `act{k}` and `fc{k}`
    /// for the k-th (activation, dense) pair.
    pub fn stage_name(i: usize) -> String {
        match i {
            0 => "conv".into(),
            i if i % 2 == 1 => format!("act{}", i.div_ceil(2)),
            i => format!("fc{}", i / 2),
        }
    }

    /// The index of a stage name ([`Self::stage_name`]'s inverse).
    pub fn stage_index(name: &str) -> Option<usize> {
        if name == "conv" {
            return Some(0);
        }
        let (base, k) = if let Some(k) = name.strip_prefix("act") {
            (1, k)
        } else {
            (2, name.strip_prefix("fc")?)
        };
        let k: usize = k.parse().ok().filter(|&k| k >= 1)?;
        Some(2 * (k - 1) + base)
    }

    /// Column names in pipeline order: `encrypt`, the stages, `decrypt`.
    pub fn names(&self) -> Vec<String> {
        let mut v = vec!["encrypt".to_string()];
        v.extend((0..self.stages.len()).map(Self::stage_name));
        v.push("decrypt".into());
        v
    }

    /// Values in the order of [`Self::names`].
    pub fn values(&self) -> Vec<f64> {
        let mut v = Vec::with_capacity(self.stages.len() + 2);
        v.push(self.encrypt);
        v.extend(&self.stages);
        v.push(self.decrypt);
        v
    }

    /// The time of the stage called `name` (`encrypt`, `conv`, `act2`, …),
    /// if the model has it.
    pub fn get(&self, name: &str) -> Option<f64> {
        match name {
            "encrypt" => Some(self.encrypt),
            "decrypt" => Some(self.decrypt),
            n => Self::stage_index(n).and_then(|i| self.stages.get(i).copied()),
        }
    }

    /// Sum of all stages.
    pub fn total(&self) -> f64 {
        self.encrypt + self.stages.iter().sum::<f64>() + self.decrypt
    }

    /// Element-wise sum (the stage list grows to the longer of the two).
    pub fn add(&mut self, o: &StageTimes) {
        self.encrypt += o.encrypt;
        self.decrypt += o.decrypt;
        if self.stages.len() < o.stages.len() {
            self.stages.resize(o.stages.len(), 0.0);
        }
        for (a, b) in self.stages.iter_mut().zip(&o.stages) {
            *a += b;
        }
    }

    /// Every stage multiplied by `k`.
    pub fn scaled(&self, k: f64) -> StageTimes {
        StageTimes {
            encrypt: self.encrypt * k,
            stages: self.stages.iter().map(|v| v * k).collect(),
            decrypt: self.decrypt * k,
        }
    }
}

impl Serialize for StageTimes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.stages.len() + 2))?;
        for (name, v) in self.names().iter().zip(self.values()) {
            m.serialize_entry(name, &v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for StageTimes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let map = std::collections::BTreeMap::<String, f64>::deserialize(d)?;
        let mut t = StageTimes::default();
        for (name, v) in map {
            match name.as_str() {
                "encrypt" => t.encrypt = v,
                "decrypt" => t.decrypt = v,
                n => {
                    let i = StageTimes::stage_index(n).ok_or_else(|| {
                        D::Error::custom(format!(
                            "unknown stage {n:?} (expected encrypt, conv, actK, fcK or decrypt)"
                        ))
                    })?;
                    if t.stages.len() <= i {
                        t.stages.resize(i + 1, 0.0);
                    }
                    t.stages[i] = v;
                }
            }
        }
        Ok(t)
    }
}
