//! Slot layouts: how images become the slot vectors of input ciphertexts
//! and how the output ciphertexts' slots become logits, with the level and
//! scales the inputs are encoded at. One rule per layout; the client
//! ([`crate::client::ClientSide`]), the in-process engines and the
//! service's client all encode and decode through it, and a server
//! publishes it (it is serialisable) so that a client in another process
//! does the same.
//!
//! - [`BatchedLayout`]: one image per slot (CryptoNets-style SIMD). A call
//!   holds up to N/2 images; input ciphertext `j` holds pixel `j` of every
//!   image (image `b` in slot `b`); output ciphertext `k` holds logit `k`.
//! - [`PerImageLayout`]: one image per ciphertext in the kernel-major
//!   im2col layout of the first convolution ([`im2col`]); the logits are
//!   the first slots of the output ciphertext.
//!
//! Invariants: the levels and scales come from the plan's rules
//! ([`CircuitPlan::batched_levels`], [`CircuitPlan::per_image_start_level`]);
//! [`Layout::encode`] refuses an image of the wrong size or with a
//! non-finite pixel, and a call of more images than the layout holds;
//! [`Layout::decode`] refuses a wrong number of output ciphertexts.

use crate::plan::{CircuitPlan, StartLevel};
use crate::{HeNnError, Mode};
use serde::{Deserialize, Serialize};
use slaf_ckks::CkksParameters;
use slaf_nn::{ChainForm, ConvGeom};

/// One image per slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchedLayout {
    /// Pixels per image (= input ciphertexts per call).
    pub pixels: usize,
    /// Logits per image (= output ciphertexts per call).
    pub outputs: usize,
    /// Images per call: the ring's N/2 slots.
    pub slots: usize,
    /// Level the inputs are encrypted at.
    pub start_level: usize,
    /// Exact scale the inputs are encoded at.
    pub input_scale: f64,
    /// Scale of the decrypted logits.
    pub output_scale: f64,
}

/// One image per ciphertext, in the first convolution's im2col layout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerImageLayout {
    /// The first convolution's geometry (the im2col layout of the input).
    pub geom: ConvGeom,
    /// Logits per image (the first slots of the output ciphertext).
    pub outputs: usize,
    /// Level the inputs are encrypted at.
    pub start_level: usize,
    /// Exact scale the inputs are encoded at, kept by every stage (the
    /// logits are decrypted at it too).
    pub scale: f64,
}

/// A slot layout of either engine: what a server publishes and a client
/// encodes with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Layout {
    /// One image per slot.
    Batched(BatchedLayout),
    /// One image per ciphertext.
    PerImage(PerImageLayout),
}

/// What a circuit shows a probe: an intermediate ciphertext of stage
/// `layer` and how to read it ([`Layout::probe_values`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Probe {
    /// Chain-form stage ([`crate::StageTimes::stage_name`]).
    pub layer: usize,
    /// Batched: the feature (neuron) index the ciphertext holds for every
    /// image. Per image: the image's index in the call.
    pub index: usize,
    /// True value = `fold · slot + offset` (an activation folded into the
    /// next layer leaves its slots scaled and shifted).
    pub fold: f64,
    /// See `fold`.
    pub offset: f64,
    /// Per image: the stage's values per image (its first slots). Batched: 1.
    pub len: usize,
}

/// Values of one image read by a probe: the image's index in the call,
/// the index of the first value in the stage's output, and the values.
pub type ProbeValues = (usize, usize, Vec<f64>);

impl BatchedLayout {
    /// The batched layout of `model` on `params` by the plan's rules.
    pub fn new(
        plan: &CircuitPlan,
        params: &CkksParameters,
        model: &ChainForm,
    ) -> Result<Self, HeNnError> {
        let levels = plan.batched_levels(params)?;
        Ok(Self {
            pixels: model.conv.geom.in_len(),
            outputs: model.pairs.last().map_or(0, |(_, d)| d.rows),
            slots: params.slots(),
            start_level: levels.start_level,
            input_scale: levels.input_scale,
            output_scale: levels.output_scale,
        })
    }
}

impl PerImageLayout {
    /// The per-image layout of `model` on `params`, input at `start`.
    pub fn new(
        plan: &CircuitPlan,
        params: &CkksParameters,
        model: &ChainForm,
        start: StartLevel,
    ) -> Result<Self, HeNnError> {
        Ok(Self {
            geom: model.conv.geom,
            outputs: model.pairs.last().map_or(0, |(_, d)| d.rows),
            start_level: plan.per_image_start_level(params, start)?,
            scale: params.default_scale(),
        })
    }
}

impl Layout {
    /// The engine this layout belongs to.
    pub fn mode(&self) -> Mode {
        match self {
            Self::Batched(_) => Mode::Batched,
            Self::PerImage(_) => Mode::PerImage,
        }
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        match self {
            Self::Batched(b) => b.pixels,
            Self::PerImage(p) => p.geom.in_len(),
        }
    }

    /// Logits per image.
    pub fn outputs(&self) -> usize {
        match self {
            Self::Batched(b) => b.outputs,
            Self::PerImage(p) => p.outputs,
        }
    }

    /// Most images one evaluation takes (batched: the slots; per image: 1).
    pub fn images_per_call(&self) -> usize {
        match self {
            Self::Batched(b) => b.slots,
            Self::PerImage(_) => 1,
        }
    }

    /// Level the inputs are encrypted at.
    pub fn start_level(&self) -> usize {
        match self {
            Self::Batched(b) => b.start_level,
            Self::PerImage(p) => p.start_level,
        }
    }

    /// Scale the inputs are encoded at.
    pub fn input_scale(&self) -> f64 {
        match self {
            Self::Batched(b) => b.input_scale,
            Self::PerImage(p) => p.scale,
        }
    }

    /// Scale of the decrypted logits.
    pub fn output_scale(&self) -> f64 {
        match self {
            Self::Batched(b) => b.output_scale,
            Self::PerImage(p) => p.scale,
        }
    }

    /// Input ciphertexts for `images` images (batched: one per pixel,
    /// whatever the count; per image: one per image).
    pub fn inputs_for(&self, images: usize) -> usize {
        match self {
            Self::Batched(b) => b.pixels,
            Self::PerImage(_) => images,
        }
    }

    /// Output ciphertexts for `images` images (batched: one per logit;
    /// per image: one per image).
    pub fn outputs_for(&self, images: usize) -> usize {
        match self {
            Self::Batched(b) => b.outputs,
            Self::PerImage(_) => images,
        }
    }

    /// Bytes in memory of one input ciphertext (2 polynomials at the start level).
    pub fn ciphertext_bytes(&self, params: &CkksParameters) -> usize {
        2 * params.poly_bytes(self.start_level())
    }

    /// The slot vectors of the input ciphertexts of `images` (pixels in
    /// [0, 1]), in ciphertext order. Refuses 0 images, more than a call
    /// holds (batched), an image of the wrong size or a non-finite pixel.
    pub fn encode(&self, images: &[&[f32]]) -> Result<Vec<Vec<f64>>, HeNnError> {
        let bad = |detail: String| HeNnError::InvalidRequest { detail };
        let count = images.len();
        if count == 0 {
            return Err(bad("no image to encode".into()));
        }
        if let Self::Batched(b) = self
            && count > b.slots
        {
            return Err(bad(format!(
                "a batch holds 1..={} images, got {count}",
                b.slots
            )));
        }
        let pixels = self.pixels();
        if let Some(i) = images.iter().position(|im| im.len() != pixels) {
            return Err(bad(format!(
                "image {i} has {} pixels, expected {pixels}",
                images[i].len()
            )));
        }
        for (i, im) in images.iter().enumerate() {
            if let Some(j) = im.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!("image {i}: pixel {j} is not finite")));
            }
        }
        Ok(match self {
            Self::Batched(b) => (0..b.pixels)
                .map(|j| images.iter().map(|im| f64::from(im[j])).collect())
                .collect(),
            Self::PerImage(p) => images
                .iter()
                .map(|im| {
                    let x: Vec<f64> = im.iter().map(|&v| f64::from(v)).collect();
                    im2col(&p.geom, &x)
                })
                .collect(),
        })
    }

    /// The logits of `images` images from the decoded slots of the output
    /// ciphertexts (batched: one per logit, image `b` in slot `b`; per
    /// image: one per image, the logits in its first slots).
    pub fn decode(&self, slots: Vec<Vec<f64>>, images: usize) -> Result<Vec<Vec<f64>>, HeNnError> {
        let expected = self.outputs_for(images);
        if slots.len() != expected {
            return Err(HeNnError::InvalidRequest {
                detail: format!(
                    "{} output ciphertexts for {images} images, expected {expected}",
                    slots.len()
                ),
            });
        }
        if let Some(short) = slots
            .iter()
            .position(|s| s.len() < self.decoded_len(images))
        {
            return Err(HeNnError::InvalidRequest {
                detail: format!(
                    "output ciphertext {short} decodes to {} slots, fewer than {}",
                    slots[short].len(),
                    self.decoded_len(images)
                ),
            });
        }
        Ok(match self {
            Self::Batched(_) => (0..images)
                .map(|i| slots.iter().map(|s| s[i]).collect())
                .collect(),
            Self::PerImage(p) => slots
                .into_iter()
                .map(|mut s| {
                    s.truncate(p.outputs);
                    s
                })
                .collect(),
        })
    }

    /// Slots each output ciphertext must decode to for `images` images.
    fn decoded_len(&self, images: usize) -> usize {
        match self {
            Self::Batched(_) => images,
            Self::PerImage(p) => p.outputs,
        }
    }

    /// The true values a probe's ciphertext holds, from its decoded slots,
    /// per image of a call of `images` images.
    pub fn probe_values(&self, p: &Probe, slots: &[f64], images: usize) -> Vec<ProbeValues> {
        match self {
            Self::Batched(_) => slots
                .iter()
                .take(images)
                .enumerate()
                .map(|(b, &v)| (b, p.index, vec![v * p.fold + p.offset]))
                .collect(),
            Self::PerImage(_) => vec![(
                p.index,
                0,
                slots
                    .iter()
                    .take(p.len)
                    .map(|&s| p.fold * s + p.offset)
                    .collect(),
            )],
        }
    }
}

/// The kernel-major im2col slot vector of an image: slot `e·W + w` holds
/// the pixel that kernel entry `e = ky·k + kx` sees in output window
/// `w = oy·ow + ox`, zero where the window covers padding (`K·W` slots).
pub fn im2col(g: &ConvGeom, image: &[f64]) -> Vec<f64> {
    let ow = g.out_w();
    let w_count = g.out_h() * ow;
    let mut v = vec![0.0; g.patch() * w_count];
    for oy in 0..g.out_h() {
        for ox in 0..ow {
            for t in g.window(oy, ox) {
                for j in 0..t.len {
                    v[(t.w + j) * w_count + oy * ow + ox] = image[t.x + j];
                }
            }
        }
    }
    v
}
