//! Scalar modular arithmetic on u64 moduli and deterministic generation of
//! NTT-friendly primes (q ≡ 1 mod 2N) of exact bit sizes.

/// `a * b mod q`.
#[inline]
pub fn mul_mod(a: u64, b: u64, q: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(q)) as u64
}

/// Barrett constant `floor(2^64 / q)` for [`barrett_reduce`].
#[inline]
pub fn barrett_const(q: u64) -> u64 {
    ((1u128 << 64) / u128::from(q)) as u64
}

/// `x mod q` for any `x < 2^64`, with `m = barrett_const(q)` (no division).
#[inline(always)]
pub fn barrett_reduce(x: u64, q: u64, m: u64) -> u64 {
    let qh = ((u128::from(x) * u128::from(m)) >> 64) as u64;
    let r = x.wrapping_sub(qh.wrapping_mul(q));
    if r >= q { r - q } else { r }
}

/// Shoup precomputation `floor(w · 2^64 / q)` of a fixed multiplier `w < q`.
#[inline]
pub fn shoup_const(w: u64, q: u64) -> u64 {
    ((u128::from(w) << 64) / u128::from(q)) as u64
}

/// `x · w mod q` for `x < 2^64`, `w < q < 2^63`, with `ws = shoup_const(w, q)`.
#[inline(always)]
pub fn mul_mod_shoup(x: u64, w: u64, ws: u64, q: u64) -> u64 {
    let qh = ((u128::from(ws) * u128::from(x)) >> 64) as u64;
    let r = w.wrapping_mul(x).wrapping_sub(qh.wrapping_mul(q));
    if r >= q { r - q } else { r }
}

/// `a + b mod q` for `a, b < q`.
#[inline]
pub fn add_mod(a: u64, b: u64, q: u64) -> u64 {
    let s = a + b;
    if s >= q { s - q } else { s }
}

/// `a - b mod q` for `a, b < q`.
#[inline]
pub fn sub_mod(a: u64, b: u64, q: u64) -> u64 {
    if a >= b { a - b } else { a + q - b }
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

/// Reduce a signed integer into [0, q).
#[inline]
pub fn reduce_i64(v: i64, q: u64) -> u64 {
    // u64 remainder (hardware division), skipped for |v| < q: no 128-bit
    // software division on the hot paths (sampling, encoding, weights).
    let a = v.unsigned_abs();
    let r = if a < q { a } else { a % q };
    if v < 0 && r != 0 { q - r } else { r }
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let m = barrett_const(q);
        for x in [0u64, 1, q - 1, q, q + 1, u64::MAX, 0x1234_5678_9abc_def0] {
            assert_eq!(barrett_reduce(x, q, m), x % q);
            let ws = shoup_const(a, q);
            assert_eq!(mul_mod_shoup(x, a, ws, q), mul_mod(x % q, a, q));
            assert_eq!(
                mul_mod_shoup(x, a, ws, q),
                ((u128::from(x) * u128::from(a)) % u128::from(q)) as u64
            );
        }
    }
}
