//! Per-image encrypted inference (the original TenSEAL design, made fast):
//! one image per ciphertext in kernel-major im2col layout; the convolution
//! of all channels is one banded diagonal transform (stride = window count)
//! with baby-step giant-step rotations, the activations go through the
//! depth-optimal polynomial evaluator (or one square, folded into the next
//! layer), the dense layers are diagonal transforms with BSGS and folding;
//! Galois keys exist only for the rotations the circuit uses.
//!
//! [`pipeline`] holds the circuit, generic over
//! [`crate::ckks::circuits::CircuitBackend`] (so its layout is tested on the
//! plaintext simulator); [`transform`] the diagonal-transform kernel;
//! [`PerImageEngine`] runs it on our CKKS with keys, encryption and
//! decryption, and times each stage.
//!
//! Levels: the circuit needs `3 + depth(act1) + depth(act2)` levels. By
//! default the input is encrypted at the lowest level that fits the circuit
//! and still leaves [`PerImageOptions::headroom_bits`] bits of modulus above
//! the scale for the logits (a fresh encryption at a lower level is as
//! secure, and every operation works on fewer primes);
//! [`PerImageOptions::full_chain`] starts at the top of the chain, as
//! TenSEAL does.

pub mod pipeline;
pub mod transform;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand_chacha::ChaCha20Rng;

use crate::ckks::keys::wipe_rng;
use crate::ckks::{
    Ciphertext, CkksContext, CkksParameters, Encoder, Encryptor, EvaluationKeys, Evaluator,
    KeyGenerator, KeySeed, Plaintext, SecretKey, decrypt, encrypt_symmetric, precision_bits,
};
use crate::he_nn::{HeNnError, StageTimes};
use crate::nn::ChainForm;

pub use pipeline::{
    ActKind, ActStage, Pipeline, STAGES, circuit_depth, im2col, reference_stages, stage_name,
};
pub use transform::{DiagTransform, Layout, dense_diagonal, dense_layout};

/// Options of the per-image engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerImageOptions {
    /// Encrypt at the top level of the chain (as TenSEAL) instead of the
    /// lowest level that fits the circuit.
    pub full_chain: bool,
    /// Minimum bits of modulus above the scale left at the logits' level.
    pub headroom_bits: f64,
    /// Encrypt with the public key (as TenSEAL) instead of the secret key.
    /// The client owns the secret key, so secret-key (symmetric) encryption
    /// is available to it; its fresh noise is `e` alone instead of
    /// `v e + e0 + e1 s`, about 7 bits more input precision at N = 8192.
    pub public_key_encryption: bool,
}

impl Default for PerImageOptions {
    fn default() -> Self {
        Self {
            full_chain: false,
            headroom_bits: 12.0,
            public_key_encryption: false,
        }
    }
}

/// Precision of one stage's decrypted output against the plaintext forward.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerPrecision {
    /// Stage name (see [`stage_name`]).
    pub stage: String,
    /// Values compared.
    pub len: usize,
    /// Level of the ciphertext after the stage.
    pub level: usize,
    /// Max absolute error.
    pub max_abs_error: f64,
    /// 99th percentile of the absolute error.
    #[serde(default)]
    pub p99_abs_error: f64,
    /// Mean absolute error.
    pub mean_abs_error: f64,
    /// Largest absolute plaintext value of the stage (for relative error).
    pub max_abs_value: f64,
    /// -log2(max absolute error).
    pub max_bits: f64,
    /// -log2(mean absolute error).
    pub mean_bits: f64,
}

/// The per-image engine: CKKS context, keys and the encoded circuit.
pub struct PerImageEngine {
    ctx: Arc<CkksContext>,
    encoder: Encoder,
    /// Owns the relinearisation and Galois keys.
    evaluator: Evaluator,
    sk: SecretKey,
    encryptor: Mutex<Encryptor<ChaCha20Rng>>,
    sym_rng: Mutex<ChaCha20Rng>,
    public_key_encryption: bool,
    pipeline: Pipeline<Plaintext>,
    model: ChainForm,
    key_bytes: usize,
    setup_ms: f64,
}

impl std::fmt::Debug for PerImageEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerImageEngine")
            .field("params", &self.ctx.params().describe())
            .field("circuit", &self.pipeline.describe())
            .finish_non_exhaustive()
    }
}

impl Drop for PerImageEngine {
    fn drop(&mut self) {
        // The symmetric-encryption generator could recompute the inputs'
        // encryption randomness.
        if let Ok(rng) = self.sym_rng.get_mut() {
            wipe_rng(rng);
        }
    }
}

impl PerImageEngine {
    /// Engine for `model` on `params` with default options. `seed: None`
    /// draws keys and encryption randomness from ChaCha20 seeded by the OS
    /// CSPRNG; `Some(s)` derives them from the 256-bit seed `s` (tests,
    /// reproducibility: such keys are not secret).
    pub fn new(
        model: &ChainForm,
        params: CkksParameters,
        seed: Option<KeySeed>,
    ) -> Result<Self, HeNnError> {
        Self::with_options(model, params, seed, PerImageOptions::default())
    }

    /// [`Self::new`] with explicit [`PerImageOptions`].
    pub fn with_options(
        model: &ChainForm,
        params: CkksParameters,
        seed: Option<KeySeed>,
        opts: PerImageOptions,
    ) -> Result<Self, HeNnError> {
        let t0 = Instant::now();
        let (depth, detail) = circuit_depth(model)?;
        let max = params.max_level();
        if depth > max {
            return Err(HeNnError::ChainTooShort {
                needed: depth,
                available: max,
                detail,
            });
        }
        let scale = params.default_scale();
        let start = if opts.full_chain {
            max
        } else {
            let mut bits = 0.0;
            let mut end = 0;
            for (i, q) in params.q().iter().enumerate() {
                bits += (*q as f64).log2();
                end = i;
                if bits - scale.log2() >= opts.headroom_bits {
                    break;
                }
            }
            (depth + end).min(max)
        };
        let ctx = CkksContext::new(params)?;
        let encoder = Encoder::new(&ctx);
        let evaluator = Evaluator::new(&ctx);
        let pipeline = Pipeline::new(&evaluator, model, start, scale)?;
        let seed = seed.unwrap_or_else(KeySeed::from_os_rng);
        let mut keygen = KeyGenerator::from_seed(&ctx, &seed.derive("per-image keys"));
        let enc_rng = seed.derive("per-image public-key encryption").rng();
        let sym_rng = seed.derive("per-image symmetric encryption").rng();
        drop(seed);
        let pk = keygen.public_key();
        let relin_key = keygen.relinearization_key();
        let steps: Vec<i64> = pipeline
            .rotation_steps()
            .into_iter()
            .map(|s| s as i64)
            .collect();
        let galois_keys = keygen.galois_keys(&steps, false);
        let sk = keygen.into_secret_key();
        let key_bytes = pk.byte_size() + relin_key.byte_size() + galois_keys.byte_size();
        let encryptor = Mutex::new(Encryptor::new(&ctx, pk, enc_rng));
        let evaluator = Evaluator::with_keys(
            &ctx,
            EvaluationKeys::new(Some(relin_key), Some(galois_keys)),
        );
        Ok(Self {
            ctx,
            encoder,
            evaluator,
            sk,
            encryptor,
            sym_rng: Mutex::new(sym_rng),
            public_key_encryption: opts.public_key_encryption,
            pipeline,
            model: model.clone(),
            key_bytes,
            setup_ms: t0.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Public + relinearisation + Galois key bytes (8 bytes per residue).
    pub fn key_bytes(&self) -> usize {
        self.key_bytes
    }

    /// Bytes of one input ciphertext (2 polynomials at the start level).
    pub fn ciphertext_bytes(&self) -> usize {
        2 * (self.pipeline.start_level() + 1) * self.ctx.params().n() * 8
    }

    /// Number of Galois keys (distinct rotation steps of the circuit).
    pub fn galois_key_count(&self) -> usize {
        self.evaluator.keys().galois().map_or(0, |g| g.len())
    }

    /// Milliseconds spent in [`Self::new`] (encoding the circuit, key generation).
    pub fn setup_ms(&self) -> f64 {
        self.setup_ms
    }

    /// The encoded circuit.
    pub fn pipeline(&self) -> &Pipeline<Plaintext> {
        &self.pipeline
    }

    /// The CKKS parameters.
    pub fn params(&self) -> &CkksParameters {
        self.ctx.params()
    }

    /// Parameters, levels and per-layer layout in one line.
    pub fn describe(&self) -> String {
        format!(
            "{}; input at level {} -> logits at level {}; {} Galois keys; {}",
            self.ctx.params().describe(),
            self.pipeline.start_level(),
            self.pipeline.end_level(),
            self.galois_key_count(),
            self.pipeline.describe()
        )
    }

    fn check_image(&self, image: &[f32]) -> Result<Vec<f64>, HeNnError> {
        let want = self.model.conv.geom.in_len();
        if image.len() != want {
            return Err(HeNnError::InvalidRequest {
                detail: format!("image has {} pixels, expected {want}", image.len()),
            });
        }
        if let Some(i) = image.iter().position(|v| !v.is_finite()) {
            return Err(HeNnError::InvalidRequest {
                detail: format!("pixel {i} is not finite"),
            });
        }
        Ok(image.iter().map(|&v| f64::from(v)).collect())
    }

    fn encrypt(&self, image: &[f64]) -> Result<Ciphertext, HeNnError> {
        let pt = self.encoder.encode(
            &self.pipeline.encode_input(image),
            self.pipeline.start_level(),
            self.pipeline.scale(),
        )?;
        fn poisoned<T>(_: T) -> HeNnError {
            HeNnError::InvalidRequest {
                detail: "the encryption RNG lock is poisoned (a previous call panicked)".into(),
            }
        }
        if self.public_key_encryption {
            let mut enc = self.encryptor.lock().map_err(poisoned)?;
            Ok(enc.encrypt(&pt))
        } else {
            let mut rng = self.sym_rng.lock().map_err(poisoned)?;
            Ok(encrypt_symmetric(&self.ctx, &self.sk, &pt, &mut *rng))
        }
    }

    fn decrypt_slots(&self, ct: &Ciphertext) -> Vec<f64> {
        self.encoder.decode(&decrypt(&self.ctx, &self.sk, ct))
    }

    /// The 10 logits of one 784-pixel image in [0, 1], and its stage times (ms).
    pub fn infer(&self, image: &[f32]) -> Result<(Vec<f64>, StageTimes), HeNnError> {
        let (logits, times, _) = self.run(image, false)?;
        Ok((logits, times))
    }

    /// As [`Self::infer`], and decrypts after every stage to report the
    /// precision of each layer against the plaintext forward pass (the
    /// intermediate decryptions are not counted in the stage times).
    pub fn infer_with_precision(
        &self,
        image: &[f32],
    ) -> Result<(Vec<f64>, StageTimes, Vec<LayerPrecision>), HeNnError> {
        self.run(image, true)
    }

    fn run(
        &self,
        image: &[f32],
        precision: bool,
    ) -> Result<(Vec<f64>, StageTimes, Vec<LayerPrecision>), HeNnError> {
        let img = self.check_image(image)?;
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
        let mut times = StageTimes::default();
        let t = Instant::now();
        let mut ct = self.encrypt(&img)?;
        times.encrypt = ms(t);
        let bk = &self.evaluator;
        let reference = precision.then(|| reference_stages(&self.model, &img));
        let mut report = Vec::new();
        let mut stage_ms = vec![0.0; self.pipeline.stage_count()];
        for (i, slot) in stage_ms.iter_mut().enumerate() {
            let t = Instant::now();
            ct = self.pipeline.stage(bk, i, &ct)?;
            *slot = ms(t);
            if let Some(r) = &reference {
                let got = self.pipeline.stage_values(i, &self.decrypt_slots(&ct));
                let want = &r[i];
                let errs: Vec<f64> = got.iter().zip(want).map(|(a, b)| (a - b).abs()).collect();
                let (max_bits, mean_bits) = precision_bits(&got, want);
                report.push(LayerPrecision {
                    stage: stage_name(i),
                    len: want.len(),
                    level: ct.level(),
                    max_abs_error: errs.iter().fold(0.0, |a: f64, &e| a.max(e)),
                    p99_abs_error: crate::he_nn::batched::p99(errs.clone()),
                    mean_abs_error: errs.iter().sum::<f64>() / errs.len().max(1) as f64,
                    max_abs_value: want.iter().fold(0.0, |a: f64, &v| a.max(v.abs())),
                    max_bits,
                    mean_bits,
                });
            }
        }
        // Stages past the papers' five go to the act2 / fc2 buckets.
        for (i, v) in stage_ms.iter().enumerate() {
            match i {
                0 => times.conv += v,
                1 => times.act1 += v,
                2 => times.fc1 += v,
                i if i % 2 == 1 => times.act2 += v,
                _ => times.fc2 += v,
            }
        }
        let t = Instant::now();
        let slots = self.decrypt_slots(&ct);
        let logits = self
            .pipeline
            .stage_values(self.pipeline.stage_count() - 1, &slots);
        times.decrypt = ms(t);
        Ok((logits, times, report))
    }
}
