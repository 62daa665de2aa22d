//! The inference ("collapsed") form that encrypted inference mirrors:
//! `conv1' -> act1 -> dense1 -> act2 -> fc2`, where conv1' has BatchNorm2d
//! folded in and dense1 is the exact composition, in f64, of every affine
//! layer between the two activations (CNN2: pool → conv2 → pool → fc1 →
//! BN1d, Linear 3380→100; CryptoNets: pool → conv2 → pool → fc1, 3380→100;
//! CNN1: fc1, 256→64).
//!
//! Tensor layouts (all row-major f64):
//! - `conv.weight`: `(out_c, k*k)` (the input has one channel), entry
//!   `[c][ky*k + kx]`; output feature `c*oh*ow + oy*ow + ox` (NCHW flatten).
//! - `dense1.weight`: `(rows, cols)` = `(hidden, out_c*oh*ow)`, `y = W x + b`.
//! - `fc2.weight`: `(10, hidden)`.
//! - activations: [`InferenceAct::Poly`] power-basis coefficients `a0..ad`
//!   (x² is `[0, 0, 1]`; SLAF-P is expanded to `x/2 + sum c_k x^(k+1)/2`),
//!   or [`InferenceAct::Relu`] (plaintext only).

use super::NnError;
use super::layers::ConvGeom;
use super::model::{Arch, Layer, Model};
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
        let (oh, ow, k) = (g.out_h(), g.out_w(), g.k);
        let kk = g.patch();
        let mut y = vec![0f64; g.out_len()];
        for co in 0..g.out_c {
            let w = &self.weight[co * kk..(co + 1) * kk];
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = self.bias[co];
                    for ci in 0..g.in_c {
                        for ky in 0..k {
                            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                            if iy < 0 || iy >= g.in_h as isize {
                                continue;
                            }
                            for kx in 0..k {
                                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                if ix < 0 || ix >= g.in_w as isize {
                                    continue;
                                }
                                acc += w[(ci * k + ky) * k + kx]
                                    * x[(ci * g.in_h + iy as usize) * g.in_w + ix as usize];
                            }
                        }
                    }
                    y[(co * oh + oy) * ow + ox] = acc;
                }
            }
        }
        y
    }
}

/// The network as encrypted inference evaluates it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InferenceModel {
    /// Source architecture.
    pub arch: Arch,
    /// conv1 with BatchNorm2d folded in.
    pub conv: InferenceConv,
    /// First activation.
    pub act1: InferenceAct,
    /// Collapsed affine block (3380→100, 2880/... for the no-pad CNN2, 256→64 for CNN1).
    pub dense1: Dense,
    /// Second activation.
    pub act2: InferenceAct,
    /// Output layer (hidden→10).
    pub fc2: Dense,
}

impl InferenceModel {
    /// Build the inference form of a trained model (evaluation mode).
    pub fn from_model(model: &Model) -> Result<Self, NnError> {
        let bad = |d: &str| NnError::InvalidWeights {
            detail: format!("cannot build the inference form: {d}"),
        };
        let layers: Vec<&Layer> = model.layers.iter().map(|(_, l)| l).collect();
        let acts: Vec<usize> = layers
            .iter()
            .enumerate()
            .filter(|(_, l)| matches!(l, Layer::Act(_)))
            .map(|(i, _)| i)
            .collect();
        let (&a1, &a2) = match acts.as_slice() {
            [a, b] => (a, b),
            _ => return Err(bad("expected exactly two activation layers")),
        };
        let Some(Layer::Conv2d(c1)) = layers.first() else {
            return Err(bad("the first layer is not a convolution"));
        };
        if c1.geom.in_c != 1 {
            return Err(bad("conv1 must have one input channel"));
        }
        // conv1 (+ BatchNorm2d) folded.
        let g = c1.geom;
        let ohw = g.out_h() * g.out_w();
        let mut weight: Vec<f64> = c1.weight.value.iter().map(|&v| f64::from(v)).collect();
        let mut bias: Vec<f64> = c1.bias.value.iter().map(|&v| f64::from(v)).collect();
        for l in &layers[1..a1] {
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
                _ => return Err(bad("only BatchNorm may sit between conv1 and act1")),
            }
        }
        let act = |i: usize| match layers.get(i) {
            Some(Layer::Act(a)) => Ok(match a.act.as_polynomial() {
                Some(coeffs) => InferenceAct::Poly { coeffs },
                None => InferenceAct::Relu,
            }),
            _ => Err(bad("activation missing")),
        };
        // The affine block between the activations, composed in f64 by probing.
        let block = &layers[a1 + 1..a2];
        let apply = |x: Vec<f64>| -> Option<Vec<f64>> {
            block.iter().try_fold(x, |h, l| l.forward_f64(&h))
        };
        let n_in = g.out_len();
        let b0 = apply(vec![0f64; n_in]).ok_or_else(|| bad("non-affine layer in the block"))?;
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
        let dense1 = Dense {
            rows,
            cols: n_in,
            weight: w,
            bias: b0,
        };
        let Some(Layer::Linear(fc2)) = layers.get(a2 + 1) else {
            return Err(bad("act2 must be followed by the output Linear"));
        };
        if layers.len() != a2 + 2 {
            return Err(bad("fc2 must be the last layer"));
        }
        let fc2 = Dense {
            rows: fc2.out_features(),
            cols: fc2.in_features(),
            weight: fc2.weight.value.iter().map(|&v| f64::from(v)).collect(),
            bias: fc2.bias.value.iter().map(|&v| f64::from(v)).collect(),
        };
        Ok(Self {
            arch: model.arch().ok_or_else(|| {
                bad(&format!(
                    "model {:?} is not one of the four presets (the inference form of other specs is not built yet)",
                    model.spec.name
                ))
            })?,
            conv: InferenceConv {
                geom: g,
                weight,
                bias,
            },
            act1: act(a1)?,
            dense1,
            act2: act(a2)?,
            fc2,
        })
    }

    /// Plaintext f64 forward pass of one image (784 pixels in [0, 1]) to 10
    /// logits. An image or conv tensors of the wrong size are an
    /// [`NnError::InvalidInput`] (the other shapes are checked by [`Self::validate`]).
    pub fn forward(&self, image: &[f64]) -> Result<Vec<f64>, NnError> {
        let g = self.conv.geom;
        if image.len() != g.in_len() {
            return Err(NnError::InvalidInput {
                detail: format!("image has {} values, expected {}", image.len(), g.in_len()),
            });
        }
        if self.conv.weight.len() != g.out_c * g.patch() || self.conv.bias.len() != g.out_c {
            return Err(NnError::InvalidInput {
                detail: "conv tensors do not match the conv geometry".into(),
            });
        }
        let h: Vec<f64> = self
            .conv
            .apply(image)
            .into_iter()
            .map(|v| self.act1.apply(v))
            .collect();
        let h: Vec<f64> = self
            .dense1
            .apply(&h)
            .into_iter()
            .map(|v| self.act2.apply(v))
            .collect();
        Ok(self.fc2.apply(&h))
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

    /// Load the inference form from a weights file (validated).
    pub fn load(path: &std::path::Path) -> Result<Self, NnError> {
        Ok(super::weights::WeightsFile::load(path)?.inference)
    }

    /// Check shapes against the architecture and that every value is finite.
    pub fn validate(&self) -> Result<(), NnError> {
        let bad = |d: String| Err(NnError::InvalidWeights { detail: d });
        let g = self.arch.conv1();
        if self.conv.geom != g {
            return bad(format!(
                "conv geometry {:?} does not match {} ({g:?})",
                self.conv.geom,
                self.arch.name()
            ));
        }
        let checks: [(&str, usize, usize); 6] = [
            ("conv.weight", self.conv.weight.len(), g.out_c * g.patch()),
            ("conv.bias", self.conv.bias.len(), g.out_c),
            (
                "dense1.weight",
                self.dense1.weight.len(),
                self.arch.hidden() * g.out_len(),
            ),
            ("dense1.bias", self.dense1.bias.len(), self.arch.hidden()),
            ("fc2.weight", self.fc2.weight.len(), 10 * self.arch.hidden()),
            ("fc2.bias", self.fc2.bias.len(), 10),
        ];
        for (name, got, want) in checks {
            if got != want {
                return bad(format!(
                    "{name} has {got} values, {} needs {want}",
                    self.arch.name()
                ));
            }
        }
        if self.dense1.rows != self.arch.hidden() || self.dense1.cols != g.out_len() {
            return bad(format!(
                "dense1 is {}x{}, {} needs {}x{}",
                self.dense1.rows,
                self.dense1.cols,
                self.arch.name(),
                self.arch.hidden(),
                g.out_len()
            ));
        }
        if self.fc2.rows != 10 || self.fc2.cols != self.arch.hidden() {
            return bad(format!(
                "fc2 is {}x{}, {} needs 10x{}",
                self.fc2.rows,
                self.fc2.cols,
                self.arch.name(),
                self.arch.hidden()
            ));
        }
        let tensors: [(&str, &[f64]); 6] = [
            ("conv.weight", &self.conv.weight),
            ("conv.bias", &self.conv.bias),
            ("dense1.weight", &self.dense1.weight),
            ("dense1.bias", &self.dense1.bias),
            ("fc2.weight", &self.fc2.weight),
            ("fc2.bias", &self.fc2.bias),
        ];
        for (name, t) in tensors {
            if let Some(i) = t.iter().position(|v| !v.is_finite()) {
                return bad(format!("{name} has a non-finite value at index {i}"));
            }
        }
        for (name, a) in [("act1", &self.act1), ("act2", &self.act2)] {
            if let InferenceAct::Poly { coeffs } = a {
                if coeffs.is_empty() {
                    return bad(format!("{name} has no coefficients"));
                }
                if coeffs.iter().any(|v| !v.is_finite()) {
                    return bad(format!("{name} has a non-finite coefficient"));
                }
            }
        }
        Ok(())
    }
}
