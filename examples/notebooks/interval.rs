//! The cells of `notebooks/Interval_based_approximation_analysis.ipynb`
//! (format: see `examples/notebooks/cnn1.rs`). Run it as a program with
//! `cargo run --release --example notebook_interval`.

fn main() {
    // %% md
    // # Interval-based approximation analysis
    //
    // Mirrors the original `Interval_based_approximation_analysis.ipynb`: how the error of each sign approximation falls when the points near 0 (|x| < eps) are dropped, for eps = 0.00, 0.01, …, 0.50. Relative norms still divide by the full-range norms of sign; the Fourier series is refitted on each reduced set.
    // %% setup
    // %%
    use slaf_he::experiments::{self as ex, NotebookEnv};
    use slaf_he::report::{show_dataframe, show_markdown};
    // %%
    let env = NotebookEnv::open().expect("notebook environment");
    println!("{env}");
    // %%
    let study =
        ex::interval(slaf_he::approx::methods::DEFAULT_MINIMAX_EPS).expect("interval analysis");
    println!(
        "{} rows ({} eps values x {} methods)",
        study.rows.len(),
        slaf_he::approx::interval::eps_values().len(),
        ex::PLOTTED.len()
    );
    // %% md
    // ## |sign − p| over [-1, 1]
    //
    // The error concentrates around the discontinuity at 0 (and, for Fourier, at the ends of the interval).
    // %%
    study
        .figure("abs_error")
        .expect("figure")
        .save_and_show(&env.figs, "interval_abs_error")
        .expect("figure");
    // %% md
    // ## Metrics versus eps
    // %%
    for stem in ["rel_l1_vs_eps", "r2_vs_eps", "linf_vs_eps"] {
        study
            .figure(stem)
            .expect("figure")
            .save_and_show(&env.figs, &format!("interval_{stem}"))
            .expect("figure");
    }
    // %% md
    // ## At the reference points of the paper
    //
    // Relative L1 (%) at eps = 0, 0.1, 0.3, 0.5, the paper's value beside ours, then every metric at those points.
    // %%
    show_markdown(&study.reference_points);
    // %%
    show_dataframe(&study.at_eps(&[0.0, 0.1, 0.3, 0.5]).expect("table"), 4);
}
