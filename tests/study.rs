//! The P2 study as data (`slaf_he::experiments`): table schemas, figure stems,
//! reference values and the interval grid, without the slow encrypted parts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_he::experiments::{CompareOptions, PLOTTED, compare, interval};

#[test]
fn comparison_tables_figures_and_reference_values() {
    let opts = CompareOptions {
        runs: 1,
        he: false,
        tfhe_batch: None,
        ..Default::default()
    };
    let mut lines = Vec::new();
    let s = compare(&opts, &mut |l| lines.push(l.to_string())).expect("study");
    assert_eq!(s.approximations.len(), 8);
    assert_eq!(s.metrics.height(), 8, "one row per method, no TFHE row");
    let cols: Vec<String> = s
        .metrics
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        cols,
        [
            "method",
            "basis",
            "degree",
            "depth",
            "r2",
            "chi2",
            "l1",
            "l2",
            "linf",
            "rel_l1_pct",
            "rel_l2_pct",
            "rel_linf_pct",
            "gen_ms",
            "he_eval_ms",
            "he_max_err",
            "he_value_1_minus_05"
        ]
    );
    // SPEC §6: least squares R² = 0.9394 (4 significant digits).
    let r2 = s.measured["p2.r2.least_squares"];
    assert!((r2 - 0.93944).abs() < 5e-5, "{r2}");
    // No encrypted evaluation asked: no HE timings measured.
    assert!(!s.measured.keys().any(|k| k.starts_with("p2.he_ms.")));
    let stems: Vec<&str> = s.figures.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        stems,
        ["approximations", "abs_error", "generation_time", "rel_l1"]
    );
    assert!(s.as_published.height() >= 1);
    assert!(s.details.contains("## Metrics"));
    let dir = tempfile::tempdir().expect("tmp");
    let files = s.write(dir.path()).expect("write");
    assert_eq!(files.len(), 3 + 2 * stems.len());
    assert!(files.iter().all(|f| f.is_file()));

    let bad = CompareOptions {
        eps: 0.0,
        ..opts.clone()
    };
    assert!(compare(&bad, &mut |_| ()).is_err(), "eps = 0 is refused");
}

#[test]
fn interval_grid_and_reference_points() {
    let s = interval(0.05).expect("interval");
    assert_eq!(s.rows.len(), 51 * PLOTTED.len());
    assert_eq!(s.metrics.height(), s.rows.len());
    // 4 methods x 4 reference points in the markdown table (+ 2 header lines).
    let table_rows = s
        .reference_points
        .lines()
        .filter(|l| l.starts_with('|'))
        .count();
    assert_eq!(table_rows, 2 + 16);
    assert_eq!(s.measured.len(), 16);
    // Dropping points near 0 can only lower the relative L1 of least squares.
    let ls = |e: f64| {
        s.rows
            .iter()
            .find(|r| r.method == slaf_he::approx::Method::LeastSquares && (r.eps - e).abs() < 1e-9)
            .map(|r| r.metrics.rel_l1_pct)
            .expect("row")
    };
    assert!(ls(0.5) < ls(0.0));
    // The 16 published reference points (P2's interval table, relative L1
    // in %, printed to 2 decimals) are reproduced to their printed digits.
    use slaf_he::approx::Method::{Chebyshev, Composition, LeastSquares, Newton};
    let paper = [
        (LeastSquares, [15.22, 8.46, 5.55, 3.67]),
        (Composition, [19.77, 11.31, 2.59, 0.59]),
        (Newton, [26.69, 17.81, 6.35, 1.44]),
        (Chebyshev, [16.53, 9.80, 6.36, 2.95]),
    ];
    for (method, values) in paper {
        for (eps, want) in [0.0, 0.1, 0.3, 0.5].into_iter().zip(values) {
            let got = s
                .rows
                .iter()
                .find(|r| r.method == method && (r.eps - eps).abs() < 1e-9)
                .map(|r| r.metrics.rel_l1_pct)
                .expect("reference row");
            assert!(
                (got - want).abs() <= 0.005 + 1e-9,
                "{method:?} at eps {eps}: {got:.4} vs published {want}"
            );
        }
    }
    let stems: Vec<&str> = s.figures.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        stems,
        ["rel_l1_vs_eps", "r2_vs_eps", "linf_vs_eps", "abs_error"]
    );
}
