//! Per-image encrypted inference (the original TenSEAL design, made fast):
//! one image per ciphertext in kernel-major im2col layout; the convolution
//! of all channels is one banded diagonal transform (stride = window count)
//! with baby-step giant-step rotations, the activations go through the
//! depth-optimal polynomial evaluator (or one square, folded into the next
//! layer), the dense layers are diagonal transforms with BSGS and folding;
//! Galois keys exist only for the rotations the circuit uses.
//!
//! [`pipeline`] holds the circuit, generic over
//! [`slaf_ckks::circuits::CircuitBackend`] (so its layout is tested on the
//! plaintext simulator); [`transform`] the diagonal-transform kernel;
//! [`PerImageEngine`] runs it on our CKKS with keys, encryption and
//! decryption, and times each stage.
//!
//! Levels: the circuit needs one level per linear stage plus the depth of
//! each activation ([`circuit_depth`], the planner's rule). By default the input is encrypted at the lowest level that fits the circuit
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

use crate::{HeNnError, StageTimes};
use slaf_ckks::keys::wipe_rng;
use slaf_ckks::{
    Ciphertext, CkksContext, CkksParameters, Encoder, Encryptor, EvaluationKeys, Evaluator,
    KeyGenerator, KeySeed, Plaintext, SecretKey, decrypt, encrypt_symmetric, precision_bits,
};
use slaf_nn::ChainForm;

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

/// A callback shown each stage's index and output (the precision option).
pub type StageHook<'a> = &'a mut dyn FnMut(usize, &Ciphertext);

/// The server side of per-image inference: the CKKS context and the
/// encoded circuit, with no key at all. Each call brings an [`Evaluator`]
/// holding a client's relinearisation key and Galois keys for
/// [`Self::rotation_steps`].
pub struct PerImageCircuit {
    ctx: Arc<CkksContext>,
    pipeline: Pipeline<Plaintext>,
    outputs: usize,
    pixels: usize,
}

impl std::fmt::Debug for PerImageCircuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerImageCircuit")
            .field("params", &self.ctx.params().describe())
            .field("circuit", &self.pipeline.describe())
            .finish_non_exhaustive()
    }
}

impl PerImageCircuit {
    /// Encode the circuit of `model` on `params` (levels per `opts`).
    pub fn new(
        model: &ChainForm,
        params: CkksParameters,
        opts: &PerImageOptions,
    ) -> Result<Self, HeNnError> {
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
            // The fewest primes whose modulus leaves `headroom_bits` above the scale.
            let end = (0..=max)
                .find(|&i| params.modulus_bits(i) - scale.log2() >= opts.headroom_bits)
                .unwrap_or(max);
            (depth + end).min(max)
        };
        let ctx = CkksContext::new(params)?;
        let pipeline = Pipeline::new(&Evaluator::new(&ctx), model, start, scale)?;
        Ok(Self {
            ctx,
            pipeline,
            outputs: model.pairs.last().map_or(0, |(_, d)| d.rows),
            pixels: model.conv.geom.in_len(),
        })
    }

    /// The shared CKKS context.
    pub fn context(&self) -> &Arc<CkksContext> {
        &self.ctx
    }

    /// The encoded circuit.
    pub fn pipeline(&self) -> &Pipeline<Plaintext> {
        &self.pipeline
    }

    /// The CKKS parameters.
    pub fn params(&self) -> &CkksParameters {
        self.ctx.params()
    }

    /// Left rotation steps the circuit uses (a client makes Galois keys for exactly these).
    pub fn rotation_steps(&self) -> Vec<i64> {
        self.pipeline
            .rotation_steps()
            .into_iter()
            .map(|s| s as i64)
            .collect()
    }

    /// Logits per image.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.pixels
    }

    /// Bytes of one input ciphertext (2 polynomials at the start level).
    pub fn ciphertext_bytes(&self) -> usize {
        2 * self.ctx.params().poly_bytes(self.pipeline.start_level())
    }

    /// The input must be one 2-part ciphertext at the start level and scale.
    pub fn check_input(&self, ct: &Ciphertext) -> Result<(), HeNnError> {
        let (level, scale) = (self.pipeline.start_level(), self.pipeline.scale());
        let rel = (ct.scale() / scale - 1.0).abs();
        if ct.level() != level || ct.part_count() != 2 || rel > 1e-9 {
            return Err(HeNnError::InvalidRequest {
                detail: format!(
                    "the input ciphertext is at level {} with {} parts and scale 2^{:.2}; the circuit takes level {level}, 2 parts, scale 2^{:.2}",
                    ct.level(),
                    ct.part_count(),
                    ct.scale().log2(),
                    scale.log2()
                ),
            });
        }
        Ok(())
    }

    /// Every Galois key the circuit needs is in `ev`, or the missing steps are named.
    pub fn check_keys(&self, ev: &Evaluator) -> Result<(), HeNnError> {
        ev.relin_key("per-image inference")?;
        let gk = ev.galois_keys("per-image inference")?;
        let n = self.ctx.params().n();
        let missing: Vec<i64> = self
            .rotation_steps()
            .into_iter()
            .filter(|&s| !gk.has_step(s, n))
            .collect();
        if !missing.is_empty() {
            return Err(HeNnError::InvalidRequest {
                detail: format!(
                    "the Galois keys lack {} of the circuit's {} rotation steps: {missing:?}",
                    missing.len(),
                    self.rotation_steps().len()
                ),
            });
        }
        Ok(())
    }

    /// Run the circuit on one input ciphertext with a client's keys;
    /// returns the logit ciphertext (the first [`Self::outputs`] slots) and
    /// each stage's wall time (ms). `after` is shown every stage's output.
    pub fn evaluate(
        &self,
        ev: &Evaluator,
        input: &Ciphertext,
        mut after: Option<StageHook<'_>>,
    ) -> Result<(Ciphertext, Vec<f64>), HeNnError> {
        self.check_input(input)?;
        let mut stage_ms = vec![0.0; self.pipeline.stage_count()];
        let mut ct = input.clone();
        for (i, slot) in stage_ms.iter_mut().enumerate() {
            let t = Instant::now();
            ct = self.pipeline.stage(ev, i, &ct)?;
            *slot = t.elapsed().as_secs_f64() * 1e3;
            if let Some(f) = after.as_mut() {
                f(i, &ct);
            }
        }
        Ok((ct, stage_ms))
    }
}

/// The in-process per-image engine: a [`PerImageCircuit`] plus the
/// client's part (keys, encryption, decryption) in one value, for runs
/// where one party plays both roles.
pub struct PerImageEngine {
    circuit: PerImageCircuit,
    encoder: Encoder,
    /// Owns the relinearisation and Galois keys.
    evaluator: Evaluator,
    sk: SecretKey,
    encryptor: Mutex<Encryptor<ChaCha20Rng>>,
    sym_rng: Mutex<ChaCha20Rng>,
    public_key_encryption: bool,
    model: ChainForm,
    key_bytes: usize,
    setup_ms: f64,
}

impl std::fmt::Debug for PerImageEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PerImageEngine({:?})", self.circuit)
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
        let circuit = PerImageCircuit::new(model, params, &opts)?;
        let ctx = Arc::clone(circuit.context());
        let seed = seed.unwrap_or_else(KeySeed::from_os_rng);
        let mut keygen = KeyGenerator::from_seed(&ctx, &seed.derive("per-image keys"));
        let enc_rng = seed.derive("per-image public-key encryption").rng();
        let sym_rng = seed.derive("per-image symmetric encryption").rng();
        drop(seed);
        let pk = keygen.public_key();
        let relin_key = keygen.relinearization_key();
        let galois_keys = keygen.galois_keys(&circuit.rotation_steps(), false);
        let sk = keygen.into_secret_key();
        let key_bytes = pk.byte_size() + relin_key.byte_size() + galois_keys.byte_size();
        let encryptor = Mutex::new(Encryptor::new(&ctx, pk, enc_rng));
        let evaluator = Evaluator::with_keys(
            &ctx,
            EvaluationKeys::new(Some(relin_key), Some(galois_keys)),
        );
        Ok(Self {
            encoder: Encoder::new(&ctx),
            circuit,
            evaluator,
            sk,
            encryptor,
            sym_rng: Mutex::new(sym_rng),
            public_key_encryption: opts.public_key_encryption,
            model: model.clone(),
            key_bytes,
            setup_ms: t0.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// The keyless circuit.
    pub fn circuit(&self) -> &PerImageCircuit {
        &self.circuit
    }

    /// Public, relinearisation and Galois key bytes in memory (32-bit
    /// words for the primes below 2^32:
    /// [`slaf_ckks::CkksParameters::key_poly_bytes`]).
    pub fn key_bytes(&self) -> usize {
        self.key_bytes
    }

    /// Bytes of one input ciphertext (2 polynomials at the start level).
    pub fn ciphertext_bytes(&self) -> usize {
        self.circuit.ciphertext_bytes()
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
        self.circuit.pipeline()
    }

    /// The CKKS parameters.
    pub fn params(&self) -> &CkksParameters {
        self.circuit.params()
    }

    /// Parameters, levels and per-layer layout in one line.
    pub fn describe(&self) -> String {
        let p = self.pipeline();
        format!(
            "{}; input at level {} -> logits at level {}; {} Galois keys; {}",
            self.params().describe(),
            p.start_level(),
            p.end_level(),
            self.galois_key_count(),
            p.describe()
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
        let p = self.pipeline();
        let pt = self
            .encoder
            .encode(&p.encode_input(image), p.start_level(), p.scale())?;
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
            Ok(encrypt_symmetric(
                self.circuit.context(),
                &self.sk,
                &pt,
                &mut *rng,
            ))
        }
    }

    fn decrypt_slots(&self, ct: &Ciphertext) -> Vec<f64> {
        self.encoder
            .decode(&decrypt(self.circuit.context(), &self.sk, ct))
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
        let ct = self.encrypt(&img)?;
        times.encrypt = ms(t);
        let reference = precision.then(|| reference_stages(&self.model, &img));
        let mut report = Vec::new();
        let mut after = |i: usize, ct: &Ciphertext| {
            let Some(r) = &reference else { return };
            let got = self.pipeline().stage_values(i, &self.decrypt_slots(ct));
            let want = &r[i];
            let errs: Vec<f64> = got.iter().zip(want).map(|(a, b)| (a - b).abs()).collect();
            let (max_bits, mean_bits) = precision_bits(&got, want);
            report.push(LayerPrecision {
                stage: stage_name(i),
                len: want.len(),
                level: ct.level(),
                max_abs_error: errs.iter().fold(0.0, |a: f64, &e| a.max(e)),
                p99_abs_error: crate::batched::p99(errs.clone()),
                mean_abs_error: errs.iter().sum::<f64>() / errs.len().max(1) as f64,
                max_abs_value: want.iter().fold(0.0, |a: f64, &v| a.max(v.abs())),
                max_bits,
                mean_bits,
            });
        };
        let hook: Option<StageHook<'_>> = if precision { Some(&mut after) } else { None };
        let (ct, stage_ms) = self.circuit.evaluate(&self.evaluator, &ct, hook)?;
        times.stages = stage_ms;
        let t = Instant::now();
        let slots = self.decrypt_slots(&ct);
        let p = self.pipeline();
        let logits = p.stage_values(p.stage_count() - 1, &slots);
        times.decrypt = ms(t);
        Ok((logits, times, report))
    }
}

impl From<&LayerPrecision> for crate::LayerPrecision {
    fn from(x: &LayerPrecision) -> Self {
        Self {
            layer: x.stage.clone(),
            max_abs_error: x.max_abs_error,
            p99_abs_error: x.p99_abs_error,
            bits: x.max_bits,
            max_abs_value: x.max_abs_value,
            samples: x.len,
        }
    }
}

impl crate::Engine for PerImageEngine {
    fn mode(&self) -> crate::Mode {
        crate::Mode::PerImage
    }
    fn params(&self) -> &CkksParameters {
        self.circuit.params()
    }
    fn images_per_call(&self) -> usize {
        1
    }
    fn progress_units(&self, images: usize) -> u64 {
        images as u64
    }
    /// One image after the other; with `precision`, the first image is
    /// also decrypted after every stage.
    fn infer_images(
        &self,
        images: &[&[f32]],
        progress: Option<&(dyn Fn(u64) + Sync)>,
        precision: bool,
    ) -> Result<crate::EngineOutput, HeNnError> {
        let mut out = crate::EngineOutput {
            logits: Vec::with_capacity(images.len()),
            times: StageTimes::default(),
            precision: None,
        };
        for (k, im) in images.iter().enumerate() {
            let (logits, times, prec) = self.run(im, precision && k == 0)?;
            if precision && k == 0 {
                out.precision = Some(prec.iter().map(Into::into).collect());
            }
            out.logits.push(logits);
            out.times.add(&times);
            if let Some(p) = progress {
                p(1);
            }
        }
        Ok(out)
    }
    fn pixels(&self) -> usize {
        self.circuit.pixels()
    }
    fn start_level(&self) -> usize {
        self.pipeline().start_level()
    }
    fn output_scale(&self) -> f64 {
        self.circuit.params().default_scale()
    }
    fn ciphertext_bytes(&self) -> usize {
        self.circuit.ciphertext_bytes()
    }
    fn input_bytes(&self) -> usize {
        self.circuit.ciphertext_bytes()
    }
    fn key_bytes(&self) -> usize {
        self.key_bytes
    }
}
