//! The per-image circuit, generic over the evaluator ([`CircuitBackend`]):
//! im2col input layout, convolution as one banded diagonal transform,
//! activations, dense layers; level and scale plan.
//!
//! Input layout (kernel-major im2col): slot `e·W + w` holds the pixel that
//! kernel entry `e = ky·k + kx` sees in output window `w = oy·ow + ox`
//! (zero where the window covers padding); `K·W` slots (CNN1 49·64 = 3136,
//! CNN2 25·169 = 4225).
//!
//! Convolution: output slot `c·W + w` (NCHW flatten, channels packed
//! contiguously) is `sum_e weight[c][e] · in[e·W + w]`, i.e. the diagonal of
//! offset `(e - c)·W` holds `weight[c][e]` on channel `c`'s block. That is
//! one band of `C + K - 1` offsets with stride `W` (CNN1 52, CNN2 44): with
//! baby-step giant-step about 13 rotations for all channels together, one
//! level, and the bias added after the rescale. No masks: the diagonals are
//! zero outside channel blocks, so the output is zero-padded past `C·W`.
//!
//! Activations follow the planner's rules ([`ActPlan`]): a power-basis
//! polynomial goes through the depth-optimal
//! [`PolynomialEvaluator`] with the input's exact scale as target. Two
//! shapes are cheaper and folded into the next dense layer exactly:
//! `a0 + a2 x²` is one ciphertext square + rescale (depth 1 instead of 2)
//! whose slots hold `x² · Δ/q` (the scale relabelled to `Δ`), and
//! `a0 + a1 x` costs nothing; the next layer's columns are multiplied by
//! `alpha` (`a2 q/Δ`, resp. `a1`) and `a0 · (row sums)` is added to its
//! bias. Every stage keeps the ciphertext at the encryption scale `Δ`, so
//! the biases are encoded once.
//!
//! Dense layers: [`dense_layout`] (band or folded, fewest estimated
//! rotations); slots past the layer's input length are never read, so no
//! masking is needed after the activations.

use std::collections::BTreeSet;

use crate::HeNnError;
use crate::plan::{ActPlan, CircuitPlan};
use slaf_ckks::circuits::{CircuitBackend, CircuitError, PolynomialEvaluator, be};
use slaf_nn::inference::{ChainForm, InferenceAct};
use slaf_nn::layers::ConvGeom;

use slaf_ckks::circuits::{DiagLayout as Layout, DiagTransform, dense_diagonal, dense_layout};

/// An activation stage: its evaluation and the affine map from the slot
/// values it leaves to the true activation outputs.
#[derive(Debug, Clone)]
pub struct ActStage {
    /// Evaluation (the planner's rule for this activation).
    pub kind: ActPlan,
    /// Levels consumed.
    pub depth: usize,
    /// True output = `alpha · slot + beta`.
    pub alpha: f64,
    /// See `alpha`.
    pub beta: f64,
}

impl ActStage {
    /// Plans an activation by the planner's rules ([`ActPlan`]; `alpha` of
    /// a square still lacks `q/Δ`, which depends on the level: see
    /// [`Pipeline::new`]).
    pub fn plan(act: &InferenceAct, layer: &str) -> Result<Self, HeNnError> {
        Ok(Self::from_plan(&ActPlan::new(layer, act)?))
    }

    /// The stage of a planned activation.
    pub fn from_plan(p: &ActPlan) -> Self {
        Self {
            kind: p.clone(),
            depth: p.depth(),
            alpha: p.fold(),
            beta: p.offset(),
        }
    }

    /// Evaluates the stage on `ct` (output at the input's scale).
    pub fn apply<B: CircuitBackend>(
        &self,
        bk: &B,
        ct: &B::Ciphertext,
    ) -> Result<B::Ciphertext, CircuitError> {
        match &self.kind {
            ActPlan::Affine { .. } => Ok(ct.clone()),
            ActPlan::Square { .. } => {
                let s = bk.scale(ct);
                if bk.level(ct) == 0 {
                    return Err(CircuitError::DepthExhausted {
                        needed: 1,
                        available: 0,
                    });
                }
                let p = bk.mul_relin(ct, ct).map_err(be("activation square"))?;
                let mut r = bk.rescale(&p).map_err(be("activation square rescale"))?;
                bk.set_scale(&mut r, s)
                    .map_err(be("activation square scale"))?;
                Ok(r)
            }
            ActPlan::Poly { poly, plan } => {
                let s = bk.scale(ct);
                PolynomialEvaluator::new(bk).evaluate_plan(ct, poly, plan, Some(s))
            }
        }
    }
}

/// Total depth of a model's per-image circuit and its per-layer breakdown:
/// the planner's ([`CircuitPlan`]), since both engines follow its rules.
pub fn circuit_depth(model: &ChainForm) -> Result<(usize, String), HeNnError> {
    let plan = CircuitPlan::new(model, None)?;
    Ok((plan.depth, plan.breakdown()))
}

/// Name of stage `i`: `conv`, then `act1`, `fc1`, `act2`, `fc2`, ...
pub fn stage_name(i: usize) -> String {
    crate::StageTimes::stage_name(i)
}

pub use crate::layout::im2col;

/// Names of the stages of the papers' form, in order (for precision reports).
pub const STAGES: [&str; 5] = ["conv", "act1", "fc1", "act2", "fc2"];

/// The encoded per-image circuit of one model.
#[derive(Debug)]
pub struct Pipeline<P> {
    geom: ConvGeom,
    start_level: usize,
    scale: f64,
    conv: DiagTransform<P>,
    /// (activation, dense transform) pairs in order.
    layers: Vec<(ActStage, DiagTransform<P>)>,
    layouts: Vec<String>,
}

fn fold_affine(w: &[f64], b: &[f64], cols: usize, alpha: f64, beta: f64) -> (Vec<f64>, Vec<f64>) {
    let w2: Vec<f64> = w.iter().map(|v| v * alpha).collect();
    let b2: Vec<f64> = b
        .iter()
        .zip(w.chunks(cols.max(1)))
        .map(|(bi, row)| bi + beta * row.iter().sum::<f64>())
        .collect();
    (w2, b2)
}

impl<P: Send + Sync> Pipeline<P> {
    /// Encodes the circuit of `model` for an input encrypted at
    /// `start_level` with scale `scale`. Errors: ReLU activations
    /// ([`HeNnError::NonPolynomialActivation`]), a start level below the
    /// depth ([`HeNnError::ChainTooShort`]), layers that do not fit the slots
    /// ([`HeNnError::Layout`]), invalid weights.
    pub fn new<B>(
        bk: &B,
        model: &ChainForm,
        plan: &CircuitPlan,
        start_level: usize,
        scale: f64,
    ) -> Result<Self, HeNnError>
    where
        B: CircuitBackend<Plaintext = P> + Sync,
    {
        plan.check_model(model)?;
        let mut acts: Vec<ActStage> = plan.acts.iter().map(ActStage::from_plan).collect();
        let (depth, detail) = (plan.depth, plan.breakdown());
        if depth > start_level {
            return Err(HeNnError::ChainTooShort {
                needed: depth,
                available: start_level,
                detail,
            });
        }
        let n = bk.slots();
        let g = model.conv.geom;
        if g.in_c != 1 {
            return Err(HeNnError::Layout {
                detail: format!(
                    "the im2col layout takes one input channel, the first conv has {}",
                    g.in_c
                ),
            });
        }
        let (w_count, k_count, c_count) = (g.out_h() * g.out_w(), g.patch(), g.out_c);
        if k_count * w_count > n {
            return Err(HeNnError::Layout {
                detail: format!(
                    "im2col input needs {k_count}x{w_count} = {} slots, the ring has {n}",
                    k_count * w_count
                ),
            });
        }
        // Levels: conv at the start level, then each activation and its
        // dense layer below it.
        let l_conv = start_level;
        let mut dense_levels = Vec::with_capacity(acts.len());
        let mut l = l_conv - 1;
        for a in &mut acts {
            if matches!(a.kind, ActPlan::Square { .. }) {
                a.alpha *= bk.prime(l) / scale;
            }
            l -= a.depth;
            dense_levels.push(l);
            l = l.saturating_sub(1);
        }

        // Convolution: one band of offsets (e - c)·W, e < K, c < C.
        let conv_layout = Layout {
            unit: w_count,
            bands: vec![(-(c_count as i64 - 1), c_count + k_count - 1)],
            folds: Vec::new(),
            out_len: c_count * w_count,
            name: format!("conv band of {} offsets x{w_count}", c_count + k_count - 1),
        };
        let weight = &model.conv.weight;
        let conv_diag = |t: i64| {
            let mut v = vec![0.0; n];
            for c in 0..c_count {
                let e = c as i64 + t;
                if e >= 0 && (e as usize) < k_count {
                    let x = weight[c * k_count + e as usize];
                    v[c * w_count..(c + 1) * w_count].fill(x);
                }
            }
            v
        };
        let conv_bias: Vec<f64> = (0..c_count * w_count)
            .map(|i| model.conv.bias[i / w_count])
            .collect();
        let conv = DiagTransform::new(
            bk,
            &conv_layout,
            l_conv,
            conv_diag,
            Some(conv_bias),
            Some(scale),
        )?;

        let dense = |d: &slaf_nn::inference::Dense,
                     act: &ActStage,
                     level: usize|
         -> Result<(DiagTransform<P>, String), HeNnError> {
            let (w, b) = fold_affine(&d.weight, &d.bias, d.cols, act.alpha, act.beta);
            let (layout, rb, l) =
                dense_layout(d.rows, d.cols, n).ok_or_else(|| HeNnError::Layout {
                    detail: format!("a {}x{} dense layer does not fit {n} slots", d.rows, d.cols),
                })?;
            let (rows, cols) = (d.rows, d.cols);
            let t = DiagTransform::new(
                bk,
                &layout,
                level,
                |t| dense_diagonal(&w, rows, cols, rb, l, n, t),
                Some(b),
                Some(scale),
            )?;
            Ok((t, layout.name))
        };
        let mut layouts = vec![conv_layout.name];
        let mut layers = Vec::with_capacity(acts.len());
        for ((act, (_, d)), level) in acts.into_iter().zip(&model.pairs).zip(dense_levels) {
            let (t, name) = dense(d, &act, level)?;
            layouts.push(name);
            layers.push((act, t));
        }
        Ok(Self {
            geom: g,
            start_level,
            scale,
            conv,
            layers,
            layouts,
        })
    }

    /// Level the input is encrypted at.
    pub fn start_level(&self) -> usize {
        self.start_level
    }
    /// Level of the logits.
    pub fn end_level(&self) -> usize {
        self.layers
            .last()
            .map_or(self.conv.level(), |l| l.1.level())
            - 1
    }
    /// Encryption scale (kept by every stage).
    pub fn scale(&self) -> f64 {
        self.scale
    }
    /// Activation stage `k` (0-based), if the model has it.
    pub fn act(&self, k: usize) -> Option<&ActStage> {
        self.layers.get(k).map(|l| &l.0)
    }

    /// Number of stages (conv, then an activation and a dense layer per pair).
    pub fn stage_count(&self) -> usize {
        1 + 2 * self.layers.len()
    }

    /// The im2col slot vector of an image.
    pub fn encode_input(&self, image: &[f64]) -> Vec<f64> {
        im2col(&self.geom, image)
    }

    /// Every rotation step the circuit uses (Galois keys to generate).
    pub fn rotation_steps(&self) -> Vec<usize> {
        let mut s: BTreeSet<usize> = self.conv.rotation_steps();
        for (_, t) in &self.layers {
            s.extend(t.rotation_steps());
        }
        s.into_iter().collect()
    }

    /// One line per linear layer: layout, diagonals, baby steps, rotations.
    pub fn describe(&self) -> String {
        std::iter::once(("conv".to_string(), &self.conv))
            .chain(
                self.layers
                    .iter()
                    .enumerate()
                    .map(|(k, (_, t))| (format!("fc{}", k + 1), t)),
            )
            .zip(&self.layouts)
            .map(|((name, t), layout)| {
                format!(
                    "{name}: {layout}, {} diagonals, g={}, {} rotations, level {}",
                    t.diagonal_count(),
                    t.baby_steps(),
                    t.rotation_count(),
                    t.level()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Stage `i` ([`stage_name`]) on `ct`.
    pub fn stage<B>(&self, bk: &B, i: usize, ct: &B::Ciphertext) -> Result<B::Ciphertext, HeNnError>
    where
        B: CircuitBackend<Plaintext = P> + Sync,
        B::Ciphertext: Send + Sync,
    {
        if i == 0 {
            return Ok(self.conv.apply(bk, ct)?);
        }
        let Some((act, t)) = self.layers.get((i - 1) / 2) else {
            return Err(HeNnError::InvalidRequest {
                detail: format!("no stage {i} (the circuit has {})", self.stage_count()),
            });
        };
        Ok(if i % 2 == 1 {
            act.apply(bk, ct)?
        } else {
            t.apply(bk, ct)?
        })
    }

    /// Every stage in order.
    pub fn run<B>(&self, bk: &B, ct: &B::Ciphertext) -> Result<B::Ciphertext, HeNnError>
    where
        B: CircuitBackend<Plaintext = P> + Sync,
        B::Ciphertext: Send + Sync,
    {
        let mut cur = ct.clone();
        for i in 0..self.stage_count() {
            cur = self.stage(bk, i, &cur)?;
        }
        Ok(cur)
    }

    /// How to read stage `i`'s output: its length and the affine map
    /// `(len, alpha, beta)` from a slot to the true value (undoing a folded
    /// activation).
    pub fn stage_map(&self, i: usize) -> (usize, f64, f64) {
        let transform = |k: usize| {
            if k == 0 {
                &self.conv
            } else {
                &self.layers[(k - 1).min(self.layers.len() - 1)].1
            }
        };
        let (len, a, b) = match i {
            0 => (self.conv.out_len(), 1.0, 0.0),
            i if i % 2 == 1 => {
                let (act, _) = &self.layers[((i - 1) / 2).min(self.layers.len() - 1)];
                (transform((i - 1) / 2).out_len(), act.alpha, act.beta)
            }
            i => (transform(i / 2).out_len(), 1.0, 0.0),
        };
        (len, a, b)
    }

    /// The true values of stage `i`'s output from its decoded slots
    /// (undoing the folded affine maps of the activations).
    pub fn stage_values(&self, i: usize, slots: &[f64]) -> Vec<f64> {
        let (len, a, b) = self.stage_map(i);
        slots.iter().take(len).map(|&s| a * s + b).collect()
    }
}

/// The plaintext values after each stage ([`stage_name`]) for one image.
pub fn reference_stages(model: &ChainForm, image: &[f64]) -> Vec<Vec<f64>> {
    model.forward_stages(image)
}
