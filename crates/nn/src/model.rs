//! The paper's networks (SPEC.md §3) as sequences of layers: CNN1, CNN2
//! (with or without conv1 padding) and the CryptoNets baseline, each with
//! any activation.

use super::NnError;
use super::act::{ActLayer, Activation, MaxAbs, SignInit, Slaf, SlafP};
use super::layers::{
    AvgPool2d, BatchNorm, Conv2d, ConvGeom, Linear, Mode, ParamMut, conv2d, linear,
};
use super::spec::{ActKind, LayerSpec, ModelSpec, Shape};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How BatchNorm behaves while SLAF-R retrains the activation coefficients
/// of a frozen network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum FrozenBatchNorm {
    /// Normalise with batch statistics and keep updating the running
    /// statistics, as a PyTorch model in train mode with frozen parameters
    /// does (the default; how the reference of SPEC.md §4 was measured):
    /// BatchNorm1d re-centres the features the new activations produce.
    #[default]
    #[cfg_attr(feature = "clap", value(name = "batch"))]
    BatchStats,
    /// Normalise with the running statistics of the ReLU phase and leave
    /// them untouched: every tensor outside the activations stays
    /// bit-identical.
    #[cfg_attr(feature = "clap", value(name = "running"))]
    RunningStats,
}

impl FrozenBatchNorm {
    /// The name used on the command line (`batch` / `running`).
    pub fn name(self) -> &'static str {
        match self {
            Self::BatchStats => "batch",
            Self::RunningStats => "running",
        }
    }

    /// Parse a [`FrozenBatchNorm::name`] (`batch` or `running`).
    pub fn parse(s: &str) -> Result<Self, NnError> {
        [Self::BatchStats, Self::RunningStats]
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| NnError::UnknownName {
                what: "SLAF-R BatchNorm mode (batch|running)",
                name: s.into(),
            })
    }
}

/// Which network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// Conv 1→4 k7 s3, act, Linear 256→64, act, Linear 64→10.
    Cnn1,
    /// Conv 1→20 k5 s2 p1, BN, act, pool, conv 20→50, pool, Linear 200→100, BN, act, Linear 100→10.
    Cnn2,
    /// CNN2 without conv1 padding (Linear 50→100).
    Cnn2Nopad,
    /// CryptoNets baseline as coded for P1.
    Cryptonets,
}

impl Arch {
    /// Command-line / file name: `cnn1`, `cnn2`, `cnn2-nopad`, `cryptonets`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cnn1 => "cnn1",
            Self::Cnn2 => "cnn2",
            Self::Cnn2Nopad => "cnn2-nopad",
            Self::Cryptonets => "cryptonets",
        }
    }
    /// Parse a name as written by [`Self::name`].
    pub fn parse(s: &str) -> Result<Self, NnError> {
        Ok(match s {
            "cnn1" => Self::Cnn1,
            "cnn2" => Self::Cnn2,
            "cnn2-nopad" => Self::Cnn2Nopad,
            "cryptonets" => Self::Cryptonets,
            other => {
                return Err(NnError::UnknownName {
                    what: "model",
                    name: other.to_string(),
                });
            }
        })
    }
    /// The first convolution's geometry.
    pub fn conv1(self) -> ConvGeom {
        let (out_c, k, stride, pad) = match self {
            Self::Cnn1 => (4, 7, 3, 0),
            Self::Cnn2 | Self::Cryptonets => (20, 5, 2, 1),
            Self::Cnn2Nopad => (20, 5, 2, 0),
        };
        ConvGeom {
            in_c: 1,
            in_h: 28,
            in_w: 28,
            out_c,
            k,
            stride,
            pad,
        }
    }
    /// Width of the hidden dense layer (64 for CNN1, 100 otherwise).
    pub fn hidden(self) -> usize {
        if self == Self::Cnn1 { 64 } else { 100 }
    }
    /// Every preset.
    pub const ALL: [Self; 4] = [Self::Cnn1, Self::Cnn2, Self::Cnn2Nopad, Self::Cryptonets];
    /// The preset's spec (`models/<name>.toml`).
    pub fn spec(self) -> ModelSpec {
        match ModelSpec::preset(self.name()) {
            Ok(s) => s,
            // The presets are compiled in and checked by tests/nn_spec.rs.
            Err(e) => unreachable!("built-in preset {} is invalid: {e}", self.name()),
        }
    }
}

/// How the activation layers of a new model are built.
#[derive(Clone, Debug, PartialEq)]
pub enum ActSpec {
    /// ReLU.
    Relu,
    /// x².
    Square,
    /// SLAF of `degree`, coefficients zero or `init` (`a0..ad`).
    Slaf {
        /// Polynomial degree.
        degree: usize,
        /// Initial coefficients (`None`: zeros).
        init: Option<Vec<f32>>,
    },
    /// SLAF-P with the sign approximation `init` on `[-r, r]`; `trainable` s or fixed.
    SlafP {
        /// Fit range.
        r: f64,
        /// Whether s is learned.
        trainable: bool,
        /// Which sign approximation initialises s.
        init: SignInit,
    },
}

impl ActSpec {
    /// The activation of a layer whose spec says `kind` (and `degree`),
    /// where `self` is the training variant's: a SLAF override takes the
    /// variant's initial coefficients when their degree matches, else zeros.
    fn overridden(&self, kind: Option<ActKind>, degree: Option<usize>, slafp_range: f64) -> Self {
        match (kind, self) {
            (None, Self::Slaf { degree: d, init }) => match degree {
                Some(g) if g != *d => Self::Slaf {
                    degree: g,
                    init: None,
                },
                _ => Self::Slaf {
                    degree: *d,
                    init: init.clone(),
                },
            },
            (None, other) => other.clone(),
            (Some(ActKind::Relu), _) => Self::Relu,
            (Some(ActKind::X2), _) => Self::Square,
            (Some(ActKind::Slaf), Self::Slaf { degree: d, init })
                if degree.is_none_or(|g| g == *d) =>
            {
                Self::Slaf {
                    degree: *d,
                    init: init.clone(),
                }
            }
            (Some(ActKind::Slaf), _) => Self::Slaf {
                degree: degree.unwrap_or(3),
                init: None,
            },
            (Some(ActKind::SlafP), Self::SlafP { .. }) => self.clone(),
            (Some(ActKind::SlafP), _) => Self::SlafP {
                r: slafp_range,
                trainable: false,
                init: SignInit::default(),
            },
        }
    }

    fn build(&self) -> Activation {
        match self {
            Self::Relu => Activation::Relu,
            Self::Square => Activation::Square,
            Self::Slaf { degree, init } => Activation::Slaf(match init {
                Some(c) => Slaf::with_coeffs(c.clone()),
                None => Slaf::zeros(*degree),
            }),
            Self::SlafP { r, trainable, init } => {
                Activation::SlafP(SlafP::with_init(*r, *init, *trainable))
            }
        }
    }
}

/// One layer of a [`Model`].
#[derive(Clone, Debug)]
pub enum Layer {
    /// Convolution.
    Conv2d(Conv2d),
    /// Fully connected.
    Linear(Linear),
    /// Batch normalisation (2-D or 1-D).
    BatchNorm(BatchNorm),
    /// Average pooling.
    AvgPool2d(AvgPool2d),
    /// Flatten (identity in the `(batch, features)` layout).
    Flatten,
    /// Activation.
    Act(ActLayer),
}

impl Layer {
    /// Forward pass of a batch.
    pub fn forward(&mut self, x: &Array2<f32>, mode: Mode) -> Array2<f32> {
        match self {
            Self::Conv2d(l) => l.forward(x, mode),
            Self::Linear(l) => l.forward(x, mode),
            Self::BatchNorm(l) => l.forward(x, mode),
            Self::AvgPool2d(l) => l.forward(x),
            Self::Flatten => x.clone(),
            Self::Act(l) => l.forward(x, mode),
        }
    }
    /// Backward pass.
    pub fn backward(&mut self, dy: &Array2<f32>) -> Array2<f32> {
        match self {
            Self::Conv2d(l) => l.backward(dy),
            Self::Linear(l) => l.backward(dy),
            Self::BatchNorm(l) => l.backward(dy),
            Self::AvgPool2d(l) => l.backward(dy),
            Self::Flatten => dy.clone(),
            Self::Act(l) => l.backward(dy),
        }
    }
    /// Flat parameter views, names prefixed by the layer name.
    pub fn params_mut(&mut self, name: &str) -> Vec<ParamMut<'_>> {
        match self {
            Self::Conv2d(l) => vec![
                l.weight.as_mut(format!("{name}.weight")),
                l.bias.as_mut(format!("{name}.bias")),
            ],
            Self::Linear(l) => vec![
                l.weight.as_mut(format!("{name}.weight")),
                l.bias.as_mut(format!("{name}.bias")),
            ],
            Self::BatchNorm(l) => vec![
                l.weight.as_mut(format!("{name}.weight")),
                l.bias.as_mut(format!("{name}.bias")),
            ],
            Self::AvgPool2d(_) | Self::Flatten => Vec::new(),
            Self::Act(l) => l.params_mut(name),
        }
    }

    /// Evaluation-mode forward pass of one sample in f64, for the affine
    /// layers (`None` for activations).
    pub fn forward_f64(&self, x: &[f64]) -> Option<Vec<f64>> {
        Some(match self {
            Self::Conv2d(l) => conv_f64(l, x),
            Self::Linear(l) => {
                let w = &l.weight.value;
                (0..w.nrows())
                    .map(|o| {
                        f64::from(l.bias.value[o])
                            + w.row(o)
                                .iter()
                                .zip(x)
                                .map(|(&a, &b)| f64::from(a) * b)
                                .sum::<f64>()
                    })
                    .collect()
            }
            Self::BatchNorm(l) => {
                let (s, t) = l.eval_affine();
                x.iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let ch = i / l.spatial;
                        s[ch] * v + t[ch]
                    })
                    .collect()
            }
            Self::AvgPool2d(l) => l.forward_f64(x),
            Self::Flatten => x.to_vec(),
            Self::Act(_) => return None,
        })
    }
}

/// Direct (non-im2col) convolution of one f64 sample, evaluation mode.
pub(crate) fn conv_f64(l: &Conv2d, x: &[f64]) -> Vec<f64> {
    let g = l.geom;
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut y = vec![0f64; g.out_len()];
    for co in 0..g.out_c {
        let w = l.weight.value.row(co);
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = f64::from(l.bias.value[co]);
                for t in g.window(oy, ox) {
                    for j in 0..t.len {
                        acc += f64::from(w[t.w + j]) * x[t.x + j];
                    }
                }
                y[(co * oh + oy) * ow + ox] = acc;
            }
        }
    }
    y
}

/// A named tensor of a model's state (parameters and BatchNorm buffers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedTensor {
    /// Name, e.g. `conv1.weight`, `bn1.running_var`.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

/// A network: named layers applied in order to `(batch, features)` images.
#[derive(Clone, Debug)]
pub struct Model {
    /// The spec it was built from.
    pub spec: ModelSpec,
    /// Layers with their names.
    pub layers: Vec<(String, Layer)>,
}

impl Model {
    /// Build the preset `arch` ([`Self::from_spec`] of [`Arch::spec`]).
    pub fn new(arch: Arch, act: &ActSpec, seed: u64, pytorch_conv_init: bool) -> Self {
        match Self::from_spec(&arch.spec(), act, seed, pytorch_conv_init) {
            Ok(m) => m,
            // Presets pass ModelSpec::shapes (tests/nn_spec.rs).
            Err(e) => unreachable!("preset {} does not build: {e}", arch.name()),
        }
    }

    /// Build `spec` with activations from `act` (a layer's own `act`
    /// overrides it), weights initialised in layer order from ChaCha8
    /// seeded with `seed`: Kaiming-normal conv weights (or PyTorch's default
    /// uniform when `pytorch_conv_init`), PyTorch-default uniform for biases
    /// and linear layers, BatchNorm gamma 1 / beta 0.
    pub fn from_spec(
        spec: &ModelSpec,
        act: &ActSpec,
        seed: u64,
        pytorch_conv_init: bool,
    ) -> Result<Self, NnError> {
        let shapes = spec.shapes()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut layers: Vec<(String, Layer)> = Vec::with_capacity(shapes.len());
        for l in shapes {
            let spatial = |s: Shape| match s {
                Shape::Spatial { c, h, w } => (c, h, w),
                Shape::Flat(n) => (n, 1, 1),
            };
            let (c, h, w) = spatial(l.input);
            let layer = match l.layer {
                LayerSpec::Conv2d {
                    out_channels,
                    kernel,
                    stride,
                    padding,
                    ..
                } => {
                    let geom = ConvGeom {
                        in_c: c,
                        in_h: h,
                        in_w: w,
                        out_c: out_channels,
                        k: kernel,
                        stride,
                        pad: padding,
                    };
                    let mut conv = conv2d(geom, pytorch_conv_init, &mut rng);
                    conv.input_grad = l.index > 0;
                    Layer::Conv2d(conv)
                }
                LayerSpec::Avgpool {
                    kernel,
                    stride,
                    padding,
                    ..
                } => Layer::AvgPool2d(AvgPool2d {
                    c,
                    h,
                    w,
                    k: kernel,
                    stride: stride.unwrap_or(kernel),
                    pad: padding,
                }),
                LayerSpec::Batchnorm { .. } => Layer::BatchNorm(BatchNorm::new(c, h * w)),
                LayerSpec::Flatten { .. } => Layer::Flatten,
                LayerSpec::Dense { out, .. } => Layer::Linear(linear(l.input.len(), out, &mut rng)),
                LayerSpec::Act {
                    act: kind, degree, ..
                } => Layer::Act(ActLayer::new(
                    act.overridden(kind, degree, spec.slafp_range()).build(),
                )),
            };
            layers.push((l.name, layer));
        }
        Ok(Self {
            spec: spec.clone(),
            layers,
        })
    }

    /// The preset this model is, if its spec is one of [`Arch::ALL`]'s.
    pub fn arch(&self) -> Option<Arch> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == self.spec.name && a.spec() == self.spec)
    }

    /// Forward pass of images `(n, 784)` to logits `(n, 10)`.
    pub fn forward(&mut self, x: &Array2<f32>, mode: Mode) -> Array2<f32> {
        let mut h = x.clone();
        for (_, l) in &mut self.layers {
            h = l.forward(&h, mode);
        }
        h
    }

    /// Backward pass from the logit gradient; fills every parameter's gradient.
    pub fn backward(&mut self, dlogits: &Array2<f32>) {
        let mut d = dlogits.clone();
        for (_, l) in self.layers.iter_mut().rev() {
            d = l.backward(&d);
        }
    }

    /// All parameters in a fixed order (frozen ones included, flagged).
    pub fn params_mut(&mut self) -> Vec<ParamMut<'_>> {
        self.layers
            .iter_mut()
            .flat_map(|(n, l)| l.params_mut(n))
            .collect()
    }

    /// The activation layers in order.
    pub fn act_layers(&self) -> Vec<&ActLayer> {
        self.layers
            .iter()
            .filter_map(|(_, l)| match l {
                Layer::Act(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    /// Max |input| per activation layer.
    pub fn max_abs_input(&self) -> Vec<MaxAbs> {
        self.act_layers().iter().map(|a| a.max_abs).collect()
    }

    /// Replace every ReLU by a SLAF of `degree` (zero coefficients), keeping
    /// the max |input| record (SLAF-R).
    pub fn swap_relu_for_slaf(&mut self, degree: usize) {
        self.swap_relu(degree, false);
    }

    /// Replace every ReLU by a SLAF of `degree` initialised with the
    /// least-squares fit of ReLU on `[-m, m]`, `m` the layer's max |input|
    /// seen in training ([`super::act::relu_fit_ls`]).
    pub fn swap_relu_for_fitted_slaf(&mut self, degree: usize) {
        self.swap_relu(degree, true);
    }

    fn swap_relu(&mut self, degree: usize, fitted: bool) {
        for (_, l) in &mut self.layers {
            if let Layer::Act(a) = l
                && matches!(a.act, Activation::Relu)
            {
                a.act = Activation::Slaf(if fitted {
                    let m = f64::from(a.max_abs.train);
                    let c = super::act::relu_fit_ls(m, degree);
                    Slaf::with_coeffs(c.iter().map(|&v| v as f32).collect())
                } else {
                    Slaf::zeros(degree)
                });
            }
        }
    }

    /// Freeze every parameter except activation coefficients. With
    /// [`FrozenBatchNorm::BatchStats`] BatchNorm keeps normalising with batch
    /// statistics and updating its running statistics (PyTorch's behaviour
    /// for `requires_grad = False` in train mode); with
    /// [`FrozenBatchNorm::RunningStats`] it uses and keeps its running
    /// statistics, so the whole network outside the activations stays
    /// bit-identical.
    pub fn freeze_non_activation(&mut self, bn: FrozenBatchNorm) {
        for (_, l) in &mut self.layers {
            match l {
                Layer::Conv2d(c) => {
                    c.weight.frozen = true;
                    c.bias.frozen = true;
                }
                Layer::Linear(c) => {
                    c.weight.frozen = true;
                    c.bias.frozen = true;
                }
                Layer::BatchNorm(b) => {
                    b.weight.frozen = true;
                    b.bias.frozen = true;
                    b.use_running_in_train = bn == FrozenBatchNorm::RunningStats;
                }
                _ => {}
            }
        }
    }

    /// Every parameter and buffer as named tensors (a "state dict").
    pub fn state(&self) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        let t2 = |name: String, a: &Array2<f32>| NamedTensor {
            name,
            shape: a.shape().to_vec(),
            values: a.iter().copied().collect(),
        };
        let t1 = |name: String, a: &ndarray::Array1<f32>| NamedTensor {
            name,
            shape: vec![a.len()],
            values: a.to_vec(),
        };
        for (n, l) in &self.layers {
            match l {
                Layer::Conv2d(c) => {
                    out.push(t2(format!("{n}.weight"), &c.weight.value));
                    out.push(t1(format!("{n}.bias"), &c.bias.value));
                }
                Layer::Linear(c) => {
                    out.push(t2(format!("{n}.weight"), &c.weight.value));
                    out.push(t1(format!("{n}.bias"), &c.bias.value));
                }
                Layer::BatchNorm(b) => {
                    out.push(t1(format!("{n}.weight"), &b.weight.value));
                    out.push(t1(format!("{n}.bias"), &b.bias.value));
                    out.push(t1(format!("{n}.running_mean"), &b.running_mean));
                    out.push(t1(format!("{n}.running_var"), &b.running_var));
                }
                Layer::Act(a) => {
                    let mut a = a.clone();
                    if let Some(p) = a.act.param() {
                        out.push(t1(format!("{n}.coeffs"), &p.value));
                    }
                }
                Layer::AvgPool2d(_) | Layer::Flatten => {}
            }
        }
        out
    }

    /// Load a state produced by [`Self::state`]: every tensor must exist with
    /// the same name and shape, and all values must be finite.
    pub fn load_state(&mut self, state: &[NamedTensor]) -> Result<(), NnError> {
        let mine = self.state();
        if mine.len() != state.len() {
            return Err(NnError::InvalidWeights {
                detail: format!(
                    "state has {} tensors, the {} model has {}",
                    state.len(),
                    self.spec.name,
                    mine.len()
                ),
            });
        }
        for (m, s) in mine.iter().zip(state) {
            if m.name != s.name || m.shape != s.shape || s.values.len() != m.values.len() {
                return Err(NnError::InvalidWeights {
                    detail: format!(
                        "tensor {} {:?} ({} values) does not match expected {} {:?}",
                        s.name,
                        s.shape,
                        s.values.len(),
                        m.name,
                        m.shape
                    ),
                });
            }
            if let Some(i) = s.values.iter().position(|v| !v.is_finite()) {
                return Err(NnError::InvalidWeights {
                    detail: format!("tensor {} has a non-finite value at index {i}", s.name),
                });
            }
        }
        let mut it = state.iter();
        let mut next = || it.next().map(|t| t.values.clone()).unwrap_or_default();
        let arr2 = |a: &mut Array2<f32>, v: Vec<f32>| {
            for (d, s) in a.iter_mut().zip(v) {
                *d = s;
            }
        };
        let arr1 = |a: &mut ndarray::Array1<f32>, v: Vec<f32>| {
            for (d, s) in a.iter_mut().zip(v) {
                *d = s;
            }
        };
        for (_, l) in &mut self.layers {
            match l {
                Layer::Conv2d(c) => {
                    arr2(&mut c.weight.value, next());
                    arr1(&mut c.bias.value, next());
                }
                Layer::Linear(c) => {
                    arr2(&mut c.weight.value, next());
                    arr1(&mut c.bias.value, next());
                }
                Layer::BatchNorm(b) => {
                    arr1(&mut b.weight.value, next());
                    arr1(&mut b.bias.value, next());
                    arr1(&mut b.running_mean, next());
                    arr1(&mut b.running_var, next());
                }
                Layer::Act(a) => {
                    if let Some(p) = a.act.param() {
                        arr1(&mut p.value, next());
                    }
                }
                Layer::AvgPool2d(_) | Layer::Flatten => {}
            }
        }
        Ok(())
    }
}
