//! The training loop over MNIST mini-batches, evaluation with per-class
//! accuracy, the SLAF-R procedure and the learning-rate range test.

use super::NnError;
use super::act::MaxAbs;
use super::layers::Mode;
use super::model::{ActSpec, Arch, Model};
use super::optim::{
    OneCycle, Optimizer, OptimizerConfig, Schedule, argmax, clip_grad_norm, softmax_cross_entropy,
};
use super::spec::ModelSpec;
use crate::data::{BatchSampler, Mnist, NUM_CLASSES, Split};
use ndarray::{Array2, Axis, s};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The activation variants of SPEC.md §2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Variant {
    /// ReLU (plaintext reference).
    Relu,
    /// Square activation.
    X2,
    /// SLAF trained from scratch with the weights.
    Slaf,
    /// Train with ReLU, swap in SLAFs, retrain only the SLAF coefficients.
    SlafR,
    /// ReLU written as `(x + x s(x))/2` with a fitted sign approximation s.
    SlafP,
}

impl Variant {
    /// Command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Relu => "relu",
            Self::X2 => "x2",
            Self::Slaf => "slaf",
            Self::SlafR => "slaf-r",
            Self::SlafP => "slaf-p",
        }
    }
    /// Parse a command-line name.
    pub fn parse(s: &str) -> Result<Self, NnError> {
        Ok(match s {
            "relu" => Self::Relu,
            "x2" => Self::X2,
            "slaf" => Self::Slaf,
            "slaf-r" => Self::SlafR,
            "slaf-p" => Self::SlafP,
            other => {
                return Err(NnError::UnknownName {
                    what: "activation",
                    name: other.to_string(),
                });
            }
        })
    }
    /// Whether the final network's activations are polynomials.
    pub fn is_polynomial(self) -> bool {
        self != Self::Relu
    }
    /// The activation of the final network (SLAF-R ends as SLAF).
    pub fn act(self) -> crate::ActKind {
        match self {
            Self::Relu => crate::ActKind::Relu,
            Self::X2 => crate::ActKind::X2,
            Self::Slaf | Self::SlafR => crate::ActKind::Slaf,
            Self::SlafP => crate::ActKind::SlafP,
        }
    }
}

/// Which optimiser/schedule pair to train with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Recipe {
    /// SGD + OneCycle (max_lr 0.2, ...), weight decay 1e-4: the main recipe.
    SgdOnecycle,
    /// Adam, lr 1e-3 constant, weight decay as configured (default 0).
    Adam,
    /// Plain SGD, lr 0.01 constant, momentum 0.9, weight decay 1e-4.
    Sgd,
}

impl Recipe {
    /// Command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::SgdOnecycle => "sgd-onecycle",
            Self::Adam => "adam",
            Self::Sgd => "sgd",
        }
    }
    /// Parse a command-line name.
    pub fn parse(s: &str) -> Result<Self, NnError> {
        Ok(match s {
            "sgd-onecycle" => Self::SgdOnecycle,
            "adam" => Self::Adam,
            "sgd" => Self::Sgd,
            other => {
                return Err(NnError::UnknownName {
                    what: "optimizer",
                    name: other.to_string(),
                });
            }
        })
    }
}

/// Everything that defines a training run (stored in the weights file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Network (a preset is stored as its name, under the key `arch`).
    #[serde(rename = "arch", with = "super::spec::by_name")]
    pub model: ModelSpec,
    /// Data set it is trained on (weights files without it: MNIST).
    #[serde(default)]
    pub dataset: crate::data::Dataset,
    /// Activation variant.
    pub variant: Variant,
    /// Epochs (for SLAF-R: of the ReLU phase).
    pub epochs: usize,
    /// Optimiser / schedule.
    pub recipe: Recipe,
    /// Seed for weights and batch order.
    pub seed: u64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Use only the first N training images.
    pub limit_train: Option<usize>,
    /// Use only the first N test images.
    pub limit_test: Option<usize>,
    /// SLAF degree.
    pub degree: usize,
    /// Global gradient-norm clipping (None: off).
    pub clip_grad: Option<f32>,
    /// Weight decay (None: recipe default: 1e-4 for SGD, 0 for Adam).
    pub weight_decay: Option<f64>,
    /// SLAF-P: learn s (default false: fixed, as published).
    pub slafp_trainable: bool,
    /// SLAF-P: which sign approximation initialises s.
    #[serde(default)]
    pub slafp_init: super::act::SignInit,
    /// SLAF-R: epochs of the coefficient retraining (compressed one-cycle).
    pub slaf_r_epochs: usize,
    /// SLAF-R: do not freeze the weights (the original's behaviour).
    pub as_published: bool,
    /// SLAF-R: start the swapped-in SLAFs from a least-squares ReLU fit on
    /// each layer's observed range instead of zeros.
    #[serde(default)]
    pub slaf_r_fit: bool,
    /// SLAF-R: optimiser/schedule of the retraining (None: same as `recipe`).
    #[serde(default)]
    pub slaf_r_recipe: Option<Recipe>,
    /// SLAF-R: BatchNorm behaviour in the frozen network (batch statistics,
    /// as PyTorch, by default).
    #[serde(default)]
    pub slaf_r_bn: super::FrozenBatchNorm,
    /// PyTorch-default uniform conv init instead of Kaiming-normal.
    pub pytorch_conv_init: bool,
    /// SLAF initial coefficients `a0..ad` (None: see [`TrainConfig::slaf_init_coeffs`]).
    pub slaf_init: Option<Vec<f32>>,
}

impl TrainConfig {
    /// Defaults for `arch`/`variant`: 30 epochs of SGD+OneCycle, seed 73,
    /// batch 64, degree 3, clipping 1.0 for polynomial activations (off for
    /// ReLU), SLAF-R retraining 2 epochs with frozen weights.
    pub fn new(arch: Arch, variant: Variant) -> Self {
        Self::for_spec(arch.spec(), variant)
    }

    /// The defaults of [`TrainConfig::new`] for any spec.
    pub fn for_spec(model: ModelSpec, variant: Variant) -> Self {
        Self {
            model,
            dataset: crate::data::Dataset::Mnist,
            variant,
            epochs: 30,
            recipe: Recipe::SgdOnecycle,
            seed: crate::data::DEFAULT_SEED,
            batch_size: crate::data::DEFAULT_BATCH_SIZE,
            limit_train: None,
            limit_test: None,
            degree: 3,
            clip_grad: variant.is_polynomial().then_some(1.0),
            weight_decay: None,
            slafp_trainable: false,
            slafp_init: super::act::SignInit::LeastSquares,
            slaf_r_epochs: 2,
            as_published: false,
            slaf_r_fit: false,
            slaf_r_recipe: None,
            slaf_r_bn: super::FrozenBatchNorm::default(),
            pytorch_conv_init: false,
            slaf_init: None,
        }
    }

    /// The defaults of [`TrainConfig::new`] with `epochs` epochs, as the
    /// `reproduce` profiles and the notebooks use them: SLAF-R retrains its
    /// coefficients for 2 epochs after a run of 30 or more, else for 1.
    pub fn with_epochs(arch: Arch, variant: Variant, epochs: usize) -> Self {
        Self::spec_with_epochs(arch.spec(), variant, epochs)
    }

    /// [`TrainConfig::with_epochs`] for any spec.
    pub fn spec_with_epochs(model: ModelSpec, variant: Variant, epochs: usize) -> Self {
        let mut c = Self::for_spec(model, variant);
        c.epochs = epochs;
        if variant == Variant::SlafR {
            c.slaf_r_epochs = if epochs >= 30 { 2 } else { 1 };
        }
        c
    }

    /// SLAF initial coefficients: `slaf_init` if given. Otherwise, for the
    /// papers' four networks, zeros (the original) — except for a model
    /// with BatchNorm (CNN2), whose BatchNorm1d maps the constant output of
    /// an all-zero SLAF to exactly 0, a stationary point that PyTorch only
    /// escapes through rounding noise in the batch mean; there the default
    /// is `a1 = 0.01`, all other coefficients 0. Any other spec starts from
    /// x² (`a2 = 1`; `a1 = 1` for degree 1): with three or more stacked
    /// all-zero SLAFs every coefficient gradient is zero and training never
    /// leaves chance level (measured on `models/cnn3.toml`).
    pub fn slaf_init_coeffs(&self) -> Vec<f32> {
        if let Some(c) = &self.slaf_init {
            return c.clone();
        }
        let mut c = vec![0f32; self.degree + 1];
        let preset = Arch::ALL.iter().any(|a| a.spec() == self.model);
        if !preset {
            c[self.degree.min(2)] = 1.0;
        } else if self.model.has_batchnorm() && self.degree >= 1 {
            c[1] = 0.01;
        }
        c
    }

    /// The activation spec the model is first built with.
    pub fn act_spec(&self) -> ActSpec {
        match self.variant {
            Variant::Relu | Variant::SlafR => ActSpec::Relu,
            Variant::X2 => ActSpec::Square,
            Variant::Slaf => ActSpec::Slaf {
                degree: self.degree,
                init: Some(self.slaf_init_coeffs()),
            },
            Variant::SlafP => ActSpec::SlafP {
                r: self.model.slafp_range(),
                trainable: self.slafp_trainable,
                init: self.slafp_init,
            },
        }
    }

    /// The optimiser the recipe uses.
    pub fn optimizer(&self) -> OptimizerConfig {
        match self.recipe {
            Recipe::Adam => OptimizerConfig::Adam {
                weight_decay: self.weight_decay.unwrap_or(0.0),
            },
            Recipe::SgdOnecycle | Recipe::Sgd => OptimizerConfig::Sgd {
                weight_decay: self.weight_decay.unwrap_or(1e-4),
            },
        }
    }

    /// The schedule the recipe uses over `total_steps` optimiser steps.
    pub fn schedule(&self, total_steps: usize) -> Schedule {
        match self.recipe {
            Recipe::SgdOnecycle => Schedule::OneCycle(OneCycle::recipe(total_steps)),
            Recipe::Adam => Schedule::Constant {
                lr: 1e-3,
                momentum: 0.9,
            },
            Recipe::Sgd => Schedule::Constant {
                lr: 0.01,
                momentum: 0.9,
            },
        }
    }
}

/// One epoch's summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// Phase label (`train`, or `slaf-r` for the SLAF-R retraining).
    pub phase: String,
    /// 1-based epoch within the phase.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (from the training passes).
    pub train_accuracy: f64,
    /// Test accuracy at the end of the epoch.
    pub test_accuracy: f64,
    /// Wall-clock seconds of the training passes of the epoch.
    pub seconds: f64,
}

/// Overall and per-class accuracy of a model on a split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Fraction correct.
    pub overall: f64,
    /// Fraction correct per digit 0..=9.
    pub per_class: Vec<f64>,
    /// Correct predictions.
    pub correct: usize,
    /// Examples evaluated.
    pub total: usize,
}

/// What a finished run reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Per-epoch logs (both phases for SLAF-R).
    pub epochs: Vec<EpochLog>,
    /// Final test accuracy.
    pub test: Accuracy,
    /// Final-epoch training accuracy.
    pub train_accuracy: f64,
    /// Seconds spent in training passes.
    pub train_seconds: f64,
    /// Max |input| per activation layer.
    pub max_abs_input: Vec<MaxAbs>,
    /// Optimiser of the training phases (absent in files of early builds).
    #[serde(default)]
    pub optimizer: Option<OptimizerConfig>,
    /// Learning-rate schedule of the first training phase, with its total
    /// steps (absent in files of early builds).
    #[serde(default)]
    pub schedule: Option<Schedule>,
}

/// Evaluate on `split` (evaluation mode, chunks of 500 images).
pub fn evaluate(model: &mut Model, split: &Split) -> Accuracy {
    let mut correct = [0usize; NUM_CLASSES];
    let mut count = [0usize; NUM_CLASSES];
    let n = split.len();
    let mut start = 0;
    while start < n {
        let end = (start + 500).min(n);
        let x = split.images.slice(s![start..end, ..]).to_owned();
        let logits = model.forward(&x, Mode::Eval);
        for (row, &y) in logits.outer_iter().zip(&split.labels[start..end]) {
            let y = usize::from(y);
            count[y] += 1;
            if argmax(row.iter().copied()) == y {
                correct[y] += 1;
            }
        }
        start = end;
    }
    let total: usize = count.iter().sum();
    let c: usize = correct.iter().sum();
    Accuracy {
        overall: c as f64 / total.max(1) as f64,
        per_class: correct
            .iter()
            .zip(&count)
            .map(|(&a, &b)| a as f64 / b.max(1) as f64)
            .collect(),
        correct: c,
        total,
    }
}

/// Options of one training phase.
#[derive(Clone, Debug)]
pub struct Phase<'a> {
    /// Label for logs.
    pub label: &'a str,
    /// Epochs.
    pub epochs: usize,
    /// Optimiser.
    pub optimizer: OptimizerConfig,
    /// Schedule (stepped per batch).
    pub schedule: Schedule,
    /// Gradient clipping.
    pub clip_grad: Option<f32>,
    /// Batch size.
    pub batch_size: usize,
    /// Sampler seed.
    pub seed: u64,
    /// Hide the progress bar.
    pub quiet: bool,
}

/// Train `model` on `train` for one phase, evaluating on `test` after each
/// epoch and calling `on_epoch` with the summary. Stops with
/// [`NnError::NonFiniteLoss`] on a NaN/inf loss or gradient.
pub fn train_phase(
    model: &mut Model,
    train: &Split,
    test: &Split,
    phase: &Phase<'_>,
    on_epoch: &mut dyn FnMut(&EpochLog),
) -> Result<Vec<EpochLog>, NnError> {
    let mut sampler = BatchSampler::new(train.len(), phase.batch_size, phase.seed)?;
    let mut opt = Optimizer::new(phase.optimizer.clone());
    let mut step = 0usize;
    let mut logs = Vec::new();
    for epoch in 1..=phase.epochs {
        let batches = sampler.next_epoch();
        let bar = crate::progress::bar(
            batches.len() as u64,
            &format!("{} {epoch}/{}", phase.label, phase.epochs),
            phase.quiet,
        );
        let t0 = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        for (b, idx) in batches.iter().enumerate() {
            let (x, y) = train.gather(idx)?;
            let logits = model.forward(&x, Mode::Train);
            let (loss, dlogits, c) = softmax_cross_entropy(&logits, &y);
            if !loss.is_finite() {
                return Err(NnError::NonFiniteLoss {
                    epoch,
                    batch: b + 1,
                    value: loss,
                });
            }
            model.backward(&dlogits);
            let mut params = model.params_mut();
            if params
                .iter()
                .any(|p| !p.frozen && p.grad.iter().any(|g| !g.is_finite()))
            {
                return Err(NnError::NonFiniteLoss {
                    epoch,
                    batch: b + 1,
                    value: f64::NAN,
                });
            }
            if let Some(c) = phase.clip_grad {
                clip_grad_norm(&mut params, c);
            }
            let (lr, mu) = phase.schedule.at(step);
            opt.step(&mut params, lr, mu);
            step += 1;
            loss_sum += loss * idx.len() as f64;
            correct += c;
            seen += idx.len();
            bar.inc(1);
        }
        bar.finish_and_clear();
        let seconds = t0.elapsed().as_secs_f64();
        let test_acc = evaluate(model, test).overall;
        let log = EpochLog {
            phase: phase.label.to_string(),
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            test_accuracy: test_acc,
            seconds,
        };
        on_epoch(&log);
        logs.push(log);
    }
    Ok(logs)
}

/// Train a model as `cfg` describes (SLAF-R included) and return it with
/// its report. `on_epoch` receives each epoch's summary.
pub fn train(
    data: &Mnist,
    cfg: &TrainConfig,
    quiet: bool,
    on_epoch: &mut dyn FnMut(&EpochLog),
) -> Result<(Model, TrainReport), NnError> {
    let train = match cfg.limit_train {
        Some(n) => data.train.head(n),
        None => data.train.clone(),
    };
    let test = match cfg.limit_test {
        Some(n) => data.test.head(n),
        None => data.test.clone(),
    };
    if train.is_empty() || test.is_empty() || cfg.batch_size == 0 {
        return Err(NnError::InvalidConfig {
            detail:
                "training needs at least one training image, one test image and batch size >= 1"
                    .into(),
        });
    }
    if cfg.epochs == 0 {
        return Err(NnError::InvalidConfig {
            detail: "epochs = 0 would write an untrained model; train for at least 1 epoch".into(),
        });
    }
    if cfg.variant == Variant::SlafR && cfg.slaf_r_epochs == 0 {
        return Err(NnError::InvalidConfig {
            detail: "SLAF-R needs at least 1 epoch of SLAF retraining (slaf_r_epochs = 0)".into(),
        });
    }
    if matches!(cfg.variant, Variant::Slaf | Variant::SlafR) && cfg.degree == 0 {
        return Err(NnError::InvalidConfig {
            detail: "a SLAF of degree 0 is a constant activation; use degree >= 1".into(),
        });
    }
    let mut model = Model::from_spec(&cfg.model, &cfg.act_spec(), cfg.seed, cfg.pytorch_conv_init)?;
    let steps = train.len().div_ceil(cfg.batch_size);
    // The ReLU phase of SLAF-R is trained without clipping, as a ReLU model.
    let clip = if cfg.variant == Variant::SlafR {
        None
    } else {
        cfg.clip_grad
    };
    let phase = Phase {
        label: "train",
        epochs: cfg.epochs,
        optimizer: cfg.optimizer(),
        schedule: cfg.schedule(steps * cfg.epochs),
        clip_grad: clip,
        batch_size: cfg.batch_size,
        seed: cfg.seed,
        quiet,
    };
    let t0 = Instant::now();
    let (optimizer, schedule) = (phase.optimizer.clone(), phase.schedule.clone());
    let mut logs = train_phase(&mut model, &train, &test, &phase, on_epoch)?;
    if cfg.variant == Variant::SlafR {
        if cfg.slaf_r_fit {
            model.swap_relu_for_fitted_slaf(cfg.degree);
        } else {
            model.swap_relu_for_slaf(cfg.degree);
        }
        if !cfg.as_published {
            model.freeze_non_activation(cfg.slaf_r_bn);
        }
        let rcfg = TrainConfig {
            recipe: cfg.slaf_r_recipe.unwrap_or(cfg.recipe),
            ..cfg.clone()
        };
        let phase = Phase {
            label: "slaf-r",
            epochs: cfg.slaf_r_epochs,
            optimizer: rcfg.optimizer(),
            schedule: rcfg.schedule(steps * cfg.slaf_r_epochs),
            clip_grad: cfg.clip_grad,
            seed: cfg.seed.wrapping_add(1),
            ..phase
        };
        logs.extend(train_phase(&mut model, &train, &test, &phase, on_epoch)?);
    }
    let train_seconds = t0.elapsed().as_secs_f64();
    let test_acc = evaluate(&mut model, &test);
    let report = TrainReport {
        train_accuracy: logs.last().map(|l| l.train_accuracy).unwrap_or(0.0),
        epochs: logs,
        test: test_acc,
        train_seconds,
        max_abs_input: model.max_abs_input(),
        optimizer: Some(optimizer),
        schedule: Some(schedule),
    };
    Ok((model, report))
}

/// One point of the LR range test.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrPoint {
    /// Learning rate of the step.
    pub lr: f64,
    /// Smoothed, bias-corrected loss.
    pub loss: f64,
    /// Raw batch loss.
    pub raw_loss: f64,
}

/// Learning-rate range test (SPEC.md §4): over one epoch the learning rate
/// grows geometrically from `start` to `end` (1e-6 → 10); the batch loss is
/// smoothed with `beta` (0.99) and bias-corrected; the test stops when the
/// smoothed loss exceeds 4× the lowest seen (or is not finite). Uses the
/// config's optimiser (SGD momentum 0.95 for the main recipe) and clipping.
pub fn lr_find(
    data: &Mnist,
    cfg: &TrainConfig,
    start: f64,
    end: f64,
    beta: f64,
) -> Result<Vec<LrPoint>, NnError> {
    let train = match cfg.limit_train {
        Some(n) => data.train.head(n),
        None => data.train.clone(),
    };
    let mut model = Model::from_spec(&cfg.model, &cfg.act_spec(), cfg.seed, cfg.pytorch_conv_init)?;
    let mut sampler = BatchSampler::new(train.len(), cfg.batch_size, cfg.seed)?;
    let batches = sampler.next_epoch();
    let momentum = if cfg.recipe == Recipe::SgdOnecycle {
        0.95
    } else {
        0.9
    };
    let sched = Schedule::Exponential {
        start,
        end,
        steps: batches.len(),
        momentum,
    };
    let mut opt = Optimizer::new(cfg.optimizer());
    let (mut avg, mut best) = (0f64, f64::INFINITY);
    let mut out = Vec::new();
    for (i, idx) in batches.iter().enumerate() {
        let (x, y) = train.gather(idx)?;
        let logits = model.forward(&x, Mode::Train);
        let (loss, d, _) = softmax_cross_entropy(&logits, &y);
        let (lr, mu) = sched.at(i);
        if !loss.is_finite() {
            break;
        }
        avg = beta * avg + (1.0 - beta) * loss;
        let smooth = avg / (1.0 - beta.powi(i as i32 + 1));
        out.push(LrPoint {
            lr,
            loss: smooth,
            raw_loss: loss,
        });
        if i > 0 && smooth > 4.0 * best {
            break;
        }
        best = best.min(smooth);
        model.backward(&d);
        let mut params = model.params_mut();
        if let Some(c) = cfg.clip_grad {
            clip_grad_norm(&mut params, c);
        }
        opt.step(&mut params, lr, mu);
    }
    Ok(out)
}

/// Logits of `model` in evaluation mode for the images `x` (`(n, 784)`).
pub fn eval_logits(model: &mut Model, x: &Array2<f32>) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros((x.nrows(), 10));
    for (xc, mut oc) in x
        .axis_chunks_iter(Axis(0), 500)
        .zip(out.axis_chunks_iter_mut(Axis(0), 500))
    {
        oc.assign(&model.forward(&xc.to_owned(), Mode::Eval));
    }
    out
}
