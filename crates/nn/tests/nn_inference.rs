//! The inference form: BatchNorm folding and the f64 collapse of the linear
//! block give the training model's evaluation logits; the weights file
//! round-trips and rejects malformed or mismatched content with a named error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slaf_nn::train::{Accuracy, TrainReport, eval_logits};
use slaf_nn::{
    ActSpec, Arch, InferenceModel, Layer, Model, NnError, SignInit, TrainConfig, Variant,
    WeightsFile,
};

/// A model with non-trivial BatchNorm statistics and activations.
fn model(arch: Arch, act: &ActSpec, seed: u64) -> Model {
    let mut m = Model::new(arch, act, seed, false);
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
    for (_, l) in &mut m.layers {
        if let Layer::BatchNorm(bn) = l {
            for c in 0..bn.channels {
                bn.weight.value[c] = 0.5 + rng.random::<f32>();
                bn.bias.value[c] = rng.random::<f32>() - 0.5;
                bn.running_mean[c] = rng.random::<f32>() - 0.5;
                bn.running_var[c] = 0.2 + rng.random::<f32>();
            }
        }
    }
    m
}

fn images(n: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((n, 784), || rng.random::<f32>())
}

fn assert_same_logits(m: &mut Model, what: &str) {
    let inf = InferenceModel::from_model(m).expect("inference form");
    inf.validate().expect("valid");
    let x = images(12, 5);
    let want = eval_logits(m, &x);
    let largest = want.iter().fold(0f32, |a, v| a.max(v.abs())) as f64;
    let mut worst = 0f64;
    for (i, row) in x.outer_iter().enumerate() {
        let img: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
        let got = inf.forward(&img).unwrap();
        for (g, w) in got.iter().zip(want.row(i)) {
            worst = worst.max((g - f64::from(*w)).abs());
        }
    }
    assert!(
        worst < 1e-4 * largest,
        "{what}: max |logit diff| {worst} vs largest |logit| {largest}"
    );
}

#[test]
fn collapsed_model_matches_training_form_for_every_arch_and_activation() {
    let acts = [
        ActSpec::Relu,
        ActSpec::Square,
        ActSpec::Slaf {
            degree: 3,
            init: Some(vec![0.1, 0.8, 0.3, 0.05]),
        },
        ActSpec::SlafP {
            r: 10.0,
            trainable: false,
            init: SignInit::LeastSquares,
        },
        ActSpec::SlafP {
            r: 10.0,
            trainable: false,
            init: SignInit::Newton,
        },
    ];
    for arch in [Arch::Cnn1, Arch::Cnn2, Arch::Cnn2Nopad, Arch::Cryptonets] {
        // Every activation on CNN1; the polynomial ones that stress the
        // collapse most (SLAF, SLAF-P) on the others.
        let acts = if arch == Arch::Cnn1 {
            &acts[..]
        } else {
            &acts[2..]
        };
        for act in acts {
            let mut m = model(arch, act, 11);
            assert_same_logits(&mut m, &format!("{} {act:?}", arch.name()));
        }
    }
}

#[test]
fn collapsed_shapes_are_the_he_shapes() {
    let cases = [
        (Arch::Cnn1, 256, 64),
        (Arch::Cnn2, 3380, 100),
        (Arch::Cnn2Nopad, 2880, 100),
        (Arch::Cryptonets, 3380, 100),
    ];
    for (arch, cols, rows) in cases {
        let inf = InferenceModel::from_model(&model(arch, &ActSpec::Square, 1))
            .unwrap()
            .paper_form()
            .unwrap();
        assert_eq!(
            (inf.dense1.rows, inf.dense1.cols),
            (rows, cols),
            "{}",
            arch.name()
        );
        assert_eq!((inf.fc2.rows, inf.fc2.cols), (10, rows));
    }
}

#[test]
fn slafp_expands_to_a_power_basis_polynomial() {
    let m = model(
        Arch::Cnn1,
        &ActSpec::SlafP {
            r: 30.0,
            trainable: false,
            init: SignInit::LeastSquares,
        },
        2,
    );
    let inf = InferenceModel::from_model(&m)
        .unwrap()
        .paper_form()
        .unwrap();
    let s = slaf_nn::sign_fit_ls(30.0, 0.01, 3);
    for x in [-20.0f64, -1.5, 0.0, 0.7, 25.0] {
        let sx = s.iter().rev().fold(0.0, |a, &c| a * x + c);
        let want = (x + x * sx) / 2.0;
        assert!((inf.act1.apply(x) - want).abs() < 1e-5 * (1.0 + want.abs()));
    }
}

fn weights_file() -> WeightsFile {
    let m = model(
        Arch::Cnn1,
        &ActSpec::Slaf {
            degree: 3,
            init: Some(vec![0.0, 1.0, 0.1, 0.0]),
        },
        3,
    );
    let cfg = TrainConfig::new(Arch::Cnn1, Variant::Slaf);
    let report = TrainReport {
        epochs: Vec::new(),
        test: Accuracy {
            overall: 0.5,
            per_class: vec![0.5; 10],
            correct: 5,
            total: 10,
        },
        train_accuracy: 0.5,
        train_seconds: 1.0,
        max_abs_input: m.max_abs_input(),
        optimizer: Some(cfg.optimizer()),
        schedule: Some(cfg.schedule(100)),
    };
    WeightsFile::new(&m, &cfg, &report).unwrap()
}

#[test]
fn weights_file_round_trip() {
    let w = weights_file();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.json");
    w.save(&path).unwrap();
    let back = WeightsFile::load(&path).unwrap();
    assert!(back == w, "weights file changed in the round trip");
    let gz = dir.path().join("w.json.gz");
    w.save(&gz).unwrap();
    assert!(std::fs::metadata(&gz).unwrap().len() < std::fs::metadata(&path).unwrap().len());
    assert!(WeightsFile::load(&gz).unwrap() == w, "gzip round trip");
    // The training-form state reloads to the same logits.
    let mut m = back.to_model().unwrap();
    let x = images(3, 9);
    let inf = &back.inference;
    let l = eval_logits(&mut m, &x);
    let img: Vec<f64> = x.row(0).iter().map(|&v| f64::from(v)).collect();
    let li = inf.forward(&img).unwrap();
    assert!((li[0] - f64::from(l[[0, 0]])).abs() < 1e-4);
}

fn err_of(text: &str) -> String {
    match WeightsFile::from_json(text) {
        Err(e @ NnError::InvalidWeights { .. }) => e.to_string(),
        other => panic!("expected InvalidWeights, got {other:?}"),
    }
}

#[test]
fn malformed_weights_files_are_named_errors() {
    let w = weights_file();
    let good = serde_json::to_value(&w).unwrap();
    assert!(err_of("{ not json").contains("malformed JSON"));

    let mut v = good.clone();
    v["format"] = "something-else".into();
    assert!(err_of(&v.to_string()).contains("format"));

    let mut v = good.clone();
    v["inference"]["stages"][2]["weight"]
        .as_array_mut()
        .unwrap()
        .pop();
    let e = err_of(&v.to_string());
    assert!(e.contains("stage 2 (dense) weight has"), "{e}");

    // A stored inference form that is not the trained state's.
    let mut v = good.clone();
    let w0 = v["inference"]["stages"][2]["weight"][0].as_f64().unwrap();
    v["inference"]["stages"][2]["weight"][0] = (w0 + 1e-3).into();
    let e = err_of(&v.to_string());
    assert!(e.contains("is not the one its trained state gives"), "{e}");

    // CNN1 tensors under a CNN2 header.
    let mut v = good.clone();
    v["arch"] = "cnn2".into();
    v["inference"]["name"] = "cnn2".into();
    v["config"]["arch"] = "cnn2".into();
    let e = err_of(&v.to_string());
    assert!(e.contains("the cnn2 model has"), "{e}");

    let mut v = good.clone();
    v["state"][0]["values"].as_array_mut().unwrap().truncate(3);
    assert!(err_of(&v.to_string()).contains("conv1.weight"));

    let mut v = good;
    v["inference"]["stages"][4]["bias"][0] = serde_json::Value::Null;
    assert!(err_of(&v.to_string()).contains("malformed JSON"));

    let missing = WeightsFile::load(std::path::Path::new("/nonexistent/w.json"));
    assert!(matches!(missing, Err(NnError::Io { .. })));
}

#[test]
fn inference_form_accuracy_equals_training_form_accuracy() {
    let data = slaf_nn::data::Mnist::load_default().unwrap();
    let test = data.test.head(300);
    let mut m = model(
        Arch::Cnn2,
        &ActSpec::Slaf {
            degree: 3,
            init: Some(vec![0.0, 1.0, 0.2, 0.0]),
        },
        4,
    );
    let inf = InferenceModel::from_model(&m).unwrap();
    let a = inf.evaluate(&test);
    let b = slaf_nn::evaluate(&mut m, &test);
    assert_eq!(a.total, 300);
    assert_eq!(a.correct, b.correct);
}

/// Every weights file committed under results/training/ loads, validates, and
/// its inference form reproduces the test accuracy recorded at training time.
#[test]
fn committed_weights_files_reproduce_their_accuracy() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("results/training");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} must hold the committed weights: {e}", dir.display()));
    let data = slaf_nn::data::Mnist::load_default().unwrap();
    let mut checked = 0;
    for e in entries.flatten() {
        let p = e.path();
        let name = p.to_string_lossy();
        if !(name.ends_with(".json") || name.ends_with(".json.gz")) {
            continue;
        }
        let w = WeightsFile::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let test = match w.config.limit_test {
            Some(n) => data.test.head(n),
            None => data.test.clone(),
        };
        let acc = w.inference.evaluate(&test);
        assert!(
            (acc.overall - w.report.test.overall).abs() <= 5e-4,
            "{}: inference form {} vs recorded {}",
            p.display(),
            acc.overall,
            w.report.test.overall
        );
        checked += 1;
    }
    // The README's tables rest on at least the 11 P1 variants.
    assert!(
        checked >= 11,
        "only {checked} weights files in {}",
        dir.display()
    );
}

#[test]
fn wrong_image_size_is_an_error_not_a_panic() {
    let inf = InferenceModel::from_model(&model(Arch::Cnn1, &ActSpec::Square, 1)).unwrap();
    assert!(matches!(
        inf.forward(&[0.0; 100]),
        Err(NnError::InvalidInput { .. })
    ));
    assert_eq!(inf.forward(&[0.0; 784]).unwrap().len(), 10);
}

/// The CNN2 notebook's former collapse check, on the committed 30-epoch
/// CNN2-SLAF and CryptoNets-X2: the training model in evaluation mode (f32,
/// layer by layer) against the inference form (f64, BatchNorm folded, the
/// pool → conv2 → pool → fc1 → BN1d block as one 3380 → 100 matrix) on the
/// first 64 MNIST test images.
#[test]
fn committed_cnn2_collapses_without_changing_the_logits() {
    let data = slaf_nn::data::Mnist::load_default().unwrap();
    let x = data.test.images.slice(ndarray::s![0..64, ..]).to_owned();
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("results/training");
    for (name, rows, cols) in [("cnn2-slaf", 100, 3380), ("cryptonets-x2", 100, 3380)] {
        let w =
            WeightsFile::load(&root.join(format!("{name}.json.gz"))).expect("committed weights");
        let mut model = w.to_model().expect("model");
        let form = InferenceModel::from_model(&model).expect("inference form");
        let dense1 = &form.paper_form().expect("paper form").dense1;
        assert_eq!(
            (dense1.rows, dense1.cols),
            (rows, cols),
            "{name}: collapsed dense1"
        );
        let reference = eval_logits(&mut model, &x);
        let (mut max_diff, mut max_logit) = (0.0f64, 0.0f64);
        for i in 0..64 {
            let img: Vec<f64> = x.row(i).iter().map(|&v| f64::from(v)).collect();
            let got = form.forward(&img).expect("forward");
            for (a, b) in got.iter().zip(reference.row(i).iter()) {
                max_diff = max_diff.max((a - f64::from(*b)).abs());
                max_logit = max_logit.max(f64::from(*b).abs());
            }
        }
        assert!(
            max_diff <= 1e-4 * max_logit.max(1.0),
            "{name}: max |logit difference| {max_diff:.2e} (largest logit {max_logit:.1})"
        );
    }
}
