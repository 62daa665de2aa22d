//! Ciphertexts, encryption, decryption and the homomorphic evaluator:
//! add/sub/negate, multiply (ct×ct, ct×pt, ct×scalar), relinearise,
//! rescale with exact scale tracking, mod-down, rotations and conjugation
//! by hybrid key switching, inner sums, and fused integer-scaled linear
//! combinations of many ciphertexts ([`Evaluator::linear_combinations_into`],
//! the kernel of batched encrypted inference).

use super::basis::{lift_digit_range, mod_down_by_special};
use super::context::CkksContext;
use super::encoder::{Encoder, Plaintext};
use super::error::CkksError;
use super::keys::{
    EncapsulationKeys, GaloisKeys, PolySeed, PublicKey, RelinearizationKey, SecretKey,
    SwitchingKey, expand_uniform, galois_element, sample_error, sample_ternary, seeded_uniform,
    small_to_ntt,
};
use super::math::{ConstMul, mul_shoup, reduce_f64, reduce_i64, shoup};
use super::ring::{
    Limb, RnsPoly, SecretPoly, Word, automorphism_ntt, divide_round_by_last, on_limb, simd,
};
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;
use std::sync::Arc;

/// A ciphertext: 2 parts (3 after a product, before relinearisation), NTT
/// domain over q_0..q_level, with its exact scale. Sealed: only the CKKS
/// layer builds or changes one; the scale label changes only through the
/// checked [`Evaluator::set_scale`]. Invariant: 2 or 3 parts, each with
/// `level + 1` limbs.
///
/// Outside the CKKS layer the fields cannot be touched:
/// ```compile_fail
/// fn relabel(ct: &mut slaf_ckks::Ciphertext) {
///     ct.scale = 1.0; // private: use Evaluator::set_scale, which checks it
/// }
/// ```
/// ```compile_fail
/// fn residues(ct: &slaf_ckks::Ciphertext) -> usize {
///     ct.parts.len() // private: use part_count()
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Ciphertext {
    /// c0, c1 (, c2).
    pub(crate) parts: Vec<RnsPoly>,
    /// Level = number of primes - 1.
    pub(crate) level: usize,
    /// Exact scale (tracked through every rescale, as SEAL does).
    pub(crate) scale: f64,
}

impl Ciphertext {
    /// Level.
    pub fn level(&self) -> usize {
        self.level
    }
    /// Scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }
    /// Number of parts: 2, or 3 after a product before relinearisation.
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }
    /// Bytes of its residues (8 per coefficient per limb per part).
    pub fn byte_size(&self) -> usize {
        self.parts.iter().map(RnsPoly::byte_size).sum()
    }
}

/// Public-key or symmetric encryption.
pub struct Encryptor<R: RngCore + CryptoRng> {
    ctx: Arc<CkksContext>,
    pk: PublicKey,
    rng: R,
}

impl<R: RngCore + CryptoRng> Encryptor<R> {
    /// An encryptor with a public key and a CSPRNG.
    pub fn new(ctx: &Arc<CkksContext>, pk: PublicKey, rng: R) -> Self {
        Self {
            ctx: Arc::clone(ctx),
            pk,
            rng,
        }
    }

    /// Encrypt with the public key: (b u + e0 + m, a u + e1). The
    /// randomness u, e0, e1 is wiped when the call returns.
    pub fn encrypt(&mut self, pt: &Plaintext) -> Ciphertext {
        let m = self.ctx.q_moduli(pt.level);
        let n = self.ctx.params().n();
        let u = small_to_ntt(&sample_ternary(n, &mut self.rng), m);
        // Products over the first m.len() limbs of the key: no copy of it.
        let mut c0 = u.mul(&self.pk.b, m);
        c0.add_assign(&small_to_ntt(&sample_error(n, &mut self.rng), m), m);
        c0.add_assign(&pt.poly, m);
        let mut c1 = u.mul(&self.pk.a, m);
        c1.add_assign(&small_to_ntt(&sample_error(n, &mut self.rng), m), m);
        Ciphertext {
            parts: vec![c0, c1],
            level: pt.level,
            scale: pt.scale,
        }
    }
}

/// Symmetric (secret-key) encryption: (-a s + e + m, a).
pub fn encrypt_symmetric(
    ctx: &Arc<CkksContext>,
    sk: &SecretKey,
    pt: &Plaintext,
    rng: &mut impl CryptoRng,
) -> Ciphertext {
    symmetric_parts(ctx, sk, pt, rng).0
}

/// Symmetric encryption that keeps the seed of `a` instead of `a`: the
/// compressed form a client uploads (half the bytes, as SEAL's
/// seed-compressed serialization). [`SeededCiphertext::expand`] gives the
/// same ciphertext [`encrypt_symmetric`] would.
pub fn encrypt_symmetric_seeded(
    ctx: &Arc<CkksContext>,
    sk: &SecretKey,
    pt: &Plaintext,
    rng: &mut impl CryptoRng,
) -> SeededCiphertext {
    let (ct, seed) = symmetric_parts(ctx, sk, pt, rng);
    let Ciphertext {
        mut parts,
        level,
        scale,
    } = ct;
    parts.truncate(1);
    SeededCiphertext {
        c0: parts.pop().unwrap_or_else(RnsPoly::empty),
        seed,
        level,
        scale,
    }
}

fn symmetric_parts(
    ctx: &Arc<CkksContext>,
    sk: &SecretKey,
    pt: &Plaintext,
    rng: &mut impl CryptoRng,
) -> (Ciphertext, PolySeed) {
    let m = ctx.q_moduli(pt.level);
    let n = ctx.params().n();
    let (a, seed) = seeded_uniform(m, rng);
    // s is read in place over the first m.len() limbs; e is wiped on drop.
    let mut c0 = a.mul(sk.s(), m);
    c0.neg_assign(m);
    c0.add_assign(&small_to_ntt(&sample_error(n, rng), m), m);
    c0.add_assign(&pt.poly, m);
    let ct = Ciphertext {
        parts: vec![c0, a],
        level: pt.level,
        scale: pt.scale,
    };
    (ct, seed)
}

/// A fresh symmetric ciphertext with its uniform part `a` kept as a
/// 32-byte seed ([`encrypt_symmetric_seeded`]). Sealed like [`Ciphertext`].
#[derive(Clone, Debug, PartialEq)]
pub struct SeededCiphertext {
    pub(crate) c0: RnsPoly,
    pub(crate) seed: PolySeed,
    pub(crate) level: usize,
    pub(crate) scale: f64,
}

impl SeededCiphertext {
    /// Level.
    pub fn level(&self) -> usize {
        self.level
    }
    /// Scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }
    /// The full ciphertext (c0, a) with `a` expanded from the seed.
    pub fn expand(&self, ctx: &CkksContext) -> Ciphertext {
        let a = expand_uniform(ctx.q_moduli(self.level), &self.seed);
        Ciphertext {
            parts: vec![self.c0.clone(), a],
            level: self.level,
            scale: self.scale,
        }
    }
}

/// Decrypt: c0 + c1 s (+ c2 s²), reading s and s² from the key in place
/// (no secret temporary).
pub fn decrypt(ctx: &Arc<CkksContext>, sk: &SecretKey, ct: &Ciphertext) -> Plaintext {
    let m = ctx.q_moduli(ct.level);
    let mut acc = ct.parts[0].clone();
    // A ciphertext has at most 3 parts (type invariant).
    for (part, spow) in ct.parts[1..].iter().zip([sk.s(), sk.s2()]) {
        acc.mul_acc(part, spow, m);
    }
    Plaintext {
        poly: acc,
        level: ct.level,
        scale: ct.scale,
    }
}

/// Relative tolerance under which two scales count as equal: a few ulps
/// (scales computed along different paths of exact products and quotients
/// differ by rounding only).
pub const SCALE_TOLERANCE: f64 = 16.0 * f64::EPSILON;

/// Bits that must stay free between a scale and the level's modulus Q_l:
/// a product (or a relabelled scale) with log2(scale) + this >= log2(Q_l)
/// is refused (SEAL's "scale out of bounds"), since its values would wrap.
pub const SCALE_HEADROOM_BITS: u32 = 1;

/// The public keys an evaluator owns: the relinearisation key (products)
/// and Galois keys (rotations). Both optional; an operation that needs a
/// missing key is a typed error.
#[derive(Clone, Debug, Default)]
pub struct EvaluationKeys {
    relin: Option<RelinearizationKey>,
    galois: Option<GaloisKeys>,
    encapsulation: Option<EncapsulationKeys>,
}

impl EvaluationKeys {
    /// A bundle of the given keys.
    pub fn new(relin: Option<RelinearizationKey>, galois: Option<GaloisKeys>) -> Self {
        Self {
            relin,
            galois,
            encapsulation: None,
        }
    }
    /// The same bundle with sparse-secret encapsulation keys (bootstrapping).
    pub fn with_encapsulation(mut self, keys: EncapsulationKeys) -> Self {
        self.encapsulation = Some(keys);
        self
    }
    /// The sparse-secret encapsulation keys, if any.
    pub fn encapsulation(&self) -> Option<&EncapsulationKeys> {
        self.encapsulation.as_ref()
    }
    /// The relinearisation key, if any.
    pub fn relin(&self) -> Option<&RelinearizationKey> {
        self.relin.as_ref()
    }
    /// The Galois keys, if any.
    pub fn galois(&self) -> Option<&GaloisKeys> {
        self.galois.as_ref()
    }
}

/// The homomorphic evaluator, with the evaluation keys it owns (shared
/// behind an `Arc`, so clones are cheap). It implements
/// [`super::circuits::CircuitBackend`] directly.
#[derive(Clone, Debug)]
pub struct Evaluator {
    ctx: Arc<CkksContext>,
    encoder: Arc<Encoder>,
    keys: Arc<EvaluationKeys>,
}

impl Evaluator {
    /// An evaluator for the context without keys.
    pub fn new(ctx: &Arc<CkksContext>) -> Self {
        Self::with_keys(ctx, EvaluationKeys::default())
    }

    /// An evaluator that owns `keys`.
    pub fn with_keys(ctx: &Arc<CkksContext>, keys: EvaluationKeys) -> Self {
        Self {
            ctx: Arc::clone(ctx),
            encoder: Arc::new(Encoder::new(ctx)),
            keys: Arc::new(keys),
        }
    }

    /// The context.
    pub fn context(&self) -> &Arc<CkksContext> {
        &self.ctx
    }

    /// The encoder of the context.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The keys this evaluator owns.
    pub fn keys(&self) -> &EvaluationKeys {
        &self.keys
    }

    /// The relinearisation key, or a typed error naming the operation.
    pub fn relin_key(&self, op: &'static str) -> Result<&RelinearizationKey, CkksError> {
        self.keys.relin().ok_or_else(|| CkksError::Mismatch {
            op,
            detail: "the evaluator holds no relinearization key".into(),
        })
    }

    /// The Galois keys, or a typed error naming the operation.
    pub fn galois_keys(&self, op: &'static str) -> Result<&GaloisKeys, CkksError> {
        self.keys.galois().ok_or_else(|| CkksError::Mismatch {
            op,
            detail: "the evaluator holds no Galois keys".into(),
        })
    }

    /// A scale must be finite, positive, and leave [`SCALE_HEADROOM_BITS`]
    /// below Q_level.
    fn check_scale_fits(
        &self,
        op: &'static str,
        scale: f64,
        level: usize,
    ) -> Result<(), CkksError> {
        let log_q = self.ctx.log_q(level);
        let bits = scale.log2();
        if !(scale.is_finite() && scale > 0.0 && bits + f64::from(SCALE_HEADROOM_BITS) < log_q) {
            return Err(CkksError::ScaleOutOfBounds {
                op,
                scale_bits: bits,
                headroom_bits: SCALE_HEADROOM_BITS,
                level,
                log_q,
            });
        }
        Ok(())
    }

    /// Relabel the scale of `ct` (its values are multiplied by
    /// `ct.scale() / scale`), checked like a product's scale: finite,
    /// positive and below Q_level with headroom.
    pub fn set_scale(&self, ct: &mut Ciphertext, scale: f64) -> Result<(), CkksError> {
        self.check_scale_fits("set scale", scale, ct.level)?;
        ct.scale = scale;
        Ok(())
    }

    /// Drop primes (no division) down to `level`.
    pub fn mod_down_to(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext, CkksError> {
        if level > ct.level {
            return Err(CkksError::Mismatch {
                op: "mod down",
                detail: format!("target level {level} above the ciphertext's {}", ct.level),
            });
        }
        let mut out = ct.clone();
        for p in &mut out.parts {
            p.truncate(level + 1);
        }
        out.level = level;
        Ok(out)
    }

    fn check_scales(op: &'static str, a: f64, b: f64) -> Result<(), CkksError> {
        // Written so that NaN (and infinities) fail the comparison.
        let rel = ((a - b) / a).abs();
        if rel.is_nan() || rel > SCALE_TOLERANCE {
            return Err(CkksError::Mismatch {
                op,
                detail: format!("scales differ ({a:.6e} vs {b:.6e}); rescale or adjust first"),
            });
        }
        Ok(())
    }

    fn aligned(
        &self,
        a: &Ciphertext,
        b: &Ciphertext,
    ) -> Result<(Ciphertext, Ciphertext), CkksError> {
        let l = a.level.min(b.level);
        Ok((self.mod_down_to(a, l)?, self.mod_down_to(b, l)?))
    }

    /// a + b (levels aligned automatically; scales must be equal).
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, CkksError> {
        Self::check_scales("add", a.scale, b.scale)?;
        let (mut x, y) = self.aligned(a, b)?;
        let m = self.ctx.q_moduli(x.level);
        while x.parts.len() < y.parts.len() {
            x.parts.push(RnsPoly::zero(m, true));
        }
        for (p, q) in x.parts.iter_mut().zip(&y.parts) {
            p.add_assign(q, m);
        }
        Ok(x)
    }

    /// a - b.
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, CkksError> {
        let nb = self.negate(b);
        self.add(a, &nb)
    }

    /// -a.
    pub fn negate(&self, a: &Ciphertext) -> Ciphertext {
        let m = self.ctx.q_moduli(a.level);
        let mut out = a.clone();
        for p in &mut out.parts {
            p.neg_assign(m);
        }
        out
    }

    /// ct + pt (scales must be equal; the plaintext must be at or above the level).
    pub fn add_plain(&self, a: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, CkksError> {
        Self::check_scales("add plaintext", a.scale, pt.scale)?;
        let l = a.level.min(pt.level);
        let mut x = self.mod_down_to(a, l)?;
        let m = self.ctx.q_moduli(l);
        // The sum runs over the first l + 1 limbs of the plaintext.
        x.parts[0].add_assign(&pt.poly, m);
        Ok(x)
    }

    /// ct + c in every slot.
    pub fn add_scalar(&self, a: &Ciphertext, c: f64) -> Result<Ciphertext, CkksError> {
        let v = (c * a.scale).round();
        let m = self.ctx.q_moduli(a.level);
        check_fits(v, m, || format!("constant {c} at scale {:.3e}", a.scale))?;
        let mut out = a.clone();
        // A constant polynomial is the same constant in every NTT slot.
        let r: Vec<u64> = m.iter().map(|md| reduce_f64(v, md.q)).collect();
        out.parts[0].add_scalar_limbs(&r, m);
        Ok(out)
    }

    /// ct × c, encoding c as the integer round(c · const_scale); the result's
    /// scale is ct.scale · const_scale (choose const_scale = the prime the
    /// next rescale drops to keep the scale exactly).
    pub fn mul_scalar(
        &self,
        a: &Ciphertext,
        c: f64,
        const_scale: f64,
    ) -> Result<Ciphertext, CkksError> {
        let v = (c * const_scale).round();
        let m = self.ctx.q_moduli(a.level);
        check_fits(v, m, || format!("constant {c} at scale {const_scale:.3e}"))?;
        let scale = a.scale * const_scale;
        self.check_scale_fits("multiply by a constant", scale, a.level)?;
        let scalars: Vec<u64> = m.iter().map(|md| reduce_f64(v, md.q)).collect();
        let mut out = a.clone();
        for p in &mut out.parts {
            p.mul_scalar_limbs(&scalars, m);
        }
        out.scale = scale;
        Ok(out)
    }

    /// ct × integer (scale unchanged).
    pub fn mul_integer(&self, a: &Ciphertext, k: i64) -> Ciphertext {
        let m = self.ctx.q_moduli(a.level);
        let scalars: Vec<u64> = m.iter().map(|md| reduce_i64(k, md.q)).collect();
        let mut out = a.clone();
        for p in &mut out.parts {
            p.mul_scalar_limbs(&scalars, m);
        }
        out
    }

    /// ct × pt (scales multiply).
    pub fn mul_plain(&self, a: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, CkksError> {
        let l = a.level.min(pt.level);
        let scale = a.scale * pt.scale;
        self.check_scale_fits("multiply by a plaintext", scale, l)?;
        let x = self.mod_down_to(a, l)?;
        let m = self.ctx.q_moduli(l);
        Ok(Ciphertext {
            // Products over the first l + 1 limbs of the plaintext.
            parts: x.parts.iter().map(|c| c.mul(&pt.poly, m)).collect(),
            level: l,
            scale,
        })
    }

    /// a × b without relinearisation (3 parts).
    pub fn mul(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, CkksError> {
        if a.parts.len() != 2 || b.parts.len() != 2 {
            return Err(CkksError::Degree {
                op: "multiply",
                parts: a.parts.len().max(b.parts.len()),
                expected: 2,
            });
        }
        let scale = a.scale * b.scale;
        self.check_scale_fits("multiply", scale, a.level.min(b.level))?;
        let (x, y) = self.aligned(a, b)?;
        let m = self.ctx.q_moduli(x.level);
        let c0 = x.parts[0].mul(&y.parts[0], m);
        let mut c1 = x.parts[0].mul(&y.parts[1], m);
        c1.mul_acc(&x.parts[1], &y.parts[0], m);
        let c2 = x.parts[1].mul(&y.parts[1], m);
        Ok(Ciphertext {
            parts: vec![c0, c1, c2],
            level: x.level,
            scale,
        })
    }

    /// The key-switching decomposition of `d` (NTT domain, level `level`):
    /// one centred digit per group of primes ([`CkksParameters::digits`]),
    /// lifted to q_0..q_level and the special primes (NTT).
    ///
    /// [`CkksParameters::digits`]: super::params::CkksParameters::digits
    fn decompose(&self, d: &RnsPoly, level: usize) -> Vec<RnsPoly> {
        let qm = self.ctx.q_moduli(level);
        let qpm = self.ctx.qp_moduli(level);
        let mut dc = d.clone();
        dc.make_coeff(qm);
        self.ctx
            .params()
            .digits(level)
            .into_par_iter()
            .map(|digit| lift_digit_range(&dc, d, digit, qpm))
            .collect()
    }

    /// Inner product of decomposed digits with `key`, then the mod-down by
    /// P: (u0, u1) with u0 + u1 s ≈ d s'.
    fn key_switch_digits(
        &self,
        digits: &[RnsPoly],
        level: usize,
        key: &SwitchingKey,
    ) -> (RnsPoly, RnsPoly) {
        let qpm = self.ctx.qp_moduli(level);
        let key_p = self.ctx.params().max_level() + 1;
        let special = qpm.len() - (level + 1);
        // Map output limb j to the key's limb: j for q_j, key_p + i for p_i.
        let key_idx = |j: usize| if j > level { key_p + j - level - 1 } else { j };
        let (limbs0, limbs1): (Vec<Limb>, Vec<Limb>) = (0..qpm.len())
            .into_par_iter()
            .map(|j| {
                let terms: Vec<(&Limb, &Limb, &Limb)> = digits
                    .iter()
                    .zip(&key.parts)
                    .map(|(dig, (b, a))| {
                        (&dig.limbs[j], &b.limbs[key_idx(j)], &a.limbs[key_idx(j)])
                    })
                    .collect();
                qpm[j].dot2(&terms)
            })
            .unzip();
        let mut u0 = RnsPoly {
            limbs: limbs0,
            ntt: true,
        };
        let mut u1 = RnsPoly {
            limbs: limbs1,
            ntt: true,
        };
        // Mod down by P (rounding division; the lengths always match).
        let _ = mod_down_by_special(&mut u0, qpm, special);
        let _ = mod_down_by_special(&mut u1, qpm, special);
        (u0, u1)
    }

    /// Key switching of `d` (NTT domain, level `level`) with `key`:
    /// returns (u0, u1) with u0 + u1 s ≈ d s'.
    fn key_switch(&self, d: &RnsPoly, level: usize, key: &SwitchingKey) -> (RnsPoly, RnsPoly) {
        let digits = self.decompose(d, level);
        self.key_switch_digits(&digits, level, key)
    }

    /// Switch a 2-part ciphertext to the secret of `key` (the
    /// sparse-secret encapsulation's two switches).
    pub(crate) fn switch_key(
        &self,
        a: &Ciphertext,
        key: &SwitchingKey,
    ) -> Result<Ciphertext, CkksError> {
        if a.parts.len() != 2 {
            return Err(CkksError::Degree {
                op: "key switch",
                parts: a.parts.len(),
                expected: 2,
            });
        }
        let (u0, u1) = self.key_switch(&a.parts[1], a.level, key);
        let mut c0 = a.parts[0].clone();
        c0.add_assign(&u0, self.ctx.q_moduli(a.level));
        Ok(Ciphertext {
            parts: vec![c0, u1],
            level: a.level,
            scale: a.scale,
        })
    }

    /// Relinearise a 3-part ciphertext to 2 parts.
    pub fn relinearize(
        &self,
        a: &Ciphertext,
        rk: &RelinearizationKey,
    ) -> Result<Ciphertext, CkksError> {
        match a.parts.len() {
            2 => Ok(a.clone()),
            3 => {
                let (u0, u1) = self.key_switch(&a.parts[2], a.level, &rk.0);
                let m = self.ctx.q_moduli(a.level);
                let mut c0 = a.parts[0].clone();
                c0.add_assign(&u0, m);
                let mut c1 = a.parts[1].clone();
                c1.add_assign(&u1, m);
                Ok(Ciphertext {
                    parts: vec![c0, c1],
                    level: a.level,
                    scale: a.scale,
                })
            }
            p => Err(CkksError::Degree {
                op: "relinearize",
                parts: p,
                expected: 3,
            }),
        }
    }

    /// Divide by the last prime: level - 1, scale / q_level (exact).
    pub fn rescale(&self, a: &Ciphertext) -> Result<Ciphertext, CkksError> {
        if a.level == 0 {
            return Err(CkksError::LevelExhausted {
                op: "rescale",
                level: 0,
            });
        }
        let m = self.ctx.q_moduli(a.level);
        let q_last = m[a.level].q as f64;
        let mut out = a.clone();
        for p in &mut out.parts {
            divide_round_by_last(p, m)?;
        }
        out.level -= 1;
        out.scale /= q_last;
        Ok(out)
    }

    /// a × b, relinearised and rescaled.
    pub fn mul_relin_rescale(
        &self,
        a: &Ciphertext,
        b: &Ciphertext,
        rk: &RelinearizationKey,
    ) -> Result<Ciphertext, CkksError> {
        if a.level.min(b.level) == 0 {
            return Err(CkksError::LevelExhausted {
                op: "multiply and rescale",
                level: 0,
            });
        }
        let p = self.mul(a, b)?;
        let r = self.relinearize(&p, rk)?;
        self.rescale(&r)
    }

    fn check_two_parts(a: &Ciphertext) -> Result<(), CkksError> {
        if a.parts.len() != 2 {
            return Err(CkksError::Degree {
                op: "rotate",
                parts: a.parts.len(),
                expected: 2,
            });
        }
        Ok(())
    }

    /// sigma_k of `a` from the decomposition of its (unrotated) c1: the
    /// Galois key is stored pre-permuted by sigma_k^-1, so
    /// sigma_k(c0 + <digits, key>) , sigma_k(<digits, key'>) is the rotated
    /// ciphertext; only the two result polynomials are permuted (NTT domain).
    fn galois_from_digits(
        &self,
        a: &Ciphertext,
        digits: &[RnsPoly],
        k: usize,
        gk: &GaloisKeys,
        step: i64,
    ) -> Result<Ciphertext, CkksError> {
        if k == 1 {
            return Ok(a.clone());
        }
        let key = gk
            .keys
            .get(&k)
            .ok_or(CkksError::MissingGaloisKey { step })?;
        let m = self.ctx.q_moduli(a.level);
        let (mut u0, u1) = self.key_switch_digits(digits, a.level, key);
        u0.add_assign(&a.parts[0], m);
        Ok(Ciphertext {
            parts: vec![automorphism_ntt(&u0, k, m), automorphism_ntt(&u1, k, m)],
            level: a.level,
            scale: a.scale,
        })
    }

    fn apply_galois(
        &self,
        a: &Ciphertext,
        k: usize,
        gk: &GaloisKeys,
        step: i64,
    ) -> Result<Ciphertext, CkksError> {
        Self::check_two_parts(a)?;
        if k == 1 {
            return Ok(a.clone());
        }
        if !gk.keys.contains_key(&k) {
            return Err(CkksError::MissingGaloisKey { step });
        }
        let digits = self.decompose(&a.parts[1], a.level);
        self.galois_from_digits(a, &digits, k, gk, step)
    }

    /// Rotations of `a` left by each of `steps` with one shared key-switch
    /// decomposition of c1 (hoisting): each further step costs one inner
    /// product with its key, the mod-down by P and two index permutations.
    /// Steps run in parallel on the rayon pool; step 0 returns a copy.
    pub fn rotate_hoisted(
        &self,
        a: &Ciphertext,
        steps: &[i64],
        gk: &GaloisKeys,
    ) -> Result<Vec<Ciphertext>, CkksError> {
        Self::check_two_parts(a)?;
        let n = self.ctx.params().n();
        let elts: Vec<(i64, usize)> = steps.iter().map(|&s| (s, galois_element(s, n))).collect();
        if let Some(&(step, _)) = elts
            .iter()
            .find(|(_, k)| *k != 1 && !gk.keys.contains_key(k))
        {
            return Err(CkksError::MissingGaloisKey { step });
        }
        let digits = if elts.iter().any(|(_, k)| *k != 1) {
            self.decompose(&a.parts[1], a.level)
        } else {
            Vec::new()
        };
        elts.par_iter()
            .map(|&(step, k)| self.galois_from_digits(a, &digits, k, gk, step))
            .collect()
    }

    /// Rotate the slots left by `step` (negative: right).
    pub fn rotate(
        &self,
        a: &Ciphertext,
        step: i64,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext, CkksError> {
        let k = galois_element(step, self.ctx.params().n());
        self.apply_galois(a, k, gk, step)
    }

    /// Complex conjugation of every slot.
    pub fn conjugate(&self, a: &Ciphertext, gk: &GaloisKeys) -> Result<Ciphertext, CkksError> {
        let k = 2 * self.ctx.params().n() - 1;
        self.apply_galois(a, k, gk, 0)
    }

    /// Noise flooding with re-randomisation: `ct + Enc_pk(0)` where the
    /// encryption of zero carries a fresh ternary `u`, a standard error on
    /// c1 and a uniform error in [-2^bits, 2^bits) on every coefficient of
    /// c0 ([`Flood::Uniform`]; [`Evaluator::flood_with`] takes any
    /// [`Flood`]).
    pub fn flood(
        &self,
        ct: &Ciphertext,
        pk: &PublicKey,
        bits: u32,
        rng: &mut impl CryptoRng,
    ) -> Result<Ciphertext, CkksError> {
        self.flood_with(ct, pk, Flood::Uniform { bits }, rng)
    }

    /// Noise flooding with re-randomisation: `ct + Enc_pk(0)` where the
    /// encryption of zero carries a fresh ternary `u`, a standard error on
    /// c1 and the `flood` noise on every coefficient of c0. The result
    /// decrypts to the same values, with the circuit's noise drowned in
    /// fresh noise (hiding what it says about the circuit). Refused when the
    /// flood would leave fewer than 4 bits of precision at the
    /// ciphertext's scale ([`Flood::slot_noise_bits`]), and for anything
    /// but 2 parts. The flood values are reduced with a branch on their
    /// sign (a timing leak of the server's own randomness, not of any
    /// client secret).
    pub fn flood_with(
        &self,
        ct: &Ciphertext,
        pk: &PublicKey,
        flood: Flood,
        rng: &mut impl CryptoRng,
    ) -> Result<Ciphertext, CkksError> {
        let n = self.ctx.params().n();
        let slot_noise_bits = flood.slot_noise_bits(n);
        if ct.parts.len() != 2 || flood.max_bits() > 60.0 || slot_noise_bits + 4.0 > ct.scale.log2()
        {
            return Err(CkksError::Mismatch {
                op: "noise flooding",
                detail: format!(
                    "{flood:?} on a {}-part ciphertext of scale 2^{:.1}: the slot noise 2^{slot_noise_bits:.1} must stay 4 bits below the scale (2 parts, at most 60 bits)",
                    ct.parts.len(),
                    ct.scale.log2()
                ),
            });
        }
        let m = self.ctx.q_moduli(ct.level);
        let u = small_to_ntt(&sample_ternary(n, rng), m);
        let wide = flood.sample(n, rng);
        let mut e0 = SecretPoly::new(RnsPoly {
            limbs: m
                .iter()
                .map(|md| Limb::collect(md, wide.iter().map(|&v| reduce_i64(v, md.q))))
                .collect(),
            ntt: false,
        });
        e0.convert_to_ntt(m);
        let mut c0 = ct.parts[0].clone();
        c0.add_assign(&u.mul(&pk.b, m), m);
        c0.add_assign(&e0, m);
        let mut c1 = ct.parts[1].clone();
        c1.add_assign(&u.mul(&pk.a, m), m);
        c1.add_assign(&small_to_ntt(&sample_error(n, rng), m), m);
        Ok(Ciphertext {
            parts: vec![c0, c1],
            level: ct.level,
            scale: ct.scale,
        })
    }

    /// Multiply every slot by `i`: the product of each part by the
    /// monomial `X^{N/2}` (every slot's root raised to N/2 is `i`), exact
    /// and free of noise and levels.
    pub fn mul_by_i(&self, ct: &Ciphertext) -> Result<Ciphertext, CkksError> {
        let n = self.ctx.params().n();
        let m = self.ctx.q_moduli(ct.level);
        let mut mono = RnsPoly {
            limbs: m
                .iter()
                .map(|md| Limb::collect(md, (0..n).map(|j| u64::from(j == n / 2))))
                .collect(),
            ntt: false,
        };
        mono.make_ntt(m);
        Ok(Ciphertext {
            parts: ct.parts.iter().map(|p| p.mul(&mono, m)).collect(),
            level: ct.level,
            scale: ct.scale,
        })
    }

    /// ModRaise, the first step of bootstrapping: a ciphertext at level 0
    /// read at the top level. Each part's coefficients modulo `q_0`,
    /// centred, are lifted to every prime of the chain, so the result
    /// decrypts to `Δm + e + q_0·I` with `I` an integer polynomial whose
    /// coefficients are at most about `(||s||_1 + 1) / 2` in size (the
    /// secret's Hamming weight bounds them; CoeffsToSlots and EvalMod then
    /// remove `q_0·I`). Refused for a ciphertext above level 0 (switch it
    /// down with [`Evaluator::mod_down_to`] first) or with 3 parts.
    pub fn mod_raise(&self, ct: &Ciphertext) -> Result<Ciphertext, CkksError> {
        if ct.level != 0 || ct.parts.len() != 2 {
            return Err(CkksError::Mismatch {
                op: "ModRaise",
                detail: format!(
                    "a {}-part ciphertext at level {}: ModRaise takes 2 parts at level 0 (mod_down_to(ct, 0) first)",
                    ct.parts.len(),
                    ct.level
                ),
            });
        }
        let top = self.ctx.params().max_level();
        let m0 = self.ctx.q_moduli(0);
        let mt = self.ctx.q_moduli(top);
        let q0 = m0[0].q;
        let parts = ct
            .parts
            .iter()
            .map(|p| {
                let mut c = p.clone();
                c.make_coeff(m0);
                let words = c.limbs[0].wide();
                let centered: Vec<i64> = words
                    .iter()
                    .map(|&v| {
                        if v > q0 / 2 {
                            v as i64 - q0 as i64
                        } else {
                            v as i64
                        }
                    })
                    .collect();
                let mut out = RnsPoly {
                    limbs: mt
                        .iter()
                        .map(|md| Limb::collect(md, centered.iter().map(|&v| reduce_i64(v, md.q))))
                        .collect(),
                    ntt: false,
                };
                out.make_ntt(mt);
                out
            })
            .collect();
        Ok(Ciphertext {
            parts,
            level: top,
            scale: ct.scale,
        })
    }

    /// A zero ciphertext (`parts` parts, 2 or 3; NTT domain) at `level`
    /// with `scale`: the starting value of an accumulator.
    pub fn zero_ciphertext(&self, level: usize, parts: usize, scale: f64) -> Ciphertext {
        let level = level.min(self.ctx.params().max_level());
        Ciphertext {
            parts: (0..parts.clamp(2, 3))
                .map(|_| RnsPoly::zero(self.ctx.q_moduli(level), true))
                .collect(),
            level,
            scale,
        }
    }

    /// `sum_j round(w_j * const_scale) * x_j` with one modular reduction per
    /// coefficient and no intermediate rescale; the result's scale is
    /// `scale(x) * const_scale` (see [`Self::linear_combinations_into`]).
    pub fn linear_combination(
        &self,
        xs: &[&Ciphertext],
        weights: &[f64],
        const_scale: f64,
    ) -> Result<Ciphertext, CkksError> {
        if xs.len() != weights.len() || xs.is_empty() {
            return Err(CkksError::Mismatch {
                op: "linear combination",
                detail: format!("{} ciphertexts but {} weights", xs.len(), weights.len()),
            });
        }
        let parts = xs.iter().map(|c| c.parts.len()).max().unwrap_or(2);
        let mut acc = [self.zero_ciphertext(xs[0].level, parts, xs[0].scale * const_scale)];
        let row: Vec<(usize, f64)> = weights.iter().copied().enumerate().collect();
        self.linear_combinations_into(xs, &[row], const_scale, &mut acc)?;
        let [out] = acc;
        Ok(out)
    }

    /// Many linear combinations of the same ciphertexts at once, added into
    /// `accs`: `accs[i] += sum_{(j, w) in rows[i]} round(w * const_scale) * xs[j]`.
    ///
    /// Every `xs[j]` must have the same level and scale; every accumulator
    /// must be at that level, with scale `scale(x) * const_scale` and at
    /// least as many parts as the inputs (3-part, unrelinearised inputs are
    /// fine: relinearisation commutes with linear maps, so it can be done
    /// once on the sums). Nothing is rescaled: the caller rescales the
    /// accumulators when all terms are in.
    ///
    /// Speed: the products are accumulated lazily, without reduction — for
    /// primes below 2^32 as 32x32->64-bit products (vectorisable), up to
    /// `2^64 / q^2` terms (4096 for 26-bit primes) between two Barrett
    /// reductions; for larger primes with Shoup's precomputed quotient
    /// (results in `[0, 2q)`, up to `2^63 / q` terms between reductions).
    /// The work is cache-blocked (tiles of 256 coefficients: the inputs'
    /// tiles stay in cache while every row is accumulated) and parallel over
    /// the (part, prime) pairs.
    pub fn linear_combinations_into(
        &self,
        xs: &[&Ciphertext],
        rows: &[Vec<(usize, f64)>],
        const_scale: f64,
        accs: &mut [Ciphertext],
    ) -> Result<(), CkksError> {
        let bad = |detail: String| CkksError::Mismatch {
            op: "linear combination",
            detail,
        };
        if rows.len() != accs.len() {
            return Err(bad(format!(
                "{} rows but {} accumulators",
                rows.len(),
                accs.len()
            )));
        }
        let Some(first) = xs.first() else {
            return Ok(());
        };
        let level = first.level;
        let in_parts = xs.iter().map(|c| c.parts.len()).max().unwrap_or(2);
        for x in xs {
            if x.level != level {
                return Err(bad(format!(
                    "inputs at different levels ({} and {level})",
                    x.level
                )));
            }
            Self::check_scales("linear combination", first.scale, x.scale)?;
        }
        let want_scale = first.scale * const_scale;
        self.check_scale_fits("linear combination", want_scale, level)?;
        for acc in accs.iter_mut() {
            if acc.level != level {
                return Err(bad(format!(
                    "accumulator at level {} but inputs at level {level}",
                    acc.level
                )));
            }
            Self::check_scales("linear combination", acc.scale, want_scale)?;
            while acc.parts.len() < in_parts {
                acc.parts
                    .push(RnsPoly::zero(self.ctx.q_moduli(level), true));
            }
        }
        // Integer weights, checked once.
        let mut int_rows: Vec<Vec<(usize, i64)>> = Vec::with_capacity(rows.len());
        for row in rows {
            let mut r = Vec::with_capacity(row.len());
            for &(j, w) in row {
                if j >= xs.len() {
                    return Err(bad(format!("index {j} out of {} inputs", xs.len())));
                }
                let v = (w * const_scale).round();
                if !v.is_finite() || v.abs() >= 2f64.powi(62) {
                    return Err(CkksError::Encoding {
                        detail: format!("weight {w} at scale {const_scale:.3e} does not fit"),
                    });
                }
                if v != 0.0 {
                    r.push((j, v as i64));
                }
            }
            int_rows.push(r);
        }
        if accs.is_empty() {
            return Ok(());
        }
        let m = self.ctx.q_moduli(level);
        let nl = level + 1;
        let acc_parts = accs.iter().map(|a| a.parts.len()).max().unwrap_or(2);
        let mut groups: Vec<Vec<&mut Limb>> = (0..acc_parts * nl)
            .map(|_| Vec::with_capacity(accs.len()))
            .collect();
        for acc in accs.iter_mut() {
            for (p, part) in acc.parts.iter_mut().enumerate() {
                for (k, limb) in part.limbs.iter_mut().enumerate() {
                    groups[p * nl + k].push(limb);
                }
            }
        }
        groups
            .into_par_iter()
            .enumerate()
            .for_each(|(g, mut outs)| {
                let (p, k) = (g / nl, g % nl);
                if p >= in_parts || outs.len() != int_rows.len() {
                    return;
                }
                let x_limbs: Vec<Option<&Limb>> = xs
                    .iter()
                    .map(|c| c.parts.get(p).map(|part| &part.limbs[k]))
                    .collect();
                lincomb_limb(m[k].q, &x_limbs, &int_rows, &mut outs);
            });
        Ok(())
    }

    /// Sum of `count` consecutive slots (count a power of two) into slot 0
    /// (every slot i gets the sum of slots i..i+count), by log2(count)
    /// rotations by powers of two.
    pub fn inner_sum(
        &self,
        a: &Ciphertext,
        count: usize,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext, CkksError> {
        if !count.is_power_of_two() {
            return Err(CkksError::Mismatch {
                op: "inner sum",
                detail: format!("count {count} is not a power of two"),
            });
        }
        let mut acc = a.clone();
        let mut step = 1usize;
        while step < count {
            let r = self.rotate(&acc, step as i64, gk)?;
            acc = self.add(&acc, &r)?;
            step <<= 1;
        }
        Ok(acc)
    }
}

/// A rounded constant must be finite and below half the modulus of the
/// level (else it wraps around and decrypts to garbage).
fn check_fits(
    v: f64,
    m: &[Arc<super::ring::Modulus>],
    what: impl FnOnce() -> String,
) -> Result<(), CkksError> {
    let log_q: f64 = m.iter().map(|md| (md.q as f64).log2()).sum();
    if !v.is_finite() || (v.abs() >= 1.0 && v.abs().log2() >= log_q - 1.0) {
        return Err(CkksError::Encoding {
            detail: format!("{} does not fit the modulus (2^{log_q:.0})", what()),
        });
    }
    Ok(())
}

/// Coefficients per cache tile of [`lincomb_limb`].
const LINCOMB_TILE: usize = 256;

/// One prime of [`Evaluator::linear_combinations_into`]: `outs[i] += sum_j
/// w_ij x_j (mod q)` over tiles of coefficients, products accumulated
/// lazily between reductions.
fn lincomb_limb(q: u64, xs: &[Option<&Limb>], rows: &[Vec<(usize, i64)>], outs: &mut [&mut Limb]) {
    let Some(n) = outs.first().map(|o| o.len()) else {
        return;
    };
    let m = shoup(1, q);
    let small = q < (1u64 << 32);
    // Rows with weights reduced mod q (and Shoup quotients for large q),
    // inputs without this part skipped.
    let wrows: Vec<Vec<(&Limb, u64, u64)>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .filter_map(|&(j, v)| {
                    let x = xs[j]?;
                    let w = reduce_i64(v, q);
                    let ws = shoup(w, q);
                    (w != 0).then_some((x, w, ws))
                })
                .collect()
        })
        .collect();
    let batch = if small {
        let qm1 = u128::from(q - 1);
        ((u128::from(u64::MAX - q)) / (qm1 * qm1).max(1)).max(1) as usize
    } else {
        ((u64::MAX - q) / (2 * q)).max(1) as usize
    };
    // x mod q for any u64 x below 2^32-bit primes (vectorises).
    let reduce = ConstMul::new(1, q);
    // One SIMD dispatch for the whole limb: the tile loops below compile
    // for the CPU's best level (the default target has SSE2 only).
    simd(
        #[inline(always)]
        move || {
            let mut acc = [0u64; LINCOMB_TILE];
            for t0 in (0..n).step_by(LINCOMB_TILE) {
                let t1 = (t0 + LINCOMB_TILE).min(n);
                let len = t1 - t0;
                for (row, out) in wrows.iter().zip(outs.iter_mut()) {
                    if row.is_empty() {
                        continue;
                    }
                    let a = &mut acc[..len];
                    on_limb!(&**out, o => {
                        for (ai, oi) in a.iter_mut().zip(&o[t0..t1]) {
                            *ai = oi.get();
                        }
                    });
                    for chunk in row.chunks(batch) {
                        for &(x, w, ws) in chunk {
                            on_limb!(x, xv => {
                                let x = &xv[t0..t1];
                                if small {
                                    let w32 = u64::from(w as u32);
                                    for (ai, &xi) in a.iter_mut().zip(x) {
                                        *ai += u64::from(xi.get() as u32) * w32;
                                    }
                                } else {
                                    for (ai, &xi) in a.iter_mut().zip(x) {
                                        let xi = xi.get();
                                        let qh = ((u128::from(ws) * u128::from(xi)) >> 64) as u64;
                                        *ai += w.wrapping_mul(xi).wrapping_sub(qh.wrapping_mul(q));
                                    }
                                }
                            });
                        }
                        if small {
                            for ai in a.iter_mut() {
                                *ai = reduce.apply::<true, true>(*ai, q);
                            }
                        } else {
                            for ai in a.iter_mut() {
                                *ai = mul_shoup(*ai, 1, m, q);
                            }
                        }
                    }
                    on_limb!(&mut **out, o => {
                        for (oi, &ai) in o[t0..t1].iter_mut().zip(a.iter()) {
                            *oi = Word::put(ai);
                        }
                    });
                }
            }
        },
    );
}

/// The noise [`Evaluator::flood_with`] adds to every coefficient.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Flood {
    /// Uniform in [-2^bits, 2^bits).
    Uniform {
        /// Width (bits).
        bits: u32,
    },
    /// A rounded Gaussian of standard deviation 2^sigma_bits (Box-Muller
    /// over the caller's CSPRNG), as the statistical flooding bounds assume.
    Gaussian {
        /// log2 of the standard deviation.
        sigma_bits: f64,
    },
}

impl Flood {
    /// log2 of the flood's standard deviation in one slot (message units
    /// times the scale): sqrt(N/3)·2^bits uniform, sqrt(N/2)·σ Gaussian.
    pub fn slot_noise_bits(&self, n: usize) -> f64 {
        match *self {
            Self::Uniform { bits } => f64::from(bits) + (n as f64 / 3.0).log2() / 2.0,
            Self::Gaussian { sigma_bits } => sigma_bits + (n as f64 / 2.0).log2() / 2.0,
        }
    }

    fn max_bits(&self) -> f64 {
        match *self {
            Self::Uniform { bits } => f64::from(bits),
            // Samples reach about 8 standard deviations.
            Self::Gaussian { sigma_bits } => sigma_bits + 3.0,
        }
    }

    /// `n` samples, wiped on drop.
    fn sample(&self, n: usize, rng: &mut impl CryptoRng) -> zeroize::Zeroizing<Vec<i64>> {
        let out = match *self {
            Self::Uniform { bits } => {
                let half = 1i64 << bits;
                let mask = (1u64 << (bits + 1)) - 1;
                (0..n)
                    .map(|_| (rng.next_u64() & mask) as i64 - half)
                    .collect()
            }
            Self::Gaussian { sigma_bits } => {
                let sigma = sigma_bits.exp2();
                // Uniform in (0, 1]: 53 random bits, never 0.
                let mut unit = || ((rng.next_u64() >> 11) + 1) as f64 * (-53f64).exp2();
                let mut v = Vec::with_capacity(n + 1);
                while v.len() < n {
                    let (u1, u2) = (unit(), unit());
                    let r = sigma * (-2.0 * u1.ln()).sqrt();
                    let t = std::f64::consts::TAU * u2;
                    v.push((r * t.cos()).round() as i64);
                    v.push((r * t.sin()).round() as i64);
                }
                v.truncate(n);
                v
            }
        };
        zeroize::Zeroizing::new(out)
    }
}
