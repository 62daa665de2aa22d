//! `slaf-he train` and `slaf-he lr-find` end to end on a small slice of MNIST.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_he::nn::WeightsFile;
use std::process::Command;

fn slaf_he() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slaf-he"))
}

#[test]
fn train_prints_json_last_and_writes_a_loadable_weights_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.json");
    let o = slaf_he()
        .args([
            "train",
            "--model",
            "cnn1",
            "--act",
            "x2",
            "--epochs",
            "1",
            "--limit-train",
            "2000",
            "--limit-test",
            "300",
            "--json",
            "-q",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("Test Accuracy of 9:"));
    let last = stdout.trim().lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["model"], "cnn1");
    assert_eq!(v["act"], "x2");
    assert_eq!(v["epochs"], 1);
    assert_eq!(v["per_class"].as_array().unwrap().len(), 10);
    assert_eq!(v["max_abs_input"].as_array().unwrap().len(), 2);
    let acc = v["test_accuracy"].as_f64().unwrap();
    // One epoch on 2000 images reaches 0.86 on these 300 test images
    // (measured); an untrained or broken model stays near 0.1.
    assert!(acc > 0.7, "accuracy {acc} after one epoch");
    let w = WeightsFile::load(&out).unwrap();
    assert_eq!(w.config.clip_grad, Some(1.0));
    assert!((w.report.test.overall - acc).abs() < 1e-4);
}

#[test]
fn lr_find_writes_csv() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lr.csv");
    let o = slaf_he()
        .args([
            "lr-find",
            "--model",
            "cnn1",
            "--act",
            "relu",
            "--limit-train",
            "1280",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(&out).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("lr,loss,raw_loss"));
    let lrs: Vec<f64> = lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(lrs.len() > 2);
    assert!((lrs[0] - 1e-6).abs() < 1e-12);
    assert!(lrs.windows(2).all(|w| w[1] > w[0]));
}

#[test]
fn unknown_model_is_one_clear_error() {
    let o = slaf_he()
        .args(["train", "--model", "resnet", "--act", "relu"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown model \"resnet\""), "{err}");
}

#[test]
fn unknown_slaf_r_batchnorm_mode_is_one_clear_error() {
    let o = slaf_he()
        .args([
            "train",
            "--model",
            "cnn2",
            "--act",
            "slaf-r",
            "--slaf-r-bn",
            "frozen",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    // clap names the flag and lists the values (a ValueEnum).
    assert!(
        err.contains("invalid value 'frozen' for '--slaf-r-bn")
            && err.contains("[possible values: batch, running]"),
        "{err}"
    );
}

/// Arguments that would silently produce a useless result are refused,
/// naming the flag: an untrained model, a constant activation, no threads.
#[test]
fn train_refuses_degenerate_arguments() {
    for (args, flag) in [
        (vec!["--epochs", "0"], "--epochs"),
        (vec!["--act", "slaf", "--degree", "0"], "--degree"),
        (vec!["--threads", "0"], "--threads"),
        (
            vec!["--act", "slaf-r", "--slaf-r-epochs", "0"],
            "--slaf-r-epochs",
        ),
    ] {
        let o = slaf_he()
            .args([
                "train",
                "--model",
                "cnn1",
                "--limit-train",
                "64",
                "--limit-test",
                "64",
                "-q",
            ])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} must fail");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}
