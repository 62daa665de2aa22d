//! `slaf-he report readme`: generated README blocks are rebuilt from the
//! committed results, stale or malformed blocks are named, and the
//! repository's README is up to date.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_he::report::readme::{rewrite, stale_blocks};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_readmes_are_up_to_date_with_the_committed_results() {
    for doc in slaf_he::report::readme::DOCUMENTS {
        let text = std::fs::read_to_string(root().join(doc)).expect("README");
        assert!(text.contains("<!-- generated: "), "{doc} has no block");
        let stale = stale_blocks(&text, root()).expect("blocks build");
        assert!(
            stale.is_empty(),
            "stale blocks in {doc}: {stale:?} (run `slaf-he report readme`)"
        );
    }
}

#[test]
fn a_stale_block_is_named_and_rewritten_from_the_artifact() {
    let text =
        "intro\n<!-- generated: p2-metrics -->\n| method | 1.0 |\n<!-- end -->\nouter text\n";
    assert_eq!(stale_blocks(text, root()).expect("check"), ["p2-metrics"]);
    let fresh = rewrite(text, root()).expect("rewrite");
    assert!(fresh.starts_with("intro\n<!-- generated: p2-metrics -->\n| method | R² |"));
    assert!(fresh.ends_with("<!-- end -->\nouter text\n"));
    // The least-squares row carries the CSV's numbers.
    let csv = std::fs::read_to_string(root().join("results/comparison/metrics.csv")).expect("csv");
    let ls: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("least_squares,"))
        .expect("row")
        .split(',')
        .collect();
    let r2: f64 = ls[4].parse().expect("r2");
    assert!(
        fresh.contains(&format!("| least squares | {r2:.5} |")),
        "{fresh}"
    );
    assert!(stale_blocks(&fresh, root()).expect("check").is_empty());
}

#[test]
fn unknown_and_unclosed_blocks_are_errors() {
    let e = rewrite("<!-- generated: nonsense -->\n<!-- end -->\n", root()).expect_err("unknown");
    assert!(
        e.to_string()
            .contains("unknown generated block \"nonsense\""),
        "{e}"
    );
    let e = rewrite("a\n<!-- generated: p2-metrics -->\nrow\n", root()).expect_err("unclosed");
    assert!(e.to_string().contains("line 2 has no <!-- end -->"), "{e}");
}

#[test]
fn the_readme_uses_every_known_block() {
    let text = std::fs::read_to_string(root().join("README.md")).expect("README");
    for (name, _) in slaf_he::report::readme::BLOCKS {
        assert!(
            text.contains(&format!("<!-- generated: {name} -->")),
            "README lacks block {name}"
        );
    }
}

/// A copy of the artifacts one block reads, under a temporary root.
fn scratch_root(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for f in files {
        let to = dir.path().join(f);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(root().join(f), &to).expect("copy");
    }
    dir
}

#[test]
fn the_seed_study_block_follows_its_csv_quoted_notes_included() {
    use slaf_he::report::readme::render_block;
    let body = render_block(root(), "seed-study").expect("render");
    // A note with a comma inside quotes stays one cell.
    assert!(
        body.contains(
            "| cnn1-slaf-r | frozen, main recipe | 46.36 ± 28.66 (5) | — | 35.64 | inside |"
        ),
        "{body}"
    );
    assert!(body.contains(
        "| cnn1-slaf | clip 1.0 | 98.47 ± 0.21 (10) | 98.55 ± 0.28 (10) | 98.69 | inside |"
    ));
    // Change the artifact: the block changes with it.
    let dir = scratch_root(&["results/training/seeds.csv"]);
    let path = dir.path().join("results/training/seeds.csv");
    let csv = std::fs::read_to_string(&path).expect("csv");
    std::fs::write(&path, csv.replace("98.47,0.21", "97.00,0.50")).expect("write");
    let changed = render_block(dir.path(), "seed-study").expect("render");
    assert!(
        changed.contains("| cnn1-slaf | clip 1.0 | 97.00 ± 0.50 (10) |"),
        "{changed}"
    );
    // A malformed range verdict is an error naming the run.
    std::fs::write(&path, csv.replace(",yes,98.12", ",maybe,98.12")).expect("write");
    let e = render_block(dir.path(), "seed-study").expect_err("bad verdict");
    assert!(
        e.to_string()
            .contains("cnn1-slaf: reference_in_range \"maybe\""),
        "{e}"
    );
}

#[test]
fn the_accuracy_block_joins_training_and_encrypted_runs() {
    use slaf_he::report::readme::render_block;
    let body = render_block(root(), "p1-accuracy").expect("render");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("results/inference/cnn2-slaf-batched/summary.json"))
            .expect("summary"),
    )
    .expect("json");
    let he = summary["he_accuracy"].as_f64().expect("he_accuracy") * 100.0;
    let images = summary["images"].as_u64().expect("images");
    let row = body
        .lines()
        .find(|l| l.starts_with("| CNN2-SLAF |"))
        .expect("CNN2-SLAF row");
    assert!(row.contains(&format!("| {he:.2} % ({images}) |")), "{row}");
    // Plaintext-only variants have no encrypted column.
    let relu = body
        .lines()
        .find(|l| l.starts_with("| CNN1-ReLU |"))
        .expect("row");
    assert!(relu.contains("| — | — |"), "{relu}");
    // A missing training artifact is an error naming it.
    let dir = tempfile::tempdir().expect("tempdir");
    let e = render_block(dir.path(), "p1-accuracy").expect_err("missing csv");
    assert!(e.to_string().contains("accuracy.csv"), "{e}");
}

#[test]
fn an_agreement_below_one_never_shows_as_100() {
    use slaf_he::report::readme::render_block;
    let body = render_block(root(), "cnn3").expect("render");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            root().join("results/cnn3/fashion-mnist-cnn3-x2-batched/summary.json"),
        )
        .expect("summary"),
    )
    .expect("json");
    let a = summary["agreement"].as_f64().expect("agreement");
    assert!(a < 1.0, "the committed run has {a}");
    let row = body
        .lines()
        .find(|l| l.starts_with("| fashion-mnist | x2 |"))
        .expect("row");
    assert!(row.contains(&format!("| {:.2} % /", a * 100.0)), "{row}");
    assert!(
        !row.contains("| 100.0 % /") && !row.contains("| 100 % /"),
        "{row}"
    );
}

#[test]
fn the_cli_check_passes_on_the_repository() {
    // The command CI used to run separately (`slaf-he report readme --check`);
    // run here, it reuses the test build instead of a second release build.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slaf-he"))
        .args(["report", "readme", "--check"])
        .current_dir(root())
        .output()
        .expect("run slaf-he");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "report readme --check failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("every generated block is up to date"),
        "{stdout}"
    );
}
