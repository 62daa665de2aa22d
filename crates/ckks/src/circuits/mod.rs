//! CKKS circuits: polynomial evaluation (power and Chebyshev bases, baby-step
//! giant-step with exact scale management) and plaintext-matrix ×
//! encrypted-vector linear transforms (diagonal method, BSGS, hoisting).
//!
//! The circuits are written against the small [`CircuitBackend`] trait, which
//! lists exactly the evaluator operations they need (add, constant and
//! plaintext multiplication without rescale, ct×ct multiply + relinearize,
//! rescale, mod-down, hoisted rotations, scale relabelling). The CKKS core
//! evaluator implements it; [`sim::SimBackend`] implements it on plain `f64`
//! slots with exact level/scale bookkeeping, CKKS-like rounding of encoded
//! constants and overflow checks against the modulus chain, so that the
//! circuits' depth, scale and layout logic is tested independently of the
//! core.
//!
//! Implementing [`CircuitBackend`] for the core evaluator is a thin mapping:
//! `add`/`sub`/`mul_relin`/`rescale`/`mod_down`/`rotate` are the evaluator's
//! ops (without auto-rescale); `rotate_hoisted` is its hoisted rotation (one
//! decomposition of `c1`, one automorphism + key-switch inner product per
//! step); `set_scale` only changes the ciphertext's scale label; `mul_const`
//! multiplies every RNS limb by `round(c * const_scale)` reduced modulo the
//! limb's prime (the integer can exceed the primes and 2^53 — compute it in
//! `i128`/two limbs), `add_const` adds `round(c * scale)` to the constant
//! coefficient (slot-wise constant), and `encode` is the encoder at an
//! explicit level and scale.
//!
//! Conventions: a ciphertext at level `l` holds primes `q_0..=q_l`; rescaling
//! at level `l` divides the scale by `q_l` and moves to level `l - 1`.
//! `rotate(ct, k)` moves slot `i + k` to slot `i` (left rotation, as SEAL's
//! `rotate_vector` with positive steps).

mod core_backend;
pub mod eval_mod;
pub mod lintrans;
pub mod poly_eval;
pub mod polynomial;
pub mod sim;

pub use eval_mod::EvalMod;
pub use lintrans::{
    BABY_COST, DiagTransform, Layout as DiagLayout, PLAIN_MUL_COST, dense_diagonal, dense_layout,
    dense_transform, dot_plain, inner_sum, inner_sum_rotation_steps,
};
pub use poly_eval::{AffineMode, EvalPlan, PolynomialEvaluator};
pub use polynomial::{Basis, Polynomial, chebyshev_interpolant, chebyshev_roots_interpolant};
// `FusedBackend` is defined below, beside `CircuitBackend`.

use std::error::Error as StdError;

/// Errors of the circuit layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CircuitError {
    /// The polynomial needs more levels than the ciphertext has left.
    #[error(
        "polynomial evaluation: needs multiplicative depth {needed} but the ciphertext has only {available} levels left"
    )]
    DepthExhausted {
        /// Levels the circuit consumes.
        needed: usize,
        /// Levels the input ciphertext has left (its level).
        available: usize,
    },
    /// A polynomial with no coefficients, or a non-finite coefficient/interval.
    #[error("polynomial: invalid definition: {reason}")]
    InvalidPolynomial {
        /// What is wrong.
        reason: String,
    },
    /// Matrix or vector shape does not fit the slot count.
    #[error(
        "linear transform: matrix {rows}x{cols} does not fit {slots} slots (both dimensions must be in 1..=slots)"
    )]
    ShapeTooLarge {
        /// Matrix rows.
        rows: usize,
        /// Matrix columns.
        cols: usize,
        /// Slots per ciphertext.
        slots: usize,
    },
    /// Input vector length does not match.
    #[error("{operation}: expected a vector of length {expected}, got {got}")]
    LengthMismatch {
        /// Operation that failed.
        operation: &'static str,
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// The ciphertext is below the level a pre-encoded transform was encoded at.
    #[error(
        "linear transform: ciphertext at level {ct_level} is below the level {pt_level} the diagonals are encoded at"
    )]
    LevelMismatch {
        /// Ciphertext level.
        ct_level: usize,
        /// Level of the encoded diagonals.
        pt_level: usize,
    },
    /// A worker thread of a parallel circuit panicked.
    #[error("{operation}: a worker thread panicked")]
    WorkerPanicked {
        /// Operation that failed.
        operation: &'static str,
    },
    /// An operation of the underlying evaluator failed.
    #[error("{operation}: evaluator error: {source}")]
    Backend {
        /// Circuit step that called the evaluator.
        operation: &'static str,
        /// The evaluator's error.
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
}

/// Wraps an evaluator error with the circuit step that triggered it.
pub fn be<E: StdError + Send + Sync + 'static>(
    operation: &'static str,
) -> impl FnOnce(E) -> CircuitError {
    move |e| CircuitError::Backend {
        operation,
        source: Box::new(e),
    }
}

/// The evaluator operations the circuits are built from.
///
/// None of the multiplications rescale: the circuits decide when to rescale
/// so that every intermediate lands on an exactly planned scale.
pub trait CircuitBackend {
    /// Ciphertext type.
    type Ciphertext: Clone;
    /// Encoded plaintext type (a vector of slot values at a level and scale).
    type Plaintext;
    /// The evaluator's error type.
    type Error: StdError + Send + Sync + 'static;

    /// Number of slots per ciphertext (N/2).
    fn slots(&self) -> usize;
    /// Prime `q_level` of the chain, as `f64` (exact for primes < 2^53).
    fn prime(&self, level: usize) -> f64;
    /// Level of a ciphertext.
    fn level(&self, ct: &Self::Ciphertext) -> usize;
    /// Exact scale of a ciphertext.
    fn scale(&self, ct: &Self::Ciphertext) -> f64;
    /// Relabel the scale (reinterprets the encrypted value as `value * old /
    /// new`); an error when the new scale is not finite and positive or
    /// leaves no room below the level's modulus.
    fn set_scale(&self, ct: &mut Self::Ciphertext, scale: f64) -> Result<(), Self::Error>;
    /// `a + b` (same level and scale).
    fn add(
        &self,
        a: &Self::Ciphertext,
        b: &Self::Ciphertext,
    ) -> Result<Self::Ciphertext, Self::Error>;
    /// `a - b` (same level and scale).
    fn sub(
        &self,
        a: &Self::Ciphertext,
        b: &Self::Ciphertext,
    ) -> Result<Self::Ciphertext, Self::Error>;
    /// Adds the constant `c` to every slot (encoded at the ciphertext's scale).
    fn add_const(&self, ct: &Self::Ciphertext, c: f64) -> Result<Self::Ciphertext, Self::Error>;
    /// Multiplies by the integer `round(c * const_scale)`; the result's scale is
    /// `scale(ct) * const_scale`. No rescale.
    fn mul_const(
        &self,
        ct: &Self::Ciphertext,
        c: f64,
        const_scale: f64,
    ) -> Result<Self::Ciphertext, Self::Error>;
    /// Ciphertext product followed by relinearization (same level), no rescale.
    fn mul_relin(
        &self,
        a: &Self::Ciphertext,
        b: &Self::Ciphertext,
    ) -> Result<Self::Ciphertext, Self::Error>;
    /// Divides by the top prime and drops it.
    fn rescale(&self, ct: &Self::Ciphertext) -> Result<Self::Ciphertext, Self::Error>;
    /// Drops primes down to `level` without changing the scale.
    fn mod_down(
        &self,
        ct: &Self::Ciphertext,
        level: usize,
    ) -> Result<Self::Ciphertext, Self::Error>;
    /// Encodes real slot values at a level and scale.
    fn encode(
        &self,
        values: &[f64],
        level: usize,
        scale: f64,
    ) -> Result<Self::Plaintext, Self::Error>;
    /// Ciphertext + plaintext (same level and scale).
    fn add_plain(
        &self,
        ct: &Self::Ciphertext,
        pt: &Self::Plaintext,
    ) -> Result<Self::Ciphertext, Self::Error>;
    /// Ciphertext × plaintext (same level), scale multiplies, no rescale.
    fn mul_plain(
        &self,
        ct: &Self::Ciphertext,
        pt: &Self::Plaintext,
    ) -> Result<Self::Ciphertext, Self::Error>;
    /// Rotations of one ciphertext by several steps with one key-switch
    /// decomposition (hoisting). Step 0 returns a copy.
    fn rotate_hoisted(
        &self,
        ct: &Self::Ciphertext,
        steps: &[usize],
    ) -> Result<Vec<Self::Ciphertext>, Self::Error>;
    /// One rotation by `step` slots (left).
    fn rotate(&self, ct: &Self::Ciphertext, step: usize) -> Result<Self::Ciphertext, Self::Error>;
}

/// The operations of fused linear algebra on unrelinearised products (the
/// batched engine's circuits) beyond [`CircuitBackend`]: a product left
/// with 3 parts, its relinearisation, zero accumulators and the lazy
/// integer linear combination. [`crate::Evaluator`] runs them on
/// ciphertexts; [`sim::SimBackend`] on slot values, tracking parts, levels
/// and scales, so a circuit built on them is planned and checked without
/// encryption.
pub trait FusedBackend: CircuitBackend {
    /// Parts of a ciphertext: 2, or 3 after [`Self::mul_unrelinearized`].
    fn parts(&self, ct: &Self::Ciphertext) -> usize;
    /// `a · b` without relinearisation (3 parts), not rescaled.
    fn mul_unrelinearized(
        &self,
        a: &Self::Ciphertext,
        b: &Self::Ciphertext,
    ) -> Result<Self::Ciphertext, Self::Error>;
    /// Relinearise a 3-part ciphertext (a 2-part one is returned as is).
    fn relinearize(&self, ct: &Self::Ciphertext) -> Result<Self::Ciphertext, Self::Error>;
    /// `a · b`, relinearised and rescaled.
    fn mul_relin_rescale(
        &self,
        a: &Self::Ciphertext,
        b: &Self::Ciphertext,
    ) -> Result<Self::Ciphertext, Self::Error>;
    /// A zero ciphertext of `parts` parts at `level` and `scale`.
    fn zero(&self, level: usize, parts: usize, scale: f64) -> Self::Ciphertext;
    /// `accs[r] += Σ_j round(w_j · c) · xs[i_j]` for every row `r` of
    /// `(i_j, w_j)` pairs: integer coefficients, so the sums are exact and
    /// the scale of `accs[r]` stays `scale(x) · c`.
    fn linear_combinations_into(
        &self,
        xs: &[&Self::Ciphertext],
        rows: &[Vec<(usize, f64)>],
        c: f64,
        accs: &mut [Self::Ciphertext],
    ) -> Result<(), Self::Error>;
    /// Fails unless relinearisation is possible (the key is there), naming `op`.
    fn check_relinearization(&self, op: &'static str) -> Result<(), Self::Error>;
}
