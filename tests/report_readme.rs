//! `slaf-he report readme`: generated README blocks are rebuilt from the
//! committed results, stale or malformed blocks are named, and the
//! repository's README is up to date.

use slaf_he::report::readme::{rewrite, stale_blocks};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_readme_is_up_to_date_with_the_committed_results() {
    let text = std::fs::read_to_string(root().join("README.md")).expect("README");
    assert!(text.contains("<!-- generated: p2-metrics -->"));
    let stale = stale_blocks(&text, root()).expect("blocks build");
    assert!(
        stale.is_empty(),
        "stale README blocks: {stale:?} (run `slaf-he report readme`)"
    );
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
