//! CKKS bootstrapping (issue #41, first full circuit): a ciphertext at
//! level 0 comes back at a higher level, its slots unchanged up to the
//! circuit's error. The steps (Cheon, Han, Kim, Kim, Song 2018; Bossuat et
//! al. 2021):
//!
//! 1. **ModRaise** ([`Evaluator::mod_raise`]): the plaintext becomes
//!    `t = Δm + e + q_0·I` over the whole chain. With sparse-secret
//!    encapsulation keys in the evaluator ([`EncapsulationKeys`]) the
//!    level-0 ciphertext is first switched to an ephemeral secret of
//!    Hamming weight h, so that `|I| ≤ (h + 1) / 2` whatever N (K = 17 for
//!    h = 32), and back to the user's secret after ModRaise;
//! 2. **CoeffsToSlots**: the inverse of the encoder's DFT, its log2(N/2)
//!    butterfly stages (3 diagonals each) merged into `dft_levels` sparse
//!    matrices, each a baby-step giant-step transform with hoisted baby
//!    rotations; the bit reversal is skipped (the steps between the two
//!    DFTs are slot-wise). Slot `j` (bit-reversed) gets
//!    `(t_j + i·t_{j+N/2}) / (2 q_0 K)`; the `1 / (2 q_0 K)` is a
//!    relabelling of the scale, and the plaintexts are encoded so that each
//!    rescale keeps the scale and the last lands on the next prime;
//! 3. conjugation splits the real and imaginary parts (`i` is the free
//!    monomial `X^{N/2}`, [`Evaluator::mul_by_i`]);
//! 4. **EvalMod** ([`EvalMod`]) on each part returns `(Δm_j + e_j) / q_0`;
//! 5. **SlotsToCoeffs**: the encoder's DFT puts the message back in the
//!    slots, at the input's scale `Δ` exactly (its plaintexts are scaled
//!    for it, and a relabelling by `q_0 / Δ` restores the values).
//!
//! Invariants: the input is any 2-part ciphertext (above level 0 it is
//! switched down first); the output is at level
//! `L − 2·dft_levels − EvalMod depth` and the input's scale (or the one
//! asked for), holding the input's slot values; the Galois keys must hold
//! [`Bootstrapper::rotation_steps`] and the conjugation; with
//! encapsulation keys, EvalMod's K must exceed their bound on |I| by one
//! ([`Bootstrapper::check_range`], a typed error otherwise). Not yet here:
//! sparse packings, the planner's bootstrapping keys.

use crate::circuits::EvalMod;
use crate::context::CkksContext;
use crate::encoder::{Complex, Encoder};
use crate::error::CkksError;
use crate::evaluator::{Ciphertext, EvaluationKeys, Evaluator};
use crate::keys::{EncapsulationKeys, KeyGenerator};
use crate::params::{CkksParameters, CkksParametersLiteral};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A sparse matrix on the slots by its diagonals: `out[k] = Σ_d diag_d[k] ·
/// in[(k + d) mod n]`.
#[derive(Clone, Debug, Default)]
struct Diagonals {
    n: usize,
    diags: BTreeMap<usize, Vec<Complex>>,
}

fn cmul(a: Complex, b: Complex) -> Complex {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}

fn cadd(a: Complex, b: Complex) -> Complex {
    (a.0 + b.0, a.1 + b.1)
}

impl Diagonals {
    fn new(n: usize) -> Self {
        Self {
            n,
            diags: BTreeMap::new(),
        }
    }

    fn set(&mut self, d: usize, k: usize, v: Complex) {
        let n = self.n;
        self.diags
            .entry(d % n)
            .or_insert_with(|| vec![(0.0, 0.0); n])[k] = v;
    }

    /// `self · other` (apply `other` first).
    fn compose(&self, other: &Diagonals) -> Diagonals {
        let n = self.n;
        let mut out = Diagonals::new(n);
        for (&d, a) in &self.diags {
            for (&e, b) in &other.diags {
                let slot = out
                    .diags
                    .entry((d + e) % n)
                    .or_insert_with(|| vec![(0.0, 0.0); n]);
                for k in 0..n {
                    slot[k] = cadd(slot[k], cmul(a[k], b[(k + d) % n]));
                }
            }
        }
        out
    }

    /// The plaintext product (tests).
    #[cfg(test)]
    fn apply_plain(&self, z: &[Complex]) -> Vec<Complex> {
        let n = self.n;
        (0..n)
            .map(|k| {
                self.diags.iter().fold((0.0, 0.0), |acc, (&d, v)| {
                    cadd(acc, cmul(v[k], z[(k + d) % n]))
                })
            })
            .collect()
    }
}

/// The twiddle of the encoder's butterfly stage of length `len` at `j`:
/// `exp(2πi · (5^j mod 4 len) / (4 len))` (its `fft_special`).
fn twiddle(len: usize, j: usize) -> Complex {
    let m = 4 * len;
    let mut g = 1usize;
    for _ in 0..j {
        g = g * 5 % m;
    }
    let t = std::f64::consts::TAU * g as f64 / m as f64;
    (t.cos(), t.sin())
}

/// The encoder's DFT without its bit reversal, as its butterfly stages
/// (stage s has length 2^s, applied in order s = 1..log2 n), each with
/// the diagonals 0 and ±len/2; `inverse`: the inverse stages, in the order
/// they apply (s = log2 n down to 1). The forward DFT is
/// `stages · bitreverse`, so a slot-wise step between CoeffsToSlots and
/// SlotsToCoeffs never needs the (dense) bit reversal.
fn dft_stages(n: usize, inverse: bool) -> Vec<Diagonals> {
    let mut out = Vec::new();
    let mut len = 2;
    while len <= n {
        let h = len / 2;
        let mut m = Diagonals::new(n);
        for i in (0..n).step_by(len) {
            for j in 0..h {
                let w = twiddle(len, j);
                let (lo, hi) = (i + j, i + j + h);
                if inverse {
                    // (a, b) -> ((a + b) / 2, (a - b) / (2w)).
                    let inv = {
                        let d = w.0 * w.0 + w.1 * w.1;
                        (w.0 / (2.0 * d), -w.1 / (2.0 * d))
                    };
                    m.set(0, lo, (0.5, 0.0));
                    m.set(h, lo, (0.5, 0.0));
                    m.set(0, hi, (-inv.0, -inv.1));
                    m.set(n - h, hi, inv);
                } else {
                    // (a, b) -> (a + w b, a - w b).
                    m.set(0, lo, (1.0, 0.0));
                    m.set(h, lo, w);
                    m.set(0, hi, (-w.0, -w.1));
                    m.set(n - h, hi, (1.0, 0.0));
                }
            }
        }
        out.push(m);
        len *= 2;
    }
    if inverse {
        out.reverse();
    }
    out
}

/// Merge consecutive stages into `levels` matrices (one level each).
fn merge_stages(stages: &[Diagonals], levels: usize) -> Vec<Diagonals> {
    let per = stages.len().div_ceil(levels.max(1)).max(1);
    stages
        .chunks(per)
        .map(|group| {
            group
                .iter()
                .skip(1)
                .fold(group[0].clone(), |acc, next| next.compose(&acc))
        })
        .collect()
}

/// A slot transform ready for baby-step giant-step evaluation: diagonal
/// `g·baby + r` is stored rotated right by `g·baby`.
#[derive(Clone, Debug)]
struct SlotTransform {
    baby: usize,
    /// The baby steps the diagonals use (0 included), sorted.
    baby_steps: Vec<i64>,
    /// giant step g -> (baby step r, pre-rotated diagonal).
    groups: BTreeMap<usize, Vec<(usize, Vec<Complex>)>>,
}

impl SlotTransform {
    fn new(m: &Diagonals) -> Self {
        let n = m.n;
        let count = m.diags.len().max(1);
        let mut baby = 1;
        while baby * baby < count {
            baby *= 2;
        }
        let mut groups: BTreeMap<usize, Vec<(usize, Vec<Complex>)>> = BTreeMap::new();
        for (&d, v) in &m.diags {
            let (g, r) = (d / baby, d % baby);
            let shift = g * baby;
            let rotated = (0..n).map(|j| v[(j + n - shift) % n]).collect();
            groups.entry(g).or_default().push((r, rotated));
        }
        let mut baby_steps: Vec<i64> = groups
            .values()
            .flat_map(|v| v.iter().map(|(r, _)| *r as i64))
            .collect();
        baby_steps.sort_unstable();
        baby_steps.dedup();
        Self {
            baby,
            baby_steps,
            groups,
        }
    }

    fn rotation_steps(&self) -> Vec<i64> {
        let mut s: Vec<i64> = self
            .baby_steps
            .iter()
            .copied()
            .chain(self.groups.keys().map(|g| (g * self.baby) as i64))
            .filter(|&x| x != 0)
            .collect();
        s.sort_unstable();
        s.dedup();
        s
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
        let rotated = ev.rotate_hoisted(ct, &self.baby_steps, gk)?;
        let baby: BTreeMap<usize, &Ciphertext> = self
            .baby_steps
            .iter()
            .map(|&s| s as usize)
            .zip(rotated.iter())
            .collect();
        let level = ct.level();
        let mut sum: Option<Ciphertext> = None;
        for (&g, diags) in &self.groups {
            let mut acc: Option<Ciphertext> = None;
            for (r, d) in diags {
                let pt = enc.encode_complex(d, level, pt_scale)?;
                let Some(src) = baby.get(r) else { continue };
                let term = ev.mul_plain(src, &pt)?;
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
    /// Levels each DFT takes: its log2(N/2) butterfly stages merged into
    /// this many sparse matrices (1: one dense matrix of N/2 diagonals;
    /// more levels, far fewer diagonals and rotations).
    pub dft_levels: usize,
    /// EvalMod's arcsine correction ([`EvalMod::with_arcsine`]): two more
    /// levels, and the message may take a larger share of `q_0`.
    pub arcsine: bool,
}

impl BootstrapConfig {
    /// Its EvalMod circuit (with the arcsine correction when asked).
    pub fn eval_mod(&self) -> Result<EvalMod, crate::circuits::CircuitError> {
        let m = EvalMod::new(self.k, self.degree, self.double_angles)?;
        Ok(if self.arcsine { m.with_arcsine() } else { m })
    }
}

/// A named bootstrapping parameter set: ring, chain, key switching and
/// circuit, with the security its chain is checked for. The chain is, from
/// q_0 up: the base prime (60 bits), the user's levels at the scale,
/// SlotsToCoeffs, EvalMod (60-bit primes), CoeffsToSlots (60-bit), then
/// the special primes; a bootstrap consumes the levels above the user's.
/// The user's secret is dense ternary (the HE-standard bound applies); a
/// bootstrap uses sparse-secret encapsulation with an ephemeral secret of
/// Hamming weight 32 (K = 17), whose key exists only modulo `q_0 · P`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootstrapPreset {
    /// N = 2^16, 32,768 slots, 128-bit (1,740 of the 1,747 bits the 2024
    /// guidelines allow): scale 2^54 (q_0 / Δ = 2^6), 5 levels left to the
    /// user, DFTs in 5 levels each, EvalMod of depth 8, 6 special primes,
    /// 4 digits.
    N16,
    /// N = 2^16, 32,768 slots, 128-bit (1,712 bits): EvalMod with the
    /// arcsine correction (depth 10) and scale 2^56 (q_0 / Δ = 2^4), for
    /// precision; 2 levels left to the user.
    N16Precise,
    /// N = 2^15, a sparse packing of 1,024 slots, 128-bit (876 of the 881
    /// bits the HE standard allows): 50-bit base, DFT, EvalMod and special
    /// primes, scale 2^44, 2 levels left, DFTs in 2 levels each, 3 special
    /// primes: for MNIST-size circuits, with keys under 1 GiB.
    N15Sparse,
    /// N = 2^12, 2,048 slots, INSECURE (tests and quick comparisons): the
    /// structure of `n16` with 2 user levels and DFTs in 3 levels each.
    N12Toy,
}

/// The shape of a preset.
struct Shape {
    log_n: u32,
    /// log2 of the slots bootstrapped (log_n − 1: full).
    log_slots: u32,
    user_levels: usize,
    dft_levels: usize,
    special_primes: usize,
    scale_bits: u32,
    /// The base, CoeffsToSlots, EvalMod and special primes' bits.
    boot_bits: u32,
    arcsine: bool,
}

impl BootstrapPreset {
    /// Every preset.
    pub const ALL: [BootstrapPreset; 4] = [
        BootstrapPreset::N16,
        BootstrapPreset::N16Precise,
        BootstrapPreset::N15Sparse,
        BootstrapPreset::N12Toy,
    ];

    /// The ephemeral secret's Hamming weight.
    pub const HAMMING_WEIGHT: usize = 32;

    /// Its name: `n16`, `n16-precise`, `n15-sparse` or `n12-toy`.
    pub fn name(self) -> &'static str {
        match self {
            Self::N16 => "n16",
            Self::N16Precise => "n16-precise",
            Self::N15Sparse => "n15-sparse",
            Self::N12Toy => "n12-toy",
        }
    }

    fn shape(self) -> Shape {
        let (log_n, log_slots, user_levels, dft_levels, special_primes, scale_bits, boot_bits) =
            match self {
                Self::N16 => (16, 15, 5, 5, 6, 54, 60),
                Self::N16Precise => (16, 15, 2, 5, 6, 56, 60),
                Self::N15Sparse => (15, 10, 2, 2, 3, 44, 50),
                Self::N12Toy => (12, 11, 2, 3, 2, 54, 60),
            };
        Shape {
            log_n,
            log_slots,
            user_levels,
            dft_levels,
            special_primes,
            scale_bits,
            boot_bits,
            arcsine: self == Self::N16Precise,
        }
    }

    /// Slots it bootstraps: N/2, or fewer for a sparse packing
    /// ([`Bootstrapper::with_slots`]).
    pub fn slots(self) -> usize {
        1 << self.shape().log_slots
    }

    /// Its circuit on `ctx` (made from [`Self::params`]).
    pub fn bootstrapper(self, ctx: &Arc<CkksContext>) -> Result<Bootstrapper, CkksError> {
        Bootstrapper::with_slots(ctx, self.config(), self.slots())
    }

    /// The scale's bits (the user's and SlotsToCoeffs' primes have this size).
    pub fn scale_bits(self) -> u32 {
        self.shape().scale_bits
    }

    /// Levels left to the user after a bootstrap.
    pub fn user_levels(self) -> usize {
        self.shape().user_levels
    }

    /// Its literal (never marked insecure: see [`Self::params`]).
    pub fn literal(self) -> CkksParametersLiteral {
        self.literal_with_levels(self.user_levels())
    }

    /// Its literal with `user_levels` levels left after a bootstrap instead
    /// of the preset's (comparisons at another depth; the security check
    /// applies when it is validated).
    pub fn literal_with_levels(self, user_levels: usize) -> CkksParametersLiteral {
        let sh = self.shape();
        let eval_mod = self.config().eval_mod().map_or(8, |m| m.depth());
        let mut bits = vec![sh.boot_bits];
        bits.extend(std::iter::repeat_n(
            sh.scale_bits,
            user_levels + sh.dft_levels,
        ));
        bits.extend(std::iter::repeat_n(sh.boot_bits, eval_mod + sh.dft_levels));
        // Digits of as many primes as there are special primes (each
        // digit's modulus then stays below P, the special primes being the
        // largest of their size).
        let dnum = bits.len().div_ceil(sh.special_primes);
        bits.extend(std::iter::repeat_n(sh.boot_bits, sh.special_primes));
        CkksParametersLiteral::new(sh.log_n, bits, sh.scale_bits)
            .with_key_switching(sh.special_primes, dnum)
    }

    /// The bootstrapping circuit: K = 17, a degree-63 interpolant with 2
    /// double angles (depth 8; 10 with the arcsine correction), the DFTs
    /// merged into the preset's levels.
    pub fn config(self) -> BootstrapConfig {
        let sh = self.shape();
        BootstrapConfig {
            k: 17.0,
            degree: 63,
            double_angles: 2,
            dft_levels: sh.dft_levels,
            arcsine: sh.arcsine,
        }
    }

    /// The validated parameters; an insecure preset is refused unless
    /// `allow_insecure` (tests only).
    pub fn params(self, allow_insecure: bool) -> Result<CkksParameters, CkksError> {
        self.params_with_levels(self.user_levels(), allow_insecure)
    }

    /// [`Self::params`] with `user_levels` levels left after a bootstrap.
    pub fn params_with_levels(
        self,
        user_levels: usize,
        allow_insecure: bool,
    ) -> Result<CkksParameters, CkksError> {
        let mut literal = self.literal_with_levels(user_levels);
        literal.allow_insecure = allow_insecure;
        CkksParameters::new(literal)
    }
}

impl std::fmt::Display for BootstrapPreset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Seconds each phase of one bootstrap took
/// ([`Bootstrapper::bootstrap_timed`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BootstrapTimes {
    /// Down to level 0, the encapsulation's key switches and ModRaise.
    pub mod_raise: f64,
    /// CoeffsToSlots.
    pub coeffs_to_slots: f64,
    /// The conjugation split and EvalMod on both parts.
    pub eval_mod: f64,
    /// SlotsToCoeffs.
    pub slots_to_coeffs: f64,
}

/// The bootstrapping circuit for one context: the two factored slot
/// transforms and EvalMod.
#[derive(Clone, Debug)]
pub struct Bootstrapper {
    ctx: Arc<CkksContext>,
    eval_mod: EvalMod,
    coeffs_to_slots: Vec<SlotTransform>,
    slots_to_coeffs: Vec<SlotTransform>,
    /// Slots bootstrapped: N/2 (full), or fewer (a sparse packing: slot
    /// vectors periodic with this period).
    slots: usize,
}

/// `m` (on `slots` slots) acting on a vector of `n` slots that is
/// periodic with period `slots`: every diagonal tiled.
fn tile(m: &Diagonals, n: usize) -> Diagonals {
    if m.n == n {
        return m.clone();
    }
    Diagonals {
        n,
        diags: m
            .diags
            .iter()
            .map(|(&d, v)| (d, (0..n).map(|k| v[k % m.n]).collect()))
            .collect(),
    }
}

impl Bootstrapper {
    /// The circuit for `ctx` with `config`, on all N/2 slots.
    pub fn new(ctx: &Arc<CkksContext>, config: BootstrapConfig) -> Result<Self, CkksError> {
        Self::with_slots(ctx, config, ctx.params().slots())
    }

    /// The circuit for a sparse packing of `slots` slots (a power of two,
    /// at most N/2): the slot vector must repeat with period `slots`
    /// ([`Self::replicate`]); ModRaise's result is first projected onto
    /// that subring by a partial trace (log2(N / 2 slots) rotations and
    /// additions), and the DFTs have log2(slots) stages instead of
    /// log2(N/2), so fewer levels, diagonals and rotation keys.
    pub fn with_slots(
        ctx: &Arc<CkksContext>,
        config: BootstrapConfig,
        slots: usize,
    ) -> Result<Self, CkksError> {
        let eval_mod = config.eval_mod().map_err(|e| CkksError::Mismatch {
            op: "bootstrapping",
            detail: e.to_string(),
        })?;
        let full = ctx.params().slots();
        if !slots.is_power_of_two() || slots < 2 || slots > full {
            return Err(CkksError::Mismatch {
                op: "bootstrapping",
                detail: format!(
                    "a packing of {slots} slots: it must be a power of two from 2 to N/2 = {full}"
                ),
            });
        }
        let stages = slots.trailing_zeros() as usize;
        let levels = config.dft_levels.clamp(1, stages.max(1));
        let need = eval_mod.depth() + 2 * levels;
        let have = ctx.params().max_level();
        if need > have {
            return Err(CkksError::Mismatch {
                op: "bootstrapping",
                detail: format!(
                    "needs {need} levels above level 0 (CoeffsToSlots {levels}, EvalMod {}, SlotsToCoeffs {levels}); the chain has {have}",
                    eval_mod.depth()
                ),
            });
        }
        let lifted = |inverse: bool| -> Vec<SlotTransform> {
            merge_stages(&dft_stages(slots, inverse), levels)
                .iter()
                .map(|m| SlotTransform::new(&tile(m, full)))
                .collect()
        };
        Ok(Self {
            ctx: Arc::clone(ctx),
            eval_mod,
            coeffs_to_slots: lifted(true),
            slots_to_coeffs: lifted(false),
            slots,
        })
    }

    /// Slots it bootstraps (N/2 for a full packing).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// `values` (at most [`Self::slots`]) zero-padded and repeated over the
    /// N/2 slots: the encoding a sparse packing bootstraps.
    pub fn replicate(&self, values: &[f64]) -> Vec<f64> {
        let full = self.ctx.params().slots();
        (0..full)
            .map(|k| values.get(k % self.slots).copied().unwrap_or(0.0))
            .collect()
    }

    /// The partial trace's rotation steps: `slots · 2^i` below N/2.
    fn trace_steps(&self) -> Vec<i64> {
        let full = self.ctx.params().slots();
        let mut steps = Vec::new();
        let mut s = self.slots;
        while s < full {
            steps.push(s as i64);
            s *= 2;
        }
        steps
    }

    /// Plaintext diagonals of each merged matrix of the two DFTs (the cost
    /// breakdown: one plaintext multiplication each).
    pub fn diagonal_counts(&self) -> (Vec<usize>, Vec<usize>) {
        let count = |t: &[SlotTransform]| {
            t.iter()
                .map(|x| x.groups.values().map(Vec::len).sum())
                .collect()
        };
        (count(&self.coeffs_to_slots), count(&self.slots_to_coeffs))
    }

    /// Rotation steps the Galois keys must hold (and the conjugation).
    pub fn rotation_steps(&self) -> Vec<i64> {
        let mut s: Vec<i64> = self
            .coeffs_to_slots
            .iter()
            .chain(&self.slots_to_coeffs)
            .flat_map(SlotTransform::rotation_steps)
            .chain(self.trace_steps())
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    }

    /// The level a bootstrapped ciphertext comes back at.
    pub fn output_level(&self) -> usize {
        self.ctx.params().max_level() - self.depth()
    }

    /// The evaluation keys a bootstrap needs, made by the key owner: the
    /// relinearisation key, Galois keys for [`Self::rotation_steps`], the
    /// conjugation and `extra_steps` (the user's circuit's), and
    /// encapsulation keys of Hamming weight `h` (checked against EvalMod's
    /// K). Every uniform part keeps its seed, so that the keys upload in
    /// about half their bytes ([`crate::serial`]).
    pub fn keygen(
        &self,
        kg: &mut KeyGenerator,
        extra_steps: &[i64],
        h: usize,
    ) -> Result<EvaluationKeys, CkksError> {
        let encapsulation = kg.encapsulation_keys(h)?;
        self.check_range(&encapsulation)?;
        let mut steps = self.rotation_steps();
        steps.extend_from_slice(extra_steps);
        let rk = kg.relinearization_key();
        let gk = kg.galois_keys(&steps, true);
        Ok(EvaluationKeys::new(Some(rk), Some(gk)).with_encapsulation(encapsulation))
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
        self.bootstrap_timed(ev, ct, out_scale).map(|(c, _)| c)
    }

    /// [`Self::bootstrap_to`], with the seconds each phase took.
    pub fn bootstrap_timed(
        &self,
        ev: &Evaluator,
        ct: &Ciphertext,
        out_scale: f64,
    ) -> Result<(Ciphertext, BootstrapTimes), CkksError> {
        let enc = ev.encoder();
        let mut times = BootstrapTimes::default();
        let clock = std::time::Instant::now();
        let delta_in = ct.scale();
        let raised = self.raise(ev, ct)?;
        times.mod_raise = clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        let w = self.coeffs_to_slots(ev, enc, raised)?;
        times.coeffs_to_slots = clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        let v = self.eval_mod_both(ev, &w)?;
        times.eval_mod = clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        let out = self.slots_to_coeffs(ev, enc, v, delta_in, out_scale)?;
        times.slots_to_coeffs = clock.elapsed().as_secs_f64();
        Ok((out, times))
    }

    /// ModRaise (through the ephemeral sparse secret when the evaluator
    /// holds encapsulation keys), then for a sparse packing the partial
    /// trace; the scale relabelled to `2 q_0 K` (times the trace's factor): slots
    /// read `F((t_low + i t_high) / (2 q_0 K))`, the 2 being the
    /// conjugation split's (`re = w + w̄ = 2 Re w`).
    fn raise(&self, ev: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext, CkksError> {
        let q0 = self.ctx.params().q()[0] as f64;
        let low = ev.mod_down_to(ct, 0)?;
        let mut raised = match ev.keys().encapsulation() {
            Some(keys) => {
                self.check_range(keys)?;
                let sparse = ev.switch_key(&low, &keys.to_sparse)?;
                ev.switch_key(&ev.mod_raise(&sparse)?, &keys.to_dense)?
            }
            None => ev.mod_raise(&low)?,
        };
        // A sparse packing: the partial trace multiplies the subring's
        // coefficients by N / (2 slots) and cancels the others; the scale's
        // relabelling absorbs the factor.
        let gap = self.ctx.params().slots() / self.slots;
        ev.set_scale(&mut raised, 2.0 * q0 * self.eval_mod.k() * gap as f64)?;
        if gap > 1 {
            let gk = ev.galois_keys("bootstrapping")?;
            for step in self.trace_steps() {
                raised = ev.add(&raised, &ev.rotate(&raised, step, gk)?)?;
            }
        }
        Ok(raised)
    }

    /// CoeffsToSlots, one level per merged matrix: each keeps the scale
    /// (plaintexts at the dropped prime's scale), the last lands on the
    /// scale of the prime EvalMod drops first.
    fn coeffs_to_slots(
        &self,
        ev: &Evaluator,
        enc: &Encoder,
        raised: Ciphertext,
    ) -> Result<Ciphertext, CkksError> {
        let q = self.ctx.params().q();
        let last = self.coeffs_to_slots.len() - 1;
        let mut w = raised;
        for (i, t) in self.coeffs_to_slots.iter().enumerate() {
            let prime = q[w.level()] as f64;
            let (pt_scale, keep) = if i == last {
                let target = q[w.level() - 1] as f64;
                (target * prime / w.scale(), target)
            } else {
                (prime, w.scale())
            };
            w = ev.rescale(&t.apply(ev, enc, &w, pt_scale)?)?;
            ev.set_scale(&mut w, keep)?;
        }
        Ok(w)
    }

    /// The real and imaginary parts, `w + w̄` and `(w̄ − w)·i` (each
    /// `t / (q_0 K)`), through EvalMod, recombined as `x_re + i·x_im`.
    fn eval_mod_both(&self, ev: &Evaluator, w: &Ciphertext) -> Result<Ciphertext, CkksError> {
        let gk = ev.galois_keys("bootstrapping")?;
        let wc = ev.conjugate(w, gk)?;
        let re = ev.add(w, &wc)?;
        let im = ev.mul_by_i(&ev.sub(&wc, w)?)?;
        let bk = |e: crate::circuits::CircuitError| CkksError::Mismatch {
            op: "bootstrapping EvalMod",
            detail: e.to_string(),
        };
        let xr = self.eval_mod.apply(ev, &re).map_err(bk)?;
        let xi = self.eval_mod.apply(ev, &im).map_err(bk)?;
        ev.add(&xr, &ev.mul_by_i(&xi)?)
    }

    /// SlotsToCoeffs, its plaintexts scaled so that after the rescale and
    /// the relabelling from `(Δ m + e) / q_0` back to `m` the result is at
    /// `out_scale` exactly.
    fn slots_to_coeffs(
        &self,
        ev: &Evaluator,
        enc: &Encoder,
        v: Ciphertext,
        delta_in: f64,
        out_scale: f64,
    ) -> Result<Ciphertext, CkksError> {
        let q = self.ctx.params().q();
        let q0 = q[0] as f64;
        let last = self.slots_to_coeffs.len() - 1;
        let mut out = v;
        for (i, t) in self.slots_to_coeffs.iter().enumerate() {
            let prime = q[out.level()] as f64;
            let (pt_scale, keep) = if i == last {
                (out_scale * q0 * prime / (out.scale() * delta_in), out_scale)
            } else {
                (prime, out.scale())
            };
            out = ev.rescale(&t.apply(ev, enc, &out, pt_scale)?)?;
            ev.set_scale(&mut out, keep)?;
        }
        Ok(out)
    }

    /// Whether EvalMod's range covers the integer part ModRaise adds under
    /// the ephemeral secret of `keys`: `|I| ≤ (h + 1) / 2`, and the message
    /// adds less than one half, so K must exceed the bound by one.
    pub fn check_range(&self, keys: &EncapsulationKeys) -> Result<(), CkksError> {
        let bound = keys.integer_bound();
        let need = bound + 1.0;
        if self.eval_mod.k() < need {
            return Err(CkksError::BootstrapRange {
                k: self.eval_mod.k(),
                bound,
                need,
                what: format!(
                    "an ephemeral secret of Hamming weight {}",
                    keys.hamming_weight()
                ),
            });
        }
        Ok(())
    }

    /// The model of this circuit the simulator runs
    /// ([`crate::circuits::sim::SimBackend::bootstrap`]): its levels, range
    /// and error. `integer_bound`: the bound on ModRaise's |I| (the
    /// encapsulation keys' [`EncapsulationKeys::integer_bound`]; `None` for
    /// a dense secret, whose |I| has no useful worst case).
    pub fn model(&self, integer_bound: Option<f64>) -> BootstrapModel {
        let params = self.ctx.params();
        let eval_level = params.max_level() - self.coeffs_to_slots.len();
        BootstrapModel {
            encoder: Arc::new(Encoder::new(&self.ctx)),
            output_level: self.output_level(),
            eval_mod: self.eval_mod.clone(),
            integer_bound,
            q0: params.q()[0] as f64,
            q_eval: params.q()[eval_level] as f64,
            n: params.n() as f64,
            slots: self.slots,
        }
    }

    /// EvalMod's circuit.
    pub fn eval_mod(&self) -> &EvalMod {
        &self.eval_mod
    }

    /// Levels one bootstrap consumes (both DFTs and EvalMod).
    pub fn depth(&self) -> usize {
        self.coeffs_to_slots.len() + self.slots_to_coeffs.len() + self.eval_mod.depth()
    }
}

/// The constant of [`BootstrapModel`]'s noise law, fitted on one run
/// (N = 2^10, K = 17, Δ = 2^35: worst slot error 2^-12.6).
pub const BOOTSTRAP_NOISE: f64 = 10.0;

/// What a bootstrap does to a ciphertext, for the simulator and the
/// planner: the level it returns at, the range EvalMod covers, and the
/// error it adds (a worst-case estimate over the slots).
///
/// The error has two terms, both in slot units:
/// - **EvalMod's approximation**, computed: the slot values encode to
///   coefficients `c_j` ([`Encoder::real_coefficients`]), EvalMod sees
///   `x_j = Δ·c_j / q_0` and returns [`EvalMod::eval`]`(x_j)` (its
///   polynomial, double angles and the sine's own `(2πx)²x/6`), and the
///   coefficient errors, times `q_0 / Δ`, are decoded back to the slots
///   ([`Encoder::slots_of_coefficients`]): the largest is the term;
/// - **the circuit's noise**, a fitted law: `C · K · N · √(2n) · (q_0 / q_e) / Δ`
///   for `n` slots (`N^1.5` at full slots)
///   with `q_e` the scale EvalMod starts at and [`BOOTSTRAP_NOISE`] `C = 10`,
///   fitted on one run (N = 2^10, K = 17, Δ = 2^35). Its shape: the noise
///   of the ciphertext entering EvalMod (relative to `q_e`) is multiplied
///   by EvalMod's slope in `t / K` (K), and each coefficient's share of it,
///   which grows with `N` through the secret's norm, is summed by
///   SlotsToCoeffs over `N/2` coefficients; it does not depend on the
///   double angles (measured: r = 2 and r = 4 give the same error).
///
/// Checked against the real circuit (tests and
/// `results/bootstrap/scaling.md`): within 1.5 bits from N = 2^10 to
/// 2^13, K = 17 and 64, whichever term dominates.
#[derive(Clone, Debug)]
pub struct BootstrapModel {
    encoder: Arc<Encoder>,
    output_level: usize,
    eval_mod: EvalMod,
    integer_bound: Option<f64>,
    q0: f64,
    q_eval: f64,
    n: f64,
    slots: usize,
}

impl BootstrapModel {
    /// The level a bootstrapped ciphertext comes back at.
    pub fn output_level(&self) -> usize {
        self.output_level
    }

    /// The largest fraction of `q_0` the slot values put in a coefficient
    /// at scale `delta`.
    pub fn fraction(&self, delta: f64, values: &[f64]) -> f64 {
        delta * self.encoder.max_coefficient(values) / self.q0
    }

    /// [`Self::check`], then [`Self::predicted_error`], encoding the values
    /// once (the simulator's bootstrap).
    pub fn check_and_predict(&self, delta: f64, values: &[f64]) -> Result<f64, CkksError> {
        let coeffs = self.encoder.real_coefficients(values);
        self.check_coefficients(delta, values, &coeffs)?;
        Ok(self.error_of(delta, &coeffs))
    }

    /// Whether EvalMod covers the input: `|I| + |x| < K` (only checkable
    /// with a bound on |I|, that is with encapsulation), and `|x| < 1/4`
    /// (past it the sine is no approximation of the identity at all).
    pub fn check(&self, delta: f64, values: &[f64]) -> Result<(), CkksError> {
        self.check_coefficients(delta, values, &self.encoder.real_coefficients(values))
    }

    fn check_coefficients(
        &self,
        delta: f64,
        values: &[f64],
        coeffs: &[f64],
    ) -> Result<(), CkksError> {
        if let Some(k) = (self.slots..values.len()).find(|&k| values[k] != values[k % self.slots]) {
            return Err(CkksError::Mismatch {
                op: "bootstrap",
                detail: format!(
                    "a packing of {} slots needs a slot vector that repeats with that period; slot {k} holds {} but slot {} holds {} (Bootstrapper::replicate)",
                    self.slots,
                    values[k],
                    k % self.slots,
                    values[k % self.slots]
                ),
            });
        }
        let x = delta * coeffs.iter().fold(0f64, |m, c| m.max(c.abs())) / self.q0;
        let k = self.eval_mod.k();
        let bound = self.integer_bound.unwrap_or(0.0);
        if x >= 0.25 || bound + x >= k {
            return Err(CkksError::BootstrapRange {
                k,
                bound: bound + x,
                need: (bound + x).floor() + 1.0,
                what: format!(
                    "slots at scale 2^{:.1} putting a fraction {x:.3e} of q_0 in a coefficient (it must stay below 1/4){}",
                    delta.log2(),
                    if self.integer_bound.is_some() {
                        " plus the ephemeral secret's |I|"
                    } else {
                        ""
                    }
                ),
            });
        }
        Ok(())
    }

    /// The worst slot error a bootstrap adds to `values` at scale `delta`:
    /// EvalMod's term plus the noise term (see the type's documentation).
    pub fn predicted_error(&self, delta: f64, values: &[f64]) -> f64 {
        self.error_of(delta, &self.encoder.real_coefficients(values))
    }

    /// The predicted error for the values' coefficients `coeffs`.
    fn error_of(&self, delta: f64, coeffs: &[f64]) -> f64 {
        let ratio = self.q0 / delta;
        let errors: Vec<f64> = coeffs
            .iter()
            .map(|&c| {
                let x = c / ratio;
                (self.eval_mod.eval(x) - x) * ratio
            })
            .collect();
        let approx = self
            .encoder
            .slots_of_coefficients(&errors)
            .iter()
            .fold(0f64, |m, e| m.max(e.abs()));
        approx + self.noise(delta)
    }

    /// The error for a constant vector of `max_abs` (one coefficient holds
    /// it all): a planning figure when the values are not known. Vectors
    /// with many large coefficients (smooth, nearly constant data) can
    /// exceed it; [`Self::predicted_error`] computes it for the values.
    pub fn constant_vector_error(&self, delta: f64, max_abs: f64) -> f64 {
        let x = delta * max_abs / self.q0;
        (self.eval_mod.eval(x) - x).abs() * self.q0 / delta + self.noise(delta)
    }

    /// The noise term at scale `delta`.
    fn noise(&self, delta: f64) -> f64 {
        let summed = (2 * self.slots) as f64;
        BOOTSTRAP_NOISE * self.eval_mod.k() * self.n * summed.sqrt() * (self.q0 / self.q_eval)
            / delta
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::params::{CkksParameters, CkksParametersLiteral};

    fn bit_reversed(v: &[Complex]) -> Vec<Complex> {
        let n = v.len();
        let bits = n.trailing_zeros();
        (0..n)
            .map(|i| v[i.reverse_bits() >> (usize::BITS - bits)])
            .collect()
    }

    /// The factored DFTs are the encoder's: SlotsToCoeffs on bit-reversed
    /// input is the decoder's DFT, CoeffsToSlots its inverse (bit-reversed
    /// output), whatever the number of levels they are merged into.
    #[test]
    fn factored_dfts_are_the_encoders() {
        let ctx = CkksContext::new(
            CkksParameters::new(CkksParametersLiteral {
                log_n: 10,
                coeff_mod_bit_sizes: vec![60, 60],
                scale_bits: 40,
                allow_insecure: true,
                special_primes: 1,
                dnum: None,
            })
            .unwrap(),
        )
        .unwrap();
        let enc = Encoder::new(&ctx);
        let n = ctx.params().slots();
        let u: Vec<Complex> = (0..n)
            .map(|i| ((i as f64 * 0.7).sin(), (i as f64 * 0.3).cos()))
            .collect();
        let s = 2f64.powi(40);
        let coeffs: Vec<i64> = (0..2 * n)
            .map(|j| {
                let v = if j < n { u[j].0 } else { u[j - n].1 };
                (v * s).round() as i64
            })
            .collect();
        let z = enc.decode_complex(&enc.plaintext_from_integers(&coeffs, 0, s));
        for levels in [1, 2, 3, 9] {
            let stc = merge_stages(&dft_stages(n, false), levels);
            let cts = merge_stages(&dft_stages(n, true), levels);
            assert_eq!(stc.len(), levels);
            let fwd = stc.iter().fold(bit_reversed(&u), |v, m| m.apply_plain(&v));
            let inv = cts.iter().fold(z.clone(), |v, m| m.apply_plain(&v));
            let back = bit_reversed(&u);
            for k in 0..n {
                assert!(
                    (fwd[k].0 - z[k].0).abs() + (fwd[k].1 - z[k].1).abs() < 1e-9,
                    "levels {levels}, slot {k}"
                );
                assert!(
                    (inv[k].0 - back[k].0).abs() + (inv[k].1 - back[k].1).abs() < 1e-9,
                    "levels {levels}, slot {k}"
                );
            }
            // Merging g of the 9 stages gives at most 3^g diagonals.
            let most = stc.iter().map(|m| m.diags.len()).max().unwrap();
            assert!(
                most <= 3usize.pow(7u32.div_ceil(levels as u32)).min(n),
                "{most}"
            );
        }
    }
}
