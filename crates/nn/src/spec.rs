//! Model specs: a small CNN as a value, written in TOML or built in Rust,
//! from which [`super::Model`] is built and trained.
//!
//! ```toml
//! name = "cnn3"
//! input = [1, 28, 28]            # channels, height, width
//! [[layer]]
//! type = "conv2d"                # conv2d | avgpool | batchnorm | flatten | dense | act
//! out_channels = 8
//! kernel = 5
//! stride = 2
//! padding = 1
//! [[layer]]
//! type = "act"                   # optional act = "relu" | "x2" | "slaf" | "slaf-p", degree = 2
//! ```
//!
//! The four networks of the papers are specs too ([`ModelSpec::preset`],
//! shipped as `models/*.toml`). Invariants that [`ModelSpec::shapes`]
//! checks before anything is built: every layer fits the shape it receives
//! (a dense layer needs a flat input, a conv or pool a spatial one, a kernel
//! fits its padded input, no size is zero), layer names are unique, and the
//! last layer yields [`CLASSES`] outputs. A violation is a
//! [`NnError::Spec`] naming the layer's index and type and the numbers.
//! Layer names default to `conv1`, `pool1`, `bn1`, `act1`, `fc1`,
//! `flatten` (counted per type), the tensor names of the committed weights.

use super::NnError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Outputs of the last layer: the data sets have 10 classes.
pub const CLASSES: usize = 10;
/// Largest number of values any layer may produce per sample (memory guard).
pub const MAX_FEATURES: usize = 1 << 20;
/// Largest spec file read, bytes.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;
/// The built-in presets, by name, with their TOML text (`models/*.toml`).
pub const PRESETS: &[(&str, &str)] = &[
    ("cnn1", include_str!("../../../models/cnn1.toml")),
    ("cnn2", include_str!("../../../models/cnn2.toml")),
    (
        "cnn2-nopad",
        include_str!("../../../models/cnn2-nopad.toml"),
    ),
    (
        "cryptonets",
        include_str!("../../../models/cryptonets.toml"),
    ),
    ("cnn3", include_str!("../../../models/cnn3.toml")),
    ("cnn4", include_str!("../../../models/cnn4.toml")),
];

/// A network: its input shape and its layers in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Name used in file names and reports.
    pub name: String,
    /// Input shape `[channels, height, width]`.
    pub input: [usize; 3],
    /// SLAF-P sign-fit range R (default 10; CNN1 uses 30, SPEC §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slafp_range: Option<f64>,
    /// Layers in order.
    #[serde(rename = "layer")]
    pub layers: Vec<LayerSpec>,
}

/// An activation chosen per layer, overriding the training variant: the
/// one activation vocabulary ([`crate::act::ActKind`]).
pub use crate::act::ActKind;

/// One layer of a spec (`type = "..."` in TOML).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum LayerSpec {
    /// 2-D convolution.
    Conv2d {
        /// Output channels.
        out_channels: usize,
        /// Square kernel size.
        kernel: usize,
        /// Stride (default 1).
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding on each side (default 0).
        #[serde(default)]
        padding: usize,
        /// Layer name (default `convN`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Average pooling (PyTorch's divisor: padding counted).
    Avgpool {
        /// Square window size.
        kernel: usize,
        /// Stride (default: the kernel size, as PyTorch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
        /// Zero padding on each side (default 0).
        #[serde(default)]
        padding: usize,
        /// Layer name (default `poolN`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Batch normalisation (per channel of a spatial input, per feature of a flat one).
    Batchnorm {
        /// Layer name (default `bnN`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Flatten a spatial input (channel-major, as PyTorch).
    Flatten {
        /// Layer name (default `flatten`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Fully connected layer.
    Dense {
        /// Output features.
        out: usize,
        /// Layer name (default `fcN`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Activation: the training variant's unless `act` says otherwise.
    Act {
        /// Per-layer activation (default: the one chosen with `--act`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        act: Option<ActKind>,
        /// SLAF degree of this layer (default: the training degree).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        degree: Option<usize>,
        /// Layer name (default `actN`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

fn one() -> usize {
    1
}

impl LayerSpec {
    /// The `type` word of the layer (`conv2d`, `avgpool`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Conv2d { .. } => "conv2d",
            Self::Avgpool { .. } => "avgpool",
            Self::Batchnorm { .. } => "batchnorm",
            Self::Flatten { .. } => "flatten",
            Self::Dense { .. } => "dense",
            Self::Act { .. } => "act",
        }
    }

    fn explicit_name(&self) -> Option<&str> {
        match self {
            Self::Conv2d { name, .. }
            | Self::Avgpool { name, .. }
            | Self::Batchnorm { name }
            | Self::Flatten { name }
            | Self::Dense { name, .. }
            | Self::Act { name, .. } => name.as_deref(),
        }
    }

    fn name_prefix(&self) -> &'static str {
        match self {
            Self::Conv2d { .. } => "conv",
            Self::Avgpool { .. } => "pool",
            Self::Batchnorm { .. } => "bn",
            Self::Flatten { .. } => "flatten",
            Self::Dense { .. } => "fc",
            Self::Act { .. } => "act",
        }
    }
}

/// The shape of one sample between layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// `channels × height × width`, stored channel-major.
    Spatial {
        /// Channels.
        c: usize,
        /// Height.
        h: usize,
        /// Width.
        w: usize,
    },
    /// A vector of features.
    Flat(usize),
}

impl Shape {
    /// Values per sample.
    pub fn len(&self) -> usize {
        match *self {
            Self::Spatial { c, h, w } => c * h * w,
            Self::Flat(n) => n,
        }
    }

    /// Whether the shape holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Spatial { c, h, w } => write!(f, "{c}x{h}x{w}"),
            Self::Flat(n) => write!(f, "{n}"),
        }
    }
}

/// A layer after shape checking: its name, what it receives and yields.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerShape {
    /// Index in the spec (0-based).
    pub index: usize,
    /// Resolved name (`conv1`, ...).
    pub name: String,
    /// The layer.
    pub layer: LayerSpec,
    /// Input shape.
    pub input: Shape,
    /// Output shape.
    pub output: Shape,
    /// Trainable parameters (weights, biases, BatchNorm affine; activations not counted).
    pub params: usize,
}

fn spec_err(index: usize, layer: &LayerSpec, detail: String) -> NnError {
    NnError::Spec {
        layer: index,
        kind: layer.kind(),
        detail,
    }
}

/// Output size of a window of `k`, stride `s`, padding `p` over `n`, or why it does not fit.
fn window_out(n: usize, k: usize, s: usize, p: usize, axis: &str) -> Result<usize, String> {
    if k == 0 || s == 0 {
        return Err(format!("kernel {k} and stride {s} must be at least 1"));
    }
    if k > n + 2 * p {
        return Err(format!(
            "kernel {k} is larger than the padded input {axis} {n} + 2x{p} = {}",
            n + 2 * p
        ));
    }
    Ok((n + 2 * p - k) / s + 1)
}

impl ModelSpec {
    /// An empty spec (add layers with the builder methods).
    pub fn new(name: &str, input: [usize; 3]) -> Self {
        Self {
            name: name.to_string(),
            input,
            slafp_range: None,
            layers: Vec::new(),
        }
    }

    /// Builder: append a convolution.
    pub fn conv2d(
        mut self,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Self {
        self.layers.push(LayerSpec::Conv2d {
            out_channels,
            kernel,
            stride,
            padding,
            name: None,
        });
        self
    }

    /// Builder: append an average pool.
    pub fn avgpool(mut self, kernel: usize, stride: usize, padding: usize) -> Self {
        self.layers.push(LayerSpec::Avgpool {
            kernel,
            stride: Some(stride),
            padding,
            name: None,
        });
        self
    }

    /// Builder: append a BatchNorm.
    pub fn batchnorm(mut self) -> Self {
        self.layers.push(LayerSpec::Batchnorm { name: None });
        self
    }

    /// Builder: append a flatten.
    pub fn flatten(mut self) -> Self {
        self.layers.push(LayerSpec::Flatten { name: None });
        self
    }

    /// Builder: append a dense layer.
    pub fn dense(mut self, out: usize) -> Self {
        self.layers.push(LayerSpec::Dense { out, name: None });
        self
    }

    /// Builder: append an activation (the training variant's).
    pub fn act(mut self) -> Self {
        self.layers.push(LayerSpec::Act {
            act: None,
            degree: None,
            name: None,
        });
        self
    }

    /// Builder: set the SLAF-P range.
    pub fn with_slafp_range(mut self, r: f64) -> Self {
        self.slafp_range = Some(r);
        self
    }

    /// The SLAF-P range R (10 unless the spec says otherwise).
    pub fn slafp_range(&self) -> f64 {
        self.slafp_range.unwrap_or(10.0)
    }

    /// Parse TOML text and check the shapes.
    pub fn from_toml(text: &str) -> Result<Self, NnError> {
        let spec: Self = toml::from_str(text).map_err(|e| NnError::SpecParse {
            detail: e.to_string(),
        })?;
        spec.shapes()?;
        Ok(spec)
    }

    /// The spec as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render as TOML: {e}\n"))
    }

    /// A built-in preset by name (`cnn1`, `cnn2`, `cnn2-nopad`, `cryptonets`,
    /// `cnn3`, `cnn4`).
    pub fn preset(name: &str) -> Result<Self, NnError> {
        let (_, text) =
            PRESETS
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| NnError::UnknownName {
                    what: "model preset (cnn1, cnn2, cnn2-nopad, cryptonets, cnn3, cnn4)",
                    name: name.to_string(),
                })?;
        Self::from_toml(text)
    }

    /// A preset name, or else a path to a TOML spec file (at most [`MAX_SPEC_BYTES`]).
    pub fn resolve(name_or_path: &str) -> Result<Self, NnError> {
        if PRESETS.iter().any(|(n, _)| *n == name_or_path) {
            return Self::preset(name_or_path);
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            return Err(NnError::UnknownName {
                what: "model",
                name: name_or_path.to_string(),
            });
        }
        let io = |source| NnError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_SPEC_BYTES {
            return Err(NnError::SpecParse {
                detail: format!(
                    "{} is {len} bytes, more than the {MAX_SPEC_BYTES} a spec may have",
                    path.display()
                ),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_toml(&text).map_err(|e| match e {
            NnError::SpecParse { detail } => NnError::SpecParse {
                detail: format!("{}: {detail}", path.display()),
            },
            other => other,
        })
    }

    /// Check every layer against the shape it receives; the resolved layers.
    pub fn shapes(&self) -> Result<Vec<LayerShape>, NnError> {
        let [c, h, w] = self.input;
        if c == 0 || h == 0 || w == 0 {
            return Err(NnError::SpecParse {
                detail: format!("input shape {c}x{h}x{w} has a zero dimension"),
            });
        }
        if self.layers.is_empty() {
            return Err(NnError::SpecParse {
                detail: format!("model {:?} has no layers", self.name),
            });
        }
        if let Some(r) = self.slafp_range
            && !(r.is_finite() && r > 0.0)
        {
            return Err(NnError::SpecParse {
                detail: format!("slafp_range {r} must be finite and positive"),
            });
        }
        let mut shape = Shape::Spatial { c, h, w };
        let mut counters = std::collections::HashMap::new();
        let mut out: Vec<LayerShape> = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let err = |d: String| spec_err(i, layer, d);
            let n = counters.entry(layer.name_prefix()).or_insert(0usize);
            *n += 1;
            let name = match layer.explicit_name() {
                Some("") => return Err(err("an empty name".into())),
                Some(s) => s.to_string(),
                None if matches!(layer, LayerSpec::Flatten { .. }) && *n == 1 => "flatten".into(),
                None => format!("{}{n}", layer.name_prefix()),
            };
            if let Some(prev) = out.iter().find(|l| l.name == name) {
                return Err(err(format!(
                    "name {name:?} is already used by layer {} ({})",
                    prev.index,
                    prev.layer.kind()
                )));
            }
            let (output, params) = self.layer_output(layer, shape).map_err(err)?;
            if output.is_empty() || output.len() > MAX_FEATURES {
                return Err(err(format!(
                    "output {output} has {} values (allowed 1..={MAX_FEATURES})",
                    output.len()
                )));
            }
            out.push(LayerShape {
                index: i,
                name,
                layer: layer.clone(),
                input: shape,
                output,
                params,
            });
            shape = output;
        }
        if shape != Shape::Flat(CLASSES) {
            let last = self.layers.len() - 1;
            return Err(spec_err(
                last,
                &self.layers[last],
                format!(
                    "the network ends with {shape} outputs; it must end with a dense layer of {CLASSES}"
                ),
            ));
        }
        Ok(out)
    }

    fn layer_output(&self, layer: &LayerSpec, shape: Shape) -> Result<(Shape, usize), String> {
        let spatial = |what: &str| match shape {
            Shape::Spatial { c, h, w } => Ok((c, h, w)),
            Shape::Flat(n) => Err(format!(
                "{what} needs a spatial input (channels x height x width), got {n} flat features"
            )),
        };
        Ok(match *layer {
            LayerSpec::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                ..
            } => {
                let (c, h, w) = spatial("a convolution")?;
                if out_channels == 0 {
                    return Err("out_channels is 0".into());
                }
                let oh = window_out(h, kernel, stride, padding, "height")?;
                let ow = window_out(w, kernel, stride, padding, "width")?;
                (
                    Shape::Spatial {
                        c: out_channels,
                        h: oh,
                        w: ow,
                    },
                    out_channels * (c * kernel * kernel + 1),
                )
            }
            LayerSpec::Avgpool {
                kernel,
                stride,
                padding,
                ..
            } => {
                let (c, h, w) = spatial("a pooling layer")?;
                if padding * 2 > kernel {
                    return Err(format!(
                        "padding {padding} is more than half the kernel {kernel}"
                    ));
                }
                let s = stride.unwrap_or(kernel);
                let oh = window_out(h, kernel, s, padding, "height")?;
                let ow = window_out(w, kernel, s, padding, "width")?;
                (Shape::Spatial { c, h: oh, w: ow }, 0)
            }
            LayerSpec::Batchnorm { .. } => {
                let ch = match shape {
                    Shape::Spatial { c, .. } => c,
                    Shape::Flat(n) => n,
                };
                (shape, 2 * ch)
            }
            LayerSpec::Flatten { .. } => (Shape::Flat(shape.len()), 0),
            LayerSpec::Dense { out, .. } => {
                let Shape::Flat(n) = shape else {
                    return Err(format!(
                        "a dense layer needs a flat input, got {shape} (add a flatten layer before it)"
                    ));
                };
                if out == 0 {
                    return Err("out is 0".into());
                }
                (Shape::Flat(out), out * (n + 1))
            }
            LayerSpec::Act { act, degree, .. } => {
                if degree == Some(0) {
                    return Err("degree 0 is a constant: use 1 or more".into());
                }
                if degree.is_some_and(|d| d > 16) {
                    return Err(format!("degree {} is above 16", degree.unwrap_or(0)));
                }
                if degree.is_some() && act.is_some_and(|a| a != ActKind::Slaf) {
                    return Err("degree applies only to act = \"slaf\"".into());
                }
                (shape, 0)
            }
        })
    }

    /// Whether any layer is a BatchNorm.
    pub fn has_batchnorm(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(l, LayerSpec::Batchnorm { .. }))
    }

    /// Number of activation layers.
    pub fn act_count(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| matches!(l, LayerSpec::Act { .. }))
            .count()
    }

    /// A markdown table of the layers: name, type, input, output, parameters.
    pub fn summary_table(&self) -> Result<String, NnError> {
        let shapes = self.shapes()?;
        let mut o = format!(
            "model {} (input {}x{}x{})\n\n| # | name | type | input | output | parameters |\n|---|---|---|---|---|---|\n",
            self.name, self.input[0], self.input[1], self.input[2]
        );
        for l in &shapes {
            o.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                l.index,
                l.name,
                l.layer.kind(),
                l.input,
                l.output,
                l.params
            ));
        }
        o.push_str(&format!(
            "\n{} trainable parameters (activation coefficients not counted), {} activation layers\n",
            shapes.iter().map(|l| l.params).sum::<usize>(),
            self.act_count()
        ));
        Ok(o)
    }
}

/// Serde of a spec field that weights files and configurations store as
/// `"arch": "cnn1"`: a preset is written as its name (so the files and
/// cache keys of the presets are what they were), any other spec as a
/// table; reading accepts both and checks the spec's shapes.
pub mod by_name {
    use super::{ModelSpec, PRESETS};
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    /// Write a preset as its name, another spec as a table.
    pub fn serialize<S: Serializer>(spec: &ModelSpec, s: S) -> Result<S::Ok, S::Error> {
        let preset = PRESETS
            .iter()
            .find(|(n, _)| *n == spec.name)
            .and_then(|(n, _)| ModelSpec::preset(n).ok())
            .is_some_and(|p| &p == spec);
        if preset {
            s.serialize_str(&spec.name)
        } else {
            spec.serialize(s)
        }
    }

    /// Read a preset name or a spec table.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ModelSpec, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Name(String),
            Spec(ModelSpec),
        }
        match Repr::deserialize(d)? {
            Repr::Name(n) => ModelSpec::preset(&n).map_err(D::Error::custom),
            Repr::Spec(s) => {
                s.shapes().map_err(D::Error::custom)?;
                Ok(s)
            }
        }
    }
}
