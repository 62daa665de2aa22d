//! Exact encrypted comparison with TFHE-rs, the reference point for the
//! approximate (CKKS polynomial) sign functions of the P2 study.
//!
//! Real values in a bounded range are quantised to fixed point
//! (`round(x * 2^frac_bits)`) and encrypted as `FheInt16`; a comparison is
//! then exact on the quantised values, at the price of a programmable
//! bootstrapping per comparison. This module measures key generation,
//! one comparison, a batch of comparisons (in parallel with rayon) and
//! checks every result against plaintext.

use rayon::prelude::*;
use std::time::Instant;
use tfhe::prelude::*;
use tfhe::{ClientKey, ConfigBuilder, FheInt16, ServerKey, generate_keys, set_server_key};

/// Errors of the exact-comparison experiment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExactError {
    /// A value cannot be represented in the fixed-point format.
    #[error(
        "cannot quantise {value} with {frac_bits} fractional bits into a signed 16-bit integer (|x| must stay below {limit})"
    )]
    OutOfRange {
        /// The value.
        value: f64,
        /// Fractional bits of the format.
        frac_bits: u32,
        /// The largest representable magnitude.
        limit: f64,
    },
    /// The fixed-point format is invalid.
    #[error("invalid fixed-point format: {frac_bits} fractional bits (allowed 0..=14)")]
    BadFormat {
        /// The requested fractional bits.
        frac_bits: u32,
    },
    /// TFHE-rs refused an operation.
    #[error("TFHE-rs failed during {op}: {detail}")]
    Tfhe {
        /// The operation.
        op: &'static str,
        /// TFHE-rs's message.
        detail: String,
    },
}

/// Fixed-point quantisation of reals into `i16` with `frac_bits` fractional bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedPoint {
    frac_bits: u32,
}

impl FixedPoint {
    /// A format with `frac_bits` fractional bits (0..=14).
    pub fn new(frac_bits: u32) -> Result<Self, ExactError> {
        if frac_bits > 14 {
            return Err(ExactError::BadFormat { frac_bits });
        }
        Ok(Self { frac_bits })
    }

    /// Fractional bits.
    pub fn frac_bits(&self) -> u32 {
        self.frac_bits
    }

    /// The largest magnitude such that differences of two values still fit
    /// in `i16` (so `a - b` can be encrypted-compared with zero).
    pub fn limit(&self) -> f64 {
        f64::from(i16::MAX / 2) / f64::from(1u32 << self.frac_bits)
    }

    /// Quantise `x` (round to nearest).
    pub fn quantise(&self, x: f64) -> Result<i16, ExactError> {
        let limit = self.limit();
        if !x.is_finite() || x.abs() > limit {
            return Err(ExactError::OutOfRange {
                value: x,
                frac_bits: self.frac_bits,
                limit,
            });
        }
        Ok((x * f64::from(1u32 << self.frac_bits)).round() as i16)
    }
}

impl Default for FixedPoint {
    /// 12 fractional bits: resolution 2.4e-4, range |x| <= 3.99.
    fn default() -> Self {
        Self { frac_bits: 12 }
    }
}

/// One checked comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct ComparisonCase {
    /// Left operand.
    pub a: f64,
    /// Right operand.
    pub b: f64,
    /// `a > b` on the quantised values, in plaintext.
    pub expected: bool,
    /// `a > b` decrypted from the encrypted comparison.
    pub decrypted: bool,
}

/// Timings and exactness of the TFHE comparison experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct ExactComparisonReport {
    /// Fixed-point fractional bits used.
    pub frac_bits: u32,
    /// Client + server key generation, milliseconds.
    pub keygen_ms: f64,
    /// Encryption of one value, milliseconds (mean).
    pub encrypt_ms: f64,
    /// One encrypted `a > b`, milliseconds (median over the single runs).
    pub compare_ms: f64,
    /// Number of comparisons in the parallel batch.
    pub batch_size: usize,
    /// Wall time of the batch divided by its size, milliseconds.
    pub batch_ms_per_comparison: f64,
    /// sign(enc(1) - enc(0.5)) decrypted: +1, 0 or -1 (exact: +1).
    pub value_1_minus_05: f64,
    /// Every comparison that was checked.
    pub cases: Vec<ComparisonCase>,
}

impl ExactComparisonReport {
    /// Whether every encrypted comparison agreed with plaintext.
    pub fn all_exact(&self) -> bool {
        self.cases.iter().all(|c| c.expected == c.decrypted)
    }
}

/// The edge cases every run checks: equal values, negatives, zero, the
/// extremes of [-1, 1] and neighbours one quantum apart.
pub fn edge_cases(fmt: FixedPoint) -> Vec<(f64, f64)> {
    let q = 1.0 / f64::from(1u32 << fmt.frac_bits());
    vec![
        (1.0, 0.5),
        (0.5, 1.0),
        (0.25, 0.25),
        (-0.25, -0.25),
        (-1.0, 1.0),
        (1.0, -1.0),
        (-0.5, -0.75),
        (0.0, 0.0),
        (q, 0.0),
        (0.0, q),
        (-q, 0.0),
        (1.0, 1.0 - q),
    ]
}

/// Sign of an encrypted difference, decrypted: +1, 0 or -1.
fn encrypted_sign(a: &FheInt16, b: &FheInt16, ck: &ClientKey) -> f64 {
    let d = a - b;
    let gt: bool = d.gt(0i16).decrypt(ck);
    let lt: bool = d.lt(0i16).decrypt(ck);
    match (gt, lt) {
        (true, _) => 1.0,
        (_, true) => -1.0,
        _ => 0.0,
    }
}

fn encrypt(x: i16, ck: &ClientKey) -> Result<FheInt16, ExactError> {
    FheInt16::try_encrypt(x, ck).map_err(|e| ExactError::Tfhe {
        op: "encrypt",
        detail: e.to_string(),
    })
}

/// Run the exact-comparison experiment: key generation, `single_runs`
/// timed single comparisons over the edge cases, and a parallel batch of
/// `batch` comparisons of `pairs` (cycled) — every result checked.
pub fn run_exact_comparison(
    fmt: FixedPoint,
    pairs: &[(f64, f64)],
    single_runs: usize,
    batch: usize,
) -> Result<ExactComparisonReport, ExactError> {
    let edge = edge_cases(fmt);
    let pairs = if pairs.is_empty() { &edge[..] } else { pairs };
    let quantised: Vec<(i16, i16)> = pairs
        .iter()
        .map(|&(a, b)| Ok((fmt.quantise(a)?, fmt.quantise(b)?)))
        .collect::<Result<_, ExactError>>()?;

    let t = Instant::now();
    let config = ConfigBuilder::default().build();
    let (ck, sk): (ClientKey, ServerKey) = generate_keys(config);
    let keygen_ms = ms(t);
    set_server_key(sk.clone());

    let t = Instant::now();
    let encrypted: Vec<(FheInt16, FheInt16)> = quantised
        .iter()
        .map(|&(a, b)| Ok((encrypt(a, &ck)?, encrypt(b, &ck)?)))
        .collect::<Result<_, ExactError>>()?;
    let encrypt_ms = ms(t) / (2 * quantised.len()) as f64;

    let mut cases = Vec::new();
    let mut single = Vec::new();
    for k in 0..single_runs.max(1) {
        let i = k % encrypted.len();
        let (ea, eb) = &encrypted[i];
        let t = Instant::now();
        let r = ea.gt(eb);
        single.push(ms(t));
        let decrypted: bool = r.decrypt(&ck);
        let (qa, qb) = quantised[i];
        cases.push(ComparisonCase {
            a: pairs[i].0,
            b: pairs[i].1,
            expected: qa > qb,
            decrypted,
        });
    }
    single.sort_by(f64::total_cmp);
    let compare_ms = single[single.len() / 2];

    let one = encrypt(fmt.quantise(1.0)?, &ck)?;
    let half = encrypt(fmt.quantise(0.5)?, &ck)?;
    let value_1_minus_05 = encrypted_sign(&one, &half, &ck);

    let idx: Vec<usize> = (0..batch).map(|k| k % encrypted.len()).collect();
    let t = Instant::now();
    let results: Vec<(usize, tfhe::FheBool)> = idx
        .par_iter()
        .map_init(
            || set_server_key(sk.clone()),
            |_, &i| (i, encrypted[i].0.gt(&encrypted[i].1)),
        )
        .collect();
    let batch_ms_per_comparison = if batch > 0 { ms(t) / batch as f64 } else { 0.0 };
    for (i, r) in results {
        let (qa, qb) = quantised[i];
        cases.push(ComparisonCase {
            a: pairs[i].0,
            b: pairs[i].1,
            expected: qa > qb,
            decrypted: r.decrypt(&ck),
        });
    }
    Ok(ExactComparisonReport {
        frac_bits: fmt.frac_bits(),
        keygen_ms,
        encrypt_ms,
        compare_ms,
        batch_size: batch,
        batch_ms_per_comparison,
        value_1_minus_05,
        cases,
    })
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_and_range() {
        let f = FixedPoint::default();
        assert_eq!(f.quantise(1.0).expect("q"), 4096);
        assert_eq!(f.quantise(-0.5).expect("q"), -2048);
        assert!(matches!(
            f.quantise(4.0),
            Err(ExactError::OutOfRange { .. })
        ));
        assert!(f.quantise(f64::NAN).is_err());
        assert!(matches!(
            FixedPoint::new(15),
            Err(ExactError::BadFormat { frac_bits: 15 })
        ));
    }
}
