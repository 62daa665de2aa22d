//! Training as experiments: the plans of each profile, cached training of
//! a plan (the weights committed under `results/training/` seed the
//! cache), the accuracy table beside the paper's and the PyTorch
//! reference's numbers, per-class accuracy, learning curves and the learned
//! activations.

use super::{Profile, StudyError};
use slaf_nn::cache::{Provenance, seed_from_dir, train_cached};
use slaf_nn::data::Mnist;
use slaf_nn::{Arch, InferenceModel, TrainConfig, Variant, WeightsFile};
use slaf_report::polars::prelude::{Column, DataFrame};
use slaf_report::{Figure, LineChart, Series};
use std::path::Path;

/// The training runs `slaf-he reproduce` makes in a profile.
pub fn training_plan(profile: Profile) -> Vec<TrainConfig> {
    use Arch::*;
    use Variant::*;
    let cfg = |arch, variant, epochs: usize, lim: Option<(usize, usize)>| {
        let mut c = TrainConfig::with_epochs(arch, variant, epochs);
        if let Some((tr, te)) = lim {
            c.limit_train = Some(tr);
            c.limit_test = Some(te);
        }
        c
    };
    match profile {
        Profile::Tiny => vec![
            cfg(Cnn1, Relu, 1, Some((600, 200))),
            cfg(Cnn1, X2, 1, Some((600, 200))),
        ],
        Profile::Quick => {
            let mut v: Vec<TrainConfig> = [Relu, X2, Slaf, SlafR, SlafP]
                .into_iter()
                .map(|a| cfg(Cnn1, a, 2, None))
                .collect();
            v.push(cfg(Cnn2, Slaf, 1, None));
            v.push(cfg(Cryptonets, X2, 1, None));
            v
        }
        Profile::Full => {
            let mut v = Vec::new();
            for arch in [Cnn1, Cnn2] {
                for a in [Relu, X2, Slaf, SlafR, SlafP] {
                    v.push(cfg(arch, a, 30, None));
                }
            }
            v.push(cfg(Cryptonets, X2, 30, None));
            v
        }
    }
}

/// Every activation variant of `arch` (CryptoNets: X2 only), for a
/// notebook: 30 epochs in the full profile; 2 (CNN1) or 1 epoch otherwise.
pub fn variants_plan(profile: Profile, arch: Arch) -> Vec<TrainConfig> {
    let epochs = match (profile, arch) {
        (Profile::Full, _) => 30,
        (_, Arch::Cnn1) => 2,
        _ => 1,
    };
    let variants: &[Variant] = if arch == Arch::Cryptonets {
        &[Variant::X2]
    } else {
        &[
            Variant::Relu,
            Variant::X2,
            Variant::Slaf,
            Variant::SlafR,
            Variant::SlafP,
        ]
    };
    variants
        .iter()
        .map(|&v| TrainConfig::with_epochs(arch, v, epochs))
        .collect()
}

/// One trained run of a plan.
#[derive(Clone, Debug)]
pub struct TrainedRun {
    /// The weights file.
    pub weights: WeightsFile,
    /// Loaded from the cache or trained now.
    pub provenance: Provenance,
}

/// Train every run of `plan` through the model cache `cache`: weights files
/// in `committed` (for example `results/training/`) whose configuration is
/// exactly one requested seed the cache first (unless `retrain`). `log`
/// gets one line per run.
pub fn train_plan(
    mnist: &Mnist,
    plan: &[TrainConfig],
    committed: Option<&Path>,
    cache: &Path,
    retrain: bool,
    quiet: bool,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<TrainedRun>, StudyError> {
    if let (Some(dir), false) = (committed, retrain) {
        for p in seed_from_dir(mnist, plan, dir, cache)? {
            log(&format!("(cache seeded from {})", p.display()));
        }
    }
    let mut runs = Vec::with_capacity(plan.len());
    for cfg in plan {
        let (w, prov) = train_cached(mnist, cfg, cache, retrain, quiet, &mut |_| ())?;
        log(&format!(
            "{:<10} {:<6} {:>2} epoch(s): test accuracy {:.2}% ({})",
            cfg.model.name.as_str(),
            cfg.variant.name(),
            cfg.epochs,
            100.0 * w.report.test.overall,
            match prov {
                Provenance::Cached => "cached".to_string(),
                Provenance::Trained => format!("trained in {:.1} s", w.report.train_seconds),
            }
        ));
        runs.push(TrainedRun {
            weights: w,
            provenance: prov,
        });
    }
    Ok(runs)
}

/// [`train_plan`] for a notebook: the default cache, seeded from
/// `<repo>/results/training/`, one printed line per run.
pub fn train_for_notebook(
    mnist: &Mnist,
    plan: &[TrainConfig],
    repo: &Path,
) -> Result<Vec<WeightsFile>, StudyError> {
    let committed = repo.join("results").join("training");
    let cache = slaf_nn::cache::default_cache_dir();
    let runs = train_plan(
        mnist,
        plan,
        Some(&committed),
        &cache,
        false,
        true,
        &mut |l| println!("{l}"),
    )?;
    Ok(runs.into_iter().map(|r| r.weights).collect())
}

/// A copy of the run of `arch` with activation `variant` among `runs`.
pub fn pick(runs: &[WeightsFile], arch: Arch, variant: Variant) -> Result<WeightsFile, StudyError> {
    runs.iter()
        .find(|w| w.config.model.name == arch.name() && w.config.variant == variant)
        .cloned()
        .ok_or_else(|| {
            StudyError::InvalidOption(format!(
                "no {}-{} run among the {} trained",
                arch.name(),
                variant.name(),
                runs.len()
            ))
        })
}

/// The key of a run's PyTorch reference accuracy in
/// [`slaf_report::paper`] (`ref.acc.<model>.<act>`).
pub fn reference_key(w: &WeightsFile) -> String {
    format!(
        "ref.acc.{}.{}",
        w.config.model.name.as_str().replace('-', "_"),
        w.config.variant.name().replace('-', "_")
    )
}

/// Test accuracy per run beside the PyTorch reference, with the recipe
/// (epochs, clipping), the training time and the largest input of each
/// activation layer (it sets the approximation interval and the CKKS
/// headroom): the table of `results/training/accuracy.csv`.
pub fn accuracy_table(runs: &[WeightsFile]) -> Result<DataFrame, StudyError> {
    let col = |f: &dyn Fn(&WeightsFile) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let max_in = |k: usize| {
        col(&move |w: &WeightsFile| {
            w.report
                .max_abs_input
                .get(k)
                .map_or(f64::NAN, |m| f64::from(m.overall()))
        })
    };
    let acts = runs
        .iter()
        .map(|w| w.report.max_abs_input.len())
        .max()
        .unwrap_or(0);
    let mut cols = vec![
        Column::new(
            "model".into(),
            runs.iter()
                .map(|w| w.config.model.name.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "act".into(),
            runs.iter()
                .map(|w| w.config.variant.name())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "epochs".into(),
            runs.iter()
                .map(|w| w.config.epochs as u32)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "test_accuracy_pct".into(),
            col(&|w| 100.0 * w.report.test.overall),
        ),
        Column::new(
            "pytorch_reference_pct".into(),
            runs.iter()
                .map(|w| slaf_report::paper::reference(&reference_key(w)).map(|r| r.paper))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "clip_grad".into(),
            runs.iter()
                .map(|w| w.config.clip_grad.map(f64::from))
                .collect::<Vec<_>>(),
        ),
        Column::new("train_seconds".into(), col(&|w| w.report.train_seconds)),
    ];
    for k in 0..acts.max(2) {
        cols.push(Column::new(
            format!("max_abs_input_act{}", k + 1).into(),
            max_in(k),
        ));
    }
    DataFrame::new_infer_height(cols)
        .map_err(|e| super::p2::table_err("building the accuracy table", e))
}

/// The first `count` training digits with their labels, as a PNG-friendly grid.
pub fn digits_figure(mnist: &Mnist, count: usize) -> Figure {
    let count = count.min(mnist.train.len());
    slaf_report::digits_grid(
        format!("The first {count} MNIST training digits"),
        (0..count)
            .filter_map(|i| mnist.train.image(i).map(|v| v.to_vec()))
            .collect(),
        28,
        (0..count)
            .map(|i| format!("label {}", mnist.train.labels[i]))
            .collect(),
    )
}

/// Every parameter tensor of `arch` built with `variant`'s activation:
/// name, shape and size, and the total on the last row.
pub fn parameters_table(arch: Arch, variant: Variant) -> Result<DataFrame, StudyError> {
    let cfg = TrainConfig::with_epochs(arch, variant, 1);
    let m = slaf_nn::Model::from_spec(&cfg.model, &cfg.act_spec(), cfg.seed, false)?;
    let state = m.state();
    let sizes: Vec<u64> = state
        .iter()
        .map(|t| t.shape.iter().product::<usize>() as u64)
        .collect();
    let mut names: Vec<String> = state.iter().map(|t| t.name.clone()).collect();
    let mut shapes: Vec<String> = state.iter().map(|t| format!("{:?}", t.shape)).collect();
    let mut counts = sizes.clone();
    names.push("total".into());
    shapes.push(String::new());
    counts.push(sizes.iter().sum());
    DataFrame::new_infer_height(vec![
        Column::new("tensor".into(), names),
        Column::new("shape".into(), shapes),
        Column::new("parameters".into(), counts),
    ])
    .map_err(|e| super::p2::table_err("building the parameter table", e))
}

/// The learning-rate range test of `arch` with ReLU (one epoch, the rate
/// growing geometrically from 1e-6 to 10, smoothed loss; the quick profile
/// uses the first `quick_limit` training images).
pub fn lr_range_figure(
    mnist: &Mnist,
    arch: Arch,
    profile: Profile,
    quick_limit: usize,
) -> Result<Figure, StudyError> {
    let mut cfg = TrainConfig::new(arch, Variant::Relu);
    if !profile.is_full() {
        cfg.limit_train = Some(quick_limit);
    }
    let points = slaf_nn::lr_find(mnist, &cfg, 1e-6, 10.0, 0.99)?;
    Ok(Figure::from(LineChart {
        title: format!(
            "{} (ReLU): learning-rate range test",
            arch.name().to_uppercase()
        ),
        x_label: "learning rate (log scale)".into(),
        y_label: "smoothed training loss".into(),
        series: vec![Series::new(
            "loss",
            points.iter().map(|p| (p.lr, p.loss)).collect(),
        )],
        log_x: true,
        ..Default::default()
    }))
}

/// Test accuracy per class (%), a column per run.
pub fn per_class_table(runs: &[WeightsFile]) -> Result<DataFrame, StudyError> {
    let classes = runs
        .iter()
        .map(|w| w.report.test.per_class.len())
        .max()
        .unwrap_or(0);
    let mut cols = vec![Column::new(
        "class".into(),
        (0..classes as u32).collect::<Vec<_>>(),
    )];
    for w in runs {
        let v: Vec<Option<f64>> = (0..classes)
            .map(|c| w.report.test.per_class.get(c).map(|a| 100.0 * a))
            .collect();
        cols.push(Column::new(
            format!("{} {}", w.config.model.name, w.config.variant.name()).into(),
            v,
        ));
    }
    DataFrame::new_infer_height(cols)
        .map_err(|e| super::p2::table_err("building the per-class table", e))
}

/// One panel per activation layer of a trained run: the learned polynomial
/// against ReLU, each on the input range observed for that layer (so a
/// small first-layer range is not flattened by a wide later one).
pub fn activation_panels(w: &WeightsFile) -> Result<Vec<Figure>, StudyError> {
    let form = InferenceModel::from_model(&w.to_model()?)?;
    let name = format!("{}-{}", w.config.model.name, w.config.variant.name());
    let grid = |r: f64| (0..=400).map(move |i| -r + 2.0 * r * f64::from(i) / 400.0);
    let mut panels = Vec::new();
    for (k, act) in form.acts().into_iter().enumerate() {
        let r = w
            .report
            .max_abs_input
            .get(k)
            .map_or(1.0, |m| f64::from(m.overall()))
            .max(1e-3);
        panels.push(Figure::from(LineChart {
            title: format!("{name} act{} on [-{r:.1}, {r:.1}]", k + 1),
            x_label: "input".into(),
            y_label: "output".into(),
            series: vec![
                Series::new("ReLU", grid(r).map(|x| (x, x.max(0.0))).collect()),
                Series::new(
                    format!("act{}", k + 1),
                    grid(r).map(|x| (x, act.apply(x))).collect(),
                ),
            ],
            ..Default::default()
        }));
    }
    Ok(panels)
}

/// The learned activations of a trained run against ReLU, one panel per
/// activation layer ([`activation_panels`]).
pub fn activations_figure(w: &WeightsFile) -> Result<Figure, StudyError> {
    let panels = activation_panels(w)?;
    let cols = panels.len().max(1);
    Ok(Figure::Grid {
        title: format!(
            "{}-{}: learned activations vs ReLU on the observed inputs",
            w.config.model.name,
            w.config.variant.name()
        ),
        panels,
        cols,
    })
}

/// [`activations_figure`] of every polynomial run among `runs` (ReLU runs
/// have nothing to show), saved as `dir/<model>_<act>_activations.svg|png`
/// (`-` in names becomes `_`) and shown inline as one grid with a row per
/// run and a panel per activation; returns how many runs.
pub fn save_activation_figures(runs: &[WeightsFile], dir: &Path) -> Result<usize, StudyError> {
    let mut panels = Vec::new();
    let mut cols = 1;
    let mut n = 0;
    for w in runs.iter().filter(|w| w.config.variant != Variant::Relu) {
        let stem = format!(
            "{}_{}_activations",
            w.config.model.name,
            w.config.variant.name()
        )
        .replace('-', "_");
        activations_figure(w)?.save(dir, &stem)?;
        let p = activation_panels(w)?;
        cols = cols.max(p.len());
        panels.extend(p);
        n += 1;
    }
    if !panels.is_empty() {
        Figure::Grid {
            title: "Learned activations vs ReLU".into(),
            panels,
            cols,
        }
        .evcxr_display();
    }
    Ok(n)
}

/// Test accuracy per epoch of training runs: one panel per network, one
/// line per activation, and a y range that shows where the variants differ
/// (from the 10th percentile of the panel's points to its best, so a
/// divergent epoch runs off the bottom instead of flattening the rest).
pub fn learning_curves_figure(runs: &[WeightsFile]) -> Figure {
    let mut nets: Vec<String> = Vec::new();
    for w in runs {
        if !nets.contains(&w.config.model.name) {
            nets.push(w.config.model.name.clone());
        }
    }
    let panels: Vec<Figure> = nets
        .iter()
        .map(|net| {
            let series: Vec<Series> = runs
                .iter()
                .filter(|w| &w.config.model.name == net)
                .map(|w| {
                    let pts = w.report.epochs.iter().enumerate();
                    Series::new(
                        w.config.variant.name(),
                        pts.map(|(i, e)| ((i + 1) as f64, 100.0 * e.test_accuracy))
                            .collect(),
                    )
                })
                .collect();
            let mut ys: Vec<f64> = series.iter().flat_map(|s| &s.points).map(|p| p.1).collect();
            ys.sort_by(f64::total_cmp);
            let y_range = match (ys.get(ys.len() / 10), ys.last()) {
                (Some(&lo), Some(&hi)) if hi > lo => {
                    let pad = 0.08 * (hi - lo);
                    Some((lo - pad, (hi + pad).min(100.0)))
                }
                _ => None,
            };
            Figure::from(LineChart {
                title: net.clone(),
                x_label: "epoch".into(),
                y_label: "test accuracy (%)".into(),
                series,
                y_range,
                ..Default::default()
            })
        })
        .collect();
    let cols = panels.len().min(2);
    Figure::Grid {
        title: "Test accuracy per epoch".into(),
        panels,
        cols,
    }
}
