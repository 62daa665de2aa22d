//! CKKS parameters: one literal (ring degree, SEAL-style modulus chain bit
//! sizes, default scale, key-switching digits) validated into immutable
//! parameters with their primes, checked against the HE-standard 128-bit
//! bounds over log2(QP), the special primes included.
//!
//! Key switching is hybrid: the special modulus P is the product of the
//! chain's last `special_primes` primes, and the ciphertext primes
//! q_0..q_L split into `dnum` digits of consecutive primes. Invariants:
//! every digit's modulus is at most P (else key switching divides by too
//! little and returns noise), and a digit never spans fewer than one prime.

use super::error::CkksError;
use super::math::{ntt_primes, word_bytes};

/// HE-standard (homomorphicencryption.org) 128-bit classical bounds on
/// log2(QP) for ternary secrets, indexed by log2(N) - 10 (N = 1024..32768).
pub const HE_STANDARD_128: [(usize, u32); 6] = [
    (1024, 27),
    (2048, 54),
    (4096, 109),
    (8192, 218),
    (16384, 438),
    (32768, 881),
];

/// The 128-bit classical bound on log2(QP) at N = 2^16 for ternary
/// secrets, which the 2018 HE standard does not tabulate: 1,747 bits, from
/// Bossuat et al., "Security Guidelines for Implementing Homomorphic
/// Encryption" (IACR ePrint 2024/463), the value OpenFHE's
/// `HEStd_128_classic` table uses.
pub const GUIDELINES_128_N16: (usize, u32) = (65536, 1747);

/// The 128-bit bound on log2(QP) for ring degree `n`, if one is published:
/// the HE standard's ([`HE_STANDARD_128`]) up to 2^15, the 2024 security
/// guidelines' at 2^16 ([`GUIDELINES_128_N16`]).
pub fn he_standard_bound(n: usize) -> Option<u32> {
    HE_STANDARD_128
        .iter()
        .chain(std::iter::once(&GUIDELINES_128_N16))
        .find(|(m, _)| *m == n)
        .map(|(_, b)| *b)
}

/// The unvalidated description of a parameter set, in SEAL/TenSEAL terms.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CkksParametersLiteral {
    /// log2 of the ring degree N (10..=16).
    pub log_n: u32,
    /// Bit sizes of the chain: base prime, one prime per rescale level, special prime.
    pub coeff_mod_bit_sizes: Vec<u32>,
    /// Default scale = 2^scale_bits.
    pub scale_bits: u32,
    /// Accept a chain above the HE-standard bound (experiments only). Never
    /// read from or written to serialized parameters: the opt-out is the
    /// caller's argument ([`crate::serial::parameters_from_json`]).
    #[serde(skip)]
    pub allow_insecure: bool,
    /// How many of the chain's last sizes are special primes (their product
    /// P is the key-switching modulus): 1 is SEAL's single special prime.
    #[serde(default = "one")]
    pub special_primes: usize,
    /// Key-switching digits (dnum): the ciphertext primes q_0..q_L split
    /// into this many groups of ceil((L+1)/dnum) consecutive primes. `None`
    /// is one digit per ciphertext prime (SEAL's choice). Fewer digits mean
    /// fewer NTTs and a shorter inner product per key switch, but each
    /// digit's modulus must stay at most P.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnum: Option<usize>,
}

fn one() -> usize {
    1
}

impl CkksParametersLiteral {
    /// A literal with SEAL's key switching (one special prime, one digit
    /// per ciphertext prime), secure sets only.
    pub fn new(log_n: u32, coeff_mod_bit_sizes: Vec<u32>, scale_bits: u32) -> Self {
        Self {
            log_n,
            coeff_mod_bit_sizes,
            scale_bits,
            allow_insecure: false,
            special_primes: 1,
            dnum: None,
        }
    }

    /// The same literal with hybrid key switching: the last
    /// `special_primes` sizes form P, and the ciphertext primes split into
    /// `dnum` digits.
    pub fn with_key_switching(mut self, special_primes: usize, dnum: usize) -> Self {
        self.special_primes = special_primes;
        self.dnum = Some(dnum);
        self
    }
}

/// Most primes a chain may have (base + levels + special prime): 64 covers
/// every HE-standard set up to N = 2^16 with primes of 20 bits or more.
pub const MAX_CHAIN_PRIMES: usize = 64;

/// Validated CKKS parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct CkksParameters {
    literal: CkksParametersLiteral,
    n: usize,
    q: Vec<u64>,
    /// The special primes p_0..p_{k-1} (P is their product).
    p: Vec<u64>,
    /// Primes per key-switching digit (alpha).
    digit_primes: usize,
}

impl CkksParameters {
    /// Validate a literal: N a power of two in 2^10..2^16, at least two and
    /// at most [`MAX_CHAIN_PRIMES`] primes (base + special), every size in
    /// 20..=60 bits, the scale below the base prime, the special prime at
    /// least as large as every chain prime (else key switching divides by
    /// too little and returns noise), NTT-friendly primes found, and the
    /// total within the HE-standard bound unless `allow_insecure`.
    ///
    /// Primes: for each size the largest unused NTT-friendly primes below
    /// 2^bits, the special prime taking its pick first, so that it is the
    /// largest prime of its size.
    pub fn new(literal: CkksParametersLiteral) -> Result<Self, CkksError> {
        let bad = |detail: String| CkksError::InvalidParameters { detail };
        if !(10..=16).contains(&literal.log_n) {
            return Err(bad(format!(
                "log2(N) = {} is outside 10..=16",
                literal.log_n
            )));
        }
        let n = 1usize << literal.log_n;
        let bits = &literal.coeff_mod_bit_sizes;
        if bits.len() < 2 {
            return Err(bad(
                "the chain needs at least a base prime and a special prime".into(),
            ));
        }
        if bits.len() > MAX_CHAIN_PRIMES {
            return Err(bad(format!(
                "the chain has {} primes, at most {MAX_CHAIN_PRIMES} are supported",
                bits.len()
            )));
        }
        if let Some(b) = bits.iter().find(|b| !(20..=60).contains(*b)) {
            return Err(bad(format!("prime size {b} bits is outside 20..=60")));
        }
        if literal.scale_bits == 0 || literal.scale_bits >= bits[0] {
            return Err(bad(format!(
                "scale 2^{} must be below the base prime (2^{})",
                literal.scale_bits, bits[0]
            )));
        }
        let total: u32 = bits.iter().sum();
        let bound = he_standard_bound(n);
        match bound {
            Some(b) if total > b && !literal.allow_insecure => {
                return Err(CkksError::InsecureParameters {
                    n,
                    total_bits: total,
                    bound: b,
                });
            }
            None if !literal.allow_insecure => {
                return Err(bad(format!(
                    "N = {n} has no HE-standard 128-bit bound in the table"
                )));
            }
            _ => {}
        }
        let k = literal.special_primes;
        if k == 0 || k >= bits.len() {
            return Err(bad(format!(
                "{k} special primes in a chain of {} sizes: at least one, and at least one ciphertext prime",
                bits.len()
            )));
        }
        let (chain_bits, p_bits) = bits.split_at(bits.len() - k);
        let levels = chain_bits.len();
        let dnum = literal.dnum.unwrap_or(levels);
        if dnum == 0 || dnum > levels {
            return Err(bad(format!(
                "dnum = {dnum} key-switching digits for {levels} ciphertext primes: need 1..={levels}"
            )));
        }
        let digit_primes = levels.div_ceil(dnum);
        if digit_primes * (dnum - 1) >= levels {
            return Err(bad(format!(
                "dnum = {dnum} digits of {digit_primes} primes leave the last digit empty for {levels} ciphertext primes; use dnum = {}",
                levels.div_ceil(digit_primes)
            )));
        }
        // Sizes first (before any prime search): the primes of a size lie
        // just below 2^bits, so a digit of more bits than P cannot fit.
        let p_total: u32 = p_bits.iter().sum();
        if let Some(big) = chain_bits
            .chunks(digit_primes)
            .map(|d| d.iter().sum::<u32>())
            .find(|&d| d > p_total)
        {
            return Err(CkksError::SpecialPrimeTooSmall {
                special_bits: p_total,
                chain_bits: big,
            });
        }
        // The special primes pick first: each is the largest of its size.
        let order: Vec<u32> = p_bits.iter().chain(chain_bits).copied().collect();
        let primes = ntt_primes(&order, n).ok_or_else(|| {
            bad(format!(
                "not enough NTT-friendly primes of the requested sizes for N = {n}"
            ))
        })?;
        let (p, q) = primes.split_at(k);
        let log2 = |v: &[u64]| v.iter().map(|&x| (x as f64).log2()).sum::<f64>();
        let log_p = log2(p);
        if let Some(big) = q.chunks(digit_primes).map(log2).find(|&d| d > log_p) {
            return Err(CkksError::SpecialPrimeTooSmall {
                special_bits: log_p.ceil() as u32,
                chain_bits: big.ceil() as u32,
            });
        }
        Ok(Self {
            n,
            q: q.to_vec(),
            p: p.to_vec(),
            digit_primes,
            literal,
        })
    }

    /// The literal these parameters were built from.
    pub fn literal(&self) -> &CkksParametersLiteral {
        &self.literal
    }
    /// Ring degree N.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Number of slots N/2.
    pub fn slots(&self) -> usize {
        self.n / 2
    }
    /// The ciphertext primes q_0 (base) .. q_L.
    pub fn q(&self) -> &[u64] {
        &self.q
    }
    /// The special primes whose product P is the key-switching modulus.
    pub fn special_primes(&self) -> &[u64] {
        &self.p
    }
    /// Bytes in memory of one ciphertext or plaintext polynomial at
    /// `level` (over q_0..q_level): 4 per residue of a prime below 2^32, 8
    /// otherwise (every limb is stored in its prime's word width).
    pub fn poly_bytes(&self, level: usize) -> usize {
        self.q
            .iter()
            .take(level + 1)
            .map(|&q| word_bytes(q) * self.n)
            .sum()
    }
    /// Bytes in memory of one polynomial of a key-switching key (over
    /// q_0..q_L and the special primes), in the word widths of
    /// [`Self::poly_bytes`].
    pub fn key_poly_bytes(&self) -> usize {
        self.q
            .iter()
            .chain(&self.p)
            .map(|&q| word_bytes(q) * self.n)
            .sum()
    }
    /// Number of key-switching digits (dnum) at the top level.
    pub fn dnum(&self) -> usize {
        self.q.len().div_ceil(self.digit_primes)
    }
    /// Ciphertext primes per key-switching digit (alpha).
    pub fn digit_primes(&self) -> usize {
        self.digit_primes
    }
    /// The key-switching digits of a ciphertext at `level`: ranges of
    /// consecutive prime indices covering 0..=level (the last may be short).
    pub fn digits(&self, level: usize) -> Vec<std::ops::Range<usize>> {
        let end = level.min(self.max_level()) + 1;
        (0..end)
            .step_by(self.digit_primes)
            .map(|s| s..(s + self.digit_primes).min(end))
            .collect()
    }
    /// Highest level L (number of rescales available).
    pub fn max_level(&self) -> usize {
        self.q.len() - 1
    }
    /// log2 of the ciphertext modulus at `level` (q_0 · … · q_level), summed
    /// prime by prime from q_0: the room a ciphertext at that level has
    /// for its scale and its values.
    pub fn modulus_bits(&self, level: usize) -> f64 {
        self.q
            .iter()
            .take(level + 1)
            .map(|&q| (q as f64).log2())
            .sum()
    }
    /// The prime a rescale at `level` divides by (q_level), as a float, for
    /// exact scale bookkeeping; `None` above the top level.
    pub fn rescale_prime(&self, level: usize) -> Option<f64> {
        self.q.get(level).map(|&q| q as f64)
    }
    /// Whether `other` has the same ring, ciphertext primes and special
    /// primes (ciphertexts and keys of one are valid for the other).
    pub fn same_chain(&self, other: &CkksParameters) -> bool {
        self.n == other.n && self.q == other.q && self.p == other.p
    }
    /// The security this set was validated for.
    pub fn security(&self) -> Security {
        if self.is_insecure() {
            Security::Insecure
        } else {
            Security::Standard128
        }
    }
    /// Default scale 2^scale_bits.
    pub fn default_scale(&self) -> f64 {
        2f64.powi(self.literal.scale_bits as i32)
    }
    /// Total bits of the chain (log2 QP as requested).
    pub fn total_bits(&self) -> u32 {
        self.literal.coeff_mod_bit_sizes.iter().sum()
    }
    /// Whether the set exceeds the HE-standard bound (only possible with `allow_insecure`).
    pub fn is_insecure(&self) -> bool {
        he_standard_bound(self.n).is_none_or(|b| self.total_bits() > b)
    }
    /// A one-line description, e.g. `N=8192, [31, 26x6, 31] (218 bits), scale 2^26, 128-bit secure`.
    pub fn describe(&self) -> String {
        let bits = &self.literal.coeff_mod_bit_sizes;
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < bits.len() {
            let mut j = i;
            while j + 1 < bits.len() && bits[j + 1] == bits[i] {
                j += 1;
            }
            let run = j - i + 1;
            parts.push(if run > 2 {
                format!("{}x{run}", bits[i])
            } else {
                (i..=j)
                    .map(|k| bits[k].to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            i = j + 1;
        }
        let layout = if self.p.len() == 1 && self.digit_primes == 1 {
            String::new()
        } else {
            format!(
                ", dnum {} ({} primes per digit, P of {} primes)",
                self.dnum(),
                self.digit_primes,
                self.p.len()
            )
        };
        format!(
            "N={}, [{}] ({} bits){layout}, scale 2^{}, {}",
            self.n,
            parts.join(", "),
            self.total_bits(),
            self.literal.scale_bits,
            if self.is_insecure() {
                "INSECURE (above the HE-standard 128-bit bound)"
            } else {
                "128-bit secure (HE standard)"
            }
        )
    }
}

/// The security a parameter set was validated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Security {
    /// Within the HE standard's 128-bit classical bound on log2(QP) for
    /// ternary secrets ([`HE_STANDARD_128`]).
    Standard128,
    /// Above that bound: tests and experiments only (`allow_insecure`).
    Insecure,
}

/// A modulus chain of `first`, then `count` middle primes of `mid` bits,
/// then `last` (SEAL's `[first, mid x count, last]`).
pub fn chain_bits(first: u32, mid: u32, count: usize, last: u32) -> Vec<u32> {
    let mut v = vec![first];
    v.extend(std::iter::repeat_n(mid, count));
    v.push(last);
    v
}

/// A named parameter set of SPEC §5: it carries its ring, chain, scale and
/// security (every preset is 128-bit secure under the HE standard, checked
/// by the tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// CNN1-X2: N=8192, [31, 26x6, 31], scale 2^26 (also the P2 comparison study's set).
    Cnn1X2,
    /// CNN1/CNN2-SLAF: N=16384, [40, 26x11, 40], scale 2^26.
    Slaf,
    /// SLAF-P (ReLU form): N=16384, [40, 25x14, 40], scale 2^25.
    SlafP,
}

impl Preset {
    /// Every preset, in the order `--help` lists them.
    pub const ALL: [Preset; 3] = [Preset::Cnn1X2, Preset::Slaf, Preset::SlafP];

    /// Its name: `cnn1-x2`, `slaf` or `slaf-p`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cnn1X2 => "cnn1-x2",
            Self::Slaf => "slaf",
            Self::SlafP => "slaf-p",
        }
    }

    /// The preset called `name` ([`Self::name`]), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Its literal: ring, chain and scale, SEAL's key switching.
    pub fn literal(self) -> CkksParametersLiteral {
        let (log_n, bits, scale_bits) = match self {
            Self::Cnn1X2 => (13, chain_bits(31, 26, 6, 31), 26),
            Self::Slaf => (14, chain_bits(40, 26, 11, 40), 26),
            Self::SlafP => (14, chain_bits(40, 25, 14, 40), 25),
        };
        CkksParametersLiteral::new(log_n, bits, scale_bits)
    }

    /// The security it is validated for.
    pub fn security(self) -> Security {
        Security::Standard128
    }

    /// The validated parameters.
    pub fn params(self) -> CkksParameters {
        match CkksParameters::new(self.literal()) {
            Ok(p) => p,
            // The presets are fixed literals checked by the tests.
            Err(e) => unreachable!("preset {} is valid: {e}", self.name()),
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The parameter sets of SPEC §5 as functions ([`Preset::params`]).
pub mod presets {
    use super::*;

    /// CNN1-X2: N=8192, [31, 26x6, 31], scale 2^26.
    pub fn cnn1_x2() -> CkksParameters {
        Preset::Cnn1X2.params()
    }
    /// CNN1/CNN2-SLAF: N=16384, [40, 26x11, 40], scale 2^26.
    pub fn slaf() -> CkksParameters {
        Preset::Slaf.params()
    }
    /// SLAF-P (ReLU form): N=16384, [40, 25x14, 40], scale 2^25.
    pub fn slaf_p() -> CkksParameters {
        Preset::SlafP.params()
    }
    /// The P2 comparison study: N=8192, [31, 26x6, 31], scale 2^26.
    pub fn comparison() -> CkksParameters {
        cnn1_x2()
    }
}
