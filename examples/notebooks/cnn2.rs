//! The cells of `notebooks/CNN2_HE_SLAF.ipynb` (format: see
//! `examples/notebooks/cnn1.rs`). Run it as a program with
//! `cargo run --release --example notebook_cnn2`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

// One encrypted run per cell, pushed as it finishes.
#![allow(clippy::vec_init_then_push)]

fn main() {
    // %% md
    // # CNN2 and the CryptoNets baseline under CKKS
    //
    // Mirrors the original `CNN2_HE_SLAF.ipynb`: CNN2 = conv 5x5 stride 2 padding 1 (1→20 channels, 3380 features) + BatchNorm2d, act1, avg-pool 3/2, conv 5x5 (20→50), avg-pool 3/2, linear 200→100 + BatchNorm1d, act2, linear 100→10; the CryptoNets-X2 baseline for the time comparison. For inference the BatchNorms are folded and the linear block (pool → conv2 → pool → fc1 → BN1d) collapses into one 3380→100 matrix (`tests/nn_inference.rs` checks on the committed weights that the logits do not change).
    // %% setup
    // %%
    use slaf_he::experiments as ex;
    use slaf_he::experiments::NotebookEnv;
    use slaf_he::experiments::harness::InferenceSummary;
    use slaf_he::he_nn::Mode;
    use slaf_he::nn::{Arch, Variant};
    use slaf_he::report::{show_dataframe, show_markdown};
    // %%
    let env = NotebookEnv::open().expect("notebook environment");
    println!("{env}");
    // %% md
    // ## Data
    //
    // MNIST from the repository's `data/mnist/`, SHA-256 verified on load; pixels in [0, 1], no normalisation.
    // %%
    let mnist = env.mnist().expect("MNIST (checksums are verified on load)");
    // %% md
    // ## Learning-rate range test
    // %%
    let lr = ex::lr_range_figure(&mnist, Arch::Cnn2, env.profile, 6_400).expect("LR range test");
    lr.save_and_show(&env.figs, "cnn2_lr_range")
        .expect("figure");
    // %% md
    // ## Training
    //
    // CNN2 with every activation variant, and CryptoNets-X2. SLAF-R trains with ReLU, swaps in SLAFs and retrains only their coefficients with every other weight frozen; BatchNorm keeps normalising with batch statistics meanwhile (PyTorch's train mode with frozen parameters), so BatchNorm1d re-centres what the new SLAFs produce.
    // %%
    let mut plan = ex::variants_plan(env.profile, Arch::Cnn2);
    plan.extend(ex::variants_plan(env.profile, Arch::Cryptonets));
    let trained = ex::train_for_notebook(&mnist, &plan, &env.repo).expect("training");
    // %% md
    // Test accuracy beside the PyTorch reference of P1, and the largest activation input seen in training and test.
    // %%
    show_dataframe(&ex::accuracy_table(&trained).expect("accuracy table"), 4);
    // %%
    ex::learning_curves_figure(&trained)
        .save_and_show(&env.figs, "cnn2_learning_curves")
        .expect("figure");
    // %% md
    // Test accuracy per digit (%).
    // %%
    show_dataframe(&ex::per_class_table(&trained).expect("per-class table"), 2);
    // %% md
    // The learned activations, each over the largest input its layer saw, against ReLU.
    // %%
    ex::save_activation_figures(&trained, &env.figs).expect("activation figures");
    // %% md
    // ## CKKS parameters and their security check
    //
    // The presets of SPEC §5 are validated against the HE-standard 128-bit table (ternary secrets) when they are built; a chain above the bound is refused with a typed error unless the caller opts out explicitly.
    // %%
    show_markdown(&ex::ckks_presets_markdown());
    // %%
    let slaf = ex::pick(&trained, Arch::Cnn2, Variant::Slaf).expect("run");
    let x2c = ex::pick(&trained, Arch::Cryptonets, Variant::X2).expect("run");
    print!(
        "{}",
        ex::depth_lines(&[&slaf, &x2c]).expect("circuit plans")
    );
    // %% md
    // ## Encrypted inference
    //
    // Per image (one image per ciphertext, rotations) and batched (one image per slot). The batched runs take minutes per batch of N/2 images on 2 cores, so the quick profile skips them.
    // %%
    let mut he_runs: Vec<InferenceSummary> = Vec::new();
    he_runs.push(
        ex::he_run_shown(&slaf, Mode::PerImage, env.profile.choose(2, 10))
            .expect("encrypted inference"),
    );
    // %%
    if env.profile.is_full() {
        he_runs.push(ex::he_run_shown(&slaf, Mode::Batched, 10_000).expect("encrypted inference"));
    } else {
        println!("CNN2-SLAF batched: skipped in the quick profile");
    }
    // %%
    he_runs.push(
        ex::he_run_shown(&x2c, Mode::PerImage, env.profile.choose(2, 10))
            .expect("encrypted inference"),
    );
    // %%
    if env.profile.is_full() {
        he_runs.push(ex::he_run_shown(&x2c, Mode::Batched, 10_000).expect("encrypted inference"));
    } else {
        println!("CryptoNets-X2 batched: skipped in the quick profile");
    }
    // %% md
    // Time per image and stage, the main columns of `results/inference/summary.csv`, and P1's "6.26x faster than CryptoNets", here with both models through the same pipeline.
    // %%
    ex::stage_times_figure(&he_runs)
        .save_and_show(&env.figs, "cnn2_he_stage_times")
        .expect("figure");
    // %%
    show_dataframe(
        &ex::inference_table_main(&he_runs).expect("inference table"),
        4,
    );
    // %%
    ex::cryptonets_ratios(&he_runs)
        .iter()
        .for_each(|r| println!("{r}"));
}
