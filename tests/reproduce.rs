//! `slaf-he reproduce` orchestration on the test-only tiny profile: the
//! manifest, the CSV schema, valid SVG/PNG figures, REPORT.md, and the
//! model cache being reused on a second run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use std::process::Command;

#[test]
fn tiny_reproduce_writes_a_self_describing_results_tree() {
    let out = tempfile::tempdir().expect("tmp");
    let cache = tempfile::tempdir().expect("tmp");
    let run = |only: &str| {
        Command::new(env!("CARGO_BIN_EXE_slaf-he"))
            .args(["reproduce", "--profile", "tiny", "--only", only, "--out"])
            .arg(out.path())
            .arg("--cache")
            .arg(cache.path())
            .output()
            .expect("run")
    };
    let first = run("training,comparison,interval,inference");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(stdout.contains("trained in"), "{stdout}");

    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert_eq!(manifest["profile"], "tiny");
    assert_eq!(manifest["crate_version"], env!("CARGO_PKG_VERSION"));
    assert!(manifest["machine"]["cores"].as_u64().expect("cores") >= 1);
    let stages = manifest["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 4);
    for (st, name) in stages
        .iter()
        .zip(["training", "comparison", "interval", "inference"])
    {
        assert_eq!(st["name"], name);
        assert_eq!(st["status"], "ok", "{st}");
    }
    assert!(stages[0]["outputs"].as_array().expect("outputs").len() >= 4);

    let csv = std::fs::read_to_string(out.path().join("training/accuracy.csv")).expect("csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().expect("header"),
        "model,act,epochs,test_accuracy_pct,pytorch_reference_pct,clip_grad,train_seconds,max_abs_input_act1,max_abs_input_act2"
    );
    assert_eq!(lines.count(), 2, "two tiny runs");
    let svg =
        std::fs::read_to_string(out.path().join("training/learning_curves.svg")).expect("svg");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let png = std::fs::read(out.path().join("training/learning_curves.png")).expect("png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // The comparison and interval CSVs keep their contract columns.
    let cmp = std::fs::read_to_string(out.path().join("comparison/metrics.csv")).expect("csv");
    assert_eq!(
        cmp.lines().next().expect("header"),
        "method,basis,degree,depth,r2,chi2,l1,l2,linf,rel_l1_pct,rel_l2_pct,rel_linf_pct,gen_ms,he_eval_ms,he_max_err,he_value_1_minus_05"
    );
    assert_eq!(
        cmp.lines().count(),
        1 + 8,
        "8 methods (TFHE skipped in tiny)"
    );
    let int = std::fs::read_to_string(out.path().join("interval/metrics.csv")).expect("csv");
    assert_eq!(
        int.lines().next().expect("header"),
        "eps,method,r2,l1,l2,linf,rel_l1_pct,rel_l2_pct,rel_linf_pct"
    );
    assert_eq!(int.lines().count(), 1 + 51 * 7);
    for f in [
        "comparison/approximations.svg",
        "interval/rel_l1_vs_eps.svg",
    ] {
        let svg = std::fs::read_to_string(out.path().join(f)).expect("svg");
        assert!(svg.starts_with("<svg"), "{f}");
    }
    let report = std::fs::read_to_string(out.path().join("REPORT.md")).expect("report");
    assert!(
        report.contains("| P2 metrics | least squares R² | 0.93944 | 0.93944 |"),
        "{report}"
    );
    assert!(report.contains("| experiment | quantity | paper | reproduced | difference | note |"));
    assert!(report.contains("CNN1-ReLU"));

    // Encrypted inference: one summary row per run, per-run folders, figure.
    let inf = std::fs::read_to_string(out.path().join("inference/summary.csv")).expect("csv");
    let header = inf.lines().next().expect("header");
    assert!(
        header.starts_with("model,act,mode,images,params,plain_accuracy_pct,he_accuracy_pct,agreement_pct,max_logit_error,ms_per_image"),
        "{header}"
    );
    assert_eq!(inf.lines().count(), 1 + 2, "per-image and batched runs");
    for run_dir in ["cnn1-x2-per-image", "cnn1-x2-batched"] {
        let s: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                out.path()
                    .join("inference")
                    .join(run_dir)
                    .join("summary.json"),
            )
            .expect("summary.json"),
        )
        .expect("json");
        assert_eq!(s["agreement"].as_f64().expect("agreement"), 1.0, "{s}");
        assert!(!s["params"]["insecure"].as_bool().expect("insecure flag"));
    }
    let svg = std::fs::read_to_string(out.path().join("inference/stage_times.svg")).expect("svg");
    assert!(svg.starts_with("<svg"));

    // Second run: models come from the cache.
    let second = run("training");
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("(cached)"));
    // `--only training` replaced its stage and kept the other three, with
    // what they measured: the report still shows the P2 metric.
    let merged: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    let names: Vec<&str> = merged["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["training", "comparison", "interval", "inference"]);
    let report = std::fs::read_to_string(out.path().join("REPORT.md")).expect("report");
    assert!(
        report.contains("| P2 metrics | least squares R² | 0.93944 | 0.93944 |"),
        "{report}"
    );
}

#[test]
fn unknown_stage_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_slaf-he"))
        .args(["reproduce", "--only", "bogus"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

/// Without `--out`, a profile other than `--full` writes into the
/// git-ignored `results/<profile>/`: running it from the repository root
/// changes nothing `git status` sees (the README's main command must leave
/// a fresh clone clean).
#[test]
fn reproduce_without_out_leaves_git_status_unchanged() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = || {
        let o = Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=all"])
            .current_dir(root)
            .output()
            .expect("git must be installed to run this test");
        assert!(o.status.success(), "not a git checkout: {}", root.display());
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let before = status();
    let cache = tempfile::tempdir().expect("tmp");
    let run = Command::new(env!("CARGO_BIN_EXE_slaf-he"))
        .args([
            "reproduce",
            "--profile",
            "tiny",
            "--only",
            "training,interval",
            "--cache",
        ])
        .arg(cache.path())
        .current_dir(root)
        .output()
        .expect("run");
    assert!(
        run.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let report = root.join("results/tiny/REPORT.md");
    assert!(report.is_file(), "the tiny profile writes to results/tiny/");
    assert_eq!(status(), before, "reproduce changed files git tracks");
    let _ = std::fs::remove_dir_all(root.join("results/tiny"));
}
