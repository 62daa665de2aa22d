//! `slaf-he reproduce`: runs every experiment stage into one results folder
//! and writes `manifest.json` and `REPORT.md` (paper vs reproduced).
//!
//! A failing stage is recorded with its error and the run goes on (unless
//! `--fail-fast`); the exit code is non-zero when any stage failed.

use anyhow::Context;
use clap::{Args, ValueEnum};
use slaf_he::data::Mnist;
use slaf_he::experiments;
use slaf_he::experiments::harness::{InferenceSummary, write_outputs};
use slaf_he::he_nn::Mode;
use slaf_he::nn::cache::{default_cache_dir, train_cached};
use slaf_he::nn::{Arch, TrainConfig, Variant, WeightsFile};
use slaf_he::report::manifest::{Machine, Manifest, StageRecord, StageStatus, git_commit, rfc3339};
use slaf_he::report::paper::paper_vs_reproduced;
use slaf_he::report::{atomic_write, dataframe_to_markdown, write_csv};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// How much of the papers' protocol to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// A few minutes on 2 cores: short training, the full comparison and interval study.
    Quick,
    /// The papers' complete protocol (30-epoch training of every variant, ...). Hours.
    Full,
    /// Seconds; for tests of the orchestration only (tiny subsets, 1 epoch).
    #[value(hide = true)]
    Tiny,
}

impl Profile {
    fn name(self) -> &'static str {
        self.lib().name()
    }

    /// The library's profile of the same name.
    fn lib(self) -> experiments::Profile {
        match self {
            Profile::Quick => experiments::Profile::Quick,
            Profile::Full => experiments::Profile::Full,
            Profile::Tiny => experiments::Profile::Tiny,
        }
    }
}

/// The stages, in run order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// Plaintext training of CNN1/CNN2/CryptoNets variants (results/training/).
    Training,
    /// The P2 sign-approximation comparison (results/comparison/).
    Comparison,
    /// The P2 interval analysis (results/interval/).
    Interval,
    /// Encrypted inference under CKKS (results/inference/).
    Inference,
    /// The study beyond the papers: MNIST and Fashion-MNIST × 4 networks ×
    /// 6 activations, trained over seeds and run encrypted (results/beyond/;
    /// resumes from its stored cells).
    Beyond,
}

impl Stage {
    const ALL: [Stage; 5] = [
        Stage::Training,
        Stage::Comparison,
        Stage::Interval,
        Stage::Inference,
        Stage::Beyond,
    ];

    fn name(self) -> &'static str {
        match self {
            Stage::Training => "training",
            Stage::Comparison => "comparison",
            Stage::Interval => "interval",
            Stage::Inference => "inference",
            Stage::Beyond => "beyond",
        }
    }
}

/// Arguments of `slaf-he reproduce`.
#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// Run the short profile (the default): minutes on 2 cores.
    #[arg(long, conflicts_with_all = ["full", "profile"])]
    pub quick: bool,
    /// Run the papers' complete protocol (hours).
    #[arg(long, conflicts_with = "profile")]
    pub full: bool,
    /// Profile by name (quick, full).
    #[arg(long, value_enum, hide = true)]
    pub profile: Option<Profile>,
    /// Run only these stages (comma separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Stage>,
    /// Results folder [default: results/ for --full, which holds the
    /// committed results; results/<profile>/ (git-ignored) for any other
    /// profile, so that a quick run never overwrites committed files].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Retrain models even when the cache has them.
    #[arg(long)]
    pub retrain: bool,
    /// Stop at the first failing stage.
    #[arg(long)]
    pub fail_fast: bool,
    /// Stage beyond only: train every seed of the study (records in
    /// <out>/beyond/seeds/, models in the cache) and stop (no encrypted
    /// runs, no cell files), so the hours of training can run apart from
    /// the timed encrypted runs, e.g. under `nice`.
    #[arg(long)]
    pub train_only: bool,
    /// Stage beyond only: run encrypted only these cells, comma separated,
    /// each a network with an optional data set before it and activation
    /// after it (`cnn1`: its polynomial cells on both data sets;
    /// `mnist/cnn3`; `cnn4/x2`; `mnist/cnn4/slaf3`), or `none`. The other
    /// cells are trained and tabled without encrypted columns; a later run
    /// without this flag encrypts them and reuses the encrypted cells
    /// already stored. [default: every network of the profile]
    #[arg(long, value_delimiter = ',', value_name = "CELLS")]
    pub encrypt: Option<Vec<String>>,
    /// Folder of the trained-model cache [default: $SLAF_HE_CACHE, else results/.cache/models].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Folder with the MNIST files [default: $SLAF_HE_DATA, else data/mnist].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// What a stage produced.
#[derive(Default)]
struct StageOutput {
    outputs: Vec<PathBuf>,
    measured: BTreeMap<String, f64>,
    parameters: serde_json::Value,
}

struct Ctx<'a> {
    profile: Profile,
    train_only: bool,
    encrypt: Option<Vec<String>>,
    out: &'a Path,
    cache: PathBuf,
    retrain: bool,
    quiet: bool,
    data_dir: PathBuf,
    mnist: Option<Mnist>,
}

impl Ctx<'_> {
    fn mnist(&mut self) -> anyhow::Result<&Mnist> {
        if self.mnist.is_none() {
            let m = Mnist::load(&self.data_dir)
                .with_context(|| format!("loading MNIST from {}", self.data_dir.display()))?;
            self.mnist = Some(m);
        }
        self.mnist.as_ref().context("MNIST could not be loaded")
    }
}

/// Where a profile writes without `--out`: the committed `results/` for
/// the full protocol only, else the git-ignored `results/<profile>/`.
pub fn default_out_dir(profile: Profile) -> PathBuf {
    match profile {
        Profile::Full => PathBuf::from("results"),
        p => Path::new("results").join(p.name()),
    }
}

/// Run `slaf-he reproduce`.
pub fn run(args: ReproduceArgs, quiet: bool) -> anyhow::Result<()> {
    let profile = match (args.full, args.profile) {
        (true, _) => Profile::Full,
        (_, Some(p)) => p,
        _ => Profile::Quick,
    };
    let stages: Vec<Stage> = if args.only.is_empty() {
        Stage::ALL.to_vec()
    } else {
        Stage::ALL
            .into_iter()
            .filter(|s| args.only.contains(s))
            .collect()
    };
    if args.train_only && stages != [Stage::Beyond] {
        anyhow::bail!("--train-only applies to the beyond stage alone: add --only beyond");
    }
    if args.encrypt.is_some() && stages != [Stage::Beyond] {
        anyhow::bail!("--encrypt applies to the beyond stage alone: add --only beyond");
    }
    let out_dir = args.out.clone().unwrap_or_else(|| default_out_dir(profile));
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut ctx = Ctx {
        profile,
        train_only: args.train_only,
        encrypt: args.encrypt.clone(),
        out: &out_dir,
        cache: args.cache.clone().unwrap_or_else(default_cache_dir),
        retrain: args.retrain,
        quiet,
        data_dir: args
            .data
            .clone()
            .unwrap_or_else(slaf_he::data::default_data_dir),
        mnist: None,
    };
    let started = SystemTime::now();
    println!(
        "reproduce: profile {}, stages {}, results in {}",
        profile.name(),
        stages
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(","),
        out_dir.display()
    );
    let mut records = Vec::new();
    let commit = git_commit(Path::new(env!("CARGO_MANIFEST_DIR")));
    let mut parameters = serde_json::Map::new();
    for stage in stages {
        let t = Instant::now();
        println!("== stage {}", stage.name());
        let _ = std::io::stdout().flush();
        let result = match stage {
            Stage::Training => training(&mut ctx),
            Stage::Comparison => comparison(&ctx),
            Stage::Interval => interval(&ctx),
            Stage::Inference => inference(&mut ctx),
            Stage::Beyond => beyond(&ctx),
        };
        let seconds = t.elapsed().as_secs_f64();
        let record = match result {
            Ok(out) => {
                println!("   {} ok in {seconds:.1} s", stage.name());
                parameters.insert(stage.name().into(), out.parameters);
                StageRecord {
                    name: stage.name().into(),
                    status: StageStatus::Ok,
                    seconds,
                    outputs: out.outputs,
                    error: None,
                    measured: out.measured,
                    git_commit: Some(commit.clone()),
                    finished: Some(rfc3339(SystemTime::now())),
                }
            }
            Err(e) => {
                eprintln!("   {} FAILED: {e:#}", stage.name());
                StageRecord {
                    name: stage.name().into(),
                    status: StageStatus::Failed,
                    seconds,
                    outputs: vec![],
                    error: Some(format!("{e:#}")),
                    measured: BTreeMap::new(),
                    git_commit: Some(commit.clone()),
                    finished: Some(rfc3339(SystemTime::now())),
                }
            }
        };
        let failed = record.status == StageStatus::Failed;
        records.push(record);
        if failed && args.fail_fast {
            break;
        }
    }
    if ctx.train_only {
        // Training into the cache only: the folder's manifest and report stay.
        return Ok(());
    }
    let mut manifest = Manifest {
        crate_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: commit.clone(),
        machine: Machine::current(),
        profile: profile.name().into(),
        seeds: serde_json::json!({ "data_and_weights": slaf_he::data::DEFAULT_SEED }),
        parameters: serde_json::Value::Object(parameters),
        started: rfc3339(started),
        finished: rfc3339(SystemTime::now()),
        stages: records,
    };
    // `--only` updates its stages in the folder's manifest and keeps the others.
    let path = out_dir.join("manifest.json");
    if let Ok(previous) = Manifest::read(&path) {
        let order: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        manifest.merge_previous(previous, &order);
    }
    manifest.write(&path)?;
    write_report(&out_dir, &manifest, &manifest.measured())?;
    println!(
        "wrote {} and {}",
        out_dir.join("manifest.json").display(),
        out_dir.join("REPORT.md").display()
    );
    let failed: Vec<&str> = manifest
        .stages
        .iter()
        .filter(|s| s.status == StageStatus::Failed)
        .map(|s| s.name.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("stage(s) failed: {}", failed.join(", "))
    }
}

fn training(ctx: &mut Ctx<'_>) -> anyhow::Result<StageOutput> {
    let plan = experiments::training_plan(ctx.profile.lib());
    let dir = ctx.out.join("training");
    let cache = ctx.cache.clone();
    let (retrain, quiet) = (ctx.retrain, ctx.quiet);
    let mnist = ctx.mnist()?;
    // Weights files committed under <out>/training/ (e.g. the 30-epoch runs of
    // results/training/run_all.sh) seed the cache when their configuration is
    // exactly the one requested.
    let runs =
        experiments::train_plan(mnist, &plan, Some(&dir), &cache, retrain, quiet, &mut |l| {
            println!("   {l}");
            let _ = std::io::stdout().flush();
        })
        .context("training")?;
    let weights: Vec<WeightsFile> = runs.into_iter().map(|r| r.weights).collect();
    let mut df = experiments::accuracy_table(&weights)?;
    let csv = dir.join("accuracy.csv");
    write_csv(&mut df, &csv)?;
    let md = dir.join("accuracy.md");
    atomic_write(
        &md,
        format!(
            "# Test accuracy per model and activation ({} profile)\n\n{}",
            ctx.profile.name(),
            dataframe_to_markdown(&df, 5)
        )
        .as_bytes(),
    )?;
    let mut outputs = vec![csv, md];
    // Learning curves: test accuracy per epoch, one panel per network.
    let curves = experiments::learning_curves_figure(&weights);
    let (svg, png) = curves.save(&dir, "learning_curves")?;
    outputs.extend([svg, png]);
    let mut measured = BTreeMap::new();
    for w in &weights {
        let n = w.report.test.total as f64;
        measured.insert(experiments::reference_key(w), 100.0 * w.report.test.overall);
        measured.insert(
            slaf_he::report::paper::sample_key(&experiments::reference_key(w)),
            n,
        );
        if w.config.model.name == Arch::Cnn2.name() && w.config.variant == Variant::Slaf {
            measured.insert(
                "p1.plain_acc.cnn2.slaf".into(),
                100.0 * w.report.test.overall,
            );
            measured.insert(
                slaf_he::report::paper::sample_key("p1.plain_acc.cnn2.slaf"),
                n,
            );
        }
    }
    let outputs = super::study::relative_to(outputs, ctx.out);
    Ok(StageOutput {
        outputs,
        measured,
        parameters: serde_json::to_value(&plan)?,
    })
}

fn comparison(ctx: &Ctx<'_>) -> anyhow::Result<StageOutput> {
    let args = super::study::CompareArgs {
        runs: 30,
        quick: ctx.profile == Profile::Tiny,
        out: ctx.out.join("comparison"),
        eps: slaf_he::approx::methods::DEFAULT_MINIMAX_EPS,
        no_tfhe: ctx.profile == Profile::Tiny,
        no_he: ctx.profile == Profile::Tiny,
    };
    let (files, measured) = super::study::compare(&args)?;
    Ok(StageOutput {
        outputs: super::study::relative_to(files, ctx.out),
        measured,
        parameters: serde_json::json!({
            "runs": if args.quick { 3 } else { args.runs },
            "minimax_eps": args.eps,
            "tfhe": !args.no_tfhe,
        }),
    })
}

fn interval(ctx: &Ctx<'_>) -> anyhow::Result<StageOutput> {
    let args = super::study::IntervalArgs {
        out: ctx.out.join("interval"),
        eps: slaf_he::approx::methods::DEFAULT_MINIMAX_EPS,
    };
    let (files, measured) = super::study::interval(&args)?;
    Ok(StageOutput {
        outputs: super::study::relative_to(files, ctx.out),
        measured,
        parameters: serde_json::json!({ "eps": "0.00..0.50 step 0.01", "minimax_eps": args.eps }),
    })
}

fn write_report(
    out: &Path,
    manifest: &Manifest,
    measured: &BTreeMap<String, f64>,
) -> anyhow::Result<()> {
    let mut s = String::new();
    s.push_str("# slaf-he: paper vs reproduced\n\n");
    s.push_str(&format!(
        "Generated by `slaf-he reproduce` (profile **{}**) on {} ({} cores, {}), commit `{}`, {} to {}.\n\n",
        manifest.profile,
        manifest.machine.cpu,
        manifest.machine.cores,
        manifest.machine.os,
        manifest.git_commit,
        manifest.started,
        manifest.finished
    ));
    if manifest.profile != "full" {
        s.push_str("This is not the full protocol: training ran for a few epochs only, so accuracies are below the papers' 30-epoch numbers by design. Run `slaf-he reproduce --full` for the comparable numbers.\n\n");
    }
    s.push_str("## Stages\n\nA stage run by a later `--only` replaces its row; the others keep the commit and time they ran at.\n\n| stage | status | seconds | commit | finished | outputs / reason |\n|---|---|---|---|---|---|\n");
    for st in &manifest.stages {
        let status = match st.status {
            StageStatus::Ok => "ok",
            StageStatus::Failed => "FAILED",
            StageStatus::Skipped => "skipped",
        };
        let what = match &st.error {
            Some(e) => e.clone(),
            None => st
                .outputs
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let commit = st.git_commit.as_deref().unwrap_or("unknown");
        s.push_str(&format!(
            "| {} | {status} | {:.1} | `{}` | {} | {what} |\n",
            st.name,
            st.seconds,
            &commit[..commit.len().min(10)],
            st.finished.as_deref().unwrap_or("unknown")
        ));
    }
    s.push_str("\n## Paper vs reproduced\n\n");
    s.push_str(&paper_vs_reproduced(measured));
    let figures: Vec<&PathBuf> = manifest
        .stages
        .iter()
        .flat_map(|st| &st.outputs)
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    if !figures.is_empty() {
        s.push_str("\n## Figures\n\n");
        for f in figures {
            s.push_str(&format!("![{}]({})\n\n", f.display(), f.display()));
        }
    }
    atomic_write(&out.join("REPORT.md"), s.as_bytes())?;
    Ok(())
}

fn inference(ctx: &mut Ctx<'_>) -> anyhow::Result<StageOutput> {
    let plan = experiments::inference_plan(ctx.profile.lib());
    let training = experiments::training_plan(ctx.profile.lib());
    let dir = ctx.out.join("inference");
    let cache = ctx.cache.clone();
    let (retrain, quiet) = (ctx.retrain, ctx.quiet);
    let mut outputs = Vec::new();
    let mut summaries: Vec<InferenceSummary> = Vec::new();
    if !retrain {
        // `--only inference` must not retrain what results/training/ holds.
        let committed = ctx.out.join("training");
        let mnist = ctx.mnist()?;
        slaf_he::nn::cache::seed_from_dir(mnist, &training, &committed, &cache)?;
    }
    for &(arch, variant, mode, images) in &plan {
        let cfg = training
            .iter()
            .find(|c| c.model.name == arch.name() && c.variant == variant)
            .cloned()
            .unwrap_or_else(|| TrainConfig::with_epochs(arch, variant, 1));
        let mnist = ctx.mnist()?;
        let (w, _) = train_cached(mnist, &cfg, &cache, retrain, quiet, &mut |_| ())
            .with_context(|| format!("training {} {}", arch.name(), variant.name()))?;
        print!(
            "   {:<10} {:<6} {:<9} {:>5} image(s) ... ",
            arch.name(),
            variant.name(),
            mode.name(),
            images
        );
        let _ = std::io::stdout().flush();
        let out = experiments::he_run(&w, mode, images, quiet)
            .with_context(|| format!("encrypted inference {} {}", arch.name(), variant.name()))?;
        let s = &out.summary;
        println!(
            "encrypted {:.2}% (plain {:.2}%), agreement {:.2}%, {:.1} ms/image",
            100.0 * s.he_accuracy,
            100.0 * s.plain_accuracy,
            100.0 * s.agreement,
            1e3 * s.seconds_per_image
        );
        let sub = dir.join(format!("{}-{}-{}", s.model, s.act, mode.name()));
        outputs.extend(write_outputs(&out, &sub)?);
        summaries.push(out.summary);
    }
    let mut df = slaf_he::experiments::inference_table(&summaries)?;
    let csv = dir.join("summary.csv");
    write_csv(&mut df, &csv)?;
    // The P1 comparison: CryptoNets-X2 time / CNN2-SLAF time, same pipeline.
    let find = |arch: &str, act: &str, mode: Mode| {
        summaries
            .iter()
            .find(|s| s.model == arch && s.act == act && s.mode == mode)
    };
    let mut measured = BTreeMap::new();
    let mut ratio_lines = String::new();
    for r in slaf_he::experiments::cryptonets_ratios(&summaries) {
        ratio_lines.push_str(&format!("- {r}\n"));
        if r.mode == Mode::PerImage || !measured.contains_key("p1.cryptonets_speedup") {
            measured.insert("p1.cryptonets_speedup".to_string(), r.ratio);
        }
    }
    for (model, act) in [("cnn1", "x2"), ("cnn1", "slaf"), ("cnn2", "slaf")] {
        if let Some(s) = find(model, act, Mode::PerImage) {
            measured.insert(
                format!("tenseal.s_per_image.{model}.{act}"),
                s.seconds_per_image,
            );
        }
    }
    if let Some(s) =
        find("cnn2", "slaf", Mode::Batched).or_else(|| find("cnn2", "slaf", Mode::PerImage))
    {
        measured.insert("p1.he_acc.cnn2.slaf".to_string(), 100.0 * s.he_accuracy);
        measured.insert(
            slaf_he::report::paper::sample_key("p1.he_acc.cnn2.slaf"),
            s.images as f64,
        );
    }
    let md = dir.join("summary.md");
    atomic_write(
        &md,
        format!(
            "# Encrypted inference ({} profile)\n\nOur CKKS with seeded keys (seed {}; seeded keys: for tests only), on the first N MNIST test images; agreement = encrypted argmax equals the plaintext (inference-form) argmax; times per image (batched: amortised over N/2 images per ciphertext) on this machine, stage times in ms per image. Peak RSS is the process's high-water mark since the start of each run (reset where the OS allows); memory the allocator kept from earlier runs of the same process counts too, so standalone `slaf-he infer` runs show less (see results/inference/README.md).\n\n{}\n\n{}",
            ctx.profile.name(),
            slaf_he::data::DEFAULT_SEED,
            dataframe_to_markdown(&df, 4),
            ratio_lines
        )
        .as_bytes(),
    )?;
    outputs.extend([csv, md]);
    // Time per image and per stage, one bar per run and stage.
    let fig = slaf_he::experiments::stage_times_figure(&summaries);
    let (svg, png) = fig.save(&dir, "stage_times")?;
    outputs.extend([svg, png]);
    let outputs = super::study::relative_to(outputs, ctx.out);
    Ok(StageOutput {
        outputs,
        measured,
        parameters: serde_json::json!({
            "runs": plan.iter().map(|(a, v, m, n)| format!("{} {} {} {n}", a.name(), v.name(), m.name())).collect::<Vec<_>>(),
            "seed": slaf_he::data::DEFAULT_SEED,
            "params": "SPEC §5 preset matching each model",
        }),
    })
}

fn beyond(ctx: &Ctx<'_>) -> anyhow::Result<StageOutput> {
    use slaf_he::experiments::beyond;
    let mut plan = beyond::beyond_plan(ctx.profile.lib());
    if let Some(sel) = &ctx.encrypt {
        plan = plan.encrypting_only(sel)?;
    }
    let dir = ctx.out.join("beyond");
    let dirs = beyond::BeyondDirs {
        out: dir.clone(),
        cache: ctx.cache.clone(),
        mnist: Some(ctx.data_dir.clone()),
    };
    println!("   {plan}");
    if ctx.train_only {
        beyond::train_beyond(&plan, &dirs, &mut |l| {
            println!("   {l}");
            let _ = std::io::stdout().flush();
        })?;
        return Ok(StageOutput::default());
    }
    let cells = beyond::run_beyond(&plan, &dirs, ctx.retrain, ctx.quiet, &mut |l| {
        println!("   {l}");
        let _ = std::io::stdout().flush();
    })
    .context("the beyond-the-paper study")?;
    let mut df = beyond::beyond_table(&cells)?;
    let csv = dir.join("beyond.csv");
    write_csv(&mut df, &csv)?;
    let md = dir.join("beyond.md");
    atomic_write(&md, beyond::beyond_markdown(&plan, &cells)?.as_bytes())?;
    let mut outputs = vec![csv, md];
    for (stem, fig) in beyond::beyond_figures(&cells)? {
        let (svg, png) = fig.save(&dir, &stem)?;
        outputs.extend([svg, png]);
    }
    Ok(StageOutput {
        outputs: super::study::relative_to(outputs, ctx.out),
        measured: BTreeMap::new(),
        parameters: serde_json::to_value(&plan)?,
    })
}
