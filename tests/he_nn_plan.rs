//! The circuit planner on the committed models: depth per layer, preset
//! choice, `auto` parameters, and typed refusals (short chain, ReLU); the
//! `infer` CLI's JSON line and error paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use std::path::PathBuf;
use std::process::Command;

use slaf_he::ckks::CkksParametersLiteral;
use slaf_he::he_nn::HeNnError;
use slaf_he::he_nn::plan::{CircuitPlan, ParamsChoice};
use slaf_he::nn::WeightsFile;

fn weights_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("results/training")
        .join(format!("{name}.json.gz"))
}

fn weights(name: &str) -> WeightsFile {
    WeightsFile::load(&weights_path(name)).unwrap()
}

fn depths(p: &CircuitPlan) -> Vec<usize> {
    p.layers.iter().map(|l| l.depth).collect()
}

/// `auto` takes N = 8192 whenever the chain fits 218 bits and the engine's
/// layout fits the slots: CryptoNets-X2 batched (depth 5) does, but one
/// CryptoNets image needs 25 × 169 = 4225 im2col slots, more than N = 8192
/// holds, so per image it takes N = 16384 (it used to fail with a layout
/// error). CNN1-SLAF (depth 7) needs more than 218 bits at scale 2^26.
#[test]
fn auto_takes_the_smallest_ring_that_holds_the_engine_layout() {
    use slaf_he::he_nn::Mode;
    use slaf_he::he_nn::plan::resolve_params;
    let w = weights("cryptonets-x2");
    let (plan, b, _) = resolve_params(&w, Some(ParamsChoice::Auto), Mode::Batched).unwrap();
    assert_eq!((b.n(), plan.min_slots), (8192, 1));
    assert_eq!(plan.per_image_slots, 25 * 169);
    let (plan, p, _) = resolve_params(&w, Some(ParamsChoice::Auto), Mode::PerImage).unwrap();
    assert_eq!((p.n(), plan.min_slots), (16384, 4225));
    assert!(!p.is_insecure());
    let (plan, p, _) = resolve_params(
        &weights("cnn1-x2"),
        Some(ParamsChoice::Auto),
        Mode::PerImage,
    )
    .unwrap();
    assert_eq!(plan.per_image_slots, 49 * 64, "7×7 taps at 8×8 positions");
    assert_eq!(p.n(), 8192, "CNN1's 3136 im2col slots fit N = 8192");
    let (_, s, _) = resolve_params(
        &weights("cnn1-slaf"),
        Some(ParamsChoice::Auto),
        Mode::Batched,
    )
    .unwrap();
    assert_eq!(s.n(), 16384);
}

/// `auto` raises the scale when an activation is steep over its recorded
/// range: `ceil(log2(max |act'|)) + 10` bits, or refuses with the slope
/// when no prime could carry it. The committed models are gentle and keep
/// 2^26.
#[test]
fn auto_raises_the_scale_for_steep_activations() {
    use slaf_he::he_nn::plan::{PRECISION_MARGIN_BITS, auto_params};
    let mut plan = CircuitPlan::from_weights(&weights("cnn1-slaf")).unwrap();
    let slope = plan.max_slope.unwrap();
    // act2 of CNN1-SLAF is a degree-2 SLAF with a linear term: its slope
    // over the recorded range is that of the learned polynomial.
    let w = weights("cnn1-slaf");
    let ranges: Vec<f64> = w
        .activations
        .iter()
        .map(|a| f64::from(a.max_abs.overall()))
        .collect();
    let by_hand = plan
        .acts
        .iter()
        .zip(&ranges)
        .map(|(a, &r)| {
            let d = a.polynomial().derivative();
            (0..=200)
                .map(|i| d.eval(-r + 2.0 * r * f64::from(i) / 200.0).abs())
                .fold(0.0, f64::max)
        })
        .fold(0.0, f64::max);
    assert!(
        (slope - by_hand).abs() <= 1e-9 * by_hand,
        "{slope} vs {by_hand}"
    );
    assert!(plan.min_scale_bits() <= 26, "slope {slope}");
    assert_eq!(
        auto_params(&plan, 26).unwrap().default_scale(),
        2f64.powi(26)
    );
    plan.max_slope = Some(1.5 * 2f64.powi(26));
    assert_eq!(plan.min_scale_bits(), 27 + PRECISION_MARGIN_BITS);
    let p = auto_params(&plan, 26).unwrap();
    assert_eq!(p.default_scale(), 2f64.powi(37));
    assert!(
        p.q()[1..=plan.depth]
            .iter()
            .all(|&q| (q as f64).log2().round() == 37.0)
    );
    assert!(!p.is_insecure());
    // Logits too large for a 60-bit first prime at scale 2^20: extra
    // levels below the circuit's hold them, so the output keeps 2^20.
    let mut big = plan.clone();
    big.logit_bound = 2f64.powi(50);
    let p = auto_params(&big, 26).unwrap();
    let need = big.logit_bits(2f64.powi(20));
    assert!(p.max_level() > big.depth, "{p:?}");
    let start = big.start_level(&p).unwrap();
    let last: f64 = p.q()[..=start - big.depth]
        .iter()
        .map(|&q| (q as f64).log2())
        .sum();
    assert!(last >= need, "last level {last} bits < {need}");
    plan.max_slope = Some(2f64.powi(50));
    let e = auto_params(&plan, 26).unwrap_err().to_string();
    assert!(e.contains("1.126e15") && e.contains("55 bits"), "{e}");
}

#[test]
fn depths_and_presets_of_the_committed_models() {
    // (model, per-layer depths, default preset)
    let cases = [
        ("cnn1-x2", vec![1, 1, 1, 1, 1], "cnn1-x2"),
        ("cnn1-slaf", vec![1, 2, 1, 2, 1], "slaf"),
        ("cnn2-slaf", vec![1, 2, 1, 2, 1], "slaf"),
        ("cryptonets-x2", vec![1, 1, 1, 1, 1], "slaf"),
        ("cnn1-slaf-p", vec![1, 3, 1, 3, 1], "slaf-p"),
    ];
    for (name, want, preset) in cases {
        let w = weights(name);
        let plan = CircuitPlan::from_weights(&w).unwrap();
        assert_eq!(depths(&plan), want, "{name}");
        assert_eq!(plan.depth, want.iter().sum::<usize>(), "{name}");
        let choice = ParamsChoice::default_for(&w);
        let preset = slaf_he::ckks::Preset::from_name(preset).unwrap();
        assert_eq!(choice, ParamsChoice::Preset(preset), "{name}");
        let params = choice.resolve(&plan, 26).unwrap();
        let start = plan.start_level(&params).unwrap();
        assert!(start >= plan.depth && start <= params.max_level(), "{name}");
        assert!(plan.logit_bound.is_finite() && plan.logit_bound >= 1.0);
        // auto: the smallest secure set; CNN1-X2 fits N = 8192.
        let auto = ParamsChoice::Auto.resolve(&plan, 26).unwrap();
        assert!(!auto.is_insecure(), "{name}");
        assert_eq!(auto.max_level(), plan.depth, "{name}");
        if name == "cnn1-x2" {
            assert_eq!(auto.n(), 8192);
        }
    }
    assert_eq!(
        CircuitPlan::from_weights(&weights("cnn2-slaf"))
            .unwrap()
            .breakdown(),
        "conv 1 + act1 2 + fc1 1 + act2 2 + fc2 1"
    );
}

#[test]
fn short_chain_and_relu_are_refused_with_typed_errors() {
    let w = weights("cnn1-slaf");
    let plan = CircuitPlan::from_weights(&w).unwrap();
    // Depth 7 does not fit the 6 levels of the CNN1-X2 preset.
    match ParamsChoice::Preset(slaf_he::ckks::Preset::Cnn1X2).resolve(&plan, 26) {
        Err(HeNnError::ChainTooShort {
            needed,
            available,
            detail,
        }) => {
            assert_eq!((needed, available), (7, 6));
            assert!(detail.contains("act1 2"), "{detail}");
        }
        other => panic!("expected ChainTooShort, got {other:?}"),
    }
    let msg = ParamsChoice::Preset(slaf_he::ckks::Preset::Cnn1X2)
        .resolve(&plan, 26)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("needs depth 7"), "{msg}");
    // A custom literal: parsed, validated, insecure only when allowed.
    let c = ParamsChoice::parse("custom:12:36,26x6,36:26", true).unwrap();
    assert_eq!(
        c,
        ParamsChoice::Custom(CkksParametersLiteral {
            log_n: 12,
            coeff_mod_bit_sizes: vec![36, 26, 26, 26, 26, 26, 26, 36],
            scale_bits: 26,
            allow_insecure: true,
            special_primes: 1,
            dnum: None,
        })
    );
    assert!(
        ParamsChoice::parse("custom:12:36,26x6,36:26", false)
            .unwrap()
            .resolve(&plan, 26)
            .is_err()
    );
    assert!(ParamsChoice::parse("bogus", false).is_err());
    // ReLU.
    let relu = weights("cnn1-relu");
    match CircuitPlan::from_weights(&relu) {
        Err(HeNnError::NonPolynomialActivation { layer }) => assert_eq!(layer, "act1"),
        other => panic!("expected NonPolynomialActivation, got {other:?}"),
    }
}

fn slaf_he() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slaf-he"))
}

#[test]
fn infer_json_last_line_has_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = slaf_he()
        .args(["infer", "--weights"])
        .arg(weights_path("cnn1-x2"))
        .args([
            "--images",
            "8",
            "--offset",
            "9990",
            "--params",
            "custom:11:36,26x5,36:26",
            "--insecure-params",
            "--threads",
            "2",
            "--seed",
            "5",
            "--json",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.trim().lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    for k in [
        "model",
        "act",
        "mode",
        "images",
        "plain_accuracy",
        "he_accuracy",
        "agreement",
        "max_logit_error",
        "seconds_per_image",
        "stages_ms",
        "params",
    ] {
        assert!(v.get(k).is_some(), "missing {k} in {last}");
    }
    assert_eq!(v["images"], 8);
    assert_eq!(v["mode"], "batched");
    assert_eq!(v["agreement"], 1.0);
    assert_eq!(v["params"]["n"], 2048);
    assert!(v["stages_ms"]["conv"].as_f64().unwrap() > 0.0);
    for f in ["images.csv", "summary.md", "summary.json"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
}

fn assert_one_line_error(args: &[&str], weights: &PathBuf, needle: &str) {
    let out = slaf_he()
        .args(["infer", "--weights"])
        .arg(weights)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn infer_errors_are_one_clear_line() {
    assert_one_line_error(&[], &weights_path("cnn1-relu"), "ReLU");
    assert_one_line_error(
        &["--params", "cnn1-x2"],
        &weights_path("cnn1-slaf"),
        "needs depth 7",
    );
    assert_one_line_error(
        &["--images", "20", "--offset", "9990"],
        &weights_path("cnn1-x2"),
        "do not fit the 10000 test images",
    );
    assert_one_line_error(
        &[],
        &PathBuf::from("/nonexistent/w.json.gz"),
        "does not exist",
    );
}

#[test]
fn infer_per_image_json_line() {
    let out = slaf_he()
        .args(["infer", "--weights"])
        .arg(weights_path("cnn1-x2"))
        .args([
            "--mode",
            "per-image",
            "--images",
            "2",
            "--seed",
            "5",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.trim().lines().last().expect("json line");
    let v: serde_json::Value = serde_json::from_str(last).expect("json");
    assert_eq!(v["mode"], "per-image");
    assert_eq!(v["images"], 2);
    assert_eq!(v["agreement"], 1.0);
    assert!(v["stages_ms"]["conv"].as_f64().unwrap() > 0.0);
}

/// `auto-hybrid` keeps `auto`'s ring, ciphertext primes and scale and
/// swaps the one special prime for 31-bit ones with fewer digits, every
/// digit under P and log2(QP) within the 128-bit bound; where the bound
/// leaves no room (CNN1-X2 at N = 8192: 206 of 218 bits) it is `auto`.
#[test]
fn auto_hybrid_keeps_the_ciphertext_chain_and_cuts_the_digits() {
    use slaf_he::ckks::params::HE_STANDARD_128;
    use slaf_he::ckks::select::{HYBRID_SPECIAL_BITS, hybrid_key_switching};
    use slaf_he::he_nn::Mode;
    use slaf_he::he_nn::plan::resolve_params;
    for name in ["cnn1-slaf", "cnn2-slaf", "cnn1-slaf-p", "cryptonets-x2"] {
        for mode in [Mode::Batched, Mode::PerImage] {
            let w = weights(name);
            let (_, a, _) = resolve_params(&w, Some(ParamsChoice::Auto), mode).unwrap();
            let (_, h, c) = resolve_params(&w, Some(ParamsChoice::AutoHybrid), mode).unwrap();
            assert_eq!(c.name(), "auto-hybrid");
            // Same ring and ciphertext prime sizes (the primes themselves may
            // differ by a pick: the special primes choose first).
            let chain = |p: &slaf_he::ckks::CkksParameters| {
                let b = &p.literal().coeff_mod_bit_sizes;
                b[..b.len() - p.special_primes().len()].to_vec()
            };
            assert_eq!((h.n(), chain(&h)), (a.n(), chain(&a)), "{name} {mode:?}");
            assert_eq!(h.max_level(), a.max_level());
            assert_eq!(h.default_scale(), a.default_scale());
            let bound = HE_STANDARD_128.iter().find(|(n, _)| *n == h.n()).unwrap().1;
            assert!(h.total_bits() <= bound && !h.is_insecure(), "{name}");
            if h.special_primes().len() == 1 {
                assert_eq!(&h, &a, "{name} {mode:?}: unchanged when nothing fits");
                continue;
            }
            assert!(h.dnum() < a.dnum(), "{name} {mode:?}: {}", h.describe());
            assert!(
                h.special_primes()
                    .iter()
                    .all(|&p| p < 1 << HYBRID_SPECIAL_BITS)
            );
            let log_p: f64 = h.special_primes().iter().map(|&p| (p as f64).log2()).sum();
            for d in h.digits(h.max_level()) {
                let log_d: f64 = h.q()[d].iter().map(|&q| (q as f64).log2()).sum();
                assert!(
                    log_d < log_p,
                    "{name}: digit {log_d:.1} bits over P {log_p:.1}"
                );
            }
            // Idempotent: the rule applied to its own output changes nothing.
            assert_eq!(hybrid_key_switching(&h).unwrap().describe(), h.describe());
        }
    }
    // CNN1-X2 per image: N = 8192, no room for two 31-bit special primes.
    let w = weights("cnn1-x2");
    let (_, a, _) = resolve_params(&w, Some(ParamsChoice::Auto), Mode::PerImage).unwrap();
    let (_, h, _) = resolve_params(&w, Some(ParamsChoice::AutoHybrid), Mode::PerImage).unwrap();
    assert_eq!((a.n(), &h), (8192, &a));
    // CNN1-SLAF batched at N = 16384: [41, 26x7] under 31-bit special primes, few digits.
    let (_, h, _) = resolve_params(
        &weights("cnn1-slaf"),
        Some(ParamsChoice::AutoHybrid),
        Mode::Batched,
    )
    .unwrap();
    assert!(
        h.dnum() <= 4 && h.special_primes().len() >= 3,
        "{}",
        h.describe()
    );
    assert_eq!(
        ParamsChoice::parse("auto-hybrid", false).unwrap(),
        ParamsChoice::AutoHybrid
    );
}

/// End to end with `auto-hybrid`: CNN1-SLAF per image (rotations and
/// relinearizations through the hybrid keys) agrees with the plaintext
/// forward pass, with logit errors as small as with `auto`.
#[test]
fn auto_hybrid_per_image_agrees_with_plaintext() {
    use slaf_he::experiments::harness::{InferenceRequest, ModelSource, run};
    use slaf_he::he_nn::Mode;
    let mut errs = Vec::new();
    for choice in [ParamsChoice::Auto, ParamsChoice::AutoHybrid] {
        let mut req = InferenceRequest::new(ModelSource::Path(weights_path("cnn1-slaf")));
        req.images = Some(3);
        req.offset = 7;
        req.mode = Mode::PerImage;
        req.params = Some(choice.clone());
        req.seed = Some(slaf_he::ckks::KeySeed::for_tests(5));
        req.threads = Some(2);
        req.quiet = true;
        let out = run(&req).unwrap();
        let s = &out.summary;
        assert_eq!(s.agreement, 1.0, "{choice:?}");
        assert!(s.max_logit_error < 0.2, "{choice:?}: {}", s.max_logit_error);
        errs.push(s.max_logit_error);
    }
    assert!(
        errs[1] < 4.0 * errs[0] + 1e-4,
        "hybrid {} against single {}",
        errs[1],
        errs[0]
    );
}
