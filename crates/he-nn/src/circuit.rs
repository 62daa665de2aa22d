//! The keyless side of encrypted inference: a [`Circuit`] is a model's
//! weights prepared for one layout, built from the [`CircuitPlan`], holding
//! no key at all. Every evaluation brings an [`Evaluator`] with a client's
//! evaluation keys, so one circuit serves any number of clients (the
//! service's server holds exactly this), and the in-process engine is a
//! circuit plus a [`crate::client::ClientSide`].
//!
//! Invariants: a circuit checks its inputs (count, level, parts, scale)
//! before any work and names what is wrong; [`Circuit::keys`] lists every
//! key its evaluation uses, and [`check_keys`] refuses an evaluator that
//! lacks one; stage times are indexed by chain-form stage
//! ([`StageTimes::stage_name`]).

use crate::layout::{Layout, Probe};
use crate::plan::CircuitPlan;
use crate::{HeNnError, Mode, StageTimes};
use serde::{Deserialize, Serialize};
use slaf_ckks::{Ciphertext, CkksContext, Evaluator};
use slaf_nn::ChainForm;
use std::sync::Arc;

/// The evaluation keys a circuit uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRequirements {
    /// A relinearisation key (always: both circuits multiply ciphertexts).
    pub relinearization: bool,
    /// Left rotation steps that need Galois keys (empty in batched mode).
    pub galois_steps: Vec<i64>,
}

/// A probe callback: shown intermediate ciphertexts (the precision option
/// decrypts them; a server never passes one).
pub type ProbeFn<'a> = &'a (dyn Fn(Probe, &Ciphertext) + Sync);

/// What an evaluation reports while it runs.
#[derive(Clone, Copy, Default)]
pub struct Hooks<'a> {
    /// Called with units of work done ([`Circuit::progress_units`] in all).
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Shown intermediate ciphertexts with how to read them.
    pub probe: Option<ProbeFn<'a>>,
}

impl std::fmt::Debug for Hooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("progress", &self.progress.is_some())
            .field("probe", &self.probe.is_some())
            .finish()
    }
}

/// A model prepared for one layout, without keys.
pub trait Circuit: Send + Sync + std::fmt::Debug {
    /// The plan it was built from.
    fn plan(&self) -> &CircuitPlan;
    /// Its slot layout (what a client encodes and decodes with).
    fn layout(&self) -> &Layout;
    /// The CKKS context (parameters and ring tables).
    fn context(&self) -> &Arc<CkksContext>;
    /// The model's chain form.
    fn model(&self) -> &ChainForm;
    /// The keys its evaluation uses.
    fn keys(&self) -> KeyRequirements;
    /// Progress units [`Circuit::evaluate`] reports for `images` images.
    fn progress_units(&self, images: usize) -> u64;
    /// Refuse inputs of the wrong count, level, part count or scale.
    fn check_inputs(&self, inputs: &[Ciphertext]) -> Result<(), HeNnError>;
    /// Evaluate on the input ciphertexts of one call ([`Layout::encode`]
    /// order) with a client's evaluation keys; returns the output
    /// ciphertexts ([`Layout::decode`] order) and the stage times (the
    /// encrypt and decrypt buckets stay 0).
    fn evaluate(
        &self,
        ev: &Evaluator,
        inputs: Vec<Ciphertext>,
        hooks: Hooks<'_>,
    ) -> Result<(Vec<Ciphertext>, StageTimes), HeNnError>;
    /// The engine this circuit belongs to.
    fn mode(&self) -> Mode {
        self.layout().mode()
    }
}

impl<C: Circuit + ?Sized> Circuit for Box<C> {
    fn plan(&self) -> &CircuitPlan {
        (**self).plan()
    }
    fn layout(&self) -> &Layout {
        (**self).layout()
    }
    fn context(&self) -> &Arc<CkksContext> {
        (**self).context()
    }
    fn model(&self) -> &ChainForm {
        (**self).model()
    }
    fn keys(&self) -> KeyRequirements {
        (**self).keys()
    }
    fn progress_units(&self, images: usize) -> u64 {
        (**self).progress_units(images)
    }
    fn check_inputs(&self, inputs: &[Ciphertext]) -> Result<(), HeNnError> {
        (**self).check_inputs(inputs)
    }
    fn evaluate(
        &self,
        ev: &Evaluator,
        inputs: Vec<Ciphertext>,
        hooks: Hooks<'_>,
    ) -> Result<(Vec<Ciphertext>, StageTimes), HeNnError> {
        (**self).evaluate(ev, inputs, hooks)
    }
}

/// Every key `need` lists is in `ev`, or the missing ones are named.
pub fn check_keys(ev: &Evaluator, need: &KeyRequirements) -> Result<(), HeNnError> {
    const WHAT: &str = "encrypted inference";
    if need.relinearization {
        ev.relin_key(WHAT)?;
    }
    if need.galois_steps.is_empty() {
        return Ok(());
    }
    let gk = ev.galois_keys(WHAT)?;
    let n = ev.context().params().n();
    let missing: Vec<i64> = need
        .galois_steps
        .iter()
        .copied()
        .filter(|&s| !gk.has_step(s, n))
        .collect();
    if !missing.is_empty() {
        return Err(HeNnError::InvalidRequest {
            detail: format!(
                "the Galois keys lack {} of the circuit's {} rotation steps: {missing:?}",
                missing.len(),
                need.galois_steps.len()
            ),
        });
    }
    Ok(())
}

/// Refuse input ciphertexts that are not 2-part, at `level` and `scale`
/// (relative 1e-9); `shape` reads a ciphertext's (level, parts, scale) on
/// its backend and `what(i)` names input `i` in the message.
pub(crate) fn check_fresh<C>(
    inputs: &[C],
    shape: impl Fn(&C) -> (usize, usize, f64),
    level: usize,
    scale: f64,
    what: impl Fn(usize) -> String,
) -> Result<(), HeNnError> {
    for (i, ct) in inputs.iter().enumerate() {
        let (l, parts, s) = shape(ct);
        let rel = (s / scale - 1.0).abs();
        if l != level || parts != 2 || rel > 1e-9 {
            return Err(HeNnError::InvalidRequest {
                detail: format!(
                    "{} is at level {l} with {parts} parts and scale 2^{:.2}; the circuit takes level {level}, 2 parts, scale 2^{:.2}",
                    what(i),
                    s.log2(),
                    scale.log2()
                ),
            });
        }
    }
    Ok(())
}
