//! Loss, optimisers and learning-rate schedules with PyTorch semantics:
//! softmax cross-entropy, SGD (momentum, weight decay on every trainable
//! parameter, dampening 0, no Nesterov), Adam (L2 weight decay as
//! `torch.optim.Adam`), `OneCycleLR` (three-phase, cosine) and global
//! gradient-norm clipping (`clip_grad_norm_`).

use super::layers::ParamMut;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Mean softmax cross-entropy of `logits (n, k)` against `labels`, computed
/// stably (log-sum-exp with the row maximum subtracted). Returns
/// `(mean loss, d loss / d logits, number of correct argmax predictions)`.
pub fn softmax_cross_entropy(logits: &Array2<f32>, labels: &[u8]) -> (f64, Array2<f32>, usize) {
    let n = logits.nrows().max(1) as f64;
    let mut grad = Array2::<f32>::zeros(logits.raw_dim());
    let mut loss = 0f64;
    let mut correct = 0usize;
    for ((row, mut g), &y) in logits.outer_iter().zip(grad.outer_iter_mut()).zip(labels) {
        let y = usize::from(y);
        let m = row
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let sum: f64 = row.iter().map(|&v| (f64::from(v) - m).exp()).sum();
        let lse = m + sum.ln();
        loss += lse - row.get(y).map(|&v| f64::from(v)).unwrap_or(f64::NAN);
        for (j, (&v, gj)) in row.iter().zip(g.iter_mut()).enumerate() {
            let p = (f64::from(v) - lse).exp();
            *gj = ((p - if j == y { 1.0 } else { 0.0 }) / n) as f32;
        }
        if argmax(row.iter().copied()) == y {
            correct += 1;
        }
    }
    (loss / n, grad, correct)
}

/// Index of the largest value (first on ties; NaN never wins): the one
/// [`crate::stats::argmax`], over f32 values (widened exactly).
pub fn argmax(it: impl Iterator<Item = f32>) -> usize {
    crate::stats::argmax(it.map(f64::from))
}

/// Global L2 norm of the gradients of the trainable parameters; when it
/// exceeds `max_norm`, scale them by `max_norm / (norm + 1e-6)` (PyTorch's
/// `clip_grad_norm_`). Returns the norm before clipping.
pub fn clip_grad_norm(params: &mut [ParamMut<'_>], max_norm: f32) -> f64 {
    let total: f64 = params
        .iter()
        .filter(|p| !p.frozen)
        .flat_map(|p| p.grad.iter())
        .map(|&g| f64::from(g) * f64::from(g))
        .sum::<f64>()
        .sqrt();
    let coef = f64::from(max_norm) / (total + 1e-6);
    if coef < 1.0 {
        for p in params.iter_mut().filter(|p| !p.frozen) {
            for g in p.grad.iter_mut() {
                *g = (f64::from(*g) * coef) as f32;
            }
        }
    }
    total
}

/// PyTorch's `OneCycleLR` (anneal_strategy "cos", cycle_momentum on).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OneCycle {
    /// Peak learning rate.
    pub max_lr: f64,
    /// Total optimiser steps.
    pub total_steps: usize,
    /// Fraction of the cycle spent increasing the learning rate.
    pub pct_start: f64,
    /// initial_lr = max_lr / div_factor.
    pub div_factor: f64,
    /// min_lr = initial_lr / final_div_factor.
    pub final_div_factor: f64,
    /// Three phases (warm-up, symmetric cool-down, annihilation).
    pub three_phase: bool,
    /// Lower momentum (reached at the peak lr).
    pub base_momentum: f64,
    /// Upper momentum.
    pub max_momentum: f64,
}

impl OneCycle {
    /// The SPEC.md §4 recipe over `total_steps` steps: max_lr 0.2,
    /// pct_start 0.43, div 10, final div 1000, three phases, momentum 0.85↔0.95.
    pub fn recipe(total_steps: usize) -> Self {
        Self {
            max_lr: 0.2,
            total_steps,
            pct_start: 0.43,
            div_factor: 10.0,
            final_div_factor: 1000.0,
            three_phase: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
    }

    /// Phase end steps, as PyTorch computes them (may be non-integer).
    pub fn phase_ends(&self) -> Vec<f64> {
        let t = self.total_steps as f64;
        let p = self.pct_start * t;
        if self.three_phase {
            vec![p - 1.0, 2.0 * p - 2.0, t - 1.0]
        } else {
            vec![p - 1.0, t - 1.0]
        }
    }

    /// `(lr, momentum)` used for optimiser step `step` (0-based), exactly
    /// `OneCycleLR.get_lr()` with `last_epoch = step`.
    pub fn at(&self, step: usize) -> (f64, f64) {
        let init = self.max_lr / self.div_factor;
        let min = init / self.final_div_factor;
        let (lo_m, hi_m) = (self.base_momentum, self.max_momentum);
        // (start_lr, end_lr, start_momentum, end_momentum) per phase.
        let phases: Vec<(f64, f64, f64, f64)> = if self.three_phase {
            vec![
                (init, self.max_lr, hi_m, lo_m),
                (self.max_lr, init, lo_m, hi_m),
                (init, min, hi_m, hi_m),
            ]
        } else {
            vec![
                (init, self.max_lr, hi_m, lo_m),
                (self.max_lr, min, lo_m, hi_m),
            ]
        };
        let ends = self.phase_ends();
        let s = step as f64;
        let mut start = 0f64;
        let cos = |a: f64, b: f64, pct: f64| {
            b + (a - b) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
        };
        for (i, (&end, &(l0, l1, m0, m1))) in ends.iter().zip(&phases).enumerate() {
            if s <= end || i + 1 == phases.len() {
                let pct = (s - start) / (end - start);
                return (cos(l0, l1, pct), cos(m0, m1, pct));
            }
            start = end;
        }
        (min, hi_m)
    }
}

/// A learning-rate (and momentum) schedule, stepped once per batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Schedule {
    /// PyTorch `OneCycleLR`.
    OneCycle(OneCycle),
    /// Constant learning rate and momentum (beta1 for Adam).
    Constant {
        /// Learning rate.
        lr: f64,
        /// Momentum.
        momentum: f64,
    },
    /// Geometric growth from `start` to `end` over `steps` (LR range test).
    Exponential {
        /// First learning rate.
        start: f64,
        /// Last learning rate.
        end: f64,
        /// Number of steps.
        steps: usize,
        /// Momentum.
        momentum: f64,
    },
}

impl Schedule {
    /// `(lr, momentum)` at optimiser step `step`.
    pub fn at(&self, step: usize) -> (f64, f64) {
        match self {
            Self::OneCycle(o) => o.at(step),
            Self::Constant { lr, momentum } => (*lr, *momentum),
            Self::Exponential {
                start,
                end,
                steps,
                momentum,
            } => {
                let f = step as f64 / (steps.saturating_sub(1).max(1)) as f64;
                (start * (end / start).powf(f), *momentum)
            }
        }
    }
}

/// Optimiser kind and hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OptimizerConfig {
    /// SGD with momentum (the momentum comes from the schedule).
    Sgd {
        /// L2 weight decay on every trainable parameter.
        weight_decay: f64,
    },
    /// Adam (beta1 from the schedule's momentum, beta2 0.999, eps 1e-8).
    Adam {
        /// L2 weight decay (added to the gradient, as `torch.optim.Adam`).
        weight_decay: f64,
    },
}

/// Optimiser state for a fixed list of parameters (indexed by position).
#[derive(Clone, Debug)]
pub struct Optimizer {
    /// Kind and hyper-parameters.
    pub config: OptimizerConfig,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: u64,
}

impl Optimizer {
    /// A fresh optimiser.
    pub fn new(config: OptimizerConfig) -> Self {
        Self {
            config,
            m: Vec::new(),
            v: Vec::new(),
            t: 0,
        }
    }

    /// One update of every trainable parameter with learning rate `lr` and
    /// momentum (SGD) / beta1 (Adam) `momentum`.
    pub fn step(&mut self, params: &mut [ParamMut<'_>], lr: f64, momentum: f64) {
        if self.m.len() != params.len() {
            self.m = params.iter().map(|_| Vec::new()).collect();
            self.v = params.iter().map(|_| Vec::new()).collect();
        }
        self.t += 1;
        let (lr, mu) = (lr as f32, momentum as f32);
        match self.config {
            OptimizerConfig::Sgd { weight_decay } => {
                let wd = weight_decay as f32;
                for (p, buf) in params.iter_mut().zip(&mut self.m) {
                    if p.frozen {
                        continue;
                    }
                    let first = buf.is_empty();
                    if first {
                        buf.resize(p.value.len(), 0.0);
                    }
                    for ((w, &g), b) in p.value.iter_mut().zip(p.grad.iter()).zip(buf.iter_mut()) {
                        let d = g + wd * *w;
                        *b = if first || mu == 0.0 { d } else { mu * *b + d };
                        *w -= lr * *b;
                    }
                }
            }
            OptimizerConfig::Adam { weight_decay } => {
                let wd = weight_decay as f32;
                let b2 = 0.999f32;
                let bc1 = 1.0 - mu.powi(self.t as i32);
                let bc2 = 1.0 - b2.powi(self.t as i32);
                for ((p, m), v) in params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
                    if p.frozen {
                        continue;
                    }
                    if m.is_empty() {
                        m.resize(p.value.len(), 0.0);
                        v.resize(p.value.len(), 0.0);
                    }
                    for (((w, &g), mi), vi) in p
                        .value
                        .iter_mut()
                        .zip(p.grad.iter())
                        .zip(m.iter_mut())
                        .zip(v.iter_mut())
                    {
                        let d = g + wd * *w;
                        *mi = mu * *mi + (1.0 - mu) * d;
                        *vi = b2 * *vi + (1.0 - b2) * d * d;
                        *w -= lr * (*mi / bc1) / ((*vi / bc2).sqrt() + 1e-8);
                    }
                }
            }
        }
    }
}
