//! Plaintext neural networks: layers with hand-written forward and backward
//! passes, self-learning activation functions (SLAF), optimisers, learning
//! rate schedules and the training loop for CNN1, CNN2 and CryptoNets
//! (SPEC.md §2–4), plus the collapsed inference form and the weights file
//! that encrypted inference loads.
//!
//! Layout: `layers` (Conv2d, Linear, BatchNorm, AvgPool2d), `act`
//! (ReLU, x², SLAF, SLAF-P), `spec` ([`ModelSpec`]: a network as a TOML
//! value, the four presets included), `model` (the networks built from specs), `optim` (loss, SGD,
//! Adam, OneCycle, clipping), `train` (loop, evaluation, SLAF-R, LR range
//! test), `inference` ([`InferenceModel`]), `weights` ([`WeightsFile`]).
//! The data loaders ([`data`]) and progress bars ([`progress`]) live here
//! too: this crate is the bottom of every plaintext path and never uses
//! `slaf-ckks`.

pub mod act;
pub mod cache;
pub mod data;
pub mod inference;
pub mod layers;
pub mod model;
pub mod optim;
pub mod progress;
pub mod spec;
pub mod stats;
pub mod train;
pub mod weights;

pub use act::ActKind;
pub use act::{
    ActLayer, Activation, MaxAbs, SignInit, Slaf, SlafP, relu_fit_ls, sign_fit_ls, sign_poly,
};
pub use inference::{
    ChainForm, Dense, InferenceAct, InferenceConv, InferenceModel, PaperForm, Stage,
};
pub use layers::{AvgPool2d, BatchNorm, Conv2d, ConvGeom, Linear, Mode, Param, ParamMut, TapRun};
pub use model::{ActSpec, Arch, FrozenBatchNorm, Layer, Model, NamedTensor};
pub use optim::{OneCycle, Optimizer, OptimizerConfig, Schedule, softmax_cross_entropy};
pub use spec::{LayerShape, LayerSpec, ModelSpec, Shape};
pub use train::{
    Accuracy, EpochLog, LrPoint, Recipe, TrainConfig, TrainReport, Variant, evaluate, lr_find,
    train,
};
pub use weights::WeightsFile;

use std::path::PathBuf;

/// Errors of the training engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NnError {
    /// Training produced a NaN/inf loss or gradient; no model is returned.
    #[error(
        "training diverged: non-finite loss ({value}) at epoch {epoch}, batch {batch}; try --clip-grad or a lower learning rate"
    )]
    NonFiniteLoss {
        /// 1-based epoch of the phase.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// The loss value (NaN when a gradient was the non-finite part).
        value: f64,
    },
    /// A name (model, activation, optimiser) is not known.
    #[error("unknown {what} {name:?}")]
    UnknownName {
        /// What kind of name.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// The training configuration cannot run.
    #[error("invalid training configuration: {detail}")]
    InvalidConfig {
        /// What is wrong.
        detail: String,
    },
    /// A weights file or state is malformed or does not fit the architecture.
    #[error("invalid weights: {detail}")]
    InvalidWeights {
        /// What is wrong.
        detail: String,
    },
    /// An input (image, tensor) has the wrong size.
    #[error("invalid input: {detail}")]
    InvalidInput {
        /// What is wrong.
        detail: String,
    },
    /// Reading or writing a file failed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A model spec's layer does not fit (index, type and the numbers).
    #[error("model spec, layer {layer} ({kind}): {detail}")]
    Spec {
        /// 0-based index of the layer in the spec.
        layer: usize,
        /// The layer's type (`conv2d`, `dense`, ...).
        kind: &'static str,
        /// What is wrong, with the numbers.
        detail: String,
    },
    /// A model spec cannot be read or parsed (TOML syntax, unknown field or type, input shape).
    #[error("model spec: {detail}")]
    SpecParse {
        /// What is wrong.
        detail: String,
    },
    /// Data access failed.
    #[error("data error during training: {0}")]
    Data(#[from] crate::data::DataError),
}
