//! The cells of `notebooks/Beyond_SLAF_study.ipynb` (see `cnn1.rs` for the
//! cell markers). Run it as a program with `cargo run --release --example
//! notebook_beyond` (from the repository; `SLAF_HE_PROFILE=quick` for minutes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

fn main() {
    // %% md
    // # Beyond the paper: SLAF on Fashion-MNIST and on deeper CNNs
    //
    // P1 evaluates SLAF on MNIST with two shallow networks. This notebook asks what a reader asks next:
    //
    // 1. Does SLAF's advantage over x² grow on a harder data set (Fashion-MNIST), or on a deeper network?
    // 2. Which polynomial degree pays for its extra CKKS level?
    // 3. What does each additional activation layer cost in accuracy, depth and time?
    //
    // The grid: MNIST and Fashion-MNIST × CNN1, CNN2, `cnn3` (two convolutions, three activations) and `cnn4` (cnn3 plus one dense layer and a fourth activation) × ReLU (plaintext only), x², SLAF of degree 2, 3 and 4, and SLAF-P. Every cell trains over several seeds and runs its first seed encrypted with the planner's automatic 128-bit parameters. Every cell is a call into `slaf_he::experiments::beyond`, the same functions `slaf-he reproduce --only beyond` runs.
    // %% setup
    // %%
    use slaf_he::experiments::NotebookEnv;
    use slaf_he::experiments::beyond as by;
    use slaf_he::report::{show_dataframe, show_markdown};
    // %%
    let env = NotebookEnv::open().expect("notebook environment");
    println!("{env}");
    // %% md
    // ## The grid and the protocol
    //
    // The full profile is the study as committed under `results/beyond/` (hours on 2 cores); the quick profile runs a smaller grid on a subset in minutes, so its accuracies are far below the full ones by design.
    // %%
    let plan = by::beyond_plan(env.profile);
    println!("{plan}");
    // %% md
    // ## Running the cells
    //
    // Each cell is stored as one JSON file (`results/beyond/cells/` in the full profile) and reused when its protocol matches. In the full profile this cell only loads the committed cells (checked against the plan; the hours of training and encryption belong to `slaf-he reproduce --full --only beyond`); a cell whose encrypted runs are still to come shows empty encrypted columns. The other profiles run their cells here, and an interrupted run resumes where it stopped.
    // %%
    let cells = by::run_beyond_for_notebook(&env, &plan).expect("the study");
    // %% md
    // ## The table
    //
    // Plaintext accuracy is the mean ± sd over the seeds; the encrypted columns are the first seed's: accuracy and agreement over the batched images, latency of the per-image engine, cost per image of the batched engine, and the parameters and depth the planner chose.
    // %%
    show_dataframe(&by::beyond_table(&cells).expect("table"), 2);
    // %% md
    // ## Accuracy against time per image
    //
    // One marker per encrypted cell, coloured by network and labelled with its activation; the line is the Pareto front (no other cell is both faster and more accurate).
    // %%
    let fig = by::pareto_figure(&cells, "mnist").expect("figure");
    fig.save_and_show(&env.figs, "beyond_pareto_mnist")
        .expect("figure");
    // %%
    let fig = by::pareto_figure(&cells, "fashion-mnist").expect("figure");
    fig.save_and_show(&env.figs, "beyond_pareto_fashion_mnist")
        .expect("figure");
    // %% md
    // ## Accuracy against SLAF degree
    //
    // x² (a fixed degree-2 polynomial) is the marker at degree 2.
    // %%
    let fig = by::degree_figure(&cells).expect("figure");
    fig.save_and_show(&env.figs, "beyond_accuracy_vs_degree")
        .expect("figure");
    // %% md
    // ## What the deeper nets learn
    //
    // One row per network, one panel per activation layer: ReLU and the learned SLAF of every degree, each over the input range its run observed on the training set.
    // %%
    let fig = by::deep_activations_figure(&cells, "mnist", &["cnn3", "cnn4"]).expect("figure");
    fig.save_and_show(&env.figs, "beyond_activations_mnist")
        .expect("figure");
    // %%
    let fig = by::deep_activations_figure(&cells, "fashion-mnist", &["cnn3", "cnn4"]);
    fig.expect("figure")
        .save_and_show(&env.figs, "beyond_activations_fashion_mnist")
        .expect("figure");
    // %% md
    // ## The three questions
    // %%
    show_markdown(&by::findings_markdown(&cells));
    // %% md
    // ## Disagreements
    //
    // Every run with an image whose encrypted argmax differs from the plaintext one: how many, the largest logit error, and each learned layer's observed input range with its polynomial's largest slope there (how much it amplifies an error). Then the first flips with the plaintext margin (top-1 minus top-2 logit) and the logit error there: a near-tie where the margin is below twice an error under one logit, precision loss where the error reaches a whole logit.
    // %%
    show_markdown(&by::disagreements_markdown(&cells));
}
