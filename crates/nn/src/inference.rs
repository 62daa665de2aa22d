//! The inference form that encrypted inference mirrors: one list of
//! stages ([`InferenceModel::stages`]), each a linear map that keeps its
//! structure ([`Stage::Conv`], [`Stage::Dense`]) or a polynomial
//! activation ([`Stage::Act`]), built from any spec-built [`Model`] in
//! evaluation mode.
//!
//! Collapse rule (one rule, [`InferenceModel::from_model`]): the affine
//! layers between two activations form a run.
//! - The run before the first activation stays a convolution when it is a
//!   conv followed only by BatchNorm/flatten (BatchNorm folded in), so the
//!   engines can keep im2col / per-pixel structure.
//! - The run after the last activation is copied exactly when it is one
//!   dense layer (the output layer).
//! - Every other run is composed, in f64, into one dense matrix by probing
//!   the layers with the unit vectors (CNN2: pool → conv2 → pool → fc1 →
//!   BN1d becomes one 3380→100 dense; CNN1's fc1 is probed too).
//!
//! The papers' networks have the form `conv → act → dense → act → dense`,
//! which [`InferenceModel::paper_form`] exposes to today's engines.
//!
//! Tensor layouts (all row-major f64):
//! - conv weight `(out_c, in_c*k*k)`, entry `[c][(ci*k + ky)*k + kx]`;
//!   output feature `c*oh*ow + oy*ow + ox` (NCHW flatten);
//! - dense weight `(rows, cols)`, `y = W x + b`;
//! - activations: [`InferenceAct::Poly`] power-basis coefficients `a0..ad`
//!   (x² is `[0, 0, 1]`; SLAF-P is expanded to `x/2 + sum c_k x^(k+1)/2`),
//!   or [`InferenceAct::Relu`] (plaintext only).

use super::NnError;
use super::layers::ConvGeom;
use super::model::{Layer, Model};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// An activation of the inference form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum InferenceAct {
    /// max(x, 0): not evaluable under HE.
    Relu,
    /// Polynomial in the power basis.
    Poly {
        /// Coefficients `a0..ad`.
        coeffs: Vec<f64>,
    },
}

impl InferenceAct {
    /// Apply to one value.
    pub fn apply(&self, x: f64) -> f64 {
        match self {
            Self::Relu => x.max(0.0),
            Self::Poly { coeffs } => coeffs.iter().rev().fold(0.0, |acc, &a| acc * x + a),
        }
    }
}

/// A dense layer `y = W x + b` with `W` `(rows, cols)` row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    /// Output size.
    pub rows: usize,
    /// Input size.
    pub cols: usize,
    /// Weights, row-major `(rows, cols)`.
    pub weight: Vec<f64>,
    /// Bias `(rows)`.
    pub bias: Vec<f64>,
}

impl Dense {
    /// `W x + b`.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        self.weight
            .chunks(self.cols.max(1))
            .zip(&self.bias)
            .map(|(row, &b)| b + row.iter().zip(x).map(|(w, v)| w * v).sum::<f64>())
            .collect()
    }
}

/// The first convolution of the inference form (BatchNorm folded in).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InferenceConv {
    /// Geometry (`in_c` is 1, input 28x28).
    pub geom: ConvGeom,
    /// Weights `(out_c, k*k)` row-major.
    pub weight: Vec<f64>,
    /// Bias `(out_c)`.
    pub bias: Vec<f64>,
}

impl InferenceConv {
    /// Convolve one image (784 pixels) to `out_c*oh*ow` features (NCHW).
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        let g = self.geom;
        let (oh, ow) = (g.out_h(), g.out_w());
        let kk = g.patch();
        let mut y = vec![0f64; g.out_len()];
        for co in 0..g.out_c {
            let w = &self.weight[co * kk..(co + 1) * kk];
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = self.bias[co];
                    for t in g.window(oy, ox) {
                        for j in 0..t.len {
                            acc += w[t.w + j] * x[t.x + j];
                        }
                    }
                    y[(co * oh + oy) * ow + ox] = acc;
                }
            }
        }
        y
    }
}

/// One stage of the inference form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "kebab-case")]
pub enum Stage {
    /// A convolution (BatchNorm folded in).
    Conv(InferenceConv),
    /// A dense map (an output layer, or a collapsed run of affine layers).
    Dense(Dense),
    /// An activation.
    Act(InferenceAct),
}

impl Stage {
    /// `conv`, `dense` or `act`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Conv(_) => "conv",
            Self::Dense(_) => "dense",
            Self::Act(_) => "act",
        }
    }
}

/// The network as encrypted inference evaluates it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredInference")]
pub struct InferenceModel {
    /// Name of the spec it comes from.
    pub name: String,
    /// Input shape `[channels, height, width]`.
    pub input: [usize; 3],
    /// Stages in order.
    pub stages: Vec<Stage>,
}

/// The papers' form `conv → act1 → dense1 → act2 → fc2`, the shape today's
/// engines evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct PaperForm {
    /// First convolution (BatchNorm folded in).
    pub conv: InferenceConv,
    /// First activation.
    pub act1: InferenceAct,
    /// Collapsed affine block between the activations.
    pub dense1: Dense,
    /// Second activation.
    pub act2: InferenceAct,
    /// Output layer.
    pub fc2: Dense,
}

/// A convolution followed by one or more (activation, dense) pairs:
/// `conv → act → dense → act → dense …`, the shape the batched engine
/// evaluates (the papers' form has two pairs).
#[derive(Clone, Debug, PartialEq)]
pub struct ChainForm {
    /// First convolution (BatchNorm folded in).
    pub conv: InferenceConv,
    /// The (activation, dense map) pairs in order; the last dense gives the logits.
    pub pairs: Vec<(InferenceAct, Dense)>,
}

/// How weights files store the inference form: version 2 (stages), or
/// version 1 (the papers' form with an `arch` header).
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredInference {
    Stages {
        name: String,
        input: [usize; 3],
        stages: Vec<Stage>,
    },
    Paper {
        arch: super::model::Arch,
        conv: Box<InferenceConv>,
        act1: InferenceAct,
        dense1: Box<Dense>,
        act2: InferenceAct,
        fc2: Box<Dense>,
    },
}

impl From<StoredInference> for InferenceModel {
    fn from(s: StoredInference) -> Self {
        match s {
            StoredInference::Stages {
                name,
                input,
                stages,
            } => Self {
                name,
                input,
                stages,
            },
            StoredInference::Paper {
                arch,
                conv,
                act1,
                dense1,
                act2,
                fc2,
            } => PaperForm {
                conv: *conv,
                act1,
                dense1: *dense1,
                act2,
                fc2: *fc2,
            }
            .into_model(arch.name()),
        }
    }
}

impl ChainForm {
    /// The plaintext value after every stage (conv, act1, fc1, act2, …; the
    /// last is the logits), for one image: the reference both engines'
    /// precision reports compare against.
    pub fn forward_stages(&self, image: &[f64]) -> Vec<Vec<f64>> {
        let mut out = vec![self.conv.apply(image)];
        for (act, d) in &self.pairs {
            let prev = out.last().map_or(&[][..], Vec::as_slice);
            let a: Vec<f64> = prev.iter().map(|&v| act.apply(v)).collect();
            let y = d.apply(&a);
            out.push(a);
            out.push(y);
        }
        out
    }

    /// Check the form's tensors ([`InferenceModel::validate`] of its stage list).
    pub fn validate(&self) -> Result<(), NnError> {
        self.clone().into_model("chain form").validate()
    }

    /// The stage list of this form, named `name`.
    pub fn into_model(self, name: &str) -> InferenceModel {
        let g = self.conv.geom;
        let mut stages = vec![Stage::Conv(self.conv)];
        for (a, d) in self.pairs {
            stages.push(Stage::Act(a));
            stages.push(Stage::Dense(d));
        }
        InferenceModel {
            name: name.to_string(),
            input: [g.in_c, g.in_h, g.in_w],
            stages,
        }
    }
}

impl From<PaperForm> for ChainForm {
    fn from(p: PaperForm) -> Self {
        Self {
            conv: p.conv,
            pairs: vec![(p.act1, p.dense1), (p.act2, p.fc2)],
        }
    }
}

impl PaperForm {
    /// Check the form's tensors ([`InferenceModel::validate`] of its stage list).
    pub fn validate(&self) -> Result<(), NnError> {
        self.clone().into_model("paper form").validate()
    }

    /// The stage list of this form, named `name` (input: the conv's).
    pub fn into_model(self, name: &str) -> InferenceModel {
        let g = self.conv.geom;
        InferenceModel {
            name: name.to_string(),
            input: [g.in_c, g.in_h, g.in_w],
            stages: vec![
                Stage::Conv(self.conv),
                Stage::Act(self.act1),
                Stage::Dense(self.dense1),
                Stage::Act(self.act2),
                Stage::Dense(self.fc2),
            ],
        }
    }
}

/// Compose a run of affine layers into one dense map, in f64, by probing
/// with the zero vector (bias) and the unit vectors (columns).
fn probe(block: &[&Layer], n_in: usize) -> Option<Dense> {
    let apply =
        |x: Vec<f64>| -> Option<Vec<f64>> { block.iter().try_fold(x, |h, l| l.forward_f64(&h)) };
    let b0 = apply(vec![0f64; n_in])?;
    let cols: Vec<Vec<f64>> = (0..n_in)
        .into_par_iter()
        .map(|j| {
            let mut e = vec![0f64; n_in];
            e[j] = 1.0;
            apply(e)
                .unwrap_or_default()
                .iter()
                .zip(&b0)
                .map(|(y, b)| y - b)
                .collect()
        })
        .collect();
    let rows = b0.len();
    let mut w = vec![0f64; rows * n_in];
    for (j, col) in cols.iter().enumerate() {
        for (r, v) in col.iter().enumerate() {
            w[r * n_in + j] = *v;
        }
    }
    Some(Dense {
        rows,
        cols: n_in,
        weight: w,
        bias: b0,
    })
}

/// A conv followed only by BatchNorm over its channels and flatten, with the BatchNorm folded in.
fn folded_conv(block: &[&Layer]) -> Option<InferenceConv> {
    let Some(Layer::Conv2d(c)) = block.first() else {
        return None;
    };
    let g = c.geom;
    let ohw = g.out_h() * g.out_w();
    let mut weight: Vec<f64> = c.weight.value.iter().map(|&v| f64::from(v)).collect();
    let mut bias: Vec<f64> = c.bias.value.iter().map(|&v| f64::from(v)).collect();
    for l in &block[1..] {
        match l {
            Layer::BatchNorm(bn) if bn.channels == g.out_c && bn.spatial == ohw => {
                let (s, t) = bn.eval_affine();
                for c in 0..g.out_c {
                    for w in &mut weight[c * g.patch()..(c + 1) * g.patch()] {
                        *w *= s[c];
                    }
                    bias[c] = s[c] * bias[c] + t[c];
                }
            }
            Layer::Flatten => {}
            _ => return None,
        }
    }
    Some(InferenceConv {
        geom: g,
        weight,
        bias,
    })
}

impl InferenceModel {
    /// Build the inference form of a trained model (evaluation mode) with
    /// the collapse rule of the module docs.
    pub fn from_model(model: &Model) -> Result<Self, NnError> {
        let layers: Vec<&Layer> = model.layers.iter().map(|(_, l)| l).collect();
        let shapes = model.spec.shapes()?;
        let mut stages = Vec::new();
        let mut start = 0;
        let acts: Vec<usize> = layers
            .iter()
            .enumerate()
            .filter(|(_, l)| matches!(l, Layer::Act(_)))
            .map(|(i, _)| i)
            .collect();
        let mut bounds: Vec<usize> = acts.clone();
        bounds.push(layers.len());
        for (k, &end) in bounds.iter().enumerate() {
            let block = &layers[start..end];
            let affine = block.iter().any(|l| !matches!(l, Layer::Flatten));
            if affine {
                let n_in = shapes[start].input.len();
                let last = k == acts.len();
                let lone_dense: Vec<&&Layer> = block
                    .iter()
                    .filter(|l| !matches!(l, Layer::Flatten))
                    .collect();
                let conv = if k == 0 { folded_conv(block) } else { None };
                let stage = match (conv, lone_dense.as_slice()) {
                    (Some(c), _) => Some(Stage::Conv(c)),
                    (None, [Layer::Linear(fc)]) if last => Some(Stage::Dense(Dense {
                        rows: fc.out_features(),
                        cols: fc.in_features(),
                        weight: fc.weight.value.iter().map(|&v| f64::from(v)).collect(),
                        bias: fc.bias.value.iter().map(|&v| f64::from(v)).collect(),
                    })),
                    _ => probe(block, n_in).map(Stage::Dense),
                };
                stages.push(stage.ok_or_else(|| NnError::InvalidWeights {
                    detail: format!(
                        "cannot build the inference form of {}: layers {start}..{end} are not affine",
                        model.spec.name
                    ),
                })?);
            }
            if let Some(Layer::Act(a)) = layers.get(end) {
                stages.push(Stage::Act(match a.act.as_polynomial() {
                    Some(coeffs) => InferenceAct::Poly { coeffs },
                    None => InferenceAct::Relu,
                }));
            }
            start = end + 1;
        }
        Ok(Self {
            name: model.spec.name.clone(),
            input: model.spec.input,
            stages,
        })
    }

    /// The papers' form `conv → act → dense → act → dense`, or an error
    /// naming the stages this model has instead.
    pub fn paper_form(&self) -> Result<PaperForm, NnError> {
        match self.stages.as_slice() {
            [
                Stage::Conv(conv),
                Stage::Act(act1),
                Stage::Dense(dense1),
                Stage::Act(act2),
                Stage::Dense(fc2),
            ] => Ok(PaperForm {
                conv: conv.clone(),
                act1: act1.clone(),
                dense1: dense1.clone(),
                act2: act2.clone(),
                fc2: fc2.clone(),
            }),
            other => Err(NnError::InvalidInput {
                detail: format!(
                    "model {} has the stages {}; the encrypted engines evaluate conv → act → dense → act → dense so far (issue #16)",
                    self.name,
                    other
                        .iter()
                        .map(Stage::kind)
                        .collect::<Vec<_>>()
                        .join(" → ")
                ),
            }),
        }
    }

    /// The form `conv → (act → dense)+`, or an error naming the stages
    /// this model has instead.
    pub fn chain_form(&self) -> Result<ChainForm, NnError> {
        let unsupported = || NnError::InvalidInput {
            detail: format!(
                "model {} has the stages {}; the encrypted engines evaluate conv → (act → dense) repeated so far (issue #16)",
                self.name,
                self.stages
                    .iter()
                    .map(Stage::kind)
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
        };
        let Some((Stage::Conv(conv), rest)) = self.stages.split_first() else {
            return Err(unsupported());
        };
        if rest.is_empty() || rest.len() % 2 != 0 {
            return Err(unsupported());
        }
        let pairs = rest
            .chunks(2)
            .map(|p| match p {
                [Stage::Act(a), Stage::Dense(d)] => Ok((a.clone(), d.clone())),
                _ => Err(unsupported()),
            })
            .collect::<Result<_, _>>()?;
        Ok(ChainForm {
            conv: conv.clone(),
            pairs,
        })
    }

    /// The activations in order.
    pub fn acts(&self) -> Vec<&InferenceAct> {
        self.stages
            .iter()
            .filter_map(|s| match s {
                Stage::Act(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    /// Input values per sample.
    pub fn input_len(&self) -> usize {
        self.input.iter().product()
    }

    /// Plaintext f64 forward pass of one sample (pixels in [0, 1]) to the
    /// logits: the one reference the encrypted runs are compared with. A
    /// sample or a stage of the wrong size is an [`NnError::InvalidInput`].
    pub fn forward(&self, image: &[f64]) -> Result<Vec<f64>, NnError> {
        if image.len() != self.input_len() {
            return Err(NnError::InvalidInput {
                detail: format!(
                    "image has {} values, {} expects {}",
                    image.len(),
                    self.name,
                    self.input_len()
                ),
            });
        }
        let mut h = image.to_vec();
        for (i, s) in self.stages.iter().enumerate() {
            let want = match s {
                Stage::Conv(c) => Some(c.geom.in_len()),
                Stage::Dense(d) => Some(d.cols),
                Stage::Act(_) => None,
            };
            if let Some(n) = want
                && n != h.len()
            {
                return Err(NnError::InvalidInput {
                    detail: format!(
                        "stage {i} ({}) takes {n} values, the previous stage gives {}",
                        s.kind(),
                        h.len()
                    ),
                });
            }
            h = match s {
                Stage::Conv(c) => c.apply(&h),
                Stage::Dense(d) => d.apply(&h),
                Stage::Act(a) => h.into_iter().map(|v| a.apply(v)).collect(),
            };
        }
        Ok(h)
    }

    /// Plaintext accuracy of the inference form on `split` (images in parallel).
    pub fn evaluate(&self, split: &crate::data::Split) -> super::train::Accuracy {
        let preds: Vec<usize> = (0..split.len())
            .into_par_iter()
            .map(|i| {
                let img: Vec<f64> = split.images.row(i).iter().map(|&v| f64::from(v)).collect();
                match self.forward(&img) {
                    Ok(logits) => super::optim::argmax(logits.iter().map(|&v| v as f32)),
                    Err(_) => usize::MAX,
                }
            })
            .collect();
        let mut correct = [0usize; 10];
        let mut count = [0usize; 10];
        for (p, &y) in preds.iter().zip(&split.labels) {
            let y = usize::from(y);
            count[y] += 1;
            correct[y] += usize::from(*p == y);
        }
        let c: usize = correct.iter().sum();
        let total: usize = count.iter().sum();
        super::train::Accuracy {
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

    /// Check that the stages chain (each linear stage takes what the one
    /// before gives, the last gives 10), their tensors have the sizes their
    /// shapes need, and every value is finite.
    pub fn validate(&self) -> Result<(), NnError> {
        let bad = |d: String| Err(NnError::InvalidWeights { detail: d });
        let mut len = self.input_len();
        for (i, s) in self.stages.iter().enumerate() {
            type Tensors<'a> = Vec<(&'a str, &'a [f64], usize)>;
            let (tensors, n_in, n_out): (Tensors, usize, usize) = match s {
                Stage::Conv(c) => {
                    let g = c.geom;
                    (
                        vec![
                            ("weight", &c.weight, g.out_c * g.patch()),
                            ("bias", &c.bias, g.out_c),
                        ],
                        g.in_len(),
                        g.out_len(),
                    )
                }
                Stage::Dense(d) => (
                    vec![
                        ("weight", &d.weight, d.rows * d.cols),
                        ("bias", &d.bias, d.rows),
                    ],
                    d.cols,
                    d.rows,
                ),
                Stage::Act(InferenceAct::Relu) => (Vec::new(), len, len),
                Stage::Act(InferenceAct::Poly { coeffs }) => {
                    if coeffs.is_empty() {
                        return bad(format!("stage {i} (act) has no coefficients"));
                    }
                    (vec![("coeffs", coeffs, coeffs.len())], len, len)
                }
            };
            if n_in != len {
                return bad(format!(
                    "{}: stage {i} ({}) takes {n_in} values, the previous stage gives {len}",
                    self.name,
                    s.kind()
                ));
            }
            for (name, t, want) in tensors {
                if t.len() != want {
                    return bad(format!(
                        "{}: stage {i} ({}) {name} has {} values, its shape needs {want}",
                        self.name,
                        s.kind(),
                        t.len()
                    ));
                }
                if let Some(j) = t.iter().position(|v| !v.is_finite()) {
                    return bad(format!(
                        "{}: stage {i} ({}) {name} has a non-finite value at index {j}",
                        self.name,
                        s.kind()
                    ));
                }
            }
            len = n_out;
        }
        if len != super::spec::CLASSES {
            return bad(format!(
                "{}: the stages end with {len} values, not {}",
                self.name,
                super::spec::CLASSES
            ));
        }
        Ok(())
    }
}
