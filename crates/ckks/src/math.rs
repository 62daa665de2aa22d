//! Scalar modular arithmetic on u64 moduli and deterministic generation of
//! NTT-friendly primes (q ≡ 1 mod 2N) of exact bit sizes. The `*32`
//! variants are for primes below 2^32: they use u64 products only, so the
//! loops over them vectorise, and they return exactly what the general
//! ones do.

/// `a * b mod q`.
#[inline]
pub fn mul_mod(a: u64, b: u64, q: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(q)) as u64
}

/// Shoup's precomputed constant `floor(w 2^64 / q)` for multiplying by a
/// fixed `w < q` ([`mul_shoup`]); `shoup(1, q)` is the Barrett constant.
#[inline]
pub fn shoup(w: u64, q: u64) -> u64 {
    ((u128::from(w) << 64) / u128::from(q)) as u64
}

/// `a * w mod q` for any `a < 2^64`, `w < q < 2^63`, with `w_shoup =
/// shoup(w, q)`: one high product and one conditional subtraction instead
/// of a 128-bit division. With `w = 1` it reduces `a` modulo `q` (Barrett).
#[inline]
pub fn mul_shoup(a: u64, w: u64, w_shoup: u64, q: u64) -> u64 {
    let hi = ((u128::from(a) * u128::from(w_shoup)) >> 64) as u64;
    let r = a.wrapping_mul(w).wrapping_sub(hi.wrapping_mul(q));
    if r >= q { r - q } else { r }
}

/// Shoup's constant for a prime below 2^32: `floor(w 2^32 / q)` for a fixed
/// `w < q` ([`mul_shoup32`]).
#[inline]
pub fn shoup32(w: u64, q: u64) -> u64 {
    debug_assert!(q < 1 << 32 && w < q);
    (w << 32) / q
}

/// `a * w mod q` for `a < 2^32`, `w < q < 2^32`, with `w_shoup =
/// shoup32(w, q)`: u64 products only, so a loop of it vectorises (the 64-bit
/// [`mul_shoup`] needs a 128-bit high product). Same result as
/// [`mul_shoup`].
#[inline]
pub fn mul_shoup32(a: u64, w: u64, w_shoup: u64, q: u64) -> u64 {
    let hi = (a * w_shoup) >> 32;
    let r = (a * w).wrapping_sub(hi * q);
    if r >= q { r - q } else { r }
}

/// `a * w mod q` for `a < 2^32` and any `w < q < 2^63`, with `w_shoup =
/// shoup(w, q)`: the 128-bit high product of [`mul_shoup`] is assembled
/// from two 32 x 32-bit products, so a loop of it vectorises on AVX2 (which
/// has no 64 x 64-bit high multiply). Same result as [`mul_shoup`].
#[inline]
pub fn mul_shoup_narrow(a: u64, w: u64, w_shoup: u64, q: u64) -> u64 {
    debug_assert!(a < 1 << 32);
    let lo = (a * (w_shoup & 0xffff_ffff)) >> 32;
    // a (w_shoup >> 32) + lo < 2^64: exact floor(a w_shoup / 2^64).
    let hi = (a * (w_shoup >> 32) + lo) >> 32;
    let r = a.wrapping_mul(w).wrapping_sub(hi.wrapping_mul(q));
    if r >= q { r - q } else { r }
}

/// Multiplication by a constant `w` modulo `t`, for inputs below 2^64: an
/// input is split into 32-bit halves, x w = lo w + hi [2^32 w]_t, so every
/// product is a 32-bit word times a constant and the loops vectorise on
/// AVX2 whatever the widths of the source and target primes (the 40-bit
/// q_0 and special primes included). The result is exactly x w mod t.
#[derive(Clone, Copy)]
pub struct ConstMul {
    w: u64,
    ws: u64,
    /// [2^32 w]_t and its Shoup constant (for the high half).
    w2: u64,
    w2s: u64,
}

impl ConstMul {
    /// The constants for `w < t`, `t < 2^63`.
    pub fn new(w: u64, t: u64) -> Self {
        let w2 = mul_mod(w, 1 << 32, t);
        if t < 1 << 32 {
            Self {
                w,
                ws: shoup32(w, t),
                w2,
                w2s: shoup32(w2, t),
            }
        } else {
            Self {
                w,
                ws: shoup(w, t),
                w2,
                w2s: shoup(w2, t),
            }
        }
    }

    /// x w mod t; `SMALL`: t < 2^32, `WIDE`: x may reach 2^32 or more.
    #[inline(always)]
    pub fn apply<const SMALL: bool, const WIDE: bool>(&self, x: u64, t: u64) -> u64 {
        let lo = x & 0xffff_ffff;
        let mul = |a: u64, w: u64, ws: u64| {
            if SMALL {
                mul_shoup32(a, w, ws, t)
            } else {
                mul_shoup_narrow(a, w, ws, t)
            }
        };
        let r = mul(lo, self.w, self.ws);
        if WIDE {
            add_mod(r, mul(x >> 32, self.w2, self.w2s), t)
        } else {
            r
        }
    }
}

/// `x mod q` for `x < 2q`: one conditional subtraction (vectorises).
#[inline]
pub fn reduce_once(x: u64, q: u64) -> u64 {
    if x >= q { x - q } else { x }
}

/// `a + b mod q` for `a, b < q`.
#[inline]
pub fn add_mod(a: u64, b: u64, q: u64) -> u64 {
    let s = a + b;
    if s >= q { s - q } else { s }
}

/// `a - b mod q` for `a, b < q < 2^63`: `a + q - b` and one conditional
/// subtraction, a select that vectorises (a branch on `a >= b` did not).
#[inline]
pub fn sub_mod(a: u64, b: u64, q: u64) -> u64 {
    reduce_once(a + q - b, q)
}

/// `base^exp mod q`.
pub fn pow_mod(mut base: u64, mut exp: u64, q: u64) -> u64 {
    let mut acc = 1 % q;
    base %= q;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul_mod(acc, base, q);
        }
        base = mul_mod(base, base, q);
        exp >>= 1;
    }
    acc
}

/// Inverse of `a` modulo the prime `q` (Fermat), `None` when `a ≡ 0`.
pub fn inv_mod(a: u64, q: u64) -> Option<u64> {
    (!a.is_multiple_of(q)).then(|| pow_mod(a, q - 2, q))
}

/// `v mod q` for `|v| < q` in constant time (no branch on `v`): `q` is
/// added through a mask when `v` is negative. For secret coefficients
/// (ternary secrets, errors, encryption randomness).
#[inline]
pub fn reduce_small(v: i64, q: u64) -> u64 {
    debug_assert!(v.unsigned_abs() < q, "reduce_small: |{v}| >= {q}");
    (v as u64).wrapping_add(q & ((v >> 63) as u64))
}

/// Reduce a signed integer into [0, q) (public values: it branches on `v`).
#[inline]
pub fn reduce_i64(v: i64, q: u64) -> u64 {
    // u64 remainder (hardware division), skipped for |v| < q: no 128-bit
    // software division on the hot paths (sampling, encoding, weights).
    let a = v.unsigned_abs();
    let r = if a < q { a } else { a % q };
    if v < 0 && r != 0 { q - r } else { r }
}

/// `v mod q` for an integer-valued finite `f64` of any magnitude (exact:
/// `v = ±m · 2^e` with a 53-bit integer `m`, reduced as `m · 2^e mod q`).
/// Non-integer inputs are rounded first; non-finite inputs give 0.
pub fn reduce_f64(v: f64, q: u64) -> u64 {
    let v = v.round();
    if !v.is_finite() {
        return 0;
    }
    if v.abs() < 2f64.powi(62) {
        return reduce_i64(v as i64, q);
    }
    let bits = v.abs().to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64 - 1075; // v = m · 2^exp, exp > 0 here
    let m = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
    let r = mul_mod(m % q, pow_mod(2, exp as u64, q), q);
    if v < 0.0 && r != 0 { q - r } else { r }
}

/// Deterministic Miller–Rabin for 64-bit integers.
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let (mut d, mut s) = (n - 1, 0);
    while d % 2 == 0 {
        d /= 2;
        s += 1;
    }
    'witness: for a in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

/// Distinct primes q ≡ 1 (mod 2n) with exactly `bits[i]` bits each, in the
/// order requested. Deterministic: for each size the largest unused primes
/// below 2^bits are taken (SEAL does the same). `None` if a size has too
/// few such primes.
pub fn ntt_primes(bits: &[u32], n: usize) -> Option<Vec<u64>> {
    let m = 2 * n as u64;
    let mut used: Vec<u64> = Vec::new();
    let mut out = Vec::with_capacity(bits.len());
    for &b in bits {
        if !(2..=61).contains(&b) {
            return None;
        }
        let hi = 1u64 << b;
        let lo = 1u64 << (b - 1);
        // Largest candidate ≡ 1 mod m below 2^b.
        let mut c = (hi - 1) / m * m + 1;
        if c >= hi {
            c -= m;
        }
        let found = loop {
            if c < lo || c < m {
                break None;
            }
            if !used.contains(&c) && is_prime(c) {
                break Some(c);
            }
            c -= m;
        }?;
        used.push(found);
        out.push(found);
    }
    Some(out)
}

/// Bytes per stored residue modulo `q` ([`super::ring::Limb`], under
/// the default word policy): 4 below 2^32, else 8. The one rule for the
/// limb layout of every polynomial and key and for their sizes
/// ([`super::params::CkksParameters::key_poly_bytes`]).
pub fn word_bytes(q: u64) -> usize {
    if q < 1 << 32 { 4 } else { 8 }
}

#[cfg(test)]
mod tests {

    #[test]
    fn narrow_shoup_matches_the_wide_one() {
        use super::{mul_shoup, mul_shoup_narrow, shoup};
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for &q in &[
            (1u64 << 40) - 87,
            1_152_921_504_606_584_833, // 60 bits
            (1 << 31) - 1,
            65_537,
        ] {
            for _ in 0..2000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let (a, w) = (x >> 32, (x % q).max(1));
                let ws = shoup(w, q);
                assert_eq!(
                    mul_shoup_narrow(a, w, ws, q),
                    mul_shoup(a, w, ws, q),
                    "a = {a}, w = {w}, q = {q}"
                );
                assert_eq!(
                    mul_shoup(a, w, ws, q),
                    ((a as u128 * w as u128) % q as u128) as u64
                );
            }
        }
    }

    #[test]
    fn const_mul_is_exact_for_every_width() {
        use super::ConstMul;
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for &t in &[(1u64 << 40) - 87, (1 << 31) - 1, 67_043_329, 65_537] {
            for _ in 0..2000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let w = (x >> 3) % t;
                let c = ConstMul::new(w, t);
                let want = |a: u64| ((a as u128 * w as u128) % t as u128) as u64;
                let narrow = x & 0xffff_ffff;
                if t < 1 << 32 {
                    assert_eq!(
                        c.apply::<true, true>(x, t),
                        want(x),
                        "x = {x}, w = {w}, t = {t}"
                    );
                    assert_eq!(c.apply::<true, false>(narrow, t), want(narrow));
                } else {
                    assert_eq!(
                        c.apply::<false, true>(x, t),
                        want(x),
                        "x = {x}, w = {w}, t = {t}"
                    );
                    assert_eq!(c.apply::<false, false>(narrow, t), want(narrow));
                }
            }
        }
    }

    #[test]
    fn reduce_f64_is_exact_beyond_i64() {
        let q = 1_152_921_504_606_584_833u64; // a 60-bit prime
        for &v in &[
            0.0,
            1.0,
            -1.0,
            12345.0,
            -(2f64.powi(61)),
            2f64.powi(62),
            -(3.0 * 2f64.powi(70)),
            2f64.powi(100) * 1.5,
        ] {
            let want = {
                // v = m · 2^e exactly; compute with i128 pieces.
                let (m, e) = if v.abs() < 2f64.powi(62) {
                    (v as i128, 0u32)
                } else {
                    let e = v.abs().log2().floor() as u32 - 52;
                    ((v / 2f64.powi(e as i32)) as i128, e)
                };
                let mut r = m.rem_euclid(q as i128);
                for _ in 0..e {
                    r = (r * 2).rem_euclid(q as i128);
                }
                r as u64
            };
            assert_eq!(reduce_f64(v, q), want, "{v}");
        }
    }
    use super::*;

    #[test]
    fn shoup_and_barrett_match_the_division() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for q in [
            (1u64 << 26) + 1,
            1_073_872_897,
            (1u64 << 61) - 1,
            (1u64 << 62) - 57,
        ] {
            for _ in 0..10_000 {
                let a = next();
                let w = next() % q;
                assert_eq!(mul_shoup(a, w, shoup(w, q), q), mul_mod(a, w, q));
                assert_eq!(mul_shoup(a, 1, shoup(1, q), q), a % q);
            }
        }
    }

    #[test]
    fn primes_have_the_requested_shape() {
        let bits = [40, 26, 26, 26, 40];
        let q = ntt_primes(&bits, 8192).expect("primes");
        for (p, b) in q.iter().zip(bits) {
            assert!(is_prime(*p));
            assert_eq!(64 - p.leading_zeros(), b);
            assert_eq!(p % (2 * 8192), 1);
        }
        let mut d = q.clone();
        d.sort_unstable();
        d.dedup();
        assert_eq!(d.len(), q.len(), "distinct");
        assert_eq!(ntt_primes(&bits, 8192), Some(q), "deterministic");
        // 2^14 has no 15-bit prime ≡ 1 mod 2^15.
        assert!(ntt_primes(&[15], 16384).is_none());
    }

    #[test]
    fn modular_helpers() {
        let q = ntt_primes(&[40], 1024).expect("prime")[0];
        assert!(is_prime(q));
        let a = 123_456_789_012u64 % q;
        let inv = inv_mod(a, q).expect("inverse");
        assert_eq!(mul_mod(a, inv, q), 1);
        assert_eq!(reduce_i64(-1, q), q - 1);
        assert_eq!(sub_mod(0, 1, q), q - 1);
        assert!(!is_prime(q * 3));
        assert!(inv_mod(0, q).is_none());
        let m = shoup(1, q);
        for x in [0u64, 1, q - 1, q, q + 1, u64::MAX, 0x1234_5678_9abc_def0] {
            assert_eq!(mul_shoup(x, 1, m, q), x % q);
            let ws = shoup(a, q);
            assert_eq!(mul_shoup(x, a, ws, q), mul_mod(x % q, a, q));
            assert_eq!(
                mul_shoup(x, a, ws, q),
                ((u128::from(x) * u128::from(a)) % u128::from(q)) as u64
            );
        }
    }
}
