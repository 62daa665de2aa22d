//! Activation functions: ReLU, square (x²), the self-learning polynomial
//! [`Slaf`] `p(x) = a0 + a1 x + ... + ad x^d` (one coefficient vector per
//! layer) and its ReLU-shaped form [`SlafP`] `(x + x s(x)) / 2`, where
//! `s` is a cubic approximation of sign(x) fitted by least squares
//! ([`sign_fit_ls`]).
//!
//! [`Activation`] is itself a layer (forward, backward, parameters);
//! [`ActLayer`] adds the input cache and the max |input| record.

use super::layers::{Mode, Param, ParamMut};
use ndarray::{Array1, Array2, Zip};

/// A trainable polynomial activation (SLAF).
#[derive(Clone, Debug)]
pub struct Slaf {
    /// Coefficients `a0..ad` in the power basis.
    pub coeffs: Param<ndarray::Ix1>,
}

impl Slaf {
    /// A SLAF of degree `degree` with all coefficients 0 (the original's init).
    pub fn zeros(degree: usize) -> Self {
        Self::with_coeffs(vec![0.0; degree + 1])
    }
    /// A SLAF with given coefficients `a0..ad`.
    pub fn with_coeffs(coeffs: Vec<f32>) -> Self {
        Self {
            coeffs: Param::new(Array1::from(coeffs)),
        }
    }
}

/// The ReLU-shaped polynomial `(x + x s(x)) / 2` with `s ≈ sign`.
#[derive(Clone, Debug)]
pub struct SlafP {
    /// Coefficients `c0..c3` of `s` (frozen unless trainable).
    pub s: Param<ndarray::Ix1>,
}

impl SlafP {
    /// SLAF-P with the least-squares sign fit on `arange(-r, r, 0.01)`;
    /// `trainable` decides whether `s` is learned (default: fixed, as published).
    pub fn fitted(r: f64, trainable: bool) -> Self {
        Self::with_init(r, SignInit::LeastSquares, trainable)
    }

    /// SLAF-P with `s` from the sign approximation `init` scaled to `[-r, r]`.
    pub fn with_init(r: f64, init: SignInit, trainable: bool) -> Self {
        let c = sign_poly(init, r);
        let mut s = Param::new(Array1::from_iter(c.iter().map(|&v| v as f32)));
        s.frozen = !trainable;
        Self { s }
    }
}

/// How the sign approximation `s` of SLAF-P is initialised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum SignInit {
    /// Least-squares cubic on NumPy's `arange(-R, R, 0.01)` (the original).
    #[default]
    #[cfg_attr(feature = "clap", value(alias = "least-squares", name = "ls"))]
    LeastSquares,
    /// Cubic interpolating sign at the 4 Chebyshev points of the first kind.
    Chebyshev,
    /// Degree 9: `f(g(x/R))`, `f(t) = -t³/2 + 3t/2`,
    /// `g(t) = -(1359/1024) t³ + (2126/1024) t` (SPEC.md §6).
    Composition,
    /// Degree 9: Newton-Raphson `f(f(x/R))`.
    Newton,
}

impl SignInit {
    /// Parse `ls`, `chebyshev`, `composition` or `newton`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ls" | "least-squares" => Self::LeastSquares,
            "chebyshev" => Self::Chebyshev,
            "composition" => Self::Composition,
            "newton" => Self::Newton,
            _ => return None,
        })
    }
}

/// Power-basis coefficients of a sign approximation on `[-r, r]`.
pub fn sign_poly(init: SignInit, r: f64) -> Vec<f64> {
    let f = [0.0, 1.5, 0.0, -0.5];
    let unit: Vec<f64> = match init {
        SignInit::LeastSquares => return sign_fit_ls(r, 0.01, 3),
        SignInit::Chebyshev => {
            let n = 4;
            let nodes: Vec<f64> = (0..n)
                .map(|j| ((2 * j + 1) as f64 * std::f64::consts::PI / (2 * n) as f64).cos())
                .collect();
            let a: Vec<Vec<f64>> = nodes
                .iter()
                .map(|&x| (0..n).map(|k| x.powi(k)).collect())
                .collect();
            let b: Vec<f64> = nodes.iter().map(|&x| x.signum()).collect();
            solve(a, b)
        }
        SignInit::Composition => {
            let g = [0.0, 2126.0 / 1024.0, 0.0, -1359.0 / 1024.0];
            compose(&f, &g)
        }
        SignInit::Newton => compose(&f, &f),
    };
    unit.iter()
        .enumerate()
        .map(|(k, v)| v / r.powi(k as i32))
        .collect()
}

/// Power-basis coefficients of `outer(inner(x))`.
fn compose(outer: &[f64], inner: &[f64]) -> Vec<f64> {
    let mut acc = vec![0f64];
    for &c in outer.iter().rev() {
        let mut next = vec![0f64; acc.len() + inner.len() - 1];
        for (i, a) in acc.iter().enumerate() {
            for (j, b) in inner.iter().enumerate() {
                next[i + j] += a * b;
            }
        }
        next[0] += c;
        acc = next;
    }
    while acc.len() > 1 && acc.last() == Some(&0.0) {
        acc.pop();
    }
    acc
}

/// Least-squares fit of sign(x) (sign(0) = 0) by a polynomial of `degree`
/// on NumPy's `arange(-r, r, step)` grid, like `np.polyfit`. NumPy fills
/// the grid as `x_i = -r + i * delta` with `delta = (-r + step) - (-r)`
/// (not exactly `step`), which moves `x = 0` to a tiny positive value and
/// decides `a0`; this reproduces the notebooks' printed coefficients. Solved
/// in f64 on the scaled variable `t = x / r` with normal equations (a 4x4
/// system for degree 3), then rescaled; returns `a0..ad`.
pub fn sign_fit_ls(r: f64, step: f64, degree: usize) -> Vec<f64> {
    let n = ((2.0 * r) / step).ceil() as usize;
    let delta = (-r + step) - (-r);
    let xs: Vec<f64> = (0..n).map(|i| -r + i as f64 * delta).collect();
    fit_ls(
        &xs,
        |x| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        },
        r,
        degree,
    )
}

/// Least-squares fit of ReLU by a polynomial of `degree` on 2001 evenly
/// spaced points of `[-r, r]` (used to initialise SLAF-R's coefficients
/// from the range each layer saw while training with ReLU).
pub fn relu_fit_ls(r: f64, degree: usize) -> Vec<f64> {
    let r = if r > 0.0 && r.is_finite() { r } else { 1.0 };
    let xs: Vec<f64> = (0..=2000).map(|i| -r + i as f64 * r / 1000.0).collect();
    fit_ls(&xs, |x| x.max(0.0), r, degree)
}

/// Least-squares polynomial fit of `f` at `xs`, solved on `t = x / r` with
/// normal equations in f64 and rescaled; returns `a0..ad`.
fn fit_ls(xs: &[f64], f: impl Fn(f64) -> f64, r: f64, degree: usize) -> Vec<f64> {
    let d = degree + 1;
    let mut ata = vec![vec![0f64; d]; d];
    let mut atb = vec![0f64; d];
    for &x in xs {
        let t = x / r;
        let y = f(x);
        let pw: Vec<f64> = (0..d).map(|k| t.powi(k as i32)).collect();
        for (a, row) in ata.iter_mut().enumerate() {
            atb[a] += pw[a] * y;
            for (b, v) in row.iter_mut().enumerate() {
                *v += pw[a] * pw[b];
            }
        }
    }
    let c = solve(ata, atb);
    c.iter()
        .enumerate()
        .map(|(k, v)| v / r.powi(k as i32))
        .collect()
}

/// Gaussian elimination with partial pivoting (small dense systems).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, piv);
        b.swap(col, piv);
        let p = a[col][col];
        if p == 0.0 {
            continue;
        }
        let pivot_row = a[col].clone();
        for row in col + 1..n {
            let f = a[row][col] / p;
            for (dst, src) in a[row].iter_mut().zip(&pivot_row).skip(col) {
                *dst -= f * src;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0f64; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = if a[row][row] == 0.0 {
            0.0
        } else {
            (b[row] - s) / a[row][row]
        };
    }
    x
}

/// Horner evaluation of `sum c_k x^k` and its derivative.
#[inline]
fn poly_and_deriv(c: &[f32], x: f32) -> (f32, f32) {
    let mut p = 0f32;
    let mut dp = 0f32;
    for &a in c.iter().rev() {
        dp = dp * x + p;
        p = p * x + a;
    }
    (p, dp)
}

/// The one activation vocabulary: which activation a layer has, by name.
/// A spec's per-layer `act`, a weights file's activation records, reports
/// and the CLI all use it; it is serialised by [`Self::name`] (`relu`,
/// `x2`, `slaf`, `slaf-p`), the spelling of every weights file written so
/// far. How an activation is trained ([`crate::Variant`]: SLAF-R is a
/// recipe, not an activation) and how it is evaluated (the inference
/// form's polynomial) are separate types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ActKind {
    /// ReLU (plaintext only).
    Relu,
    /// x² (CryptoNets).
    X2,
    /// SLAF: a trainable polynomial of the layer's `degree` (default: the
    /// training degree).
    Slaf,
    /// SLAF-P: `(x + x s(x)) / 2` with a polynomial sign approximation s.
    SlafP,
}

impl ActKind {
    /// Every kind.
    pub const ALL: [ActKind; 4] = [Self::Relu, Self::X2, Self::Slaf, Self::SlafP];

    /// Its name: `relu`, `x2`, `slaf` or `slaf-p`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Relu => "relu",
            Self::X2 => "x2",
            Self::Slaf => "slaf",
            Self::SlafP => "slaf-p",
        }
    }

    /// The kind called `name` ([`Self::name`]), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether CKKS can evaluate it (everything but ReLU).
    pub fn is_polynomial(self) -> bool {
        self != Self::Relu
    }
}

impl std::fmt::Display for ActKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An activation function; itself a layer.
#[derive(Clone, Debug)]
pub enum Activation {
    /// max(x, 0) (plaintext reference only).
    Relu,
    /// x² (CryptoNets).
    Square,
    /// Trainable polynomial.
    Slaf(Slaf),
    /// `(x + x s(x)) / 2`.
    SlafP(SlafP),
}

impl Activation {
    /// Which activation it is.
    pub fn kind(&self) -> ActKind {
        match self {
            Self::Relu => ActKind::Relu,
            Self::Square => ActKind::X2,
            Self::Slaf(_) => ActKind::Slaf,
            Self::SlafP(_) => ActKind::SlafP,
        }
    }

    /// Short name: `relu`, `x2`, `slaf`, `slaf-p` ([`ActKind::name`]).
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Elementwise forward pass.
    pub fn forward(&self, x: &Array2<f32>) -> Array2<f32> {
        match self {
            Self::Relu => x.mapv(|v| v.max(0.0)),
            Self::Square => x.mapv(|v| v * v),
            Self::Slaf(s) => {
                let c = s.coeffs.value.to_vec();
                x.mapv(|v| poly_and_deriv(&c, v).0)
            }
            Self::SlafP(p) => {
                let c = p.s.value.to_vec();
                x.mapv(|v| 0.5 * (v + v * poly_and_deriv(&c, v).0))
            }
        }
    }

    /// Backward pass given the forward input `x`: sets coefficient
    /// gradients, returns the input gradient.
    pub fn backward(&mut self, x: &Array2<f32>, dy: &Array2<f32>) -> Array2<f32> {
        let mut dx = Array2::<f32>::zeros(x.raw_dim());
        match self {
            Self::Relu => Zip::from(&mut dx)
                .and(x)
                .and(dy)
                .for_each(|d, &v, &g| *d = if v > 0.0 { g } else { 0.0 }),
            Self::Square => Zip::from(&mut dx)
                .and(x)
                .and(dy)
                .for_each(|d, &v, &g| *d = 2.0 * v * g),
            Self::Slaf(s) => {
                let c = s.coeffs.value.to_vec();
                let mut gc = vec![0f64; c.len()];
                Zip::from(&mut dx).and(x).and(dy).for_each(|d, &v, &g| {
                    *d = poly_and_deriv(&c, v).1 * g;
                    let mut pw = f64::from(g);
                    for gk in gc.iter_mut() {
                        *gk += pw;
                        pw *= f64::from(v);
                    }
                });
                s.coeffs.grad = gc.iter().map(|&v| v as f32).collect();
            }
            Self::SlafP(p) => {
                let c = p.s.value.to_vec();
                let mut gc = vec![0f64; c.len()];
                Zip::from(&mut dx).and(x).and(dy).for_each(|d, &v, &g| {
                    let (sv, ds) = poly_and_deriv(&c, v);
                    *d = 0.5 * (1.0 + sv + v * ds) * g;
                    let mut pw = 0.5 * f64::from(g) * f64::from(v);
                    for gk in gc.iter_mut() {
                        *gk += pw;
                        pw *= f64::from(v);
                    }
                });
                p.s.grad = gc.iter().map(|&v| v as f32).collect();
            }
        }
        dx
    }

    /// The activation as a power-basis polynomial in f64, or `None` for ReLU.
    /// SLAF-P `(x + x s(x))/2` becomes `x/2 + sum c_k x^(k+1) / 2`.
    pub fn as_polynomial(&self) -> Option<Vec<f64>> {
        match self {
            Self::Relu => None,
            Self::Square => Some(vec![0.0, 0.0, 1.0]),
            Self::Slaf(s) => Some(s.coeffs.value.iter().map(|&v| f64::from(v)).collect()),
            Self::SlafP(p) => {
                let mut c = vec![0f64; p.s.value.len() + 2];
                c[1] = 0.5;
                for (k, &v) in p.s.value.iter().enumerate() {
                    c[k + 1] += 0.5 * f64::from(v);
                }
                Some(c)
            }
        }
    }

    /// The trainable coefficient vector, if any.
    pub fn param(&mut self) -> Option<&mut Param<ndarray::Ix1>> {
        match self {
            Self::Relu | Self::Square => None,
            Self::Slaf(s) => Some(&mut s.coeffs),
            Self::SlafP(p) => Some(&mut p.s),
        }
    }
}

/// Largest |input| an activation layer has seen, separately in training and
/// evaluation passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MaxAbs {
    /// Over training batches.
    pub train: f32,
    /// Over evaluation (test) passes.
    pub test: f32,
}

impl MaxAbs {
    /// The larger of the two.
    pub fn overall(&self) -> f32 {
        self.train.max(self.test)
    }
}

/// An activation layer: the function, its cached input, and the max |input| record.
#[derive(Clone, Debug)]
pub struct ActLayer {
    /// The activation function.
    pub act: Activation,
    /// Max |input| seen so far.
    pub max_abs: MaxAbs,
    input: Option<Array2<f32>>,
}

impl ActLayer {
    /// Wrap an activation.
    pub fn new(act: Activation) -> Self {
        Self {
            act,
            max_abs: MaxAbs::default(),
            input: None,
        }
    }
    /// Forward pass; records max |input| and caches the input in training mode.
    pub fn forward(&mut self, x: &Array2<f32>, mode: Mode) -> Array2<f32> {
        let m = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let y = self.act.forward(x);
        match mode {
            Mode::Train => {
                self.max_abs.train = self.max_abs.train.max(m);
                self.input = Some(x.clone());
            }
            Mode::Eval => self.max_abs.test = self.max_abs.test.max(m),
        }
        y
    }
    /// Backward pass through the cached input.
    pub fn backward(&mut self, dy: &Array2<f32>) -> Array2<f32> {
        match &self.input {
            Some(x) => self.act.backward(x, dy),
            None => Array2::zeros(dy.raw_dim()),
        }
    }
    /// Flat parameter views (empty for ReLU and square).
    pub fn params_mut(&mut self, prefix: &str) -> Vec<ParamMut<'_>> {
        self.act
            .param()
            .map(|p| vec![p.as_mut(format!("{prefix}.coeffs"))])
            .unwrap_or_default()
    }
}
