//! [`CircuitBackend`] for the CKKS core: the circuits run on real
//! ciphertexts through the [`Evaluator`] and the keys it owns (the
//! relinearization key for polynomial evaluation, Galois keys for the
//! steps a linear transform lists). A missing key is a typed error.

use super::{CircuitBackend, FusedBackend};
use crate::{Ciphertext, CkksError, Evaluator, Plaintext};

impl CircuitBackend for Evaluator {
    type Ciphertext = Ciphertext;
    type Plaintext = Plaintext;
    type Error = CkksError;

    fn slots(&self) -> usize {
        self.context().params().n() / 2
    }
    fn prime(&self, level: usize) -> f64 {
        self.context()
            .params()
            .q()
            .get(level)
            .map(|&q| q as f64)
            .unwrap_or(f64::NAN)
    }
    fn level(&self, ct: &Ciphertext) -> usize {
        ct.level
    }
    fn scale(&self, ct: &Ciphertext) -> f64 {
        ct.scale
    }
    fn set_scale(&self, ct: &mut Ciphertext, scale: f64) -> Result<(), CkksError> {
        Evaluator::set_scale(self, ct, scale)
    }
    fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, CkksError> {
        Evaluator::add(self, a, b)
    }
    fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, CkksError> {
        Evaluator::sub(self, a, b)
    }
    fn add_const(&self, ct: &Ciphertext, c: f64) -> Result<Ciphertext, CkksError> {
        Evaluator::add_scalar(self, ct, c)
    }
    fn mul_const(
        &self,
        ct: &Ciphertext,
        c: f64,
        const_scale: f64,
    ) -> Result<Ciphertext, CkksError> {
        Evaluator::mul_scalar(self, ct, c, const_scale)
    }
    fn mul_relin(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, CkksError> {
        let rk = self.relin_key("multiply and relinearize")?;
        let p = Evaluator::mul(self, a, b)?;
        Evaluator::relinearize(self, &p, rk)
    }
    fn rescale(&self, ct: &Ciphertext) -> Result<Ciphertext, CkksError> {
        Evaluator::rescale(self, ct)
    }
    fn mod_down(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext, CkksError> {
        Evaluator::mod_down_to(self, ct, level)
    }
    fn encode(&self, values: &[f64], level: usize, scale: f64) -> Result<Plaintext, CkksError> {
        self.encoder().encode(values, level, scale)
    }
    fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, CkksError> {
        Evaluator::add_plain(self, ct, pt)
    }
    fn mul_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, CkksError> {
        Evaluator::mul_plain(self, ct, pt)
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
        let gk = self.galois_keys("rotate")?;
        let steps: Vec<i64> = steps.iter().map(|&s| s as i64).collect();
        Evaluator::rotate_hoisted(self, ct, &steps, gk)
    }
    fn rotate(&self, ct: &Ciphertext, step: usize) -> Result<Ciphertext, CkksError> {
        if step.is_multiple_of(self.slots()) {
            return Ok(ct.clone());
        }
        let gk = self.galois_keys("rotate")?;
        Evaluator::rotate(self, ct, step as i64, gk)
    }
}

impl FusedBackend for Evaluator {
    fn parts(&self, ct: &Ciphertext) -> usize {
        ct.part_count()
    }
    fn mul_unrelinearized(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, CkksError> {
        Evaluator::mul(self, a, b)
    }
    fn relinearize(&self, ct: &Ciphertext) -> Result<Ciphertext, CkksError> {
        Evaluator::relinearize(self, ct, self.relin_key("relinearize")?)
    }
    fn mul_relin_rescale(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, CkksError> {
        Evaluator::mul_relin_rescale(
            self,
            a,
            b,
            self.relin_key("multiply, relinearize, rescale")?,
        )
    }
    fn zero(&self, level: usize, parts: usize, scale: f64) -> Ciphertext {
        self.zero_ciphertext(level, parts, scale)
    }
    fn linear_combinations_into(
        &self,
        xs: &[&Ciphertext],
        rows: &[Vec<(usize, f64)>],
        c: f64,
        accs: &mut [Ciphertext],
    ) -> Result<(), CkksError> {
        Evaluator::linear_combinations_into(self, xs, rows, c, accs)
    }
    fn check_relinearization(&self, op: &'static str) -> Result<(), CkksError> {
        self.relin_key(op).map(|_| ())
    }
}
