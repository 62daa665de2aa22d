//! RNS basis conversion for hybrid key switching: lifting a digit (a value
//! known modulo a group of primes) to every other prime of the key level,
//! and the mod-down by P when P is a product of several special primes.
//!
//! Both use the centred fast basis conversion: for x known modulo
//! S = s_0 ⋯ s_{a-1}, with y_j = [x (S/s_j)^-1]_{s_j}, the integer
//! X = Σ y_j S/s_j is congruent to x modulo S and lies in [0, a S);
//! subtracting v S with v = round(Σ y_j / s_j) (a float sum) brings it to
//! about [-S/2, S/2]. Invariant: the result is always exactly congruent
//! to x modulo S; a rounding slip of the float sum only picks a
//! neighbouring representative. In key switching any multiple of a digit's
//! modulus is cancelled exactly by the key (its CRT idempotent times the
//! digit's modulus is a multiple of Q), so the slip never changes a
//! result, only the size of the key-switch noise by at most one digit.
//! One-prime groups take the exact integer centring of [`lift_digit`], so
//! that SEAL-style parameters (one prime per digit, one special prime) give
//! bit-identical ciphertexts to the single-prime code path.

use super::error::CkksError;
use super::math::{ConstMul, add_mod, inv_mod, mul_mod, sub_mod};
use super::ring::{
    Limb, Modulus, RnsPoly, Word, divide_round_by_last, lift_digit, on_limb, on_limbs, simd,
};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::Arc;

/// The product of the primes of `src`, except index `skip`, modulo `t`.
fn product_mod(src: &[Arc<Modulus>], skip: Option<usize>, t: u64) -> u64 {
    src.iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != skip)
        .fold(1, |acc, (_, s)| mul_mod(acc, s.q % t, t))
}

/// Runs `body::<SMALL, WIDE>()` for `t < 2^32` (SMALL) and inputs that may
/// reach 2^32 (WIDE), each instantiation under the SIMD dispatch.
macro_rules! by_width {
    ($t:expr, $wide:expr, $body:ident ( $($arg:expr),* )) => {
        match ($t < 1 << 32, $wide) {
            (true, false) => simd(#[inline(always)] move || $body::<true, false>($($arg),*)),
            (true, true) => simd(#[inline(always)] move || $body::<true, true>($($arg),*)),
            (false, false) => simd(#[inline(always)] move || $body::<false, false>($($arg),*)),
            (false, true) => simd(#[inline(always)] move || $body::<false, true>($($arg),*)),
        }
    };
}

/// `x[i] w mod t` for `x[i] < 2^64` when `wide`, below 2^32 otherwise.
fn mul_const(x: &[impl Word], w: ConstMul, t: u64, wide: bool) -> Vec<u64> {
    #[inline(always)]
    fn go<const SMALL: bool, const WIDE: bool>(x: &[impl Word], w: ConstMul, t: u64) -> Vec<u64> {
        x.iter()
            .map(|&c| w.apply::<SMALL, WIDE>(c.get(), t))
            .collect()
    }
    by_width!(t, wide, go(x, w, t))
}

/// `x[i] = (x[i] - y[i]) w mod t` in place (`x`, `y` reduced modulo `t`).
fn sub_mul_const(x: &mut [impl Word], y: &[impl Word], w: ConstMul, t: u64) {
    #[inline(always)]
    fn go<const SMALL: bool, const WIDE: bool>(
        x: &mut [impl Word],
        y: &[impl Word],
        w: ConstMul,
        t: u64,
    ) {
        for (a, b) in x.iter_mut().zip(y) {
            *a = Word::put(w.apply::<SMALL, WIDE>(sub_mod(a.get(), b.get(), t), t));
        }
    }
    // x - y is below t: wide exactly when t is.
    by_width!(t, t >= 1 << 32, go(x, y, w, t))
}

/// `out[i] = out[i] + x[i] w mod t` (`out` reduced; `x` as in [`mul_const`]).
fn mul_const_add(out: &mut [u64], x: &[u64], w: ConstMul, t: u64, wide: bool) {
    #[inline(always)]
    fn go<const SMALL: bool, const WIDE: bool>(out: &mut [u64], x: &[u64], w: ConstMul, t: u64) {
        for (o, &c) in out.iter_mut().zip(x) {
            *o = add_mod(*o, w.apply::<SMALL, WIDE>(c, t), t);
        }
    }
    by_width!(t, wide, go(out, x, w, t))
}

/// `out[i] = out[i] - x[i] w mod t` (`out` reduced, `x[i] < 2^32`).
fn mul_const_sub(out: &mut [u64], x: &[u64], w: ConstMul, t: u64) {
    #[inline(always)]
    fn go<const SMALL: bool, const WIDE: bool>(out: &mut [u64], x: &[u64], w: ConstMul, t: u64) {
        for (o, &c) in out.iter_mut().zip(x) {
            *o = sub_mod(*o, w.apply::<SMALL, WIDE>(c, t), t);
        }
    }
    by_width!(t, false, go(out, x, w, t))
}

/// The centred representative of a value given by coefficient residues
/// over a group of primes, ready to be reduced modulo any other prime.
struct Centred<'a> {
    /// y_j = [x (S/s_j)^-1]_{s_j}, one vector per source prime.
    y: Vec<Vec<u64>>,
    /// v = round(Σ y_j / s_j) per coefficient (0..=a).
    v: Vec<u64>,
    src: &'a [Arc<Modulus>],
}

impl<'a> Centred<'a> {
    fn new(limbs: &[&Limb], src: &'a [Arc<Modulus>]) -> Self {
        let n = limbs.first().map_or(0, |l| l.len());
        let y: Vec<Vec<u64>> = limbs
            .par_iter()
            .zip(src)
            .enumerate()
            .map(|(j, (x, sj))| {
                let q = sj.q;
                let inv = inv_mod(product_mod(src, Some(j), q), q).unwrap_or(0);
                on_limb!(x, v => mul_const(v, ConstMul::new(inv, q), q, q > 1 << 32))
            })
            .collect();
        let recip: Vec<f64> = src.iter().map(|s| 1.0 / s.q as f64).collect();
        let mut acc = vec![0.5f64; n];
        for (yj, &r) in y.iter().zip(&recip) {
            let acc = &mut acc[..];
            simd(
                #[inline(always)]
                move || {
                    for (a, &c) in acc.iter_mut().zip(yj) {
                        *a += c as f64 * r;
                    }
                },
            );
        }
        let v = acc.into_iter().map(|a| a.floor() as u64).collect();
        Self { y, v, src }
    }

    /// The centred value's residues modulo `dst` (coefficient form):
    /// Σ_j y_j [S/s_j]_t - v [S]_t, as a limb of `dst`'s width.
    fn residues(&self, dst: &Modulus) -> Limb {
        let t = dst.q;
        let hat = |j: usize| ConstMul::new(product_mod(self.src, Some(j), t), t);
        let wide = |j: usize| self.src[j].q > 1 << 32;
        let mut out = match self.y.first() {
            Some(y0) => mul_const(y0, hat(0), t, wide(0)),
            None => return Limb::collect(dst, std::iter::empty()),
        };
        for (j, yj) in self.y.iter().enumerate().skip(1) {
            mul_const_add(&mut out, yj, hat(j), t, wide(j));
        }
        // v <= a is tiny, so v [S]_t is one narrow product.
        let s_t = ConstMul::new(product_mod(self.src, None, t), t);
        mul_const_sub(&mut out, &self.v, s_t, t);
        Limb::collect(dst, out.into_iter())
    }
}

/// The key-switching digit `digit` (a range of prime indices) of `d`,
/// lifted to every modulus of `m` (q_0..q_level, then the special primes),
/// NTT form. `coeff` is `d` in coefficient form and `ntt` in NTT form: the
/// digit's own limbs are copied from `ntt` (no transform), every other
/// limb is the centred conversion, transformed.
pub(crate) fn lift_digit_range(
    coeff: &RnsPoly,
    ntt: &RnsPoly,
    digit: Range<usize>,
    m: &[Arc<Modulus>],
) -> RnsPoly {
    if digit.len() == 1 {
        let j = digit.start;
        return lift_digit(&coeff.limbs[j], m[j].q, m, Some((j, &ntt.limbs[j])));
    }
    let src: Vec<&Limb> = coeff.limbs[digit.clone()].iter().collect();
    let centred = Centred::new(&src, &m[digit.clone()]);
    let limbs = m
        .par_iter()
        .enumerate()
        .map(|(t, md)| {
            if digit.contains(&t) {
                ntt.limbs[t].clone()
            } else {
                let mut r = centred.residues(md);
                md.fwd(&mut r);
                r
            }
        })
        .collect();
    RnsPoly { limbs, ntt: true }
}

/// Divide `a` (NTT form over `m`: q_0..q_l then `k` special primes) by
/// P = p_0 ⋯ p_{k-1} with rounding, leaving q_0..q_l. One special prime is
/// the exact rounding division of [`divide_round_by_last`]; several use the
/// centred conversion of a mod P (the quotient is off by at most one from
/// round(a / P) when the float sum slips: key-switch noise, not an error).
pub(crate) fn mod_down_by_special(
    a: &mut RnsPoly,
    m: &[Arc<Modulus>],
    k: usize,
) -> Result<(), CkksError> {
    if k == 1 {
        return divide_round_by_last(a, m);
    }
    let len = a.limbs.len();
    if k == 0 || len <= k || m.len() < len {
        return Err(CkksError::LevelExhausted {
            op: "mod-down by the special primes",
            level: 0,
        });
    }
    let q_len = len - k;
    let mut special = a.limbs.split_off(q_len);
    let sm = &m[q_len..len];
    special.par_iter_mut().zip(sm).for_each(|(l, md)| md.inv(l));
    let src: Vec<&Limb> = special.iter().collect();
    let centred = Centred::new(&src, sm);
    a.limbs
        .par_iter_mut()
        .zip(&m[..q_len])
        .for_each(|(limb, md)| {
            let q = md.q;
            let mut r = centred.residues(md);
            md.fwd(&mut r);
            let inv = ConstMul::new(inv_mod(product_mod(sm, None, q), q).unwrap_or(0), q);
            on_limbs!(limb, &r, (x, y) => sub_mul_const(x, y, inv, q));
        });
    Ok(())
}
