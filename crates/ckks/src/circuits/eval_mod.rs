//! EvalMod, the non-linear step of CKKS bootstrapping (issue #41): after
//! ModRaise and CoeffsToSlots each slot holds `t = x + I`, with `x` the
//! message's share of `q_0` (|x| small) and `I` an integer (|I| < K, from
//! the secret's Hamming weight). EvalMod returns `x` by evaluating
//! `sin(2πt) / 2π`, which is `x` up to `(2πx)² x / 6`, as Han and Ki, and
//! then Bossuat et al. (2021), do it:
//!
//! 1. a Chebyshev interpolant of `cos(2π(t − 1/4) / 2^r)` on `[−K, K]`;
//! 2. `r` double-angle steps, `cos 2θ = 2 cos²θ − 1`, giving
//!    `cos(2π(t − 1/4)) = sin(2πt)`, one level each; the `1/2π` is a
//!    relabelling of the scale.
//!
//! Invariants: the circuit takes `y = t / K` in `[−1, 1]` (CoeffsToSlots
//! folds the `1/K` into its matrix, so the Chebyshev map costs no level);
//! its depth is the interpolant's optimal depth plus `r`; [`EvalMod::eval`]
//! is the exact plaintext model of the encrypted circuit (same polynomial,
//! same steps), and [`EvalMod::max_error`] the largest deviation from `x`
//! over every integer `|I| < K` and `|x| ≤ x_max`. The arcsine correction
//! ([`EvalMod::with_arcsine`]) is optional: two levels for an error of
//! `O(x⁵)` instead of the sine's `(2πx)²x/6`.

use super::{
    CircuitBackend, CircuitError, Polynomial, PolynomialEvaluator, be, chebyshev_roots_interpolant,
};

/// The EvalMod circuit: an interpolant and its double-angle steps.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalMod {
    k: f64,
    double_angles: u32,
    cos: Polynomial,
    arcsine: bool,
}

/// The arcsine correction `z + z³/6` (the first two terms of arcsin's
/// series) applied to `z = sin(2πt)`: it cancels the sine's cubic error,
/// leaving `O(x⁵)`, for two levels.
fn arcsine_correction() -> Polynomial {
    Polynomial::power(vec![0.0, 1.0, 0.0, 1.0 / 6.0])
}

impl EvalMod {
    /// Fit EvalMod for `|t| < k` (k ≥ 1) with a Chebyshev interpolant of
    /// `degree` (≥ 2) and `double_angles` steps (0..=8).
    pub fn new(k: f64, degree: usize, double_angles: u32) -> Result<Self, CircuitError> {
        if !(k.is_finite() && k >= 1.0) || degree < 2 || double_angles > 8 {
            return Err(CircuitError::InvalidPolynomial {
                reason: format!(
                    "EvalMod: K = {k} (at least 1), degree {degree} (at least 2), {double_angles} double angles (at most 8)"
                ),
            });
        }
        let scale = f64::from(1u32 << double_angles);
        let g = |y: f64| (std::f64::consts::TAU * (k * y - 0.25) / scale).cos();
        let cos = Polynomial::chebyshev(chebyshev_roots_interpolant(g, degree), -1.0, 1.0);
        cos.validate()?;
        Ok(Self {
            k,
            double_angles,
            cos,
            arcsine: false,
        })
    }

    /// The same circuit followed by the arcsine correction (Bossuat et al.
    /// 2021): `x = arcsin(z) / 2π` with `z = sin(2πx)`, by `z + z³/6`. Two
    /// more levels; the sine's error `(2πx)²x/6` becomes `O(x⁵)`, so the
    /// message may take a larger share of `q_0`.
    pub fn with_arcsine(mut self) -> Self {
        self.arcsine = true;
        self
    }

    /// Whether the arcsine correction is applied.
    pub fn arcsine(&self) -> bool {
        self.arcsine
    }

    /// The bound K on |t| the circuit was fitted for.
    pub fn k(&self) -> f64 {
        self.k
    }

    /// Its double-angle steps.
    pub fn double_angles(&self) -> u32 {
        self.double_angles
    }

    /// Levels the circuit consumes.
    pub fn depth(&self) -> usize {
        let arcsine = if self.arcsine {
            arcsine_correction().depth()
        } else {
            0
        };
        self.cos.depth() + self.double_angles as usize + arcsine
    }

    /// The plaintext model of the circuit at `t` (not `t / K`): the
    /// interpolant, `r` times `v ↦ 2v² − 1`, then `/ 2π`.
    pub fn eval(&self, t: f64) -> f64 {
        let mut v = self.cos.eval(t / self.k);
        for _ in 0..self.double_angles {
            v = 2.0 * v * v - 1.0;
        }
        if self.arcsine {
            v = arcsine_correction().eval(v);
        }
        v / std::f64::consts::TAU
    }

    /// The largest |eval(I + x) − x| over every integer |I| < K and
    /// `|x| ≤ x_max` (a grid of 65 values of x per I).
    pub fn max_error(&self, x_max: f64) -> f64 {
        let top = (self.k - x_max).floor().max(0.0) as i64;
        let mut worst = 0f64;
        for i in -top..=top {
            for s in 0..=64 {
                let x = x_max * (f64::from(s) / 32.0 - 1.0);
                let t = i as f64 + x;
                if t.abs() < self.k {
                    worst = worst.max((self.eval(t) - x).abs());
                }
            }
        }
        worst
    }

    /// Evaluate on `ct`, which holds `t / K`; the result holds about `x`,
    /// `depth()` levels lower. Each double angle is one level: `2c` (an
    /// integer constant, no level), times `c`, rescaled, minus 1; its scale
    /// is the square of the step's input scale over the dropped prime (about
    /// the input's scale when the primes are). The `1 / 2π` is a relabelling
    /// of the scale, which costs nothing.
    pub fn apply<B: CircuitBackend>(
        &self,
        backend: &B,
        ct: &B::Ciphertext,
    ) -> Result<B::Ciphertext, CircuitError> {
        if self.depth() > backend.level(ct) {
            return Err(CircuitError::DepthExhausted {
                needed: self.depth(),
                available: backend.level(ct),
            });
        }
        let mut cur = PolynomialEvaluator::new(backend).evaluate(ct, &self.cos, None)?;
        for _ in 0..self.double_angles {
            let two = backend
                .mul_const(&cur, 2.0, 1.0)
                .map_err(be("EvalMod double angle"))?;
            let square = backend
                .mul_relin(&two, &cur)
                .map_err(be("EvalMod double angle"))?;
            let square = backend
                .rescale(&square)
                .map_err(be("EvalMod double angle"))?;
            cur = backend
                .add_const(&square, -1.0)
                .map_err(be("EvalMod double angle"))?;
        }
        if self.arcsine {
            cur = PolynomialEvaluator::new(backend).evaluate(&cur, &arcsine_correction(), None)?;
        }
        let scale = backend.scale(&cur) * std::f64::consts::TAU;
        backend
            .set_scale(&mut cur, scale)
            .map_err(be("EvalMod 1/2π"))?;
        Ok(cur)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn chebyshev_roots_interpolant_reproduces_polynomials_and_smooth_functions() {
        // x^3 = (3 T_1 + T_3) / 4.
        let c = chebyshev_roots_interpolant(|x| x * x * x, 5);
        for (i, want) in [0.0, 0.75, 0.0, 0.25, 0.0, 0.0].iter().enumerate() {
            assert!((c[i] - want).abs() < 1e-12, "{c:?}");
        }
        let p = Polynomial::chebyshev(chebyshev_roots_interpolant(f64::exp, 20), -1.0, 1.0);
        for s in 0..=20 {
            let x = f64::from(s) / 10.0 - 1.0;
            assert!((p.eval(x) - x.exp()).abs() < 1e-14);
        }
    }

    #[test]
    fn eval_mod_recovers_the_fraction_for_every_integer_part() {
        let m = EvalMod::new(12.0, 63, 3).unwrap();
        assert_eq!(m.depth(), 6 + 3);
        // x up to 2^-8 of q_0: the sine's own error (2πx)²x/6 is about 2^-20.
        let e = m.max_error((-8f64).exp2());
        assert!(e < (-19f64).exp2(), "max error 2^{:.1}", e.log2());
        // Too low a degree is measurably worse.
        let coarse = EvalMod::new(12.0, 15, 3).unwrap();
        assert!(coarse.max_error((-8f64).exp2()) > 100.0 * e);
        assert!(EvalMod::new(0.5, 31, 3).is_err());
        assert!(EvalMod::new(12.0, 1, 3).is_err());
    }
}
