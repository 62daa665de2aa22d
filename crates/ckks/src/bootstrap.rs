//! CKKS bootstrapping (issue #41, first full circuit): a ciphertext at
//! level 0 comes back at a higher level, its slots unchanged up to the
//! circuit's error. The steps (Cheon, Han, Kim, Kim, Song 2018; Bossuat et
//! al. 2021):
//!
//! 1. **ModRaise** ([`Evaluator::mod_raise`]): the plaintext becomes
//!    `t = Δm + e + q_0·I` over the whole chain;
//! 2. **CoeffsToSlots**: the inverse of the encoder's DFT, a dense complex
//!    `N/2 × N/2` transform on the slots (baby-step giant-step, hoisted
//!    baby rotations), puts `(t_j + i·t_{j+N/2}) / (2 q_0 K)` in slot `j`;
//!    the `1 / (2 q_0 K)` is a relabelling of the scale, and the transform's
//!    plaintexts are encoded so that its rescale lands on the next prime;
//! 3. conjugation splits the real and imaginary parts (`i` is the free
//!    monomial `X^{N/2}`, [`Evaluator::mul_by_i`]);
//! 4. **EvalMod** ([`EvalMod`]) on each part returns `(Δm_j + e_j) / q_0`;
//! 5. **SlotsToCoeffs**: the encoder's DFT puts the message back in the
//!    slots, at the input's scale `Δ` exactly (its plaintexts are scaled
//!    for it, and a relabelling by `q_0 / Δ` restores the values).
//!
//! Invariants: the input is any 2-part ciphertext (above level 0 it is
//! switched down first); the output is at level `L − 2 − EvalMod depth`
//! and the input's scale, holding the input's slot values; the Galois keys must hold
//! [`Bootstrapper::rotation_steps`] and the conjugation. Not yet here:
//! the merged-FFT factorisation of the DFTs (these are dense: `O(N)`
//! plaintexts per transform, fine for test rings, not for N = 2^16),
//! sparse packings, sparse secrets and named secure parameter sets.

use crate::circuits::EvalMod;
use crate::context::CkksContext;
use crate::encoder::{Complex, Encoder};
use crate::error::CkksError;
use crate::evaluator::{Ciphertext, Evaluator};
use std::sync::Arc;

/// A dense complex transform of the slots, diagonal by diagonal, with the
/// giant-step rotations folded into the diagonals.
#[derive(Clone, Debug)]
struct SlotTransform {
    /// Baby steps (a power of two dividing the slots).
    baby: usize,
    /// `pre[g][b]`: diagonal `g·baby + b`, rotated right by `g·baby`.
    pre: Vec<Vec<Vec<Complex>>>,
}

impl SlotTransform {
    /// The transform `w = A z` of the `n × n` matrix `a` (row-major).
    fn new(a: &[Complex], n: usize, baby: usize) -> Self {
        let giant = n / baby;
        let pre = (0..giant)
            .map(|g| {
                (0..baby)
                    .map(|b| {
                        let k = g * baby + b;
                        let shift = g * baby;
                        // diag_k[i] = A[i][(i + k) mod n], then rotated right by `shift`.
                        (0..n)
                            .map(|j| {
                                let i = (j + n - shift) % n;
                                a[i * n + (i + k) % n]
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Self { baby, pre }
    }

    fn rotation_steps(&self) -> Vec<i64> {
        let baby = self.baby as i64;
        let giant = self.pre.len() as i64;
        (1..baby).chain((1..giant).map(|g| g * baby)).collect()
    }

    /// `A z` (not rescaled: the result's scale is the input's times `pt_scale`).
    fn apply(
        &self,
        ev: &Evaluator,
        enc: &Encoder,
        ct: &Ciphertext,
        pt_scale: f64,
    ) -> Result<Ciphertext, CkksError> {
        let gk = ev.galois_keys("bootstrapping")?;
        let steps: Vec<i64> = (0..self.baby as i64).collect();
        let babies = ev.rotate_hoisted(ct, &steps, gk)?;
        let level = ct.level();
        let mut sum: Option<Ciphertext> = None;
        for (g, diags) in self.pre.iter().enumerate() {
            let mut acc: Option<Ciphertext> = None;
            for (b, d) in diags.iter().enumerate() {
                let pt = enc.encode_complex(d, level, pt_scale)?;
                let term = ev.mul_plain(&babies[b], &pt)?;
                acc = Some(match acc {
                    None => term,
                    Some(a) => ev.add(&a, &term)?,
                });
            }
            let Some(mut acc) = acc else { continue };
            if g > 0 {
                acc = ev.rotate(&acc, (g * self.baby) as i64, gk)?;
            }
            sum = Some(match sum {
                None => acc,
                Some(s) => ev.add(&s, &acc)?,
            });
        }
        sum.ok_or_else(|| CkksError::Mismatch {
            op: "bootstrapping",
            detail: "an empty slot transform".into(),
        })
    }
}

/// How to bootstrap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BootstrapConfig {
    /// Bound on |I| + 1 after ModRaise (grows with the secret's Hamming weight).
    pub k: f64,
    /// Degree of EvalMod's Chebyshev interpolant.
    pub degree: usize,
    /// EvalMod's double-angle steps.
    pub double_angles: u32,
}

/// The bootstrapping circuit for one context: the two slot transforms and
/// EvalMod.
#[derive(Clone, Debug)]
pub struct Bootstrapper {
    ctx: Arc<CkksContext>,
    eval_mod: EvalMod,
    coeffs_to_slots: SlotTransform,
    slots_to_coeffs: SlotTransform,
}

/// The encoder's DFT `F` (slots = F · (c_low + i c_high) / Δ) and its
/// inverse, as dense row-major matrices, read off the encoder itself.
fn dft_matrices(ctx: &Arc<CkksContext>) -> Result<(Vec<Complex>, Vec<Complex>), CkksError> {
    let enc = Encoder::new(ctx);
    let n = ctx.params().slots();
    let scale = 2f64.powi(50);
    let mut f = vec![(0.0, 0.0); n * n];
    let mut f_inv = vec![(0.0, 0.0); n * n];
    for k in 0..n {
        // Column k of F^-1: encode the unit slot vector e_k.
        let mut e = vec![(0.0, 0.0); n];
        e[k] = (1.0, 0.0);
        let c = enc.centered_coefficients(&enc.encode_complex(&e, 0, scale)?);
        for j in 0..n {
            f_inv[j * n + k] = (c[j] / scale, c[j + n] / scale);
        }
    }
    // F from the decoder: column j is the slots of the coefficient e_j
    // (2^30 read at scale 2^30).
    for j in 0..n {
        let mut c = vec![0i64; 2 * n];
        c[j] = 1 << 30;
        let col = enc.decode_complex(&enc.plaintext_from_integers(&c, 0, 2f64.powi(30)));
        for (i, v) in col.iter().enumerate() {
            f[i * n + j] = *v;
        }
    }
    Ok((f, f_inv))
}

fn baby_for(n: usize) -> usize {
    let mut b = 1;
    while b * b < n {
        b *= 2;
    }
    b
}

impl Bootstrapper {
    /// The circuit for `ctx` with `config` (the DFT matrices are read off
    /// the encoder: `O(N²)` work, for test rings).
    pub fn new(ctx: &Arc<CkksContext>, config: BootstrapConfig) -> Result<Self, CkksError> {
        let eval_mod =
            EvalMod::new(config.k, config.degree, config.double_angles).map_err(|e| {
                CkksError::Mismatch {
                    op: "bootstrapping",
                    detail: e.to_string(),
                }
            })?;
        let need = eval_mod.depth() + 2;
        let have = ctx.params().max_level();
        if need > have {
            return Err(CkksError::Mismatch {
                op: "bootstrapping",
                detail: format!(
                    "needs {need} levels above level 0 (CoeffsToSlots 1, EvalMod {}, SlotsToCoeffs 1); the chain has {have}",
                    eval_mod.depth()
                ),
            });
        }
        let n = ctx.params().slots();
        let (f, f_inv) = dft_matrices(ctx)?;
        let baby = baby_for(n);
        Ok(Self {
            ctx: Arc::clone(ctx),
            eval_mod,
            coeffs_to_slots: SlotTransform::new(&f_inv, n, baby),
            slots_to_coeffs: SlotTransform::new(&f, n, baby),
        })
    }

    /// Rotation steps the Galois keys must hold (and the conjugation).
    pub fn rotation_steps(&self) -> Vec<i64> {
        let mut s = self.coeffs_to_slots.rotation_steps();
        s.extend(self.slots_to_coeffs.rotation_steps());
        s.sort_unstable();
        s.dedup();
        s
    }

    /// The level a bootstrapped ciphertext comes back at.
    pub fn output_level(&self) -> usize {
        self.ctx.params().max_level() - 2 - self.eval_mod.depth()
    }

    /// Bootstrap `ct` with `ev`'s relinearization and Galois keys; the
    /// result has `ct`'s scale.
    pub fn bootstrap(&self, ev: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext, CkksError> {
        self.bootstrap_to(ev, ct, ct.scale())
    }

    /// Bootstrap `ct`; the result has scale `out_scale` (a chain of
    /// squarings drifts away from its scale: a bootstrap can bring it back).
    pub fn bootstrap_to(
        &self,
        ev: &Evaluator,
        ct: &Ciphertext,
        out_scale: f64,
    ) -> Result<Ciphertext, CkksError> {
        let enc = Encoder::new(&self.ctx);
        let params = self.ctx.params();
        let top = params.max_level();
        let q0 = params.q()[0] as f64;
        let k = self.eval_mod.k();
        let low = ev.mod_down_to(ct, 0)?;
        let delta_in = low.scale();
        let mut raised = ev.mod_raise(&low)?;
        // Slots now read F((t_low + i t_high) / (2 q0 K)): the 2 is the
        // conjugation split's (re = w + w̄ = 2 Re w).
        ev.set_scale(&mut raised, 2.0 * q0 * k)?;
        // CoeffsToSlots, landing on the next prime's scale after the rescale.
        let target = params.q()[top - 1] as f64;
        let pt_scale = target * params.q()[top] as f64 / raised.scale();
        let w = self.coeffs_to_slots.apply(ev, &enc, &raised, pt_scale)?;
        let mut w = ev.rescale(&w)?;
        ev.set_scale(&mut w, target)?;
        // Real and imaginary parts: w + w̄ and (w̄ − w)·i, each t / (q0 K).
        let gk = ev.galois_keys("bootstrapping")?;
        let wc = ev.conjugate(&w, gk)?;
        let re = ev.add(&w, &wc)?;
        let im = self.mul_by_i(ev, &ev.sub(&wc, &w)?)?;
        let bk = |e: crate::circuits::CircuitError| CkksError::Mismatch {
            op: "bootstrapping EvalMod",
            detail: e.to_string(),
        };
        let xr = self.eval_mod.apply(ev, &re).map_err(bk)?;
        let xi = self.eval_mod.apply(ev, &im).map_err(bk)?;
        let v = ev.add(&xr, &self.mul_by_i(ev, &xi)?)?;
        // SlotsToCoeffs, its plaintexts scaled so that after the rescale
        // and the relabelling from (Δ m + e) / q0 back to m the result is at
        // `out_scale` exactly.
        let pt_scale = out_scale * q0 * params.q()[v.level()] as f64 / (v.scale() * delta_in);
        let out = self.slots_to_coeffs.apply(ev, &enc, &v, pt_scale)?;
        let mut out = ev.rescale(&out)?;
        ev.set_scale(&mut out, out_scale)?;
        Ok(out)
    }

    fn mul_by_i(&self, ev: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext, CkksError> {
        ev.mul_by_i(ct)
    }

    /// EvalMod's circuit.
    pub fn eval_mod(&self) -> &EvalMod {
        &self.eval_mod
    }

    /// Whether a circuit backend's level bookkeeping matches (for the planner).
    pub fn depth(&self) -> usize {
        2 + self.eval_mod.depth()
    }
}
