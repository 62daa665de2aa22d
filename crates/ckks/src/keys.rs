//! Key generation: a ternary secret from a CSPRNG, the public key,
//! relinearisation and Galois (rotation, conjugation) keys for hybrid key
//! switching: P is the product of the parameters' special primes, and a
//! key holds one part per digit (a group of consecutive ciphertext
//! primes; one prime per digit and one special prime is SEAL's choice).
//! The secret key is zeroized on drop and never printed.

use super::context::CkksContext;
use super::error::CkksError;
use super::math::{mul_mod, reduce_small};
use super::ring::{
    Limb, Modulus, RnsPoly, SecretPoly, Word, automorphism, automorphism_ntt, on_limbs,
};
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Width of the centred binomial error distribution: an error is the
/// number of ones in 21 random bits minus the number in 21 others.
pub const CBD_ETA: u32 = 21;
/// Standard deviation of the error distribution: sqrt(21 / 2) = 3.24, the
/// HE standard's 3.2 rounded up to a centred binomial.
pub const SIGMA: f64 = 3.240_370_349_203_93;
/// Errors are bounded by the binomial's support, |e| <= 21 (6.5 σ).
pub const ERROR_BOUND: f64 = CBD_ETA as f64;

/// The secret key: a ternary polynomial s and its square s², NTT form over
/// q_0..q_L and the special primes, both computed once and zeroized on drop. The decryptor
/// reads them in place (no copy of s per call).
pub struct SecretKey {
    s: SecretPoly,
    s2: SecretPoly,
}

impl SecretKey {
    /// s (key level, NTT form).
    pub(crate) fn s(&self) -> &RnsPoly {
        &self.s
    }
    /// s² (key level, NTT form).
    pub(crate) fn s2(&self) -> &RnsPoly {
        &self.s2
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey { .. redacted .. }")
    }
}

/// A 256-bit seed for key generation and encryption randomness, zeroized
/// on drop and redacted in `Debug`. [`KeySeed::from_os_rng`] is the
/// production path; [`KeySeed::for_tests`] expands a small integer (64 bits
/// of entropy at most) and is for tests and reproducible runs only.
#[derive(Clone)]
pub struct KeySeed(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for KeySeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySeed { .. redacted .. }")
    }
}

impl KeySeed {
    /// A seed from 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh seed from the operating system's CSPRNG.
    pub fn from_os_rng() -> Self {
        let mut rng = ChaCha20Rng::from_os_rng();
        let seed = Self::from_rng(&mut rng);
        wipe_rng(&mut rng);
        seed
    }

    /// 32 bytes drawn from `rng`.
    pub fn from_rng(rng: &mut impl CryptoRng) -> Self {
        let mut b = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *b);
        Self(b)
    }

    /// SHA-256 of a domain label and `n`: a deterministic seed for tests
    /// and reproducible runs. Keys made from it are **not secret**.
    pub fn for_tests(n: u64) -> Self {
        let mut h = Sha256::new();
        h.update(b"slaf-he test key seed v1");
        h.update(n.to_le_bytes());
        Self(Zeroizing::new(h.finalize().into()))
    }

    /// Parse 64 hexadecimal digits (a full 256-bit seed) or a decimal
    /// integer (a test seed, [`Self::for_tests`]).
    pub fn parse(text: &str) -> Result<Self, CkksError> {
        let t = text.trim();
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Self::for_tests(n));
        }
        let bytes = t.as_bytes();
        if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
            return Err(CkksError::InvalidParameters {
                detail: format!(
                    "key seed must be 64 hexadecimal digits (256 bits) or a decimal test seed; got {} characters",
                    t.len()
                ),
            });
        }
        let mut out = Zeroizing::new([0u8; 32]);
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            out[i] = hex(pair[0]) << 4 | hex(pair[1]);
        }
        Ok(Self(out))
    }

    /// The seed as 64 hexadecimal digits (what [`Self::parse`] reads). The
    /// caller holds secret text: keep it in a `Zeroizing<String>`.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// An independent seed for `purpose` (SHA-256 of this seed and the
    /// label), so that one seed can drive key generation and encryption
    /// without either stream revealing the other.
    pub fn derive(&self, purpose: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"slaf-he derive v1");
        h.update(*self.0);
        h.update(purpose.as_bytes());
        Self(Zeroizing::new(h.finalize().into()))
    }

    /// A ChaCha20 generator keyed by this seed.
    pub fn rng(&self) -> ChaCha20Rng {
        ChaCha20Rng::from_seed(*self.0)
    }
}

/// Overwrite a ChaCha20 generator's state (key, counter, buffered output)
/// with that of the all-zero seed, with a volatile store the compiler
/// cannot elide. Used on every generator that produced secret material.
pub fn wipe_rng(rng: &mut ChaCha20Rng) {
    // SAFETY: `rng` is a valid, exclusive reference; ChaCha20Rng is plain
    // data without heap pointers or drop glue, so overwriting it in place
    // with another valid value (without dropping the old one) leaks nothing
    // and leaves a valid value behind.
    unsafe { std::ptr::write_volatile(rng, ChaCha20Rng::from_seed([0; 32])) }
}

/// A public 32-byte seed from which a uniform polynomial is expanded
/// ([`expand_uniform`]): what a compressed key or ciphertext sends instead
/// of its uniform part.
pub type PolySeed = [u8; 32];

/// The uniform polynomial of `seed` over the primes `qs` (NTT form, as
/// every uniform part is sampled): ChaCha20 keyed by the seed, limb by limb
/// in prime order; each coefficient is a 64-bit word masked to the bit
/// length of q_i and rejected when not below q_i (no modular bias). The
/// expansion is defined here, not by a crate's sampling routine, so that a
/// seed means the same polynomial in every build of this format.
pub fn expand_uniform(m: &[Arc<Modulus>], seed: &PolySeed) -> RnsPoly {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    let limbs = m
        .iter()
        .map(|md| {
            let q = md.q;
            let mask = u64::MAX >> q.leading_zeros();
            let draws = std::iter::repeat_with(|| rng.next_u64() & mask).filter(|&v| v < q);
            Limb::collect(md, draws.take(md.degree()))
        })
        .collect();
    RnsPoly { limbs, ntt: true }
}

/// A fresh uniform part over `m` and its seed (drawn from `rng`).
pub(crate) fn seeded_uniform(m: &[Arc<Modulus>], rng: &mut impl RngCore) -> (RnsPoly, PolySeed) {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    (expand_uniform(m, &seed), seed)
}

/// The public key (b, a) = (-a s + e, a) over q_0..q_L. A freshly generated
/// key also keeps the seed of `a`, so that it serializes in half the bytes.
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub(crate) b: RnsPoly,
    pub(crate) a: RnsPoly,
    pub(crate) a_seed: Option<PolySeed>,
}

impl PublicKey {
    /// Bytes of its residues.
    pub fn byte_size(&self) -> usize {
        self.b.byte_size() + self.a.byte_size()
    }
}

/// A key-switching key: for each digit D_i (a range of ciphertext primes),
/// (b_i, a_i) over q_0..q_L, p_0..p_{k-1} with
/// b_i = -a_i s + e_i + \[P\]_{q_j} s' on the limbs j of D_i (P Q̃_i s' with
/// Q̃_i the CRT idempotent of D_i). A freshly generated key keeps the seed
/// of every `a_i` (serialized instead of it).
///
/// Its limbs are stored as every polynomial's (the ring's `Limb`):
/// 32-bit words for the primes below 2^32, so a key over the papers'
/// 26-bit chains takes about half the bytes of 64-bit words, and key
/// switching reads half the memory.
#[derive(Clone, Debug)]
pub struct SwitchingKey {
    pub(crate) parts: Vec<(RnsPoly, RnsPoly)>,
    pub(crate) a_seeds: Option<Vec<PolySeed>>,
}

impl SwitchingKey {
    /// Bytes of its residues (4 per residue of a prime below 2^32, else 8).
    pub fn byte_size(&self) -> usize {
        self.parts
            .iter()
            .map(|(b, a)| b.byte_size() + a.byte_size())
            .sum()
    }
}

/// Relinearisation key (switches s² to s).
#[derive(Clone, Debug)]
pub struct RelinearizationKey(pub(crate) SwitchingKey);

impl RelinearizationKey {
    /// Bytes of its residues.
    pub fn byte_size(&self) -> usize {
        self.0.byte_size()
    }
}

/// Sparse-secret encapsulation keys for bootstrapping (Bossuat,
/// Troncoso-Pastoriza and Hubaux, ACNS 2022): an ephemeral secret `s'`
/// with exactly `h` nonzero coefficients, a key from the dense `s` to `s'`
/// that exists only modulo `q_0 · P` (its other limbs are zero: an RLWE
/// sample under a sparse secret is only safe at a small modulus), and a
/// key from `s'` back to `s` over the whole chain. Bootstrapping switches
/// a level-0 ciphertext to `s'` before ModRaise, so that the integer part
/// `I` it adds is at most `(h + 1) / 2`, and switches back after it: the
/// user's secret stays dense and within the HE standard.
#[derive(Clone, Debug)]
pub struct EncapsulationKeys {
    pub(crate) to_sparse: SwitchingKey,
    pub(crate) to_dense: SwitchingKey,
    hamming_weight: usize,
}

impl EncapsulationKeys {
    /// Keys read back by the deserializer (which checks them).
    pub(crate) fn from_parts(
        to_sparse: SwitchingKey,
        to_dense: SwitchingKey,
        hamming_weight: usize,
    ) -> Self {
        Self {
            to_sparse,
            to_dense,
            hamming_weight,
        }
    }

    /// The ephemeral secret's Hamming weight h.
    pub fn hamming_weight(&self) -> usize {
        self.hamming_weight
    }
    /// The bound on |I| after ModRaise under the ephemeral secret:
    /// `|c_0 + c_1 s'| ≤ (h + 1) q_0 / 2`, so `|I| ≤ (h + 1) / 2`.
    pub fn integer_bound(&self) -> f64 {
        self.hamming_weight.div_ceil(2) as f64
    }
    /// Bytes of their residues.
    pub fn byte_size(&self) -> usize {
        self.to_sparse.byte_size() + self.to_dense.byte_size()
    }
}

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
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    /// Whether the key of a left rotation by `step` (0 needs none) is present.
    pub fn has_step(&self, step: i64, n: usize) -> bool {
        let k = galois_element(step, n);
        k == 1 || self.keys.contains_key(&k)
    }
    /// Bytes of their residues.
    pub fn byte_size(&self) -> usize {
        self.keys.values().map(SwitchingKey::byte_size).sum()
    }
}

/// The Galois element of a left rotation by `step` slots (negative: right).
pub fn galois_element(step: i64, n: usize) -> usize {
    let slots = (n / 2) as i64;
    let r = step.rem_euclid(slots) as u64;
    let m = 2 * n as u64;
    super::math::pow_mod(5, r, m) as usize
}

/// Generates keys: samples the secret and every key's randomness from its
/// own ChaCha20 generator, keyed by a 256-bit seed. The generator state is
/// wiped on drop (it could regenerate the secret).
pub struct KeyGenerator {
    ctx: Arc<CkksContext>,
    rng: ChaCha20Rng,
    sk: SecretKey,
}

impl std::fmt::Debug for KeyGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyGenerator { .. redacted .. }")
    }
}

impl Drop for KeyGenerator {
    fn drop(&mut self) {
        wipe_rng(&mut self.rng);
    }
}

/// Uniform ternary coefficients in {-1, 0, 1}, constant time: the high
/// word of `r · 3` for a uniform 64-bit `r` (bias below 2^-62, no
/// rejection loop, no branch on secret data). Zeroized on drop.
pub(crate) fn sample_ternary(n: usize, rng: &mut impl RngCore) -> Zeroizing<Vec<i64>> {
    Zeroizing::new(
        (0..n)
            .map(|_| ((u128::from(rng.next_u64()) * 3) >> 64) as i64 - 1)
            .collect(),
    )
}

/// A sparse ternary secret: exactly `h` of the `n` coefficients are ±1,
/// the rest 0, constant time. Positions by Knuth's selection sampling
/// (Algorithm S): coefficient `i` is taken with probability
/// `(h − taken) / (n − i)`, decided by comparing `r · (n − i)` with
/// `(h − taken) · 2^64` in 128-bit arithmetic (bias below 2^-64, no
/// branch or index on secret data); the sign is one more random bit.
/// Zeroized on drop.
pub(crate) fn sample_sparse_ternary(
    n: usize,
    h: usize,
    rng: &mut impl RngCore,
) -> Zeroizing<Vec<i64>> {
    let mut out = Zeroizing::new(vec![0i64; n]);
    let mut taken = 0u128;
    for (i, c) in out.iter_mut().enumerate() {
        let r = u128::from(rng.next_u64());
        let sign = i64::from((rng.next_u32() & 1) as u8) * 2 - 1;
        let left = (h as u128).saturating_sub(taken);
        // take = 1 iff r · (n − i) < left · 2^64 (the borrow of the
        // subtraction, read without a branch).
        let take = (r * (n - i) as u128).wrapping_sub(left << 64) >> 127;
        taken += take;
        *c = sign * take as i64;
    }
    out
}

/// Centred binomial errors (η = [`CBD_ETA`], σ = [`SIGMA`]), constant
/// time: popcounts of two 21-bit halves of one random word. Zeroized on drop.
pub(crate) fn sample_error(n: usize, rng: &mut impl RngCore) -> Zeroizing<Vec<i64>> {
    let mask = (1u64 << CBD_ETA) - 1;
    Zeroizing::new(
        (0..n)
            .map(|_| {
                let r = rng.next_u64();
                i64::from((r & mask).count_ones()) - i64::from(((r >> CBD_ETA) & mask).count_ones())
            })
            .collect(),
    )
}

/// A small secret polynomial (|c| < every prime) in NTT form, wiped on drop.
pub(crate) fn small_to_ntt(c: &[i64], m: &[Arc<Modulus>]) -> SecretPoly {
    let mut p = SecretPoly::new(RnsPoly {
        limbs: m
            .iter()
            .map(|md| Limb::collect(md, c.iter().map(|&v| reduce_small(v, md.q))))
            .collect(),
        ntt: false,
    });
    p.convert_to_ntt(m);
    p
}

impl KeyGenerator {
    /// Sample a fresh ternary secret, keyed by 32 bytes drawn from `rng`.
    pub fn new<R: RngCore + CryptoRng>(ctx: &Arc<CkksContext>, mut rng: R) -> Self {
        Self::from_seed(ctx, &KeySeed::from_rng(&mut rng))
    }

    /// Sample a fresh ternary secret from `seed` (deterministic).
    pub fn from_seed(ctx: &Arc<CkksContext>, seed: &KeySeed) -> Self {
        let mut rng = seed.rng();
        let m = ctx.key_moduli();
        let n = ctx.params().n();
        let s = small_to_ntt(&sample_ternary(n, &mut rng), m);
        let s2 = SecretPoly::new(s.mul(&s, m));
        Self {
            ctx: Arc::clone(ctx),
            rng,
            sk: SecretKey { s, s2 },
        }
    }

    /// The secret key.
    pub fn secret_key(&self) -> &SecretKey {
        &self.sk
    }

    /// Keep only the secret key (the generator's state is wiped).
    pub fn into_secret_key(mut self) -> SecretKey {
        let empty = || SecretPoly::new(RnsPoly::empty());
        std::mem::replace(
            &mut self.sk,
            SecretKey {
                s: empty(),
                s2: empty(),
            },
        )
    }

    /// A public key.
    pub fn public_key(&mut self) -> PublicKey {
        let l = self.ctx.params().max_level();
        let m = self.ctx.q_moduli(l);
        let n = self.ctx.params().n();
        let (a, seed) = seeded_uniform(m, &mut self.rng);
        let e = small_to_ntt(&sample_error(n, &mut self.rng), m);
        // The product over the first m.len() limbs: s is read in place.
        let mut b = a.mul(self.sk.s(), m);
        b.neg_assign(m);
        b.add_assign(&e, m);
        PublicKey {
            b,
            a,
            a_seed: Some(seed),
        }
    }

    fn switching_key(&mut self, target: &RnsPoly) -> SwitchingKey {
        let (parts, seeds) = self.switching_key_parts(target, None);
        SwitchingKey {
            parts,
            a_seeds: Some(seeds),
        }
    }

    /// The (b_i, a_i) of a switching key from `target` to the secret
    /// (`under`, else the key's own s), with the seeds of the `a_i`.
    fn switching_key_parts(
        &mut self,
        target: &RnsPoly,
        under: Option<&RnsPoly>,
    ) -> (Vec<(RnsPoly, RnsPoly)>, Vec<PolySeed>) {
        let secret = under.unwrap_or(self.sk.s());
        let m = self.ctx.key_moduli();
        let n = self.ctx.params().n();
        let params = self.ctx.params();
        let digits = params.digits(params.max_level());
        let special = params.special_primes();
        let mut seeds = Vec::with_capacity(digits.len());
        let parts = digits
            .into_iter()
            .map(|digit| {
                let (a, seed) = seeded_uniform(m, &mut self.rng);
                seeds.push(seed);
                let e = small_to_ntt(&sample_error(n, &mut self.rng), m);
                let mut b = a.mul(secret, m);
                b.neg_assign(m);
                b.add_assign(&e, m);
                for j in digit {
                    let qj = m[j].q;
                    let pm = special.iter().fold(1, |acc, &p| mul_mod(acc, p % qj, qj));
                    on_limbs!(&mut b.limbs[j], &target.limbs[j], (x, t) => {
                        for (x, t) in x.iter_mut().zip(t.iter()) {
                            *x = Word::put(super::math::add_mod(x.get(), mul_mod(pm, t.get(), qj), qj));
                        }
                    });
                }
                (b, a)
            })
            .collect();
        (parts, seeds)
    }

    /// The relinearisation key (s² -> s).
    pub fn relinearization_key(&mut self) -> RelinearizationKey {
        let s2 = self.sk.s2.duplicate();
        RelinearizationKey(self.switching_key(&s2))
    }

    /// Sparse-secret encapsulation keys with an ephemeral secret of
    /// Hamming weight `h` (1..=N; 32 is the published choice). The key to
    /// the sparse secret keeps only its `q_0` and special-prime limbs.
    pub fn encapsulation_keys(&mut self, h: usize) -> Result<EncapsulationKeys, CkksError> {
        let n = self.ctx.params().n();
        if h == 0 || h > n {
            return Err(CkksError::InvalidParameters {
                detail: format!(
                    "an ephemeral secret of Hamming weight {h}: it must be in 1..={n} (N)"
                ),
            });
        }
        let m = self.ctx.key_moduli().to_vec();
        let sparse = small_to_ntt(&sample_sparse_ternary(n, h, &mut self.rng), &m);
        let to_dense = self.switching_key(&sparse);
        let dense = self.sk.s.duplicate();
        let (mut parts, seeds) = self.switching_key_parts(&dense, Some(&sparse));
        drop(dense);
        drop(sparse);
        let top = self.ctx.params().max_level();
        for (b, _) in &mut parts {
            for (limb, md) in b.limbs.iter_mut().zip(&m).take(top + 1).skip(1) {
                *limb = Limb::collect(md, std::iter::repeat_n(0u64, n));
            }
        }
        Ok(EncapsulationKeys {
            to_sparse: SwitchingKey {
                parts,
                a_seeds: Some(seeds),
            },
            to_dense,
            hamming_weight: h,
        })
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
            let mut s = self.sk.s.duplicate();
            s.convert_to_coeff(&m);
            let mut target = SecretPoly::new(automorphism(&s, k, &m));
            drop(s);
            target.convert_to_ntt(&m);
            let (mut parts, seeds) = self.switching_key_parts(&target, None);
            drop(target);
            // (Z/2N)* has order N: k^-1 = k^(N-1) mod 2N.
            let k_inv = super::math::pow_mod(k as u64, n as u64 - 1, 2 * n as u64) as usize;
            for (b, a) in &mut parts {
                *b = automorphism_ntt(b, k_inv, &m);
                *a = automorphism_ntt(a, k_inv, &m);
            }
            keys.insert(
                k,
                SwitchingKey {
                    parts,
                    a_seeds: Some(seeds),
                },
            );
        }
        GaloisKeys { keys }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// Exactly h nonzero coefficients, each ±1, spread over the whole
    /// polynomial, both signs, and different draws from different seeds.
    #[test]
    fn sparse_ternary_has_exactly_h_nonzeros() {
        for (n, h) in [(1024, 32), (4096, 192), (64, 64), (64, 1)] {
            let mut rng = ChaCha20Rng::seed_from_u64(n as u64 + h as u64);
            let s = sample_sparse_ternary(n, h, &mut rng);
            assert_eq!(s.iter().filter(|&&c| c != 0).count(), h, "n {n}, h {h}");
            assert!(s.iter().all(|&c| (-1..=1).contains(&c)));
            if h >= 32 && h < n {
                let plus = s.iter().filter(|&&c| c == 1).count();
                assert!(plus > h / 4 && plus < 3 * h / 4, "{plus} of {h} positive");
                // Positions in both halves (selection sampling is uniform).
                let first = s[..n / 2].iter().filter(|&&c| c != 0).count();
                assert!(
                    first > h / 4 && first < 3 * h / 4,
                    "{first} of {h} in the first half"
                );
            }
        }
        let a = sample_sparse_ternary(1024, 32, &mut ChaCha20Rng::seed_from_u64(1));
        let b = sample_sparse_ternary(1024, 32, &mut ChaCha20Rng::seed_from_u64(2));
        assert_ne!(*a, *b);
    }
}
