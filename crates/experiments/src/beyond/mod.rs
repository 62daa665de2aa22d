//! The study beyond the papers: SLAF against x² and ReLU on MNIST and
//! Fashion-MNIST, on the papers' two CNNs and two deeper specs (`cnn3`, three
//! activation layers; `cnn4`, the same plus one dense layer and a fourth
//! activation), for SLAF degrees 2, 3 and 4 and SLAF-P.
//!
//! One *cell* is (data set, network, activation). For each cell the study
//! trains one run per seed (mean ± sd of the test accuracy) and, for the
//! first seed, runs encrypted inference with the planner's automatic 128-bit
//! parameters: batched on the plan's test images (encrypted accuracy,
//! agreement, throughput) and per image on a few (latency). Every cell is
//! one JSON file in the study's `cells/` folder, so an interrupted study
//! resumes where it stopped and the tables and figures are built from those
//! files alone. Below the cells, every trained seed is one small record in
//! `seeds/` (accuracy, time, learned activations, no weights), so training
//! done on one machine carries over to the next through the repository.
//!
//! Invariants: a cell file is reused only when its [`CellSignature`] equals
//! the plan's; a cell whose encrypted argmax differs from the plaintext one
//! keeps every such image with its plaintext logit margin
//! ([`Disagreement`]), so that a disagreement is reported and explained,
//! never dropped; a seed record is reused only under its model-cache key, and
//! a model retrained for an encrypted run must reproduce its record's test
//! accuracy exactly.

use super::{Profile, StudyError};
use crate::harness::{InferenceOutcome, InferenceRequest, ModelSource, run};
use serde::{Deserialize, Serialize};
use slaf_ckks::KeySeed;
use slaf_he_nn::Mode;
use slaf_he_nn::plan::ParamsChoice;
use slaf_nn::ActKind;
use slaf_nn::cache::train_cached;
use slaf_nn::data::{Dataset, Mnist};
use slaf_nn::inference::InferenceAct;
use slaf_nn::{ModelSpec, TrainConfig, Variant, WeightsFile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An activation of the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Act {
    /// ReLU: plaintext only (not evaluable under CKKS).
    Relu,
    /// The square x².
    X2,
    /// SLAF of the given degree, trained with the weights.
    Slaf(usize),
    /// ReLU written through a fitted sign approximation (P1's SLAF-P).
    SlafP,
}

impl Act {
    /// The grid of the study: ReLU, x², SLAF degree 2, 3 and 4, SLAF-P.
    pub const GRID: [Act; 6] = [
        Act::Relu,
        Act::X2,
        Act::Slaf(2),
        Act::Slaf(3),
        Act::Slaf(4),
        Act::SlafP,
    ];

    /// Which activation it is (the one vocabulary, [`ActKind`]).
    pub fn kind(self) -> ActKind {
        match self {
            Act::Relu => ActKind::Relu,
            Act::X2 => ActKind::X2,
            Act::Slaf(_) => ActKind::Slaf,
            Act::SlafP => ActKind::SlafP,
        }
    }

    /// `relu`, `x2`, `slaf2`, `slaf3`, `slaf4`, `slaf-p`: the kind's name,
    /// with the degree after a SLAF's.
    pub fn name(self) -> String {
        match self {
            Act::Slaf(d) => format!("{}{d}", ActKind::Slaf),
            other => other.kind().to_string(),
        }
    }

    /// The training variant.
    pub fn variant(self) -> Variant {
        match self.kind() {
            ActKind::Relu => Variant::Relu,
            ActKind::X2 => Variant::X2,
            ActKind::Slaf => Variant::Slaf,
            ActKind::SlafP => Variant::SlafP,
        }
    }

    /// The SLAF degree (None for the other activations).
    pub fn degree(self) -> Option<usize> {
        match self {
            Act::Slaf(d) => Some(d),
            _ => None,
        }
    }

    /// Whether the study runs it under CKKS (every polynomial activation).
    pub fn encrypted(self) -> bool {
        self != Act::Relu
    }
}

/// What the study runs: the grid and the protocol of each cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BeyondPlan {
    /// The profile it was made for.
    pub profile: Profile,
    /// Data sets.
    pub datasets: Vec<Dataset>,
    /// Networks: names of built-in specs (`models/*.toml`).
    pub nets: Vec<String>,
    /// Activations.
    pub acts: Vec<Act>,
    /// What runs encrypted: each entry a network, optionally with a data
    /// set before it and an activation after it (`cnn1`: its polynomial
    /// cells on every data set; `fashion-mnist/cnn3/slaf3`: one cell); the
    /// other cells train only (see [`BeyondPlan::encrypting_only`]).
    pub encrypted_nets: Vec<String>,
    /// What each cell repeats and measures (its `encrypted` flag is set
    /// per cell by [`BeyondPlan::signature_of`]).
    pub signature: CellSignature,
}

/// The protocol of one cell; a stored cell is reused only when it matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellSignature {
    /// Training seeds (the first one is encrypted).
    pub seeds: Vec<u64>,
    /// Epochs of P1's recipe (SGD + one-cycle).
    pub epochs: usize,
    /// Only the first N training images (None: all 60,000).
    pub limit_train: Option<usize>,
    /// Only the first N test images for the plaintext accuracy (None: all).
    pub limit_test: Option<usize>,
    /// Test images of the batched encrypted run (None: all 10,000).
    pub batched_images: Option<usize>,
    /// Test images of the per-image encrypted run (latency).
    pub per_image_images: usize,
    /// Whether the cell runs encrypted (polynomial activation on one of
    /// the plan's encrypted networks).
    pub encrypted: bool,
}

impl CellSignature {
    /// Whether a cell stored under `stored` answers a request for `self`:
    /// the same protocol, or the same training protocol with encrypted
    /// runs that `self` does not ask for (an `--encrypt` selection that
    /// leaves a cell out must keep, not erase, its stored encrypted runs).
    pub fn satisfied_by(&self, stored: &CellSignature) -> bool {
        self == stored
            || (!self.encrypted
                && stored.encrypted
                && *self
                    == CellSignature {
                        encrypted: false,
                        ..stored.clone()
                    })
    }
}

/// The plan of a profile. Full: 2 data sets × cnn1, cnn2, cnn3, cnn4 × the
/// six activations × 3 seeds × 30 epochs, every polynomial cell encrypted on
/// all 10,000 test images batched and on 20 per image (hours). Quick: the
/// same grid without cnn2, 2 seeds, 1 epoch on 6,000 training images; only
/// cnn1 runs encrypted (200 images batched, 2 per image), because a batched
/// run costs a full ciphertext pass however few images it holds (about two
/// minutes for cnn3). Tiny: MNIST × cnn1 × ReLU and x² on a few hundred
/// images (seconds; orchestration tests).
pub fn beyond_plan(profile: Profile) -> BeyondPlan {
    let nets = |n: &[&str]| n.iter().map(|s| s.to_string()).collect();
    match profile {
        Profile::Full => BeyondPlan {
            profile,
            datasets: Dataset::ALL.to_vec(),
            nets: nets(&["cnn1", "cnn2", "cnn3", "cnn4"]),
            acts: Act::GRID.to_vec(),
            encrypted_nets: nets(&["cnn1", "cnn2", "cnn3", "cnn4"]),
            signature: CellSignature {
                seeds: vec![73, 74, 75],
                epochs: 30,
                limit_train: None,
                limit_test: None,
                batched_images: None,
                per_image_images: 20,
                encrypted: true,
            },
        },
        Profile::Quick => BeyondPlan {
            profile,
            datasets: Dataset::ALL.to_vec(),
            nets: nets(&["cnn1", "cnn3", "cnn4"]),
            acts: Act::GRID.to_vec(),
            encrypted_nets: nets(&["cnn1"]),
            signature: CellSignature {
                seeds: vec![73, 74],
                epochs: 1,
                limit_train: Some(6000),
                limit_test: Some(2000),
                batched_images: Some(200),
                per_image_images: 2,
                encrypted: true,
            },
        },
        Profile::Tiny => BeyondPlan {
            profile,
            datasets: vec![Dataset::Mnist],
            nets: nets(&["cnn1"]),
            acts: vec![Act::Relu, Act::X2],
            encrypted_nets: nets(&["cnn1"]),
            signature: CellSignature {
                seeds: vec![73, 74],
                epochs: 1,
                limit_train: Some(600),
                limit_test: Some(200),
                batched_images: Some(16),
                per_image_images: 1,
                encrypted: true,
            },
        },
    }
}

impl BeyondPlan {
    /// The protocol of one cell: the plan's, encrypted when the activation
    /// is a polynomial and an entry of [`BeyondPlan::encrypted_nets`] names
    /// the cell.
    pub fn signature_of(&self, dataset: Dataset, net: &str, act: Act) -> CellSignature {
        let named = |e: &String| {
            let (d, n, a) = selection_parts(e);
            d.is_none_or(|d| d == dataset.name()) && n == net && a.is_none_or(|a| a == act.name())
        };
        CellSignature {
            encrypted: act.encrypted() && self.encrypted_nets.iter().any(named),
            ..self.signature.clone()
        }
    }

    /// The same plan with only `selection` encrypted, so that part of the
    /// grid can be measured first. Each entry names a network and
    /// optionally a data set before it and an activation after it:
    /// `cnn1`, `mnist/cnn3`, `cnn4/x2`, `fashion-mnist/cnn2/slaf3`; empty
    /// or `none`: nothing (a `none` entry is ignored). Cells outside it are
    /// stored as plaintext-only, and a later run of the whole plan encrypts
    /// them, reusing the encrypted cells already stored. An entry naming a data set, network or activation
    /// outside the plan (or ReLU, which has no encrypted form) is refused.
    pub fn encrypting_only(mut self, selection: &[String]) -> Result<Self, StudyError> {
        let refuse = |e: &str, what: &str, v: &str, has: Vec<String>| {
            Err(StudyError::InvalidOption(format!(
                "encrypted selection {e:?}: the {} profile has no {what} {v:?} (it has {})",
                self.profile.name(),
                has.join(", ")
            )))
        };
        let selection: Vec<String> = selection.iter().filter(|e| *e != "none").cloned().collect();
        for e in &selection {
            let (d, n, a) = selection_parts(e);
            if e.split('/').count() > 3 {
                return refuse(e, "cell", e, vec!["[data set/]network[/activation]".into()]);
            }
            if let Some(d) = d.filter(|d| !self.datasets.iter().any(|x| x.name() == *d)) {
                let has = self.datasets.iter().map(|x| x.name().to_string()).collect();
                return refuse(e, "data set", d, has);
            }
            if !self.nets.iter().any(|x| x == n) {
                return refuse(e, "network", n, self.nets.clone());
            }
            let polys = || self.acts.iter().filter(|a| a.encrypted()).map(|a| a.name());
            if let Some(a) = a.filter(|a| !polys().any(|x| x == *a)) {
                return refuse(e, "encrypted activation", a, polys().collect());
            }
        }
        self.encrypted_nets = selection;
        Ok(self)
    }

    /// Every cell, data set by data set, network by network.
    pub fn cells(&self) -> Vec<(Dataset, String, Act)> {
        let mut v = Vec::new();
        for &d in &self.datasets {
            for n in &self.nets {
                for &a in &self.acts {
                    v.push((d, n.clone(), a));
                }
            }
        }
        v
    }

    /// The training configuration of a cell for one seed: P1's recipe with
    /// the plan's epochs and limits.
    pub fn train_config(
        &self,
        dataset: Dataset,
        net: &str,
        act: Act,
        seed: u64,
    ) -> Result<TrainConfig, StudyError> {
        let spec = ModelSpec::preset(net)?;
        let s = &self.signature;
        let mut c = TrainConfig::spec_with_epochs(spec, act.variant(), s.epochs);
        c.dataset = dataset;
        c.seed = seed;
        c.limit_train = s.limit_train;
        c.limit_test = s.limit_test;
        if let Some(d) = act.degree() {
            c.degree = d;
        }
        Ok(c)
    }
}

impl std::fmt::Display for BeyondPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.signature;
        let names = |v: Vec<String>| v.join(", ");
        writeln!(
            f,
            "{} profile: {} cells = data sets [{}] × networks [{}] × activations [{}]",
            self.profile.name(),
            self.cells().len(),
            names(self.datasets.iter().map(|d| d.name().to_string()).collect()),
            names(self.nets.clone()),
            names(self.acts.iter().map(|a| a.name()).collect()),
        )?;
        write!(
            f,
            "per cell: seeds {:?} × {} epoch(s) on {} training images; encrypted (first seed, automatic 128-bit parameters; networks [{}]): {} test images batched, {} per image",
            s.seeds,
            s.epochs,
            s.limit_train.map_or("all".into(), |n| n.to_string()),
            if self.encrypted_nets.is_empty() {
                "none".into()
            } else {
                names(self.encrypted_nets.clone())
            },
            s.batched_images.map_or("all".into(), |n| n.to_string()),
            s.per_image_images
        )
    }
}

/// The parts of an encrypted-selection entry (see
/// [`BeyondPlan::encrypting_only`]): data set, network, activation. A
/// two-part entry is `data set/network` when its first part is a data set
/// name, else `network/activation`.
fn selection_parts(e: &str) -> (Option<&str>, &str, Option<&str>) {
    let p: Vec<&str> = e.split('/').collect();
    let is_set = |x: &str| Dataset::ALL.iter().any(|d| d.name() == x);
    match p.as_slice() {
        [n] => (None, n, None),
        [d, n] if is_set(d) => (Some(d), n, None),
        [n, a] => (None, n, Some(a)),
        [d, n, a, ..] => (Some(d), n, Some(a)),
        [] => (None, e, None),
    }
}

/// A seed whose training diverged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DivergedSeed {
    /// The seed.
    pub seed: u64,
    /// The training error, e.g. the epoch and batch of the non-finite loss.
    pub detail: String,
}

/// One learned activation layer of a cell's first seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearnedAct {
    /// Power-basis coefficients `a0..ad` (None: ReLU).
    pub coeffs: Option<Vec<f64>>,
    /// Largest |input| seen on the training set.
    pub max_abs_input: f64,
}

impl LearnedAct {
    /// The activation at `x`.
    pub fn apply(&self, x: f64) -> f64 {
        match &self.coeffs {
            None => x.max(0.0),
            Some(c) => c.iter().rev().fold(0.0, |acc, &a| acc * x + a),
        }
    }
}

/// An image whose encrypted argmax differs from the plaintext one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Disagreement {
    /// Index in the test split.
    pub index: usize,
    /// True label.
    pub label: u8,
    /// Plaintext prediction.
    pub plain_pred: u8,
    /// Encrypted prediction.
    pub he_pred: u8,
    /// Plaintext top-1 minus top-2 logit: a flip is expected when it is
    /// below the run's logit error.
    pub plain_margin: f64,
    /// Max |encrypted − plaintext| over this image's logits.
    pub max_logit_error: f64,
}

/// One encrypted run of a cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeMeasure {
    /// Test images.
    pub images: usize,
    /// Plaintext accuracy of the inference form on them, %.
    pub plain_accuracy_pct: f64,
    /// Accuracy of the decrypted predictions, %.
    pub he_accuracy_pct: f64,
    /// Encrypted argmax = plaintext argmax, % of images.
    pub agreement_pct: f64,
    /// Max |encrypted − plaintext logit|.
    pub max_logit_error: f64,
    /// Wall time per image (batched: amortised), ms.
    pub ms_per_image: f64,
    /// Key generation and model preparation, s.
    pub setup_seconds: f64,
    /// Ring degree N the planner chose.
    pub n: usize,
    /// Sum of the chain's bits.
    pub total_bits: u32,
    /// The parameters in one line.
    pub params: String,
    /// Multiplicative depth and its breakdown per layer.
    pub depth: usize,
    /// Per-layer depth, e.g. `conv 1 + act1 2 + …`.
    pub depth_breakdown: String,
    /// Every image whose argmax differs.
    pub disagreements: Vec<Disagreement>,
    /// Worker threads.
    pub threads: usize,
    /// 1-minute load average at the end of the run.
    pub load_average: Option<f64>,
    /// CPU model.
    pub cpu: Option<String>,
    /// SIMD features of the NTT kernels.
    pub simd: Option<Vec<String>>,
}

/// Everything the study measured for one cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Data set name.
    pub dataset: String,
    /// Network name.
    pub net: String,
    /// Activation name ([`Act::name`]).
    pub act: String,
    /// SLAF degree, if any.
    pub degree: Option<usize>,
    /// Activation layers of the network.
    pub act_layers: usize,
    /// The protocol it was measured with.
    pub signature: CellSignature,
    /// The seeds whose training finished, in order.
    pub trained_seeds: Vec<u64>,
    /// Test accuracy per trained seed, %.
    pub test_accuracy_pct: Vec<f64>,
    /// Training time per trained seed, s.
    pub train_seconds: Vec<f64>,
    /// Seeds whose training diverged (a non-finite loss), with the error:
    /// reported, never silently dropped.
    pub diverged: Vec<DivergedSeed>,
    /// The first trained seed's activations (empty when every seed diverged).
    pub learned: Vec<LearnedAct>,
    /// Batched encrypted run (None for ReLU).
    pub batched: Option<HeMeasure>,
    /// Per-image encrypted run (None for ReLU).
    pub per_image: Option<HeMeasure>,
}

impl CellResult {
    /// Mean test accuracy over the trained seeds, % (NaN when none trained).
    pub fn mean(&self) -> f64 {
        let v = &self.test_accuracy_pct;
        if v.is_empty() {
            return f64::NAN;
        }
        v.iter().sum::<f64>() / v.len() as f64
    }

    /// Sample standard deviation over the seeds, % (0 for one seed).
    pub fn sd(&self) -> f64 {
        let v = &self.test_accuracy_pct;
        if v.len() < 2 {
            return 0.0;
        }
        let m = self.mean();
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    }

    /// `<dataset>-<net>-<act>`, the stem of its file.
    pub fn key(&self) -> String {
        format!("{}-{}-{}", self.dataset, self.net, self.act)
    }
}

fn margin(w: &WeightsFile, image: &[f64]) -> Result<f64, StudyError> {
    let mut l = w.inference.forward(image)?;
    l.sort_by(|a, b| b.total_cmp(a));
    Ok(l.first().copied().unwrap_or(0.0) - l.get(1).copied().unwrap_or(0.0))
}

/// One encrypted run of a trained cell: automatic parameters, keys seeded
/// from the data seed (reproducible; for tests only).
fn he_measure(
    w: &WeightsFile,
    mode: Mode,
    images: Option<usize>,
    data: &Mnist,
    data_dir: Option<&Path>,
    quiet: bool,
) -> Result<HeMeasure, StudyError> {
    let mut req = InferenceRequest::new(ModelSource::Weights(Box::new(w.clone())));
    req.images = images;
    req.mode = mode;
    req.params = Some(ParamsChoice::Auto);
    req.seed = Some(KeySeed::for_tests(slaf_nn::data::DEFAULT_SEED));
    req.data_dir = data_dir.map(Path::to_path_buf);
    req.quiet = quiet;
    let InferenceOutcome { summary: s, rows } = run(&req)?;
    let mut disagreements = Vec::new();
    for r in rows.iter().filter(|r| r.plain_pred != r.he_pred) {
        let img = data.test.image(r.index).ok_or_else(|| {
            StudyError::InvalidOption(format!("no test image {} for the margin", r.index))
        })?;
        let x: Vec<f64> = img.iter().map(|&v| f64::from(v)).collect();
        disagreements.push(Disagreement {
            index: r.index,
            label: r.label,
            plain_pred: r.plain_pred,
            he_pred: r.he_pred,
            plain_margin: margin(w, &x)?,
            max_logit_error: r.max_logit_error,
        });
    }
    Ok(HeMeasure {
        images: s.images,
        plain_accuracy_pct: 100.0 * s.plain_accuracy,
        he_accuracy_pct: 100.0 * s.he_accuracy,
        agreement_pct: 100.0 * s.agreement,
        max_logit_error: s.max_logit_error,
        ms_per_image: 1e3 * s.seconds_per_image,
        setup_seconds: s.setup_seconds,
        n: s.params.n,
        total_bits: s.params.total_bits,
        params: s.params.description.clone(),
        depth: s.params.depth,
        depth_breakdown: s.params.depth_breakdown.clone(),
        disagreements,
        threads: s.threads,
        load_average: s.load_average,
        cpu: s.cpu.clone(),
        simd: s.simd.clone(),
    })
}

/// Where the study finds its data and keeps its models.
#[derive(Clone, Debug)]
pub struct BeyondDirs {
    /// The study's folder: `cells/`, tables and figures go there.
    pub out: PathBuf,
    /// The trained-model cache.
    pub cache: PathBuf,
    /// The MNIST folder (None: the default); Fashion-MNIST is always read
    /// from its default place.
    pub mnist: Option<PathBuf>,
}

impl BeyondDirs {
    /// A notebook's folders: the committed `results/beyond/` in the full
    /// profile (so its stored cells load at once), `results/<profile>/beyond/`
    /// (git-ignored) otherwise, as `slaf-he reproduce` uses them; the default
    /// model cache; the repository's MNIST.
    pub fn for_notebook(env: &super::NotebookEnv) -> Self {
        let results = env.repo.join("results");
        let out = if env.profile.is_full() {
            results.join("beyond")
        } else {
            results.join(env.profile.name()).join("beyond")
        };
        Self {
            out,
            cache: slaf_nn::cache::default_cache_dir(),
            mnist: Some(env.repo.join("data").join("mnist")),
        }
    }

    fn data_dir(&self, d: Dataset) -> Option<&Path> {
        match d {
            Dataset::Mnist => self.mnist.as_deref(),
            Dataset::FashionMnist => None,
        }
    }
}

/// One trained seed of a cell, as stored in the study's `seeds/` folder:
/// what the cell's tables need from it, without its weights. The study
/// resumes from these across machines: only the encrypted seed's model is
/// needed again, and training is deterministic, so it is retrained (and
/// checked against this record) when the model cache lacks it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedRecord {
    /// The seed.
    pub seed: u64,
    /// The model cache key of its configuration (configuration, data
    /// checksums, crate version): a record is reused only for this key.
    pub config_key: String,
    /// Test accuracy, % (NaN-free: a diverged seed has `diverged` instead).
    pub test_accuracy_pct: f64,
    /// Training time, s.
    pub train_seconds: f64,
    /// The training error when the seed diverged.
    pub diverged: Option<String>,
    /// Its activation layers (empty when it diverged).
    pub learned: Vec<LearnedAct>,
}

fn learned_acts(w: &WeightsFile) -> Vec<LearnedAct> {
    w.inference
        .acts()
        .into_iter()
        .enumerate()
        .map(|(k, a)| LearnedAct {
            coeffs: match a {
                InferenceAct::Relu => None,
                InferenceAct::Poly { coeffs } => Some(coeffs.clone()),
            },
            max_abs_input: w
                .report
                .max_abs_input
                .get(k)
                .map_or(f64::NAN, |m| f64::from(m.overall())),
        })
        .collect()
}

/// `<dataset>-<net>-<act>`: the stem of a cell's file ([`CellResult::key`]).
fn cell_key(cell: &(Dataset, String, Act)) -> String {
    format!("{}-{}-{}", cell.0.name(), cell.1, cell.2.name())
}

/// The file of one seed's record: `<out>/seeds/<cell key>-s<seed>.json`.
fn seed_path(dirs: &BeyondDirs, cell: &(Dataset, String, Act), seed: u64) -> PathBuf {
    dirs.out
        .join("seeds")
        .join(format!("{}-s{seed}.json", cell_key(cell)))
}

/// The record of one seed of a cell: the stored one when its configuration
/// key matches, else trained now (through the model cache) and stored. The
/// flag says whether it was stored already.
pub fn train_seed(
    plan: &BeyondPlan,
    cell: &(Dataset, String, Act),
    seed: u64,
    data: &Mnist,
    dirs: &BeyondDirs,
) -> Result<(SeedRecord, bool), StudyError> {
    let cfg = plan.train_config(cell.0, &cell.1, cell.2, seed)?;
    let config_key = slaf_nn::cache::cache_key(&cfg, data)?;
    let path = seed_path(dirs, cell, seed);
    if let Some(r) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<SeedRecord>(&t).ok())
        .filter(|r| r.config_key == config_key && r.seed == seed)
    {
        return Ok((r, true));
    }
    let r = match train_cached(data, &cfg, &dirs.cache, false, true, &mut |_| ()) {
        Ok((w, _)) => SeedRecord {
            seed,
            config_key,
            test_accuracy_pct: 100.0 * w.report.test.overall,
            train_seconds: w.report.train_seconds,
            diverged: None,
            learned: learned_acts(&w),
        },
        // A diverged seed is recorded and the study goes on.
        Err(e @ slaf_nn::NnError::NonFiniteLoss { .. }) => SeedRecord {
            seed,
            config_key,
            test_accuracy_pct: 0.0,
            train_seconds: 0.0,
            diverged: Some(e.to_string()),
            learned: vec![],
        },
        Err(e) => return Err(e.into()),
    };
    let dir = dirs.out.join("seeds");
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let text = serde_json::to_string_pretty(&r).map_err(|e| {
        StudyError::InvalidOption(format!("cannot serialise {}: {e}", path.display()))
    })?;
    slaf_report::atomic_write(&path, text.as_bytes())?;
    Ok((r, false))
}

/// The model of a recorded seed: from the cache, or retrained (training is
/// deterministic); a retrained model whose test accuracy differs from the
/// record is an error, never silently measured.
fn seed_model(
    plan: &BeyondPlan,
    cell: &(Dataset, String, Act),
    rec: &SeedRecord,
    data: &Mnist,
    dirs: &BeyondDirs,
) -> Result<WeightsFile, StudyError> {
    let cfg = plan.train_config(cell.0, &cell.1, cell.2, rec.seed)?;
    let (w, _) = train_cached(data, &cfg, &dirs.cache, false, true, &mut |_| ())?;
    let acc = 100.0 * w.report.test.overall;
    if acc != rec.test_accuracy_pct {
        return Err(StudyError::InvalidOption(format!(
            "{} seed {}: the model has test accuracy {acc} %, its record {} %: training was not reproducible (delete {} to retrain)",
            cell_key(cell),
            rec.seed,
            rec.test_accuracy_pct,
            seed_path(dirs, cell, rec.seed).display()
        )));
    }
    Ok(w)
}

/// Train and measure one cell: every seed through [`train_seed`], then the
/// encrypted runs on the first trained seed's model.
pub fn run_cell(
    plan: &BeyondPlan,
    cell: &(Dataset, String, Act),
    data: &Mnist,
    dirs: &BeyondDirs,
    quiet: bool,
) -> Result<CellResult, StudyError> {
    let (dataset, net, act) = (cell.0, cell.1.as_str(), cell.2);
    let sig = &plan.signature_of(dataset, net, act);
    let mut records = Vec::new();
    for &seed in &sig.seeds {
        records.push(train_seed(plan, cell, seed, data, dirs)?.0);
    }
    let (ok, bad): (Vec<&SeedRecord>, Vec<&SeedRecord>) =
        records.iter().partition(|r| r.diverged.is_none());
    let first = ok.first().copied();
    let (batched, per_image) = match first {
        Some(rec) if sig.encrypted => {
            let w = seed_model(plan, cell, rec, data, dirs)?;
            let dir = dirs.data_dir(dataset);
            let b = he_measure(&w, Mode::Batched, sig.batched_images, data, dir, quiet)?;
            let p = he_measure(
                &w,
                Mode::PerImage,
                Some(sig.per_image_images),
                data,
                dir,
                quiet,
            )?;
            (Some(b), Some(p))
        }
        _ => (None, None),
    };
    Ok(CellResult {
        dataset: dataset.name().into(),
        net: net.into(),
        act: act.name(),
        degree: act.degree(),
        act_layers: ModelSpec::preset(net)?.act_count(),
        signature: sig.clone(),
        trained_seeds: ok.iter().map(|r| r.seed).collect(),
        test_accuracy_pct: ok.iter().map(|r| r.test_accuracy_pct).collect(),
        train_seconds: ok.iter().map(|r| r.train_seconds).collect(),
        diverged: bad
            .iter()
            .map(|r| DivergedSeed {
                seed: r.seed,
                detail: r.diverged.clone().unwrap_or_default(),
            })
            .collect(),
        learned: first.map(|r| r.learned.clone()).unwrap_or_default(),
        batched,
        per_image,
    })
}

/// Run every cell of `plan` into `dirs.out/cells/` (a stored cell with the
/// same signature is reused unless `force`), one log line per cell; the
/// results in plan order.
pub fn run_beyond(
    plan: &BeyondPlan,
    dirs: &BeyondDirs,
    force: bool,
    quiet: bool,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<CellResult>, StudyError> {
    let cells_dir = dirs.out.join("cells");
    std::fs::create_dir_all(&cells_dir).map_err(io_err(&cells_dir))?;
    let cells = plan.cells();
    let mut data: BTreeMap<&'static str, Mnist> = BTreeMap::new();
    let mut out = Vec::with_capacity(cells.len());
    for (i, cell) in cells.iter().enumerate() {
        let key = cell_key(cell);
        let path = cells_dir.join(format!("{key}.json"));
        let stored = (!force)
            .then(|| std::fs::read_to_string(&path).ok())
            .flatten()
            .and_then(|t| serde_json::from_str::<CellResult>(&t).ok())
            .filter(|c| {
                plan.signature_of(cell.0, &cell.1, cell.2)
                    .satisfied_by(&c.signature)
            });
        let (r, how) = match stored {
            Some(c) => (c, "stored"),
            None => {
                let d = loaded(&mut data, cell.0, dirs)?;
                let r = run_cell(plan, cell, d, dirs, quiet)?;
                let text = serde_json::to_string_pretty(&r).map_err(|e| {
                    StudyError::InvalidOption(format!("cannot serialise cell {key}: {e}"))
                })?;
                slaf_report::atomic_write(&path, text.as_bytes())?;
                (r, "measured")
            }
        };
        log(&format!(
            "[{}/{}] {}",
            i + 1,
            cells.len(),
            cell_line(&r, how)
        ));
        out.push(r);
    }
    Ok(out)
}

/// Train every seed of every cell of the plan into `dirs.out/seeds/` (and
/// the model cache), without encrypted runs or cell files: the study's
/// training, which may run in the background, apart from its timed
/// encrypted runs. A later [`run_beyond`] reuses the seed records, and the
/// cached models where this machine still has them.
pub fn train_beyond(
    plan: &BeyondPlan,
    dirs: &BeyondDirs,
    log: &mut dyn FnMut(&str),
) -> Result<(), StudyError> {
    let mut cells = plan.cells();
    // Cheapest first, so that an interrupted run leaves the most cells:
    // CNN2 trains ~8 times slower than the others.
    cells.sort_by_key(|c| c.1 == "cnn2");
    let mut data: BTreeMap<&'static str, Mnist> = BTreeMap::new();
    for (i, cell) in cells.iter().enumerate() {
        let set = loaded(&mut data, cell.0, dirs)?;
        for &seed in &plan.signature.seeds {
            let (r, stored) = train_seed(plan, cell, seed, set, dirs)?;
            let what = match (&r.diverged, stored) {
                (Some(e), _) => format!("diverged: {e}"),
                (None, true) => format!("{:.2} % (stored)", r.test_accuracy_pct),
                (None, false) => format!(
                    "{:.2} % (trained in {:.0} s)",
                    r.test_accuracy_pct, r.train_seconds
                ),
            };
            log(&format!(
                "[{}/{}] {} seed {seed}: {what}",
                i + 1,
                cells.len(),
                cell_key(cell)
            ));
        }
    }
    Ok(())
}

/// [`run_beyond`] for a notebook ([`BeyondDirs::for_notebook`]): one
/// printed line per cell, progress bars hidden. The full profile only
/// loads the committed cells ([`committed_cells`]): its hours of training
/// and encryption belong to `slaf-he reproduce --full --only beyond`.
pub fn run_beyond_for_notebook(
    env: &super::NotebookEnv,
    plan: &BeyondPlan,
) -> Result<Vec<CellResult>, StudyError> {
    let dirs = BeyondDirs::for_notebook(env);
    if plan.profile == Profile::Full {
        let cells = committed_cells(plan, &dirs.out)?;
        for (i, c) in cells.iter().enumerate() {
            println!("[{}/{}] {}", i + 1, cells.len(), cell_line(c, "committed"));
        }
        return Ok(cells);
    }
    run_beyond(plan, &dirs, false, true, &mut |l| println!("{l}"))
}

/// The stored cells of `dir` (see [`load_beyond`]), checked to be every
/// cell of `plan` under its protocol (seeds, epochs, images). A cell may
/// be stored without its encrypted runs (`reproduce --encrypt`); the
/// table shows it so. A missing cell or one of another protocol is an
/// error naming it.
pub fn committed_cells(plan: &BeyondPlan, dir: &Path) -> Result<Vec<CellResult>, StudyError> {
    let cells = load_beyond(dir)?;
    for want in plan.cells() {
        let key = cell_key(&want);
        let Some(c) = cells.iter().find(|c| c.key() == key) else {
            return Err(StudyError::InvalidOption(format!(
                "{}: cell {key} is not stored ({} of {} cells are): run `slaf-he reproduce --full --only beyond`",
                dir.display(),
                cells.len(),
                plan.cells().len()
            )));
        };
        let base = CellSignature {
            encrypted: c.signature.encrypted,
            ..plan.signature.clone()
        };
        if c.signature != base {
            return Err(StudyError::InvalidOption(format!(
                "{}: cell {key} was stored under another protocol ({:?}, the plan's is {:?})",
                dir.display(),
                c.signature,
                base
            )));
        }
    }
    Ok(cells)
}

fn cell_line(r: &CellResult, how: &str) -> String {
    let he = match (&r.batched, &r.per_image) {
        (Some(b), Some(p)) => format!(
            "; encrypted {:.2} % (agreement {:.2} %), {:.0} ms per image, {:.2} ms batched, N = {}, depth {}",
            b.he_accuracy_pct, b.agreement_pct, p.ms_per_image, b.ms_per_image, b.n, b.depth
        ),
        _ => String::new(),
    };
    let div = if r.diverged.is_empty() {
        String::new()
    } else {
        format!(
            "; {} of {} seed(s) diverged",
            r.diverged.len(),
            r.signature.seeds.len()
        )
    };
    let acc = if r.test_accuracy_pct.is_empty() {
        "no trained seed".to_string()
    } else {
        format!("{:.2} ± {:.2} %", r.mean(), r.sd())
    };
    format!("{:<32} {acc}{div}{he} ({how})", r.key())
}

/// Load every stored cell of a study folder (`<dir>/cells/*.json`), sorted
/// by data set, network and activation in grid order.
pub fn load_beyond(dir: &Path) -> Result<Vec<CellResult>, StudyError> {
    let cells = dir.join("cells");
    let rd = std::fs::read_dir(&cells).map_err(io_err(&cells))?;
    let mut v = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            let t = std::fs::read_to_string(&p).map_err(io_err(&p))?;
            v.push(serde_json::from_str::<CellResult>(&t).map_err(|e| {
                StudyError::InvalidOption(format!("{}: not a study cell: {e}", p.display()))
            })?);
        }
    }
    v.sort_by_key(order_key);
    Ok(v)
}

/// The data set `d`, loaded (and checksum-verified) on first use.
fn loaded<'a>(
    data: &'a mut BTreeMap<&'static str, Mnist>,
    d: Dataset,
    dirs: &BeyondDirs,
) -> Result<&'a Mnist, StudyError> {
    if !data.contains_key(d.name()) {
        data.insert(d.name(), Mnist::open(d, dirs.data_dir(d))?);
    }
    Ok(&data[d.name()])
}

/// An I/O error on `path` as a study error.
fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StudyError + '_ {
    move |source| {
        StudyError::Report(slaf_report::ReportError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

fn order_key(r: &CellResult) -> (usize, String, usize) {
    let d = Dataset::ALL
        .iter()
        .position(|d| d.name() == r.dataset)
        .unwrap_or(9);
    let a = Act::GRID
        .iter()
        .position(|a| a.name() == r.act)
        .unwrap_or(9);
    (d, r.net.clone(), a)
}

mod tables;
pub use tables::*;
