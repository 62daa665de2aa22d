//! The cells of `notebooks/Performance_accuracy_comparison_approaches.ipynb`
//! (format: see `examples/notebooks/cnn1.rs`). Run it as a program with
//! `cargo run --release --example notebook_comparison`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

fn main() {
    // %% md
    // # Performance and accuracy of sign-function approximations
    //
    // Mirrors the original `Performance_accuracy_comparison_approaches.ipynb` (Pulido-Gaytan et al., IEEE Access 2023): five degree-9 approximations of sign(x) on [-1, 1] (least squares, composition f∘g, Newton f∘f, Chebyshev, Fourier), plus what the original lacked: minimax (Remez) and composite minimax polynomials, and an exact encrypted comparison with TFHE-rs. Metrics on 1000 evenly spaced points; encrypted evaluation with our CKKS at the original's parameters (N=8192, [31, 26x6, 31], scale 2^26).
    // %% setup
    // %%
    use slaf_he::experiments as ex;
    use slaf_he::experiments::{CompareOptions, NotebookEnv};
    use slaf_he::report::{show_dataframe, show_markdown};
    // %%
    let env = NotebookEnv::open().expect("notebook environment");
    println!("{env}");
    // %% md
    // ## The study
    //
    // One call builds every approximation, measures its metrics and generation time, evaluates it on an encrypted vector (mean over the runs) and runs the TFHE-rs comparison.
    // %%
    let opts = CompareOptions {
        runs: env.profile.choose(3, 30),
        tfhe_batch: Some(env.profile.choose(4, 32)),
        ..Default::default()
    };
    let study = ex::compare(&opts, &mut |line: &str| println!("{line}")).expect("comparison study");
    // %% md
    // ## Each approximation over sign(x)
    // %%
    let each = study.method_figures("comparison_").expect("figures");
    slaf_he::report::save_and_show_grid(&each, &env.figs, "Each approximation over sign(x)", 2)
        .expect("figures");
    // %% md
    // All of them together:
    // %%
    // A figure borrowed from `study` cannot outlive the cell: use it in one expression.
    study
        .figure("approximations")
        .expect("figure")
        .save_and_show(&env.figs, "comparison_all")
        .expect("figure");
    // %% md
    // ## Metrics
    //
    // R² (squared Pearson correlation), chi-square, L1/L2/L∞ of |sign − p| and relative to the norms of sign (%); generation time (ms), encrypted evaluation time (ms), the largest |decrypted − p| over the 1000 points, and the decrypted p(enc(1) − enc(0.5)) as the original printed it. The `tfhe_exact` row is the exact comparator: its error is 0 by construction, its generation time is key generation and its evaluation time one encrypted comparison.
    // %%
    show_dataframe(&study.metrics, 5);
    // %%
    let stems = ["generation_time", "he_eval_time", "rel_l1"];
    ex::show_figures(&study.figures, &env.figs, "comparison_", &stems).expect("figures");
    // %% md
    // ## The original's defects beside the correct values
    //
    // The original dropped the x⁹ term (least squares, composition, Newton) and evaluated the Chebyshev coefficients as power-basis ones; the table shows p(0.5) computed correctly and as published, and the encrypted evaluation of the as-published polynomial.
    // %%
    show_dataframe(&study.as_published, 5);
    // %% md
    // Notes: the Fourier frequency and its conversion for CKKS, the minimax eps, the TFHE timings.
    // %%
    show_markdown(study.notes());
}
