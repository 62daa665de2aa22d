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
//! bounded. Chunks are taken position-major (every channel of an output
//! position together, row by row), so each input ciphertext is dropped
//! after the chunk that reads it last, and a dense1 accumulator exists
//! only from the first chunk that feeds it to the last (a dense1 that is a
//! pooled, strided second conv reads a window of rows; a fully connected
//! one keeps every accumulator open). [`BatchedCircuit::stream_profile`]
//! gives both counts per chunk. Measured on MNIST cnn4-SLAF-P (N = 32768,
//! 18 input primes, 6.9 GiB of inputs): peak RSS 11.8 GiB, where the
//! channel-major order with every accumulator open from the start was
//! stopped at 21.6 GiB and still growing (the kernel had OOM-killed it
//! at 24 GiB before).
//!
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
//! 4. dense1 relinearisation, bias and rescales for every row whose last
//!    chunk this was;
//!
//! then act2, fc2, … on the whole hidden vector (each layer's inputs
//! dropped once activated, the activations once summed), decryption and
//! decoding of the 10 logit ciphertexts. Scales are exact at every layer.
//!
//! A debug option ([`BatchedOptions::precision`]) decrypts every
//! ciphertext (every feature) after each layer and compares it with the plaintext
//! forward pass (it uses the secret key; off in timing runs).

use super::circuit::{Circuit, Hooks, KeyRequirements, check_fresh};
use super::client::{Encryption, SeedLabels};
use super::engine::{EngineOutput, LocalEngine, wall_ms};
use super::layout::{BatchedLayout, Layout, Probe};
use super::plan::{ActPlan, CircuitPlan};
use super::{HeNnError, StageTimes};
use rayon::prelude::*;
use slaf_ckks::circuits::{CircuitBackend, FusedBackend, PolynomialEvaluator};
use slaf_ckks::{Ciphertext, CkksContext, CkksError, CkksParameters, Evaluator, KeySeed};
use slaf_nn::ChainForm;
use std::sync::Arc;
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

pub use super::LayerPrecision;

/// The 99th percentile (nearest rank, [`slaf_nn::stats::percentile`]) of `v`; 0 when empty.
pub fn p99(v: Vec<f64>) -> f64 {
    slaf_nn::stats::percentile(&v, 0.99)
}

/// One chunk of the streamed first block ([`BatchedCircuit::stream_profile`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamStep {
    /// Conv features computed in this chunk.
    pub features: usize,
    /// Input ciphertexts still held while it runs.
    pub inputs_held: usize,
    /// dense1 accumulators open while it runs.
    pub open_accumulators: usize,
}

/// The result of one batch.
pub type BatchOutput = EngineOutput;

/// A backend the batched circuit runs on: the evaluator, or the simulator.
pub trait Fused: FusedBackend<Ciphertext: Clone + Send + Sync> + Sync {}
impl<B: FusedBackend<Ciphertext: Clone + Send + Sync> + Sync> Fused for B {}

/// A probe of intermediate ciphertexts on backend `B` (the precision
/// option; [`crate::circuit::ProbeFn`] on real ciphertexts).
pub type GenericProbe<'a, B> = &'a (dyn Fn(Probe, &<B as CircuitBackend>::Ciphertext) + Sync);

/// The server side of batched inference: parameters and the model's
/// weights prepared for slot-wise evaluation, with no key at all. The
/// evaluation keys come with each call (an [`Evaluator`] holding a client's
/// relinearisation key), so one circuit serves any number of clients.
pub struct BatchedCircuit {
    ctx: Arc<CkksContext>,
    plan: CircuitPlan,
    model: ChainForm,
    /// Conv taps per output feature: (pixel, weight).
    taps: Vec<Vec<(usize, f64)>>,
    /// The streamed chunks of conv features, position-major (every channel
    /// of an output position together), so that the input rows a chunk
    /// reads are soon read for the last time.
    chunks: Vec<Vec<usize>>,
    /// The pixels read for the last time by each chunk: their ciphertexts
    /// are dropped once it is done.
    released: Vec<Vec<usize>>,
    /// For each dense1 row, the first and last chunk with a non-zero
    /// weight into it: its accumulator lives only between the two.
    spans: Vec<(usize, usize)>,
    /// Each dense layer's bias plus the constant term its fused activation
    /// leaves out (`b_i + c0 · sum_j W_ij`).
    biases: Vec<Vec<f64>>,
    /// The batched layout (levels and scales from the plan).
    layout: Layout,
    /// The default scale Δ every hidden layer lands on.
    scale: f64,
}

impl std::fmt::Debug for BatchedCircuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BatchedCircuit({}, start level {}, depth {})",
            self.ctx.params().describe(),
            self.start_level(),
            self.plan.depth
        )
    }
}

fn conv_taps(model: &ChainForm) -> Vec<Vec<(usize, f64)>> {
    let g = model.conv.geom;
    let (oh, ow, kk) = (g.out_h(), g.out_w(), g.patch());
    let mut taps = Vec::with_capacity(g.out_len());
    for co in 0..g.out_c {
        let w = &model.conv.weight[co * kk..(co + 1) * kk];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut t = Vec::with_capacity(kk);
                for run in g.window(oy, ox) {
                    t.extend((0..run.len).map(|j| (run.x + j, w[run.w + j])));
                }
                taps.push(t);
            }
        }
    }
    taps
}

impl BatchedCircuit {
    /// Prepare `model` for `params` (checked against the plan); no keys.
    pub fn new(
        model: &ChainForm,
        plan: CircuitPlan,
        params: CkksParameters,
        chunk: usize,
    ) -> Result<Self, HeNnError> {
        plan.check_model(model)?;
        if model.pairs.len() < 2 {
            return Err(HeNnError::Layout {
                detail: format!(
                    "the batched engine needs at least two (activation, dense) pairs, the model has {}",
                    model.pairs.len()
                ),
            });
        }
        let layout = BatchedLayout::new(&plan, &params, model)?;
        if chunk == 0 {
            return Err(HeNnError::InvalidRequest {
                detail: "chunk size must be positive".into(),
            });
        }
        let scale = params.default_scale();
        let g = model.conv.geom;
        if g.in_c != 1 {
            return Err(HeNnError::Layout {
                detail: format!(
                    "the batched engine's conv takes one input channel, the first conv has {}",
                    g.in_c
                ),
            });
        }
        let with_offset = |d: &slaf_nn::Dense, off: f64| -> Vec<f64> {
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
        let taps = conv_taps(model);
        let (chunks, released) = stream_order(&taps, g.out_h() * g.out_w(), g.in_len(), chunk);
        let spans = row_spans(&model.pairs[0].1, &chunks);
        Ok(Self {
            ctx: CkksContext::new(params)?,
            biases,
            taps,
            chunks,
            released,
            spans,
            plan,
            model: model.clone(),
            layout: Layout::Batched(layout),
            scale,
        })
    }

    /// The shared CKKS context.
    pub fn context(&self) -> &Arc<CkksContext> {
        &self.ctx
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
        self.layout.start_level()
    }

    /// Scale the inputs are encrypted at.
    pub fn input_scale(&self) -> f64 {
        self.layout.input_scale()
    }

    /// Scale of the decrypted logits.
    pub fn output_scale(&self) -> f64 {
        self.layout.output_scale()
    }

    /// Conv features (= streamed units of work per batch, for progress bars).
    pub fn features(&self) -> usize {
        self.taps.len()
    }

    /// Input ciphertexts per batch (one per pixel).
    pub fn pixels(&self) -> usize {
        self.layout.pixels()
    }

    /// Output ciphertexts per batch (one per logit).
    pub fn outputs(&self) -> usize {
        self.layout.outputs()
    }

    /// Bytes of one input ciphertext ([`Self::pixels`] of them per batch).
    pub fn ciphertext_bytes(&self) -> usize {
        self.layout.ciphertext_bytes(self.ctx.params())
    }

    /// The streamed first block (conv → act1 → dense1), chunk by chunk: the
    /// input ciphertexts still held and the dense1 accumulators open while
    /// the chunk runs. With the inputs, these are the ciphertexts that
    /// bound the engine's memory: the inputs held fall as the rows above
    /// the chunk are done, and a dense1 row that reads a window of conv
    /// features (a pooled or strided second conv) is open only over it.
    pub fn stream_profile(&self) -> Vec<StreamStep> {
        let mut held = self.pixels();
        self.chunks
            .iter()
            .zip(&self.released)
            .enumerate()
            .map(|(ci, (chunk, released))| {
                let step = StreamStep {
                    features: chunk.len(),
                    inputs_held: held,
                    open_accumulators: self.open_rows(ci).count(),
                };
                held -= released.len();
                step
            })
            .collect()
    }

    /// The dense1 rows whose accumulator is open during chunk `ci`.
    fn open_rows(&self, ci: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.spans.len()).filter(move |&i| (self.spans[i].0..=self.spans[i].1).contains(&ci))
    }

    /// Inputs must be one 2-part ciphertext per pixel at the start level
    /// and input scale; anything else is named.
    pub fn check_inputs(&self, inputs: &[Ciphertext]) -> Result<(), HeNnError> {
        self.check_batch(inputs, |c| (c.level(), c.part_count(), c.scale()))
    }

    /// One ciphertext per pixel, each 2-part at the start level and input
    /// scale; `shape` reads (level, parts, scale) on the inputs' backend.
    fn check_batch<C>(
        &self,
        inputs: &[C],
        shape: impl Fn(&C) -> (usize, usize, f64),
    ) -> Result<(), HeNnError> {
        if inputs.len() != self.pixels() {
            return Err(HeNnError::InvalidRequest {
                detail: format!(
                    "a batch is {} ciphertexts (one per pixel), got {}",
                    self.pixels(),
                    inputs.len()
                ),
            });
        }
        check_fresh(inputs, shape, self.start_level(), self.input_scale(), |i| {
            format!("input ciphertext {i}")
        })
    }

    /// Whether `act` is evaluated fused with the next linear layer: its last
    /// product is neither relinearised nor rescaled (see [`Self::activate`]).
    fn fused(act: &ActPlan) -> bool {
        match act {
            ActPlan::Affine { .. } => false,
            ActPlan::Square { .. } => true,
            ActPlan::Poly { poly, .. } => poly.degree() == 3,
        }
    }

    /// The constant term the fused evaluation leaves out (added through the
    /// next layer's bias instead).
    fn act_offset(act: &ActPlan) -> f64 {
        match act {
            ActPlan::Poly { poly, .. } if Self::fused(act) => poly.coeffs[0],
            _ => act.offset(),
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
    fn activate<B: Fused>(
        &self,
        ev: &B,
        act: &ActPlan,
        ct: &B::Ciphertext,
    ) -> Result<(B::Ciphertext, usize), HeNnError>
    where
        HeNnError: From<B::Error>,
    {
        match act {
            ActPlan::Affine { .. } => Ok((ct.clone(), 0)),
            ActPlan::Square { .. } => Ok((ev.mul_unrelinearized(ct, ct)?, 1)),
            ActPlan::Poly { poly, .. } if Self::fused(act) => {
                let (c1, c2, c3) = (poly.coeffs[1], poly.coeffs[2], poly.coeffs[3]);
                let l = ev.level(ct);
                if l < 2 {
                    return Err(CkksError::LevelExhausted {
                        op: "cubic activation",
                        level: l,
                    }
                    .into());
                }
                let q = |k: usize| ev.prime(k);
                let s = ev.scale(ct);
                // x² at level l-1.
                let x2 = ev.mul_relin_rescale(ct, ct)?;
                // c2 + c3·x at level l-1, scale t = q_{l-1}.
                let t = q(l - 1);
                let qx = ev.rescale(&ev.mul_const(ct, c3, t * q(l) / s)?)?;
                let qx = ev.add_const(&qx, c2)?;
                let prod = ev.mul_unrelinearized(&x2, &qx)?;
                // c1·x at level l-1 on the product's scale.
                let ps = ev.scale(&prod);
                let mut rx = ev.rescale(&ev.mul_const(ct, c1, ps * q(l) / s)?)?;
                // Same scale up to rounding of the exact quotient.
                ev.set_scale(&mut rx, ps)?;
                Ok((ev.add(&prod, &rx)?, 1))
            }
            ActPlan::Poly { poly, plan } => Ok((
                PolynomialEvaluator::new(ev).evaluate_plan(ct, poly, plan, Some(self.scale))?,
                0,
            )),
        }
    }

    /// Fused `rows` linear combinations of `xs` (which owe `pending`
    /// rescales), accumulated into `accs` (one per row; a `None` is created
    /// as zero) so that after `pending + 1` rescales the result has scale
    /// `target`.
    fn dense<B: Fused>(
        &self,
        ev: &B,
        xs: &[&B::Ciphertext],
        rows: &[Vec<(usize, f64)>],
        (target, pending): (f64, usize),
        accs: Vec<Option<B::Ciphertext>>,
    ) -> Result<Vec<B::Ciphertext>, HeNnError>
    where
        HeNnError: From<B::Error>,
    {
        let Some(x0) = xs.first() else {
            return Err(HeNnError::Layout {
                detail: format!("a linear layer of {} rows got no input", rows.len()),
            });
        };
        let level = ev.level(x0);
        if level < pending + 1 {
            return Err(CkksError::LevelExhausted {
                op: "linear layer",
                level,
            }
            .into());
        }
        let drop: f64 = (0..=pending).map(|k| ev.prime(level - k)).product();
        let c = target * drop / ev.scale(x0);
        let parts = xs.iter().map(|x| ev.parts(x)).max().unwrap_or(2);
        let mut accs: Vec<B::Ciphertext> = accs
            .into_iter()
            .map(|a| a.unwrap_or_else(|| ev.zero(level, parts, ev.scale(x0) * c)))
            .collect();
        ev.linear_combinations_into(xs, rows, c, &mut accs)?;
        Ok(accs)
    }

    /// Relinearise (3-part sums), rescale `rescales` times (at least 1)
    /// adding the biases before the last one, and pin the scale to `target`.
    fn finish<B: Fused>(
        &self,
        ev: &B,
        accs: Vec<B::Ciphertext>,
        bias: &[f64],
        target: f64,
        rescales: usize,
    ) -> Result<Vec<B::Ciphertext>, HeNnError>
    where
        HeNnError: From<B::Error>,
    {
        accs.into_par_iter()
            .zip(bias.par_iter())
            .map(|(a, &b)| {
                // Relinearise before any rescale; the bias goes in at the
                // last rescale's input scale (~Δ·q, where it fits 62 bits).
                let mut r = ev.relinearize(&a)?;
                for _ in 1..rescales {
                    r = ev.rescale(&r)?;
                }
                let r = ev.add_const(&r, b)?;
                let mut r = ev.rescale(&r)?;
                // The exact scale equals the target up to the rounding of
                // the constants' quotients; anything more is a planning bug
                // and must not be relabelled away (release builds too).
                let rel = ((ev.scale(&r) - target) / target).abs();
                if rel.is_nan() || rel > 1e-9 {
                    return Err(CkksError::Mismatch {
                        op: "linear layer",
                        detail: format!(
                            "scale {:.6e} after rescaling differs from the planned {target:.6e} (relative {rel:.1e})",
                            ev.scale(&r)
                        ),
                    }
                    .into());
                }
                ev.set_scale(&mut r, target)?;
                Ok(r)
            })
            .collect()
    }

    /// Add chunk `ci`'s activations (`acts`, owing the same number of
    /// rescales) to the dense1 rows it feeds: each row's accumulator is made
    /// at its first chunk and, after its last, finished into `h`.
    fn feed_dense1<B: Fused>(
        &self,
        ev: &B,
        (ci, chunk): (usize, &[usize]),
        acts: Vec<(B::Ciphertext, usize)>,
        accs: &mut [Option<B::Ciphertext>],
        h: &mut [Option<B::Ciphertext>],
    ) -> Result<(), HeNnError>
    where
        HeNnError: From<B::Error>,
    {
        let dense1 = &self.model.pairs[0].1;
        let feats = self.taps.len();
        let fold1 = self.plan.acts[0].fold();
        let pending1 = acts.first().map_or(0, |a| a.1);
        let live: Vec<usize> = self.open_rows(ci).collect();
        let ys: Vec<&B::Ciphertext> = acts.iter().map(|a| &a.0).collect();
        let rows: Vec<Row> = live
            .iter()
            .map(|&i| {
                let w = &dense1.weight[i * feats..(i + 1) * feats];
                chunk
                    .iter()
                    .enumerate()
                    .map(|(k, &f)| (k, w[f] * fold1))
                    .collect()
            })
            .collect();
        let taken = live.iter().map(|&i| accs[i].take()).collect();
        let sums = self.dense(ev, &ys, &rows, (self.scale, pending1), taken)?;
        drop(ys);
        drop(acts);
        let mut ending = Vec::new();
        for (&i, a) in live.iter().zip(sums) {
            if self.spans[i].1 == ci {
                ending.push((i, a));
            } else {
                accs[i] = Some(a);
            }
        }
        let bias: Vec<f64> = ending.iter().map(|(i, _)| self.biases[0][*i]).collect();
        let (ids, ending): (Vec<usize>, Vec<B::Ciphertext>) = ending.into_iter().unzip();
        let done = self.finish(ev, ending, &bias, self.scale, pending1 + 1)?;
        for (i, c) in ids.into_iter().zip(done) {
            h[i] = Some(c);
        }
        Ok(())
    }

    /// conv → act1 → dense1 streamed over chunks of conv features
    /// (position-major, [`stream_order`]); returns dense1's output. Each
    /// input ciphertext is dropped after the chunk that reads it last, so
    /// the inputs held shrink from all pixels to a band of rows.
    fn first_block<B: Fused>(
        &self,
        ev: &B,
        inputs: Vec<B::Ciphertext>,
        times: &mut StageTimes,
        progress: Option<&(dyn Fn(u64) + Sync)>,
        probe: Option<GenericProbe<'_, B>>,
    ) -> Result<Vec<B::Ciphertext>, HeNnError>
    where
        HeNnError: From<B::Error>,
    {
        let dense1 = &self.model.pairs[0].1;
        let act1 = &self.plan.acts[0];
        let (fold1, off1) = (act1.fold(), Self::act_offset(act1));
        let ohw = self.model.conv.geom.out_h() * self.model.conv.geom.out_w();
        let mut accs: Vec<Option<B::Ciphertext>> = nones(dense1.rows);
        let mut h: Vec<Option<B::Ciphertext>> = nones(dense1.rows);
        let mut pixels: Vec<Option<B::Ciphertext>> = inputs.into_iter().map(Some).collect();
        for (ci, (chunk, released)) in self.chunks.iter().zip(&self.released).enumerate() {
            let t = Instant::now();
            let (xs, taps) = chunk_inputs(&pixels, chunk, &self.taps)?;
            let conv = self.dense(ev, &xs, &taps, (self.scale, 0), nones(taps.len()))?;
            drop(xs);
            for &px in released {
                pixels[px] = None;
            }
            let bias: Vec<f64> = chunk
                .iter()
                .map(|&f| self.model.conv.bias[f / ohw])
                .collect();
            let conv = self.finish(ev, conv, &bias, self.scale, 1)?;
            times.stages[0] += wall_ms(t);
            let t = Instant::now();
            let acts: Vec<(B::Ciphertext, usize)> = conv
                .par_iter()
                .map(|c| self.activate(ev, act1, c))
                .collect::<Result<_, _>>()?;
            times.stages[1] += wall_ms(t);
            if let Some(p) = probe {
                for ((&f, c), a) in chunk.iter().zip(&conv).zip(&acts) {
                    let at = |layer, fold, offset| Probe {
                        layer,
                        index: f,
                        fold,
                        offset,
                        len: 1,
                    };
                    p(at(0, 1.0, 0.0), c);
                    p(at(1, fold1, off1), &a.0);
                }
            }
            drop(conv);
            let t = Instant::now();
            self.feed_dense1(ev, (ci, chunk), acts, &mut accs, &mut h)?;
            times.stages[2] += wall_ms(t);
            if let Some(p) = progress {
                p(chunk.len() as u64);
            }
        }
        h.into_iter()
            .enumerate()
            .map(|(i, c)| {
                c.ok_or_else(|| HeNnError::Layout {
                    detail: format!("dense1 output {i} was never finished"),
                })
            })
            .collect()
    }

    /// Evaluate the circuit on one batch of inputs on any backend: with a
    /// client's keys (an [`Evaluator`] holding a relinearisation key for
    /// this context) or on the simulator
    /// ([`slaf_ckks::circuits::sim::SimBackend::for_params`]); returns the
    /// [`Self::outputs`] logit ciphertexts at the output scale and the
    /// stage times (the encrypt and decrypt buckets stay 0). The inputs
    /// are checked first (one 2-part ciphertext per pixel at the start
    /// level and input scale). `progress` is called with the number of
    /// conv features done; `probe` sees intermediate ciphertexts (never the
    /// logits).
    pub fn evaluate_on<B: Fused>(
        &self,
        ev: &B,
        inputs: Vec<B::Ciphertext>,
        progress: Option<&(dyn Fn(u64) + Sync)>,
        probe: Option<GenericProbe<'_, B>>,
    ) -> Result<(Vec<B::Ciphertext>, StageTimes), HeNnError>
    where
        HeNnError: From<B::Error>,
    {
        self.check_batch(&inputs, |c| (ev.level(c), ev.parts(c), ev.scale(c)))?;
        ev.check_relinearization("batched inference")?;
        let mut times = StageTimes::zeros(1 + 2 * self.model.pairs.len());
        let mut h = self.first_block(ev, inputs, &mut times, progress, probe)?;
        // Every later (activation, dense) pair on the whole hidden vector.
        // The last one gives the logits at the output scale. Each layer's
        // inputs are dropped as soon as they are activated, and the
        // activations once they are summed.
        let last = self.model.pairs.len() - 1;
        for k in 1..=last {
            let act = &self.plan.acts[k];
            let (fold, off) = (act.fold(), Self::act_offset(act));
            let t = Instant::now();
            let hk: Vec<(B::Ciphertext, usize)> = h
                .into_par_iter()
                .enumerate()
                .map(|(j, x)| {
                    let y = self.activate(ev, act, &x)?;
                    if let Some(p) = probe {
                        let at = |layer, fold, offset| Probe {
                            layer,
                            index: j,
                            fold,
                            offset,
                            len: 1,
                        };
                        p(at(2 * k, 1.0, 0.0), &x);
                        p(at(2 * k + 1, fold, off), &y.0);
                    }
                    Ok(y)
                })
                .collect::<Result<_, HeNnError>>()?;
            let pending = hk.first().map_or(0, |a| a.1);
            times.stages[2 * k + 1] += wall_ms(t);
            let t = Instant::now();
            let d = &self.model.pairs[k].1;
            let rows: Vec<Vec<(usize, f64)>> = (0..d.rows)
                .map(|i| {
                    let w = &d.weight[i * d.cols..(i + 1) * d.cols];
                    w.iter().enumerate().map(|(j, &v)| (j, v * fold)).collect()
                })
                .collect();
            let target = if k == last {
                self.output_scale()
            } else {
                self.scale
            };
            let xs: Vec<&B::Ciphertext> = hk.iter().map(|a| &a.0).collect();
            let out = self.dense(ev, &xs, &rows, (target, pending), nones(rows.len()))?;
            drop(xs);
            drop(hk);
            h = self.finish(ev, out, &self.biases[k], target, pending + 1)?;
            times.stages[2 * k + 2] += wall_ms(t);
        }
        Ok((h, times))
    }
}

/// The streamed chunks of conv features and, for each, the pixels it
/// reads for the last time. Features are taken position-major (the
/// `channels` features of output position 0, then of position 1, …; a
/// feature is `channel · positions + position`), `chunk` at a time, so that
/// a chunk reads a band of input rows and the rows above it are done.
fn stream_order(
    taps: &[Vec<(usize, f64)>],
    positions: usize,
    pixels: usize,
    chunk: usize,
) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let positions = positions.max(1);
    let channels = taps.len() / positions;
    let order: Vec<usize> = (0..positions)
        .flat_map(|pos| (0..channels).map(move |c| c * positions + pos))
        .collect();
    let chunks: Vec<Vec<usize>> = order.chunks(chunk.max(1)).map(<[usize]>::to_vec).collect();
    let mut last = vec![None; pixels];
    for (i, c) in chunks.iter().enumerate() {
        for &f in c {
            for &(px, _) in &taps[f] {
                last[px] = Some(i);
            }
        }
    }
    let mut released = vec![Vec::new(); chunks.len()];
    for (px, l) in last.into_iter().enumerate() {
        if let Some(i) = l {
            released[i].push(px);
        }
    }
    (chunks, released)
}

/// For each row of `d`, the first and last chunk holding a feature with a
/// non-zero weight into it ((0, 0) for an all-zero row: made and finished
/// with the first chunk).
fn row_spans(d: &slaf_nn::Dense, chunks: &[Vec<usize>]) -> Vec<(usize, usize)> {
    (0..d.rows)
        .map(|i| {
            let w = &d.weight[i * d.cols..(i + 1) * d.cols];
            let feeds = |c: &Vec<usize>| c.iter().any(|&f| w[f] != 0.0);
            let first = chunks.iter().position(feeds).unwrap_or(0);
            let last = chunks.iter().rposition(feeds).unwrap_or(0);
            (first, last)
        })
        .collect()
}

/// One linear combination: (input index, weight) terms.
type Row = Vec<(usize, f64)>;

/// `n` empty accumulators.
fn nones<C>(n: usize) -> Vec<Option<C>> {
    (0..n).map(|_| None).collect()
}

/// The input ciphertexts a chunk reads, each once, and its conv taps
/// renumbered to index them. A pixel already released is a planning bug,
/// named rather than unwrapped.
fn chunk_inputs<'a, C>(
    pixels: &'a [Option<C>],
    chunk: &[usize],
    taps: &[Vec<(usize, f64)>],
) -> Result<(Vec<&'a C>, Vec<Row>), HeNnError> {
    let mut local = vec![usize::MAX; pixels.len()];
    let mut xs = Vec::new();
    let mut rows = Vec::with_capacity(chunk.len());
    for &f in chunk {
        let mut row = Vec::with_capacity(taps[f].len());
        for &(px, w) in &taps[f] {
            if local[px] == usize::MAX {
                let ct = pixels[px].as_ref().ok_or_else(|| HeNnError::Layout {
                    detail: format!("pixel {px} was released before conv feature {f} read it"),
                })?;
                local[px] = xs.len();
                xs.push(ct);
            }
            row.push((local[px], w));
        }
        rows.push(row);
    }
    Ok((xs, rows))
}

impl Circuit for BatchedCircuit {
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
            galois_steps: Vec::new(),
        }
    }
    fn progress_units(&self, images: usize) -> u64 {
        (images.div_ceil(self.batch_size()) * self.features()) as u64
    }
    fn check_inputs(&self, inputs: &[Ciphertext]) -> Result<(), HeNnError> {
        BatchedCircuit::check_inputs(self, inputs)
    }
    fn evaluate(
        &self,
        ev: &Evaluator,
        inputs: Vec<Ciphertext>,
        hooks: Hooks<'_>,
    ) -> Result<(Vec<Ciphertext>, StageTimes), HeNnError> {
        self.evaluate_on(ev, inputs, hooks.progress, hooks.probe)
    }
}

/// The in-process batched engine: a [`BatchedCircuit`] plus the client's
/// part (secret and public key, public-key encryption) in one value, for
/// runs where one party plays both roles (the evaluation harness, tests,
/// benchmarks).
pub type BatchedEngine = LocalEngine<BatchedCircuit>;

/// The derivation labels of the batched engine's keys and encryption.
pub const BATCHED_LABELS: SeedLabels = SeedLabels {
    keys: "batched keys",
    encryption: Some("batched encryption"),
};

impl LocalEngine<BatchedCircuit> {
    /// Generate keys and prepare the model for `params` (checked against
    /// the plan); the inputs are encrypted with the public key.
    pub fn new(
        model: &ChainForm,
        plan: CircuitPlan,
        params: CkksParameters,
        opts: BatchedOptions,
    ) -> Result<Self, HeNnError> {
        let circuit = BatchedCircuit::new(model, plan, params, opts.chunk)?;
        let mut engine =
            Self::with_circuit(circuit, opts.seed, BATCHED_LABELS, Encryption::Public)?;
        engine.precision = opts.precision;
        Ok(engine)
    }

    /// Run one batch (at most [`BatchedCircuit::batch_size`] images of
    /// [`BatchedCircuit::pixels`] pixels in [0, 1]); `progress` is called
    /// with the number of conv features done; precision per the options.
    pub fn infer_batch(
        &self,
        images: &[&[f32]],
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<BatchOutput, HeNnError> {
        self.infer_call(images, progress, self.precision)
    }
}
