//! Engines: what the evaluation harness drives. An [`Engine`] encrypts
//! images, runs a circuit and decrypts the logits, whatever the layout and
//! wherever the circuit runs. [`LocalEngine`] is the in-process one: a
//! [`ClientSide`] plus a keyless [`Circuit`] and an evaluator holding the
//! client's evaluation keys; the service crate's remote engine is the same
//! client talking to a server.
//!
//! Invariants: one call evaluates at most [`Engine::images_per_call`]
//! images per circuit evaluation (per image: one image at a time, so the
//! encryption randomness of a seeded run does not depend on how images are
//! grouped); the precision option decrypts the first evaluation's
//! intermediate ciphertexts and compares them with
//! [`slaf_nn::ChainForm::forward_stages`] (those decryptions are not timed,
//! except inside the batched engine's stage buckets).

use crate::circuit::{Circuit, Hooks, check_keys};
use crate::client::{ClientSide, Encryption, SeedLabels};
use crate::layout::Probe;
use crate::{HeNnError, LayerPrecision, Mode, StageTimes};
use rayon::prelude::*;
use slaf_ckks::{Ciphertext, CkksParameters, Evaluator, KeySeed};
use std::sync::Mutex;
use std::time::Instant;

/// What one [`Engine::infer_images`] call returns.
#[derive(Clone, Debug)]
pub struct EngineOutput {
    /// Logits per image, in input order.
    pub logits: Vec<Vec<f64>>,
    /// Stage times of the whole call (ms).
    pub times: StageTimes,
    /// Per-stage precision, when it was asked for.
    pub precision: Option<Vec<LayerPrecision>>,
}

/// An encrypted-inference engine (keys, encryption, the circuit and
/// decryption): what the evaluation harness drives, whatever the layout.
/// Both circuits plan with [`crate::plan::ActPlan`], so the depth a
/// summary reports is the depth the engine ran.
pub trait Engine: Send + Sync {
    /// The layout.
    fn mode(&self) -> Mode;
    /// The CKKS parameters it runs on.
    fn params(&self) -> &CkksParameters;
    /// Most images one circuit evaluation takes (1 per image, the slot
    /// count when batched).
    fn images_per_call(&self) -> usize;
    /// Progress units [`Self::infer_images`] reports for `images` images.
    fn progress_units(&self, images: usize) -> u64;
    /// Encrypt `images` (each [`Self::pixels`] values in [0, 1]), run the
    /// circuit and decrypt. `progress` is called with units done;
    /// `precision` also decrypts the first evaluation's stages against
    /// [`slaf_nn::ChainForm::forward_stages`].
    fn infer_images(
        &self,
        images: &[&[f32]],
        progress: Option<&(dyn Fn(u64) + Sync)>,
        precision: bool,
    ) -> Result<EngineOutput, HeNnError>;
    /// Input values per image.
    fn pixels(&self) -> usize;
    /// Level the inputs are encrypted at.
    fn start_level(&self) -> usize;
    /// Scale of the decrypted logits.
    fn output_scale(&self) -> f64;
    /// Bytes of one ciphertext at the start level.
    fn ciphertext_bytes(&self) -> usize;
    /// Bytes of the encrypted input of one circuit evaluation.
    fn input_bytes(&self) -> usize;
    /// Bytes of the evaluation keys the circuit needs.
    fn key_bytes(&self) -> usize;
}

/// The in-process engine: a circuit, the client's side, and an evaluator
/// holding the client's evaluation keys.
pub struct LocalEngine<C> {
    pub(crate) circuit: C,
    pub(crate) client: ClientSide,
    pub(crate) evaluator: Evaluator,
    key_bytes: usize,
    pub(crate) setup_ms: f64,
    /// Whether the convenience calls of the engines ([`crate::batched::BatchedEngine::infer_batch`])
    /// report precision.
    pub(crate) precision: bool,
}

impl<C: Circuit> std::fmt::Debug for LocalEngine<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalEngine({:?})", self.circuit)
    }
}

impl<C> std::ops::Deref for LocalEngine<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.circuit
    }
}

impl<C: Circuit> LocalEngine<C> {
    /// Keys for `circuit` from `seed` (None: the OS CSPRNG), derived under
    /// `labels`, and the engine that encrypts with `encryption`.
    pub fn with_circuit(
        circuit: C,
        seed: Option<KeySeed>,
        labels: SeedLabels,
        encryption: Encryption,
    ) -> Result<Self, HeNnError> {
        let t0 = Instant::now();
        let ctx = std::sync::Arc::clone(circuit.context());
        let need = circuit.keys();
        let (client, keys) = ClientSide::generate(
            &ctx,
            circuit.layout().clone(),
            &need,
            seed,
            labels,
            encryption,
        );
        let evaluator = Evaluator::with_keys(&ctx, keys.evaluation_keys());
        check_keys(&evaluator, &need)?;
        Ok(Self {
            key_bytes: keys.byte_size(),
            circuit,
            client,
            evaluator,
            setup_ms: t0.elapsed().as_secs_f64() * 1e3,
            precision: false,
        })
    }

    /// The keyless circuit.
    pub fn circuit(&self) -> &C {
        &self.circuit
    }

    /// The client's side (keys, encryption, decryption).
    pub fn client(&self) -> &ClientSide {
        &self.client
    }

    /// The evaluator holding the client's evaluation keys.
    pub fn evaluator(&self) -> &Evaluator {
        &self.evaluator
    }

    /// Bytes in memory of the evaluation keys the circuit needs (public,
    /// relinearisation and Galois keys, in their limbs' word widths).
    pub fn key_bytes(&self) -> usize {
        self.key_bytes
    }

    /// Milliseconds spent making the engine (key generation, and the
    /// circuit's encoding where the constructor measured it).
    pub fn setup_ms(&self) -> f64 {
        self.setup_ms
    }

    /// One circuit evaluation of at most [`Engine::images_per_call`]
    /// images: encrypt, evaluate, decrypt; with `precision`, every probed
    /// stage and the logits against the plaintext forward pass.
    pub fn infer_call(
        &self,
        images: &[&[f32]],
        progress: Option<&(dyn Fn(u64) + Sync)>,
        precision: bool,
    ) -> Result<EngineOutput, HeNnError> {
        let count = images.len();
        let t = Instant::now();
        let inputs = self.client.encrypt(images)?;
        let encrypt_ms = wall_ms(t);
        let samples = precision.then(|| Samples::new(self.circuit.model(), images));
        let probe = |p: Probe, ct: &Ciphertext| {
            if let Some(s) = &samples {
                for (image, first, got) in self.client.probe(&p, ct, count) {
                    s.record(p.layer, image, first, &got);
                }
            }
        };
        let hooks = Hooks {
            progress,
            probe: if precision { Some(&probe) } else { None },
        };
        let (out, mut times) = self.circuit.evaluate(&self.evaluator, inputs, hooks)?;
        times.encrypt = encrypt_ms;
        let t = Instant::now();
        let logits = self.client.decrypt(&out, count)?;
        times.decrypt = wall_ms(t);
        let precision = samples.map(|s| s.finish(&logits)).transpose()?;
        Ok(EngineOutput {
            logits,
            times,
            precision,
        })
    }
}

/// Decrypted intermediate values against the plaintext forward pass's,
/// per chain-form stage (the precision option).
struct Samples {
    /// Plaintext intermediates, by image then stage.
    reference: Vec<Vec<Vec<f64>>>,
    /// (decrypted, plaintext) values per stage.
    pairs: Mutex<Vec<(Vec<f64>, Vec<f64>)>>,
}

impl Samples {
    fn new(model: &slaf_nn::ChainForm, images: &[&[f32]]) -> Self {
        let reference: Vec<Vec<Vec<f64>>> = images
            .par_iter()
            .map(|im| {
                let x: Vec<f64> = im.iter().map(|&v| f64::from(v)).collect();
                model.forward_stages(&x)
            })
            .collect();
        let stages = 1 + 2 * model.pairs.len();
        Self {
            reference,
            pairs: Mutex::new(vec![(Vec::new(), Vec::new()); stages]),
        }
    }

    /// Values `got` of stage `layer` of image `image`, from its value `first` on.
    fn record(&self, layer: usize, image: usize, first: usize, got: &[f64]) {
        let Some(want) = self
            .reference
            .get(image)
            .and_then(|s| s.get(layer))
            .and_then(|s| s.get(first..first + got.len()))
        else {
            return;
        };
        if let Ok(mut p) = self.pairs.lock()
            && let Some((g, w)) = p.get_mut(layer)
        {
            g.extend_from_slice(got);
            w.extend_from_slice(want);
        }
    }

    /// The precision of every stage, the decrypted `logits` standing for
    /// the last one unless a probe showed it.
    fn finish(self, logits: &[Vec<f64>]) -> Result<Vec<LayerPrecision>, HeNnError> {
        let (last, seen) = self
            .pairs
            .lock()
            .map(|p| (p.len() - 1, p.last().is_some_and(|l| !l.0.is_empty())))
            .unwrap_or((0, false));
        if !seen {
            for (i, lg) in logits.iter().enumerate() {
                self.record(last, i, 0, lg);
            }
        }
        let pairs = self
            .pairs
            .into_inner()
            .map_err(|_| HeNnError::InvalidRequest {
                detail: "precision samples poisoned by an earlier panic".into(),
            })?;
        Ok(pairs
            .iter()
            .enumerate()
            .map(|(i, (got, want))| LayerPrecision::new(&StageTimes::stage_name(i), got, want))
            .collect())
    }
}

pub(crate) fn wall_ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl<C: Circuit> Engine for LocalEngine<C> {
    fn mode(&self) -> Mode {
        self.circuit.mode()
    }
    fn params(&self) -> &CkksParameters {
        self.circuit.context().params()
    }
    fn images_per_call(&self) -> usize {
        self.circuit.layout().images_per_call()
    }
    fn progress_units(&self, images: usize) -> u64 {
        self.circuit.progress_units(images)
    }
    fn infer_images(
        &self,
        images: &[&[f32]],
        progress: Option<&(dyn Fn(u64) + Sync)>,
        precision: bool,
    ) -> Result<EngineOutput, HeNnError> {
        if images.is_empty() {
            return Err(HeNnError::InvalidRequest {
                detail: "no image to infer".into(),
            });
        }
        let mut out = EngineOutput {
            logits: Vec::with_capacity(images.len()),
            times: StageTimes::default(),
            precision: None,
        };
        for (k, call) in images.chunks(self.images_per_call()).enumerate() {
            let o = self.infer_call(call, progress, precision && k == 0)?;
            out.logits.extend(o.logits);
            out.times.add(&o.times);
            if o.precision.is_some() {
                out.precision = o.precision;
            }
        }
        Ok(out)
    }
    fn pixels(&self) -> usize {
        self.circuit.layout().pixels()
    }
    fn start_level(&self) -> usize {
        self.circuit.layout().start_level()
    }
    fn output_scale(&self) -> f64 {
        self.circuit.layout().output_scale()
    }
    fn ciphertext_bytes(&self) -> usize {
        self.circuit.layout().ciphertext_bytes(self.params())
    }
    fn input_bytes(&self) -> usize {
        let layout = self.circuit.layout();
        layout.inputs_for(layout.images_per_call()) * self.ciphertext_bytes()
    }
    fn key_bytes(&self) -> usize {
        self.key_bytes
    }
}
