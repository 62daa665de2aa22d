//! Real CKKS on the headline models' committed 30-epoch weights, CNN2-SLAF
//! and CryptoNets-X2 (CNN1 has its own tests in `he_nn_per_image.rs` and
//! `he_nn_batched.rs`), and on the deeper spec `models/cnn3.toml`
//! (`results/cnn3/`, three activations): a few test images in both engines,
//! same argmax as the plaintext inference form, and logits within a bound
//! derived from the scale.
//!
//! The bound: at scale Δ = 2^26 a fresh encryption and one key switch leave
//! an error of about 2^-14 per slot (the floor of these parameters, see
//! `he_nn_per_image.rs`); each polynomial activation multiplies the error
//! of its input by its slope, and the dense layers sum errors over their
//! inputs. We allow [`AMPLIFICATION`] = 2^11 on top of the floor, i.e.
//! logits within 2^(11 - 26 + 12) = 2^-3 ≈ 0.125 per image. The 100-image
//! runs committed in `results/inference/` measured 3.7e-2 (CNN2-SLAF) and
//! 2.5e-2 (CryptoNets-X2) per image, 4.1e-3 and 3.7e-3 batched.
//!
//! Per-image runs use the SPEC §5 preset (N = 16384, [40, 26x11, 40]).
//! Batched runs use the same chain on N = 4096 (insecure, 4x faster: the
//! batch's cost is per ciphertext, whatever the image count), which keeps
//! the levels, primes' sizes and scale of the preset.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_ckks::{CkksParameters, CkksParametersLiteral, KeySeed, presets};
use slaf_he_nn::batched::{BatchedEngine, BatchedOptions};
use slaf_he_nn::per_image::PerImageEngine;
use slaf_he_nn::plan::CircuitPlan;
use slaf_nn::WeightsFile;

/// Bits of error growth allowed above the 2^-14 floor of scale 2^26.
const AMPLIFICATION: i32 = 11;

fn logit_bound(scale_bits: i32) -> f64 {
    // floor 2^(12 - scale_bits) = 2^-14 at 2^26, times the amplification.
    2f64.powi(12 - scale_bits + AMPLIFICATION)
}

/// `results/training/<name>.json.gz`, or `results/<name>.json.gz` for a
/// name with a folder (`cnn3/mnist-cnn3-slaf`).
fn weights(name: &str) -> WeightsFile {
    let rel = if name.contains('/') {
        format!("results/{name}.json.gz")
    } else {
        format!("results/training/{name}.json.gz")
    };
    let p = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(rel);
    WeightsFile::load(&p).expect("committed weights")
}

fn images(n: usize) -> Vec<Vec<f32>> {
    let data = slaf_nn::data::Mnist::load_default().expect("MNIST");
    (0..n)
        .map(|i| data.test.image(i).expect("image").to_vec())
        .collect()
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

/// Max logit error over the images; panics on an argmax disagreement.
fn check(name: &str, w: &WeightsFile, imgs: &[Vec<f32>], he: &[Vec<f64>]) -> f64 {
    let mut worst = 0.0f64;
    for (k, (im, got)) in imgs.iter().zip(he).enumerate() {
        let x: Vec<f64> = im.iter().map(|&v| f64::from(v)).collect();
        let want = w.inference.forward(&x).expect("plaintext forward");
        let e = want
            .iter()
            .zip(got)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        eprintln!("{name}: image {k}: max logit error {e:.2e}");
        assert_eq!(argmax(&want), argmax(got), "{name}: image {k} disagrees");
        worst = worst.max(e);
    }
    worst
}

fn per_image(name: &str) {
    let w = weights(name);
    let engine = PerImageEngine::new(
        &w.inference.chain_form().unwrap(),
        presets::slaf(),
        Some(KeySeed::for_tests(11)),
    )
    .expect("engine");
    eprintln!("{}", engine.describe());
    let imgs = images(2);
    let he: Vec<Vec<f64>> = imgs
        .iter()
        .map(|im| engine.infer(im).expect("infer").0)
        .collect();
    let e = check(name, &w, &imgs, &he);
    let bound = logit_bound(26);
    assert!(e < bound, "{name}: max logit error {e} above {bound}");
}

fn batched(name: &str) {
    let w = weights(name);
    let plan = CircuitPlan::from_weights(&w).expect("plan");
    let mut bits = vec![40];
    bits.extend([26u32; 11]);
    bits.push(40);
    let params = CkksParameters::new(CkksParametersLiteral {
        log_n: 12,
        coeff_mod_bit_sizes: bits,
        scale_bits: 26,
        allow_insecure: true,
        special_primes: 1,
        dnum: None,
    })
    .expect("params");
    let engine = BatchedEngine::new(
        &w.inference.chain_form().unwrap(),
        plan,
        params,
        BatchedOptions {
            seed: Some(KeySeed::for_tests(12)),
            ..BatchedOptions::default()
        },
    )
    .expect("engine");
    let imgs = images(16);
    let refs: Vec<&[f32]> = imgs.iter().map(|v| v.as_slice()).collect();
    let out = engine.infer_batch(&refs, None).expect("batch");
    let e = check(name, &w, &imgs, &out.logits);
    let bound = logit_bound(26);
    assert!(e < bound, "{name}: max logit error {e} above {bound}");
}

#[test]
fn cnn2_slaf_per_image_on_the_preset_agrees() {
    per_image("cnn2-slaf");
}

#[test]
fn cryptonets_x2_per_image_on_the_preset_agrees() {
    per_image("cryptonets-x2");
}

#[test]
fn cnn2_slaf_batched_agrees() {
    batched("cnn2-slaf");
}

#[test]
fn cryptonets_x2_batched_agrees() {
    batched("cryptonets-x2");
}

#[test]
fn cnn3_slaf_per_image_on_the_preset_chain_agrees() {
    per_image("cnn3/mnist-cnn3-slaf");
}

#[test]
fn cnn3_slaf_batched_agrees() {
    batched("cnn3/mnist-cnn3-slaf");
}

/// Both engines behind the one [`Engine`] trait on `cnn3` (three
/// activations, seven chain-form stages): the precision option reports
/// every stage by name in both layouts, every stage is timed, and the
/// logits agree with the plaintext form.
#[test]
fn cnn3_through_the_engine_trait_reports_every_stage() {
    use slaf_he_nn::{Engine, Mode, StageTimes};
    let w = weights("cnn3/mnist-cnn3-x2");
    let chain = w.inference.chain_form().unwrap();
    let plan = CircuitPlan::from_weights(&w).expect("plan");
    let stages = 1 + 2 * chain.pairs.len();
    assert_eq!(stages, 7, "cnn3 has three activations");
    let params = CkksParameters::new(CkksParametersLiteral {
        log_n: 12,
        coeff_mod_bit_sizes: presets::slaf().literal().coeff_mod_bit_sizes.clone(),
        scale_bits: 26,
        allow_insecure: true,
        special_primes: 1,
        dnum: None,
    })
    .expect("params");
    let engines: Vec<Box<dyn Engine>> = vec![
        Box::new(
            PerImageEngine::new(&chain, presets::slaf(), Some(KeySeed::for_tests(21)))
                .expect("per-image"),
        ),
        Box::new(
            BatchedEngine::new(
                &chain,
                plan,
                params,
                BatchedOptions {
                    seed: Some(KeySeed::for_tests(22)),
                    ..BatchedOptions::default()
                },
            )
            .expect("batched"),
        ),
    ];
    let imgs = images(2);
    let refs: Vec<&[f32]> = imgs.iter().map(|v| v.as_slice()).collect();
    let names: Vec<String> = (0..stages).map(StageTimes::stage_name).collect();
    assert_eq!(names, ["conv", "act1", "fc1", "act2", "fc2", "act3", "fc3"]);
    for e in &engines {
        let mode = e.mode();
        assert_eq!(e.pixels(), 784);
        assert_eq!(
            e.progress_units(2),
            if mode == Mode::PerImage {
                2
            } else {
                e.progress_units(1)
            }
        );
        let out = e.infer_images(&refs, None, true).expect("infer");
        check(mode.name(), &w, &imgs, &out.logits);
        assert_eq!(out.times.stages.len(), stages, "{mode:?}");
        assert!(
            out.times.stages.iter().all(|&t| t > 0.0),
            "{mode:?}: every stage is timed: {:?}",
            out.times
        );
        let prec = out.precision.expect("precision asked for");
        let got: Vec<&str> = prec.iter().map(|p| p.layer.as_str()).collect();
        assert_eq!(got, names, "{mode:?}");
        for p in &prec {
            let bound = logit_bound(26) * (1.0 + p.max_abs_value);
            assert!(
                p.samples > 0 && p.max_abs_error < bound,
                "{mode:?} {}: error {:.3e} over {} values (bound {bound:.3e})",
                p.layer,
                p.max_abs_error,
                p.samples
            );
        }
    }
}

/// Stage times keep the JSON of the papers' five-stage form, read a
/// longer chain back exactly, and refuse an unknown stage name.
#[test]
fn stage_times_json_is_a_map_in_pipeline_order() {
    use slaf_he_nn::StageTimes;
    let old =
        r#"{"encrypt":1.0,"conv":2.0,"act1":3.0,"fc1":4.0,"act2":5.0,"fc2":6.0,"decrypt":7.0}"#;
    let t: StageTimes = serde_json::from_str(old).expect("old summaries still read");
    assert_eq!(t.stages, [2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(serde_json::to_string(&t).unwrap(), old);
    let mut long = StageTimes::zeros(7);
    long.stages[6] = 9.5;
    let back: StageTimes = serde_json::from_str(&serde_json::to_string(&long).unwrap()).unwrap();
    assert_eq!(back, long);
    assert_eq!(back.get("fc3"), Some(9.5));
    assert_eq!(back.get("act4"), None);
    let err = serde_json::from_str::<StageTimes>(r#"{"pool":1.0}"#).unwrap_err();
    assert!(err.to_string().contains("pool"), "{err}");
}
