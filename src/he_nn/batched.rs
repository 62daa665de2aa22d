//! Batched encrypted inference: one image per CKKS slot (CryptoNets-style
//! SIMD); every layer is a scalar-times-ciphertext sum, no rotations.
//!
//! Layout: slot `b` of every ciphertext belongs to image `b` of the batch
//! (up to N/2 images). The input is 784 ciphertexts, one per pixel
//! position, encrypted at the planner's [`CircuitPlan::start_level`] (the
//! lowest level that fits the depth and the logits, so that no unused prime
//! is ever processed).
//!
//! Pipeline, streamed over chunks of conv features so that memory stays
//! bounded (784 inputs + `hidden` accumulators + one chunk):
//! 1. conv: for a chunk of features, `sum_k round(w_k·q)·pixel_k` with
//!    [`Evaluator::linear_combinations_into`] (lazy modular reduction,
//!    cache-blocked), bias, one rescale → scale Δ exactly;
//! 2. act1 on every feature of the chunk. A square or cubic activation is
//!    fused with the next linear layer: its last product is left
//!    unrelinearised and unrescaled (its constant term goes into the next
//!    bias), so that relinearisation happens once per dense1 output instead
//!    of once per feature (none per feature for x²). Relinearisation always
//!    precedes rescaling: rescaling a 3-part ciphertext would multiply its
//!    rounding error by s² on decryption (measured: ~5 bits lost). Other
//!    polynomials use the depth-optimal evaluator;
//! 3. the chunk's contribution to the dense1 accumulators, again as one
//!    fused linear combination;
//!
//! then, once all features are in: dense1 relinearisation, bias and
//! rescales, act2, fc2,
//! decryption and decoding of the 10 logit ciphertexts. Scales are exact
//! at every layer.
//!
//! A debug option ([`BatchedOptions::precision`]) decrypts every
//! ciphertext (every feature) after each layer and compares it with the plaintext
//! forward pass (it uses the secret key; off in timing runs).

use super::plan::{ActPlan, CircuitPlan};
use super::{HeNnError, StageTimes};
use crate::ckks::circuits::PolynomialEvaluator;
use crate::ckks::{
    Ciphertext, CkksContext, CkksError, CkksParameters, Encoder, Encryptor, EvaluationKeys,
    Evaluator, KeyGenerator, KeySeed, PublicKey, SecretKey, decrypt,
};
use crate::nn::ChainForm;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Options of the batched engine.
#[derive(Clone, Debug)]
pub struct BatchedOptions {
    /// 256-bit seed of the key and encryption randomness (None: the OS
    /// CSPRNG). A seeded run's keys are for tests only.
    pub seed: Option<KeySeed>,
    /// Decrypt every ciphertext after each layer and report precision (max
    /// and 99th percentile over all features; needs the secret key; slow).
    pub precision: bool,
    /// Conv features per streamed chunk.
    pub chunk: usize,
}

impl Default for BatchedOptions {
    fn default() -> Self {
        Self {
            seed: None,
            precision: false,
            chunk: 128,
        }
    }
}

/// Precision of one layer (debug option): decrypted vs plaintext values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerPrecision {
    /// `conv`, `act1`, `fc1`, `act2`, `fc2`.
    pub layer: String,
    /// Max |decrypted - plaintext| over every value of the layer.
    pub max_abs_error: f64,
    /// 99th percentile of |decrypted - plaintext| (over several batches:
    /// the largest of the batches' percentiles).
    #[serde(default)]
    pub p99_abs_error: f64,
    /// −log2 of `max_abs_error`.
    pub bits: f64,
    /// Max |plaintext| over the compared values (for scale).
    pub max_abs_value: f64,
    /// Values compared.
    pub samples: usize,
}

impl LayerPrecision {
    fn new(layer: &str, got: &[f64], want: &[f64]) -> Self {
        let errs: Vec<f64> = got.iter().zip(want).map(|(a, b)| (a - b).abs()).collect();
        let err = errs.iter().copied().fold(0.0f64, f64::max);
        Self {
            layer: layer.to_string(),
            max_abs_error: err,
            p99_abs_error: p99(errs),
            bits: -err.max(f64::MIN_POSITIVE).log2(),
            max_abs_value: want.iter().fold(0.0f64, |m, v| m.max(v.abs())),
            samples: got.len(),
        }
    }

    /// Merge two measurements of the same layer (worst error).
    pub fn merge(&mut self, o: &LayerPrecision) {
        if o.max_abs_error > self.max_abs_error {
            self.max_abs_error = o.max_abs_error;
            self.bits = o.bits;
        }
        self.p99_abs_error = self.p99_abs_error.max(o.p99_abs_error);
        self.max_abs_value = self.max_abs_value.max(o.max_abs_value);
        self.samples += o.samples;
    }
}

/// The 99th percentile (nearest rank) of `v`; 0 when empty.
pub fn p99(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((0.99 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// The result of one batch.
#[derive(Clone, Debug)]
pub struct BatchOutput {
    /// Logits per image (10 each).
    pub logits: Vec<Vec<f64>>,
    /// Stage times of the whole batch (ms).
    pub times: StageTimes,
    /// Per-layer precision (debug option only).
    pub precision: Option<Vec<LayerPrecision>>,
}

/// The batched engine: keys, parameters and the model's weights prepared
/// for slot-wise evaluation.
pub struct BatchedEngine {
    ctx: Arc<CkksContext>,
    encoder: Encoder,
    /// Owns the relinearisation key.
    evaluator: Evaluator,
    sk: SecretKey,
    pk: PublicKey,
    plan: CircuitPlan,
    model: ChainForm,
    /// Conv taps per output feature: (pixel, weight).
    taps: Vec<Vec<(usize, f64)>>,
    /// Each dense layer's bias plus the constant term its fused activation
    /// leaves out (`b_i + c0 · sum_j W_ij`).
    biases: Vec<Vec<f64>>,
    start_level: usize,
    scale: f64,
    input_scale: f64,
    out_scale: f64,
    opts: BatchedOptions,
    rng: Mutex<ChaCha20Rng>,
}

impl std::fmt::Debug for BatchedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BatchedEngine({}, start level {}, depth {})",
            self.ctx.params().describe(),
            self.start_level,
            self.plan.depth
        )
    }
}

fn wall_ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl Drop for BatchedEngine {
    fn drop(&mut self) {
        // The encryption generator's state would let its owner recompute
        // the inputs' encryption randomness.
        if let Ok(rng) = self.rng.get_mut() {
            crate::ckks::keys::wipe_rng(rng);
        }
    }
}

impl BatchedEngine {
    /// Generate keys and prepare the model for `params` (checked against the plan).
    pub fn new(
        model: &ChainForm,
        plan: CircuitPlan,
        params: CkksParameters,
        opts: BatchedOptions,
    ) -> Result<Self, HeNnError> {
        model.validate()?;
        if plan.acts.len() != model.pairs.len() {
            return Err(HeNnError::InvalidRequest {
                detail: format!(
                    "the plan has {} activations, the model {}",
                    plan.acts.len(),
                    model.pairs.len()
                ),
            });
        }
        if opts.precision && model.pairs.len() != 2 {
            return Err(HeNnError::InvalidRequest {
                detail: format!(
                    "the precision option covers conv → act → dense → act → dense; this model has {} activations",
                    model.pairs.len()
                ),
            });
        }
        let start_level = plan.start_level(&params)?;
        let scale = params.default_scale();
        // Output scale: the default one unless the last level is too small for the logits.
        let final_level = start_level - plan.depth;
        let final_bits: f64 = params.q()[..=final_level]
            .iter()
            .map(|&q| (q as f64).log2())
            .sum();
        let room = final_bits - plan.logit_bits(1.0);
        let out_scale = scale.min(2f64.powf(room.floor()));
        if out_scale < 2f64.powi(10) {
            return Err(HeNnError::Layout {
                detail: format!(
                    "the last level ({final_bits:.0} bits) leaves no room for logits up to {:.3e}; use a chain with a larger first prime or one more level",
                    plan.logit_bound
                ),
            });
        }
        if opts.chunk == 0 {
            return Err(HeNnError::InvalidRequest {
                detail: "chunk size must be positive".into(),
            });
        }
        // Input scale: public-key encryption noise in a slot is about
        // 3.7·N (σ·N·sqrt(4/3)), the conv weights are rounded to integers
        // round(w·c) with c = Δ·q / s_in; s_in balances the two errors
        // (s_in² ≈ 3.7·N·Δ·q / 0.29), which gains ~8 bits over s_in = Δ.
        let q_top = params.q()[start_level] as f64;
        let balanced = ((3.7 * params.n() as f64).log2() + (scale * q_top / 0.29).log2()) / 2.0;
        let input_scale = 2f64.powi(balanced.round() as i32).max(scale);
        let ctx = CkksContext::new(params)?;
        // Two one-way derivations of the seed: the encryption generator
        // kept by the engine cannot regenerate the key seed. The key
        // generator's state is wiped once the keys are made.
        let seed = opts.seed.clone().unwrap_or_else(KeySeed::from_os_rng);
        let mut keygen = KeyGenerator::from_seed(&ctx, &seed.derive("batched keys"));
        let pk = keygen.public_key();
        let rk = keygen.relinearization_key();
        let sk = keygen.into_secret_key();
        let enc_rng = seed.derive("batched encryption").rng();
        drop(seed);
        let g = model.conv.geom;
        if g.in_c != 1 {
            return Err(HeNnError::Layout {
                detail: format!(
                    "the batched engine's conv takes one input channel, the first conv has {}",
                    g.in_c
                ),
            });
        }
        let (oh, ow, k, kk) = (g.out_h(), g.out_w(), g.k, g.patch());
        let mut taps = Vec::with_capacity(g.out_len());
        for co in 0..g.out_c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut t = Vec::with_capacity(kk);
                    for ky in 0..k {
                        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                        if iy < 0 || iy >= g.in_h as isize {
                            continue;
                        }
                        for kx in 0..k {
                            let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                            if ix < 0 || ix >= g.in_w as isize {
                                continue;
                            }
                            t.push((
                                iy as usize * g.in_w + ix as usize,
                                model.conv.weight[co * kk + ky * k + kx],
                            ));
                        }
                    }
                    taps.push(t);
                }
            }
        }
        let with_offset = |d: &crate::nn::Dense, off: f64| -> Vec<f64> {
            d.weight
                .chunks(d.cols.max(1))
                .zip(&d.bias)
                .map(|(row, b)| b + off * row.iter().sum::<f64>())
                .collect()
        };
        let biases = model
            .pairs
            .iter()
            .zip(&plan.acts)
            .map(|((_, d), a)| with_offset(d, Self::act_offset(a)))
            .collect();
        Ok(Self {
            encoder: Encoder::new(&ctx),
            biases,
            evaluator: Evaluator::with_keys(&ctx, EvaluationKeys::new(Some(rk), None)),
            ctx,
            sk,
            pk,
            plan,
            model: model.clone(),
            taps,
            start_level,
            scale,
            input_scale,
            out_scale,
            opts,
            rng: Mutex::new(enc_rng),
        })
    }

    /// Images per batch (N/2).
    pub fn batch_size(&self) -> usize {
        self.ctx.params().slots()
    }

    /// The parameters.
    pub fn params(&self) -> &CkksParameters {
        self.ctx.params()
    }

    /// The circuit plan.
    pub fn plan(&self) -> &CircuitPlan {
        &self.plan
    }

    /// The level the inputs are encrypted at.
    pub fn start_level(&self) -> usize {
        self.start_level
    }

    /// Scale the inputs are encrypted at.
    pub fn input_scale(&self) -> f64 {
        self.input_scale
    }

    /// Scale of the decrypted logits.
    pub fn output_scale(&self) -> f64 {
        self.out_scale
    }

    /// Conv features (= streamed units of work per batch, for progress bars).
    pub fn features(&self) -> usize {
        self.taps.len()
    }

    /// Bytes of the public and relinearisation keys (no Galois keys are needed).
    pub fn key_bytes(&self) -> usize {
        let n = self.ctx.params().n();
        let limbs = self.ctx.params().max_level() + 1;
        2 * limbs * n * 8 + limbs * 2 * (limbs + 1) * n * 8
    }

    /// Bytes of one input ciphertext (784 of them per batch).
    pub fn ciphertext_bytes(&self) -> usize {
        2 * (self.start_level + 1) * self.ctx.params().n() * 8
    }

    fn decrypt_slots(&self, ct: &Ciphertext, count: usize) -> Vec<f64> {
        let mut v = self.encoder.decode(&decrypt(&self.ctx, &self.sk, ct));
        v.truncate(count);
        v
    }

    fn encrypt_inputs(&self, images: &[&[f32]]) -> Result<Vec<Ciphertext>, HeNnError> {
        let pixels = self.model.conv.geom.in_len();
        const GROUPS: usize = 16;
        let seeds: Vec<KeySeed> = {
            let mut rng = self.rng.lock().map_err(|_| HeNnError::InvalidRequest {
                detail: "encryption randomness poisoned by an earlier panic".into(),
            })?;
            (0..GROUPS).map(|_| KeySeed::from_rng(&mut *rng)).collect()
        };
        let per = pixels.div_ceil(GROUPS);
        let groups: Vec<Vec<Ciphertext>> = seeds
            .into_par_iter()
            .enumerate()
            .map(|(g, seed)| {
                let mut enc = Encryptor::new(&self.ctx, self.pk.clone(), seed.rng());
                (g * per..((g + 1) * per).min(pixels))
                    .map(|j| {
                        let vals: Vec<f64> = images.iter().map(|im| f64::from(im[j])).collect();
                        let pt = self
                            .encoder
                            .encode(&vals, self.start_level, self.input_scale)?;
                        Ok(enc.encrypt(&pt))
                    })
                    .collect::<Result<Vec<_>, CkksError>>()
            })
            .collect::<Result<_, _>>()?;
        Ok(groups.into_iter().flatten().collect())
    }

    /// Whether `act` is evaluated fused with the next linear layer: its last
    /// product is neither relinearised nor rescaled (see [`Self::activate`]).
    fn fused(act: &ActPlan) -> bool {
        match act {
            ActPlan::Square { .. } => true,
            ActPlan::Poly { poly, .. } => poly.degree() == 3,
        }
    }

    /// The constant term the fused evaluation leaves out (added through the
    /// next layer's bias instead).
    fn act_offset(act: &ActPlan) -> f64 {
        match act {
            ActPlan::Poly { poly, .. } if Self::fused(act) => poly.coeffs[0],
            _ => 0.0,
        }
    }

    /// Evaluate an activation on `ct` (2 parts, scale Δ); returns the result
    /// and the number of rescales it still owes (0 or 1).
    ///
    /// Square and cubic activations are fused with the following linear
    /// layer: `x²` resp. `x²·(c2 + c3·x) + c1·x` (c0 goes into the next
    /// bias) is returned as an unrelinearised, unrescaled 3-part ciphertext;
    /// the linear layer accumulates it, relinearises the sums (before any
    /// rescale, so the rounding noise is not multiplied by s²) and rescales
    /// twice. Same depth, but one key switch per feature fewer (none for
    /// x²). Other polynomials go through the depth-optimal evaluator.
    fn activate(&self, act: &ActPlan, ct: &Ciphertext) -> Result<(Ciphertext, usize), HeNnError> {
        let ev = &self.evaluator;
        match act {
            ActPlan::Square { .. } => Ok((ev.mul(ct, ct)?, 1)),
            ActPlan::Poly { poly, .. } if Self::fused(act) => {
                let (c1, c2, c3) = (poly.coeffs[1], poly.coeffs[2], poly.coeffs[3]);
                let l = ct.level();
                if l < 2 {
                    return Err(CkksError::LevelExhausted {
                        op: "cubic activation",
                        level: l,
                    }
                    .into());
                }
                let q = |k: usize| self.ctx.params().q()[k] as f64;
                let s = ct.scale();
                // x² at level l-1.
                let x2 = ev.mul_relin_rescale(ct, ct, ev.relin_key("cubic activation")?)?;
                // c2 + c3·x at level l-1, scale t = q_{l-1}.
                let t = q(l - 1);
                let qx = ev.rescale(&ev.mul_scalar(ct, c3, t * q(l) / s)?)?;
                let qx = ev.add_scalar(&qx, c2)?;
                let prod = ev.mul(&x2, &qx)?;
                // c1·x at level l-1 on the product's scale.
                let mut rx = ev.rescale(&ev.mul_scalar(ct, c1, prod.scale() * q(l) / s)?)?;
                // Same scale up to rounding of the exact quotient.
                ev.set_scale(&mut rx, prod.scale())?;
                Ok((ev.add(&prod, &rx)?, 1))
            }
            ActPlan::Poly { poly, plan } => Ok((
                PolynomialEvaluator::new(&self.evaluator).evaluate_plan(
                    ct,
                    poly,
                    plan,
                    Some(self.scale),
                )?,
                0,
            )),
        }
    }

    /// Fused `rows` linear combinations of `xs` (which owe `pending`
    /// rescales), accumulated into `accs` (created when `None`) so that
    /// after `pending + 1` rescales the result has scale `target`.
    fn dense(
        &self,
        xs: &[&Ciphertext],
        rows: &[Vec<(usize, f64)>],
        target: f64,
        pending: usize,
        accs: Option<Vec<Ciphertext>>,
    ) -> Result<Vec<Ciphertext>, HeNnError> {
        let Some(x0) = xs.first() else {
            return Ok(accs.unwrap_or_default());
        };
        let level = x0.level();
        if level < pending + 1 {
            return Err(CkksError::LevelExhausted {
                op: "linear layer",
                level,
            }
            .into());
        }
        let q = self.ctx.params().q();
        let drop: f64 = (0..=pending).map(|k| q[level - k] as f64).product();
        let c = target * drop / x0.scale();
        let parts = xs.iter().map(|x| x.part_count()).max().unwrap_or(2);
        let mut accs = accs.unwrap_or_else(|| {
            (0..rows.len())
                .map(|_| self.evaluator.zero_ciphertext(level, parts, x0.scale() * c))
                .collect()
        });
        self.evaluator
            .linear_combinations_into(xs, rows, c, &mut accs)?;
        Ok(accs)
    }

    /// Relinearise (3-part sums), rescale `rescales` times (at least 1)
    /// adding the biases before the last one, and pin the scale to `target`.
    fn finish(
        &self,
        accs: Vec<Ciphertext>,
        bias: &[f64],
        target: f64,
        rescales: usize,
    ) -> Result<Vec<Ciphertext>, HeNnError> {
        accs.into_par_iter()
            .zip(bias.par_iter())
            .map(|(a, &b)| {
                // Relinearise before any rescale; the bias goes in at the
                // last rescale's input scale (~Δ·q, where it fits 62 bits).
                let ev = &self.evaluator;
                let mut r = ev.relinearize(&a, ev.relin_key("linear layer")?)?;
                for _ in 1..rescales {
                    r = self.evaluator.rescale(&r)?;
                }
                let r = self.evaluator.add_scalar(&r, b)?;
                let mut r = self.evaluator.rescale(&r)?;
                // The exact scale equals the target up to the rounding of
                // the constants' quotients; anything more is a planning bug
                // and must not be relabelled away (release builds too).
                let rel = ((r.scale() - target) / target).abs();
                if rel.is_nan() || rel > 1e-9 {
                    return Err(CkksError::Mismatch {
                        op: "linear layer",
                        detail: format!(
                            "scale {:.6e} after rescaling differs from the planned {target:.6e} (relative {rel:.1e})",
                            r.scale()
                        ),
                    }
                    .into());
                }
                self.evaluator.set_scale(&mut r, target)?;
                Ok(r)
            })
            .collect()
    }

    /// Run one batch (at most [`Self::batch_size`] images of 784 pixels in
    /// [0, 1]); `progress` is called with the number of conv features done.
    pub fn infer_batch(
        &self,
        images: &[&[f32]],
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<BatchOutput, HeNnError> {
        let count = images.len();
        let g = self.model.conv.geom;
        if count == 0 || count > self.batch_size() {
            return Err(HeNnError::InvalidRequest {
                detail: format!(
                    "a batch holds 1..={} images, got {count}",
                    self.batch_size()
                ),
            });
        }
        if let Some(bad) = images.iter().position(|im| im.len() != g.in_len()) {
            return Err(HeNnError::InvalidRequest {
                detail: format!(
                    "image {bad} has {} pixels, expected {}",
                    images[bad].len(),
                    g.in_len()
                ),
            });
        }
        let mut times = StageTimes::default();
        let t = Instant::now();
        let inputs = self.encrypt_inputs(images)?;
        times.encrypt = wall_ms(t);

        // Plaintext reference for the precision option.
        let reference = self.opts.precision.then(|| self.reference(images));
        let mut prec: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); 5];
        let sample =
            |layer: usize, ct: &Ciphertext, want: &dyn Fn(usize) -> f64, fold: f64, off: f64| {
                (
                    self.decrypt_slots(ct, count)
                        .into_iter()
                        .map(|v| v * fold + off)
                        .collect::<Vec<_>>(),
                    (0..count).map(want).collect::<Vec<_>>(),
                    layer,
                )
            };

        let dense1 = &self.model.pairs[0].1;
        let hidden = dense1.rows;
        let feats = self.taps.len();
        let act1 = &self.plan.acts[0];
        let fold1 = act1.fold();
        let off1 = Self::act_offset(act1);
        let mut pending1 = 0;
        let mut accs: Option<Vec<Ciphertext>> = None;
        for f0 in (0..feats).step_by(self.opts.chunk) {
            let f1 = (f0 + self.opts.chunk).min(feats);
            // conv
            let t = Instant::now();
            let xs: Vec<&Ciphertext> = inputs.iter().collect();
            let conv = self.dense(&xs, &self.taps[f0..f1], self.scale, 0, None)?;
            let conv = self.finish(
                conv,
                &self.model.conv.bias_per_feature(f0, f1),
                self.scale,
                1,
            )?;
            times.conv += wall_ms(t);
            // act1
            let t = Instant::now();
            let acts: Vec<(Ciphertext, usize)> = conv
                .par_iter()
                .map(|c| self.activate(act1, c))
                .collect::<Result<_, _>>()?;
            pending1 = acts.first().map_or(0, |a| a.1);
            times.act1 += wall_ms(t);
            if let Some(r) = &reference {
                // Every feature of the chunk (a debug option: one
                // decryption per feature and layer).
                for k in 0..f1 - f0 {
                    let f = f0 + k;
                    let (a, b, l) = sample(0, &conv[k], &|i| r.conv[i][f], 1.0, 0.0);
                    prec[l].0.extend(a);
                    prec[l].1.extend(b);
                    let (a, b, l) = sample(1, &acts[k].0, &|i| r.act1[i][f], fold1, off1);
                    prec[l].0.extend(a);
                    prec[l].1.extend(b);
                }
            }
            drop(conv);
            // dense1 contribution
            let t = Instant::now();
            let xs: Vec<&Ciphertext> = acts.iter().map(|a| &a.0).collect();
            let rows: Vec<Vec<(usize, f64)>> = (0..hidden)
                .map(|i| {
                    let w = &dense1.weight[i * feats..(i + 1) * feats];
                    (f0..f1).map(|f| (f - f0, w[f] * fold1)).collect()
                })
                .collect();
            accs = Some(self.dense(&xs, &rows, self.scale, pending1, accs.take())?);
            times.fc1 += wall_ms(t);
            if let Some(p) = progress {
                p((f1 - f0) as u64);
            }
        }
        let t = Instant::now();
        let mut h = self.finish(
            accs.unwrap_or_default(),
            &self.biases[0],
            self.scale,
            pending1 + 1,
        )?;
        times.fc1 += wall_ms(t);
        // Every later (activation, dense) pair on the whole hidden vector;
        // their times go to the act2 and fc2 buckets. The last one gives the
        // logits at the output scale.
        let mut hidden_out: Option<LastPair> = None;
        let last = self.model.pairs.len() - 1;
        for k in 1..=last {
            let act = &self.plan.acts[k];
            let t = Instant::now();
            let hk: Vec<(Ciphertext, usize)> = h
                .par_iter()
                .map(|c| self.activate(act, c))
                .collect::<Result<_, _>>()?;
            let pending = hk.first().map_or(0, |a| a.1);
            times.act2 += wall_ms(t);
            let t = Instant::now();
            let (fold, d) = (act.fold(), &self.model.pairs[k].1);
            let rows: Vec<Vec<(usize, f64)>> = (0..d.rows)
                .map(|i| {
                    let w = &d.weight[i * d.cols..(i + 1) * d.cols];
                    w.iter().enumerate().map(|(j, &v)| (j, v * fold)).collect()
                })
                .collect();
            let target = if k == last {
                self.out_scale
            } else {
                self.scale
            };
            let xs: Vec<&Ciphertext> = hk.iter().map(|a| &a.0).collect();
            let out = self.dense(&xs, &rows, target, pending, None)?;
            let out = self.finish(out, &self.biases[k], target, pending + 1)?;
            times.fc2 += wall_ms(t);
            if k == last {
                let prev = std::mem::replace(&mut h, out);
                hidden_out = Some((prev, hk, fold, Self::act_offset(act)));
            } else {
                h = out;
            }
        }
        let out = h;
        let (h, h2, fold2, off2) = hidden_out.ok_or_else(|| HeNnError::InvalidRequest {
            detail: "a model needs at least two (activation, dense) pairs".into(),
        })?;
        // decrypt
        let t = Instant::now();
        let cols: Vec<Vec<f64>> = out
            .par_iter()
            .map(|c| self.decrypt_slots(c, count))
            .collect();
        let logits: Vec<Vec<f64>> = (0..count)
            .map(|i| cols.iter().map(|c| c[i]).collect())
            .collect();
        times.decrypt = wall_ms(t);

        let precision = reference.map(|r| {
            for j in 0..hidden {
                let (a, b, l) = sample(2, &h[j], &|i| r.fc1[i][j], 1.0, 0.0);
                prec[l].0.extend(a);
                prec[l].1.extend(b);
                let (a, b, l) = sample(3, &h2[j].0, &|i| r.act2[i][j], fold2, off2);
                prec[l].0.extend(a);
                prec[l].1.extend(b);
            }
            for (i, lg) in logits.iter().enumerate() {
                prec[4].0.extend(lg);
                prec[4].1.extend(&r.logits[i]);
            }
            ["conv", "act1", "fc1", "act2", "fc2"]
                .iter()
                .zip(&prec)
                .map(|(name, (got, want))| LayerPrecision::new(name, got, want))
                .collect()
        });
        Ok(BatchOutput {
            logits,
            times,
            precision,
        })
    }

    fn reference(&self, images: &[&[f32]]) -> Reference {
        let m = &self.model;
        let per: Vec<[Vec<f64>; 5]> = images
            .par_iter()
            .map(|im| {
                let x: Vec<f64> = im.iter().map(|&v| f64::from(v)).collect();
                let conv = m.conv.apply(&x);
                let ((a1, d1), (a2, d2)) = (&m.pairs[0], &m.pairs[1]);
                let act1: Vec<f64> = conv.iter().map(|&v| a1.apply(v)).collect();
                let fc1 = d1.apply(&act1);
                let act2: Vec<f64> = fc1.iter().map(|&v| a2.apply(v)).collect();
                let logits = d2.apply(&act2);
                [conv, act1, fc1, act2, logits]
            })
            .collect();
        let mut r = Reference::default();
        for [a, b, c, d, e] in per {
            r.conv.push(a);
            r.act1.push(b);
            r.fc1.push(c);
            r.act2.push(d);
            r.logits.push(e);
        }
        r
    }
}

/// The input of the last dense layer's activation, its outputs (with the
/// rescales they owe), and that activation's fold and offset.
type LastPair = (Vec<Ciphertext>, Vec<(Ciphertext, usize)>, f64, f64);

/// Plaintext intermediates per image (precision option).
#[derive(Default)]
struct Reference {
    conv: Vec<Vec<f64>>,
    act1: Vec<Vec<f64>>,
    fc1: Vec<Vec<f64>>,
    act2: Vec<Vec<f64>>,
    logits: Vec<Vec<f64>>,
}

trait ConvBias {
    fn bias_per_feature(&self, f0: usize, f1: usize) -> Vec<f64>;
}

impl ConvBias for crate::nn::InferenceConv {
    /// Bias of features `f0..f1` (NCHW order: channel = f / (oh·ow)).
    fn bias_per_feature(&self, f0: usize, f1: usize) -> Vec<f64> {
        let ohw = self.geom.out_h() * self.geom.out_w();
        (f0..f1).map(|f| self.bias[f / ohw]).collect()
    }
}
