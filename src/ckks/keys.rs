//! Key generation: a ternary secret from a CSPRNG, the public key,
//! relinearisation and Galois (rotation, conjugation) keys for hybrid key
//! switching with the single special prime P (one RNS digit per ciphertext
//! prime, as SEAL). The secret key is zeroized on drop and never printed.

use super::context::CkksContext;
use super::math::{mul_mod, reduce_i64};
use super::ring::{Modulus, RnsPoly, automorphism, automorphism_ntt};
use rand::{CryptoRng, Rng, RngCore};
use rand_distr::{Distribution, Normal};
use std::collections::HashMap;
use std::sync::Arc;
use zeroize::Zeroize;

/// Standard deviation of the error distribution.
pub const SIGMA: f64 = 3.2;
/// Errors are bounded at 6σ (resampled beyond).
pub const ERROR_BOUND: f64 = 6.0 * SIGMA;

/// The secret key: a ternary polynomial, NTT form over q_0..q_L, P.
pub struct SecretKey {
    pub(crate) s: RnsPoly,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey { .. redacted .. }")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        for l in &mut self.s.limbs {
            l.zeroize();
        }
    }
}

/// The public key (b, a) = (-a s + e, a) over q_0..q_L.
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub(crate) b: RnsPoly,
    pub(crate) a: RnsPoly,
}

/// A key-switching key: for each ciphertext prime q_i, (b_i, a_i) over
/// q_0..q_L, P with b_i = -a_i s + e_i + [P]_{q_i} s' on limb i.
#[derive(Clone, Debug)]
pub struct SwitchingKey {
    pub(crate) parts: Vec<(RnsPoly, RnsPoly)>,
}

/// Relinearisation key (switches s² to s).
#[derive(Clone, Debug)]
pub struct RelinearizationKey(pub(crate) SwitchingKey);

/// Galois keys, by Galois element (5^r mod 2N for a rotation by r, 2N-1 for
/// conjugation). The key of element k is stored with sigma_k^-1 already
/// applied (an NTT-domain permutation), so that a rotation key-switches the
/// *unrotated* c1 and permutes only the result: its decomposition can be
/// shared by several rotations (hoisting).
#[derive(Clone, Debug, Default)]
pub struct GaloisKeys {
    pub(crate) keys: HashMap<usize, SwitchingKey>,
}

impl GaloisKeys {
    /// Galois elements available.
    pub fn elements(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.keys.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

/// The Galois element of a left rotation by `step` slots (negative: right).
pub fn galois_element(step: i64, n: usize) -> usize {
    let slots = (n / 2) as i64;
    let r = step.rem_euclid(slots) as u64;
    let m = 2 * n as u64;
    super::math::pow_mod(5, r, m) as usize
}

/// Generates keys from a secret sampled with a caller-supplied CSPRNG.
pub struct KeyGenerator<R: RngCore + CryptoRng> {
    ctx: Arc<CkksContext>,
    rng: R,
    sk: SecretKey,
}

impl<R: RngCore + CryptoRng> std::fmt::Debug for KeyGenerator<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyGenerator { .. }")
    }
}

pub(crate) fn sample_ternary(n: usize, rng: &mut impl RngCore) -> Vec<i64> {
    (0..n).map(|_| rng.random_range(-1i64..=1)).collect()
}

pub(crate) fn sample_error(n: usize, rng: &mut impl RngCore) -> Vec<i64> {
    let normal = Normal::new(0.0, SIGMA).unwrap_or_else(|_| unreachable!("sigma is positive"));
    (0..n)
        .map(|_| {
            loop {
                let v: f64 = normal.sample(rng);
                if v.abs() <= ERROR_BOUND {
                    break v.round() as i64;
                }
            }
        })
        .collect()
}

pub(crate) fn small_to_ntt(c: &[i64], m: &[Arc<Modulus>]) -> RnsPoly {
    let mut p = RnsPoly {
        limbs: m
            .iter()
            .map(|md| c.iter().map(|&v| reduce_i64(v, md.q)).collect())
            .collect(),
        ntt: false,
    };
    p.to_ntt(m);
    p
}

pub(crate) fn sample_uniform(n: usize, m: &[Arc<Modulus>], rng: &mut impl RngCore) -> RnsPoly {
    RnsPoly {
        limbs: m
            .iter()
            .map(|md| (0..n).map(|_| rng.random_range(0..md.q)).collect())
            .collect(),
        ntt: true,
    }
}

impl<R: RngCore + CryptoRng> KeyGenerator<R> {
    /// Sample a fresh ternary secret with `rng`.
    pub fn new(ctx: &Arc<CkksContext>, mut rng: R) -> Self {
        let n = ctx.params().n();
        let mut s = sample_ternary(n, &mut rng);
        let sk = SecretKey {
            s: small_to_ntt(&s, ctx.key_moduli()),
        };
        s.zeroize();
        Self {
            ctx: Arc::clone(ctx),
            rng,
            sk,
        }
    }

    /// The secret key.
    pub fn secret_key(&self) -> &SecretKey {
        &self.sk
    }

    /// A public key.
    pub fn public_key(&mut self) -> PublicKey {
        let l = self.ctx.params().max_level();
        let m = self.ctx.q_moduli(l);
        let n = self.ctx.params().n();
        let a = sample_uniform(n, m, &mut self.rng);
        let e = small_to_ntt(&sample_error(n, &mut self.rng), m);
        let mut s = self.sk.s.clone();
        s.truncate(m.len());
        let mut b = a.mul(&s, m);
        b.neg_assign(m);
        b.add_assign(&e, m);
        s.limbs.iter_mut().for_each(|l| l.zeroize());
        PublicKey { b, a }
    }

    fn switching_key(&mut self, target: &RnsPoly) -> SwitchingKey {
        let m = self.ctx.key_moduli();
        let n = self.ctx.params().n();
        let levels = self.ctx.params().max_level() + 1;
        let p = self.ctx.params().p();
        let parts = (0..levels)
            .map(|i| {
                let a = sample_uniform(n, m, &mut self.rng);
                let e = small_to_ntt(&sample_error(n, &mut self.rng), m);
                let mut b = a.mul(&self.sk.s, m);
                b.neg_assign(m);
                b.add_assign(&e, m);
                let qi = m[i].q;
                let pm = p % qi;
                for (x, t) in b.limbs[i].iter_mut().zip(&target.limbs[i]) {
                    *x = super::math::add_mod(*x, mul_mod(pm, *t, qi), qi);
                }
                (b, a)
            })
            .collect();
        SwitchingKey { parts }
    }

    /// The relinearisation key (s² -> s).
    pub fn relinearization_key(&mut self) -> RelinearizationKey {
        let m = self.ctx.key_moduli();
        let s2 = self.sk.s.mul(&self.sk.s, m);
        let k = self.switching_key(&s2);
        RelinearizationKey(k)
    }

    /// Galois keys for left rotations by each of `steps` (negative: right)
    /// and, if `conjugate`, for complex conjugation.
    pub fn galois_keys(&mut self, steps: &[i64], conjugate: bool) -> GaloisKeys {
        let n = self.ctx.params().n();
        let m = self.ctx.key_moduli().to_vec();
        let mut elts: Vec<usize> = steps.iter().map(|&s| galois_element(s, n)).collect();
        if conjugate {
            elts.push(2 * n - 1);
        }
        elts.sort_unstable();
        elts.dedup();
        let mut keys = HashMap::new();
        for k in elts {
            if k == 1 {
                continue; // rotation by 0 needs no key
            }
            let mut s = self.sk.s.clone();
            s.to_coeff(&m);
            let mut target = automorphism(&s, k, &m);
            s.limbs.iter_mut().for_each(|l| l.zeroize());
            target.to_ntt(&m);
            let mut key = self.switching_key(&target);
            target.limbs.iter_mut().for_each(|l| l.zeroize());
            // (Z/2N)* has order N: k^-1 = k^(N-1) mod 2N.
            let k_inv = super::math::pow_mod(k as u64, n as u64 - 1, 2 * n as u64) as usize;
            for (b, a) in &mut key.parts {
                *b = automorphism_ntt(b, k_inv, &m);
                *a = automorphism_ntt(a, k_inv, &m);
            }
            keys.insert(k, key);
        }
        GaloisKeys { keys }
    }
}
