//! Circuit planner: multiplicative depth of an inference model per layer,
//! choice of CKKS parameters (a SPEC preset, or the smallest secure chain
//! that fits), and a typed refusal of a chain that is too short.
//!
//! Depth per layer (levels = rescales):
//! - conv: 1 (integer-scaled plaintext weights accumulated, one rescale);
//! - a polynomial activation of degree `d`: `ceil(log2(d + 1))` with the
//!   depth-optimal evaluator of [`slaf_ckks::circuits`], except the two
//!   shapes of [`ActPlan`] that fold into the next linear layer: `a0 + a2·x²`
//!   (X2 among them) is 1 level, `a0 + a1·x` is 0;
//! - dense1 and fc2: 1 each.
//!
//! The planner also bounds the logits (from the weights file's max |input|
//! of act2, the act2 polynomial and fc2's weights) so that the last level
//! keeps enough modulus for them: [`CircuitPlan::start_level`] is the
//! lowest level at which the input can be encrypted (every level above is
//! dropped before any work, which makes every operation cheaper).
//!
//! It sizes the scale for precision too: an activation amplifies its input's
//! CKKS error by its slope, so [`auto_params`] takes a scale of at least
//! [`CircuitPlan::min_scale_bits`] (`ceil(log2 max |act'|) + 10` bits over
//! the recorded input ranges).

use super::{HeNnError, Mode};
use serde::Serialize;
use slaf_ckks::circuits::{EvalPlan, Polynomial};
use slaf_ckks::{ChainRequest, CkksParameters, CkksParametersLiteral, Preset};
use slaf_nn::{ChainForm, InferenceAct, Variant, WeightsFile};

/// How an activation is evaluated: the one rule set both engines and the
/// planner use. Two shapes cost less than the general polynomial and leave
/// part of the map to the next linear layer, which folds `fold()` into its
/// weights and `offset() · (row sums)` into its bias:
/// - `a0 + a1·x` costs nothing (depth 0);
/// - `a0 + a2·x²` is one ciphertext square (depth 1 instead of 2).
#[derive(Clone, Debug)]
pub enum ActPlan {
    /// `a0 + a1·x`: nothing to evaluate.
    Affine {
        /// Constant term (folded into the next bias).
        a0: f64,
        /// Slope (folded into the next weights).
        a1: f64,
    },
    /// `a0 + a2·x²`: one square.
    Square {
        /// Constant term (folded into the next bias).
        a0: f64,
        /// Coefficient of x² (folded into the next weights).
        a2: f64,
    },
    /// A general power-basis polynomial through the depth-optimal evaluator.
    Poly {
        /// The polynomial (trailing zero coefficients dropped).
        poly: Polynomial,
        /// Its evaluation plan (depth, products).
        plan: Box<EvalPlan>,
    },
}

impl ActPlan {
    /// Plan one activation; ReLU and constants are refused.
    pub fn new(layer: &str, act: &InferenceAct) -> Result<Self, HeNnError> {
        let coeffs = match act {
            InferenceAct::Relu => {
                return Err(HeNnError::NonPolynomialActivation {
                    layer: layer.to_string(),
                });
            }
            InferenceAct::Poly { coeffs } => coeffs,
        };
        let c = |i: usize| coeffs.get(i).copied().unwrap_or(0.0);
        let deg = coeffs.iter().rposition(|&v| v != 0.0).unwrap_or(0);
        if deg == 0 {
            return Err(HeNnError::InvalidRequest {
                detail: format!("activation {layer} is a constant polynomial"),
            });
        }
        if deg == 1 {
            return Ok(Self::Affine { a0: c(0), a1: c(1) });
        }
        if deg == 2 && c(1) == 0.0 {
            return Ok(Self::Square { a0: c(0), a2: c(2) });
        }
        let poly = Polynomial::power(coeffs[..=deg].to_vec());
        let plan = EvalPlan::new(&poly)?;
        Ok(Self::Poly {
            poly,
            plan: Box::new(plan),
        })
    }

    /// Levels consumed.
    pub fn depth(&self) -> usize {
        match self {
            Self::Affine { .. } => 0,
            Self::Square { .. } => 1,
            Self::Poly { plan, .. } => plan.depth,
        }
    }

    /// The factor the next linear layer folds into its weights (`a1`, `a2`, else 1).
    pub fn fold(&self) -> f64 {
        match self {
            Self::Affine { a1, .. } => *a1,
            Self::Square { a2, .. } => *a2,
            Self::Poly { .. } => 1.0,
        }
    }

    /// The constant the next linear layer adds through its bias (`a0` of
    /// the two cheap shapes, else 0).
    pub fn offset(&self) -> f64 {
        match self {
            Self::Affine { a0, .. } | Self::Square { a0, .. } => *a0,
            Self::Poly { .. } => 0.0,
        }
    }

    /// The activation as one power-basis polynomial.
    pub fn polynomial(&self) -> Polynomial {
        match self {
            Self::Affine { a0, a1 } => Polynomial::power(vec![*a0, *a1]),
            Self::Square { a0, a2 } => Polynomial::power(vec![*a0, 0.0, *a2]),
            Self::Poly { poly, .. } => poly.clone(),
        }
    }

    /// Evaluate in plaintext.
    pub fn apply(&self, x: f64) -> f64 {
        match self {
            Self::Affine { a0, a1 } => a0 + a1 * x,
            Self::Square { a0, a2 } => a0 + a2 * x * x,
            Self::Poly { poly, .. } => poly.eval(x),
        }
    }
}

/// Levels one layer consumes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerDepth {
    /// `conv`, `act1`, `fc1`, `act2`, `fc2`, `act3`, `fc3`, ...
    pub layer: String,
    /// Levels.
    pub depth: usize,
}

/// The depth plan of a model.
#[derive(Clone, Debug)]
pub struct CircuitPlan {
    /// Per-layer depths in pipeline order.
    pub layers: Vec<LayerDepth>,
    /// Sum of the layer depths.
    pub depth: usize,
    /// The activations in order (`act1`, `act2`, ...).
    pub acts: Vec<ActPlan>,
    /// Max |input| of each activation (weights file, train and test passes), if known.
    pub max_abs: Option<Vec<f64>>,
    /// Largest |act'(x)| of any activation over its observed input range
    /// (None without recorded ranges): how much an activation amplifies the
    /// CKKS error of its input.
    pub max_slope: Option<f64>,
    /// Upper bound on |logit| used to size the last level.
    pub logit_bound: f64,
    /// Slots one image needs in the per-image engine (its im2col input:
    /// kernel taps × conv output positions).
    pub per_image_slots: usize,
    /// Slots the parameters must hold: 1 until [`CircuitPlan::for_mode`]
    /// sets it; [`auto_params`] starts from the smallest N with N/2 slots
    /// at least this.
    pub min_slots: usize,
}

/// Bits of scale above `log2(max slope)` that [`CircuitPlan::min_scale_bits`] asks for.
pub const PRECISION_MARGIN_BITS: u32 = 10;
/// Fallback max |last activation input| when the weights file has none.
const DEFAULT_ACT2_RANGE: f64 = 64.0;
/// Safety factor on the observed activation ranges.
const RANGE_MARGIN: f64 = 1.5;

impl CircuitPlan {
    /// Plan a model `conv → (act → dense)+`; `max_abs` are the observed
    /// max |input| of the activations.
    pub fn new(model: &ChainForm, max_abs: Option<Vec<f64>>) -> Result<Self, HeNnError> {
        let acts: Vec<ActPlan> = model
            .pairs
            .iter()
            .enumerate()
            .map(|(i, (a, _))| ActPlan::new(&format!("act{}", i + 1), a))
            .collect::<Result<_, _>>()?;
        let (Some(last_act), Some((_, last_dense))) = (acts.last(), model.pairs.last()) else {
            return Err(HeNnError::InvalidRequest {
                detail: "a model needs at least one activation and dense layer after its conv"
                    .into(),
            });
        };
        if let Some(m) = &max_abs
            && m.len() != acts.len()
        {
            return Err(HeNnError::InvalidRequest {
                detail: format!(
                    "{} activation ranges for {} activations",
                    m.len(),
                    acts.len()
                ),
            });
        }
        let mut layers = vec![LayerDepth {
            layer: "conv".into(),
            depth: 1,
        }];
        for (i, a) in acts.iter().enumerate() {
            layers.push(LayerDepth {
                layer: format!("act{}", i + 1),
                depth: a.depth(),
            });
            layers.push(LayerDepth {
                layer: format!("fc{}", i + 1),
                depth: 1,
            });
        }
        let depth = layers.iter().map(|l| l.depth).sum();
        // |logit| <= max_i (|b_i| + sum_j |W_ij|) * max_{|x| <= m} |act(x)|
        // for the last activation and dense layer.
        let m2 = max_abs
            .as_ref()
            .and_then(|m| m.last().copied())
            .unwrap_or(DEFAULT_ACT2_RANGE)
            * RANGE_MARGIN;
        let act_max = (0..=200)
            .map(|i| last_act.apply(-m2 + 2.0 * m2 * f64::from(i) / 200.0).abs())
            .fold(0.0f64, f64::max);
        let logit_bound = last_dense
            .weight
            .chunks(last_dense.cols.max(1))
            .zip(&last_dense.bias)
            .map(|(row, b)| b.abs() + act_max * row.iter().map(|w| w.abs()).sum::<f64>())
            .fold(1.0f64, f64::max);
        let max_slope = max_abs.as_ref().map(|m| {
            acts.iter()
                .zip(m)
                .map(|(a, &r)| a.polynomial().max_abs_slope(r))
                .fold(0.0f64, f64::max)
        });
        let g = model.conv.geom;
        Ok(Self {
            layers,
            depth,
            acts,
            max_slope,
            max_abs,
            logit_bound,
            per_image_slots: g.patch() * g.out_h() * g.out_w(),
            min_slots: 1,
        })
    }

    /// The plan for an engine: per image, the parameters must hold one
    /// image's im2col input ([`CircuitPlan::per_image_slots`]); batched, one
    /// image per slot fits any ring.
    pub fn for_mode(mut self, mode: super::Mode) -> Self {
        self.min_slots = match mode {
            super::Mode::PerImage => self.per_image_slots,
            super::Mode::Batched => 1,
        };
        self
    }

    /// Plan from a weights file (uses its max |input| records).
    pub fn from_weights(w: &WeightsFile) -> Result<Self, HeNnError> {
        let form = w.inference.chain_form()?;
        let max_abs = (w.activations.len() == form.pairs.len()).then(|| {
            w.activations
                .iter()
                .map(|a| f64::from(a.max_abs.overall()))
                .collect()
        });
        Self::new(&form, max_abs)
    }

    /// `conv 1 + act1 2 + fc1 1 + act2 2 + fc2 1`.
    pub fn breakdown(&self) -> String {
        self.layers
            .iter()
            .map(|l| format!("{} {}", l.layer, l.depth))
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// Bits the modulus left at the last level must have for the logits at `scale`.
    pub fn logit_bits(&self, scale: f64) -> f64 {
        // value * scale < Q / 2 with a factor 8 of headroom.
        (self.logit_bound * scale).log2() + 4.0
    }

    /// The smallest scale (bits) at which the activations keep the decrypted
    /// logits within about 1/16 of their plaintext values:
    /// `ceil(log2(max_slope)) + PRECISION_MARGIN_BITS` (0 without recorded
    /// ranges). An input error of `e` leaves an activation as `slope · e`,
    /// and CKKS leaves an error of about 2^5 / scale on each value (measured
    /// on the study's 10,000-image runs: a slope of 3.8e4 at scale 2^26
    /// gave logit errors of 2e-2, a slope of 6.8e7 errors of 30).
    pub fn min_scale_bits(&self) -> u32 {
        self.max_slope
            .filter(|s| s.is_finite() && *s > 1.0)
            .map_or(0, |s| s.log2().ceil() as u32 + PRECISION_MARGIN_BITS)
    }

    /// Refuse a model this plan was not made for (a different number of
    /// activations), or whose weights do not validate.
    pub fn check_model(&self, model: &ChainForm) -> Result<(), HeNnError> {
        model.validate()?;
        if self.acts.len() != model.pairs.len() {
            return Err(HeNnError::InvalidRequest {
                detail: format!(
                    "the plan has {} activations, the model {}",
                    self.acts.len(),
                    model.pairs.len()
                ),
            });
        }
        Ok(())
    }

    /// Refuse parameters whose chain is shorter than the depth.
    pub fn check(&self, params: &CkksParameters) -> Result<(), HeNnError> {
        if params.max_level() < self.depth {
            return Err(HeNnError::ChainTooShort {
                needed: self.depth,
                available: params.max_level(),
                detail: self.breakdown(),
            });
        }
        Ok(())
    }

    /// The level to encrypt at: the depth plus the fewest extra levels that
    /// leave room for the logits at the default scale (at most the top level).
    pub fn start_level(&self, params: &CkksParameters) -> Result<usize, HeNnError> {
        self.check(params)?;
        let need = self.logit_bits(params.default_scale());
        // The fewest primes whose modulus holds the logits, above the depth.
        let max = params.max_level();
        Ok((0..=max)
            .map(|extra| (extra, self.depth + extra))
            .find(|&(extra, level)| params.modulus_bits(extra) >= need || level == max)
            .map_or(max, |(_, level)| level))
    }
}

/// Where the per-image layout encrypts its input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StartLevel {
    /// The lowest level that fits the circuit and still leaves
    /// `headroom_bits` of modulus above the scale for the logits (a fresh
    /// encryption at a lower level is as secure, and every operation works
    /// on fewer primes).
    Lowest {
        /// Minimum bits of modulus above the scale at the logits' level.
        headroom_bits: f64,
    },
    /// The top of the chain, as TenSEAL does.
    Top,
}

impl Default for StartLevel {
    fn default() -> Self {
        Self::Lowest {
            headroom_bits: 12.0,
        }
    }
}

/// The levels and scales of the batched layout ([`CircuitPlan::batched_levels`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchedLevels {
    /// Level the inputs are encrypted at ([`CircuitPlan::start_level`]).
    pub start_level: usize,
    /// Scale the inputs are encoded at.
    pub input_scale: f64,
    /// Scale of the decrypted logits.
    pub output_scale: f64,
}

impl CircuitPlan {
    /// The per-image layout's start level on `params` (the depth checked
    /// against the chain first).
    pub fn per_image_start_level(
        &self,
        params: &CkksParameters,
        start: StartLevel,
    ) -> Result<usize, HeNnError> {
        self.check(params)?;
        let max = params.max_level();
        Ok(match start {
            StartLevel::Top => max,
            StartLevel::Lowest { headroom_bits } => {
                let log_scale = params.default_scale().log2();
                // The fewest primes whose modulus leaves `headroom_bits` above the scale.
                let end = (0..=max)
                    .find(|&i| params.modulus_bits(i) - log_scale >= headroom_bits)
                    .unwrap_or(max);
                (self.depth + end).min(max)
            }
        })
    }

    /// The batched layout's levels and scales on `params`: inputs at
    /// [`Self::start_level`]; the logits at the default scale unless the
    /// last level is too small for them (then the largest power of two
    /// that fits, refused below 2^10); the input scale balancing
    /// public-key encryption noise against the rounding of the conv
    /// weights.
    pub fn batched_levels(&self, params: &CkksParameters) -> Result<BatchedLevels, HeNnError> {
        let start_level = self.start_level(params)?;
        let scale = params.default_scale();
        // Output scale: the default one unless the last level is too small for the logits.
        let final_level = start_level - self.depth;
        let final_bits = params.modulus_bits(final_level);
        let room = final_bits - self.logit_bits(1.0);
        let output_scale = scale.min(2f64.powf(room.floor()));
        if output_scale < 2f64.powi(10) {
            return Err(HeNnError::Layout {
                detail: format!(
                    "the last level ({final_bits:.0} bits) leaves no room for logits up to {:.3e}; use a chain with a larger first prime or one more level",
                    self.logit_bound
                ),
            });
        }
        // Input scale: public-key encryption noise in a slot is about
        // 3.7·N (σ·N·sqrt(4/3)), the conv weights are rounded to integers
        // round(w·c) with c = Δ·q / s_in; s_in balances the two errors
        // (s_in² ≈ 3.7·N·Δ·q / 0.29), which gains ~8 bits over s_in = Δ.
        let q_top = params
            .rescale_prime(start_level)
            .ok_or_else(|| HeNnError::Layout {
                detail: format!(
                    "start level {start_level} is above the chain's top level {}",
                    params.max_level()
                ),
            })?;
        let balanced = ((3.7 * params.n() as f64).log2() + (scale * q_top / 0.29).log2()) / 2.0;
        let input_scale = 2f64.powi(balanced.round() as i32).max(scale);
        Ok(BatchedLevels {
            start_level,
            input_scale,
            output_scale,
        })
    }
}

/// Which CKKS parameters to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamsChoice {
    /// A SPEC §5 preset (`cnn1-x2`, `slaf`, `slaf-p`).
    Preset(Preset),
    /// The smallest secure set (N from 2^13 to 2^16) that fits the depth.
    Auto,
    /// `auto`'s ring and ciphertext primes with hybrid key switching
    /// ([`slaf_ckks::hybrid_key_switching`]): 31-bit special primes and fewer digits
    /// where the HE-standard bound leaves room, else exactly `auto`.
    AutoHybrid,
    /// An explicit literal (`custom:LOGN:BITS:SCALE`, e.g.
    /// `custom:12:36,26x7,36:26`), for experiments and small test rings.
    Custom(CkksParametersLiteral),
}

impl ParamsChoice {
    /// Parse `cnn1-x2`, `slaf`, `slaf-p`, `auto`, `auto-hybrid` or `custom:LOGN:BITS:SCALE`
    /// (BITS comma-separated, `26x7` repeats); `allow_insecure` applies to custom sets.
    pub fn parse(s: &str, allow_insecure: bool) -> Result<Self, HeNnError> {
        let bad = |detail: String| HeNnError::InvalidRequest { detail };
        if s == "auto" {
            return Ok(Self::Auto);
        }
        if s == "auto-hybrid" {
            return Ok(Self::AutoHybrid);
        }
        if let Some(p) = Preset::from_name(s) {
            return Ok(Self::Preset(p));
        }
        if let Some(rest) = s.strip_prefix("custom:") {
            let f: Vec<&str> = rest.split(':').collect();
            let [logn, bits, scale] = f.as_slice() else {
                return Err(bad(format!(
                    "custom parameters {s:?}: expected custom:LOGN:BITS:SCALE"
                )));
            };
            let num = |t: &str| {
                t.trim()
                    .parse::<u32>()
                    .map_err(|_| bad(format!("custom parameters {s:?}: {t:?} is not a number")))
            };
            let mut chain = Vec::new();
            for b in bits.split(',') {
                match b.split_once('x') {
                    Some((v, k)) => {
                        let (v, k) = (num(v)?, num(k)?);
                        chain.extend(std::iter::repeat_n(v, k as usize));
                    }
                    None => chain.push(num(b)?),
                }
            }
            return Ok(Self::Custom(CkksParametersLiteral {
                log_n: num(logn)?,
                coeff_mod_bit_sizes: chain,
                scale_bits: num(scale)?,
                allow_insecure,
                special_primes: 1,
                dnum: None,
            }));
        }
        Err(bad(format!(
            "unknown parameter set {s:?} (cnn1-x2, slaf, slaf-p, auto, auto-hybrid, custom:LOGN:BITS:SCALE)"
        )))
    }

    /// The same choice with custom parameters above the HE-standard bound
    /// accepted when `allow` (experiments only); other choices are unchanged.
    pub fn allowing_insecure(self, allow: bool) -> Self {
        match self {
            Self::Custom(lit) => Self::Custom(CkksParametersLiteral {
                allow_insecure: allow,
                ..lit
            }),
            other => other,
        }
    }

    /// The names `--params` lists: the presets, `auto` and `auto-hybrid`
    /// (and `custom:LOGN:BITS:SCALE`, which is open-ended).
    pub fn named() -> Vec<&'static str> {
        let mut v: Vec<&'static str> = Preset::ALL.iter().map(|p| p.name()).collect();
        v.extend(["auto", "auto-hybrid"]);
        v
    }

    /// The name shown in reports.
    pub fn name(&self) -> String {
        match self {
            Self::Preset(p) => p.name().into(),
            Self::Auto => "auto".into(),
            Self::AutoHybrid => "auto-hybrid".into(),
            Self::Custom(_) => "custom".into(),
        }
    }

    /// The preset matching a model (SPEC §5): `slaf-p` for SLAF-P, `cnn1-x2`
    /// for CNN1 with x², `slaf` for the other papers' networks; [`Self::Auto`]
    /// for any other spec.
    pub fn default_for(w: &WeightsFile) -> Self {
        use slaf_nn::{Arch, Variant};
        let preset = Arch::parse(&w.model.name)
            .ok()
            .filter(|a| a.spec() == w.model);
        if preset.is_none() {
            return Self::Auto;
        }
        Self::Preset(match (preset, w.variant) {
            (_, Variant::SlafP) => Preset::SlafP,
            (Some(Arch::Cnn1), Variant::X2) => Preset::Cnn1X2,
            _ => Preset::Slaf,
        })
    }

    /// Resolve to validated parameters that fit `plan` (else
    /// [`HeNnError::ChainTooShort`]). `scale_bits` is the scale `auto` uses
    /// (25 for SLAF-P, 26 otherwise, as the presets).
    pub fn resolve(
        &self,
        plan: &CircuitPlan,
        scale_bits: u32,
    ) -> Result<CkksParameters, HeNnError> {
        let params = match self {
            Self::Preset(p) => p.params(),
            Self::Custom(lit) => CkksParameters::new(lit.clone())?,
            Self::Auto => auto_params(plan, scale_bits)?,
            Self::AutoHybrid => slaf_ckks::hybrid_key_switching(&auto_params(plan, scale_bits)?)?,
        };
        plan.check(&params)?;
        Ok(params)
    }
}

/// Smallest scale (bits) `auto` plans for the decrypted logits.
pub const MIN_OUTPUT_SCALE_BITS: u32 = 20;

/// The smallest secure parameters for `plan`: N from 2^13 (or the smallest
/// ring with `plan.min_slots` slots) to 2^16, middle
/// primes of `scale_bits` bits (one per level of depth; raised to
/// [`CircuitPlan::min_scale_bits`] when the activations' slopes need more
/// precision), first and special primes large enough for the logits at
/// scale 2^20 (and at least `scale_bits + 5`); logits that need more than
/// a 60-bit first prime get extra levels below the circuit's.
pub fn auto_params(plan: &CircuitPlan, scale_bits: u32) -> Result<CkksParameters, HeNnError> {
    auto_params_at(plan, scale_bits, MIN_OUTPUT_SCALE_BITS.min(scale_bits))
}

/// [`auto_params`] with a first prime that holds the logits at scale
/// 2^`out_scale_bits` (noise flooding keeps the full scale to the end).
pub fn auto_params_at(
    plan: &CircuitPlan,
    scale_bits: u32,
    out_scale_bits: u32,
) -> Result<CkksParameters, HeNnError> {
    let scale_bits = scale_bits.max(plan.min_scale_bits());
    if scale_bits > 55 {
        return Err(HeNnError::InvalidRequest {
            detail: format!(
                "the activations amplify input errors by up to {:.3e} (|act'| over the recorded ranges): \
                 a {scale_bits}-bit scale would be needed, above the 55 bits at which the first and special primes (at most 60 bits) still exceed it by 5",
                plan.max_slope.unwrap_or(0.0)
            ),
        });
    }
    // The logits may be decrypted at a scale below the default one (the
    // engine lowers the output scale to what the last level holds), down to
    // 2^MIN_OUTPUT_SCALE_BITS: the first prime only needs room for that.
    let out_scale = 2f64.powi(out_scale_bits.min(scale_bits) as i32);
    let req = ChainRequest {
        depth: plan.depth,
        scale_bits,
        output_bits: plan.logit_bits(out_scale).ceil() as u32,
        min_slots: plan.min_slots,
    };
    slaf_ckks::auto(&req).map_err(|e| match e {
        e @ slaf_ckks::CkksError::NoSecureRing { .. } => HeNnError::ChainTooShort {
            needed: plan.depth,
            available: 0,
            detail: format!("{}; {e}", plan.breakdown()),
        },
        e => e.into(),
    })
}

/// The circuit plan of a model for the engine `mode` and the CKKS
/// parameters it runs on: `choice`, or the SPEC preset matching the model
/// ([`ParamsChoice::default_for`]), at the variant's scale (2^25 for
/// SLAF-P, 2^26 otherwise). The one rule `infer` and `serve` share.
pub fn resolve_params(
    weights: &WeightsFile,
    choice: Option<ParamsChoice>,
    mode: Mode,
) -> Result<(CircuitPlan, CkksParameters, ParamsChoice), HeNnError> {
    let plan = CircuitPlan::from_weights(weights)?.for_mode(mode);
    let choice = choice.unwrap_or_else(|| ParamsChoice::default_for(weights));
    let params = choice.resolve(&plan, default_scale_bits(weights))?;
    Ok((plan, params, choice))
}

/// The scale a model's circuit runs at by default (bits): 25 for SLAF-P,
/// 26 otherwise.
pub fn default_scale_bits(weights: &WeightsFile) -> u32 {
    if weights.variant == Variant::SlafP {
        25
    } else {
        26
    }
}

/// `auto` parameters at `scale_bits` whose outputs keep that scale to the
/// end (the planner's room for noise flooding); the circuit plan too.
pub fn resolve_params_for_output_scale(
    weights: &WeightsFile,
    mode: Mode,
    scale_bits: u32,
) -> Result<(CircuitPlan, CkksParameters), HeNnError> {
    let plan = CircuitPlan::from_weights(weights)?.for_mode(mode);
    let params = auto_params_at(&plan, scale_bits, scale_bits)?;
    plan.check(&params)?;
    Ok((plan, params))
}
