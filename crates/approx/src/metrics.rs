//! The P2 accuracy metrics of an approximation p of sign on a point set:
//! R² (squared Pearson correlation), chi-square, the L1/L2/L∞ norms of
//! |sign − p| and the same norms relative to those of sign over the full
//! [-1, 1] grid, in percent.
//!
//! Definitions (as the original computed them, verified against SPEC §6):
//! L1 = Σ|d|, L2 = sqrt(Σ d²), L∞ = max |d| with d = sign(x) − p(x).
//! Chi-square is Pearson's Σ (p − s)² / |s| with the absolute value of the
//! expected value s = sign(x) (the textbook Σ (o − e)²/e is meaningless for
//! e = −1); since |sign| = 1 on the grid it equals L2².

use super::ApproxError;
use super::methods::sign;

/// Metrics of one approximation on one point set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// Squared Pearson correlation between sign(x) and p(x).
    pub r2: f64,
    /// Pearson chi-square with |expected| (see the module docs).
    pub chi2: f64,
    /// Σ |sign − p|.
    pub l1: f64,
    /// sqrt(Σ (sign − p)²).
    pub l2: f64,
    /// max |sign − p|.
    pub linf: f64,
    /// 100 · L1 / L1(sign over the full grid).
    pub rel_l1_pct: f64,
    /// 100 · L2 / L2(sign over the full grid).
    pub rel_l2_pct: f64,
    /// 100 · L∞ / L∞(sign over the full grid).
    pub rel_linf_pct: f64,
}

/// Norms (L1, L2, L∞) of sign over a point set.
pub fn sign_norms(points: &[f64]) -> (f64, f64, f64) {
    let s: Vec<f64> = points.iter().map(|&x| sign(x).abs()).collect();
    (
        s.iter().sum(),
        s.iter().map(|v| v * v).sum::<f64>().sqrt(),
        s.iter().fold(0.0, |a: f64, &v| a.max(v)),
    )
}

/// Metrics of `values` (p at `points`) against sign; relative norms divide
/// by `full_norms` (the norms of sign over the full grid).
pub fn metrics(
    points: &[f64],
    values: &[f64],
    full_norms: (f64, f64, f64),
) -> Result<Metrics, ApproxError> {
    if points.is_empty() || points.len() != values.len() {
        return Err(ApproxError::EmptyPoints);
    }
    let n = points.len() as f64;
    let s: Vec<f64> = points.iter().map(|&x| sign(x)).collect();
    let d: Vec<f64> = s.iter().zip(values).map(|(a, b)| a - b).collect();
    let l1: f64 = d.iter().map(|v| v.abs()).sum();
    let l2 = d.iter().map(|v| v * v).sum::<f64>().sqrt();
    let linf = d.iter().fold(0.0, |a: f64, v| a.max(v.abs()));
    let chi2 = s
        .iter()
        .zip(values)
        .filter(|(e, _)| **e != 0.0)
        .map(|(e, o)| (o - e).powi(2) / e.abs())
        .sum();
    let (ms, mp) = (s.iter().sum::<f64>() / n, values.iter().sum::<f64>() / n);
    let cov: f64 = s.iter().zip(values).map(|(a, b)| (a - ms) * (b - mp)).sum();
    let vs: f64 = s.iter().map(|a| (a - ms).powi(2)).sum();
    let vp: f64 = values.iter().map(|b| (b - mp).powi(2)).sum();
    let r2 = if vs > 0.0 && vp > 0.0 {
        cov * cov / (vs * vp)
    } else {
        f64::NAN
    };
    let rel = |a: f64, b: f64| if b > 0.0 { 100.0 * a / b } else { f64::NAN };
    Ok(Metrics {
        r2,
        chi2,
        l1,
        l2,
        linf,
        rel_l1_pct: rel(l1, full_norms.0),
        rel_l2_pct: rel(l2, full_norms.1),
        rel_linf_pct: rel(linf, full_norms.2),
    })
}
