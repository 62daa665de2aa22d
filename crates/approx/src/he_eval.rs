//! Encrypted evaluation of the sign approximations with our CKKS, on the
//! parameters of the original study (N = 8192, [31, 26x6, 31], scale 2^26):
//! evaluation time (mean and median over runs), the max error between the
//! decrypted and the plaintext values over the 1000 grid points, and the
//! decrypted p(enc(1) − enc(0.5)) the original printed.

use super::methods::{Approximation, HeStage};
use super::{ApproxError, grid};
use rand_chacha::ChaCha20Rng;
use slaf_ckks::circuits::{self, CircuitError, PolynomialEvaluator};
use slaf_ckks::{
    Ciphertext, CkksContext, CkksError, Encoder, Encryptor, EvaluationKeys, Evaluator,
    KeyGenerator, KeySeed, SecretKey, decrypt, presets,
};
use std::sync::Arc;
use std::time::Instant;

impl From<CircuitError> for ApproxError {
    fn from(e: CircuitError) -> Self {
        ApproxError::Numerical {
            detail: format!("CKKS circuit: {e}"),
        }
    }
}

impl From<CkksError> for ApproxError {
    fn from(e: CkksError) -> Self {
        ApproxError::Numerical {
            detail: format!("CKKS: {e}"),
        }
    }
}

/// Keys and helpers for the encrypted evaluations.
pub struct HeSetup {
    ctx: Arc<CkksContext>,
    encoder: Encoder,
    encryptor: Encryptor<ChaCha20Rng>,
    /// Owns the relinearization key.
    evaluator: Evaluator,
    sk: SecretKey,
}

impl std::fmt::Debug for HeSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeSetup({:?})", self.ctx)
    }
}

/// Result of one method's encrypted evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct HeEvaluation {
    /// Mean evaluation time in milliseconds (evaluation only).
    pub eval_ms_mean: f64,
    /// Median evaluation time in milliseconds.
    pub eval_ms_median: f64,
    /// max |decrypted − plaintext p| over the 1000 grid points.
    pub max_err: f64,
    /// Decrypted p(enc(1) − enc(0.5)).
    pub value_1_minus_05: f64,
    /// Levels consumed.
    pub levels_used: usize,
}

/// The circuits' polynomial of one evaluation stage (Chebyshev stages on [-1, 1]).
pub fn stage_poly(s: &HeStage) -> circuits::Polynomial {
    match s {
        HeStage::Power(c) => circuits::Polynomial::power(c.clone()),
        HeStage::Chebyshev(c) => circuits::Polynomial::chebyshev(c.clone(), -1.0, 1.0),
    }
}

impl HeSetup {
    /// Keys for the comparison-study parameters, from OS entropy.
    pub fn new() -> Result<Self, ApproxError> {
        Self::with_seed(&KeySeed::from_os_rng())
    }

    /// Keys and encryption randomness derived from a 256-bit seed
    /// (reproducible tests; such keys are not secret).
    pub fn with_seed(seed: &KeySeed) -> Result<Self, ApproxError> {
        let ctx = CkksContext::new(presets::comparison())?;
        let mut kg = KeyGenerator::from_seed(&ctx, &seed.derive("comparison keys"));
        let pk = kg.public_key();
        let rk = kg.relinearization_key();
        let enc_rng = seed.derive("comparison encryption").rng();
        Ok(Self {
            encoder: Encoder::new(&ctx),
            encryptor: Encryptor::new(&ctx, pk, enc_rng),
            evaluator: Evaluator::with_keys(&ctx, EvaluationKeys::new(Some(rk), None)),
            ctx,
            sk: kg.into_secret_key(),
        })
    }

    /// A description of the parameters.
    pub fn describe(&self) -> String {
        self.ctx.params().describe()
    }

    fn secret(&self) -> &SecretKey {
        &self.sk
    }

    fn encrypt(&mut self, xs: &[f64]) -> Result<Ciphertext, ApproxError> {
        let top = self.ctx.params().max_level();
        let pt = self
            .encoder
            .encode(xs, top, self.ctx.params().default_scale())?;
        Ok(self.encryptor.encrypt(&pt))
    }

    fn decrypt(&self, ct: &Ciphertext) -> Vec<f64> {
        self.encoder.decode(&decrypt(&self.ctx, self.secret(), ct))
    }

    /// Evaluate power/Chebyshev stages on `ct` with the depth-optimal
    /// evaluator (⌈log2(d+1)⌉ levels per stage, output at the input's scale).
    fn run(
        &self,
        ct: &Ciphertext,
        stages: &[circuits::Polynomial],
    ) -> Result<Ciphertext, ApproxError> {
        let pe = PolynomialEvaluator::new(&self.evaluator);
        Ok(match stages {
            [one] => pe.evaluate(ct, one, None)?,
            many => pe.evaluate_composition(ct, many, None)?,
        })
    }

    /// Encrypted evaluation of `a` (`runs` timed evaluations).
    pub fn evaluate(
        &mut self,
        a: &Approximation,
        runs: usize,
    ) -> Result<HeEvaluation, ApproxError> {
        let (stages, _) = a.he_stages();
        let stages: Vec<circuits::Polynomial> = stages.iter().map(stage_poly).collect();
        self.evaluate_polys(&stages, runs, &|x| a.eval(x))
    }

    /// Encrypted evaluation of power/Chebyshev stages with plaintext reference `f`.
    pub fn evaluate_polys(
        &mut self,
        stages: &[circuits::Polynomial],
        runs: usize,
        f: &dyn Fn(f64) -> f64,
    ) -> Result<HeEvaluation, ApproxError> {
        let g = grid();
        let ct = self.encrypt(&g)?;
        let mut times = Vec::with_capacity(runs.max(1));
        let mut out = None;
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            let r = self.run(&ct, stages)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            out = Some(r);
        }
        let out = out.ok_or(ApproxError::EmptyPoints)?;
        let dec = self.decrypt(&out);
        let max_err = g
            .iter()
            .zip(&dec)
            .map(|(&x, y)| (f(x) - y).abs())
            .fold(0.0, f64::max);
        let one = self.encrypt(&[1.0])?;
        let half = self.encrypt(&[0.5])?;
        let diff = self.evaluator.sub(&one, &half)?;
        let v = self.decrypt(&self.run(&diff, stages)?)[0];
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        times.sort_by(f64::total_cmp);
        Ok(HeEvaluation {
            eval_ms_mean: mean,
            eval_ms_median: times[times.len() / 2],
            max_err,
            value_1_minus_05: v,
            levels_used: ct.level() - out.level(),
        })
    }
}
