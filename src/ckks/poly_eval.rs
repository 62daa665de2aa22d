//! Polynomial evaluation on ciphertexts, in the power basis or the
//! Chebyshev basis on [-1, 1], with exact scale management: every term is
//! brought to the same level and exactly the same scale before summing, so
//! the result carries the requested scale with no drift.
//!
//! Method: the basis elements x^i (or T_i(x)) are computed with minimal
//! depth ⌈log2 i⌉ by products of lower elements (x^i = x^(2^k)·x^(i-2^k);
//! T_2k = 2T_k² − 1, T_2k+1 = 2T_k·T_(k+1) − x), then each is multiplied by
//! its coefficient, encoded at a per-term constant scale chosen so that the
//! rescaled term lands exactly on the target scale. Depth: ⌈log2 d⌉ + 1 for
//! degree d — one level more than the baby-step giant-step optimum
//! ⌈log2(d+1)⌉ when d+1 is not a power of two (an optimal evaluator is
//! future work).

use super::encoder::Plaintext;
use super::error::CkksError;
use super::evaluator::{Ciphertext, Evaluator};
use super::keys::RelinearizationKey;

/// The basis of a polynomial's coefficients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// c_0 + c_1 x + ... + c_d x^d.
    Power,
    /// c_0 T_0(x) + ... + c_d T_d(x) on [-1, 1].
    Chebyshev,
}

/// A polynomial to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct Polynomial {
    /// Coefficients, lowest degree first.
    pub coeffs: Vec<f64>,
    /// Their basis.
    pub basis: Basis,
}

impl Polynomial {
    /// A power-basis polynomial.
    pub fn power(coeffs: Vec<f64>) -> Self {
        Self {
            coeffs,
            basis: Basis::Power,
        }
    }

    /// A Chebyshev-basis polynomial on [-1, 1].
    pub fn chebyshev(coeffs: Vec<f64>) -> Self {
        Self {
            coeffs,
            basis: Basis::Chebyshev,
        }
    }

    /// Degree (index of the last non-zero coefficient).
    pub fn degree(&self) -> usize {
        self.coeffs.iter().rposition(|&c| c != 0.0).unwrap_or(0)
    }

    /// Plaintext value at x.
    pub fn eval(&self, x: f64) -> f64 {
        match self.basis {
            Basis::Power => self.coeffs.iter().rev().fold(0.0, |a, &c| a * x + c),
            Basis::Chebyshev => {
                let (mut t0, mut t1) = (1.0, x);
                let mut acc = self.coeffs.first().copied().unwrap_or(0.0);
                for (i, &c) in self.coeffs.iter().enumerate().skip(1) {
                    if i > 1 {
                        let t2 = 2.0 * x * t1 - t0;
                        t0 = t1;
                        t1 = t2;
                    }
                    acc += c * t1;
                }
                acc
            }
        }
    }

    /// Levels consumed by [`evaluate`]: ⌈log2 d⌉ + 1 (1 for degree 1, 0 for a constant).
    pub fn depth(&self) -> usize {
        let d = self.degree();
        match d {
            0 => 0,
            _ => (usize::BITS - (d - 1).leading_zeros()) as usize + 1,
        }
    }
}

/// ceil(log2 i) for i >= 1.
fn clog2(i: usize) -> usize {
    (usize::BITS - (i - 1).leading_zeros()) as usize
}

/// Bring `ct` (level > `level`) to exactly `scale` at `level` by a
/// multiplication with 1 encoded at the right constant scale and a rescale.
fn match_scale(
    ev: &Evaluator,
    ct: &Ciphertext,
    level: usize,
    scale: f64,
    coeff: f64,
) -> Result<Ciphertext, CkksError> {
    if ct.level <= level {
        return Err(CkksError::LevelExhausted {
            op: "match the scale of a polynomial term",
            level: ct.level,
        });
    }
    let x = ev.mod_down_to(ct, level + 1)?;
    let q = ev.context().params().q()[level + 1] as f64;
    let const_scale = scale * q / x.scale;
    let y = ev.mul_scalar(&x, coeff, const_scale)?;
    let mut out = ev.rescale(&y)?;
    out.scale = scale; // equal up to f64 rounding of const_scale (relative 1e-16)
    Ok(out)
}

fn product(
    ev: &Evaluator,
    a: &Ciphertext,
    b: &Ciphertext,
    rk: &RelinearizationKey,
) -> Result<Ciphertext, CkksError> {
    ev.mul_relin_rescale(a, b, rk)
}

/// Evaluate `p` on `ct`; the result has scale `target_scale` (default: the
/// parameters' scale) exactly. Errors with [`CkksError::LevelExhausted`]
/// naming the needed depth when the ciphertext has too few levels.
pub fn evaluate(
    ev: &Evaluator,
    ct: &Ciphertext,
    p: &Polynomial,
    rk: &RelinearizationKey,
    target_scale: Option<f64>,
) -> Result<Ciphertext, CkksError> {
    let d = p.degree();
    let target = target_scale.unwrap_or_else(|| ev.context().params().default_scale());
    let depth = p.depth();
    if ct.level < depth {
        return Err(CkksError::Mismatch {
            op: "evaluate polynomial",
            detail: format!(
                "degree {d} needs depth {depth} but the ciphertext has {} level(s) left",
                ct.level
            ),
        });
    }
    if p.coeffs.iter().any(|c| !c.is_finite()) {
        return Err(CkksError::Encoding {
            detail: "polynomial coefficient is not finite".into(),
        });
    }
    if d == 0 {
        // A constant: 0·x + c at the target scale.
        let z = match_scale(ev, ct, ct.level - 1, target, 0.0)?;
        return ev.add_scalar(&z, p.coeffs.first().copied().unwrap_or(0.0));
    }
    // Basis elements b[1..=d].
    let mut b: Vec<Option<Ciphertext>> = vec![None; d + 1];
    b[1] = Some(ct.clone());
    let get = |b: &Vec<Option<Ciphertext>>, i: usize| -> Result<Ciphertext, CkksError> {
        b[i].clone().ok_or(CkksError::Mismatch {
            op: "evaluate polynomial",
            detail: format!("basis element {i} missing"),
        })
    };
    for i in 2..=d {
        let k = 1usize << (clog2(i) - 1); // largest power of two < i
        let el = match p.basis {
            Basis::Power => product(ev, &get(&b, k)?, &get(&b, i - k)?, rk)?,
            Basis::Chebyshev => {
                // T_i = 2 T_k T_(i-k) - T_(2k-i)  (T_(|a-b|) with a = k, b = i - k).
                let prod = product(ev, &get(&b, k)?, &get(&b, i - k)?, rk)?;
                let two = ev.mul_integer(&prod, 2);
                let j = 2 * k - i; // = |k - (i - k)|
                if j == 0 {
                    ev.add_scalar(&two, -1.0)?
                } else {
                    let t = match_scale(ev, &get(&b, j)?, two.level, two.scale, 1.0)?;
                    ev.sub(&two, &t)?
                }
            }
        };
        b[i] = Some(el);
    }
    // Weighted sum at one level with exactly the target scale.
    let level = (1..=d)
        .filter_map(|i| b[i].as_ref().map(|c| c.level))
        .min()
        .unwrap_or(ct.level)
        - 1;
    let mut acc: Option<Ciphertext> = None;
    for i in 1..=d {
        let c = p.coeffs[i];
        if c == 0.0 {
            continue;
        }
        let term = match_scale(ev, &get(&b, i)?, level, target, c)?;
        acc = Some(match acc {
            None => term,
            Some(a) => ev.add(&a, &term)?,
        });
    }
    let acc = match acc {
        Some(a) => a,
        None => match_scale(ev, ct, level, target, 0.0)?,
    };
    ev.add_scalar(&acc, p.coeffs[0])
}

/// Evaluate power-basis stages in sequence (innermost first), each on the
/// previous result: `s_n(...s_1(s_0(x)))`.
pub fn evaluate_stages(
    ev: &Evaluator,
    ct: &Ciphertext,
    stages: &[Polynomial],
    rk: &RelinearizationKey,
) -> Result<Ciphertext, CkksError> {
    let mut x = ct.clone();
    for s in stages {
        x = evaluate(ev, &x, s, rk, None)?;
    }
    Ok(x)
}

/// Multiply by a plaintext vector (already encoded) and rescale.
pub fn mul_plain_rescale(
    ev: &Evaluator,
    ct: &Ciphertext,
    pt: &Plaintext,
) -> Result<Ciphertext, CkksError> {
    ev.rescale(&ev.mul_plain(ct, pt)?)
}
