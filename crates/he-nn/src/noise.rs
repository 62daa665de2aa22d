//! The noise a circuit leaves in its outputs, estimated the way OpenFHE's
//! noise-estimation mode estimates it: evaluate on random inputs under a
//! throwaway key and read the imaginary parts of the decrypted slots. The
//! circuits compute on real values only, so every imaginary part is noise.
//!
//! Invariants:
//! - the throwaway key comes from the OS CSPRNG and is dropped here; no
//!   client key is involved;
//! - the estimate is the coefficient-domain l2 norm of the output noise,
//!   `||e||_2 = Δ · sqrt(2 · mean(Im²))`. By Parseval for the canonical
//!   embedding, `||σ(e)||² = N ||e||²`, and the real and imaginary parts of
//!   the slot noise have equal variance;
//! - the estimate is the largest over every output ciphertext of every
//!   sample.

use crate::client::{ClientSide, Encryption, SeedLabels};
use crate::{Circuit, HeNnError, Hooks};
use rand::{Rng, SeedableRng};
use slaf_ckks::{EvaluationKeys, Evaluator};

/// The estimated output noise of a circuit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutputNoise {
    /// log2 of the largest coefficient-domain l2 norm of an output's noise.
    pub l2_bits: f64,
    /// log2 of the outputs' scale.
    pub scale_bits: f64,
    /// Output ciphertexts measured.
    pub outputs: usize,
}

const LABELS: SeedLabels = SeedLabels {
    keys: "noise estimate",
    encryption: None,
};

/// Estimate `circuit`'s output noise on `images` random images (pixels
/// uniform in [0, 1]; batched circuits take them in one call).
pub fn estimate_output_noise(
    circuit: &dyn Circuit,
    images: usize,
) -> Result<OutputNoise, HeNnError> {
    let ctx = circuit.context();
    let layout = circuit.layout().clone();
    let (side, keys) = ClientSide::generate(
        ctx,
        layout.clone(),
        &circuit.keys(),
        None,
        LABELS,
        Encryption::Symmetric,
    );
    let ev = Evaluator::with_keys(
        ctx,
        EvaluationKeys::new(Some(keys.relinearization), keys.galois),
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x6e6f697365);
    let per_call = layout.images_per_call().max(1);
    let images = images.max(1);
    let pixels: Vec<Vec<f32>> = (0..images)
        .map(|_| (0..layout.pixels()).map(|_| rng.random::<f32>()).collect())
        .collect();
    let (mut worst, mut scale, mut outputs) = (0f64, 1f64, 0usize);
    for call in pixels.chunks(per_call) {
        let refs: Vec<&[f32]> = call.iter().map(Vec::as_slice).collect();
        let inputs = side.encrypt(&refs)?;
        let (out, _) = circuit.evaluate(&ev, inputs, Hooks::default())?;
        for ct in &out {
            let rms = side.imaginary_rms(ct);
            worst = worst.max(ct.scale() * (2.0 * rms * rms).sqrt());
            scale = ct.scale();
            outputs += 1;
        }
        if per_call > 1 {
            break;
        }
    }
    Ok(OutputNoise {
        l2_bits: worst.max(1.0).log2(),
        scale_bits: scale.log2(),
        outputs,
    })
}
