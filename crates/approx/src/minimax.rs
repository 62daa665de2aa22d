//! Minimax (Remez exchange) odd polynomial approximations of sign(x) on
//! [-b, -a] ∪ \[a, b\], and composites of such stages (in the spirit of
//! Lee et al. and Lattigo's comparison circuit).
//!
//! By oddness, approximating sign on [-b,-a] ∪ \[a,b\] is approximating the
//! constant 1 on \[a, b\] with `p(x) = sum_j c_j x^(2j+1)`.

use super::ApproxError;
use super::poly::{eval_power, linspace, lstsq};

/// A minimax polynomial and its equioscillation error.
#[derive(Clone, Debug, PartialEq)]
pub struct MinimaxPoly {
    /// Power-basis coefficients (even ones are zero).
    pub coeffs: Vec<f64>,
    /// max |1 - p(x)| over \[a, b\].
    pub max_error: f64,
    /// Remez iterations used.
    pub iterations: usize,
}

fn odd_eval(c: &[f64], x: f64) -> f64 {
    // c holds the odd coefficients c_0 (x), c_1 (x^3), ...
    let x2 = x * x;
    x * c.iter().rev().fold(0.0, |acc, &a| acc * x2 + a)
}

/// Alternating extrema of `e` on the grid: one point per sign-constant run
/// (the largest |e| there).
fn alternating_extrema(grid: &[f64], e: &[f64]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    let mut best: Option<usize> = None;
    for i in 0..grid.len() {
        match best {
            None => best = Some(i),
            Some(b) => {
                if e[i].signum() != e[b].signum() && e[i] != 0.0 {
                    out.push(b);
                    best = Some(i);
                } else if e[i].abs() > e[b].abs() {
                    best = Some(i);
                }
            }
        }
    }
    if let Some(b) = best {
        out.push(b);
    }
    out
}

/// Odd minimax polynomial of odd `degree` approximating 1 on \[a, b\] (so
/// sign on [-b,-a] ∪ \[a,b\]), by the Remez exchange algorithm.
pub fn odd_sign_minimax(degree: usize, a: f64, b: f64) -> Result<MinimaxPoly, ApproxError> {
    if degree == 0 || degree.is_multiple_of(2) {
        return Err(ApproxError::InvalidDegree { degree });
    }
    if !(a > 0.0 && a < b && b.is_finite()) {
        return Err(ApproxError::InvalidEps { eps: a });
    }
    let m = degree / 2 + 1; // number of odd coefficients
    let n_ref = m + 1;
    let grid = linspace(a, b, 20_000);
    // Initial reference: Chebyshev extrema mapped to \[a, b\].
    let mut reference: Vec<f64> = (0..n_ref)
        .map(|i| {
            let t = (std::f64::consts::PI * i as f64 / (n_ref - 1) as f64).cos();
            0.5 * (a + b) - 0.5 * (b - a) * t
        })
        .collect();
    let mut coeffs = vec![0.0; m];
    let mut max_err = f64::INFINITY;
    for it in 1..=100 {
        // Solve p(x_i) + (-1)^i E = 1.
        let mut cols: Vec<Vec<f64>> = (0..m)
            .map(|j| {
                reference
                    .iter()
                    .map(|&x| x.powi(2 * j as i32 + 1))
                    .collect()
            })
            .collect();
        cols.push(
            (0..n_ref)
                .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
                .collect(),
        );
        let sol = lstsq(&cols, &vec![1.0; n_ref])?;
        coeffs = sol[..m].to_vec();
        let level = sol[m].abs();
        let e: Vec<f64> = grid.iter().map(|&x| 1.0 - odd_eval(&coeffs, x)).collect();
        max_err = e.iter().fold(0.0, |acc: f64, v| acc.max(v.abs()));
        if max_err - level <= 1e-10 * max_err.max(1e-300) {
            return Ok(finish(coeffs, max_err, it));
        }
        let mut ext = alternating_extrema(&grid, &e);
        // Keep n_ref alternating extrema: drop the smaller end while too many.
        while ext.len() > n_ref {
            let first = e[ext[0]].abs();
            let last = e[ext[ext.len() - 1]].abs();
            if first < last {
                ext.remove(0);
            } else {
                ext.pop();
            }
        }
        if ext.len() < n_ref {
            // Converged as far as the grid allows.
            return Ok(finish(coeffs, max_err, it));
        }
        reference = ext.iter().map(|&i| grid[i]).collect();
    }
    Ok(finish(coeffs, max_err, 100))
}

fn finish(odd: Vec<f64>, max_error: f64, iterations: usize) -> MinimaxPoly {
    let mut coeffs = vec![0.0; 2 * odd.len()];
    for (j, c) in odd.iter().enumerate() {
        coeffs[2 * j + 1] = *c;
    }
    MinimaxPoly {
        coeffs,
        max_error,
        iterations,
    }
}

/// A composite of odd minimax stages of the given degrees for sign on
/// [-1,-eps] ∪ \[eps,1\]: stage 1 on \[eps, 1\], each next stage on the image
/// interval of the previous one. Returns the power-basis stages, innermost
/// first.
pub fn composite_sign_minimax(degrees: &[usize], eps: f64) -> Result<Vec<Vec<f64>>, ApproxError> {
    if !(0.0..1.0).contains(&eps) || eps == 0.0 {
        return Err(ApproxError::InvalidEps { eps });
    }
    if degrees.is_empty() {
        return Err(ApproxError::InvalidDegree { degree: 0 });
    }
    let (mut lo, mut hi) = (eps, 1.0);
    let mut stages = Vec::new();
    for &d in degrees {
        let p = odd_sign_minimax(d, lo, hi)?;
        // Image of [lo, hi] under p (monotone enough on a fine grid).
        let img: Vec<f64> = linspace(lo, hi, 20_000)
            .into_iter()
            .map(|x| eval_power(&p.coeffs, x))
            .collect();
        let (a, b) = img
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        stages.push(p.coeffs);
        if a <= 0.0 {
            return Err(ApproxError::Numerical {
                detail: format!(
                    "composite minimax stage of degree {d} does not keep [eps, 1] positive"
                ),
            });
        }
        lo = a;
        hi = b;
    }
    Ok(stages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remez_equioscillates_and_beats_least_squares_on_the_interval() {
        let p = odd_sign_minimax(9, 0.05, 1.0).expect("remez");
        let grid = linspace(0.05, 1.0, 5000);
        let e: Vec<f64> = grid
            .iter()
            .map(|&x| 1.0 - eval_power(&p.coeffs, x))
            .collect();
        let max = e.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        assert!((max - p.max_error).abs() < 1e-3 * max);
        // 6 alternating extrema of (almost) equal magnitude.
        let ext = alternating_extrema(&grid, &e);
        assert!(ext.len() >= 6, "{}", ext.len());
        for &i in &ext[..6] {
            assert!(e[i].abs() > 0.98 * max);
        }
        assert!(p.coeffs.iter().step_by(2).all(|&c| c == 0.0), "odd");
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(odd_sign_minimax(8, 0.1, 1.0).is_err());
        assert!(odd_sign_minimax(0, 0.1, 1.0).is_err());
        assert!(odd_sign_minimax(9, 0.0, 1.0).is_err());
        assert!(composite_sign_minimax(&[7, 7], 1.0).is_err());
        assert!(composite_sign_minimax(&[], 0.1).is_err());
    }
}
