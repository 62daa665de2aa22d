//! The cells of `notebooks/Interval_based_approximation_analysis.ipynb`
//! (format: see `examples/notebooks/cnn1.rs`). Run it as a program with
//! `cargo run --release --example notebook_interval`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

fn main() {
    // %% md
    // # Interval-based approximation analysis
    //
    // Mirrors the original `Interval_based_approximation_analysis.ipynb`: how the error of each sign approximation falls when the points near 0 (|x| < eps) are dropped, for eps = 0.00, 0.01, …, 0.50. Relative norms still divide by the full-range norms of sign; the Fourier series is refitted on each reduced set.
    // %% setup
    // %%
    use slaf_he::experiments as ex;
    use slaf_he::experiments::NotebookEnv;
    use slaf_he::report::{show_dataframe, show_markdown};
    // %%
    let env = NotebookEnv::open().expect("notebook environment");
    println!("{env}");
    // %%
    let study = ex::interval(ex::DEFAULT_MINIMAX_EPS).expect("interval analysis");
    println!("{}", study.describe());
    // %% md
    // ## |sign − p| over [-1, 1]
    //
    // The error concentrates around the discontinuity at 0 (and, for Fourier, at the ends of the interval).
    // %%
    ex::show_figures(&study.figures, &env.figs, "interval_", &["abs_error"]).expect("figure");
    // %% md
    // ## Metrics versus eps
    // %%
    let stems = ["rel_l1_vs_eps", "r2_vs_eps", "linf_vs_eps"];
    ex::show_figures(&study.figures, &env.figs, "interval_", &stems).expect("figures");
    // %% md
    // ## At the reference points of the paper
    //
    // Relative L1 (%) at eps = 0, 0.1, 0.3, 0.5, the paper's value beside ours, then every metric at those points.
    // %%
    show_markdown(&study.reference_points);
    // %%
    show_dataframe(&study.at_eps(&[0.0, 0.1, 0.3, 0.5]).expect("table"), 4);
}
