//! Encrypted inference: runs a trained model's inference form
//! ([`crate::nn::InferenceModel`]: conv1' → act1 → dense1 → act2 → fc2) on
//! CKKS ciphertexts and reports accuracy, agreement with plaintext and time
//! per stage.
//!
//! Two engines share the types of this module:
//! - [`per_image`]: one image per ciphertext (the original's design, for
//!   latency): im2col layout, convolution by plaintext multiplies and
//!   rotation sums, dense layers by the diagonal method with BSGS;
//! - [`batched`]: one image per slot (CryptoNets-style SIMD, for
//!   throughput): every layer is a scalar-times-ciphertext sum, no rotations.
//!
//! Each engine is split into a keyless circuit that any party may hold
//! ([`batched::BatchedCircuit`], [`per_image::PerImageCircuit`]: they take
//! an [`crate::ckks::Evaluator`] with a client's evaluation keys per call,
//! as the server of [`crate::service`] does) and an in-process engine that
//! adds the client's keys, encryption and decryption
//! ([`batched::BatchedEngine`], [`per_image::PerImageEngine`]).
//!
//! [`plan`] computes the multiplicative depth and picks CKKS parameters;
//! [`run`] drives an engine over a range of test images and builds the
//! [`run::InferenceSummary`].

pub mod batched;
pub mod per_image;
pub mod plan;
pub mod run;

use crate::ckks::CkksError;
use crate::ckks::circuits::CircuitError;
use crate::nn::NnError;
use serde::{Deserialize, Serialize};

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
    Data(#[from] crate::data::DataError),
    /// Writing the results failed.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
}

/// Which engine runs the inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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
/// batch in batched mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimes {
    /// Encoding and encryption of the input.
    pub encrypt: f64,
    /// First convolution (BatchNorm folded).
    pub conv: f64,
    /// First activation.
    pub act1: f64,
    /// Collapsed dense block.
    pub fc1: f64,
    /// Second activation.
    pub act2: f64,
    /// Output layer.
    pub fc2: f64,
    /// Decryption and decoding.
    pub decrypt: f64,
}

impl StageTimes {
    /// Stage names in pipeline order, as used in CSV headers and JSON.
    pub const NAMES: [&'static str; 7] =
        ["encrypt", "conv", "act1", "fc1", "act2", "fc2", "decrypt"];

    /// Values in the order of [`Self::NAMES`].
    pub fn values(&self) -> [f64; 7] {
        [
            self.encrypt,
            self.conv,
            self.act1,
            self.fc1,
            self.act2,
            self.fc2,
            self.decrypt,
        ]
    }

    /// Sum of all stages.
    pub fn total(&self) -> f64 {
        self.values().iter().sum()
    }

    /// Element-wise sum.
    pub fn add(&mut self, o: &StageTimes) {
        self.encrypt += o.encrypt;
        self.conv += o.conv;
        self.act1 += o.act1;
        self.fc1 += o.fc1;
        self.act2 += o.act2;
        self.fc2 += o.fc2;
        self.decrypt += o.decrypt;
    }

    /// Every stage multiplied by `k`.
    pub fn scaled(&self, k: f64) -> StageTimes {
        let v = self.values().map(|x| x * k);
        StageTimes {
            encrypt: v[0],
            conv: v[1],
            act1: v[2],
            fc1: v[3],
            act2: v[4],
            fc2: v[5],
            decrypt: v[6],
        }
    }
}
