//! Small numerical kernels for the approximation study: polynomial
//! evaluation in the power and Chebyshev bases, basis conversion, and a
//! Householder-QR least-squares solver (no LAPACK needed).

use super::ApproxError;

/// Evaluate `c[0] + c[1] x + ... + c[d] x^d` (Horner).
pub fn eval_power(c: &[f64], x: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &a| acc * x + a)
}

/// Evaluate `sum c[k] T_k(x)` (Clenshaw).
pub fn eval_chebyshev(c: &[f64], x: f64) -> f64 {
    let (mut b1, mut b2) = (0.0, 0.0);
    for &a in c.iter().skip(1).rev() {
        let b0 = 2.0 * x * b1 - b2 + a;
        b2 = b1;
        b1 = b0;
    }
    c.first().copied().unwrap_or(0.0) + x * b1 - b2
}

/// Power-basis coefficients of `T_0 .. T_d` (row k = coefficients of T_k).
fn chebyshev_polys(d: usize) -> Vec<Vec<f64>> {
    let mut t = vec![vec![1.0], vec![0.0, 1.0]];
    for k in 2..=d.max(1) {
        let mut next = vec![0.0; k + 1];
        for (i, &a) in t[k - 1].iter().enumerate() {
            next[i + 1] += 2.0 * a;
        }
        for (i, &a) in t[k - 2].iter().enumerate() {
            next[i] -= a;
        }
        t.push(next);
    }
    t.truncate(d + 1);
    t
}

/// Convert Chebyshev coefficients to power-basis coefficients.
pub fn chebyshev_to_power(c: &[f64]) -> Vec<f64> {
    if c.is_empty() {
        return vec![];
    }
    let t = chebyshev_polys(c.len() - 1);
    let mut out = vec![0.0; c.len()];
    for (ck, tk) in c.iter().zip(&t) {
        for (o, &a) in out.iter_mut().zip(tk) {
            *o += ck * a;
        }
    }
    out
}

/// Convert power-basis coefficients to Chebyshev coefficients.
pub fn power_to_chebyshev(p: &[f64]) -> Vec<f64> {
    // x^j = ((z + 1/z)/2)^j = 2^(-j) * sum_{i=0..j} binom(j, i) T_{|j-2i|}.
    let mut out = vec![0.0; p.len()];
    for (j, &a) in p.iter().enumerate() {
        if a == 0.0 {
            continue;
        }
        if j == 0 {
            out[0] += a;
            continue;
        }
        let scale = 2f64.powi(-(j as i32));
        let mut binom = 1.0;
        for i in 0..=j {
            let k = (j as i64 - 2 * i as i64).unsigned_abs() as usize;
            out[k] += a * scale * binom;
            binom = binom * (j - i) as f64 / (i + 1) as f64;
        }
    }
    out
}

/// Compose two power-basis polynomials: coefficients of `f(g(x))`.
pub fn compose(f: &[f64], g: &[f64]) -> Vec<f64> {
    let Some((&last, rest)) = f.split_last() else {
        return vec![];
    };
    let mut out = vec![last];
    for &a in rest.iter().rev() {
        out = mul(&out, g);
        out[0] += a;
    }
    // Degree deg(f)·deg(g) exactly: drop trailing zeros of a shorter g.
    while out.len() > 1 && out.last() == Some(&0.0) {
        out.pop();
    }
    out
}

fn mul(a: &[f64], b: &[f64]) -> Vec<f64> {
    if a.is_empty() || b.is_empty() {
        return vec![];
    }
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

/// Least squares: minimise `||A c - y||_2` for a column-major `a` with
/// `rows` rows, by Householder QR. Errors on empty or rank-deficient input.
pub fn lstsq(a: &[Vec<f64>], y: &[f64]) -> Result<Vec<f64>, ApproxError> {
    let n = a.len();
    let m = y.len();
    if n == 0 || m < n || a.iter().any(|c| c.len() != m) {
        return Err(ApproxError::Numerical {
            detail: format!("least squares needs at least as many points ({m}) as unknowns ({n})"),
        });
    }
    let mut r: Vec<Vec<f64>> = a.to_vec();
    let mut qty = y.to_vec();
    for k in 0..n {
        let norm = r[k][k..].iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm < 1e-300 {
            return Err(ApproxError::Numerical {
                detail: "rank-deficient least-squares system".into(),
            });
        }
        let alpha = if r[k][k] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = r[k][k..].to_vec();
        v[0] -= alpha;
        let vnorm2: f64 = v.iter().map(|x| x * x).sum();
        if vnorm2 > 0.0 {
            let apply = |col: &mut [f64]| {
                let dot: f64 = col.iter().zip(&v).map(|(a, b)| a * b).sum();
                let f = 2.0 * dot / vnorm2;
                for (c, vi) in col.iter_mut().zip(&v) {
                    *c -= f * vi;
                }
            };
            for col in r.iter_mut().skip(k) {
                apply(&mut col[k..]);
            }
            apply(&mut qty[k..]);
        }
    }
    let mut c = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|j| r[j][i] * c[j]).sum();
        let d = r[i][i];
        if d.abs() < 1e-14 * r[0][0].abs().max(1.0) {
            return Err(ApproxError::Numerical {
                detail: "rank-deficient least-squares system".into(),
            });
        }
        c[i] = (qty[i] - s) / d;
    }
    Ok(c)
}

/// `n` evenly spaced points from `a` to `b`, both included (numpy's linspace).
pub fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    match n {
        0 => vec![],
        1 => vec![a],
        _ => (0..n)
            .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_conversions_round_trip() {
        let c = [0.3, -1.0, 0.5, 0.25, -0.125, 2.0];
        let p = chebyshev_to_power(&c);
        let back = power_to_chebyshev(&p);
        for (a, b) in c.iter().zip(&back) {
            assert!((a - b).abs() < 1e-12, "{c:?} vs {back:?}");
        }
        for x in [-1.0, -0.3, 0.0, 0.7, 1.0] {
            assert!((eval_chebyshev(&c, x) - eval_power(&p, x)).abs() < 1e-12);
        }
        // T_3 = 4x^3 - 3x.
        assert_eq!(
            chebyshev_to_power(&[0.0, 0.0, 0.0, 1.0]),
            vec![0.0, -3.0, 0.0, 4.0]
        );
    }

    #[test]
    fn composition_and_lstsq() {
        let f = [0.0, 1.5, 0.0, -0.5];
        let g = [1.0, 2.0];
        let fg = compose(&f, &g);
        assert_eq!(fg.len(), 4);
        for x in [-1.0, 0.2, 0.9] {
            assert!((eval_power(&fg, x) - eval_power(&f, eval_power(&g, x))).abs() < 1e-12);
        }
        // Exact fit of a quadratic.
        let xs = linspace(-1.0, 1.0, 7);
        let cols: Vec<Vec<f64>> = (0..3)
            .map(|k| xs.iter().map(|x| x.powi(k)).collect())
            .collect();
        let y: Vec<f64> = xs.iter().map(|x| 1.0 - 2.0 * x + 3.0 * x * x).collect();
        let c = lstsq(&cols, &y).expect("fit");
        for (a, b) in c.iter().zip([1.0, -2.0, 3.0]) {
            assert!((a - b).abs() < 1e-12);
        }
        assert!(lstsq(&cols, &y[..2]).is_err());
        let dup = vec![cols[0].clone(), cols[0].clone()];
        assert!(lstsq(&dup, &y).is_err());
    }
}
