//! RNS polynomials of Z[X]/(X^N + 1) over a list of NTT-friendly primes,
//! with the negacyclic NTT of `tfhe-ntt` (one plan per prime, shared), and
//! the RNS tools CKKS needs: exact rounding division by the last prime
//! (rescale / mod-down by a single special prime), one-prime digit lifting
//! for key switching (groups of primes: [`super::basis`]), Galois
//! automorphisms (in coefficient form, and in the NTT domain as index
//! permutations) and exact CRT reconstruction (Garner) for decoding.
//!
//! Mixed word widths: every limb is stored in the word width of its prime
//! ([`Limb`]): 32-bit words for a prime below 2^32 (the papers' 26- and
//! 31-bit chains), transformed and multiplied in place by `tfhe-ntt`'s
//! `prime32` kernels; 64-bit words for larger primes (a 40-bit q_0 or
//! special prime), with the `prime64` kernels. [`NttWords::Only64`] stores
//! every limb in 64-bit words: the reference path. Invariants: a residue is
//! always below its prime, so it fits its word; the two widths compute
//! bit-identical residues (tested); serialisation writes 64-bit words
//! whatever the storage; equality compares residues, not widths.

use super::error::CkksError;
use super::math::{
    ConstMul, add_mod, inv_mod, mul_mod, mul_shoup, mul_shoup32, reduce_once, shoup, shoup32,
    sub_mod, word_bytes,
};
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tfhe_ntt::{prime32, prime64};
use zeroize::Zeroize;

/// Which word width the limbs of a prime use (storage and kernels).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NttWords {
    /// 32-bit words and `tfhe-ntt`'s `prime32` kernels for every prime
    /// below 2^32 (`word_bytes` is 4), 64-bit words for the others.
    #[default]
    Auto,
    /// 64-bit words and `prime64` kernels for every prime: the reference
    /// path.
    Only64,
}

/// A residue word: u32 (primes below 2^32) or u64. Arithmetic is done on
/// u64 values; a stored value is always below its prime.
pub(crate) trait Word: Copy + Default + Send + Sync + Zeroize + 'static {
    /// The value.
    fn get(self) -> u64;
    /// Store `x` (below the prime, so it fits).
    fn put(x: u64) -> Self;
}

impl Word for u32 {
    #[inline(always)]
    fn get(self) -> u64 {
        u64::from(self)
    }
    #[inline(always)]
    fn put(x: u64) -> Self {
        x as u32
    }
}

impl Word for u64 {
    #[inline(always)]
    fn get(self) -> u64 {
        self
    }
    #[inline(always)]
    fn put(x: u64) -> Self {
        x
    }
}

/// The residues of one limb, in the word width of its prime.
#[derive(Clone, Debug)]
pub(crate) enum Limb {
    /// 32-bit words (a prime below 2^32).
    W32(Vec<u32>),
    /// 64-bit words.
    W64(Vec<u64>),
}

/// Runs `$body` with `$v` bound to the words of limb `$l` (either width).
macro_rules! on_limb {
    ($l:expr, $v:ident => $body:expr) => {
        match $l {
            $crate::ring::Limb::W32($v) => $body,
            $crate::ring::Limb::W64($v) => $body,
        }
    };
}

/// Runs `$body` with `$x`, `$y` bound to the words of two limbs (every
/// pair of widths).
macro_rules! on_limbs {
    ($a:expr, $b:expr, ($x:ident, $y:ident) => $body:expr) => {
        match ($a, $b) {
            ($crate::ring::Limb::W32($x), $crate::ring::Limb::W32($y)) => $body,
            ($crate::ring::Limb::W32($x), $crate::ring::Limb::W64($y)) => $body,
            ($crate::ring::Limb::W64($x), $crate::ring::Limb::W32($y)) => $body,
            ($crate::ring::Limb::W64($x), $crate::ring::Limb::W64($y)) => $body,
        }
    };
}
pub(crate) use {on_limb, on_limbs};

impl PartialEq for Limb {
    /// Equal residues, whatever the widths.
    fn eq(&self, other: &Self) -> bool {
        on_limbs!(self, other, (x, y) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| a.get() == b.get())
        })
    }
}

impl Eq for Limb {}

impl Limb {
    /// `n` zero residues in the width of `md`.
    pub(crate) fn zeros(md: &Modulus) -> Self {
        if md.word_bits() == 32 {
            Limb::W32(vec![0; md.n])
        } else {
            Limb::W64(vec![0; md.n])
        }
    }

    /// The residues of `values` (each below `md.q`) in the width of `md`.
    pub(crate) fn collect(md: &Modulus, values: impl Iterator<Item = u64>) -> Self {
        if md.word_bits() == 32 {
            Limb::W32(values.map(|v| v as u32).collect())
        } else {
            Limb::W64(values.collect())
        }
    }

    /// Number of residues.
    pub(crate) fn len(&self) -> usize {
        on_limb!(self, v => v.len())
    }

    /// Residue `i`.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> u64 {
        on_limb!(self, v => v[i].get())
    }

    /// The residues as u64: borrowed when stored so, else widened.
    pub(crate) fn wide(&self) -> Cow<'_, [u64]> {
        match self {
            Limb::W32(v) => Cow::Owned(v.iter().map(|&x| u64::from(x)).collect()),
            Limb::W64(v) => Cow::Borrowed(v),
        }
    }

    /// Bytes of the residues.
    pub(crate) fn byte_size(&self) -> usize {
        match self {
            Limb::W32(v) => v.len() * 4,
            Limb::W64(v) => v.len() * 8,
        }
    }

    /// Bring the limb to the width of `md` (a no-op when it has it; limbs
    /// are built in their prime's width, so this is a guard, not a path).
    fn conform(&mut self, md: &Modulus) {
        let want32 = md.word_bits() == 32;
        match self {
            Limb::W64(v) if want32 => {
                let w = Limb::W32(v.iter().map(|&x| x as u32).collect());
                v.zeroize();
                *self = w;
            }
            Limb::W32(v) if !want32 => {
                let w = Limb::W64(v.iter().map(|&x| u64::from(x)).collect());
                v.zeroize();
                *self = w;
            }
            _ => {}
        }
    }

    /// Overwrite every residue with zero (volatile writes).
    pub(crate) fn wipe(&mut self) {
        on_limb!(self, v => v.zeroize())
    }
}

/// One limb in its prime's word width, for benchmarks and tests outside
/// the CKKS layer (sealed: the residues are read back as u64 only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimbBuf(Limb);

impl LimbBuf {
    /// The residues as u64.
    pub fn to_u64(&self) -> Vec<u64> {
        self.0.wide().into_owned()
    }
}

/// The NTT kernels of one prime, in the width its limbs are stored in.
/// For a prime that both take, the two transforms are bit-identical
/// (tested), so the width changes speed and memory only.
enum Kernels {
    /// 32-bit words (`prime32`; full-speed reduction below about 2^31).
    W32(prime32::Plan),
    /// 64-bit words (`prime64`).
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

/// Run `f` compiled for the best SIMD level of this CPU (pulp's runtime
/// dispatch: AVX-512 or AVX2 on x86-64), so that the loops inside it
/// vectorise; the default x86-64 target has SSE2 only, without 64-bit
/// compares. Same results at every level.
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// `a[i] = f(a[i], b[i])` over words of any widths (vectorised).
#[inline(always)]
fn zip_map<A: Word, B: Word>(a: &mut [A], b: &[B], f: impl Fn(u64, u64) -> u64 + Copy) {
    simd(
        #[inline(always)]
        move || {
            for (x, y) in a.iter_mut().zip(b) {
                *x = A::put(f(x.get(), y.get()));
            }
        },
    );
}

/// `a[i] = f(a[i])` (vectorised).
#[inline(always)]
fn map_in_place<A: Word>(a: &mut [A], f: impl Fn(u64) -> u64 + Copy) {
    simd(
        #[inline(always)]
        move || {
            for x in a.iter_mut() {
                *x = A::put(f(x.get()));
            }
        },
    );
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
            (NttWords::Auto, Ok(q32)) if word_bytes(q) == 4 => prime32::Plan::try_new(n, q32),
            _ => None,
        };
        let plan = match w32 {
            Some(p) => Kernels::W32(p),
            None => Kernels::W64(prime64::Plan::try_new(n, q).ok_or_else(refused)?),
        };
        Ok(Self {
            q,
            plan,
            n,
            index: OnceLock::new(),
        })
    }

    /// The ring degree N of this plan.
    pub fn degree(&self) -> usize {
        self.n
    }

    /// The word width of this prime's limbs and kernels: 32 or 64.
    pub fn word_bits(&self) -> u32 {
        match self.plan {
            Kernels::W32(_) => 32,
            Kernels::W64(_) => 64,
        }
    }

    /// Whether the 32-bit kernels run at full speed for this prime
    /// (`tfhe-ntt`'s fast reduction; slower but exact otherwise).
    pub fn fast32(&self) -> bool {
        matches!(&self.plan, Kernels::W32(p) if p.can_use_fast_reduction_code())
    }

    fn index(&self) -> &NttIndex {
        self.index.get_or_init(|| {
            let n = self.n;
            let two_n = 2 * n;
            let mut x = Limb::collect(self, (0..n as u64).map(|i| u64::from(i == 1)));
            self.fwd(&mut x);
            let x = x.wide();
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
    pub(crate) fn automorphism_ntt(&self, a: &Limb, k: usize) -> Limb {
        let idx = self.index();
        let mask = 2 * self.n - 1;
        fn perm<T: Copy>(v: &[T], idx: &NttIndex, k: usize, mask: usize) -> Vec<T> {
            idx.exp
                .iter()
                .map(|&e| v[idx.pos[(e as usize * k) & mask] as usize])
                .collect()
        }
        match a {
            Limb::W32(v) => Limb::W32(perm(v, idx, k, mask)),
            Limb::W64(v) => Limb::W64(perm(v, idx, k, mask)),
        }
    }

    /// Forward NTT in place.
    pub(crate) fn fwd(&self, a: &mut Limb) {
        a.conform(self);
        match (&self.plan, a) {
            (Kernels::W32(p), Limb::W32(v)) => p.fwd(v),
            (Kernels::W64(p), Limb::W64(v)) => p.fwd(v),
            _ => {}
        }
    }

    /// Inverse NTT in place (normalised).
    pub(crate) fn inv(&self, a: &mut Limb) {
        a.conform(self);
        match (&self.plan, a) {
            (Kernels::W32(p), Limb::W32(v)) => {
                p.inv(v);
                p.normalize(v);
            }
            (Kernels::W64(p), Limb::W64(v)) => {
                p.inv(v);
                p.normalize(v);
            }
            _ => {}
        }
    }

    /// A limb of this prime holding `values`, each reduced modulo q.
    pub fn limb(&self, values: &[u64]) -> LimbBuf {
        LimbBuf(Limb::collect(self, values.iter().map(|&v| v % self.q)))
    }

    /// Forward NTT of a limb of this prime, in place.
    pub fn ntt_fwd(&self, a: &mut LimbBuf) {
        self.fwd(&mut a.0);
    }

    /// Inverse NTT of a limb of this prime, in place (normalised).
    pub fn ntt_inv(&self, a: &mut LimbBuf) {
        self.inv(&mut a.0);
    }

    /// `acc += a * b` pointwise (NTT domain) on limbs of this prime.
    pub fn pointwise_mul_acc(&self, acc: &mut LimbBuf, a: &LimbBuf, b: &LimbBuf) {
        self.mul_acc(&mut acc.0, &a.0, &b.0);
    }

    /// The two inner products of key switching, pointwise (NTT domain):
    /// `Σ d_i b_i` and `Σ d_i a_i mod q` over the terms `(d_i, b_i, a_i)`,
    /// as limbs of this prime's width. Below 2^32 the products are summed
    /// unreduced in u64 (lazy reduction: one reduction every
    /// `(2^64 - 1) / (q - 1)^2 - 1` terms, 4095 for a 26-bit prime) with
    /// 32×32-bit multiplies that vectorise; larger primes take
    /// [`Modulus::mul_acc`] per term. Same result either way.
    pub(crate) fn dot2(&self, terms: &[(&Limb, &Limb, &Limb)]) -> (Limb, Limb) {
        let q = self.q;
        let per = if q < 1 << 32 {
            (u64::MAX / ((q - 1) * (q - 1))).saturating_sub(1) as usize
        } else {
            0
        };
        if per == 0 {
            let (mut o0, mut o1) = (Limb::zeros(self), Limb::zeros(self));
            for (d, b, a) in terms {
                self.mul_acc(&mut o0, d, b);
                self.mul_acc(&mut o1, d, a);
            }
            return (o0, o1);
        }
        let (mut out0, mut out1) = (vec![0u64; self.n], vec![0u64; self.n]);
        // x mod q for any u64 x, as x_lo + x_hi [2^32]_q (vectorises).
        let reduce = ConstMul::new(1, q);
        for chunk in terms.chunks(per) {
            for (d, b, a) in chunk {
                on_limb!(d, dv => match (b, a) {
                    (Limb::W32(b), Limb::W32(a)) => lazy_mul_acc(&mut out0, &mut out1, dv, b, a),
                    (Limb::W64(b), Limb::W64(a)) => lazy_mul_acc(&mut out0, &mut out1, dv, b, a),
                    _ => lazy_mul_acc(&mut out0, &mut out1, dv, &b.wide(), &a.wide()),
                });
            }
            map_in_place(&mut out0, move |o| reduce.apply::<true, true>(o, q));
            map_in_place(&mut out1, move |o| reduce.apply::<true, true>(o, q));
        }
        (
            Limb::collect(self, out0.into_iter()),
            Limb::collect(self, out1.into_iter()),
        )
    }

    /// acc += a * b pointwise (NTT domain).
    pub(crate) fn mul_acc(&self, acc: &mut Limb, a: &Limb, b: &Limb) {
        acc.conform(self);
        match (&self.plan, acc, a, b) {
            (Kernels::W32(p), Limb::W32(o), Limb::W32(x), Limb::W32(y)) => {
                p.mul_accumulate(o, x, y)
            }
            (Kernels::W64(p), Limb::W64(o), Limb::W64(x), Limb::W64(y)) => {
                p.mul_accumulate(o, x, y)
            }
            (_, acc, a, b) => {
                let q = self.q;
                let b = b.wide();
                on_limbs!(acc, a, (o, x) => {
                    for ((o, x), y) in o.iter_mut().zip(x.iter()).zip(b.iter()) {
                        *o = Word::put(add_mod(o.get(), mul_mod(x.get(), *y, q), q));
                    }
                })
            }
        }
    }
}

/// `out0 += d·b`, `out1 += d·a` pointwise, unreduced, for residues below
/// 2^32 in any word widths (32×32 → 64-bit products, vectorised).
#[inline(always)]
fn lazy_mul_acc<D: Word, T: Word>(out0: &mut [u64], out1: &mut [u64], d: &[D], b: &[T], a: &[T]) {
    simd(
        #[inline(always)]
        move || {
            for (((o0, o1), &x), (&y0, &y1)) in out0
                .iter_mut()
                .zip(out1.iter_mut())
                .zip(d.iter())
                .zip(b.iter().zip(a.iter()))
            {
                let x = u64::from(x.get() as u32);
                *o0 += x * u64::from(y0.get() as u32);
                *o1 += x * u64::from(y1.get() as u32);
            }
        },
    );
}

/// A polynomial in RNS form: one limb per prime of `moduli`, each in its
/// prime's word width, all in the NTT domain or all in coefficient form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RnsPoly {
    /// Limbs, limb i modulo `moduli[i]` (sealed: only the CKKS layer
    /// touches residues).
    pub(crate) limbs: Vec<Limb>,
    /// Whether the limbs are in the NTT domain.
    pub(crate) ntt: bool,
}

impl RnsPoly {
    /// The zero polynomial over the primes `m` (limb widths theirs).
    pub fn zero(m: &[Arc<Modulus>], ntt: bool) -> Self {
        Self {
            limbs: m.iter().map(|md| Limb::zeros(md)).collect(),
            ntt,
        }
    }

    /// The polynomial with no limbs.
    pub fn empty() -> Self {
        Self {
            limbs: Vec::new(),
            ntt: true,
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

    /// Bytes of the residues (4 or 8 per coefficient per limb, the width of
    /// its prime).
    pub fn byte_size(&self) -> usize {
        self.limbs.iter().map(Limb::byte_size).sum()
    }

    /// Whether there are no limbs.
    pub fn is_empty(&self) -> bool {
        self.limbs.is_empty()
    }

    /// Convert to the NTT domain (no-op if already there).
    pub fn make_ntt(&mut self, m: &[Arc<Modulus>]) {
        if !self.ntt {
            self.limbs
                .par_iter_mut()
                .zip(m)
                .for_each(|(l, md)| md.fwd(l));
            self.ntt = true;
        }
    }

    /// Convert to coefficient form (no-op if already there).
    pub fn make_coeff(&mut self, m: &[Arc<Modulus>]) {
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
                let q = md.q;
                on_limbs!(a, b, (x, y) => zip_map(x, y, move |x, y| add_mod(x, y, q)))
            });
    }

    /// self -= other.
    pub fn sub_assign(&mut self, other: &RnsPoly, m: &[Arc<Modulus>]) {
        self.limbs
            .par_iter_mut()
            .zip(&other.limbs)
            .zip(m)
            .for_each(|((a, b), md)| {
                let q = md.q;
                on_limbs!(a, b, (x, y) => zip_map(x, y, move |x, y| sub_mod(x, y, q)))
            });
    }

    /// self = -self.
    pub fn neg_assign(&mut self, m: &[Arc<Modulus>]) {
        self.limbs.par_iter_mut().zip(m).for_each(|(a, md)| {
            let q = md.q;
            on_limb!(a, v => map_in_place(v, move |x| sub_mod(0, x, q)))
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
                let mut acc = Limb::zeros(md);
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
                let q = md.q;
                let s = s % q;
                match a {
                    Limb::W32(v) => {
                        let sp = shoup32(s, q);
                        map_in_place(v, move |x| mul_shoup32(x, s, sp, q));
                    }
                    Limb::W64(v) => {
                        let sp = shoup(s, q);
                        for x in v.iter_mut() {
                            *x = mul_shoup(*x, s, sp, q);
                        }
                    }
                }
            });
    }

    /// Add the residues of the constant `r[j]` to every coefficient of limb
    /// `j` (NTT domain: a constant is the same value in every slot).
    pub(crate) fn add_scalar_limbs(&mut self, r: &[u64], m: &[Arc<Modulus>]) {
        self.limbs
            .par_iter_mut()
            .zip(r)
            .zip(m)
            .for_each(|((a, &r), md)| {
                let q = md.q;
                on_limb!(a, v => map_in_place(v, move |x| add_mod(x, r, q)))
            });
    }

    /// Keep only the first `k` limbs.
    pub fn truncate(&mut self, k: usize) {
        self.limbs.truncate(k);
    }

    /// Overwrite every residue with zero (volatile writes, not optimised away).
    pub(crate) fn wipe(&mut self) {
        for l in &mut self.limbs {
            l.wipe();
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
    pub(crate) fn new(p: RnsPoly) -> Self {
        Self(p)
    }

    /// A wiped-on-drop copy.
    pub(crate) fn duplicate(&self) -> Self {
        Self(self.0.clone())
    }

    /// Convert to coefficient form in place.
    pub(crate) fn convert_to_coeff(&mut self, m: &[Arc<Modulus>]) {
        self.0.make_coeff(m);
    }

    /// Convert to the NTT domain in place.
    pub(crate) fn convert_to_ntt(&mut self, m: &[Arc<Modulus>]) {
        self.0.make_ntt(m);
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
    let Some(mut last) = (k >= 2).then(|| a.limbs.pop()).flatten() else {
        return Err(CkksError::LevelExhausted {
            op: "divide by the last prime",
            level: 0,
        });
    };
    let was_ntt = a.ntt;
    let last_m = &m[k - 1];
    let qlast = last_m.q;
    if was_ntt {
        last_m.inv(&mut last);
    }
    // Add q_last/2 so that floor becomes round: (a + q/2 - (a + q/2 mod q)) / q.
    let half = qlast / 2;
    on_limb!(&mut last, v => map_in_place(v, move |x| add_mod(x, half, qlast)));
    a.limbs
        .par_iter_mut()
        .zip(&m[..k - 1])
        .for_each(|(limb, md)| {
            let qi = md.q;
            let half_i = half % qi;
            let mut r = Limb::zeros(md);
            on_limbs!(&mut r, &last, (o, src) => {
                if qlast <= 2 * qi {
                    zip_map(o, src, move |_, v| sub_mod(reduce_once(v, qi), half_i, qi));
                } else {
                    map_mod(o, src, qi, move |_, v| sub_mod(v, half_i, qi));
                }
            });
            if was_ntt {
                md.fwd(&mut r);
            }
            let inv = inv_mod(qlast % qi, qi).unwrap_or(0);
            if qi < 1 << 32 {
                let inv_s = shoup32(inv, qi);
                on_limbs!(limb, &r, (x, y) => zip_map(x, y, move |x, y| {
                    mul_shoup32(sub_mod(x, y, qi), inv, inv_s, qi)
                }));
            } else {
                let c = ConstMul::new(inv, qi);
                on_limbs!(limb, &r, (x, y) => zip_map(x, y, move |x, y| {
                    c.apply::<false, true>(sub_mod(x, y, qi), qi)
                }));
            }
        });
    Ok(())
}

/// `out[i] = f(src[i], src[i] mod q)` for any `src[i] < 2^64`, the
/// reduction as `lo + hi [2^32]_q` in 32-bit halves, so the loop vectorises
/// under the SIMD dispatch whatever the widths.
#[inline(always)]
fn map_mod<O: Word, S: Word>(out: &mut [O], src: &[S], q: u64, f: impl Fn(u64, u64) -> u64 + Copy) {
    let c = ConstMul::new(1, q);
    if q < 1 << 32 {
        zip_map(out, src, move |_, x| f(x, c.apply::<true, true>(x, q)));
    } else {
        zip_map(out, src, move |_, x| f(x, c.apply::<false, true>(x, q)));
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
pub(crate) fn lift_digit(
    digit: &Limb,
    q_src: u64,
    m: &[Arc<Modulus>],
    own: Option<(usize, &Limb)>,
) -> RnsPoly {
    let half = q_src / 2;
    let limbs = m
        .par_iter()
        .enumerate()
        .map(|(t, md)| {
            if let Some((_, limb)) = own.filter(|&(j, _)| j == t) {
                return limb.clone();
            }
            let q = md.q;
            let neg = (q - q_src % q) % q; // -q_src mod q
            let mut v = Limb::zeros(md);
            on_limbs!(&mut v, digit, (o, src) => {
                if q_src <= 2 * q {
                    // Residues below 2q: one conditional subtraction (vectorises).
                    zip_map(o, src, move |_, x| {
                        let r = reduce_once(x, q);
                        let m = u64::from(x > half).wrapping_neg();
                        add_mod(r, neg & m, q)
                    });
                } else {
                    map_mod(o, src, q, move |x, r| {
                        add_mod(r, neg & u64::from(x > half).wrapping_neg(), q)
                    });
                }
            });
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
    let n = a.limbs.first().map_or(0, Limb::len);
    let two_n = 2 * n;
    let limbs = a
        .limbs
        .par_iter()
        .zip(m)
        .map(|(l, md)| {
            let mut out = Limb::zeros(md);
            on_limbs!(&mut out, l, (o, src) => {
                for (i, &c) in src.iter().enumerate() {
                    let j = (i * k) % two_n;
                    if j < n {
                        o[j] = Word::put(c.get());
                    } else {
                        o[j - n] = Word::put(sub_mod(0, c.get(), md.q));
                    }
                }
            });
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
    use crate::math::{ntt_primes, reduce_i64};

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
                .map(|md| Limb::collect(md, a.iter().map(|&v| reduce_i64(v, md.q))))
                .collect(),
            ntt: false,
        }
    }

    /// Limb `j`'s residues as u64.
    fn res(p: &RnsPoly, j: usize) -> Vec<u64> {
        p.limbs[j].wide().into_owned()
    }

    #[test]
    fn ntt_round_trip_and_negacyclic_product() {
        let n = 64;
        let m = moduli(n, &[30, 40, 50]);
        let a: Vec<i64> = (0..n as i64).map(|i| (i * 37 % 101) - 50).collect();
        let b: Vec<i64> = (0..n as i64).map(|i| (i * 13 % 29) - 14).collect();
        let mut pa = from_signed(&a, &m);
        let orig = pa.clone();
        pa.make_ntt(&m);
        let mut back = pa.clone();
        back.make_coeff(&m);
        assert_eq!(back, orig);
        let mut pb = from_signed(&b, &m);
        pb.make_ntt(&m);
        let mut prod = pa.mul(&pb, &m);
        prod.make_coeff(&m);
        assert_eq!(prod, from_signed(&schoolbook(&a, &b), &m));
    }

    /// Limbs stored in 32-bit words (transformed and multiplied by the
    /// 32-bit kernels) give bit-identical forward, inverse and pointwise
    /// results to 64-bit limbs, for the primes of the papers' chains (26
    /// and 31 bits), a 30-bit one, a 32-bit one (the 32-bit kernels'
    /// slower exact reduction) at N = 2^13 and 2^14; 40-bit primes stay on
    /// 64 bits.
    #[test]
    fn word_widths_are_bit_identical() {
        for n in [1usize << 13, 1 << 14] {
            let primes = ntt_primes(&[26, 26, 31, 30, 32, 40], n).expect("primes");
            for (k, &q) in primes.iter().enumerate() {
                let auto = Modulus::new(n, q).expect("auto");
                let wide = Modulus::with_words(n, q, NttWords::Only64).expect("64");
                assert_eq!(wide.word_bits(), 64);
                assert_eq!(
                    auto.word_bits(),
                    if q < (1 << 32) { 32 } else { 64 },
                    "q = {q}"
                );
                assert_eq!(auto.fast32(), q < (1 << 31), "q = {q}");
                let a: Vec<u64> = (0..n as u64)
                    .map(|i| (i * 2_654_435_761 + k as u64) % q)
                    .collect();
                let b: Vec<u64> = (0..n as u64).map(|i| (i * 40_503 + 17) % q).collect();
                let (mut a1, mut a2) = (auto.limb(&a), wide.limb(&a));
                assert_eq!(a1.0.byte_size(), if q < 1 << 32 { 4 * n } else { 8 * n });
                auto.ntt_fwd(&mut a1);
                wide.ntt_fwd(&mut a2);
                assert_eq!(a1.to_u64(), a2.to_u64(), "forward, q = {q}, N = {n}");
                let (mut b1, mut b2) = (auto.limb(&b), wide.limb(&b));
                auto.ntt_fwd(&mut b1);
                wide.ntt_fwd(&mut b2);
                let (mut c1, mut c2) = (auto.limb(&a), wide.limb(&a));
                auto.pointwise_mul_acc(&mut c1, &a1, &b1);
                wide.pointwise_mul_acc(&mut c2, &a2, &b2);
                assert_eq!(c1.to_u64(), c2.to_u64(), "pointwise, q = {q}");
                // Mixed widths (a guard path) compute the same product.
                let mut c3 = auto.limb(&a);
                auto.pointwise_mul_acc(&mut c3, &a2, &b1);
                assert_eq!(c3.to_u64(), c2.to_u64(), "mixed pointwise, q = {q}");
                auto.ntt_inv(&mut c1);
                wide.ntt_inv(&mut c2);
                assert_eq!(c1.to_u64(), c2.to_u64(), "inverse, q = {q}");
                auto.ntt_inv(&mut a1);
                assert_eq!(a1.to_u64(), a, "round trip, q = {q}");
            }
        }
    }

    /// The lazy inner product equals term-by-term reduced accumulation, for
    /// a 26-bit prime (one reduction per 4095 terms: 5000 terms cross it),
    /// a 31-bit prime (a reduction every 3 terms) and a 40-bit one (64-bit
    /// path), with residues at q - 1 where overflow would show.
    #[test]
    fn lazy_inner_product_is_exact() {
        let n = 64;
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
            // The limbs as stored (32-bit words below 2^32) and as u64.
            let stored = |v: &Vec<Vec<u64>>| -> Vec<Limb> {
                v.iter()
                    .map(|l| Limb::collect(&md, l.iter().copied()))
                    .collect()
            };
            let wide = |v: &Vec<Vec<u64>>| -> Vec<Limb> {
                v.iter().map(|l| Limb::W64(l.clone())).collect()
            };
            let (sd, sb, sa) = (stored(&d), stored(&b), stored(&a));
            let (wd, wb, wa) = (wide(&d), wide(&b), wide(&a));
            assert_eq!(sb[0].wide().into_owned(), b[0], "storage is exact");
            fn terms_of<'a>(
                d: &'a [Limb],
                b: &'a [Limb],
                a: &'a [Limb],
            ) -> Vec<(&'a Limb, &'a Limb, &'a Limb)> {
                d.iter()
                    .zip(b)
                    .zip(a)
                    .map(|((d, b), a)| (d, b, a))
                    .collect()
            }
            let cases = [
                terms_of(&sd, &sb, &sa),
                terms_of(&wd, &wb, &wa),
                terms_of(&wd, &sb, &sa),
                terms_of(&sd, &wb, &sa),
            ];
            for tr in cases {
                let (o0, o1) = md.dot2(&tr);
                assert_eq!(o0.byte_size(), if q < 1 << 32 { 4 * n } else { 8 * n });
                for i in 0..n {
                    let (mut w0, mut w1) = (0u64, 0u64);
                    for t in 0..terms {
                        w0 = add_mod(w0, mul_mod(d[t][i], b[t][i], q), q);
                        w1 = add_mod(w1, mul_mod(d[t][i], a[t][i], q), q);
                    }
                    assert_eq!(
                        (o0.get(i), o1.get(i)),
                        (w0, w1),
                        "{bits}-bit prime, slot {i}"
                    );
                }
            }
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
            let mut lifted = lift_digit(&m[src].limb(&digit).0, qs, &m, None);
            lifted.make_coeff(&m);
            for (j, md) in m.iter().enumerate() {
                for (i, &x) in digit.iter().enumerate() {
                    let c = if x > qs / 2 {
                        x as i64 - qs as i64
                    } else {
                        x as i64
                    };
                    assert_eq!(
                        lifted.limbs[j].get(i),
                        reduce_i64(c, md.q),
                        "src {src} dst {j}"
                    );
                }
            }
        }
        // Mod-down: (x - [x]_last) / q_last, exactly, for every limb.
        let vals: Vec<i64> = (0..n as i64)
            .map(|i| (i - 32) * 1_234_567_891_234 + i * 77)
            .collect();
        let mut p = from_signed(&vals, &m);
        p.make_ntt(&m);
        divide_round_by_last(&mut p, &m).expect("divide");
        p.make_coeff(&m[..m.len() - 1]);
        let last = m[m.len() - 1].q as i128;
        for (i, &v) in vals.iter().enumerate() {
            let v = v as i128;
            let want = (v + last / 2).div_euclid(last);
            for (j, md) in m[..m.len() - 1].iter().enumerate() {
                assert_eq!(p.limbs[j].get(i), reduce_i64(want as i64, md.q), "limb {j}");
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
            want.make_ntt(&m);
            let mut na = pa.clone();
            na.make_ntt(&m);
            assert_eq!(automorphism_ntt(&na, k, &m), want, "k = {k}");
        }
    }

    #[test]
    fn centred_digits_lift_to_the_same_residues() {
        let n = 16;
        let m = moduli(n, &[30, 40, 50]);
        let q0 = m[0].q;
        let digit: Vec<u64> = (0..n as u64).map(|i| i * (q0 / 17)).collect();
        let mut lifted = lift_digit(&m[0].limb(&digit).0, q0, &m, None);
        lifted.make_coeff(&m);
        assert_eq!(res(&lifted, 0), digit);
        for (i, &d) in digit.iter().enumerate() {
            let c = if d > q0 / 2 {
                d as i64 - q0 as i64
            } else {
                d as i64
            };
            assert_eq!(lifted.limbs[2].get(i), reduce_i64(c, m[2].q));
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
        p.make_ntt(&m);
        divide_round_by_last(&mut p, &m).expect("divide");
        p.make_coeff(&m);
        for (i, &v) in vals.iter().enumerate() {
            let want = (v as f64 / last as f64).round();
            let got = crt.centered(&[p.limbs[0].get(i), p.limbs[1].get(i)]);
            assert!((got - want).abs() <= 1.0, "{got} vs {want}");
        }
    }
}
