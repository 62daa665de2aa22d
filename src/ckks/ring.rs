//! RNS polynomials of Z[X]/(X^N + 1) over a list of NTT-friendly primes,
//! with the negacyclic NTT of `tfhe-ntt` (one plan per prime, shared), and
//! the RNS tools CKKS needs: exact rounding division by the last prime
//! (rescale / mod-down by a single special prime), one-prime digit lifting
//! for key switching (groups of primes: [`super::basis`]), Galois
//! automorphisms (in coefficient form, and in the NTT domain as index
//! permutations) and exact CRT reconstruction (Garner) for decoding.
//!
//! Residues are stored as u64 whatever the prime. A prime below about 2^31
//! is transformed with `tfhe-ntt`'s 32-bit kernels ([`NttWords::Auto`]),
//! which give bit-identical outputs to the 64-bit ones (tested): the word
//! width is a speed choice only, never visible in a residue, a ciphertext
//! or a serialised key.

use super::error::CkksError;
use super::math::{
    ConstMul, add_mod, inv_mod, key_word_bytes, mul_mod, mul_shoup, mul_shoup32, reduce_once,
    shoup, shoup32, sub_mod,
};
use rayon::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tfhe_ntt::{prime32, prime64};
use zeroize::Zeroize;

/// Which word width the NTT kernels of a prime may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NttWords {
    /// 32-bit kernels (`tfhe-ntt`'s `prime32`) for every prime they take
    /// at full speed (below about 2^30.4, or 2^31 with one reduction step),
    /// 64-bit kernels for the others.
    #[default]
    Auto,
    /// 64-bit kernels (`prime64`) for every prime: the reference path.
    Only64,
}

/// The NTT kernels of one prime. Both compute the same transform: for a
/// prime that both take, the outputs are bit-identical (tested), so the
/// choice changes speed only, never a residue or a serialised value.
///
/// Storage stays one u64 per residue. The 32-bit transforms narrow the
/// residues into a per-thread scratch buffer, transform there (3-4 times
/// faster than the 64-bit kernels on AVX2, 1.7 times on AVX-512), widen
/// them back and zeroize the scratch, so that no secret residue (of s,
/// errors, encryption randomness) outlives the call. Pointwise products
/// keep the 64-bit kernel on the u64 storage: with the narrowing copies the
/// 32-bit one gains under 20 %.
enum Kernels {
    /// 32-bit NTT (and the 64-bit plan of the same prime for products).
    W32(prime32::Plan, prime64::Plan),
    /// 64-bit words, in place.
    W64(prime64::Plan),
}

/// An NTT plan for one prime.
pub struct Modulus {
    /// The prime.
    pub q: u64,
    plan: Kernels,
    n: usize,
    index: OnceLock<NttIndex>,
}

thread_local! {
    /// Per-thread 32-bit scratch of the W32 transforms (N words), zero
    /// between calls.
    static SCRATCH32: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` on a scratch buffer of `n` 32-bit words, zeroized afterwards.
fn with_scratch32<R>(n: usize, f: impl FnOnce(&mut [u32]) -> R) -> R {
    SCRATCH32.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < n {
            s.resize(n, 0);
        }
        let r = f(&mut s[..n]);
        s[..n].zeroize();
        r
    })
}

/// Run `f` compiled for the best SIMD level of this CPU (pulp's runtime
/// dispatch: AVX-512 or AVX2 on x86-64), so that the loops inside it
/// vectorise; the default x86-64 target has SSE2 only, without 64-bit
/// compares. Same results at every level.
#[inline(always)]
pub(in crate::ckks) fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// Narrow residues below 2^32 into 32-bit words.
#[inline]
fn narrow(dst: &mut [u32], src: &[u64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s as u32;
    }
}

/// Widen 32-bit words back into residues.
#[inline]
fn widen(dst: &mut [u64], src: &[u32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = u64::from(*s);
    }
}

/// Which evaluation point each NTT output position holds: position `p`
/// holds `a(psi^exp[p])` for a fixed primitive 2N-th root `psi` (odd
/// exponents), and `pos[e]` is the position of exponent `e`. The root and
/// order are the NTT crate's; they are read off the transform of `X`.
#[derive(Debug)]
struct NttIndex {
    exp: Vec<u32>,
    pos: Vec<u32>,
}

impl std::fmt::Debug for Modulus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Modulus({})", self.q)
    }
}

impl Modulus {
    /// A plan for degree `n` and prime `q` ([`NttWords::Auto`]); typed error
    /// when tfhe-ntt refuses.
    pub fn new(n: usize, q: u64) -> Result<Self, CkksError> {
        Self::with_words(n, q, NttWords::Auto)
    }

    /// A plan for degree `n` and prime `q` with the given word-width policy.
    pub fn with_words(n: usize, q: u64, words: NttWords) -> Result<Self, CkksError> {
        let refused = || CkksError::InvalidParameters {
            detail: format!(
                "no negacyclic NTT for N = {n} modulo {q} (needs N >= 16, q prime, q ≡ 1 mod 2N)"
            ),
        };
        let w32 = match (words, u32::try_from(q)) {
            (NttWords::Auto, Ok(q32)) if cfg!(target_endian = "little") => {
                prime32::Plan::try_new(n, q32).filter(prime32::Plan::can_use_fast_reduction_code)
            }
            _ => None,
        };
        let p64 = prime64::Plan::try_new(n, q).ok_or_else(refused)?;
        let plan = match w32 {
            Some(p) => Kernels::W32(p, p64),
            None => Kernels::W64(p64),
        };
        Ok(Self {
            q,
            plan,
            n,
            index: OnceLock::new(),
        })
    }

    /// The word width of this prime's NTT kernels: 32 or 64.
    pub fn word_bits(&self) -> u32 {
        match self.plan {
            Kernels::W32(..) => 32,
            Kernels::W64(_) => 64,
        }
    }

    fn index(&self) -> &NttIndex {
        self.index.get_or_init(|| {
            let n = self.n;
            let two_n = 2 * n;
            let mut x = vec![0u64; n];
            if n > 1 {
                x[1] = 1;
            }
            self.fwd(&mut x);
            // psi = the value at position 0; exponents relative to it.
            let psi = x[0];
            let psi2 = mul_mod(psi, psi, self.q);
            let mut by_value = HashMap::with_capacity(n);
            let mut cur = psi;
            for e in (1..two_n).step_by(2) {
                by_value.insert(cur, e as u32);
                cur = mul_mod(cur, psi2, self.q);
            }
            let exp: Vec<u32> = x
                .iter()
                .map(|v| by_value.get(v).copied().unwrap_or(0))
                .collect();
            let mut pos = vec![0u32; two_n];
            for (p, &e) in exp.iter().enumerate() {
                pos[e as usize] = p as u32;
            }
            NttIndex { exp, pos }
        })
    }

    /// Applies X -> X^k (k odd) to one NTT-domain limb: a permutation of
    /// the evaluation points, no transform needed.
    pub fn automorphism_ntt(&self, a: &[u64], k: usize) -> Vec<u64> {
        let idx = self.index();
        let mask = 2 * self.n - 1;
        idx.exp
            .iter()
            .map(|&e| a[idx.pos[(e as usize * k) & mask] as usize])
            .collect()
    }
    /// Forward NTT in place.
    pub fn fwd(&self, a: &mut [u64]) {
        match &self.plan {
            Kernels::W64(p) => p.fwd(a),
            Kernels::W32(p, _) => with_scratch32(a.len(), |s| {
                simd(
                    #[inline(always)]
                    || narrow(s, a),
                );
                p.fwd(s);
                simd(
                    #[inline(always)]
                    || widen(a, s),
                );
            }),
        }
    }
    /// Inverse NTT in place (normalised).
    pub fn inv(&self, a: &mut [u64]) {
        match &self.plan {
            Kernels::W64(p) => {
                p.inv(a);
                p.normalize(a);
            }
            Kernels::W32(p, _) => with_scratch32(a.len(), |s| {
                simd(
                    #[inline(always)]
                    || narrow(s, a),
                );
                p.inv(s);
                p.normalize(s);
                simd(
                    #[inline(always)]
                    || widen(a, s),
                );
            }),
        }
    }
    /// The two inner products of key switching, pointwise (NTT domain):
    /// `out0 = Σ d_i b_i`, `out1 = Σ d_i a_i mod q` over the terms
    /// `(d_i, b_i, a_i)`, where `b_i` and `a_i` are key limbs in their
    /// stored word width ([`PackedPoly`]). Below 2^32 the products are
    /// summed unreduced in u64 (lazy reduction: one reduction every
    /// `(2^64 - 1) / (q - 1)^2 - 1` terms, 4095 for a 26-bit prime) with
    /// 32×32-bit multiplies that vectorise; larger primes take
    /// [`Modulus::mul_acc`] per term. Same result either way.
    pub fn dot2(&self, out0: &mut [u64], out1: &mut [u64], terms: &[(&[u64], LimbRef, LimbRef)]) {
        out0.fill(0);
        out1.fill(0);
        let q = self.q;
        let per = if q < 1 << 32 {
            (u64::MAX / ((q - 1) * (q - 1))).saturating_sub(1) as usize
        } else {
            0
        };
        if per == 0 {
            for (d, b, a) in terms {
                self.mul_acc(out0, d, &b.wide());
                self.mul_acc(out1, d, &a.wide());
            }
            return;
        }
        // x mod q for any u64 x, as x_lo + x_hi [2^32]_q (vectorises).
        let reduce = ConstMul::new(1, q);
        for chunk in terms.chunks(per) {
            for (d, b, a) in chunk {
                match (b, a) {
                    (LimbRef::W32(b), LimbRef::W32(a)) => lazy_mul_acc(out0, out1, d, b, a),
                    (LimbRef::W64(b), LimbRef::W64(a)) => lazy_mul_acc(out0, out1, d, b, a),
                    _ => lazy_mul_acc(out0, out1, d, &b.wide(), &a.wide()),
                }
            }
            simd(
                #[inline(always)]
                || {
                    for o in out0.iter_mut().chain(out1.iter_mut()) {
                        *o = reduce.apply::<true, true>(*o, q);
                    }
                },
            );
        }
    }

    /// acc += a * b pointwise (NTT domain).
    pub fn mul_acc(&self, acc: &mut [u64], a: &[u64], b: &[u64]) {
        match &self.plan {
            Kernels::W64(p) | Kernels::W32(_, p) => p.mul_accumulate(acc, a, b),
        }
    }
}

/// `out0 += d·b`, `out1 += d·a` pointwise, unreduced, for residues below
/// 2^32 in either word width (32×32 → 64-bit products, vectorised).
#[inline(always)]
fn lazy_mul_acc<T: Copy + Into<u64>>(
    out0: &mut [u64],
    out1: &mut [u64],
    d: &[u64],
    b: &[T],
    a: &[T],
) {
    simd(
        #[inline(always)]
        || {
            for (((o0, o1), &x), (&y0, &y1)) in out0
                .iter_mut()
                .zip(out1.iter_mut())
                .zip(d.iter())
                .zip(b.iter().zip(a.iter()))
            {
                let x = u64::from(x as u32);
                *o0 += x * u64::from(y0.into() as u32);
                *o1 += x * u64::from(y1.into() as u32);
            }
        },
    );
}

/// One limb of a [`PackedPoly`] in its stored word width.
#[derive(Clone, Copy, Debug)]
pub enum LimbRef<'a> {
    /// 32-bit words (the prime is below 2^32).
    W32(&'a [u32]),
    /// 64-bit words.
    W64(&'a [u64]),
}

impl<'a> LimbRef<'a> {
    /// The residues as u64: borrowed when stored so, else widened.
    fn wide(self) -> std::borrow::Cow<'a, [u64]> {
        match self {
            LimbRef::W32(v) => v.iter().map(|&x| u64::from(x)).collect(),
            LimbRef::W64(v) => std::borrow::Cow::Borrowed(v),
        }
    }
}

/// The stored words of one limb of a [`PackedPoly`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Words {
    W32(Vec<u32>),
    W64(Vec<u64>),
}

/// A polynomial in the NTT domain stored with 32-bit words on every limb
/// whose prime is below 2^32 and 64-bit words on the others: the storage
/// of key-switching keys, the largest objects of an evaluation (a
/// relinearisation or Galois key holds `2 · dnum` polynomials over every
/// prime). The papers' 26-bit chains take half the bytes of [`RnsPoly`],
/// and the key-switching inner product ([`Modulus::dot2`]) reads half the
/// memory. Packing and unpacking are exact (a residue below 2^32 fits its
/// word), so a packed key computes bit-identical results and serialises as
/// before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedPoly {
    limbs: Vec<Words>,
}

impl PackedPoly {
    /// Pack an NTT-domain polynomial; limb `i` is modulo `m[i].q`.
    pub(in crate::ckks) fn pack(p: RnsPoly, m: &[Arc<Modulus>]) -> Self {
        debug_assert!(p.ntt, "keys are packed in the NTT domain");
        let limbs = p
            .limbs
            .into_iter()
            .zip(m)
            .map(|(mut l, md)| {
                if key_word_bytes(md.q) == 4 {
                    let w = Words::W32(l.iter().map(|&x| x as u32).collect());
                    // Wiped before it is freed: key generation then frees
                    // no limb-sized block that is not zero, which keeps its
                    // "every freed limb is wiped" check simple to hold
                    // (tests/hardening.rs).
                    l.zeroize();
                    w
                } else {
                    Words::W64(l)
                }
            })
            .collect();
        Self { limbs }
    }

    /// The polynomial with one u64 per residue (NTT domain).
    pub(in crate::ckks) fn unpack(&self) -> RnsPoly {
        RnsPoly {
            limbs: (0..self.len())
                .map(|j| self.limb(j).wide().into_owned())
                .collect(),
            ntt: true,
        }
    }

    /// Limb `j` in its word width.
    pub(in crate::ckks) fn limb(&self, j: usize) -> LimbRef<'_> {
        match &self.limbs[j] {
            Words::W32(v) => LimbRef::W32(v),
            Words::W64(v) => LimbRef::W64(v),
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

    /// Bytes of the residues (4 or 8 per coefficient per limb).
    pub fn byte_size(&self) -> usize {
        self.limbs
            .iter()
            .map(|w| match w {
                Words::W32(v) => v.len() * 4,
                Words::W64(v) => v.len() * 8,
            })
            .sum()
    }
}

/// A polynomial in RNS form: one limb per prime of `moduli`, all in the
/// NTT domain or all in coefficient form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RnsPoly {
    /// Limbs, limb i modulo `moduli[i]` (sealed: only the CKKS layer
    /// touches residues).
    pub(in crate::ckks) limbs: Vec<Vec<u64>>,
    /// Whether the limbs are in the NTT domain.
    pub(in crate::ckks) ntt: bool,
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

    /// Whether the limbs are in the NTT domain.
    pub fn is_ntt(&self) -> bool {
        self.ntt
    }

    /// Bytes of the residues (8 per coefficient per limb).
    pub fn byte_size(&self) -> usize {
        self.limbs.iter().map(|l| l.len() * 8).sum()
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
                simd(
                    #[inline(always)]
                    || {
                        for (x, y) in a.iter_mut().zip(b) {
                            *x = add_mod(*x, *y, md.q);
                        }
                    },
                )
            });
    }

    /// self -= other.
    pub fn sub_assign(&mut self, other: &RnsPoly, m: &[Arc<Modulus>]) {
        self.limbs
            .par_iter_mut()
            .zip(&other.limbs)
            .zip(m)
            .for_each(|((a, b), md)| {
                simd(
                    #[inline(always)]
                    || {
                        for (x, y) in a.iter_mut().zip(b) {
                            *x = sub_mod(*x, *y, md.q);
                        }
                    },
                )
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

    /// Multiply every limb by a per-limb scalar (each below its prime).
    pub fn mul_scalar_limbs(&mut self, scalars: &[u64], m: &[Arc<Modulus>]) {
        self.limbs
            .par_iter_mut()
            .zip(scalars)
            .zip(m)
            .for_each(|((a, &s), md)| {
                let s = s % md.q;
                let sp = shoup(s, md.q);
                for x in a.iter_mut() {
                    *x = mul_shoup(*x, s, sp, md.q);
                }
            });
    }

    /// Keep only the first `k` limbs.
    pub fn truncate(&mut self, k: usize) {
        self.limbs.truncate(k);
    }

    /// Overwrite every residue with zero (volatile writes, not optimised away).
    pub(in crate::ckks) fn wipe(&mut self) {
        for l in &mut self.limbs {
            l.zeroize();
        }
    }
}

/// A polynomial that is secret material (the secret key, its powers and
/// automorphisms, sampled errors, encryption randomness): its residues are
/// zeroized when it is dropped. It dereferences to [`RnsPoly`] for reading;
/// it has no truncation (a prefix of its limbs is read in place, by the
/// limb-wise operations that zip to the shorter operand), and every
/// mutation goes through methods that keep the wiping invariant.
#[derive(PartialEq, Eq)]
pub(crate) struct SecretPoly(RnsPoly);

impl SecretPoly {
    /// Take ownership of `p` as secret material.
    pub(in crate::ckks) fn new(p: RnsPoly) -> Self {
        Self(p)
    }

    /// A wiped-on-drop copy.
    pub(in crate::ckks) fn duplicate(&self) -> Self {
        Self(self.0.clone())
    }

    /// Convert to coefficient form in place.
    pub(in crate::ckks) fn convert_to_coeff(&mut self, m: &[Arc<Modulus>]) {
        self.0.to_coeff(m);
    }

    /// Convert to the NTT domain in place.
    pub(in crate::ckks) fn convert_to_ntt(&mut self, m: &[Arc<Modulus>]) {
        self.0.to_ntt(m);
    }
}

impl std::ops::Deref for SecretPoly {
    type Target = RnsPoly;
    fn deref(&self) -> &RnsPoly {
        &self.0
    }
}

impl Drop for SecretPoly {
    fn drop(&mut self) {
        self.0.wipe();
    }
}

impl std::fmt::Debug for SecretPoly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretPoly { .. redacted .. }")
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
            let half_i = half % qi;
            let mut r: Vec<u64> = if qlast <= 2 * qi {
                let mut r = vec![0u64; last.len()];
                simd(
                    #[inline(always)]
                    || {
                        for (o, &v) in r.iter_mut().zip(&last) {
                            *o = sub_mod(reduce_once(v, qi), half_i, qi);
                        }
                    },
                );
                r
            } else {
                let mut r = vec![0u64; last.len()];
                map_mod(&mut r, &last, qi, |_, v| sub_mod(v, half_i, qi));
                r
            };
            if was_ntt {
                md.fwd(&mut r);
            }
            let inv = inv_mod(qlast % qi, qi).unwrap_or(0);
            if qi < 1 << 32 {
                let inv_s = shoup32(inv, qi);
                simd(
                    #[inline(always)]
                    || {
                        for (x, y) in limb.iter_mut().zip(&r) {
                            *x = mul_shoup32(sub_mod(*x, *y, qi), inv, inv_s, qi);
                        }
                    },
                );
            } else {
                let c = ConstMul::new(inv, qi);
                simd(
                    #[inline(always)]
                    || {
                        for (x, y) in limb.iter_mut().zip(&r) {
                            *x = c.apply::<false, true>(sub_mod(*x, *y, qi), qi);
                        }
                    },
                );
            }
        });
    Ok(())
}

/// `out[i] = f(src[i], src[i] mod q)` for any `src[i] < 2^64`, the
/// reduction as `lo + hi [2^32]_q` in 32-bit halves, so the loop vectorises
/// under the SIMD dispatch whatever the widths.
#[inline]
fn map_mod(out: &mut [u64], src: &[u64], q: u64, f: impl Fn(u64, u64) -> u64 + Copy) {
    let c = ConstMul::new(1, q);
    if q < 1 << 32 {
        simd(
            #[inline(always)]
            || {
                for (o, &x) in out.iter_mut().zip(src) {
                    *o = f(x, c.apply::<true, true>(x, q));
                }
            },
        );
    } else {
        simd(
            #[inline(always)]
            || {
                for (o, &x) in out.iter_mut().zip(src) {
                    *o = f(x, c.apply::<false, true>(x, q));
                }
            },
        );
    }
}

/// Lift the coefficient-form residues `digit` (values in [0, q_src)) to
/// every modulus of `m`, returning an NTT-domain polynomial. The digit is
/// taken in its centred representative (-q_src/2, q_src/2]: a digit in
/// [0, q_src) has mean q_src/2, and that constant offset times the key
/// error concentrates in the lowest-frequency slots after key switching
/// (measured: slot 0 of a rotation 2^13 times noisier than the median
/// with a special prime as small as q_src).
///
/// `own`, when given, is the index of the digit's own prime in `m` and the
/// digit's limb there in NTT form: it is copied instead of transformed
/// (the centred lift is the same residue modulo its own prime).
pub fn lift_digit(
    digit: &[u64],
    q_src: u64,
    m: &[Arc<Modulus>],
    own: Option<(usize, &[u64])>,
) -> RnsPoly {
    let half = q_src / 2;
    let limbs = m
        .par_iter()
        .enumerate()
        .map(|(t, md)| {
            if let Some((_, limb)) = own.filter(|&(j, _)| j == t) {
                return limb.to_vec();
            }
            let q = md.q;
            let neg = (q - q_src % q) % q; // -q_src mod q
            let mut v: Vec<u64> = if q_src <= 2 * q {
                // Residues below 2q: one conditional subtraction (vectorises).
                let mut v = vec![0u64; digit.len()];
                simd(
                    #[inline(always)]
                    || {
                        for (o, &x) in v.iter_mut().zip(digit) {
                            let r = reduce_once(x, q);
                            let m = u64::from(x > half).wrapping_neg();
                            *o = add_mod(r, neg & m, q);
                        }
                    },
                );
                v
            } else {
                let mut v = vec![0u64; digit.len()];
                map_mod(&mut v, digit, q, |x, r| {
                    add_mod(r, neg & u64::from(x > half).wrapping_neg(), q)
                });
                v
            };
            md.fwd(&mut v);
            v
        })
        .collect();
    RnsPoly { limbs, ntt: true }
}

/// Apply X -> X^k (k odd) to an NTT-domain polynomial (index permutation
/// per limb).
pub fn automorphism_ntt(a: &RnsPoly, k: usize, m: &[Arc<Modulus>]) -> RnsPoly {
    let limbs = a
        .limbs
        .par_iter()
        .zip(m)
        .map(|(l, md)| md.automorphism_ntt(l, k))
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
    /// inv[i][j] = q_j^{-1} mod q_i for j < i, with its Shoup constant.
    inv: Vec<Vec<(u64, u64)>>,
    /// Mixed-radix digits of (Q_k - 1) / 2 for each prefix of k primes.
    half: Vec<Vec<u64>>,
}

/// Mixed-radix digits fit on the stack up to this many primes.
const CRT_STACK: usize = 64;

impl Crt {
    /// Precompute for the primes `q`.
    pub fn new(q: &[u64]) -> Self {
        let inv: Vec<Vec<(u64, u64)>> = (0..q.len())
            .map(|i| {
                (0..i)
                    .map(|j| {
                        let w = inv_mod(q[j] % q[i], q[i]).unwrap_or(0);
                        (w, shoup(w, q[i]))
                    })
                    .collect()
            })
            .collect();
        let mut crt = Self {
            q: q.to_vec(),
            inv,
            half: Vec::new(),
        };
        // (Q_k - 1) / 2 mod q_i = (Q_k - 1) * 2^-1 mod q_i for i < k.
        crt.half = (0..=q.len())
            .map(|k| {
                let r: Vec<u64> = q[..k]
                    .iter()
                    .map(|&qi| mul_mod(qi - 1, inv_mod(2, qi).unwrap_or(0), qi))
                    .collect();
                let mut d = vec![0u64; k];
                crt.mixed_radix(&r, &mut d);
                d
            })
            .collect();
        crt
    }

    fn mixed_radix(&self, r: &[u64], out: &mut [u64]) {
        // Garner: x = v0 + v1 q0 + v2 q0 q1 + ...
        for i in 0..r.len() {
            let qi = self.q[i];
            let mut v = r[i];
            for (&oj, &(inv, inv_s)) in out[..i].iter().zip(&self.inv[i]) {
                let o = if oj >= qi { oj % qi } else { oj };
                v = mul_shoup(sub_mod(v, o, qi), inv, inv_s, qi);
            }
            out[i] = v;
        }
    }

    /// The centred integer (as f64) with residues `r` modulo the first
    /// `r.len()` primes; exact up to f64 rounding of the result itself.
    pub fn centered(&self, r: &[u64]) -> f64 {
        let k = r.len();
        if k <= CRT_STACK {
            let mut d = [0u64; CRT_STACK];
            self.centered_with(r, &mut d[..k])
        } else {
            self.centered_with(r, &mut vec![0u64; k])
        }
    }

    fn centered_with(&self, r: &[u64], d: &mut [u64]) -> f64 {
        let k = r.len();
        self.mixed_radix(r, d);
        // x > (Q - 1) / 2: the value is x - Q = -(Q - x), and Q - x has the
        // digits q_i - 1 - d_i plus one (Q = 1 + Σ (q_i - 1) M_i).
        let neg = d.iter().rev().cmp(self.half[k].iter().rev()) == std::cmp::Ordering::Greater;
        let mut acc = 0.0f64;
        for i in (0..k).rev() {
            let digit = if neg { self.q[i] - 1 - d[i] } else { d[i] };
            acc = acc * self.q[i] as f64 + digit as f64;
        }
        if neg { -(acc + 1.0) } else { acc }
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

    /// The 32-bit kernels give bit-identical forward, inverse and pointwise
    /// results to the 64-bit ones, for the primes of the papers' chains
    /// (26 and 31 bits) at N = 2^13 and 2^14; 40-bit primes stay on 64 bits.
    #[test]
    fn word_widths_are_bit_identical() {
        for n in [1usize << 13, 1 << 14] {
            let primes = ntt_primes(&[26, 26, 31, 30, 40], n).expect("primes");
            for (k, &q) in primes.iter().enumerate() {
                let auto = Modulus::new(n, q).expect("auto");
                let wide = Modulus::with_words(n, q, NttWords::Only64).expect("64");
                assert_eq!(wide.word_bits(), 64);
                assert_eq!(
                    auto.word_bits(),
                    if q < (1 << 31) { 32 } else { 64 },
                    "q = {q}"
                );
                let a: Vec<u64> = (0..n as u64)
                    .map(|i| (i * 2_654_435_761 + k as u64) % q)
                    .collect();
                let b: Vec<u64> = (0..n as u64).map(|i| (i * 40_503 + 17) % q).collect();
                let (mut a1, mut a2) = (a.clone(), a.clone());
                auto.fwd(&mut a1);
                wide.fwd(&mut a2);
                assert_eq!(a1, a2, "forward, q = {q}, N = {n}");
                let (mut b1, mut b2) = (b.clone(), b.clone());
                auto.fwd(&mut b1);
                wide.fwd(&mut b2);
                let (mut c1, mut c2) = (a.clone(), a.clone());
                auto.mul_acc(&mut c1, &a1, &b1);
                wide.mul_acc(&mut c2, &a2, &b2);
                assert_eq!(c1, c2, "pointwise, q = {q}");
                auto.inv(&mut c1);
                wide.inv(&mut c2);
                assert_eq!(c1, c2, "inverse, q = {q}");
                auto.inv(&mut a1);
                assert_eq!(a1, a, "round trip, q = {q}");
            }
        }
    }

    /// The lazy inner product equals term-by-term reduced accumulation, for
    /// a 26-bit prime (one reduction per 4095 terms: 5000 terms cross it),
    /// a 31-bit prime (a reduction every 3 terms) and a 40-bit one (64-bit
    /// path), with residues at q - 1 where overflow would show.
    #[test]
    fn lazy_inner_product_is_exact() {
        let n = 16;
        for (bits, terms) in [(26u32, 5000usize), (31, 11), (40, 7)] {
            let q = ntt_primes(&[bits], n).expect("prime")[0];
            let md = Modulus::new(n, q).expect("plan");
            let val = |t: usize, i: usize, s: u64| {
                if (t + i).is_multiple_of(3) {
                    q - 1
                } else {
                    (s * 2_654_435_761 + (t * 31 + i) as u64) % q
                }
            };
            let d: Vec<Vec<u64>> = (0..terms)
                .map(|t| (0..n).map(|i| val(t, i, 1)).collect())
                .collect();
            let b: Vec<Vec<u64>> = (0..terms)
                .map(|t| (0..n).map(|i| val(t, i, 2)).collect())
                .collect();
            let a: Vec<Vec<u64>> = (0..terms)
                .map(|t| (0..n).map(|i| val(t, i, 3)).collect())
                .collect();
            // The key limbs as stored (32-bit words below 2^32) and as u64.
            let m = [Arc::new(Modulus::new(n, q).expect("plan"))];
            let pack = |v: &Vec<u64>| {
                PackedPoly::pack(
                    RnsPoly {
                        limbs: vec![v.clone()],
                        ntt: true,
                    },
                    &m,
                )
            };
            let (pb, pa): (Vec<PackedPoly>, Vec<PackedPoly>) =
                (b.iter().map(pack).collect(), a.iter().map(pack).collect());
            assert_eq!(pb[0].unpack().limbs[0], b[0], "packing is exact");
            let packed: Vec<(&[u64], LimbRef, LimbRef)> = (0..terms)
                .map(|t| (&d[t][..], pb[t].limb(0), pa[t].limb(0)))
                .collect();
            let wide: Vec<(&[u64], LimbRef, LimbRef)> = (0..terms)
                .map(|t| (&d[t][..], LimbRef::W64(&b[t]), LimbRef::W64(&a[t])))
                .collect();
            for tr in [packed, wide] {
                let (mut o0, mut o1) = (vec![7u64; n], vec![9u64; n]);
                md.dot2(&mut o0, &mut o1, &tr);
                for i in 0..n {
                    let (mut w0, mut w1) = (0u64, 0u64);
                    for t in 0..terms {
                        w0 = add_mod(w0, mul_mod(d[t][i], b[t][i], q), q);
                        w1 = add_mod(w1, mul_mod(d[t][i], a[t][i], q), q);
                    }
                    assert_eq!((o0[i], o1[i]), (w0, w1), "{bits}-bit prime, slot {i}");
                }
            }
            assert_eq!(
                pb[0].byte_size(),
                if q < 1 << 32 { 4 * n } else { 8 * n },
                "{bits}-bit prime"
            );
        }
    }

    /// The vectorised digit lift and mod-down paths (source prime below
    /// twice the target, 32-bit Shoup) give the general path's residues.
    #[test]
    fn fast_lift_and_mod_down_match_the_general_formulas() {
        let n = 64;
        let m = moduli(n, &[26, 26, 27, 40, 26]);
        for src in 0..m.len() {
            let qs = m[src].q;
            let digit: Vec<u64> = (0..n as u64)
                .map(|i| (i * 977_123 + 5) % qs)
                .chain([qs - 1, qs / 2, qs / 2 + 1, 0])
                .take(n)
                .collect();
            let mut lifted = lift_digit(&digit, qs, &m, None);
            lifted.to_coeff(&m);
            for (j, md) in m.iter().enumerate() {
                for (i, &x) in digit.iter().enumerate() {
                    let c = if x > qs / 2 {
                        x as i64 - qs as i64
                    } else {
                        x as i64
                    };
                    assert_eq!(lifted.limbs[j][i], reduce_i64(c, md.q), "src {src} dst {j}");
                }
            }
        }
        // Mod-down: (x - [x]_last) / q_last, exactly, for every limb.
        let vals: Vec<i64> = (0..n as i64)
            .map(|i| (i - 32) * 1_234_567_891_234 + i * 77)
            .collect();
        let mut p = from_signed(&vals, &m);
        p.to_ntt(&m);
        divide_round_by_last(&mut p, &m).expect("divide");
        p.to_coeff(&m[..m.len() - 1]);
        let last = m[m.len() - 1].q as i128;
        for (i, &v) in vals.iter().enumerate() {
            let v = v as i128;
            let want = (v + last / 2).div_euclid(last);
            for (j, md) in m[..m.len() - 1].iter().enumerate() {
                assert_eq!(p.limbs[j][i], reduce_i64(want as i64, md.q), "limb {j}");
            }
        }
    }

    #[test]
    fn ntt_automorphism_matches_coefficient_automorphism() {
        let n = 64;
        let m = moduli(n, &[30, 40, 50]);
        let a: Vec<i64> = (0..n as i64).map(|i| (i * 37 % 101) - 50).collect();
        let pa = from_signed(&a, &m);
        for k in [3usize, 5, 25, 2 * n - 1, 77] {
            let mut want = automorphism(&pa, k, &m);
            want.to_ntt(&m);
            let mut na = pa.clone();
            na.to_ntt(&m);
            assert_eq!(automorphism_ntt(&na, k, &m), want, "k = {k}");
        }
    }

    #[test]
    fn centred_digits_lift_to_the_same_residues() {
        let n = 16;
        let m = moduli(n, &[30, 40, 50]);
        let q0 = m[0].q;
        let digit: Vec<u64> = (0..n as u64).map(|i| i * (q0 / 17)).collect();
        let mut lifted = lift_digit(&digit, q0, &m, None);
        lifted.to_coeff(&m);
        assert_eq!(lifted.limbs[0], digit);
        for (i, &d) in digit.iter().enumerate() {
            let c = if d > q0 / 2 {
                d as i64 - q0 as i64
            } else {
                d as i64
            };
            assert_eq!(lifted.limbs[2][i], reduce_i64(c, m[2].q));
        }
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
