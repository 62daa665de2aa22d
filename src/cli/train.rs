//! `slaf-he train` and `slaf-he lr-find`: train a CNN on MNIST and save its
//! weights file; run the learning-rate range test and write its points as CSV.

use anyhow::Context;
use clap::Args;
use slaf_he::data::{self, Mnist};
use slaf_he::nn::{
    FrozenBatchNorm, Recipe, SignInit, TrainConfig, Variant, WeightsFile, lr_find, train,
};
use std::io::Write;
use std::path::PathBuf;

/// Arguments shared by `train` and `lr-find`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Network: a preset (cnn1, cnn2, cnn2-nopad, cryptonets, cnn3, cnn4) or a path to a
    /// TOML model spec (see `slaf-he model show`).
    #[arg(long, default_value = "cnn1")]
    pub model: String,
    /// Activation (slaf-r: train with ReLU, swap in SLAFs, retrain them).
    #[arg(long, value_enum, default_value_t = Variant::Relu)]
    pub act: Variant,
    /// Optimiser and schedule (sgd-onecycle is the main recipe).
    #[arg(long, value_enum, default_value_t = Recipe::SgdOnecycle)]
    pub optimizer: Recipe,
    /// Seed for weights and batch order.
    #[arg(long, default_value_t = data::DEFAULT_SEED)]
    pub seed: u64,
    /// Use only the first N training images.
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    pub limit_test: Option<usize>,
    /// SLAF polynomial degree (1 to 16; 0 would be a constant activation).
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=16))]
    pub degree: usize,
    /// Global gradient-norm clipping (default 1.0 for polynomial activations,
    /// off for ReLU; 0 turns it off).
    #[arg(long)]
    pub clip_grad: Option<f32>,
    /// Weight decay (default 1e-4 for SGD, 0 for Adam).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// SLAF initial coefficients: `zeros` or a comma-separated list a0,a1,..
    /// (default: zeros; a1 = 0.01 for CNN2, see the docs of TrainConfig).
    #[arg(long)]
    pub slaf_init: Option<String>,
    /// SLAF-P: initialisation of s: ls (least squares), chebyshev,
    /// composition or newton (the last two are degree 9).
    #[arg(long, value_enum, default_value_t = SignInit::LeastSquares)]
    pub slafp_init: SignInit,
    /// SLAF-P: train the sign polynomial s (default: fixed, as published).
    #[arg(long)]
    pub trainable_s: bool,
    /// Folder with the four IDX files [default: the --dataset's place:
    /// $SLAF_HE_DATA, else data/mnist; /usr/share/datasets/fashion-mnist].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Data set (fashion-mnist: apt-get install dataset-fashion-mnist).
    #[arg(long, value_enum, default_value_t = data::Dataset::Mnist)]
    pub dataset: data::Dataset,
    /// Worker threads, at least 1 [default: all cores].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub threads: Option<usize>,
}

impl ModelArgs {
    fn config(&self) -> anyhow::Result<TrainConfig> {
        let spec = slaf_he::nn::ModelSpec::resolve(&self.model).with_context(|| {
            format!(
                "--model {}: a preset (cnn1, cnn2, cnn2-nopad, cryptonets, cnn3, cnn4) or a path to a .toml spec",
                self.model
            )
        })?;
        let variant = self.act;
        let mut c = TrainConfig::for_spec(spec, variant);
        c.dataset = self.dataset;
        c.recipe = self.optimizer;
        c.seed = self.seed;
        c.limit_train = self.limit_train;
        c.limit_test = self.limit_test;
        c.degree = self.degree;
        if let Some(x) = self.clip_grad {
            c.clip_grad = (x > 0.0).then_some(x);
        }
        c.weight_decay = self.weight_decay;
        c.slafp_trainable = self.trainable_s;
        c.slafp_init = self.slafp_init;
        c.slaf_init = match self.slaf_init.as_deref() {
            None => None,
            Some("zeros") => Some(vec![0.0; c.degree + 1]),
            Some(list) => Some(
                list.split(',')
                    .map(|v| v.trim().parse::<f32>())
                    .collect::<Result<Vec<_>, _>>()
                    .with_context(|| format!("--slaf-init {list:?} is not a list of numbers"))?,
            ),
        };
        Ok(c)
    }

    fn setup(&self) -> anyhow::Result<Mnist> {
        if let Some(t) = self.threads {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build_global()
                .context("cannot set up the thread pool")?;
        }
        let dir = self
            .data
            .clone()
            .unwrap_or_else(|| self.dataset.default_dir());
        Mnist::open(self.dataset, self.data.as_deref())
            .with_context(|| format!("cannot load {} from {}", self.dataset.name(), dir.display()))
    }
}

/// Arguments of `slaf-he train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Model and data options.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Epochs, at least 1 (SLAF-R: of the ReLU phase).
    #[arg(long, default_value_t = 30, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub epochs: usize,
    /// SLAF-R: epochs of the SLAF retraining, at least 1.
    #[arg(long, default_value_t = 2, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub slaf_r_epochs: usize,
    /// SLAF-R: do not freeze the weights while retraining (the original code's behaviour).
    #[arg(long)]
    pub as_published: bool,
    /// SLAF-R: initialise the SLAFs with a least-squares ReLU fit on each
    /// layer's observed input range instead of zeros.
    #[arg(long)]
    pub slaf_r_fit: bool,
    /// SLAF-R: optimiser of the retraining (default: the same as --optimizer).
    #[arg(long, value_enum)]
    pub slaf_r_optimizer: Option<Recipe>,
    /// SLAF-R: BatchNorm in the frozen network: `batch` normalises with
    /// batch statistics and updates the running ones (PyTorch's train mode
    /// with frozen parameters), `running` keeps the ReLU phase's running
    /// statistics so every non-SLAF tensor stays bit-identical.
    #[arg(long, value_enum, default_value_t = FrozenBatchNorm::BatchStats)]
    pub slaf_r_bn: FrozenBatchNorm,
    /// PyTorch's default conv init instead of Kaiming-normal.
    #[arg(long)]
    pub pytorch_conv_init: bool,
    /// Where to write the weights file (JSON; gzip-compressed if FILE ends in .gz).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print a JSON summary on the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `slaf-he lr-find`.
#[derive(Debug, Args)]
pub struct LrFindArgs {
    /// Model and data options.
    #[command(flatten)]
    pub model: ModelArgs,
    /// First learning rate.
    #[arg(long, default_value_t = 1e-6)]
    pub start: f64,
    /// Last learning rate.
    #[arg(long, default_value_t = 10.0)]
    pub end: f64,
    /// Loss smoothing factor.
    #[arg(long, default_value_t = 0.99)]
    pub beta: f64,
    /// CSV file for the (lr, smoothed loss, raw loss) points; the plot is
    /// written beside it with the same name and .svg/.png extensions.
    #[arg(long, value_name = "FILE.csv", default_value = "lr_find.csv")]
    pub out: PathBuf,
}

/// Run `slaf-he train`.
pub fn run_train(args: TrainArgs, quiet: bool) -> anyhow::Result<()> {
    let mut cfg = args.model.config()?;
    cfg.epochs = args.epochs;
    cfg.slaf_r_epochs = args.slaf_r_epochs;
    cfg.as_published = args.as_published;
    cfg.slaf_r_fit = args.slaf_r_fit;
    cfg.slaf_r_recipe = args.slaf_r_optimizer;
    cfg.slaf_r_bn = args.slaf_r_bn;
    cfg.pytorch_conv_init = args.pytorch_conv_init;
    let mnist = args.model.setup()?;
    println!(
        "training {} with {} ({} epochs, {}, clip {:?}, seed {}, {} threads)",
        cfg.model.name.as_str(),
        cfg.variant.name(),
        cfg.epochs,
        cfg.recipe.name(),
        cfg.clip_grad,
        cfg.seed,
        rayon::current_num_threads()
    );
    let (model, report) = train(&mnist, &cfg, quiet, &mut |l| {
        println!(
            "{} epoch {:>2}: loss {:.4}  train acc {:.2}%  test acc {:.2}%  ({:.2} s)",
            l.phase,
            l.epoch,
            l.train_loss,
            100.0 * l.train_accuracy,
            100.0 * l.test_accuracy,
            l.seconds
        );
        let _ = std::io::stdout().flush();
    })?;
    for (k, a) in report.test.per_class.iter().enumerate() {
        println!("Test Accuracy of {k}: {:.2}%", 100.0 * a);
    }
    println!(
        "Test Accuracy (Overall): {:.2}% ({}/{})",
        100.0 * report.test.overall,
        report.test.correct,
        report.test.total
    );
    for (i, m) in report.max_abs_input.iter().enumerate() {
        println!(
            "act{} max |input|: train {:.3}, test {:.3}",
            i + 1,
            m.train,
            m.test
        );
    }
    if let Some(out) = &args.out {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        WeightsFile::new(&model, &cfg, &report)?.save(out)?;
        println!("weights written to {}", out.display());
    }
    if args.json {
        let summary = serde_json::json!({
            "model": cfg.model.name.as_str(),
            "act": cfg.variant.name(),
            "epochs": cfg.epochs,
            "test_accuracy": (report.test.overall * 1e4).round() / 1e4,
            "per_class": report.test.per_class,
            "train_seconds": report.train_seconds,
            "max_abs_input": report.max_abs_input.iter().map(|m| m.overall()).collect::<Vec<_>>(),
        });
        println!("{summary}");
    }
    Ok(())
}

/// Run `slaf-he lr-find`.
pub fn run_lr_find(args: LrFindArgs, _quiet: bool) -> anyhow::Result<()> {
    let cfg = args.model.config()?;
    let mnist = args.model.setup()?;
    let pts = lr_find(&mnist, &cfg, args.start, args.end, args.beta)?;
    let mut csv = String::from("lr,loss,raw_loss\n");
    for p in &pts {
        csv.push_str(&format!("{:e},{},{}\n", p.lr, p.loss, p.raw_loss));
    }
    slaf_he::report::atomic_write(&args.out, csv.as_bytes())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    // The plot beside the CSV: loss vs learning rate on a log axis.
    let chart = slaf_he::report::LineChart {
        title: format!(
            "LR range test: {} {}",
            cfg.model.name.as_str(),
            cfg.variant.name()
        ),
        x_label: "learning rate".into(),
        y_label: "smoothed training loss".into(),
        series: vec![slaf_he::report::Series::new(
            "smoothed loss",
            pts.iter()
                .filter(|p| p.loss.is_finite() && p.lr > 0.0)
                .map(|p| (p.lr, p.loss))
                .collect(),
        )],
        log_x: true,
        ..Default::default()
    };
    let figure = slaf_he::report::Figure::from(chart);
    let svg = args.out.with_extension("svg");
    let png = args.out.with_extension("png");
    figure.save_svg(&svg)?;
    figure.save_png(&png)?;
    println!("plot written to {} and {}", svg.display(), png.display());
    let best = pts
        .iter()
        .min_by(|a, b| a.loss.total_cmp(&b.loss))
        .map(|p| (p.lr, p.loss));
    println!(
        "{} points written to {} (lowest smoothed loss {:?} as (lr, loss))",
        pts.len(),
        args.out.display(),
        best
    );
    Ok(())
}
