//! The `slaf-he` binary: `data verify` succeeds on the vendored files, fails
//! with one clear line on a corrupt copy, every subcommand has `--help`,
//! and unknown subcommands and bad flags are refused with a clear line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use std::process::Command;

fn slaf_he() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slaf-he"))
}

#[test]
fn data_verify_prints_split_sizes_and_class_counts() {
    let out = slaf_he().args(["data", "verify"]).output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("train: 60000 images of 28x28, test: 10000 images"));
    assert!(stdout.contains("5923  6742  5958  6131  5842  5421  5918  6265  5851  5949"));
    assert!(stdout.contains("980  1135  1032  1010   982   892   958  1028   974  1009"));
}

#[test]
fn data_verify_on_corrupt_copy_exits_nonzero_with_one_error_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in slaf_he::data::FILES
        .iter()
        .chain([&slaf_he::data::CHECKSUMS])
    {
        std::fs::copy(
            slaf_he::data::default_data_dir().join(name),
            dir.path().join(name),
        )
        .expect("copy");
    }
    let victim = dir.path().join(slaf_he::data::TRAIN_LABELS);
    let mut bytes = std::fs::read(&victim).expect("read");
    bytes[50] ^= 0xff;
    std::fs::write(&victim, bytes).expect("write");
    let out = slaf_he()
        .args(["data", "verify", "--data"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("checksum mismatch (sha256)"), "{stderr}");
    assert!(stderr.contains("train-labels.idx1-ubyte.gz"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "data",
        "train",
        "lr-find",
        "infer",
        "compare",
        "interval",
        "token",
        "bench",
        "reproduce",
        "report",
    ] {
        let out = slaf_he().args([sub, "--help"]).output().expect("run");
        assert!(out.status.success(), "{sub} --help");
        assert!(!out.stdout.is_empty());
    }
}

/// Every closed choice lists its values in `--help`.
#[test]
fn help_lists_the_values_of_closed_choices() {
    for (sub, want) in [
        (
            "infer",
            vec![
                "per-image",
                "auto-hybrid",
                "cnn1-x2",
                "custom:LOGN:BITS:SCALE",
            ],
        ),
        ("serve", vec!["per-image", "slaf-p"]),
        (
            "train",
            vec![
                "slaf-r",
                "sgd-onecycle",
                "chebyshev",
                "fashion-mnist",
                "running",
            ],
        ),
    ] {
        let out = slaf_he().args([sub, "--help"]).output().expect("run");
        let text = String::from_utf8_lossy(&out.stdout);
        for w in want {
            assert!(text.contains(w), "{sub} --help lacks {w}: {text}");
        }
    }
}

#[test]
fn unknown_subcommands_and_bad_values_are_refused() {
    for (args, want) in [
        (vec!["sevre"], "unrecognized subcommand"),
        (vec!["serve"], "--model"),
        (vec!["keygen", "--out", "x"], "--server"),
        (
            vec!["infer", "--threads", "0", "--weights", "x"],
            "--threads",
        ),
        (vec!["bench", "ckks", "--threads", "0"], "--threads"),
        (
            vec!["infer", "--weights", "x", "--seed", "abc"],
            "64 hexadecimal digits",
        ),
        // Closed choices are clap ValueEnums: the error names the values.
        (
            vec!["infer", "--weights", "x", "--mode", "batch"],
            "[possible values: per-image, batched]",
        ),
        (
            vec!["serve", "--model", "x", "--mode", "perimage"],
            "[possible values: per-image, batched]",
        ),
        (vec!["train", "--act", "slafp"], "slaf-r, slaf-p"),
        (
            vec!["train", "--optimizer", "rmsprop"],
            "sgd-onecycle, adam, sgd",
        ),
        (vec!["train", "--slafp-init", "lsq"], "ls, chebyshev"),
        (vec!["train", "--dataset", "cifar"], "mnist, fashion-mnist"),
        // A decimal seed makes a publicly known secret key: only on request.
        (
            vec!["keygen", "--plan", "p.json", "--out", "k", "--seed", "7"],
            "--test-seed",
        ),
        // Zero limits are refused, not silently raised to 1.
        (vec!["serve", "--model", "x", "--workers", "0"], "--workers"),
        (
            vec!["serve", "--model", "x", "--timeout-s", "0"],
            "--timeout-s",
        ),
        (
            vec!["serve", "--model", "x", "--memory-mib", "0"],
            "--memory-mib",
        ),
        (
            vec!["serve", "--model", "x", "--max-connections", "0"],
            "--max-connections",
        ),
        (
            vec!["serve", "--model", "x", "--header-timeout-s", "0"],
            "--header-timeout-s",
        ),
        (
            vec!["serve", "--model", "x", "--tls-cert", "c.pem"],
            "--tls-key",
        ),
        (
            vec!["token", "--name", "a", "--max-bundles", "0"],
            "--max-bundles",
        ),
        (
            vec!["serve", "--model", "x", "--max-bundles", "0"],
            "--max-bundles",
        ),
        (
            vec![
                "query",
                "--server",
                "http://127.0.0.1:1",
                "--keys",
                "k",
                "--timeout-s",
                "0",
            ],
            "--timeout-s",
        ),
        (
            vec!["infer", "--weights", "x", "--params", "slafp"],
            "unknown parameter set \"slafp\"",
        ),
    ] {
        let out = slaf_he().args(&args).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// `slaf-he … | head`: output into a pipe whose reader has gone ends the
/// program quietly (SIGPIPE, as Unix tools do), never with a panic about
/// "failed printing to stdout".
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn a_closed_stdout_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    // `model show` prints a spec and its layer table: more than one write.
    let mut child = slaf_he()
        .args(["model", "show", "cnn4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Close the reading end before the program writes.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.status.success() || out.status.signal() == Some(13),
        "{:?}: {err}",
        out.status
    );
}
