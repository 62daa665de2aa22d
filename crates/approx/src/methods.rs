//! The approximations of sign(x) on [-1, 1] studied in P2 (least squares,
//! composition, Newton, Chebyshev, Fourier) and two minimax methods beyond
//! it, each with its representation, degree and multiplicative depth.

use super::poly::{
    chebyshev_to_power, compose, eval_chebyshev, eval_power, linspace, lstsq, power_to_chebyshev,
};
use super::{ApproxError, minimax};
use std::time::Instant;

/// The published chebfun coefficients of the original (T0..T9).
pub const CHEBFUN_PUBLISHED: [f64; 10] = [
    0.0, 1.2797, 0.0, -0.4444, 0.0, 0.2901, 0.0, -0.2365, 0.0, 0.1111,
];
/// f(t) = -t^3/2 + 3t/2 (Cheon et al.), power basis.
pub const F_CUBIC: [f64; 4] = [0.0, 1.5, 0.0, -0.5];
/// g(x) = -(1359/1024) x^3 + (2126/1024) x, power basis.
pub const G_CUBIC: [f64; 4] = [0.0, 2126.0 / 1024.0, 0.0, -1359.0 / 1024.0];
/// Fourier order of the study.
pub const FOURIER_ORDER: usize = 9;
/// Default eps of the minimax methods (sign approximated on [-1,-eps] ∪ \[eps,1\]).
pub const DEFAULT_MINIMAX_EPS: f64 = 0.05;

/// The methods of the study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// Degree-9 least-squares fit on the points.
    LeastSquares,
    /// f(g(x)) with the cubics of Cheon et al.
    Composition,
    /// Newton-Raphson f(f(x)).
    Newton,
    /// Degree-9 Chebyshev interpolant (10 Chebyshev points of the second kind, as chebfun).
    Chebyshev,
    /// The original's published chebfun coefficients.
    ChebyshevPublished,
    /// Order-9 Fourier series with fitted frequency.
    Fourier,
    /// Odd degree-9 minimax (Remez) on [-1,-eps] ∪ \[eps,1\].
    Minimax,
    /// Composite of two odd degree-7 minimax stages (Lee et al. style).
    CompositeMinimax,
}

impl Method {
    /// Every method, in table order.
    pub const ALL: [Method; 8] = [
        Method::LeastSquares,
        Method::Composition,
        Method::Newton,
        Method::Chebyshev,
        Method::ChebyshevPublished,
        Method::Fourier,
        Method::Minimax,
        Method::CompositeMinimax,
    ];

    /// The five methods of the original study (plus the published Chebyshev row).
    pub const ORIGINAL: [Method; 5] = [
        Method::LeastSquares,
        Method::Composition,
        Method::Newton,
        Method::Chebyshev,
        Method::Fourier,
    ];

    /// Name used in CSV files (a contract).
    pub fn name(self) -> &'static str {
        match self {
            Method::LeastSquares => "least_squares",
            Method::Composition => "composition",
            Method::Newton => "newton",
            Method::Chebyshev => "chebyshev",
            Method::ChebyshevPublished => "chebyshev_published",
            Method::Fourier => "fourier",
            Method::Minimax => "minimax",
            Method::CompositeMinimax => "composite_minimax",
        }
    }
}

/// How an approximation is represented.
#[derive(Clone, Debug, PartialEq)]
pub enum Representation {
    /// `sum c_k x^k`.
    Power(Vec<f64>),
    /// `sum c_k T_k(x)` on [-1, 1].
    Chebyshev(Vec<f64>),
    /// Power-basis stages applied innermost first: `s_last(...s_1(s_0(x)))`.
    Stages(Vec<Vec<f64>>),
    /// `a0 + sum_k a_k cos(k w x) + b_k sin(k w x)`.
    Fourier {
        /// Fitted frequency.
        w: f64,
        /// Constant term.
        a0: f64,
        /// Cosine coefficients, k = 1..
        a: Vec<f64>,
        /// Sine coefficients, k = 1..
        b: Vec<f64>,
    },
}

/// One approximation of sign(x).
#[derive(Clone, Debug, PartialEq)]
pub struct Approximation {
    /// Which method produced it.
    pub method: Method,
    /// Its representation.
    pub repr: Representation,
}

fn depth_of_degree(d: usize) -> usize {
    // ceil(log2(d + 1))
    (usize::BITS - d.leading_zeros()) as usize
}

impl Approximation {
    /// Evaluate at `x`.
    pub fn eval(&self, x: f64) -> f64 {
        match &self.repr {
            Representation::Power(c) => eval_power(c, x),
            Representation::Chebyshev(c) => eval_chebyshev(c, x),
            Representation::Stages(s) => s.iter().fold(x, |v, c| eval_power(c, v)),
            Representation::Fourier { w, a0, a, b } => {
                a0 + a
                    .iter()
                    .zip(b)
                    .enumerate()
                    .map(|(k, (ak, bk))| {
                        let t = (k + 1) as f64 * w * x;
                        ak * t.cos() + bk * t.sin()
                    })
                    .sum::<f64>()
            }
        }
    }

    /// Basis name for tables: `power`, `chebyshev`, `composite` or `fourier`.
    pub fn basis(&self) -> &'static str {
        match self.repr {
            Representation::Power(_) => "power",
            Representation::Chebyshev(_) => "chebyshev",
            Representation::Stages(_) => "composite",
            Representation::Fourier { .. } => "fourier",
        }
    }

    /// Total polynomial degree (Fourier: its order).
    pub fn degree(&self) -> usize {
        match &self.repr {
            Representation::Power(c) | Representation::Chebyshev(c) => c.len().saturating_sub(1),
            Representation::Stages(s) => s.iter().map(|c| c.len().saturating_sub(1)).product(),
            Representation::Fourier { a, .. } => a.len(),
        }
    }

    /// Multiplicative depth of the depth-optimal evaluation: ⌈log2(d+1)⌉
    /// per polynomial stage, summed. Fourier: depth of its degree-`d`
    /// Chebyshev conversion, see [`Approximation::he_stages`].
    pub fn depth(&self) -> usize {
        match &self.repr {
            Representation::Stages(s) => s
                .iter()
                .map(|c| depth_of_degree(c.len().saturating_sub(1)))
                .sum(),
            Representation::Fourier { .. } => depth_of_degree(FOURIER_HE_DEGREE),
            _ => depth_of_degree(self.degree()),
        }
    }

    /// The polynomial stages an encrypted evaluation runs, each in the
    /// Chebyshev basis on [-1, 1] except composite stages (power basis on
    /// their own input range), with the max error of the conversion on the
    /// 1000-point grid (zero except for Fourier).
    pub fn he_stages(&self) -> (Vec<HeStage>, f64) {
        match &self.repr {
            Representation::Power(c) => (vec![HeStage::Power(c.clone())], 0.0),
            Representation::Chebyshev(c) => (vec![HeStage::Chebyshev(c.clone())], 0.0),
            Representation::Stages(s) => (s.iter().cloned().map(HeStage::Power).collect(), 0.0),
            Representation::Fourier { .. } => {
                let c = chebyshev_interpolant(|x| self.eval(x), FOURIER_HE_DEGREE);
                let err = linspace(-1.0, 1.0, 1000)
                    .into_iter()
                    .map(|x| (eval_chebyshev(&c, x) - self.eval(x)).abs())
                    .fold(0.0, f64::max);
                (vec![HeStage::Chebyshev(c)], err)
            }
        }
    }

    /// The expanded power-basis coefficients, where the approximation is a
    /// polynomial (not Fourier).
    pub fn power_coeffs(&self) -> Option<Vec<f64>> {
        match &self.repr {
            Representation::Power(c) => Some(c.clone()),
            Representation::Chebyshev(c) => Some(chebyshev_to_power(c)),
            Representation::Stages(s) => Some(
                s.iter()
                    .fold(vec![0.0, 1.0], |acc, stage| compose(stage, &acc)),
            ),
            Representation::Fourier { .. } => None,
        }
    }
}

/// One polynomial of an encrypted evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum HeStage {
    /// Power-basis coefficients.
    Power(Vec<f64>),
    /// Chebyshev coefficients on [-1, 1].
    Chebyshev(Vec<f64>),
}

/// Degree of the Chebyshev polynomial that stands in for the Fourier
/// series under encryption (depth 6, the whole chain of the study; conversion error ~2e-10).
pub const FOURIER_HE_DEGREE: usize = 47;

/// Chebyshev interpolant (the one fitter, in the CKKS circuit layer).
pub use slaf_ckks::circuits::chebyshev_interpolant;

/// Least-squares polynomial of `degree` fitted to `(x, y)` (solved in the
/// Chebyshev basis by QR, then converted to the power basis).
pub fn least_squares(x: &[f64], y: &[f64], degree: usize) -> Result<Vec<f64>, ApproxError> {
    if degree == 0 {
        return Err(ApproxError::InvalidDegree { degree });
    }
    let cols: Vec<Vec<f64>> = (0..=degree)
        .map(|k| {
            let mut e = vec![0.0; k + 1];
            e[k] = 1.0;
            x.iter().map(|&v| eval_chebyshev(&e, v)).collect()
        })
        .collect();
    let c = lstsq(&cols, y)?;
    Ok(chebyshev_to_power(&c))
}

/// Fit a Fourier series of `order` with its frequency: a grid search over
/// w ∈ [0.5, 4] (step 1e-3) with linear least squares for the coefficients
/// at each w, refined by golden-section search around the best grid point.
pub fn fit_fourier(x: &[f64], y: &[f64], order: usize) -> Result<Representation, ApproxError> {
    if order == 0 {
        return Err(ApproxError::InvalidDegree { degree: 0 });
    }
    let sse = |w: f64| -> Result<(f64, Vec<f64>), ApproxError> {
        let mut cols = vec![vec![1.0; x.len()]];
        for k in 1..=order {
            cols.push(x.iter().map(|&v| (k as f64 * w * v).cos()).collect());
            cols.push(x.iter().map(|&v| (k as f64 * w * v).sin()).collect());
        }
        let c = lstsq(&cols, y)?;
        let e = x
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let p: f64 = cols.iter().zip(&c).map(|(col, ck)| col[i] * ck).sum();
                (y[i] - p).powi(2)
            })
            .sum();
        Ok((e, c))
    };
    let mut best = (f64::INFINITY, 0.5);
    let mut w = 0.5;
    while w <= 4.0 {
        if let Ok((e, _)) = sse(w)
            && e < best.0
        {
            best = (e, w);
        }
        w += 0.01;
    }
    // Golden-section refinement in [w - 0.01, w + 0.01].
    let (mut lo, mut hi) = (best.1 - 0.01, best.1 + 0.01);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let a = hi - g * (hi - lo);
        let b = lo + g * (hi - lo);
        let ea = sse(a).map_or(f64::INFINITY, |r| r.0);
        let eb = sse(b).map_or(f64::INFINITY, |r| r.0);
        if ea < eb {
            hi = b;
        } else {
            lo = a;
        }
    }
    let w = 0.5 * (lo + hi);
    let (_, c) = sse(w)?;
    let a0 = c[0];
    let a = (0..order).map(|k| c[1 + 2 * k]).collect();
    let b = (0..order).map(|k| c[2 + 2 * k]).collect();
    Ok(Representation::Fourier { w, a0, a, b })
}

/// sign(x) with sign(0) = 0 (numpy's convention).
pub fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Build the approximation of `method`, fitting on `points` where it is
/// fitted (least squares, Fourier). `eps` is used by the minimax methods.
pub fn build(method: Method, points: &[f64], eps: f64) -> Result<Approximation, ApproxError> {
    if points.is_empty() {
        return Err(ApproxError::EmptyPoints);
    }
    let y: Vec<f64> = points.iter().map(|&x| sign(x)).collect();
    let repr = match method {
        Method::LeastSquares => Representation::Power(least_squares(points, &y, 9)?),
        Method::Composition => Representation::Stages(vec![G_CUBIC.to_vec(), F_CUBIC.to_vec()]),
        Method::Newton => Representation::Stages(vec![F_CUBIC.to_vec(), F_CUBIC.to_vec()]),
        Method::Chebyshev => Representation::Chebyshev(chebyshev_interpolant(sign, 9)),
        Method::ChebyshevPublished => Representation::Chebyshev(CHEBFUN_PUBLISHED.to_vec()),
        Method::Fourier => fit_fourier(points, &y, FOURIER_ORDER)?,
        Method::Minimax => Representation::Power(minimax::odd_sign_minimax(9, eps, 1.0)?.coeffs),
        Method::CompositeMinimax => {
            Representation::Stages(minimax::composite_sign_minimax(&[7, 7], eps)?)
        }
    };
    Ok(Approximation { method, repr })
}

/// The as-published defective variants of the original's encrypted
/// evaluation, as power-basis polynomials: the x⁹ term dropped (least
/// squares, composition, Newton), Chebyshev coefficients used as power
/// coefficients (Chebyshev). `None` for methods without a known defect.
pub fn as_published(a: &Approximation) -> Option<(Vec<f64>, &'static str)> {
    match a.method {
        Method::LeastSquares | Method::Composition | Method::Newton => {
            let mut c = a.power_coeffs()?;
            if c.len() > 9 {
                c[9] = 0.0;
            }
            Some((c, "x^9 term dropped"))
        }
        Method::Chebyshev | Method::ChebyshevPublished => match &a.repr {
            Representation::Chebyshev(c) => Some((
                c.clone(),
                "Chebyshev coefficients evaluated as power-basis ones",
            )),
            _ => None,
        },
        _ => None,
    }
}

/// Mean and median wall time (milliseconds) of building `method` `runs` times.
pub fn time_generation(
    method: Method,
    points: &[f64],
    eps: f64,
    runs: usize,
) -> Result<(f64, f64), ApproxError> {
    let mut t = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let s = Instant::now();
        let a = build(method, points, eps)?;
        std::hint::black_box(&a);
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    let mean = t.iter().sum::<f64>() / t.len() as f64;
    t.sort_by(f64::total_cmp);
    Ok((mean, t[t.len() / 2]))
}

/// Convenience: power-basis coefficients to Chebyshev (re-exported for HE callers).
pub fn to_chebyshev(p: &[f64]) -> Vec<f64> {
    power_to_chebyshev(p)
}
