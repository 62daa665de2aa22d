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
//! plaintext simulator) on the one diagonal-transform kernel of
//! [`slaf_ckks::circuits`];
//! [`PerImageEngine`] runs it on our CKKS with keys, encryption and
//! decryption, and times each stage.
//!
//! Levels: the circuit needs one level per linear stage plus the depth of
//! each activation (the plan's depth). The input level is the per-image
//! layout's rule ([`crate::plan::StartLevel`]): by default the lowest level
//! that fits the circuit and still leaves 12 bits of modulus above the
//! scale for the logits (a fresh encryption at a lower level is as secure,
//! and every operation works on fewer primes); [`StartLevel::Top`] starts
//! at the top of the chain, as TenSEAL does.

pub mod pipeline;

use std::sync::Arc;
use std::time::Instant;

use crate::circuit::{Circuit, Hooks, KeyRequirements, check_fresh, check_keys};
use crate::client::{Encryption, SeedLabels};
use crate::engine::LocalEngine;
use crate::layout::{Layout, PerImageLayout, Probe};
use crate::plan::{CircuitPlan, StartLevel};
use crate::{HeNnError, Mode, StageTimes};
use slaf_ckks::circuits::CircuitBackend;
use slaf_ckks::{
    Ciphertext, CkksContext, CkksParameters, Evaluator, KeySeed, Plaintext, precision_bits,
};
use slaf_nn::ChainForm;

pub use pipeline::{
    ActStage, Pipeline, STAGES, circuit_depth, im2col, reference_stages, stage_name,
};
pub use slaf_ckks::circuits::{DiagLayout, DiagTransform, dense_diagonal, dense_layout};

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

impl PerImageOptions {
    /// The layout's start-level rule these options ask for.
    pub fn start_level(&self) -> StartLevel {
        if self.full_chain {
            StartLevel::Top
        } else {
            StartLevel::Lowest {
                headroom_bits: self.headroom_bits,
            }
        }
    }

    /// How the inputs are encrypted.
    pub fn encryption(&self) -> Encryption {
        if self.public_key_encryption {
            Encryption::Public
        } else {
            Encryption::Symmetric
        }
    }

    /// The derivation labels of the per-image engine's keys and encryption.
    pub fn labels(&self) -> SeedLabels {
        SeedLabels {
            keys: "per-image keys",
            encryption: Some(if self.public_key_encryption {
                "per-image public-key encryption"
            } else {
                "per-image symmetric encryption"
            }),
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
    plan: CircuitPlan,
    layout: Layout,
    model: ChainForm,
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
    /// Encode the circuit of `model` planned by `plan` on `params`, the
    /// input at the layout's `start` level.
    pub fn new(
        model: &ChainForm,
        plan: CircuitPlan,
        params: CkksParameters,
        start: StartLevel,
    ) -> Result<Self, HeNnError> {
        let layout = PerImageLayout::new(&plan, &params, model, start)?;
        let ctx = CkksContext::new(params)?;
        let pipeline = Pipeline::new(
            &Evaluator::new(&ctx),
            model,
            &plan,
            layout.start_level,
            layout.scale,
        )?;
        Ok(Self {
            ctx,
            pipeline,
            plan,
            layout: Layout::PerImage(layout),
            model: model.clone(),
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
        self.layout.outputs()
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.layout.pixels()
    }

    /// Bytes of one input ciphertext (2 polynomials at the start level).
    pub fn ciphertext_bytes(&self) -> usize {
        self.layout.ciphertext_bytes(self.ctx.params())
    }

    /// The input must be one 2-part ciphertext at the start level and scale.
    pub fn check_input(&self, ct: &Ciphertext) -> Result<(), HeNnError> {
        check_fresh(
            std::slice::from_ref(ct),
            |c: &Ciphertext| (c.level(), c.part_count(), c.scale()),
            self.pipeline.start_level(),
            self.pipeline.scale(),
            |_| "the input ciphertext".into(),
        )
    }

    /// Every Galois key the circuit needs is in `ev`, or the missing steps are named.
    pub fn check_keys(&self, ev: &Evaluator) -> Result<(), HeNnError> {
        check_keys(ev, &Circuit::keys(self))
    }

    /// Run the circuit on another backend, the simulator
    /// ([`slaf_ckks::circuits::sim::SimBackend::for_params`]) above all:
    /// the same plan, levels and layout, the pipeline encoded for `bk`
    /// (the circuit's own is pre-encoded for the evaluator). One input per
    /// image at the start level and scale; returns one output per image.
    pub fn evaluate_on<B>(
        &self,
        bk: &B,
        inputs: Vec<B::Ciphertext>,
    ) -> Result<Vec<B::Ciphertext>, HeNnError>
    where
        B: CircuitBackend + Sync,
        B::Plaintext: Send + Sync,
        B::Ciphertext: Send + Sync,
        HeNnError: From<B::Error>,
    {
        let pipeline = Pipeline::new(
            bk,
            &self.model,
            &self.plan,
            self.pipeline.start_level(),
            self.pipeline.scale(),
        )?;
        let (level, scale) = (pipeline.start_level(), pipeline.scale());
        check_fresh(
            &inputs,
            |c| (bk.level(c), 2, bk.scale(c)),
            level,
            scale,
            |i| format!("ciphertext {i}"),
        )?;
        inputs.iter().map(|ct| pipeline.run(bk, ct)).collect()
    }

    /// Run the circuit on one input ciphertext with a client's keys;
    /// returns the logit ciphertext (the first [`Self::outputs`] slots) and
    /// each stage's wall time (ms). `after` is shown every stage's output.
    pub fn evaluate_one(
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

impl Circuit for PerImageCircuit {
    fn plan(&self) -> &CircuitPlan {
        &self.plan
    }
    fn layout(&self) -> &Layout {
        &self.layout
    }
    fn context(&self) -> &Arc<CkksContext> {
        &self.ctx
    }
    fn model(&self) -> &ChainForm {
        &self.model
    }
    fn keys(&self) -> KeyRequirements {
        KeyRequirements {
            relinearization: true,
            galois_steps: self.rotation_steps(),
        }
    }
    fn progress_units(&self, images: usize) -> u64 {
        images as u64
    }
    fn check_inputs(&self, inputs: &[Ciphertext]) -> Result<(), HeNnError> {
        check_fresh(
            inputs,
            |c: &Ciphertext| (c.level(), c.part_count(), c.scale()),
            self.pipeline.start_level(),
            self.pipeline.scale(),
            |i| format!("ciphertext {i}"),
        )
    }
    /// One image after the other: every stage of image `k` is probed with
    /// index `k` (its values are the stage's first slots).
    fn evaluate(
        &self,
        ev: &Evaluator,
        inputs: Vec<Ciphertext>,
        hooks: Hooks<'_>,
    ) -> Result<(Vec<Ciphertext>, StageTimes), HeNnError> {
        self.check_inputs(&inputs)?;
        let mut times = StageTimes::zeros(self.pipeline.stage_count());
        let mut out = Vec::with_capacity(inputs.len());
        for (k, ct) in inputs.iter().enumerate() {
            let mut show = |i: usize, c: &Ciphertext| {
                if let Some(p) = hooks.probe {
                    let (len, fold, offset) = self.pipeline.stage_map(i);
                    let probe = Probe {
                        layer: i,
                        index: k,
                        fold,
                        offset,
                        len,
                    };
                    p(probe, c);
                }
            };
            let (logits, stage_ms) = self.evaluate_one(ev, ct, Some(&mut show))?;
            for (a, b) in times.stages.iter_mut().zip(&stage_ms) {
                *a += b;
            }
            out.push(logits);
            if let Some(p) = hooks.progress {
                p(1);
            }
        }
        Ok((out, times))
    }
}

/// The in-process per-image engine: a [`PerImageCircuit`] plus the
/// client's part (keys, encryption, decryption) in one value, for runs
/// where one party plays both roles.
pub type PerImageEngine = LocalEngine<PerImageCircuit>;

impl LocalEngine<PerImageCircuit> {
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

    /// [`Self::new`] with explicit [`PerImageOptions`] (the model planned
    /// without recorded activation ranges).
    pub fn with_options(
        model: &ChainForm,
        params: CkksParameters,
        seed: Option<KeySeed>,
        opts: PerImageOptions,
    ) -> Result<Self, HeNnError> {
        let plan = CircuitPlan::new(model, None)?.for_mode(Mode::PerImage);
        Self::from_plan(model, plan, params, seed, opts)
    }

    /// The engine of a planned model (the plan of its weights file).
    pub fn from_plan(
        model: &ChainForm,
        plan: CircuitPlan,
        params: CkksParameters,
        seed: Option<KeySeed>,
        opts: PerImageOptions,
    ) -> Result<Self, HeNnError> {
        let t0 = Instant::now();
        let circuit = PerImageCircuit::new(model, plan, params, opts.start_level())?;
        let mut engine = Self::with_circuit(circuit, seed, opts.labels(), opts.encryption())?;
        engine.setup_ms = t0.elapsed().as_secs_f64() * 1e3;
        Ok(engine)
    }

    /// Number of Galois keys (distinct rotation steps of the circuit).
    pub fn galois_key_count(&self) -> usize {
        self.evaluator.keys().galois().map_or(0, |g| g.len())
    }

    /// Parameters, levels and per-layer layout in one line.
    pub fn describe(&self) -> String {
        let p = self.circuit.pipeline();
        format!(
            "{}; input at level {} -> logits at level {}; {} Galois keys; {}",
            self.circuit.params().describe(),
            p.start_level(),
            p.end_level(),
            self.galois_key_count(),
            p.describe()
        )
    }

    /// The 10 logits of one 784-pixel image in [0, 1], and its stage times (ms).
    pub fn infer(&self, image: &[f32]) -> Result<(Vec<f64>, StageTimes), HeNnError> {
        let out = self.infer_call(&[image], None, false)?;
        let logits = out.logits.into_iter().next().unwrap_or_default();
        Ok((logits, out.times))
    }

    /// As [`Self::infer`], and decrypts after every stage to report the
    /// precision of each layer against the plaintext forward pass (the
    /// intermediate decryptions are not counted in the stage times).
    pub fn infer_with_precision(
        &self,
        image: &[f32],
    ) -> Result<(Vec<f64>, StageTimes, Vec<LayerPrecision>), HeNnError> {
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
        let mut times = StageTimes::default();
        let t = Instant::now();
        let ct = self.client.encrypt(&[image])?;
        times.encrypt = ms(t);
        let x: Vec<f64> = image.iter().map(|&v| f64::from(v)).collect();
        let reference = reference_stages(&self.circuit.model, &x);
        let pipeline = self.circuit.pipeline();
        let mut report = Vec::new();
        let mut after = |i: usize, ct: &Ciphertext| {
            let got = pipeline.stage_values(i, &self.client.decrypt_slots(ct));
            let want = &reference[i];
            let errs: Vec<f64> = got.iter().zip(want).map(|(a, b)| (a - b).abs()).collect();
            let (max_bits, mean_bits) = precision_bits(&got, want);
            report.push(LayerPrecision {
                stage: stage_name(i),
                len: want.len(),
                level: ct.level(),
                max_abs_error: errs.iter().fold(0.0, |a: f64, &e| a.max(e)),
                p99_abs_error: slaf_nn::stats::percentile(&errs, 0.99),
                mean_abs_error: errs.iter().sum::<f64>() / errs.len().max(1) as f64,
                max_abs_value: want.iter().fold(0.0, |a: f64, &v| a.max(v.abs())),
                max_bits,
                mean_bits,
            });
        };
        let input = ct
            .into_iter()
            .next()
            .ok_or_else(|| HeNnError::InvalidRequest {
                detail: "no ciphertext for the image".into(),
            })?;
        let (out, stage_ms) =
            self.circuit
                .evaluate_one(&self.evaluator, &input, Some(&mut after))?;
        times.stages = stage_ms;
        let t = Instant::now();
        let logits = self
            .client
            .decrypt(&[out], 1)?
            .into_iter()
            .next()
            .unwrap_or_default();
        times.decrypt = ms(t);
        Ok((logits, times, report))
    }
}
