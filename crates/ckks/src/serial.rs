//! Serialization of parameters (JSON, through serde and re-validated
//! against the HE standard on load) and of ciphertexts, public keys,
//! relinearization keys and Galois keys (a compact little-endian binary
//! format), validated on load against the context they are read into.
//!
//! Binary layout: magic `SLAFCKKS`, format version (u32), object kind (u8),
//! ring degree (u64), the number of primes and the primes q_0..q_L, then
//! the special primes (u64 each), the number of special primes (u32), then
//! the object. A polynomial is its limb count (u32), an
//! NTT flag (u8, always 1) and `limbs × N` coefficients (u64). A uniform
//! part (the `a` of a public key, of each key-switching digit and of a
//! fresh symmetric ciphertext) is written as a form byte then either the
//! polynomial (0) or the 32-byte seed it expands from (1,
//! [`super::keys::expand_uniform`]; a Galois key's `a` is expanded, then
//! permuted as key generation permutes it): seed compression, as SEAL's,
//! halves keys and uploads. Loading checks the
//! magic, version and kind, that N and every prime equal the context's,
//! the level and limb counts, that every coefficient is below its prime,
//! that the scale is finite and positive, and that no byte is left over.
//! Anything else is [`CkksError::Deserialize`], never a panic.
//!
//! The secret key has no serializer on purpose.

use super::context::CkksContext;
use super::error::CkksError;
use super::evaluator::{Ciphertext, SeededCiphertext};
use super::keys::{
    EncapsulationKeys, GaloisKeys, PolySeed, PublicKey, RelinearizationKey, SwitchingKey,
    expand_uniform,
};
use super::params::{CkksParameters, CkksParametersLiteral};
use super::ring::{Limb, Modulus, RnsPoly, Word, automorphism_ntt, on_limb};
use std::collections::HashMap;
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"SLAFCKKS";
const VERSION: u32 = 3;

/// What a serialized blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Ciphertext = 1,
    PublicKey = 2,
    RelinearizationKey = 3,
    GaloisKeys = 4,
    EncapsulationKeys = 5,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ciphertext => "ciphertext",
            Kind::PublicKey => "public key",
            Kind::RelinearizationKey => "relinearization key",
            Kind::GaloisKeys => "Galois keys",
            Kind::EncapsulationKeys => "encapsulation keys",
        }
    }
}

fn bad(detail: impl Into<String>) -> CkksError {
    CkksError::Deserialize {
        detail: detail.into(),
    }
}

/// The parameters as JSON (the literal they were built from).
pub fn parameters_to_json(params: &CkksParameters) -> String {
    // A struct of numbers, strings and bools always serializes.
    serde_json::to_string_pretty(params.literal()).unwrap_or_default()
}

/// Largest parameters JSON accepted (bytes): a literal is a few hundred.
pub const MAX_PARAMETERS_JSON: usize = 64 * 1024;

/// Parameters from JSON, validated exactly as [`CkksParameters::new`].
/// The insecure opt-out is the caller's `allow_insecure` argument only: a
/// field of that name in the data is ignored. The text length, N (2^10 to
/// 2^16) and the chain length ([`super::params::MAX_CHAIN_PRIMES`]) are
/// capped before any prime is searched for.
pub fn parameters_from_json(text: &str, allow_insecure: bool) -> Result<CkksParameters, CkksError> {
    if text.len() > MAX_PARAMETERS_JSON {
        return Err(bad(format!(
            "parameters JSON of {} bytes, at most {MAX_PARAMETERS_JSON}",
            text.len()
        )));
    }
    let mut lit: CkksParametersLiteral =
        serde_json::from_str(text).map_err(|e| bad(format!("parameters JSON: {e}")))?;
    lit.allow_insecure = allow_insecure;
    CkksParameters::new(lit)
}

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn new(ctx: &CkksContext, kind: Kind) -> Self {
        let mut w = Writer { buf: Vec::new() };
        w.buf.extend_from_slice(MAGIC);
        w.u32(VERSION);
        w.buf.push(kind as u8);
        let p = ctx.params();
        w.u64(p.n() as u64);
        w.u32((p.q().len() + p.special_primes().len()) as u32);
        for &q in p.q().iter().chain(p.special_primes()) {
            w.u64(q);
        }
        w.u32(p.special_primes().len() as u32);
        w
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn poly(&mut self, p: &RnsPoly) {
        self.u32(p.limbs.len() as u32);
        self.buf.push(u8::from(p.ntt));
        self.buf.reserve(p.limbs.iter().map(|l| l.len() * 8).sum());
        for l in &p.limbs {
            on_limb!(l, v => {
                for &c in v.iter() {
                    self.u64(c.get());
                }
            });
        }
    }
    /// A uniform part: its seed when known, else the polynomial.
    fn uniform(&mut self, a: &RnsPoly, seed: Option<&PolySeed>) {
        match seed {
            Some(s) => {
                self.buf.push(1);
                self.buf.extend_from_slice(s);
            }
            None => {
                self.buf.push(0);
                self.poly(a);
            }
        }
    }
    fn switching_key(&mut self, k: &SwitchingKey) {
        self.u32(k.parts.len() as u32);
        for (i, (b, a)) in k.parts.iter().enumerate() {
            self.poly(b);
            self.uniform(a, k.a_seeds.as_ref().and_then(|s| s.get(i)));
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    n: usize,
    /// q_0..q_L, then the special primes.
    primes: Vec<u64>,
    /// Number of ciphertext primes (L + 1).
    q_len: usize,
    /// Key-switching digits of a key (dnum).
    dnum: usize,
    /// The moduli of the primes (for a Galois key's permutation).
    key_moduli: Vec<Arc<Modulus>>,
}

impl<'a> Reader<'a> {
    fn new(ctx: &CkksContext, buf: &'a [u8], kind: Kind) -> Result<Self, CkksError> {
        let p = ctx.params();
        let primes: Vec<u64> = p.q().iter().chain(p.special_primes()).copied().collect();
        let mut r = Reader {
            buf,
            pos: 0,
            n: p.n(),
            primes,
            q_len: p.q().len(),
            dnum: p.dnum(),
            key_moduli: ctx.key_moduli().to_vec(),
        };
        if r.take(8)? != MAGIC {
            return Err(bad("not a slaf-he CKKS object (bad magic)"));
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(bad(format!(
                "format version {version}, this build reads {VERSION}"
            )));
        }
        let k = r.take(1)?[0];
        if k != kind as u8 {
            return Err(bad(format!(
                "expected a {} (kind {}), found kind {k}",
                kind.name(),
                kind as u8
            )));
        }
        let n = r.u64()?;
        if n != r.n as u64 {
            return Err(bad(format!(
                "ring degree {n} does not match the context's {}",
                r.n
            )));
        }
        let count = r.u32()? as usize;
        if count != r.primes.len() {
            return Err(bad(format!(
                "{count} primes in the chain, the context has {}",
                r.primes.len()
            )));
        }
        for i in 0..count {
            let q = r.u64()?;
            if q != r.primes[i] {
                return Err(bad(format!(
                    "prime {i} is {q}, the context's is {}",
                    r.primes[i]
                )));
            }
        }
        let special = r.u32()? as usize;
        if special != count - r.q_len {
            return Err(bad(format!(
                "{special} special primes, the context has {}",
                count - r.q_len
            )));
        }
        Ok(r)
    }
    fn take(&mut self, k: usize) -> Result<&'a [u8], CkksError> {
        let end = self
            .pos
            .checked_add(k)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| bad(format!("truncated at byte {}", self.pos)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, CkksError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, CkksError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A polynomial whose limb i is modulo `moduli[i]`.
    fn poly(&mut self, moduli: &[Arc<Modulus>], what: &str) -> Result<RnsPoly, CkksError> {
        let k = self.u32()? as usize;
        if k != moduli.len() {
            return Err(bad(format!("{what}: {k} limbs, expected {}", moduli.len())));
        }
        // Every consumer works in the NTT domain: coefficient form is refused.
        match self.take(1)?[0] {
            1 => {}
            f => {
                return Err(bad(format!("{what}: NTT flag {f}, expected 1 (NTT form)")));
            }
        }
        let bytes = self.take(k.saturating_mul(self.n).saturating_mul(8))?;
        let mut limbs = Vec::with_capacity(k);
        for (i, md) in moduli.iter().enumerate() {
            let q = md.q;
            let chunk = &bytes[i * self.n * 8..(i + 1) * self.n * 8];
            // One pass: store every word, remember the first out of range.
            let mut out_of_range = None;
            let values = chunk.chunks_exact(8).map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                let v = u64::from_le_bytes(a);
                if v >= q && out_of_range.is_none() {
                    out_of_range = Some(v);
                }
                v
            });
            let limb = Limb::collect(md, values);
            if let Some(v) = out_of_range {
                return Err(bad(format!(
                    "{what}: coefficient {v} of limb {i} is not below its prime {q}"
                )));
            }
            limbs.push(limb);
        }
        Ok(RnsPoly { limbs, ntt: true })
    }
    fn seed(&mut self) -> Result<PolySeed, CkksError> {
        let mut s = [0u8; 32];
        s.copy_from_slice(self.take(32)?);
        Ok(s)
    }
    /// A uniform part over `moduli`, with its seed when it was sent as one.
    fn uniform(
        &mut self,
        moduli: &[Arc<Modulus>],
        what: &str,
    ) -> Result<(RnsPoly, Option<PolySeed>), CkksError> {
        match self.take(1)?[0] {
            0 => Ok((self.poly(moduli, what)?, None)),
            1 => {
                let seed = self.seed()?;
                Ok((expand_uniform(moduli, &seed), Some(seed)))
            }
            f => Err(bad(format!(
                "{what}: uniform-part form {f}, expected 0 (polynomial) or 1 (seed)"
            ))),
        }
    }
    /// A key-switching key; a Galois key's (element `k`, inverse `k_inv`)
    /// seeded parts are permuted by `k_inv` after expansion.
    fn switching_key(
        &mut self,
        what: &str,
        k_inv: Option<usize>,
    ) -> Result<SwitchingKey, CkksError> {
        let digits = self.u32()? as usize;
        let expected = self.dnum;
        if digits != expected {
            return Err(bad(format!(
                "{what}: {digits} key-switching digits, expected {expected}"
            )));
        }
        let m = self.key_moduli.clone();
        let mut parts = Vec::with_capacity(digits);
        let mut seeds = Vec::with_capacity(digits);
        for _ in 0..digits {
            let b = self.poly(&m, what)?;
            let (mut a, seed) = self.uniform(&m, what)?;
            if let (Some(k), Some(_)) = (k_inv, seed) {
                a = automorphism_ntt(&a, k, &self.key_moduli);
            }
            seeds.push(seed);
            parts.push((b, a));
        }
        // Seeds are kept only when every digit came as one.
        let a_seeds = seeds.into_iter().collect::<Option<Vec<_>>>();
        Ok(SwitchingKey { parts, a_seeds })
    }
    fn finish(self) -> Result<(), CkksError> {
        if self.pos != self.buf.len() {
            return Err(bad(format!(
                "{} trailing bytes after the object",
                self.buf.len() - self.pos
            )));
        }
        Ok(())
    }
}

/// Serialize a ciphertext (every part in full).
pub fn ciphertext_to_bytes(ctx: &CkksContext, ct: &Ciphertext) -> Vec<u8> {
    let mut w = Writer::new(ctx, Kind::Ciphertext);
    w.u32(ct.level as u32);
    w.u64(ct.scale.to_bits());
    w.u32(ct.parts.len() as u32);
    w.buf.push(0);
    for p in &ct.parts {
        w.poly(p);
    }
    w.buf
}

/// Serialize a seed-compressed fresh ciphertext: c0 and the 32-byte seed
/// of `a` (read back by [`ciphertext_from_bytes`], which expands it).
pub fn seeded_ciphertext_to_bytes(ctx: &CkksContext, ct: &SeededCiphertext) -> Vec<u8> {
    let mut w = Writer::new(ctx, Kind::Ciphertext);
    w.u32(ct.level as u32);
    w.u64(ct.scale.to_bits());
    w.u32(2);
    w.buf.push(1);
    w.poly(&ct.c0);
    w.buf.extend_from_slice(&ct.seed);
    w.buf
}

/// Read a ciphertext serialized under the same parameters (in full or
/// seed-compressed), validated.
pub fn ciphertext_from_bytes(ctx: &CkksContext, bytes: &[u8]) -> Result<Ciphertext, CkksError> {
    let mut r = Reader::new(ctx, bytes, Kind::Ciphertext)?;
    let level = r.u32()? as usize;
    let max = ctx.params().max_level();
    if level > max {
        return Err(bad(format!(
            "ciphertext level {level} above the chain's top level {max}"
        )));
    }
    let scale = f64::from_bits(r.u64()?);
    if !(scale.is_finite() && scale > 0.0) {
        return Err(bad(format!(
            "ciphertext scale {scale} is not a positive number"
        )));
    }
    let parts = r.u32()? as usize;
    if !(2..=3).contains(&parts) {
        return Err(bad(format!(
            "ciphertext has {parts} parts, expected 2 or 3"
        )));
    }
    let moduli = r.key_moduli[..=level].to_vec();
    let polys = match r.take(1)?[0] {
        0 => (0..parts)
            .map(|_| r.poly(&moduli, "ciphertext"))
            .collect::<Result<Vec<_>, _>>()?,
        1 if parts == 2 => {
            let c0 = r.poly(&moduli, "ciphertext")?;
            let seed = r.seed()?;
            vec![c0, expand_uniform(&moduli, &seed)]
        }
        f => {
            return Err(bad(format!(
                "ciphertext form {f} with {parts} parts (0: full, 1: seeded with 2 parts)"
            )));
        }
    };
    r.finish()?;
    Ok(Ciphertext {
        parts: polys,
        level,
        scale,
    })
}

/// Serialize a public key.
pub fn public_key_to_bytes(ctx: &CkksContext, pk: &PublicKey) -> Vec<u8> {
    let mut w = Writer::new(ctx, Kind::PublicKey);
    w.poly(&pk.b);
    w.uniform(&pk.a, pk.a_seed.as_ref());
    w.buf
}

/// Read a public key serialized under the same parameters, validated.
pub fn public_key_from_bytes(ctx: &CkksContext, bytes: &[u8]) -> Result<PublicKey, CkksError> {
    let mut r = Reader::new(ctx, bytes, Kind::PublicKey)?;
    let m = r.key_moduli[..r.q_len].to_vec();
    let b = r.poly(&m, "public key")?;
    let (a, a_seed) = r.uniform(&m, "public key")?;
    r.finish()?;
    Ok(PublicKey { b, a, a_seed })
}

/// Serialize a relinearization key.
pub fn relinearization_key_to_bytes(ctx: &CkksContext, rk: &RelinearizationKey) -> Vec<u8> {
    let mut w = Writer::new(ctx, Kind::RelinearizationKey);
    w.switching_key(&rk.0);
    w.buf
}

/// Read a relinearization key serialized under the same parameters, validated.
pub fn relinearization_key_from_bytes(
    ctx: &CkksContext,
    bytes: &[u8],
) -> Result<RelinearizationKey, CkksError> {
    let mut r = Reader::new(ctx, bytes, Kind::RelinearizationKey)?;
    let k = r.switching_key("relinearization key", None)?;
    r.finish()?;
    Ok(RelinearizationKey(k))
}

/// Serialize Galois keys (sorted by Galois element).
pub fn galois_keys_to_bytes(ctx: &CkksContext, gk: &GaloisKeys) -> Vec<u8> {
    let mut w = Writer::new(ctx, Kind::GaloisKeys);
    let elements = gk.elements();
    w.u32(elements.len() as u32);
    for e in elements {
        w.u64(e as u64);
        if let Some(k) = gk.keys.get(&e) {
            w.switching_key(k);
        }
    }
    w.buf
}

/// Read Galois keys serialized under the same parameters, validated (each
/// Galois element odd, below 2N and listed once).
pub fn galois_keys_from_bytes(ctx: &CkksContext, bytes: &[u8]) -> Result<GaloisKeys, CkksError> {
    let mut r = Reader::new(ctx, bytes, Kind::GaloisKeys)?;
    let count = r.u32()? as usize;
    let two_n = 2 * r.n as u64;
    let mut keys = HashMap::new();
    for _ in 0..count {
        let e = r.u64()?;
        if e % 2 == 0 || e >= two_n {
            return Err(bad(format!("Galois element {e} is not odd and below 2N")));
        }
        let n = r.n as u64;
        // (Z/2N)* has order N: e^-1 = e^(N-1) mod 2N.
        let e_inv = super::math::pow_mod(e, n - 1, 2 * n) as usize;
        let k = r.switching_key("Galois key", Some(e_inv))?;
        if keys.insert(e as usize, k).is_some() {
            return Err(bad(format!("Galois element {e} listed twice")));
        }
    }
    r.finish()?;
    Ok(GaloisKeys { keys })
}

/// Serialize sparse-secret encapsulation keys: the Hamming weight, then
/// the key to the sparse secret (its `b` limbs above `q_0` are zero) and
/// the key back, uniform parts as seeds when known.
pub fn encapsulation_keys_to_bytes(ctx: &CkksContext, keys: &EncapsulationKeys) -> Vec<u8> {
    let mut w = Writer::new(ctx, Kind::EncapsulationKeys);
    w.u64(keys.hamming_weight() as u64);
    w.switching_key(&keys.to_sparse);
    w.switching_key(&keys.to_dense);
    w.buf
}

/// Read encapsulation keys serialized under the same parameters, validated:
/// the Hamming weight in 1..=N, and the key to the sparse secret zero on
/// every limb of `b` above `q_0` (a key under the sparse secret over the
/// whole chain would be an RLWE sample at a modulus its security does not
/// cover; such a key is refused).
pub fn encapsulation_keys_from_bytes(
    ctx: &CkksContext,
    bytes: &[u8],
) -> Result<EncapsulationKeys, CkksError> {
    let mut r = Reader::new(ctx, bytes, Kind::EncapsulationKeys)?;
    let h = r.u64()?;
    if h == 0 || h > r.n as u64 {
        return Err(bad(format!(
            "encapsulation keys: Hamming weight {h}, expected 1..={}",
            r.n
        )));
    }
    let to_sparse = r.switching_key("encapsulation key to the sparse secret", None)?;
    let q_len = r.q_len;
    for (d, (b, _)) in to_sparse.parts.iter().enumerate() {
        if let Some(j) = (1..q_len).find(|&j| (0..r.n).any(|i| b.limbs[j].get(i) != 0)) {
            return Err(bad(format!(
                "encapsulation key to the sparse secret: digit {d} has a nonzero limb {j} above q_0 (it may only exist modulo q_0 · P)"
            )));
        }
    }
    let to_dense = r.switching_key("encapsulation key to the dense secret", None)?;
    r.finish()?;
    Ok(EncapsulationKeys::from_parts(
        to_sparse, to_dense, h as usize,
    ))
}

/// Size in bytes of a serialized ciphertext (in full), computed without
/// serializing.
pub fn ciphertext_size(ctx: &CkksContext, ct: &Ciphertext) -> usize {
    let p = ctx.params();
    let header = 8 + 4 + 1 + 8 + 4 + 8 * (p.q().len() + p.special_primes().len()) + 4;
    let poly = |p: &RnsPoly| 4 + 1 + p.limbs.iter().map(|l| l.len() * 8).sum::<usize>();
    header + 4 + 8 + 4 + 1 + ct.parts.iter().map(poly).sum::<usize>()
}

/// Exact sizes of serialized objects under given parameters, computed
/// without any object: what a server bounds request bodies by before it
/// reads a byte, and what a client bounds a response by.
pub mod sizes {
    use super::CkksParameters;

    fn header(p: &CkksParameters) -> usize {
        8 + 4 + 1 + 8 + 4 + 8 * (p.q().len() + p.special_primes().len()) + 4
    }
    fn poly(p: &CkksParameters, limbs: usize) -> usize {
        4 + 1 + limbs * p.n() * 8
    }
    fn uniform(p: &CkksParameters, limbs: usize, seeded: bool) -> usize {
        1 + if seeded { 32 } else { poly(p, limbs) }
    }
    fn key_limbs(p: &CkksParameters) -> usize {
        p.q().len() + p.special_primes().len()
    }
    fn switching_key(p: &CkksParameters, seeded: bool) -> usize {
        4 + p.dnum() * (poly(p, key_limbs(p)) + uniform(p, key_limbs(p), seeded))
    }

    /// A ciphertext of `parts` parts at `level`, every part in full.
    pub fn ciphertext(p: &CkksParameters, level: usize, parts: usize) -> usize {
        header(p) + 4 + 8 + 4 + 1 + parts * poly(p, level + 1)
    }

    /// A fresh two-part ciphertext at `level` whose uniform part is its seed.
    pub fn seeded_ciphertext(p: &CkksParameters, level: usize) -> usize {
        header(p) + 4 + 8 + 4 + 1 + poly(p, level + 1) + 32
    }

    /// A public key (its uniform part as a seed when `seeded`).
    pub fn public_key(p: &CkksParameters, seeded: bool) -> usize {
        let l = p.q().len();
        header(p) + poly(p, l) + uniform(p, l, seeded)
    }

    /// A relinearization key (uniform parts as seeds when `seeded`).
    pub fn relinearization_key(p: &CkksParameters, seeded: bool) -> usize {
        header(p) + switching_key(p, seeded)
    }

    /// `count` Galois keys (uniform parts as seeds when `seeded`).
    pub fn galois_keys(p: &CkksParameters, count: usize, seeded: bool) -> usize {
        header(p) + 4 + count * (8 + switching_key(p, seeded))
    }

    /// Sparse-secret encapsulation keys (uniform parts as seeds when `seeded`).
    pub fn encapsulation_keys(p: &CkksParameters, seeded: bool) -> usize {
        header(p) + 8 + 2 * switching_key(p, seeded)
    }
}
