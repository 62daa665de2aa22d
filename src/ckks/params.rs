//! CKKS parameters: one literal (ring degree, SEAL-style modulus chain bit
//! sizes, default scale) validated into immutable parameters with their
//! primes, checked against the HE-standard 128-bit bounds.

use super::error::CkksError;
use super::math::ntt_primes;

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
    /// caller's argument ([`crate::ckks::serial::parameters_from_json`]).
    #[serde(skip)]
    pub allow_insecure: bool,
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
    p: u64,
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
        let bound = HE_STANDARD_128
            .iter()
            .find(|(m, _)| *m == n)
            .map(|(_, b)| *b);
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
        let (chain_bits, p_bits) = bits.split_at(bits.len() - 1);
        let max_chain = chain_bits.iter().copied().max().unwrap_or(0);
        if p_bits[0] < max_chain {
            return Err(CkksError::SpecialPrimeTooSmall {
                special_bits: p_bits[0],
                chain_bits: max_chain,
            });
        }
        // The special prime picks first: it is the largest of its size.
        let order: Vec<u32> = p_bits.iter().chain(chain_bits).copied().collect();
        let primes = ntt_primes(&order, n).ok_or_else(|| {
            bad(format!(
                "not enough NTT-friendly primes of the requested sizes for N = {n}"
            ))
        })?;
        let (p, q) = primes.split_at(1);
        let p = p[0];
        if let Some(&big) = q.iter().find(|&&qi| qi > p) {
            return Err(CkksError::SpecialPrimeTooSmall {
                special_bits: 64 - p.leading_zeros(),
                chain_bits: 64 - big.leading_zeros(),
            });
        }
        Ok(Self {
            n,
            q: q.to_vec(),
            p,
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
    /// The special prime P (key switching only).
    pub fn p(&self) -> u64 {
        self.p
    }
    /// Highest level L (number of rescales available).
    pub fn max_level(&self) -> usize {
        self.q.len() - 1
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
        HE_STANDARD_128
            .iter()
            .find(|(m, _)| *m == self.n)
            .is_none_or(|(_, b)| self.total_bits() > *b)
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
        format!(
            "N={}, [{}] ({} bits), scale 2^{}, {}",
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

/// The parameter sets of SPEC §5.
pub mod presets {
    use super::*;

    fn chain(first: u32, mid: u32, count: usize, last: u32) -> Vec<u32> {
        let mut v = vec![first];
        v.extend(std::iter::repeat_n(mid, count));
        v.push(last);
        v
    }

    fn build(log_n: u32, bits: Vec<u32>, scale_bits: u32) -> CkksParameters {
        let lit = CkksParametersLiteral {
            log_n,
            coeff_mod_bit_sizes: bits,
            scale_bits,
            allow_insecure: false,
        };
        match CkksParameters::new(lit) {
            Ok(p) => p,
            // The presets are fixed literals checked by the tests.
            Err(e) => unreachable!("preset parameters are valid: {e}"),
        }
    }

    /// CNN1-X2: N=8192, [31, 26x6, 31], scale 2^26.
    pub fn cnn1_x2() -> CkksParameters {
        build(13, chain(31, 26, 6, 31), 26)
    }
    /// CNN1/CNN2-SLAF: N=16384, [40, 26x11, 40], scale 2^26.
    pub fn slaf() -> CkksParameters {
        build(14, chain(40, 26, 11, 40), 26)
    }
    /// SLAF-P (ReLU form): N=16384, [40, 25x14, 40], scale 2^25.
    pub fn slaf_p() -> CkksParameters {
        build(14, chain(40, 25, 14, 40), 25)
    }
    /// The P2 comparison study: N=8192, [31, 26x6, 31], scale 2^26.
    pub fn comparison() -> CkksParameters {
        cnn1_x2()
    }
}
