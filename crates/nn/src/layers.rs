//! Trainable layers with hand-written forward and backward passes:
//! [`Conv2d`] (im2col + matrix multiply), [`Linear`], [`BatchNorm`] (2-D and
//! 1-D) and [`AvgPool2d`].
//!
//! Activations flow between layers as `Array2<f32>` of shape
//! `(batch, features)`, with a feature map flattened in PyTorch's NCHW order
//! (`c * h * w + y * w + x`), so `Flatten` is the identity.
//! Convolutions split the batch into fixed chunks of [`CHUNK`] samples that
//! run in parallel with rayon; their partial gradients are summed in chunk
//! order, so results do not depend on the number of threads.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, s};
use rand::Rng;
use rayon::prelude::*;

/// Samples per parallel work item of a convolution.
pub const CHUNK: usize = 16;

/// Whether a layer runs in training mode (batch statistics, input caching,
/// train-side max |input|) or evaluation mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Training: BatchNorm uses batch statistics and updates running stats.
    Train,
    /// Evaluation: BatchNorm uses its running statistics.
    Eval,
}

/// A trainable tensor with its gradient (same shape) and a freeze flag.
#[derive(Clone, Debug)]
pub struct Param<D: ndarray::Dimension> {
    /// Current value.
    pub value: ndarray::Array<f32, D>,
    /// Gradient of the loss with respect to `value` (overwritten by each backward pass).
    pub grad: ndarray::Array<f32, D>,
    /// A frozen parameter is never updated by an optimiser.
    pub frozen: bool,
}

impl<D: ndarray::Dimension> Param<D> {
    /// Wrap a value with a zero gradient.
    pub fn new(value: ndarray::Array<f32, D>) -> Self {
        let grad = ndarray::Array::zeros(value.raw_dim());
        Self {
            value,
            grad,
            frozen: false,
        }
    }

    /// A flat mutable view for optimisers, named `name`.
    pub fn as_mut(&mut self, name: String) -> ParamMut<'_> {
        ParamMut {
            name,
            value: self.value.as_slice_memory_order_mut().unwrap_or_default(),
            grad: self.grad.as_slice_memory_order_mut().unwrap_or_default(),
            frozen: self.frozen,
        }
    }
}

/// A flat, mutable view of one parameter and its gradient, as optimisers see it.
#[derive(Debug)]
pub struct ParamMut<'a> {
    /// Qualified name, e.g. `conv1.weight`.
    pub name: String,
    /// Values (row-major).
    pub value: &'a mut [f32],
    /// Gradients (same layout).
    pub grad: &'a mut [f32],
    /// Frozen parameters are skipped by optimisers and gradient clipping.
    pub frozen: bool,
}

/// Draw from N(0, std^2) by Box-Muller.
pub(crate) fn normal<R: Rng>(rng: &mut R, std: f64) -> f32 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos() * std) as f32
}

/// Draw from U(-bound, bound).
pub(crate) fn uniform<R: Rng>(rng: &mut R, bound: f64) -> f32 {
    ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32
}

/// A run of consecutive valid taps of one convolution window (one kernel
/// row, the columns that fall inside the input): kernel entries
/// `w..w + len` of a `(ci, ky, kx)`-ordered patch read input features
/// `x..x + len` (NCHW). [`ConvGeom::window`] yields them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapRun {
    /// Index of the first tap in the patch: `(ci · k + ky) · k + kx0`.
    pub w: usize,
    /// Index of the first input feature: `(ci · in_h + iy) · in_w + ix0`.
    pub x: usize,
    /// Number of taps.
    pub len: usize,
}

/// Geometry of a 2-D convolution over an NCHW input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConvGeom {
    /// Input channels.
    pub in_c: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Output channels.
    pub out_c: usize,
    /// Square kernel size.
    pub k: usize,
    /// Stride (both directions).
    pub stride: usize,
    /// Zero padding (both directions).
    pub pad: usize,
}

impl ConvGeom {
    /// Output height.
    pub fn out_h(&self) -> usize {
        (self.in_h + 2 * self.pad - self.k) / self.stride + 1
    }
    /// Output width.
    pub fn out_w(&self) -> usize {
        (self.in_w + 2 * self.pad - self.k) / self.stride + 1
    }
    /// Input features per sample.
    pub fn in_len(&self) -> usize {
        self.in_c * self.in_h * self.in_w
    }
    /// Output features per sample.
    pub fn out_len(&self) -> usize {
        self.out_c * self.out_h() * self.out_w()
    }
    /// Length of one im2col patch (`in_c * k * k`).
    pub fn patch(&self) -> usize {
        self.in_c * self.k * self.k
    }

    /// Valid kernel offsets `[lo, hi)` along one axis for output index `o`,
    /// and the input index of kernel offset 0 (may be negative).
    #[inline]
    fn span(&self, o: usize, len: usize) -> (usize, usize, isize) {
        let i0 = (o * self.stride) as isize - self.pad as isize;
        let lo = (-i0).clamp(0, self.k as isize) as usize;
        let hi = (len as isize - i0).clamp(0, self.k as isize) as usize;
        (lo, hi.max(lo), i0)
    }

    /// The valid taps of the window under output position `(oy, ox)`, as
    /// runs of consecutive kernel columns in `(ci, ky, kx)` order (taps
    /// over the padding left out): the one convolution window walk that
    /// training, the plaintext forward passes and both encrypted layouts
    /// use, so that every sum over a window adds in the same order.
    pub fn window(&self, oy: usize, ox: usize) -> impl Iterator<Item = TapRun> + '_ {
        let k = self.k;
        let (ky0, ky1, iy0) = self.span(oy, self.in_h);
        let (kx0, kx1, ix0) = self.span(ox, self.in_w);
        (0..self.in_c)
            .flat_map(move |ci| (ky0..ky1).map(move |ky| (ci, ky)))
            .filter(move |_| kx1 > kx0)
            .map(move |(ci, ky)| {
                let iy = (iy0 + ky as isize) as usize;
                TapRun {
                    w: (ci * k + ky) * k + kx0,
                    x: (ci * self.in_h + iy) * self.in_w + (ix0 + kx0 as isize) as usize,
                    len: kx1 - kx0,
                }
            })
    }

    /// im2col of one sample: row `p = oy * out_w + ox` of `cols` receives the
    /// patch under output position `p`, columns ordered `(ci, ky, kx)`.
    fn im2col(&self, x: &[f32], mut cols: ArrayViewMut2<f32>) {
        let ow = self.out_w();
        for oy in 0..self.out_h() {
            for ox in 0..ow {
                let mut row = cols.row_mut(oy * ow + ox);
                let Some(row) = row.as_slice_mut() else {
                    return;
                };
                row.fill(0.0);
                for t in self.window(oy, ox) {
                    row[t.w..t.w + t.len].copy_from_slice(&x[t.x..t.x + t.len]);
                }
            }
        }
    }

    /// The adjoint of [`Self::im2col`]: accumulate `cols` into `dx`.
    fn col2im(&self, cols: ArrayView2<f32>, dx: &mut [f32]) {
        let ow = self.out_w();
        for oy in 0..self.out_h() {
            for ox in 0..ow {
                let row = cols.row(oy * ow + ox);
                let Some(row) = row.to_slice() else {
                    return;
                };
                for t in self.window(oy, ox) {
                    for (d, &v) in dx[t.x..t.x + t.len].iter_mut().zip(&row[t.w..t.w + t.len]) {
                        *d += v;
                    }
                }
            }
        }
    }
}

/// 2-D convolution (cross-correlation, as PyTorch) computed as im2col
/// followed by one matrix multiply per chunk of samples.
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// Shapes, stride and padding.
    pub geom: ConvGeom,
    /// Weights `(out_c, in_c * k * k)` (PyTorch's `(out_c, in_c, k, k)` flattened).
    pub weight: Param<ndarray::Ix2>,
    /// Bias `(out_c)`.
    pub bias: Param<ndarray::Ix1>,
    /// Whether backward must produce the input gradient (false for the first layer).
    pub input_grad: bool,
    cols: Vec<Array2<f32>>,
}

impl Conv2d {
    /// A convolution with ready weights; `weight` must be `(out_c, in_c*k*k)`.
    pub fn new(geom: ConvGeom, weight: Array2<f32>, bias: Array1<f32>) -> Self {
        Self {
            geom,
            weight: Param::new(weight),
            bias: Param::new(bias),
            input_grad: true,
            cols: Vec::new(),
        }
    }

    /// Forward pass of a batch `(n, in_len)` → `(n, out_len)`; caches the
    /// im2col matrices in training mode.
    pub fn forward(&mut self, x: &Array2<f32>, mode: Mode) -> Array2<f32> {
        let g = self.geom;
        let (ohw, oc) = (g.out_h() * g.out_w(), g.out_c);
        let n = x.nrows();
        let mut out = Array2::<f32>::zeros((n, g.out_len()));
        let w = &self.weight.value;
        let b = &self.bias.value;
        let outs: Vec<_> = out.axis_chunks_iter_mut(Axis(0), CHUNK).collect();
        let xs: Vec<_> = x.axis_chunks_iter(Axis(0), CHUNK).collect();
        let cols: Vec<Array2<f32>> = outs
            .into_par_iter()
            .zip(xs.into_par_iter())
            .map(|(mut o, xc)| {
                let m = xc.nrows();
                let mut cols = Array2::<f32>::zeros((m * ohw, g.patch()));
                for (i, xi) in xc.outer_iter().enumerate() {
                    let xi = xi.to_owned();
                    let xs = xi.as_slice().unwrap_or_default();
                    g.im2col(xs, cols.slice_mut(s![i * ohw..(i + 1) * ohw, ..]));
                }
                // (m*ohw, oc). `dot` may return another memory order (it
                // does when the patch has one entry), so force row-major.
                let y = cols.dot(&w.t());
                let y = y.as_standard_layout();
                for (i, mut orow) in o.outer_iter_mut().enumerate() {
                    match (y.as_slice(), b.as_slice(), orow.as_slice_mut()) {
                        (Some(ys), Some(bs), Some(orow)) => {
                            let yi = &ys[i * ohw * oc..(i + 1) * ohw * oc];
                            for (p, yp) in yi.chunks_exact(oc).enumerate() {
                                for (c, (&v, &bc)) in yp.iter().zip(bs).enumerate() {
                                    orow[c * ohw + p] = v + bc;
                                }
                            }
                        }
                        _ => {
                            for p in 0..ohw {
                                for c in 0..oc {
                                    orow[c * ohw + p] = y[[i * ohw + p, c]] + b[c];
                                }
                            }
                        }
                    }
                }
                cols
            })
            .collect();
        if mode == Mode::Train {
            self.cols = cols;
        }
        out
    }

    /// Backward pass: accumulates weight and bias gradients (overwriting the
    /// previous ones) and returns the input gradient (empty when
    /// `input_grad` is false).
    pub fn backward(&mut self, dy: &Array2<f32>) -> Array2<f32> {
        let g = self.geom;
        let (ohw, oc) = (g.out_h() * g.out_w(), g.out_c);
        let n = dy.nrows();
        let want_dx = self.input_grad;
        let mut dx = if want_dx {
            Array2::<f32>::zeros((n, g.in_len()))
        } else {
            Array2::<f32>::zeros((0, 0))
        };
        let w = &self.weight.value;
        let dys: Vec<_> = dy.axis_chunks_iter(Axis(0), CHUNK).collect();
        let dxs: Vec<Option<ArrayViewMut2<f32>>> = if want_dx {
            dx.axis_chunks_iter_mut(Axis(0), CHUNK).map(Some).collect()
        } else {
            dys.iter().map(|_| None).collect()
        };
        let parts: Vec<(Array2<f32>, Array1<f32>)> = dys
            .into_par_iter()
            .zip(dxs.into_par_iter())
            .zip(self.cols.par_iter())
            .map(|((dyc, dxc), cols)| {
                let m = dyc.nrows();
                let mut d = Array2::<f32>::zeros((m * ohw, oc));
                if let Some(ds) = d.as_slice_mut() {
                    for (i, dyr) in dyc.outer_iter().enumerate() {
                        let dyr = dyr.to_vec();
                        let di = &mut ds[i * ohw * oc..(i + 1) * ohw * oc];
                        for (p, dp) in di.chunks_exact_mut(oc).enumerate() {
                            for (c, v) in dp.iter_mut().enumerate() {
                                *v = dyr[c * ohw + p];
                            }
                        }
                    }
                }
                let dw = d.t().dot(cols);
                let db = d.sum_axis(Axis(0));
                if let Some(mut dxc) = dxc {
                    let dcols = d.dot(w); // (m*ohw, patch)
                    for i in 0..m {
                        let mut row = dxc.row_mut(i);
                        if let Some(r) = row.as_slice_mut() {
                            g.col2im(dcols.slice(s![i * ohw..(i + 1) * ohw, ..]), r);
                        }
                    }
                }
                (dw, db)
            })
            .collect();
        self.weight.grad.fill(0.0);
        self.bias.grad.fill(0.0);
        for (dw, db) in parts {
            self.weight.grad += &dw;
            self.bias.grad += &db;
        }
        dx
    }
}

/// Create a convolution with Kaiming-normal weights (fan-in, gain sqrt(2),
/// PyTorch's `kaiming_normal_` defaults) and PyTorch-default uniform bias
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)); `pytorch_default` instead draws the
/// weights from PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
pub fn conv2d<R: Rng>(geom: ConvGeom, pytorch_default: bool, rng: &mut R) -> Conv2d {
    let fan_in = geom.patch() as f64;
    let w = Array2::from_shape_simple_fn((geom.out_c, geom.patch()), || {
        if pytorch_default {
            uniform(rng, 1.0 / fan_in.sqrt())
        } else {
            normal(rng, (2.0 / fan_in).sqrt())
        }
    });
    let b = Array1::from_shape_simple_fn(geom.out_c, || uniform(rng, 1.0 / fan_in.sqrt()));
    Conv2d::new(geom, w, b)
}

/// Fully connected layer `y = x W^T + b`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// Weights `(out, in)` as PyTorch.
    pub weight: Param<ndarray::Ix2>,
    /// Bias `(out)`.
    pub bias: Param<ndarray::Ix1>,
    input: Option<Array2<f32>>,
}

impl Linear {
    /// A linear layer with ready weights `(out, in)` and bias `(out)`.
    pub fn new(weight: Array2<f32>, bias: Array1<f32>) -> Self {
        Self {
            weight: Param::new(weight),
            bias: Param::new(bias),
            input: None,
        }
    }
    /// Input features.
    pub fn in_features(&self) -> usize {
        self.weight.value.ncols()
    }
    /// Output features.
    pub fn out_features(&self) -> usize {
        self.weight.value.nrows()
    }
    /// Forward pass `(n, in)` → `(n, out)`.
    pub fn forward(&mut self, x: &Array2<f32>, mode: Mode) -> Array2<f32> {
        let y = x.dot(&self.weight.value.t()) + &self.bias.value;
        if mode == Mode::Train {
            self.input = Some(x.clone());
        }
        y
    }
    /// Backward pass: sets gradients, returns the input gradient.
    pub fn backward(&mut self, dy: &Array2<f32>) -> Array2<f32> {
        if let Some(x) = &self.input {
            self.weight.grad = dy.t().dot(x);
        }
        self.bias.grad = dy.sum_axis(Axis(0));
        dy.dot(&self.weight.value)
    }
}

/// Create a linear layer with PyTorch's default initialisation: weights and
/// bias from U(-1/sqrt(in), 1/sqrt(in)) (`kaiming_uniform_(a=sqrt(5))`).
pub fn linear<R: Rng>(input: usize, output: usize, rng: &mut R) -> Linear {
    let bound = 1.0 / (input as f64).sqrt();
    let w = Array2::from_shape_simple_fn((output, input), || uniform(rng, bound));
    let b = Array1::from_shape_simple_fn(output, || uniform(rng, bound));
    Linear::new(w, b)
}

/// Batch normalisation over `channels` channels of `spatial` positions each
/// (`spatial = h*w` for BatchNorm2d, 1 for BatchNorm1d), PyTorch semantics:
/// biased batch variance for normalising, unbiased for the running variance,
/// momentum 0.1, eps 1e-5.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    /// Number of channels.
    pub channels: usize,
    /// Positions per channel per sample.
    pub spatial: usize,
    /// Scale gamma.
    pub weight: Param<ndarray::Ix1>,
    /// Shift beta.
    pub bias: Param<ndarray::Ix1>,
    /// Running mean (buffer).
    pub running_mean: Array1<f32>,
    /// Running variance (buffer, unbiased).
    pub running_var: Array1<f32>,
    /// Running-stat momentum (0.1).
    pub momentum: f32,
    /// Variance epsilon (1e-5).
    pub eps: f32,
    /// When true, training-mode passes use the running statistics and leave
    /// them untouched (frozen network, SLAF-R).
    pub use_running_in_train: bool,
    xhat: Array2<f32>,
    inv_std: Vec<f32>,
    batch_stats: bool,
}

impl BatchNorm {
    /// A fresh BatchNorm (gamma 1, beta 0, running mean 0, running var 1).
    pub fn new(channels: usize, spatial: usize) -> Self {
        Self {
            channels,
            spatial,
            weight: Param::new(Array1::ones(channels)),
            bias: Param::new(Array1::zeros(channels)),
            running_mean: Array1::zeros(channels),
            running_var: Array1::ones(channels),
            momentum: 0.1,
            eps: 1e-5,
            use_running_in_train: false,
            xhat: Array2::zeros((0, 0)),
            inv_std: Vec::new(),
            batch_stats: false,
        }
    }

    /// Forward pass `(n, channels*spatial)`.
    pub fn forward(&mut self, x: &Array2<f32>, mode: Mode) -> Array2<f32> {
        let (n, c, sp) = (x.nrows(), self.channels, self.spatial);
        let x = x.as_standard_layout();
        let xs = x.as_slice().unwrap_or_default();
        let row = c * sp;
        let batch = mode == Mode::Train && !self.use_running_in_train;
        let mut mean = vec![0f32; c];
        let mut inv_std = vec![0f32; c];
        if batch {
            let m = (n * sp) as f64;
            let mut sum = vec![0f64; c];
            for r in xs.chunks_exact(row) {
                for (ch, seg) in r.chunks_exact(sp).enumerate() {
                    sum[ch] += seg.iter().map(|&v| f64::from(v)).sum::<f64>();
                }
            }
            let mu: Vec<f64> = sum.iter().map(|s| s / m).collect();
            let mut ss = vec![0f64; c];
            for r in xs.chunks_exact(row) {
                for (ch, seg) in r.chunks_exact(sp).enumerate() {
                    ss[ch] += seg
                        .iter()
                        .map(|&v| (f64::from(v) - mu[ch]).powi(2))
                        .sum::<f64>();
                }
            }
            for ch in 0..c {
                let var = ss[ch] / m;
                let unbiased = if m > 1.0 { ss[ch] / (m - 1.0) } else { var };
                mean[ch] = mu[ch] as f32;
                inv_std[ch] = (1.0 / (var + f64::from(self.eps)).sqrt()) as f32;
                let mo = self.momentum;
                self.running_mean[ch] = (1.0 - mo) * self.running_mean[ch] + mo * mu[ch] as f32;
                self.running_var[ch] = (1.0 - mo) * self.running_var[ch] + mo * unbiased as f32;
            }
        } else {
            for ch in 0..c {
                mean[ch] = self.running_mean[ch];
                inv_std[ch] = 1.0 / (self.running_var[ch] + self.eps).sqrt();
            }
        }
        let mut xhat = vec![0f32; xs.len()];
        let mut y = vec![0f32; xs.len()];
        for ((xr, hr), yr) in xs
            .chunks_exact(row)
            .zip(xhat.chunks_exact_mut(row))
            .zip(y.chunks_exact_mut(row))
        {
            for ch in 0..c {
                let (g, b) = (self.weight.value[ch], self.bias.value[ch]);
                let (mu, is) = (mean[ch], inv_std[ch]);
                let r = ch * sp..(ch + 1) * sp;
                for ((&v, h), o) in xr[r.clone()].iter().zip(&mut hr[r.clone()]).zip(&mut yr[r]) {
                    *h = (v - mu) * is;
                    *o = *h * g + b;
                }
            }
        }
        if mode == Mode::Train {
            self.xhat = Array2::from_shape_vec((n, row), xhat).unwrap_or_default();
            self.inv_std = inv_std;
            self.batch_stats = batch;
        }
        Array2::from_shape_vec((n, row), y).unwrap_or_default()
    }

    /// Backward pass: sets gamma/beta gradients, returns the input gradient.
    pub fn backward(&mut self, dy: &Array2<f32>) -> Array2<f32> {
        let (n, c, sp) = (dy.nrows(), self.channels, self.spatial);
        let row = c * sp;
        let m = (n * sp) as f64;
        let dy = dy.as_standard_layout();
        let dys = dy.as_slice().unwrap_or_default();
        let xh = self.xhat.as_slice().unwrap_or_default();
        let mut sdy = vec![0f64; c];
        let mut sdyx = vec![0f64; c];
        for (dr, hr) in dys.chunks_exact(row).zip(xh.chunks_exact(row)) {
            for ch in 0..c {
                let r = ch * sp..(ch + 1) * sp;
                for (&d, &h) in dr[r.clone()].iter().zip(&hr[r]) {
                    sdy[ch] += f64::from(d);
                    sdyx[ch] += f64::from(d) * f64::from(h);
                }
            }
        }
        let mut dx = vec![0f32; dys.len()];
        for ch in 0..c {
            self.weight.grad[ch] = sdyx[ch] as f32;
            self.bias.grad[ch] = sdy[ch] as f32;
        }
        let coef: Vec<(f32, f32, f32)> = (0..c)
            .map(|ch| {
                let gi = f64::from(self.weight.value[ch]) * f64::from(self.inv_std[ch]);
                if self.batch_stats {
                    (
                        gi as f32,
                        (gi * sdy[ch] / m) as f32,
                        (gi * sdyx[ch] / m) as f32,
                    )
                } else {
                    (gi as f32, 0.0, 0.0)
                }
            })
            .collect();
        for ((dr, hr), xr) in dys
            .chunks_exact(row)
            .zip(xh.chunks_exact(row))
            .zip(dx.chunks_exact_mut(row))
        {
            for (ch, &(gi, a, b)) in coef.iter().enumerate() {
                let r = ch * sp..(ch + 1) * sp;
                for ((&d, &h), o) in dr[r.clone()].iter().zip(&hr[r.clone()]).zip(&mut xr[r]) {
                    *o = gi * d - a - h * b;
                }
            }
        }
        Array2::from_shape_vec((n, row), dx).unwrap_or_default()
    }

    /// The per-channel affine map `y = scale * x + shift` of evaluation mode, in f64.
    pub fn eval_affine(&self) -> (Vec<f64>, Vec<f64>) {
        (0..self.channels)
            .map(|ch| {
                let s = f64::from(self.weight.value[ch])
                    / (f64::from(self.running_var[ch]) + f64::from(self.eps)).sqrt();
                let t = f64::from(self.bias.value[ch]) - s * f64::from(self.running_mean[ch]);
                (s, t)
            })
            .unzip()
    }
}

/// Average pooling with zero padding counted in the average (PyTorch's
/// `count_include_pad=True`, `ceil_mode=False`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Padding.
    pub pad: usize,
}

impl AvgPool2d {
    /// Output height.
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }
    /// Output width.
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
    }
    /// Output features per sample.
    pub fn out_len(&self) -> usize {
        self.c * self.out_h() * self.out_w()
    }

    /// Calls `f(input_index, output_index, 1/divisor)` for every (input, output) pair of a sample.
    fn for_each(&self, mut f: impl FnMut(usize, usize, f64)) {
        let (oh, ow) = (self.out_h(), self.out_w());
        for c in 0..self.c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let hs = (oy * self.stride) as isize - self.pad as isize;
                    let ws = (ox * self.stride) as isize - self.pad as isize;
                    let he = (hs + self.k as isize).min((self.h + self.pad) as isize);
                    let we = (ws + self.k as isize).min((self.w + self.pad) as isize);
                    let div = ((he - hs) * (we - ws)) as f64;
                    let o = (c * oh + oy) * ow + ox;
                    for iy in hs.max(0)..he.min(self.h as isize) {
                        for ix in ws.max(0)..we.min(self.w as isize) {
                            let i = (c * self.h + iy as usize) * self.w + ix as usize;
                            f(i, o, 1.0 / div);
                        }
                    }
                }
            }
        }
    }

    /// Clipped window `[lo, hi)` and PyTorch divisor factor per output index
    /// along one axis of length `len` (the divisor of a window is the
    /// product of its row and column factors, padding included).
    fn axis_windows(&self, len: usize, out: usize) -> Vec<(usize, usize, f32)> {
        (0..out)
            .map(|o| {
                let s = (o * self.stride) as isize - self.pad as isize;
                let e = (s + self.k as isize).min((len + self.pad) as isize);
                let lo = s.max(0) as usize;
                let hi = (e.min(len as isize).max(0) as usize).max(lo);
                (lo, hi, 1.0 / (e - s) as f32)
            })
            .collect()
    }

    /// Forward pass `(n, c*h*w)` → `(n, c*oh*ow)`: separable (rows, then
    /// columns), samples in parallel.
    pub fn forward(&self, x: &Array2<f32>) -> Array2<f32> {
        let (oh, ow) = (self.out_h(), self.out_w());
        let rows = self.axis_windows(self.h, oh);
        let cols = self.axis_windows(self.w, ow);
        let (hw, ohw) = (self.h * self.w, oh * ow);
        let mut y = Array2::<f32>::zeros((x.nrows(), self.out_len()));
        let ys: Vec<_> = y.axis_chunks_iter_mut(Axis(0), CHUNK).collect();
        let xs: Vec<_> = x.axis_chunks_iter(Axis(0), CHUNK).collect();
        ys.into_par_iter()
            .zip(xs.into_par_iter())
            .for_each(|(mut yc, xc)| {
                let mut hb = vec![0f32; self.h * ow];
                for (xi, mut yi) in xc.outer_iter().zip(yc.outer_iter_mut()) {
                    let (Some(xi), Some(yi)) = (xi.to_slice(), yi.as_slice_mut()) else {
                        continue;
                    };
                    for (xs, ys) in xi.chunks_exact(hw).zip(yi.chunks_exact_mut(ohw)) {
                        for (xr, hr) in xs.chunks_exact(self.w).zip(hb.chunks_exact_mut(ow)) {
                            for (h, &(w0, w1, f)) in hr.iter_mut().zip(&cols) {
                                *h = xr[w0..w1].iter().sum::<f32>() * f;
                            }
                        }
                        for (yr, &(h0, h1, f)) in ys.chunks_exact_mut(ow).zip(&rows) {
                            yr.fill(0.0);
                            for r in h0..h1 {
                                for (o, &v) in yr.iter_mut().zip(&hb[r * ow..(r + 1) * ow]) {
                                    *o += v;
                                }
                            }
                            for o in yr.iter_mut() {
                                *o *= f;
                            }
                        }
                    }
                }
            });
        y
    }

    /// Backward pass (pooling has no parameters), samples in parallel.
    pub fn backward(&self, dy: &Array2<f32>) -> Array2<f32> {
        let (oh, ow) = (self.out_h(), self.out_w());
        let rows = self.axis_windows(self.h, oh);
        let cols = self.axis_windows(self.w, ow);
        let (hw, ohw) = (self.h * self.w, oh * ow);
        let mut dx = Array2::<f32>::zeros((dy.nrows(), self.c * hw));
        let dxs: Vec<_> = dx.axis_chunks_iter_mut(Axis(0), CHUNK).collect();
        let dys: Vec<_> = dy.axis_chunks_iter(Axis(0), CHUNK).collect();
        dxs.into_par_iter()
            .zip(dys.into_par_iter())
            .for_each(|(mut dxc, dyc)| {
                let mut hb = vec![0f32; self.h * ow];
                for (dyi, mut dxi) in dyc.outer_iter().zip(dxc.outer_iter_mut()) {
                    let (Some(dyi), Some(dxi)) = (dyi.to_slice(), dxi.as_slice_mut()) else {
                        continue;
                    };
                    for (gs, dxs) in dyi.chunks_exact(ohw).zip(dxi.chunks_exact_mut(hw)) {
                        hb.fill(0.0);
                        for (gr, &(h0, h1, f)) in gs.chunks_exact(ow).zip(&rows) {
                            for r in h0..h1 {
                                for (h, &g) in hb[r * ow..(r + 1) * ow].iter_mut().zip(gr) {
                                    *h += g * f;
                                }
                            }
                        }
                        for (xr, hr) in dxs.chunks_exact_mut(self.w).zip(hb.chunks_exact(ow)) {
                            for (&h, &(w0, w1, f)) in hr.iter().zip(&cols) {
                                let g = h * f;
                                for v in &mut xr[w0..w1] {
                                    *v += g;
                                }
                            }
                        }
                    }
                }
            });
        dx
    }

    /// The same pooling on one f64 sample (used by the exact collapse).
    pub fn forward_f64(&self, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0f64; self.out_len()];
        self.for_each(|i, o, inv| y[o] += x[i] * inv);
        y
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    /// The taps a naive walk over every kernel entry finds inside the
    /// input, in (ci, ky, kx) order: (patch index, input index).
    fn naive(g: &ConvGeom, oy: usize, ox: usize) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for ci in 0..g.in_c {
            for ky in 0..g.k {
                for kx in 0..g.k {
                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                    let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                    if iy >= 0 && ix >= 0 && (iy as usize) < g.in_h && (ix as usize) < g.in_w {
                        let x = (ci * g.in_h + iy as usize) * g.in_w + ix as usize;
                        v.push(((ci * g.k + ky) * g.k + kx, x));
                    }
                }
            }
        }
        v
    }

    #[test]
    fn window_runs_are_the_valid_taps_in_order() {
        for (in_c, in_h, in_w, k, stride, pad) in [
            (1, 28, 28, 7, 3, 0),
            (1, 28, 28, 5, 2, 1),
            (3, 9, 7, 3, 1, 2),
            (2, 5, 5, 5, 2, 4),
            (1, 4, 4, 4, 1, 0),
        ] {
            let g = ConvGeom {
                in_c,
                in_h,
                in_w,
                out_c: 1,
                k,
                stride,
                pad,
            };
            for oy in 0..g.out_h() {
                for ox in 0..g.out_w() {
                    let got: Vec<(usize, usize)> = g
                        .window(oy, ox)
                        .flat_map(|t| (0..t.len).map(move |j| (t.w + j, t.x + j)))
                        .collect();
                    assert_eq!(got, naive(&g, oy, ox), "{g:?} at ({oy}, {ox})");
                }
            }
        }
    }
}
