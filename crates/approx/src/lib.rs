//! The P2 study: approximations of sign(x) on [-1, 1] (least squares,
//! composition, Newton, Chebyshev, Fourier, and beyond the original a
//! minimax and a composite minimax), their accuracy metrics on 1000 evenly
//! spaced points, the interval analysis, the original's "as published"
//! encrypted-evaluation defects, and exact comparison with TFHE-rs.
//!
//! Everything here is plaintext f64 math except [`tfhe_exact`]; encrypted
//! evaluation of the polynomials uses [`slaf_ckks`] through
//! [`methods::Approximation::he_stages`].

pub mod he_eval;
pub mod interval;
pub mod methods;
pub mod metrics;
pub mod minimax;
pub mod poly;
#[cfg(feature = "tfhe-rs")]
pub mod tfhe_exact;

pub use interval::{IntervalRow, eps_values, interval_analysis};
pub use methods::{Approximation, HeStage, Method, Representation, as_published, build};
pub use metrics::{Metrics, metrics, sign_norms};

/// Number of evenly spaced points of the study.
pub const GRID_POINTS: usize = 1000;

/// The study's grid: 1000 evenly spaced points of [-1, 1], endpoints included.
pub fn grid() -> Vec<f64> {
    poly::linspace(-1.0, 1.0, GRID_POINTS)
}

/// Errors of the approximation study.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApproxError {
    /// eps must lie in [0, 1) (minimax: in (0, 1)).
    #[error("invalid eps {eps}: it must lie in [0, 1) (and be > 0 for minimax)")]
    InvalidEps {
        /// The value given.
        eps: f64,
    },
    /// The degree is not allowed (0, or even for an odd minimax).
    #[error("invalid degree {degree}: must be >= 1 (odd for minimax)")]
    InvalidDegree {
        /// The value given.
        degree: usize,
    },
    /// No points to fit or measure on.
    #[error("empty point set (or values of another length)")]
    EmptyPoints,
    /// A numerical step failed (rank deficiency, no convergence).
    #[error("numerical failure: {detail}")]
    Numerical {
        /// What failed.
        detail: String,
    },
}

/// Metrics of an approximation on the full study grid.
pub fn full_metrics(a: &Approximation) -> Result<Metrics, ApproxError> {
    let g = grid();
    let vals: Vec<f64> = g.iter().map(|&x| a.eval(x)).collect();
    metrics(&g, &vals, sign_norms(&g))
}
