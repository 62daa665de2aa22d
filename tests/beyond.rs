//! The beyond-the-paper study (`experiments::beyond`): the tiny profile end
//! to end through `slaf-he reproduce --only beyond` (cells stored, reused,
//! recomputed when their protocol changes), and the findings, Pareto front
//! and disagreement report on hand-made cells whose answers are known.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_he::experiments::beyond::{
    self as by, Act, CellResult, CellSignature, Disagreement, HeMeasure, LearnedAct,
};
use std::process::Command;

/// `slaf-he reproduce --profile tiny --only beyond` into `out` with the
/// model cache `cache`.
fn tiny(out: &std::path::Path, cache: &std::path::Path) -> std::process::Output {
    tiny_with(out, cache, &[])
}

fn tiny_with(
    out: &std::path::Path,
    cache: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_slaf-he"))
        .args([
            "reproduce",
            "--profile",
            "tiny",
            "--only",
            "beyond",
            "--out",
        ])
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .args(extra)
        .output()
        .expect("run")
}

/// The stdout of a run that must have succeeded (else its output, in the panic).
fn succeeded(o: std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

#[test]
fn encrypt_none_tables_the_grid_and_a_later_run_encrypts_it() {
    let out = tempfile::tempdir().expect("tmp");
    let cache = tempfile::tempdir().expect("tmp");
    let ok = succeeded;
    let first = ok(tiny_with(out.path(), cache.path(), &["--encrypt", "none"]));
    assert!(first.contains("networks [none]"), "{first}");
    let dir = out.path().join("beyond");
    let cells = by::load_beyond(&dir).expect("cells");
    assert_eq!(cells.len(), 2);
    assert!(
        cells
            .iter()
            .all(|c| c.batched.is_none() && c.test_accuracy_pct.len() == 2)
    );
    // Without the flag, the x2 cell is encrypted now and ReLU is reused.
    let second = ok(tiny_with(out.path(), cache.path(), &[]));
    assert_eq!(second.matches("(stored)").count(), 1, "{second}");
    let again = by::load_beyond(&dir).expect("cells");
    let x2 = again.iter().find(|c| c.act == "x2").expect("x2");
    assert_eq!(x2.batched.as_ref().expect("batched").agreement_pct, 100.0);
    // A later selection that leaves the x2 cell out keeps, never erases,
    // its stored encrypted runs.
    let third = ok(tiny_with(out.path(), cache.path(), &["--encrypt", "none"]));
    assert_eq!(third.matches("(stored)").count(), 2, "{third}");
    let kept = by::load_beyond(&dir).expect("cells");
    let x2_kept = kept.iter().find(|c| c.act == "x2").expect("x2");
    assert!(x2_kept.batched.is_some() && x2_kept.signature.encrypted);
    // The notebook's full profile loads stored cells, checked against the plan.
    let tiny_plan = by::beyond_plan(slaf_he::experiments::Profile::Tiny);
    assert_eq!(
        by::committed_cells(&tiny_plan, &dir)
            .expect("all stored")
            .len(),
        2
    );
    let relu = dir.join("cells").join("mnist-cnn1-relu.json");
    let text = std::fs::read_to_string(&relu).expect("cell");
    let mut c: CellResult = serde_json::from_str(&text).expect("json");
    c.signature.epochs = 7;
    std::fs::write(&relu, serde_json::to_string(&c).expect("json")).expect("write");
    let e = by::committed_cells(&tiny_plan, &dir)
        .expect_err("other protocol")
        .to_string();
    assert!(
        e.contains("mnist-cnn1-relu was stored under another protocol"),
        "{e}"
    );
    std::fs::remove_file(&relu).expect("rm");
    let e = by::committed_cells(&tiny_plan, &dir)
        .expect_err("missing")
        .to_string();
    assert!(
        e.contains("cell mnist-cnn1-relu is not stored (1 of 2 cells are)"),
        "{e}"
    );
    // A selection outside the plan is refused before any work.
    let bad = tiny_with(out.path(), cache.path(), &["--encrypt", "cnn9"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("no network \"cnn9\""),
        "{err}"
    );
}

#[test]
fn tiny_beyond_stage_stores_reuses_and_recomputes_cells() {
    let out = tempfile::tempdir().expect("tmp");
    let cache = tempfile::tempdir().expect("tmp");
    let run = || succeeded(tiny(out.path(), cache.path()));
    let first = run();
    assert_eq!(first.matches("(measured)").count(), 2, "{first}");
    let dir = out.path().join("beyond");
    let csv = std::fs::read_to_string(dir.join("beyond.csv")).expect("csv");
    assert_eq!(
        csv.lines().next().expect("header"),
        "dataset,net,act,act_layers,seeds,diverged,accuracy_mean_pct,accuracy_sd_pct,he_accuracy_pct,agreement_batched_pct,agreement_per_image_pct,ms_per_image,batched_ms_per_image,depth,params,max_logit_error"
    );
    assert_eq!(csv.lines().count(), 1 + 2, "relu and x2");
    let cells = by::load_beyond(&dir).expect("cells");
    assert_eq!(cells.len(), 2);
    let x2 = cells.iter().find(|c| c.act == "x2").expect("x2 cell");
    assert_eq!(x2.test_accuracy_pct.len(), 2, "two seeds");
    assert_ne!(
        x2.test_accuracy_pct[0], x2.test_accuracy_pct[1],
        "the seeds train different models"
    );
    let b = x2.batched.as_ref().expect("batched run");
    let p = x2.per_image.as_ref().expect("per-image run");
    assert_eq!((b.images, p.images), (16, 1));
    assert_eq!(b.agreement_pct, 100.0, "{:?}", b.disagreements);
    assert!(b.depth >= 4 && b.n >= 8192, "{b:?}");
    assert!(b.cpu.is_some() && b.threads >= 1);
    assert_eq!(x2.learned.len(), 2);
    assert_eq!(x2.learned[0].coeffs.as_deref(), Some(&[0.0, 0.0, 1.0][..]));
    let relu = cells.iter().find(|c| c.act == "relu").expect("relu cell");
    assert!(relu.batched.is_none() && relu.learned[0].coeffs.is_none());
    let md = std::fs::read_to_string(dir.join("beyond.md")).expect("md");
    assert!(
        md.contains("## Findings") && md.contains("agrees with its plaintext run"),
        "{md}"
    );
    assert!(
        md.contains("1-minute load average") && md.contains("over the 2 encrypted runs"),
        "the load of the encrypted runs is stated: {md}"
    );
    let png = std::fs::read(dir.join("pareto_mnist.png")).expect("png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // Second run: both cells come from their files.
    let second = run();
    assert_eq!(second.matches("(stored)").count(), 2, "{second}");
    // A cell stored under another protocol is measured again.
    let path = dir.join("cells").join("mnist-cnn1-relu.json");
    let mut c: CellResult =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("cell")).expect("json");
    c.signature.epochs = 7;
    std::fs::write(&path, serde_json::to_string(&c).expect("json")).expect("write");
    let third = run();
    assert!(
        third.contains("mnist-cnn1-relu") && third.contains("(measured)"),
        "{third}"
    );
    assert_eq!(third.matches("(stored)").count(), 1, "{third}");

    // On a new machine (no model cache) the seed records carry over: the
    // x2 cell is measured again from them, its encrypted seed retrained
    // and found identical to its record.
    let seeds: Vec<_> = std::fs::read_dir(dir.join("seeds"))
        .expect("seeds")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(seeds.len(), 4, "two cells × two seeds: {seeds:?}");
    std::fs::remove_dir_all(cache.path()).expect("rm cache");
    std::fs::remove_file(dir.join("cells").join("mnist-cnn1-x2.json")).expect("rm cell");
    let fourth = run();
    assert!(fourth.contains("(measured)"), "{fourth}");
    let again = by::load_beyond(&dir).expect("cells");
    let x2b = again.iter().find(|c| c.act == "x2").expect("x2 cell");
    assert_eq!(x2b.test_accuracy_pct, x2.test_accuracy_pct);
    assert_eq!(
        x2b.batched.as_ref().expect("batched").agreement_pct,
        b.agreement_pct
    );
    let models = std::fs::read_dir(cache.path()).expect("cache").count();
    assert_eq!(models, 1, "only the encrypted seed was retrained");

    // A record that the retrained model does not reproduce is an error.
    let rec_path = dir.join("seeds").join("mnist-cnn1-x2-s73.json");
    let mut rec: by::SeedRecord =
        serde_json::from_str(&std::fs::read_to_string(&rec_path).expect("rec")).expect("json");
    rec.test_accuracy_pct += 0.01;
    std::fs::write(&rec_path, serde_json::to_string(&rec).expect("json")).expect("write");
    std::fs::remove_dir_all(cache.path()).expect("rm cache");
    std::fs::remove_file(dir.join("cells").join("mnist-cnn1-x2.json")).expect("rm cell");
    let o = tiny(out.path(), cache.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("not reproducible"),
        "{err}"
    );
}

fn sig() -> CellSignature {
    CellSignature {
        seeds: vec![1, 2],
        epochs: 1,
        limit_train: None,
        limit_test: None,
        batched_images: None,
        per_image_images: 1,
        encrypted: true,
    }
}

fn he(acc: f64, ms: f64, depth: usize, n: usize) -> HeMeasure {
    HeMeasure {
        images: 100,
        plain_accuracy_pct: acc,
        he_accuracy_pct: acc,
        agreement_pct: 100.0,
        max_logit_error: 1e-3,
        ms_per_image: ms,
        setup_seconds: 1.0,
        n,
        total_bits: 300,
        params: format!("N={n}, [40, 26x8, 40] (288 bits), scale 2^26, 128-bit secure"),
        depth,
        depth_breakdown: String::new(),
        disagreements: vec![],
        threads: 2,
        load_average: Some(1.0),
        cpu: Some("test".into()),
        simd: None,
    }
}

fn cell(
    ds: &str,
    net: &str,
    act: Act,
    accs: [f64; 2],
    cost: Option<(f64, usize, usize)>,
) -> CellResult {
    let layers = if net == "cnn4" { 4 } else { 3 };
    CellResult {
        dataset: ds.into(),
        net: net.into(),
        act: act.name(),
        degree: act.degree(),
        act_layers: layers,
        signature: sig(),
        trained_seeds: vec![1, 2],
        test_accuracy_pct: accs.to_vec(),
        train_seconds: vec![1.0, 1.0],
        diverged: vec![],
        learned: (0..layers)
            .map(|_| LearnedAct {
                coeffs: Some(vec![0.0, 0.5, 0.25]),
                max_abs_input: 3.0,
            })
            .collect(),
        batched: cost.map(|(ms, d, n)| he(accs[0], ms / 100.0, d, n)),
        per_image: cost.map(|(ms, d, n)| he(accs[0], ms, d, n)),
    }
}

#[test]
fn findings_answer_the_three_questions_from_the_cells() {
    let cells = vec![
        cell(
            "mnist",
            "cnn3",
            Act::X2,
            [97.0, 97.2],
            Some((100.0, 7, 16384)),
        ),
        cell(
            "mnist",
            "cnn3",
            Act::Slaf(2),
            [97.5, 97.7],
            Some((120.0, 8, 16384)),
        ),
        cell(
            "mnist",
            "cnn3",
            Act::Slaf(3),
            [98.0, 98.2],
            Some((150.0, 10, 16384)),
        ),
        cell(
            "mnist",
            "cnn4",
            Act::X2,
            [96.0, 96.2],
            Some((130.0, 9, 16384)),
        ),
        cell(
            "mnist",
            "cnn4",
            Act::Slaf(3),
            [98.5, 98.7],
            Some((300.0, 13, 32768)),
        ),
        cell(
            "fashion-mnist",
            "cnn3",
            Act::X2,
            [88.0, 88.0],
            Some((100.0, 7, 16384)),
        ),
        cell(
            "fashion-mnist",
            "cnn3",
            Act::Slaf(3),
            [90.0, 90.0],
            Some((150.0, 10, 16384)),
        ),
    ];
    let md = by::findings_markdown(&cells);
    // Q1: SLAF-3 minus x²: cnn3 mnist +1.00, cnn4 mnist +2.50, cnn3 fashion +2.00.
    assert!(
        md.contains("| cnn3 | +1.00 (± 0.14) | +2.00 (± 0.00) |"),
        "{md}"
    );
    assert!(md.contains("| cnn4 | +2.50 (± 0.14) | — |"), "{md}");
    assert!(
        md.contains("mnist +1.75 pp, fashion-mnist +2.00 pp"),
        "{md}"
    );
    // Q2: 2 → 3 on cnn3 mnist: +0.50 pp, +2 levels, 1.25 × the time.
    assert!(
        md.contains("| mnist | cnn3 | 2 → 3 | +0.50 (± 0.14) | +2 | 1.25 |"),
        "{md}"
    );
    assert!(md.contains("In 1 of 1 steps"), "{md}");
    // Q3: cnn4 − cnn3 with SLAF-3 on MNIST: +0.50 pp, +3 levels, 2.00 ×, ring doubled.
    assert!(
        md.contains("| mnist | slaf3 | +0.50 (± 0.14) | +3 | 2.00 | 2.00 | 16384 → 32768 |"),
        "{md}"
    );
    assert!(
        md.contains("| mnist | x2 | -1.00 (± 0.14) | +2 | 1.30 | 1.30 | 16384 → 16384 |"),
        "{md}"
    );

    // The Pareto front keeps only cells no other beats on both axes:
    // cnn3-x2 (100 ms, 97.0), cnn3-slaf2 (120, 97.5), cnn3-slaf3 (150, 98.0),
    // cnn4-slaf3 (300, 98.5); cnn4-x2 (130 ms, 96.0) is dominated.
    let fig = by::pareto_figure(&cells, "mnist").expect("figure");
    let slaf_he::report::Figure::Line(chart) = &fig else {
        panic!("a line chart")
    };
    let front = chart.series.last().expect("front");
    assert_eq!(front.name, "Pareto front");
    assert_eq!(
        front.points,
        vec![(100.0, 97.0), (120.0, 97.5), (150.0, 98.0), (300.0, 98.5)]
    );
    assert!(
        chart.series[0].scatter && chart.series[0].labels.len() == chart.series[0].points.len()
    );
    for (stem, f) in by::beyond_figures(&cells).expect("figures") {
        assert!(f.to_png().expect(&stem).starts_with(b"\x89PNG"), "{stem}");
    }
}

#[test]
fn the_study_table_never_rounds_a_flip_away() {
    // One flip in 10,000 images is 99.99 % agreement: the table must say so,
    // and an accuracy of 98.57 must not read as 99.
    let mut c = cell(
        "mnist",
        "cnn1",
        Act::X2,
        [98.57, 98.57],
        Some((100.0, 5, 8192)),
    );
    c.batched.as_mut().expect("batched").agreement_pct = 99.99;
    let df = by::beyond_table(&[c]).expect("table");
    let md = slaf_he::report::dataframe_to_markdown(&df, by::TABLE_DIGITS);
    assert!(md.contains("| 99.99 |"), "{md}");
    assert!(md.contains("| 98.57 |"), "{md}");
    assert!(!md.contains("| 100 |"), "{md}");
}

#[test]
fn a_disagreement_is_reported_with_its_reading() {
    let mut c = cell(
        "mnist",
        "cnn3",
        Act::X2,
        [97.0, 97.0],
        Some((100.0, 7, 16384)),
    );
    assert!(by::disagreements_markdown(&[c.clone()]).contains("agrees"));
    let b = c.batched.as_mut().expect("batched");
    b.agreement_pct = 99.0;
    b.disagreements = vec![
        Disagreement {
            index: 5,
            label: 3,
            plain_pred: 3,
            he_pred: 5,
            plain_margin: 1e-4,
            max_logit_error: 1e-3,
        },
        Disagreement {
            index: 9,
            label: 1,
            plain_pred: 1,
            he_pred: 7,
            plain_margin: 0.5,
            max_logit_error: 1e-3,
        },
    ];
    let md = by::disagreements_markdown(&[c.clone()]);
    assert!(
        md.contains("| mnist-cnn3-x2 | batched | 5 | 3 | 3 | 5 | 1.00e-4 | 1.00e-3 | near-tie"),
        "{md}"
    );
    assert!(
        md.contains("| 9 | 1 | 1 | 7 | 5.00e-1 | 1.00e-3 | NOT a near-tie |"),
        "{md}"
    );
    assert!(
        md.contains("- mnist-cnn3-x2 batched: 2 of "),
        "a summary line per run: {md}"
    );
    // A whole logit of error is precision loss, whatever the margin; a long
    // list is cut to its first rows and points at the cell file.
    let b = c.batched.as_mut().expect("batched");
    b.disagreements = (0..25)
        .map(|i| Disagreement {
            index: i,
            label: 1,
            plain_pred: 1,
            he_pred: 2,
            plain_margin: 2.0,
            max_logit_error: 5.0,
        })
        .collect();
    let md = by::disagreements_markdown(&[c]);
    assert!(md.contains("(25 with a logit error ≥ 1)"), "{md}");
    assert_eq!(
        md.matches("precision loss: logit error ≥ 1").count(),
        10,
        "{md}"
    );
    assert!(
        md.contains("… 15 more in `cells/mnist-cnn3-x2.json`"),
        "{md}"
    );
}

#[test]
fn the_plans_cover_the_issue_grid() {
    let full = by::beyond_plan(slaf_he::experiments::Profile::Full);
    assert_eq!(full.cells().len(), 2 * 4 * 6);
    assert!(full.signature.seeds.len() >= 3 && full.signature.epochs == 30);
    assert!(full.signature.batched_images.is_none() && full.signature.per_image_images >= 20);
    for net in &full.nets {
        let cfg = full
            .train_config(slaf_he::data::Dataset::FashionMnist, net, Act::Slaf(4), 74)
            .expect("config");
        assert_eq!((cfg.degree, cfg.seed, cfg.epochs), (4, 74, 30));
        assert_eq!(cfg.dataset, slaf_he::data::Dataset::FashionMnist);
    }
    let cnn4 = slaf_he::nn::ModelSpec::preset("cnn4").expect("cnn4");
    assert!(cnn4.act_count() >= 4);
}

#[test]
fn an_encrypted_selection_marks_exactly_its_cells() {
    use slaf_he::data::Dataset::{FashionMnist, Mnist};
    let full = by::beyond_plan(slaf_he::experiments::Profile::Full);
    assert!(full.signature_of(FashionMnist, "cnn2", Act::X2).encrypted);
    assert!(!full.signature_of(Mnist, "cnn1", Act::Relu).encrypted);
    let part = full
        .clone()
        .encrypting_only(&["cnn1".into(), "mnist/cnn3".into()])
        .expect("a valid selection");
    for d in [Mnist, FashionMnist] {
        assert!(part.signature_of(d, "cnn1", Act::Slaf(3)).encrypted);
        assert!(!part.signature_of(d, "cnn1", Act::Relu).encrypted);
        assert!(!part.signature_of(d, "cnn4", Act::SlafP).encrypted);
    }
    assert!(part.signature_of(Mnist, "cnn3", Act::Slaf(2)).encrypted);
    assert!(
        !part
            .signature_of(FashionMnist, "cnn3", Act::Slaf(2))
            .encrypted
    );
    // An encrypted cell of the part is the full plan's cell: a later full run reuses it.
    assert_eq!(
        part.signature_of(Mnist, "cnn3", Act::X2),
        full.signature_of(Mnist, "cnn3", Act::X2)
    );
    let one = full
        .clone()
        .encrypting_only(&["cnn4/x2".into(), "fashion-mnist/cnn2/slaf3".into()])
        .expect("cells");
    for d in [Mnist, FashionMnist] {
        assert!(one.signature_of(d, "cnn4", Act::X2).encrypted);
        assert!(!one.signature_of(d, "cnn4", Act::Slaf(2)).encrypted);
    }
    assert!(
        one.signature_of(FashionMnist, "cnn2", Act::Slaf(3))
            .encrypted
    );
    assert!(!one.signature_of(Mnist, "cnn2", Act::Slaf(3)).encrypted);
    for empty in [vec![], vec!["none".to_string()]] {
        let none = full
            .clone()
            .encrypting_only(&empty)
            .expect("empty selection");
        assert!(
            none.cells()
                .iter()
                .all(|c| !none.signature_of(c.0, &c.1, c.2).encrypted),
            "{empty:?}"
        );
    }
    for (bad, says, offers) in [
        ("cnn9", "no network \"cnn9\"", "cnn1, cnn2, cnn3, cnn4"),
        (
            "kmnist/cnn1/x2",
            "no data set \"kmnist\"",
            "mnist, fashion-mnist",
        ),
        (
            "cnn1/relu",
            "no encrypted activation \"relu\"",
            "x2, slaf2, slaf3, slaf4, slaf-p",
        ),
        (
            "mnist/cnn1/x2/y",
            "no cell",
            "[data set/]network[/activation]",
        ),
    ] {
        let e = full
            .clone()
            .encrypting_only(&[bad.into()])
            .expect_err(bad)
            .to_string();
        assert!(e.contains(says) && e.contains(offers), "{e}");
    }
}

#[test]
fn a_diverged_seed_is_listed_and_left_out_of_the_means() {
    let mut c = cell("mnist", "cnn4", Act::Slaf(4), [95.0, 95.0], None);
    c.trained_seeds = vec![];
    c.test_accuracy_pct = vec![];
    c.train_seconds = vec![];
    c.learned = vec![];
    c.diverged = vec![by::DivergedSeed {
        seed: 1,
        detail: "training diverged: non-finite loss (NaN) at epoch 1, batch 25".into(),
    }];
    let ok = cell("mnist", "cnn3", Act::Slaf(4), [97.0, 97.0], None);
    let cells = vec![ok, c];
    assert!(cells[1].mean().is_nan());
    // The figures leave the diverged cell out (its mean is NaN).
    let figs = by::beyond_figures(&cells).expect("figures with a diverged cell");
    assert!(figs.iter().any(|(stem, _)| stem == "accuracy_vs_degree"));
    let md = by::disagreements_markdown(&cells);
    assert!(
        md.contains("- mnist-cnn4-slaf4 seed 1: training diverged"),
        "{md}"
    );
    let table =
        slaf_he::report::dataframe_to_markdown(&by::beyond_table(&cells).expect("table"), 2);
    assert!(
        table.contains("| mnist | cnn4 | slaf4 | 4 | 0 | 1 | — |"),
        "{table}"
    );
    // Question 3 has no cnn3/cnn4 pair: the diverged cell does not count.
    assert!(by::findings_markdown(&cells).contains("no cnn3/cnn4 pair"));
}

/// The report names every machine its encrypted runs used, with the cells
/// each measured: AVX2 and AVX-512 times are not comparable.
#[test]
fn the_report_names_each_machine_and_its_cells() {
    let plan = by::beyond_plan(slaf_he::experiments::Profile::Tiny);
    let mut cells = vec![
        cell(
            "mnist",
            "cnn1",
            Act::X2,
            [98.0, 98.2],
            Some((100.0, 5, 8192)),
        ),
        cell(
            "mnist",
            "cnn1",
            Act::Slaf(3),
            [98.1, 98.3],
            Some((200.0, 7, 16384)),
        ),
    ];
    let one = by::beyond_markdown(&plan, &cells).expect("report");
    assert!(
        one.contains("Encrypted runs on test (SIMD unknown), 2 thread(s);"),
        "{one}"
    );
    if let Some(b) = cells[1].batched.as_mut() {
        b.simd = Some(vec!["avx2".into(), "avx512f".into()]);
    }
    let two = by::beyond_markdown(&plan, &cells).expect("report");
    assert!(
        two.contains("on 2 machines (times compare within one machine only): test (SIMD unknown), 2 thread(s): mnist-cnn1-x2; test (avx2, avx512f), 2 thread(s): mnist-cnn1-slaf3"),
        "{two}"
    );
    // A time ratio across machines is marked, never passed off as a cost.
    let mut pair = vec![
        cell(
            "mnist",
            "cnn3",
            Act::X2,
            [99.0, 99.1],
            Some((100.0, 7, 16384)),
        ),
        cell(
            "mnist",
            "cnn4",
            Act::X2,
            [99.0, 99.2],
            Some((150.0, 9, 16384)),
        ),
    ];
    let same = by::findings_markdown(&pair);
    assert!(
        same.contains("| 1.50 | 1.50 |") && !same.contains('†'),
        "{same}"
    );
    if let Some(b) = pair[1].batched.as_mut() {
        b.simd = Some(vec!["avx2".into()]);
    }
    let cross = by::findings_markdown(&pair);
    assert!(
        cross.contains("| 1.50† | 1.50† |")
            && cross.contains("† The two cells ran on different machines"),
        "{cross}"
    );
}
