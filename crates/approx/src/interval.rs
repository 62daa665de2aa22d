//! Interval analysis (SPEC §6): for eps = 0.00, 0.01, …, 0.50 the points
//! with |x| < eps are dropped and the metrics recomputed. Polynomial
//! approximations are kept as fitted on the full grid (this reproduces the
//! published reference points); the Fourier series is refitted, frequency
//! included, on each reduced set, as the original did. Relative norms still
//! divide by the norms of sign over the full grid.

use super::methods::{Approximation, Method, Representation, build, fit_fourier, sign};
use super::metrics::{Metrics, metrics, sign_norms};
use super::{ApproxError, grid};
use rayon::prelude::*;

/// One row of the interval analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct IntervalRow {
    /// Points with |x| < eps were dropped.
    pub eps: f64,
    /// The method.
    pub method: Method,
    /// Metrics on the reduced set.
    pub metrics: Metrics,
}

/// The eps values of the study: 0.00 to 0.50 in steps of 0.01.
pub fn eps_values() -> Vec<f64> {
    (0..=50).map(|i| i as f64 / 100.0).collect()
}

/// Run the interval analysis for `methods` at each of `eps` (each in [0, 1)).
pub fn interval_analysis(
    methods: &[Method],
    eps: &[f64],
    minimax_eps: f64,
) -> Result<Vec<IntervalRow>, ApproxError> {
    if let Some(&bad) = eps.iter().find(|e| !(0.0..1.0).contains(*e)) {
        return Err(ApproxError::InvalidEps { eps: bad });
    }
    let full = grid();
    let norms = sign_norms(&full);
    let fitted: Vec<Approximation> = methods
        .iter()
        .map(|&m| build(m, &full, minimax_eps))
        .collect::<Result<_, _>>()?;
    let per_eps: Vec<Vec<IntervalRow>> = eps
        .par_iter()
        .map(|&e| {
            // Keep |x| >= eps (up to rounding of the grid values).
            let pts: Vec<f64> = full
                .iter()
                .copied()
                .filter(|x| x.abs() >= e - 1e-12)
                .collect();
            if pts.is_empty() {
                return Err(ApproxError::EmptyPoints);
            }
            fitted
                .iter()
                .map(|a| {
                    let approx = if matches!(a.repr, Representation::Fourier { .. }) {
                        let y: Vec<f64> = pts.iter().map(|&x| sign(x)).collect();
                        Approximation {
                            method: a.method,
                            repr: fit_fourier(&pts, &y, super::methods::FOURIER_ORDER)?,
                        }
                    } else {
                        a.clone()
                    };
                    let vals: Vec<f64> = pts.iter().map(|&x| approx.eval(x)).collect();
                    Ok(IntervalRow {
                        eps: e,
                        method: a.method,
                        metrics: metrics(&pts, &vals, norms)?,
                    })
                })
                .collect()
        })
        .collect::<Result<_, _>>()?;
    Ok(per_eps.into_iter().flatten().collect())
}
