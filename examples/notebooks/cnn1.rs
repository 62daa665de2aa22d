//! The cells of `notebooks/CNN1_HE_SLAF.ipynb`. Cargo compiles this file
//! (`cargo build --examples`), so a library change that breaks the notebook
//! breaks the build; `notebooks/make_notebooks.py` writes the notebook from
//! it. `// %% md` starts a markdown cell (its lines are `// ` comments),
//! `// %%` a code cell, `// %% setup` the set-up cells every notebook
//! shares. Run it as a program with `cargo run --release --example
//! notebook_cnn1` (from the repository; `SLAF_HE_PROFILE=quick` for minutes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

// One encrypted run per cell, pushed as it finishes.
#![allow(clippy::vec_init_then_push)]

fn main() {
    // %% md
    // # CNN1 with self-learning activation functions under CKKS
    //
    // Mirrors the original `CNN1_HE_SLAF.ipynb` (Pulido-Gaytan & Tchernykh, PLOS ONE 2024): CNN1 = conv 7x7 stride 3 (1→4 channels, 4x8x8 = 256 features), act1, linear 256→64, act2, linear 64→10, trained with ReLU, X2, SLAF, SLAF-R and SLAF-P, then evaluated on encrypted images with our RNS-CKKS. Every cell is a call into `slaf_he::experiments`, the same functions `slaf-he reproduce` runs.
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
    // %%
    ex::digits_figure(&mnist, 16)
        .save_and_show(&env.figs, "cnn1_digits")
        .expect("figure");
    // %% md
    // ## The model
    //
    // CNN1's parameters (name and shape of every tensor), built with the SLAF activation: the SLAF coefficients are trainable parameters too.
    // %%
    show_dataframe(
        &ex::parameters_table(Arch::Cnn1, Variant::Slaf).expect("parameters"),
        0,
    );
    // %% md
    // ## Learning-rate range test
    //
    // One epoch with the learning rate growing geometrically from 1e-6 to 10 (SGD, momentum 0.95), smoothed loss; the one-cycle schedule's max_lr = 0.2 sits before the minimum.
    // %%
    let lr = ex::lr_range_figure(&mnist, Arch::Cnn1, env.profile, 12_800).expect("LR range test");
    lr.save_and_show(&env.figs, "cnn1_lr_range")
        .expect("figure");
    // %% md
    // ## Training
    //
    // SGD with PyTorch one-cycle semantics (max_lr 0.2), batch 64, seed 73; SLAF-R trains with ReLU, swaps in SLAFs and retrains only their coefficients with every other weight frozen. The 30-epoch models committed under `results/training/` seed the model cache, so the full profile loads them instead of training for an hour.
    // %%
    let plan = ex::variants_plan(env.profile, Arch::Cnn1);
    let trained = ex::train_for_notebook(&mnist, &plan, &env.repo).expect("training");
    // %% md
    // Test accuracy beside the PyTorch reference of P1, and the largest activation input seen in training and test (it sets the approximation interval and the CKKS headroom).
    // %%
    show_dataframe(&ex::accuracy_table(&trained).expect("accuracy table"), 4);
    // %%
    ex::learning_curves_figure(&trained)
        .save_and_show(&env.figs, "cnn1_learning_curves")
        .expect("figure");
    // %% md
    // Test accuracy per digit (%).
    // %%
    show_dataframe(&ex::per_class_table(&trained).expect("per-class table"), 2);
    // %% md
    // The learned activations: for every polynomial variant, every activation in inference form (SLAF-P expanded to its polynomial), each over the largest input its layer saw, against ReLU.
    // %%
    ex::save_activation_figures(&trained, &env.figs).expect("activation figures");
    // %% md
    // ## CKKS parameters and their security check
    //
    // The presets of SPEC §5 are validated against the HE-standard 128-bit table (ternary secrets) when they are built; a chain above the bound is refused with a typed error unless the caller opts out explicitly.
    // %%
    show_markdown(&ex::ckks_presets_markdown());
    // %%
    let x2 = ex::pick(&trained, Arch::Cnn1, Variant::X2).expect("run");
    let slaf = ex::pick(&trained, Arch::Cnn1, Variant::Slaf).expect("run");
    print!("{}", ex::depth_lines(&[&x2, &slaf]).expect("circuit plans"));
    // %% md
    // ## Encrypted inference
    //
    // Our CKKS on the first test images: per image (the original's design: one image per ciphertext, rotations) and batched (one image per slot, no rotations). Agreement = encrypted argmax equals the plaintext argmax of the same inference-form model. The per-image runs also decrypt after every layer of their first image to measure the precision.
    // %%
    let mut he_runs: Vec<InferenceSummary> = Vec::new();
    he_runs.push(
        ex::he_run_shown(&x2, Mode::PerImage, env.profile.choose(3, 20))
            .expect("encrypted inference"),
    );
    // %%
    he_runs.push(
        ex::he_run_shown(&x2, Mode::Batched, env.profile.choose(256, 10_000))
            .expect("encrypted inference"),
    );
    // %%
    he_runs.push(
        ex::he_run_shown(&slaf, Mode::PerImage, env.profile.choose(2, 20))
            .expect("encrypted inference"),
    );
    // %%
    he_runs.push(
        ex::he_run_shown(&slaf, Mode::Batched, env.profile.choose(256, 10_000))
            .expect("encrypted inference"),
    );
    // %% md
    // Time per image and stage (batched: amortised over the images of a ciphertext), then the table `slaf-he reproduce` writes to `results/inference/summary.csv` (main columns).
    // %%
    ex::stage_times_figure(&he_runs)
        .save_and_show(&env.figs, "cnn1_he_stage_times")
        .expect("figure");
    // %%
    show_dataframe(
        &ex::inference_table_main(&he_runs).expect("inference table"),
        4,
    );
}
