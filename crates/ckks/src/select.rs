//! Automatic parameter selection: the smallest secure ring for a chain a
//! circuit asks for ([`auto`]), and hybrid key switching for a chain
//! ([`hybrid_key_switching`]). Upper layers say what a circuit needs
//! ([`ChainRequest`]: depth, scale, the bits its outputs need, slots) and
//! never build chains or read primes themselves.
//!
//! Invariants: every set returned is validated by [`CkksParameters::new`]
//! and within the HE-standard 128-bit bound; hybrid key switching keeps the
//! ring, the ciphertext primes and the scale of the set it starts from.

use crate::error::CkksError;
use crate::params::{CkksParameters, CkksParametersLiteral, chain_bits, he_standard_bound};

/// What a circuit needs from a modulus chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainRequest {
    /// Rescale levels the circuit consumes (one middle prime each).
    pub depth: usize,
    /// Bits of each middle prime (the scale).
    pub scale_bits: u32,
    /// Bits the last level must hold for the outputs at their smallest
    /// scale: sets the first prime (between `scale_bits + 5` and 60 bits),
    /// and extra levels below the circuit's when 60 bits are too few.
    pub output_bits: u32,
    /// Slots the layout needs (the ring has N/2).
    pub min_slots: usize,
}

/// The smallest secure parameters for `req`: N from 2^13 (or the smallest
/// ring with `req.min_slots` slots) to 2^16, `req.depth` middle primes of
/// `req.scale_bits` bits, first and special primes of
/// `req.output_bits` clamped to `scale_bits + 5 ..= 60`; outputs that need
/// more than a 60-bit first prime get extra levels below the circuit's.
pub fn auto(req: &ChainRequest) -> Result<CkksParameters, CkksError> {
    let scale_bits = req.scale_bits;
    let need = req.output_bits;
    let edge = need.clamp(scale_bits + 5, 60);
    // A first prime of at most 60 bits cannot hold outputs that large:
    // extra primes below the circuit's levels give the last level the rest.
    let extra = need.saturating_sub(edge).div_ceil(scale_bits) as usize;
    let mut last_err = None;
    // The smallest ring whose N/2 slots hold `min_slots`, from 2^13.
    let first = (13..=16u32)
        .find(|&l| (1usize << (l - 1)) >= req.min_slots)
        .unwrap_or(17);
    for log_n in first..=16u32 {
        let bits = chain_bits(edge, scale_bits, req.depth + extra, edge);
        match CkksParameters::new(CkksParametersLiteral::new(log_n, bits, scale_bits)) {
            Ok(p) => return Ok(p),
            Err(e) => last_err = Some(e),
        }
    }
    Err(CkksError::NoSecureRing {
        total_bits: 2 * edge + scale_bits * (req.depth + extra) as u32,
        slots: req.min_slots,
        reason: last_err.map_or_else(String::new, |e| e.to_string()),
    })
}

/// Size of the special primes [`hybrid_key_switching`] adds: below 2^31,
/// so that their NTTs take `tfhe-ntt`'s 32-bit kernels.
pub const HYBRID_SPECIAL_BITS: u32 = 31;

/// Most special primes [`hybrid_key_switching`] considers.
pub const HYBRID_MAX_SPECIAL: usize = 6;

/// Hybrid key switching for `params`' ring and ciphertext primes (the rule
/// `auto-hybrid` uses): `k` special primes of [`HYBRID_SPECIAL_BITS`] bits
/// in place of the one special prime, and the ciphertext primes in digits
/// of as many consecutive primes as P = the product of the special primes
/// holds (every digit's modulus at most P, which bounds the key-switch
/// noise as with one digit per prime). Among the `k` whose log2(QP) stays
/// within the HE-standard bound of the same N, it takes the one with the
/// fewest NTT-sized passes per key switch, estimated as
/// `(dnum + 2) * (L + 1 + k)` (every digit is lifted to all primes, and
/// the mod-down costs about two passes), and keeps `params` unchanged when
/// no layout beats one digit per prime. The ring, the ciphertext primes,
/// the scale and hence the depth, the precision budget and the logits'
/// headroom are those of `params`.
pub fn hybrid_key_switching(params: &CkksParameters) -> Result<CkksParameters, CkksError> {
    let lit = params.literal();
    let bits = &lit.coeff_mod_bit_sizes;
    let chain = &bits[..bits.len() - lit.special_primes];
    let levels = chain.len();
    let Some(bound) = he_standard_bound(params.n()) else {
        return Ok(params.clone());
    };
    let q_bits: u32 = chain.iter().sum();
    let cost = |dnum: usize, k: usize| (dnum + 2) * (levels + k);
    let mut best: Option<(usize, usize, usize)> = None; // (cost, k, dnum)
    for k in 2..=HYBRID_MAX_SPECIAL {
        let p_bits = HYBRID_SPECIAL_BITS * k as u32;
        if q_bits + p_bits > bound {
            break;
        }
        // The most primes per digit whose every digit fits under P.
        let Some(alpha) = (1..=levels)
            .rev()
            .find(|&a| chain.chunks(a).all(|d| d.iter().sum::<u32>() < p_bits))
        else {
            continue;
        };
        let dnum = levels.div_ceil(alpha);
        if best.is_none_or(|(c, _, _)| cost(dnum, k) < c) {
            best = Some((cost(dnum, k), k, dnum));
        }
    }
    let single = cost(levels, 1);
    let Some((_, k, dnum)) = best.filter(|&(c, _, _)| c < single) else {
        return Ok(params.clone());
    };
    let mut coeff_mod_bit_sizes = chain.to_vec();
    coeff_mod_bit_sizes.extend(std::iter::repeat_n(HYBRID_SPECIAL_BITS, k));
    CkksParameters::new(
        CkksParametersLiteral {
            coeff_mod_bit_sizes,
            ..lit.clone()
        }
        .with_key_switching(k, dnum),
    )
}
