//! The shared, immutable CKKS context: parameters plus one NTT plan per
//! prime and the per-level modulus lists that every other component uses.
//! Each prime's limbs are stored and transformed in 32-bit words where the
//! prime allows ([`NttWords::Auto`]); the word width never changes a
//! residue, only speed and memory.

use super::error::CkksError;
use super::params::CkksParameters;
use super::ring::{Crt, Modulus, NttWords};
use std::sync::Arc;

/// Parameters with their precomputations, shared behind an `Arc`.
pub struct CkksContext {
    params: CkksParameters,
    /// q_0..q_L then the special primes p_0..p_{k-1}.
    moduli: Vec<Arc<Modulus>>,
    /// For each level l: q_0..q_l then p_0..p_{k-1}.
    qp_by_level: Vec<Vec<Arc<Modulus>>>,
    crt: Crt,
}

impl std::fmt::Debug for CkksContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CkksContext({})", self.params.describe())
    }
}

impl CkksContext {
    /// Build the context (NTT plans for every prime, 32-bit words where the
    /// prime allows).
    pub fn new(params: CkksParameters) -> Result<Arc<Self>, CkksError> {
        Self::with_ntt_words(params, NttWords::Auto)
    }

    /// Build the context with a word-width policy for the NTT plans (e.g.
    /// [`NttWords::Only64`] to measure the 64-bit path in the same run).
    pub fn with_ntt_words(params: CkksParameters, words: NttWords) -> Result<Arc<Self>, CkksError> {
        let n = params.n();
        let moduli: Vec<Arc<Modulus>> = params
            .q()
            .iter()
            .chain(params.special_primes())
            .map(|&q| Modulus::with_words(n, q, words).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let l = params.max_level();
        let qp_by_level = (0..=l)
            .map(|lvl| {
                let mut v: Vec<Arc<Modulus>> = moduli[..=lvl].to_vec();
                v.extend(moduli[l + 1..].iter().cloned());
                v
            })
            .collect();
        let crt = Crt::new(params.q());
        Ok(Arc::new(Self {
            params,
            moduli,
            qp_by_level,
            crt,
        }))
    }

    /// The word width (32 or 64) of each prime's limbs and NTT kernels,
    /// q_0..q_L then the special primes.
    pub fn ntt_word_bits(&self) -> Vec<u32> {
        self.moduli.iter().map(|m| m.word_bits()).collect()
    }

    /// The parameters.
    pub fn params(&self) -> &CkksParameters {
        &self.params
    }

    /// The moduli q_0..q_level.
    pub fn q_moduli(&self, level: usize) -> &[Arc<Modulus>] {
        &self.moduli[..=level.min(self.params.max_level())]
    }

    /// log2(Q_level) = sum of log2(q_i) for i <= level: the bound every
    /// overflow and scale check compares with.
    pub fn log_q(&self, level: usize) -> f64 {
        self.q_moduli(level)
            .iter()
            .map(|md| (md.q as f64).log2())
            .sum()
    }

    /// The moduli q_0..q_level, then the special primes.
    pub fn qp_moduli(&self, level: usize) -> &[Arc<Modulus>] {
        &self.qp_by_level[level.min(self.params.max_level())]
    }

    /// The special primes' moduli (P is their product).
    pub fn special_moduli(&self) -> &[Arc<Modulus>] {
        &self.moduli[self.params.max_level() + 1..]
    }

    /// All moduli q_0..q_L, then the special primes (the key level).
    pub fn key_moduli(&self) -> &[Arc<Modulus>] {
        &self.moduli
    }

    /// CRT reconstruction over the ciphertext primes.
    pub fn crt(&self) -> &Crt {
        &self.crt
    }
}
