"""Writes the four evcxr notebooks of this folder from the cell lists below.

The notebooks are thin stories over `slaf_he` functions; keeping their
sources here keeps the set-up cells identical in all four. After editing,
regenerate and execute them (outputs are stored in the .ipynb files):

    python3 notebooks/make_notebooks.py
    SLAF_HE_PROFILE=full bash notebooks/run.sh --write

Usage: python3 make_notebooks.py [--check]
  --check   exit 1 if a notebook's cell sources differ from this file
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

SETUP = [
    ("code", ":cache 4000"),
    ("code", ":opt 2"),
    (
        "code",
        "// A panic (or a failed .expect) must fail the cell, also in headless runs.\n"
        'std::panic::set_hook(Box::new(|i| { eprintln!("{i}"); std::process::exit(101); }));',
    ),
    ("code", ':dep slaf-he = { path = ".." }'),
    (
        "code",
        "// Profile: SLAF_HE_PROFILE=quick|full (full by default; CI runs quick).\n"
        "let profile = std::env::var(\"SLAF_HE_PROFILE\").unwrap_or_else(|_| \"full\".to_string());\n"
        "let quick = profile == \"quick\";\n"
        "// Paths: the kernel runs in notebooks/, the repository is its parent.\n"
        "let repo = std::path::PathBuf::from(\"..\");\n"
        "let figs = repo.join(\"results\").join(\"notebooks\");\n"
        "std::fs::create_dir_all(&figs).expect(\"cannot create results/notebooks\");\n"
        "println!(\"profile: {profile}; figures are also written to {}\", figs.display());",
    ),
]

SETUP_MD = (
    "**Set-up.** The first cells are the same in every notebook: evcxr's compiled-dependency "
    "cache, optimised builds, a panic hook (so a failed `.expect` fails the cell), the crate "
    "itself as the only dependency (`plotters`, `polars` and `ndarray` are re-exported by it), "
    "and the profile. `SLAF_HE_PROFILE=quick` (used by CI) trains for 1-2 epochs and encrypts "
    "a few images; the default `full` reuses the 30-epoch models committed under "
    "`results/training/` (through the `reproduce` cache) and runs the papers' protocol."
)

# ---------------------------------------------------------------------------
# Shared pieces of the two CNN notebooks.


def training_cells(arch, figprefix, variants, act_figs, extra=""):
    return [
        (
            "code",
            f"""use slaf_he::nn::cache::{{default_cache_dir, seed_from_dir, train_cached, Provenance}};
use slaf_he::nn::{{Arch, TrainConfig, Variant, WeightsFile}};
let epochs = if quick {{ {1 if arch != "Cnn1" else 2} }} else {{ 30 }};
let mut plan: Vec<TrainConfig> = [{", ".join("Variant::" + v for v in variants)}]
    .iter()
    .map(|&v| TrainConfig::with_epochs(Arch::{arch}, v, epochs))
    .collect();{extra}
let cache = default_cache_dir();
// Models committed under results/training/ seed the cache; the rest is trained now.
for p in seed_from_dir(&mnist, &plan, &repo.join("results").join("training"), &cache).expect("seeding the model cache") {{
    println!("cache seeded from {{}}", p.display());
}}
let mut trained: Vec<WeightsFile> = Vec::new();
for cfg in &plan {{
    let (w, prov) = train_cached(&mnist, cfg, &cache, false, true, &mut |_| ()).expect("training");
    println!(
        "{{:<10}} {{:<6}} {{:>2}} epochs: test accuracy {{:.2}} % ({{}})",
        cfg.model.name, cfg.variant.name(), cfg.epochs, 100.0 * w.report.test.overall,
        match prov {{ Provenance::Cached => "cached".to_string(), Provenance::Trained => format!("trained in {{:.1}} s", w.report.train_seconds) }}
    );
    trained.push(w);
}}""",
        ),
        ("markdown", "Test accuracy beside the paper's PyTorch reference (P1), and the largest activation input seen in training and test (it sets the approximation interval and the CKKS headroom)."),
        (
            "code",
            """use slaf_he::report::polars::prelude::{Column, DataFrame};
use slaf_he::report::{show_dataframe, Figure, LineChart, Series};
// A block: the closure `key` cannot outlive the cell.
{
let key = |w: &WeightsFile| format!("ref.acc.{}.{}", w.config.model.name.replace('-', "_"), w.config.variant.name().replace('-', "_"));
let acc_table = DataFrame::new_infer_height(vec![
    Column::new("model".into(), trained.iter().map(|w| w.config.model.name.as_str()).collect::<Vec<_>>()),
    Column::new("act".into(), trained.iter().map(|w| w.config.variant.name()).collect::<Vec<_>>()),
    Column::new("epochs".into(), trained.iter().map(|w| w.config.epochs as u32).collect::<Vec<_>>()),
    Column::new("test_accuracy_pct".into(), trained.iter().map(|w| 100.0 * w.report.test.overall).collect::<Vec<_>>()),
    Column::new("paper_pct".into(), trained.iter().map(|w| slaf_he::report::paper::reference(&key(w)).map(|r| r.paper)).collect::<Vec<_>>()),
    Column::new("max_abs_input_act1".into(), trained.iter().map(|w| w.report.max_abs_input.first().map(|m| f64::from(m.overall()))).collect::<Vec<_>>()),
    Column::new("max_abs_input_act2".into(), trained.iter().map(|w| w.report.max_abs_input.get(1).map(|m| f64::from(m.overall()))).collect::<Vec<_>>()),
]).expect("accuracy table");
show_dataframe(&acc_table, 4);
}""",
        ),
        (
            "code",
            f"""// Learning curves: test accuracy after each epoch (SLAF-R: both phases).
Figure::from(LineChart {{
    title: "Test accuracy per epoch".into(),
    x_label: "epoch".into(),
    y_label: "test accuracy (%)".into(),
    series: trained.iter().map(|w| Series::new(
        format!("{{}} {{}}", w.config.model.name, w.config.variant.name()),
        w.report.epochs.iter().enumerate().map(|(i, e)| ((i + 1) as f64, 100.0 * e.test_accuracy)).collect(),
    )).collect(),
    ..Default::default()
}}).save_and_show(&figs, "{figprefix}_learning_curves").expect("figure");""",
        ),
        (
            "code",
            """// Per-class test accuracy (%).
let mut cols = vec![Column::new("digit".into(), (0u32..10).collect::<Vec<_>>())];
for w in &trained {
    cols.push(Column::new(
        format!("{} {}", w.config.model.name, w.config.variant.name()).into(),
        w.report.test.per_class.iter().map(|a| 100.0 * a).collect::<Vec<_>>(),
    ));
}
show_dataframe(&DataFrame::new_infer_height(cols).expect("per-class table"), 4);""",
        ),
        ("markdown", "The learned activations: for every polynomial variant, act1 and act2 in inference form (SLAF-P expanded to its polynomial), each over the largest input that layer saw, against ReLU."),
        (
            "code",
            """/// The trained model of `arch` with activation `v`.
fn pick(trained: &[WeightsFile], arch: Arch, v: Variant) -> WeightsFile {
    trained.iter().find(|w| w.config.model.name == arch.name() && w.config.variant == v).expect("model in the training plan").clone()
}
/// act1 and act2 of a polynomial model (inference form) against ReLU, each
/// over the largest input its layer saw in training and test.
fn activations_figure(w: &WeightsFile) -> Figure {
    let form = InferenceModel::from_model(&w.to_model().expect("model")).expect("inference form");
    let ranges: Vec<f64> = w.report.max_abs_input.iter().map(|m| f64::from(m.overall())).collect();
    let grid = |r: f64| (0..=400).map(move |i| -r + 2.0 * r * i as f64 / 400.0);
    let r_max = ranges.iter().copied().fold(1.0f64, f64::max);
    let mut series = vec![Series::new("ReLU", grid(r_max).map(|x| (x, x.max(0.0))).collect())];
    for (k, act) in form.acts().into_iter().enumerate() {
        let r = ranges.get(k).copied().unwrap_or(r_max);
        series.push(Series::new(format!("act{} on [-{r:.1}, {r:.1}]", k + 1), grid(r).map(|x| (x, act.apply(x))).collect()));
    }
    Figure::from(LineChart {
        title: format!("{}-{}: learned activations vs ReLU on the observed inputs", w.config.model.name, w.config.variant.name()),
        x_label: "input".into(),
        y_label: "output".into(),
        series,
        ..Default::default()
    })
}""",
        ),
        *[
            (
                "code",
                f'activations_figure(&pick(&trained, Arch::{a}, Variant::{v})).save_and_show(&figs, "{a.lower()}_{stem}_activations").expect("figure");',
            )
            for a, v, stem in act_figs
        ],
    ]


def lr_range_cell(arch, label, limit, stem):
    """The LR range test of `arch` with ReLU (a subset in the quick profile)."""
    return (
        "code",
        f"""let mut lr_cfg = TrainConfig::new(Arch::{arch}, Variant::Relu);
if quick {{ lr_cfg.limit_train = Some({limit}); }}
let lr_points = lr_find(&mnist, &lr_cfg, 1e-6, 10.0, 0.99).expect("LR range test");
Figure::from(LineChart {{
    title: "{label} (ReLU): learning-rate range test".into(),
    x_label: "learning rate (log scale)".into(),
    y_label: "smoothed training loss".into(),
    series: vec![Series::new("loss", lr_points.iter().map(|p| (p.lr, p.loss)).collect())],
    log_x: true,
    ..Default::default()
}}).save_and_show(&figs, "{stem}").expect("figure");""",
    )


CKKS_CELLS = [
    ("markdown", "## CKKS parameters and their security check\n\nThe presets of SPEC §5 are validated against the HE-standard 128-bit table (ternary secrets) when they are built; a chain above the bound is refused with a typed error unless the caller opts out explicitly."),
    (
        "code",
        """use slaf_he::ckks::{presets, CkksParameters, CkksParametersLiteral};
use slaf_he::ckks::params::HE_STANDARD_128;
for (name, p) in [("CNN1-X2", presets::cnn1_x2()), ("SLAF", presets::slaf()), ("SLAF-P", presets::slaf_p())] {
    println!("{name:<8} {}", p.describe());
}
println!("HE standard, 128-bit, max log2(QP) per N: {:?}", HE_STANDARD_128);
let too_long = CkksParameters::new(CkksParametersLiteral {
    log_n: 13, coeff_mod_bit_sizes: vec![60; 5], scale_bits: 40, allow_insecure: false,
});
println!("N=8192 with [60 x5] (300 bits): {}", too_long.err().map(|e| e.to_string()).expect("must be refused"));""",
    ),
]


LABELS = {"slaf": "CNN2-SLAF", "x2c": "CryptoNets-X2"}  # runs skipped in the quick profile


def he_cells(runs, figprefix, ratio=False):
    """runs: list of (variable, mode, quick_images, full_images); 0 quick images = skipped in quick."""
    cells = [
        ("markdown", "## Encrypted inference\n\nOur CKKS on the first test images: per image (the original's design: one image per ciphertext, rotations) and batched (one image per slot, no rotations). Agreement = encrypted argmax equals the plaintext argmax of the same inference-form model. The per-image runs also decrypt after every layer of their first image to measure the precision."),
        (
            "code",
            """/// Encrypt the first `images` test images, run the model under CKKS, show the summary.
fn he_run(w: &WeightsFile, mode: Mode, images: usize) -> InferenceSummary {
    let mut req = InferenceRequest::new(ModelSource::Weights(Box::new(w.clone())));
    req.images = Some(images);
    req.mode = mode;
    req.seed = Some(slaf_he::ckks::KeySeed::for_tests(slaf_he::data::DEFAULT_SEED)); // seeded keys: for tests only
    req.precision = mode == Mode::PerImage;
    let out = run(&req).expect("encrypted inference");
    show_markdown(&summary_markdown(&out.summary));
    out.summary
}
let mut he_runs: Vec<InferenceSummary> = Vec::new();""",
        ),
    ]
    for var, mode, qn, fn in runs:
        if qn == 0:
            src = (
                "if quick {\n"
                f'    println!("{LABELS[var]} {mode.lower()}: skipped in the quick profile (one batch of N/2 images costs minutes on 2 cores)");\n'
                "} else {\n"
                f"    he_runs.push(he_run(&{var}, Mode::{mode}, {fn}));\n"
                "}"
            )
        else:
            src = f"he_runs.push(he_run(&{var}, Mode::{mode}, if quick {{ {qn} }} else {{ {fn} }}));"
        cells.append(("code", src))
    cells += [
        (
            "code",
            "// Time per image and stage (batched: amortised over the images of a ciphertext).\n"
            f"stage_times_figure(&he_runs).save_and_show(&figs, \"{figprefix}_he_stage_times\").expect(\"figure\");",
        ),
        (
            "code",
            "// The table `slaf-he reproduce` writes to results/inference/summary.csv, main columns.\n"
            "let he_table = inference_table(&he_runs).expect(\"inference table\")\n"
            "    .select([\"model\", \"act\", \"mode\", \"images\", \"plain_accuracy_pct\", \"he_accuracy_pct\", \"agreement_pct\", \"max_logit_error\", \"ms_per_image\", \"params\"])\n"
            "    .expect(\"columns\");\n"
            "show_dataframe(&he_table, 4);",
        ),
    ]
    if ratio:
        cells.append(
            (
                "code",
                "// P1: \"6.26x faster than CryptoNets\". Here both run through the same pipeline.\n"
                "for r in cryptonets_ratios(&he_runs) {\n"
                "    println!(\"{r}\");\n"
                "}",
            )
        )
    return cells


DATA_CELLS = [
    ("markdown", "## Data\n\nMNIST from the repository's `data/mnist/`, SHA-256 verified on load; pixels in [0, 1], no normalisation."),
    (
        "code",
        """use slaf_he::data::Mnist;
let mnist = Mnist::load(repo.join("data").join("mnist")).expect("MNIST (checksums are verified on load)");
println!("train: {} images, test: {} images", mnist.train.len(), mnist.test.len());
println!("test images per digit: {:?}", mnist.test.class_counts());""",
    ),
]


def cnn1():
    cells = [
        ("markdown", "# CNN1 with self-learning activation functions under CKKS\n\nMirrors the original `CNN1_HE_SLAF.ipynb` (Pulido-Gaytan & Tchernykh, PLOS ONE 2024): CNN1 = conv 7x7 stride 3 (1→4 channels, 4x8x8 = 256 features), act1, linear 256→64, act2, linear 64→10, trained with ReLU, X2, SLAF, SLAF-R and SLAF-P, then evaluated on encrypted images with our RNS-CKKS. Every number below is computed by `slaf_he` functions; the same runs are available from the command line (`slaf-he reproduce`)."),
        ("markdown", SETUP_MD),
        *SETUP,
        *DATA_CELLS,
        (
            "code",
            """slaf_he::report::digits_grid(
    "The first 16 MNIST training digits",
    (0..16).map(|i| mnist.train.image(i).expect("image").to_vec()).collect(),
    28,
    (0..16).map(|i| format!("label {}", mnist.train.labels[i])).collect(),
).save_and_show(&figs, "cnn1_digits").expect("figure");""",
        ),
        ("markdown", "## The model\n\nCNN1's parameters (name and shape of every tensor), built with the SLAF activation."),
        (
            "code",
            """use slaf_he::nn::{Arch, Model, ActSpec};
let m = Model::new(Arch::Cnn1, &ActSpec::Slaf { degree: 3, init: None }, slaf_he::data::DEFAULT_SEED, false);
let mut total = 0;
for t in m.state() {
    let n: usize = t.shape.iter().product();
    total += n;
    println!("{:<28} {:?}", t.name, t.shape);
}
println!("{total} trainable parameters (SLAF coefficients included)");""",
        ),
        ("markdown", "## Learning-rate range test\n\nOne epoch with the learning rate growing geometrically from 1e-6 to 10 (SGD, momentum 0.95), smoothed loss; the one-cycle schedule's max_lr = 0.2 sits before the minimum."),
        lr_range_cell("Cnn1", "CNN1", "12_800", "cnn1_lr_range"),
        ("markdown", "## Training\n\nSGD with PyTorch one-cycle semantics (max_lr 0.2), batch 64, seed 73; SLAF-R trains with ReLU, swaps in SLAFs and retrains only their coefficients with every other weight frozen."),
        *training_cells(
            "Cnn1",
            "cnn1",
            ["Relu", "X2", "Slaf", "SlafR", "SlafP"],
            [("Cnn1", v, st) for v, st in [("X2", "x2"), ("Slaf", "slaf"), ("SlafR", "slaf_r"), ("SlafP", "slaf_p")]],
        ),
        *CKKS_CELLS,
        (
            "code",
            """use slaf_he::he_nn::plan::CircuitPlan;
let x2 = pick(&trained, Arch::Cnn1, Variant::X2);
let slaf = pick(&trained, Arch::Cnn1, Variant::Slaf);
for w in [&x2, &slaf] {
    let plan = CircuitPlan::from_weights(w).expect("circuit plan");
    println!("CNN1-{}: depth {} ({})", w.config.variant.name(), plan.depth, plan.breakdown());
}""",
        ),
        *he_cells(
            [
                ("x2", "PerImage", 3, 20),
                ("x2", "Batched", 256, 10000),
                ("slaf", "PerImage", 2, 20),
                ("slaf", "Batched", 256, 10000),
            ],
            "cnn1",
        ),
    ]
    return cells


def cnn2():
    extra = "\nplan.push(TrainConfig::with_epochs(Arch::Cryptonets, Variant::X2, epochs));"
    cells = [
        ("markdown", "# CNN2 and the CryptoNets baseline under CKKS\n\nMirrors the original `CNN2_HE_SLAF.ipynb`: CNN2 = conv 5x5 stride 2 padding 1 (1→20 channels, 3380 features) + BatchNorm2d, act1, avg-pool 3/2, conv 5x5 (20→50), avg-pool 3/2, linear 200→100 + BatchNorm1d, act2, linear 100→10; the CryptoNets-X2 baseline for the time comparison. For inference the BatchNorms are folded and the linear block (pool → conv2 → pool → fc1 → BN1d) collapses into one 3380→100 matrix, verified numerically below."),
        ("markdown", SETUP_MD),
        *SETUP,
        *DATA_CELLS,
        ("markdown", "## Learning-rate range test"),
        lr_range_cell("Cnn2", "CNN2", "6_400", "cnn2_lr_range"),
        ("markdown", "## Training\n\nCNN2 with every activation variant, and CryptoNets-X2. SLAF-R trains with ReLU, swaps in SLAFs and retrains only their coefficients with every other weight frozen; BatchNorm keeps normalising with batch statistics meanwhile (PyTorch's train mode with frozen parameters), so BatchNorm1d re-centres what the new SLAFs produce."),
        *training_cells(
            "Cnn2",
            "cnn2",
            ["Relu", "X2", "Slaf", "SlafR", "SlafP"],
            [("Cnn2", v, st) for v, st in [("X2", "x2"), ("Slaf", "slaf"), ("SlafR", "slaf_r"), ("SlafP", "slaf_p")]]
            + [("Cryptonets", "X2", "x2")],
            extra,
        ),
        ("markdown", "## BatchNorm folding and the linear collapse, verified\n\nThe training model in evaluation mode (f32, layer by layer) against the inference form (f64, BN folded, one 3380→100 matrix) on the first 64 test images."),
        (
            "code",
            """use slaf_he::nn::{eval_logits, InferenceModel};
let slaf = pick(&trained, Arch::Cnn2, Variant::Slaf);
let x2c = pick(&trained, Arch::Cryptonets, Variant::X2);
for w in [&slaf, &x2c] {
    let mut model = w.to_model().expect("model");
    let form = InferenceModel::from_model(&model).expect("inference form");
    let x = mnist.test.images.slice(slaf_he::ndarray::s![0..64, ..]).to_owned();
    let reference = eval_logits(&mut model, &x);
    let (mut max_diff, mut max_logit) = (0.0f64, 0.0f64);
    for i in 0..64 {
        let img: Vec<f64> = x.row(i).iter().map(|&v| f64::from(v)).collect();
        let got = form.forward(&img).expect("forward");
        for (a, b) in got.iter().zip(reference.row(i).iter()) {
            max_diff = max_diff.max((a - f64::from(*b)).abs());
            max_logit = max_logit.max(f64::from(*b).abs());
        }
    }
    println!("{}-{}: collapsed dense1 {}x{}; max |logit difference| {max_diff:.2e} (largest logit {max_logit:.1}, relative {:.2e})",
        w.config.model.name, w.config.variant.name(), form.paper_form().expect("paper form").dense1.rows, form.paper_form().expect("paper form").dense1.cols, max_diff / max_logit);
    assert!(max_diff <= 1e-4 * max_logit.max(1.0), "collapse changed the logits");
}""",
        ),
        *CKKS_CELLS,
        (
            "code",
            """use slaf_he::he_nn::plan::CircuitPlan;
for w in [&slaf, &x2c] {
    let plan = CircuitPlan::from_weights(w).expect("circuit plan");
    println!("{}-{}: depth {} ({})", w.config.model.name, w.config.variant.name(), plan.depth, plan.breakdown());
}""",
        ),
        *he_cells(
            [
                ("slaf", "PerImage", 2, 10),
                ("slaf", "Batched", 0, 10000),
                ("x2c", "PerImage", 2, 10),
                ("x2c", "Batched", 0, 10000),
            ],
            "cnn2",
            ratio=True,
        ),
    ]
    return cells


METHODS = [
    "LeastSquares",
    "Composition",
    "Newton",
    "Chebyshev",
    "ChebyshevPublished",
    "Fourier",
    "Minimax",
    "CompositeMinimax",
]


def study_figure(stem, saved_as):
    return (
        "code",
        f'study.figures.iter().find(|(s, _)| s == "{stem}").expect("figure {stem}").1'
        f'.save_and_show(&figs, "{saved_as}").expect("figure");',
    )


def comparison():
    return [
        ("markdown", "# Performance and accuracy of sign-function approximations\n\nMirrors the original `Performance_accuracy_comparison_approaches.ipynb` (Pulido-Gaytan et al., IEEE Access 2023): five degree-9 approximations of sign(x) on [-1, 1] (least squares, composition f∘g, Newton f∘f, Chebyshev, Fourier), plus what the original lacked: minimax (Remez) and composite minimax polynomials, and an exact encrypted comparison with TFHE-rs. Metrics on 1000 evenly spaced points; encrypted evaluation with our CKKS at the original's parameters (N=8192, [31, 26x6, 31], scale 2^26)."),
        ("markdown", SETUP_MD),
        *SETUP,
        (
            "code",
            """use slaf_he::approx::methods::sign;
use slaf_he::approx::{Approximation, Method};
use slaf_he::report::{show_dataframe, show_markdown, Figure, LineChart, Series};
use slaf_he::study::{compare, CompareOptions};""",
        ),
        ("markdown", "## The study\n\nOne call builds every approximation, measures its metrics and generation time, evaluates it on an encrypted vector (mean over the runs) and runs the TFHE-rs comparison."),
        (
            "code",
            """let opts = CompareOptions { runs: if quick { 3 } else { 30 }, tfhe_batch: Some(if quick { 4 } else { 32 }), ..Default::default() };
let study = compare(&opts, &mut |line: &str| println!("{line}")).expect("comparison study");""",
        ),
        ("markdown", "## Each approximation over sign(x)"),
        (
            "code",
            """/// sign(x) and one approximation over [-1, 1].
fn method_figure(approximations: &[Approximation], m: Method) -> Figure {
    let a = approximations.iter().find(|a| a.method == m).expect("method in the study");
    let xs = slaf_he::approx::poly::linspace(-1.0, 1.0, 801);
    Figure::from(LineChart {
        title: format!("{} ({} basis, degree {}, depth {})", a.method.name(), a.basis(), a.degree(), a.depth()),
        x_label: "x".into(),
        y_label: "p(x)".into(),
        series: vec![
            Series::new("sign", xs.iter().map(|&x| (x, sign(x))).collect()),
            Series::new(a.method.name(), xs.iter().map(|&x| (x, a.eval(x))).collect()),
        ],
        y_range: Some((-1.4, 1.4)),
        ..Default::default()
    })
}""",
        ),
        *[
            (
                "code",
                f"method_figure(&study.approximations, Method::{m}).save_and_show(&figs, &format!(\"comparison_{{}}\", Method::{m}.name())).expect(\"figure\");",
            )
            for m in METHODS
        ],
        ("markdown", "All of them together:"),
        study_figure("approximations", "comparison_all"),
        ("markdown", "## Metrics\n\nR² (squared Pearson correlation), chi-square, L1/L2/L∞ of |sign − p| and relative to the norms of sign (%); generation time (ms), encrypted evaluation time (ms), the largest |decrypted − p| over the 1000 points, and the decrypted p(enc(1) − enc(0.5)) as the original printed it. The `tfhe_exact` row is the exact comparator: its error is 0 by construction, its generation time is key generation and its evaluation time one encrypted comparison."),
        ("code", "show_dataframe(&study.metrics, 5);"),
        study_figure("generation_time", "comparison_generation_time"),
        study_figure("he_eval_time", "comparison_he_eval_time"),
        study_figure("rel_l1", "comparison_rel_l1"),
        ("markdown", "## The original's defects beside the correct values\n\nThe original dropped the x⁹ term (least squares, composition, Newton) and evaluated the Chebyshev coefficients as power-basis ones; the table shows p(0.5) computed correctly and as published, and the encrypted evaluation of the as-published polynomial."),
        ("code", "show_dataframe(&study.as_published, 5);"),
        (
            "code",
            """// Notes: Fourier frequency and its conversion for CKKS, minimax eps, TFHE timings.
show_markdown(study.details.split("\\n## Metrics").next().unwrap_or(""));""",
        ),
    ]


def interval():
    return [
        ("markdown", "# Interval-based approximation analysis\n\nMirrors the original `Interval_based_approximation_analysis.ipynb`: how the error of each sign approximation falls when the points near 0 (|x| < eps) are dropped, for eps = 0.00, 0.01, …, 0.50. Relative norms still divide by the full-range norms of sign; the Fourier series is refitted on each reduced set."),
        ("markdown", SETUP_MD),
        *SETUP,
        (
            "code",
            """use slaf_he::report::polars::prelude::{Column, DataFrame};
use slaf_he::study::interval;
let study = interval(slaf_he::approx::methods::DEFAULT_MINIMAX_EPS).expect("interval analysis");
println!("{} rows ({} eps values x {} methods)", study.rows.len(), slaf_he::approx::interval::eps_values().len(), slaf_he::study::PLOTTED.len());""",
        ),
        ("markdown", "## |sign − p| over [-1, 1]\n\nThe error concentrates around the discontinuity at 0 (and, for Fourier, at the ends of the interval)."),
        study_figure("abs_error", "interval_abs_error"),
        ("markdown", "## Metrics versus eps"),
        study_figure("rel_l1_vs_eps", "interval_rel_l1_vs_eps"),
        study_figure("r2_vs_eps", "interval_r2_vs_eps"),
        study_figure("linf_vs_eps", "interval_linf_vs_eps"),
        ("markdown", "## At the reference points of the paper\n\nRelative L1 (%) at eps = 0, 0.1, 0.3, 0.5, the paper's value beside ours, then every metric at those points."),
        ("code", "slaf_he::report::show_markdown(&study.reference_points);"),
        (
            "code",
            """// A block: `picked` borrows `study`, so it must not outlive the cell.
{
let picked: Vec<&slaf_he::approx::IntervalRow> = study.rows.iter()
    .filter(|r| [0.0, 0.1, 0.3, 0.5].iter().any(|e| (r.eps - e).abs() < 1e-9))
    .collect();
let table = DataFrame::new_infer_height(vec![
    Column::new("eps".into(), picked.iter().map(|r| r.eps).collect::<Vec<_>>()),
    Column::new("method".into(), picked.iter().map(|r| r.method.name()).collect::<Vec<_>>()),
    Column::new("r2".into(), picked.iter().map(|r| r.metrics.r2).collect::<Vec<_>>()),
    Column::new("l1".into(), picked.iter().map(|r| r.metrics.l1).collect::<Vec<_>>()),
    Column::new("l2".into(), picked.iter().map(|r| r.metrics.l2).collect::<Vec<_>>()),
    Column::new("linf".into(), picked.iter().map(|r| r.metrics.linf).collect::<Vec<_>>()),
    Column::new("rel_l1_pct".into(), picked.iter().map(|r| r.metrics.rel_l1_pct).collect::<Vec<_>>()),
    Column::new("rel_l2_pct".into(), picked.iter().map(|r| r.metrics.rel_l2_pct).collect::<Vec<_>>()),
    Column::new("rel_linf_pct".into(), picked.iter().map(|r| r.metrics.rel_linf_pct).collect::<Vec<_>>()),
]).expect("table");
slaf_he::report::show_dataframe(&table, 4);
}""",
        ),
    ]


CNN_IMPORTS = """// Everything the CNN notebooks use, imported once.
use slaf_he::ckks::params::HE_STANDARD_128;
use slaf_he::ckks::{presets, CkksParameters, CkksParametersLiteral};
use slaf_he::data::Mnist;
use slaf_he::he_nn::plan::CircuitPlan;
use slaf_he::he_nn::run::{run, summary_markdown, InferenceRequest, InferenceSummary, ModelSource};
use slaf_he::he_nn::Mode;
use slaf_he::nn::cache::{default_cache_dir, seed_from_dir, train_cached, Provenance};
use slaf_he::nn::train::eval_logits;
use slaf_he::nn::{lr_find, ActSpec, Arch, InferenceModel, Model, TrainConfig, Variant, WeightsFile};
use slaf_he::report::polars::prelude::{Column, DataFrame};
use slaf_he::report::{show_dataframe, show_markdown, Figure, LineChart, Series};
use slaf_he::study::{cryptonets_ratios, inference_table, stage_times_figure};"""


def with_imports(make):
    """CNN notebooks: one imports cell after the set-up, no `use` elsewhere."""

    def inner():
        cells = []
        for kind, src in make():
            if kind == "code" and not src.startswith(":"):
                src = "\n".join(l for l in src.split("\n") if not l.startswith("use "))
            cells.append((kind, src))
        at = max(i for i, (k, s) in enumerate(cells) if s.startswith(":dep")) + 2
        cells.insert(at, ("code", CNN_IMPORTS))
        return cells

    return inner


NOTEBOOKS = {
    "CNN1_HE_SLAF.ipynb": with_imports(cnn1),
    "CNN2_HE_SLAF.ipynb": with_imports(cnn2),
    "Performance_accuracy_comparison_approaches.ipynb": comparison,
    "Interval_based_approximation_analysis.ipynb": interval,
}


def cell(kind, src):
    c = {"cell_type": kind, "metadata": {}, "source": src.splitlines(keepends=True)}
    if kind == "code":
        c["execution_count"] = None
        c["outputs"] = []
    return c


def notebook(cells):
    return {
        "cells": [cell(k, s) for k, s in cells],
        "metadata": {
            "kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"},
            "language_info": {
                "codemirror_mode": "rust",
                "file_extension": ".rs",
                "mimetype": "text/rust",
                "name": "Rust",
                "pygment_lexer": "rust",
                "version": "",
            },
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def sources(nb):
    return [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]


def main(argv):
    check = "--check" in argv
    stale = []
    for name, make in NOTEBOOKS.items():
        nb = notebook(make())
        path = HERE / name
        if check:
            old = json.loads(path.read_text()) if path.exists() else {"cells": []}
            if sources(old) != sources(nb):
                stale.append(name)
            continue
        for i, c in enumerate(nb["cells"]):
            c["id"] = f"c{i:03d}"
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {path}")
    if stale:
        print("notebooks differ from make_notebooks.py: " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
