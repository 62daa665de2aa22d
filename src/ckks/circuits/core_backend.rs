//! [`CircuitBackend`] for the CKKS core: the circuits run on real
//! ciphertexts through [`Evaluator`], [`Encoder`], a relinearization key and
//! (for linear transforms) Galois keys for the steps the transform lists.

use super::CircuitBackend;
use crate::ckks::{
    Ciphertext, CkksError, Encoder, Evaluator, GaloisKeys, Plaintext, RelinearizationKey,
};

/// The core evaluator with the keys the circuits need.
#[derive(Debug)]
pub struct CoreBackend<'a> {
    /// Evaluator.
    pub evaluator: &'a Evaluator,
    /// Encoder (for linear-transform diagonals).
    pub encoder: &'a Encoder,
    /// Relinearization key (polynomial evaluation).
    pub relin_key: Option<&'a RelinearizationKey>,
    /// Galois keys (linear transforms, inner sums).
    pub galois_keys: Option<&'a GaloisKeys>,
}

impl<'a> CoreBackend<'a> {
    /// Wraps an evaluator, encoder and optional keys.
    pub fn new(
        evaluator: &'a Evaluator,
        encoder: &'a Encoder,
        relin_key: Option<&'a RelinearizationKey>,
        galois_keys: Option<&'a GaloisKeys>,
    ) -> Self {
        Self {
            evaluator,
            encoder,
            relin_key,
            galois_keys,
        }
    }

    fn missing(what: &'static str) -> CkksError {
        CkksError::Mismatch {
            op: "circuit backend",
            detail: format!("no {what} given to CoreBackend"),
        }
    }
}

impl CircuitBackend for CoreBackend<'_> {
    type Ciphertext = Ciphertext;
    type Plaintext = Plaintext;
    type Error = CkksError;

    fn slots(&self) -> usize {
        self.evaluator.context().params().n() / 2
    }
    fn prime(&self, level: usize) -> f64 {
        self.evaluator
            .context()
            .q_moduli(level)
            .get(level)
            .map(|m| m.q as f64)
            .unwrap_or(f64::NAN)
    }
    fn level(&self, ct: &Ciphertext) -> usize {
        ct.level
    }
    fn scale(&self, ct: &Ciphertext) -> f64 {
        ct.scale
    }
    fn set_scale(&self, ct: &mut Ciphertext, scale: f64) {
        ct.scale = scale;
    }
    fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, CkksError> {
        self.evaluator.add(a, b)
    }
    fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, CkksError> {
        self.evaluator.sub(a, b)
    }
    fn add_const(&self, ct: &Ciphertext, c: f64) -> Result<Ciphertext, CkksError> {
        self.evaluator.add_scalar(ct, c)
    }
    fn mul_const(
        &self,
        ct: &Ciphertext,
        c: f64,
        const_scale: f64,
    ) -> Result<Ciphertext, CkksError> {
        self.evaluator.mul_scalar(ct, c, const_scale)
    }
    fn mul_relin(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, CkksError> {
        let rk = self
            .relin_key
            .ok_or_else(|| Self::missing("relinearization key"))?;
        let p = self.evaluator.mul(a, b)?;
        self.evaluator.relinearize(&p, rk)
    }
    fn rescale(&self, ct: &Ciphertext) -> Result<Ciphertext, CkksError> {
        self.evaluator.rescale(ct)
    }
    fn mod_down(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext, CkksError> {
        self.evaluator.mod_down_to(ct, level)
    }
    fn encode(&self, values: &[f64], level: usize, scale: f64) -> Result<Plaintext, CkksError> {
        self.encoder.encode(values, level, scale)
    }
    fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, CkksError> {
        self.evaluator.add_plain(ct, pt)
    }
    fn mul_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, CkksError> {
        self.evaluator.mul_plain(ct, pt)
    }
    /// Hoisted: one key-switch decomposition of c1 shared by all steps
    /// ([`Evaluator::rotate_hoisted`]).
    fn rotate_hoisted(
        &self,
        ct: &Ciphertext,
        steps: &[usize],
    ) -> Result<Vec<Ciphertext>, CkksError> {
        if steps.iter().all(|s| s.is_multiple_of(self.slots())) {
            return Ok(steps.iter().map(|_| ct.clone()).collect());
        }
        let gk = self
            .galois_keys
            .ok_or_else(|| Self::missing("Galois keys"))?;
        let steps: Vec<i64> = steps.iter().map(|&s| s as i64).collect();
        self.evaluator.rotate_hoisted(ct, &steps, gk)
    }
    fn rotate(&self, ct: &Ciphertext, step: usize) -> Result<Ciphertext, CkksError> {
        if step.is_multiple_of(self.slots()) {
            return Ok(ct.clone());
        }
        let gk = self
            .galois_keys
            .ok_or_else(|| Self::missing("Galois keys"))?;
        self.evaluator.rotate(ct, step as i64, gk)
    }
}
