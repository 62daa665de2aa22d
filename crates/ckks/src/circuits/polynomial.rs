//! Real polynomials in the power basis or the Chebyshev basis on an interval
//! `[a, b]`: plaintext evaluation, degree/depth, basis conversion and
//! composition.

use super::CircuitError;

/// The basis the coefficients refer to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Basis {
    /// `p(x) = sum_i c_i x^i`.
    Power,
    /// `p(x) = sum_i c_i T_i(t)` with `t = (2x - a - b) / (b - a)` mapping `[a, b]` to `[-1, 1]`.
    Chebyshev {
        /// Lower end of the interval.
        a: f64,
        /// Upper end of the interval.
        b: f64,
    },
}

/// A real polynomial with its basis.
#[derive(Debug, Clone, PartialEq)]
pub struct Polynomial {
    /// Basis of `coeffs`.
    pub basis: Basis,
    /// Coefficients, index = power / Chebyshev index.
    pub coeffs: Vec<f64>,
}

impl Polynomial {
    /// Power-basis polynomial `sum_i coeffs[i] x^i`.
    pub fn power(coeffs: Vec<f64>) -> Self {
        Self {
            basis: Basis::Power,
            coeffs,
        }
    }

    /// Chebyshev series `sum_i coeffs[i] T_i(t)` on `[a, b]`.
    pub fn chebyshev(coeffs: Vec<f64>, a: f64, b: f64) -> Self {
        Self {
            basis: Basis::Chebyshev { a, b },
            coeffs,
        }
    }

    /// Checks coefficients and interval are finite and non-empty.
    pub fn validate(&self) -> Result<(), CircuitError> {
        if self.coeffs.is_empty() {
            return Err(CircuitError::InvalidPolynomial {
                reason: "no coefficients".into(),
            });
        }
        if let Some(i) = self.coeffs.iter().position(|c| !c.is_finite()) {
            return Err(CircuitError::InvalidPolynomial {
                reason: format!("coefficient {i} is not finite"),
            });
        }
        if let Basis::Chebyshev { a, b } = self.basis
            && !(a.is_finite() && b.is_finite() && a < b)
        {
            return Err(CircuitError::InvalidPolynomial {
                reason: format!("Chebyshev interval [{a}, {b}] is not a finite a < b"),
            });
        }
        Ok(())
    }

    /// Degree: index of the highest non-zero coefficient (0 for constants).
    pub fn degree(&self) -> usize {
        self.coeffs.iter().rposition(|&c| c != 0.0).unwrap_or(0)
    }

    /// Optimal multiplicative depth `ceil(log2(degree + 1))`, which the
    /// encrypted evaluator achieves.
    pub fn depth(&self) -> usize {
        ceil_log2(self.degree() + 1)
    }

    /// Affine map `t = alpha x + beta` of the Chebyshev interval (identity for power basis).
    pub fn affine(&self) -> (f64, f64) {
        match self.basis {
            Basis::Power => (1.0, 0.0),
            Basis::Chebyshev { a, b } => (2.0 / (b - a), -(a + b) / (b - a)),
        }
    }

    /// Plaintext evaluation (Horner / Clenshaw).
    pub fn eval(&self, x: f64) -> f64 {
        match self.basis {
            Basis::Power => self.coeffs.iter().rev().fold(0.0, |acc, &c| acc * x + c),
            Basis::Chebyshev { .. } => {
                let (al, be) = self.affine();
                clenshaw(&self.coeffs, al * x + be)
            }
        }
    }

    /// The derivative `p'(x)`, in the power basis.
    pub fn derivative(&self) -> Polynomial {
        let c = self.to_power().coeffs;
        Polynomial::power(
            c.iter()
                .enumerate()
                .skip(1)
                .map(|(i, &a)| i as f64 * a)
                .collect(),
        )
    }

    /// The largest |p'(x)| on 201 evenly spaced points of `[-r, r]`: how much
    /// the polynomial amplifies an absolute error of an input with |x| <= r.
    pub fn max_abs_slope(&self, r: f64) -> f64 {
        let d = self.derivative();
        (0..=200)
            .map(|i| d.eval(-r + 2.0 * r * f64::from(i) / 200.0).abs())
            .fold(0.0, f64::max)
    }

    /// The same polynomial in the power basis (in `x`).
    pub fn to_power(&self) -> Polynomial {
        match self.basis {
            Basis::Power => self.clone(),
            Basis::Chebyshev { .. } => {
                let (al, be) = self.affine();
                let in_t = cheb_to_power(&self.coeffs);
                Polynomial::power(substitute_affine(&in_t, al, be))
            }
        }
    }

    /// The same polynomial as a Chebyshev series on `[a, b]`.
    pub fn to_chebyshev(&self, a: f64, b: f64) -> Polynomial {
        let p = self.to_power();
        // x = ((b - a) t + a + b) / 2
        let in_t = substitute_affine(&p.coeffs, (b - a) / 2.0, (a + b) / 2.0);
        Polynomial::chebyshev(power_to_cheb(&in_t), a, b)
    }

    /// `self(x) * other(x)` in the power basis (e.g. SLAF-P's `x * s(x)`).
    pub fn multiply(&self, other: &Polynomial) -> Polynomial {
        Polynomial::power(poly_mul(&self.to_power().coeffs, &other.to_power().coeffs))
    }

    /// `a * self(x) + b * other(x)` in the power basis.
    pub fn linear_combination(&self, a: f64, other: &Polynomial, b: f64) -> Polynomial {
        let (p, q) = (self.to_power().coeffs, other.to_power().coeffs);
        let out = (0..p.len().max(q.len()))
            .map(|i| a * p.get(i).copied().unwrap_or(0.0) + b * q.get(i).copied().unwrap_or(0.0))
            .collect();
        Polynomial::power(out)
    }

    /// `self(inner(x))` in the power basis.
    pub fn compose(&self, inner: &Polynomial) -> Polynomial {
        let outer = self.to_power();
        let g = inner.to_power().coeffs;
        let mut acc = vec![0.0];
        for &c in outer.coeffs.iter().rev() {
            acc = poly_mul(&acc, &g);
            acc[0] += c;
        }
        Polynomial::power(acc)
    }
}

/// `ceil(log2(n))` for `n >= 1`.
pub(crate) fn ceil_log2(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as usize
    }
}

fn clenshaw(c: &[f64], t: f64) -> f64 {
    let (mut b1, mut b2) = (0.0, 0.0);
    for &ck in c.iter().skip(1).rev() {
        let b0 = 2.0 * t * b1 - b2 + ck;
        b2 = b1;
        b1 = b0;
    }
    t * b1 - b2 + c.first().copied().unwrap_or(0.0)
}

fn poly_mul(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

/// Coefficients of `p(alpha x + beta)`.
fn substitute_affine(p: &[f64], alpha: f64, beta: f64) -> Vec<f64> {
    let lin = [beta, alpha];
    let mut acc = vec![0.0];
    for &c in p.iter().rev() {
        acc = poly_mul(&acc, &lin);
        acc[0] += c;
    }
    acc.truncate(p.len().max(1));
    acc
}

fn cheb_to_power(c: &[f64]) -> Vec<f64> {
    let n = c.len();
    let mut out = vec![0.0; n];
    let mut tkm1 = vec![1.0];
    let mut tk = vec![0.0, 1.0];
    for (k, &ck) in c.iter().enumerate() {
        let tkk: &[f64] = if k == 0 { &tkm1 } else { &tk };
        for (i, &v) in tkk.iter().enumerate() {
            if i < n {
                out[i] += ck * v;
            }
        }
        if k >= 1 {
            let mut next = vec![0.0; tk.len() + 1];
            for (i, &v) in tk.iter().enumerate() {
                next[i + 1] += 2.0 * v;
            }
            for (i, &v) in tkm1.iter().enumerate() {
                next[i] -= v;
            }
            tkm1 = std::mem::replace(&mut tk, next);
        }
    }
    out
}

fn power_to_cheb(p: &[f64]) -> Vec<f64> {
    // Horner in the Chebyshev basis: acc = acc * t + c.
    let n = p.len();
    let mut acc = vec![0.0; n + 1];
    for &c in p.iter().rev() {
        let mut next = vec![0.0; n + 1];
        for (k, &v) in acc.iter().enumerate() {
            if v == 0.0 {
                continue;
            }
            if k == 0 {
                next[1] += v;
            } else {
                if k < n {
                    next[k + 1] += v / 2.0;
                }
                next[k - 1] += v / 2.0;
            }
        }
        next[0] += c;
        acc = next;
    }
    acc.truncate(n.max(1));
    acc
}

/// Chebyshev interpolant of degree `d` of `f` at the `d + 1` Chebyshev
/// points of the second kind (chebfun's construction).
pub fn chebyshev_interpolant(f: impl Fn(f64) -> f64, d: usize) -> Vec<f64> {
    let n = d + 1;
    if n == 1 {
        return vec![f(0.0)];
    }
    let xs: Vec<f64> = (0..n)
        .map(|j| (std::f64::consts::PI * j as f64 / d as f64).cos())
        .collect();
    let fx: Vec<f64> = xs.iter().map(|&x| f(x)).collect();
    // Discrete cosine transform on the extrema grid (endpoints halved).
    (0..n)
        .map(|k| {
            let s: f64 = (0..n)
                .map(|j| {
                    let w = if j == 0 || j == d { 0.5 } else { 1.0 };
                    w * fx[j] * (std::f64::consts::PI * (k * j) as f64 / d as f64).cos()
                })
                .sum();
            let c = 2.0 * s / d as f64;
            if k == 0 || k == d { c / 2.0 } else { c }
        })
        .collect()
}

/// Chebyshev interpolant of degree `d` of `f` at the `d + 1` roots of
/// `T_{d+1}` (Chebyshev points of the first kind): EvalMod's fit. Through
/// its double angles this one measured 0.7-1.2 bits more bootstrapping
/// precision than [`chebyshev_interpolant`] (24.2 / 23.8 against 23.5 /
/// 22.6 bits after one / two bootstraps, `tests/ckks_bootstrap.rs`).
pub fn chebyshev_roots_interpolant(f: impl Fn(f64) -> f64, d: usize) -> Vec<f64> {
    let m = d + 1;
    let nodes: Vec<f64> = (0..m)
        .map(|j| (std::f64::consts::PI * (j as f64 + 0.5) / m as f64).cos())
        .collect();
    let values: Vec<f64> = nodes.iter().map(|&x| f(x)).collect();
    (0..m)
        .map(|i| {
            let s: f64 = (0..m)
                .map(|j| {
                    values[j]
                        * (std::f64::consts::PI * i as f64 * (j as f64 + 0.5) / m as f64).cos()
                })
                .sum();
            let c = 2.0 * s / m as f64;
            if i == 0 { c / 2.0 } else { c }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        let p = Polynomial::power(vec![0.3, -1.2, 0.5, 2.0, -0.7]);
        let c = p.to_chebyshev(-3.0, 5.0);
        let back = c.to_power();
        for x in [-3.0, -1.0, 0.2, 2.5, 5.0] {
            assert!((p.eval(x) - c.eval(x)).abs() < 1e-9, "{x}");
            assert!((p.eval(x) - back.eval(x)).abs() < 1e-9, "{x}");
        }
        assert_eq!(p.degree(), 4);
        assert_eq!(p.depth(), 3);
    }

    #[test]
    fn slope_is_the_derivative_on_the_interval() {
        // p = 1 - 3x + x^3: p' = 3x^2 - 3, largest |p'| on [-2, 2] at |x| = 2.
        let p = Polynomial::power(vec![1.0, -3.0, 0.0, 1.0]);
        assert_eq!(p.derivative().coeffs, vec![-3.0, 0.0, 3.0]);
        assert!((p.max_abs_slope(2.0) - 9.0).abs() < 1e-12);
        // On [-0.5, 0.5] the largest |p'| is at x = 0: 3.
        assert!((p.max_abs_slope(0.5) - 3.0).abs() < 1e-12);
        // Chebyshev input: T_3 on [-1, 1] is 4x^3 - 3x, |p'| <= 9.
        let t3 = Polynomial::chebyshev(vec![0.0, 0.0, 0.0, 1.0], -1.0, 1.0);
        assert!((t3.max_abs_slope(1.0) - 9.0).abs() < 1e-9);
    }

    #[test]
    fn chebyshev_matches_cos_definition() {
        let c = Polynomial::chebyshev(vec![0.0, 0.0, 0.0, 1.0], -1.0, 1.0);
        for x in [-0.9f64, -0.3, 0.1, 0.77] {
            assert!((c.eval(x) - (3.0 * x.acos()).cos()).abs() < 1e-12);
        }
        let pw = c.to_power();
        assert!((pw.coeffs[3] - 4.0).abs() < 1e-12 && (pw.coeffs[1] + 3.0).abs() < 1e-12);
    }

    #[test]
    fn compose_and_depth() {
        let f = Polynomial::power(vec![0.0, 1.5, 0.0, -0.5]);
        let g = Polynomial::power(vec![0.0, 2126.0 / 1024.0, 0.0, -1359.0 / 1024.0]);
        let fg = f.compose(&g);
        assert_eq!(fg.degree(), 9);
        assert_eq!(fg.depth(), 4);
        for x in [-1.0, -0.4, 0.1, 0.9] {
            assert!((fg.eval(x) - f.eval(g.eval(x))).abs() < 1e-12);
        }
        // SLAF-P: (x + x s(x)) / 2 with a cubic s has degree 4, depth 3.
        let x = Polynomial::power(vec![0.0, 1.0]);
        let relu = x.linear_combination(0.5, &x.multiply(&f), 0.5);
        assert_eq!((relu.degree(), relu.depth()), (4, 3));
        assert!((relu.eval(0.7) - 0.5 * (0.7 + 0.7 * f.eval(0.7))).abs() < 1e-12);
        assert_eq!(ceil_log2(16), 4);
        assert_eq!(ceil_log2(17), 5);
        assert!(Polynomial::power(vec![]).validate().is_err());
        assert!(
            Polynomial::chebyshev(vec![1.0], 1.0, 1.0)
                .validate()
                .is_err()
        );
    }
}
