//! Encrypted inference: runs a trained model's chain form
//! ([`slaf_nn::ChainForm`]: a first conv, then (activation, dense) pairs,
//! any number of them; the papers' conv1' → act1 → dense1 → act2 → fc2 is
//! the two-pair case) on CKKS ciphertexts and reports accuracy, agreement
//! with plaintext, precision and time per stage.
//!
//! The crate follows the deployment split (Concrete-ML's dev/client/server,
//! tfhe-rs's client and server keys), top-down:
//! - [`plan`]: one [`plan::CircuitPlan`] per model, the only place that
//!   decides depth, levels and scales (and picks CKKS parameters);
//! - [`layout`]: how images become input slots and output slots become
//!   logits, with the level and scales, one rule per layout
//!   ([`layout::BatchedLayout`]: one image per slot;
//!   [`layout::PerImageLayout`]: one image per ciphertext);
//! - [`circuit`]: the keyless [`Circuit`] trait, implemented by
//!   [`batched::BatchedCircuit`] (every layer a scalar-times-ciphertext
//!   sum, no rotations) and [`per_image::PerImageCircuit`] (im2col,
//!   diagonal transforms with BSGS); a server holds exactly one;
//! - [`client`]: [`ClientSide`], key generation, encryption and decryption
//!   through the layout;
//! - [`engine`]: the [`Engine`] trait the evaluation harness of
//!   `slaf-experiments` drives, and [`LocalEngine`] = a client plus a
//!   circuit ([`batched::BatchedEngine`], [`per_image::PerImageEngine`]).
//!
//! Invariants: both circuits follow [`plan::ActPlan`] (one rule set), so the
//! depth a summary reports is the depth that ran; stage times and precision
//! reports are indexed by chain-form stage and named by
//! [`StageTimes::stage_name`]; the plaintext reference is
//! [`slaf_nn::InferenceModel::forward`] for logits and
//! [`slaf_nn::ChainForm::forward_stages`] for intermediates. This crate
//! never renders, reads `/proc` or writes result files (that is
//! `slaf-experiments`).

pub mod batched;
pub mod circuit;
pub mod client;
pub mod engine;
pub mod layout;
pub mod noise;
pub mod per_image;
pub mod plan;

pub use circuit::{Circuit, Hooks, KeyRequirements, check_keys};
pub use client::{ClientSide, Encryption, EvaluationKeySet, SeedLabels};
pub use engine::{Engine, EngineOutput, LocalEngine};
pub use layout::{BatchedLayout, Layout, PerImageLayout, Probe};

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
    /// The CKKS simulator refused an operation (a planning error found
    /// without encryption).
    #[error(transparent)]
    Simulator(#[from] slaf_ckks::circuits::sim::SimError),
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
