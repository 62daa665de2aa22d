//! RNS polynomials of Z[X]/(X^N + 1) over a list of NTT-friendly primes,
//! with the negacyclic NTT of `tfhe-ntt` (one plan per prime, shared), and
//! the RNS tools CKKS needs: exact rounding division by the last prime
//! (rescale / mod-down by P), digit lifting for key switching, Galois
//! automorphisms and exact CRT reconstruction (Garner) for decoding.

use super::error::CkksError;
use super::math::{
    add_mod, barrett_const, barrett_reduce, inv_mod, mul_mod, mul_mod_shoup, shoup_const, sub_mod,
};
use rayon::prelude::*;
use std::sync::Arc;
use tfhe_ntt::prime64::Plan;

/// An NTT plan for one prime.
pub struct Modulus {
    /// The prime.
    pub q: u64,
    plan: Plan,
}

impl std::fmt::Debug for Modulus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Modulus({})", self.q)
    }
}

impl Modulus {
    /// A plan for degree `n` and prime `q`; typed error when tfhe-ntt refuses.
    pub fn new(n: usize, q: u64) -> Result<Self, CkksError> {
        let plan = Plan::try_new(n, q).ok_or_else(|| CkksError::InvalidParameters {
            detail: format!(
                "no negacyclic NTT for N = {n} modulo {q} (needs N >= 16, q prime, q ≡ 1 mod 2N)"
            ),
        })?;
        Ok(Self { q, plan })
    }
    /// Forward NTT in place.
    pub fn fwd(&self, a: &mut [u64]) {
        self.plan.fwd(a);
    }
    /// Inverse NTT in place (normalised).
    pub fn inv(&self, a: &mut [u64]) {
        self.plan.inv(a);
        self.plan.normalize(a);
    }
    /// acc += a * b pointwise (NTT domain).
    pub fn mul_acc(&self, acc: &mut [u64], a: &[u64], b: &[u64]) {
        self.plan.mul_accumulate(acc, a, b);
    }
}

/// A polynomial in RNS form: one limb per prime of `moduli`, all in the
/// NTT domain or all in coefficient form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RnsPoly {
    /// Limbs, limb i modulo `moduli[i]`.
    pub limbs: Vec<Vec<u64>>,
    /// Whether the limbs are in the NTT domain.
    pub ntt: bool,
}

impl RnsPoly {
    /// The zero polynomial with `k` limbs of degree `n`.
    pub fn zero(n: usize, k: usize, ntt: bool) -> Self {
        Self {
            limbs: vec![vec![0; n]; k],
            ntt,
        }
    }

    /// Number of limbs.
    pub fn len(&self) -> usize {
        self.limbs.len()
    }

    /// Whether there are no limbs.
    pub fn is_empty(&self) -> bool {
        self.limbs.is_empty()
    }

    /// Convert to the NTT domain (no-op if already there).
    pub fn to_ntt(&mut self, m: &[Arc<Modulus>]) {
        if !self.ntt {
            self.limbs
                .par_iter_mut()
                .zip(m)
                .for_each(|(l, md)| md.fwd(l));
            self.ntt = true;
        }
    }

    /// Convert to coefficient form (no-op if already there).
    pub fn to_coeff(&mut self, m: &[Arc<Modulus>]) {
        if self.ntt {
            self.limbs
                .par_iter_mut()
                .zip(m)
                .for_each(|(l, md)| md.inv(l));
            self.ntt = false;
        }
    }

    /// self += other (same domain, same limbs).
    pub fn add_assign(&mut self, other: &RnsPoly, m: &[Arc<Modulus>]) {
        self.limbs
            .par_iter_mut()
            .zip(&other.limbs)
            .zip(m)
            .for_each(|((a, b), md)| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x = add_mod(*x, *y, md.q);
                }
            });
    }

    /// self -= other.
    pub fn sub_assign(&mut self, other: &RnsPoly, m: &[Arc<Modulus>]) {
        self.limbs
            .par_iter_mut()
            .zip(&other.limbs)
            .zip(m)
            .for_each(|((a, b), md)| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x = sub_mod(*x, *y, md.q);
                }
            });
    }

    /// self = -self.
    pub fn neg_assign(&mut self, m: &[Arc<Modulus>]) {
        self.limbs.par_iter_mut().zip(m).for_each(|(a, md)| {
            for x in a.iter_mut() {
                *x = sub_mod(0, *x, md.q);
            }
        });
    }

    /// Pointwise product (both in the NTT domain).
    pub fn mul(&self, other: &RnsPoly, m: &[Arc<Modulus>]) -> RnsPoly {
        let limbs = self
            .limbs
            .par_iter()
            .zip(&other.limbs)
            .zip(m)
            .map(|((a, b), md)| {
                let mut acc = vec![0u64; a.len()];
                md.mul_acc(&mut acc, a, b);
                acc
            })
            .collect();
        RnsPoly { limbs, ntt: true }
    }

    /// self += a * b pointwise (all in the NTT domain).
    pub fn mul_acc(&mut self, a: &RnsPoly, b: &RnsPoly, m: &[Arc<Modulus>]) {
        self.limbs
            .par_iter_mut()
            .zip(&a.limbs)
            .zip(&b.limbs)
            .zip(m)
            .for_each(|(((acc, x), y), md)| md.mul_acc(acc, x, y));
    }

    /// Multiply every limb by a per-limb scalar.
    pub fn mul_scalar_limbs(&mut self, scalars: &[u64], m: &[Arc<Modulus>]) {
        self.limbs
            .par_iter_mut()
            .zip(scalars)
            .zip(m)
            .for_each(|((a, &s), md)| {
                let ss = shoup_const(s, md.q);
                for x in a.iter_mut() {
                    *x = mul_mod_shoup(*x, s, ss, md.q);
                }
            });
    }

    /// Keep only the first `k` limbs.
    pub fn truncate(&mut self, k: usize) {
        self.limbs.truncate(k);
    }
}

/// Divide by the last prime with rounding: `round(a / q_last)` over the
/// remaining primes (used by rescale and by the mod-down by P). Works in
/// either domain; the result keeps the input's domain.
pub fn divide_round_by_last(a: &mut RnsPoly, m: &[Arc<Modulus>]) -> Result<(), CkksError> {
    let k = a.len();
    if k < 2 {
        return Err(CkksError::LevelExhausted {
            op: "divide by the last prime",
            level: 0,
        });
    }
    let was_ntt = a.ntt;
    let last_m = &m[k - 1];
    let qlast = last_m.q;
    let mut last = a.limbs.pop().unwrap_or_default();
    if was_ntt {
        last_m.inv(&mut last);
    }
    // Add q_last/2 so that floor becomes round: (a + q/2 - (a + q/2 mod q)) / q.
    let half = qlast / 2;
    for x in last.iter_mut() {
        *x = add_mod(*x, half, qlast);
    }
    a.limbs
        .par_iter_mut()
        .zip(&m[..k - 1])
        .for_each(|(limb, md)| {
            let qi = md.q;
            let bm = barrett_const(qi);
            let mut r: Vec<u64> = last.iter().map(|&v| barrett_reduce(v, qi, bm)).collect();
            let half_i = half % qi;
            for x in r.iter_mut() {
                *x = sub_mod(*x, half_i, qi);
            }
            if was_ntt {
                md.fwd(&mut r);
            }
            let inv = inv_mod(qlast % qi, qi).unwrap_or(0);
            let inv_s = shoup_const(inv, qi);
            for (x, y) in limb.iter_mut().zip(&r) {
                *x = mul_mod_shoup(sub_mod(*x, *y, qi), inv, inv_s, qi);
            }
        });
    Ok(())
}

/// Lift the coefficient-form residues `digit` (values in [0, q_src)) to
/// every modulus of `m`, returning an NTT-domain polynomial.
pub fn lift_digit(digit: &[u64], m: &[Arc<Modulus>]) -> RnsPoly {
    let limbs = m
        .par_iter()
        .map(|md| {
            let bm = barrett_const(md.q);
            let mut v: Vec<u64> = digit.iter().map(|&x| barrett_reduce(x, md.q, bm)).collect();
            md.fwd(&mut v);
            v
        })
        .collect();
    RnsPoly { limbs, ntt: true }
}

/// Apply X -> X^k (k odd) to a coefficient-form polynomial.
pub fn automorphism(a: &RnsPoly, k: usize, m: &[Arc<Modulus>]) -> RnsPoly {
    let n = a.limbs.first().map_or(0, Vec::len);
    let two_n = 2 * n;
    let limbs = a
        .limbs
        .par_iter()
        .zip(m)
        .map(|(l, md)| {
            let mut out = vec![0u64; n];
            for (i, &c) in l.iter().enumerate() {
                let j = (i * k) % two_n;
                if j < n {
                    out[j] = c;
                } else {
                    out[j - n] = sub_mod(0, c, md.q);
                }
            }
            out
        })
        .collect();
    RnsPoly { limbs, ntt: false }
}

/// Precomputation for exact CRT reconstruction over the first `k` primes.
pub struct Crt {
    q: Vec<u64>,
    /// inv[i][j] = q_j^{-1} mod q_i for j < i.
    inv: Vec<Vec<u64>>,
}

impl Crt {
    /// Precompute for the primes `q`.
    pub fn new(q: &[u64]) -> Self {
        let inv = (0..q.len())
            .map(|i| {
                (0..i)
                    .map(|j| inv_mod(q[j] % q[i], q[i]).unwrap_or(0))
                    .collect()
            })
            .collect();
        Self { q: q.to_vec(), inv }
    }

    fn mixed_radix(&self, r: &[u64], out: &mut [u64]) {
        // Garner: x = v0 + v1 q0 + v2 q0 q1 + ...
        for i in 0..r.len() {
            let qi = self.q[i];
            let mut v = r[i];
            for (&oj, &inv) in out[..i].iter().zip(&self.inv[i]) {
                v = mul_mod(sub_mod(v, oj % qi, qi), inv, qi);
            }
            out[i] = v;
        }
    }

    /// The centred integer (as f64) with residues `r` modulo the first
    /// `r.len()` primes; exact up to f64 rounding of the result itself.
    pub fn centered(&self, r: &[u64]) -> f64 {
        let k = r.len();
        let mut pos = vec![0u64; k];
        let mut neg = vec![0u64; k];
        self.mixed_radix(r, &mut pos);
        let nr: Vec<u64> = r
            .iter()
            .zip(&self.q)
            .map(|(&x, &q)| sub_mod(0, x, q))
            .collect();
        self.mixed_radix(&nr, &mut neg);
        // Compare from the most significant digit: the smaller of x and Q-x.
        let use_neg = pos.iter().rev().cmp(neg.iter().rev()) == std::cmp::Ordering::Greater;
        let digits = if use_neg { &neg } else { &pos };
        let mut acc = 0.0f64;
        for i in (0..k).rev() {
            acc = acc * self.q[i] as f64 + digits[i] as f64;
        }
        if use_neg { -acc } else { acc }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::math::{ntt_primes, reduce_i64};

    fn moduli(n: usize, bits: &[u32]) -> Vec<Arc<Modulus>> {
        ntt_primes(bits, n)
            .expect("primes")
            .into_iter()
            .map(|q| Arc::new(Modulus::new(n, q).expect("plan")))
            .collect()
    }

    fn schoolbook(a: &[i64], b: &[i64]) -> Vec<i64> {
        let n = a.len();
        let mut out = vec![0i64; n];
        for i in 0..n {
            for j in 0..n {
                let v = a[i] * b[j];
                if i + j < n {
                    out[i + j] += v;
                } else {
                    out[i + j - n] -= v;
                }
            }
        }
        out
    }

    fn from_signed(a: &[i64], m: &[Arc<Modulus>]) -> RnsPoly {
        RnsPoly {
            limbs: m
                .iter()
                .map(|md| a.iter().map(|&v| reduce_i64(v, md.q)).collect())
                .collect(),
            ntt: false,
        }
    }

    #[test]
    fn ntt_round_trip_and_negacyclic_product() {
        let n = 64;
        let m = moduli(n, &[30, 40, 50]);
        let a: Vec<i64> = (0..n as i64).map(|i| (i * 37 % 101) - 50).collect();
        let b: Vec<i64> = (0..n as i64).map(|i| (i * 13 % 29) - 14).collect();
        let mut pa = from_signed(&a, &m);
        let orig = pa.clone();
        pa.to_ntt(&m);
        let mut back = pa.clone();
        back.to_coeff(&m);
        assert_eq!(back, orig);
        let mut pb = from_signed(&b, &m);
        pb.to_ntt(&m);
        let mut prod = pa.mul(&pb, &m);
        prod.to_coeff(&m);
        assert_eq!(prod, from_signed(&schoolbook(&a, &b), &m));
    }

    #[test]
    fn crt_reconstructs_signed_values_and_rescale_rounds() {
        let n = 16;
        let m = moduli(n, &[40, 30, 30]);
        let q: Vec<u64> = m.iter().map(|x| x.q).collect();
        let crt = Crt::new(&q);
        for v in [0i64, 1, -1, 123_456_789_012_345, -987_654_321_098_765] {
            let r: Vec<u64> = q.iter().map(|&qi| reduce_i64(v, qi)).collect();
            assert_eq!(crt.centered(&r), v as f64);
        }
        // Dividing by the last prime rounds to nearest.
        let last = q[2] as i64;
        let vals: Vec<i64> = (0..n as i64)
            .map(|i| i * last * 1000 + (i - 8) * last / 3)
            .collect();
        let mut p = from_signed(&vals, &m);
        p.to_ntt(&m);
        divide_round_by_last(&mut p, &m).expect("divide");
        p.to_coeff(&m);
        for (i, &v) in vals.iter().enumerate() {
            let want = (v as f64 / last as f64).round();
            let got = crt.centered(&[p.limbs[0][i], p.limbs[1][i]]);
            assert!((got - want).abs() <= 1.0, "{got} vs {want}");
        }
    }
}
