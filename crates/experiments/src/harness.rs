//! Drives an engine over a range of MNIST test images: plaintext and
//! encrypted accuracy, agreement, logit error, precision per layer, stage
//! times, sizes; the summary written as JSON, CSV and markdown.
//!
//! [`run`] loads the weights file and the (checksum-verified) test split,
//! computes the plaintext inference-form logits of the requested images,
//! runs the encrypted engine (batched: N/2 images per batch) and compares.
//! [`write_outputs`] writes `images.csv` (one row per image, polars),
//! `summary.md` and `summary.json` into a folder. Peak memory is the
//! process's `VmHWM` (Linux only; `None` elsewhere).

use crate::StudyError;
use rayon::prelude::*;
use serde::Serialize;
use slaf_ckks::CkksParameters;
use slaf_he_nn::batched::{BatchedEngine, BatchedOptions};
use slaf_he_nn::per_image::{PerImageEngine, PerImageOptions};
use slaf_he_nn::plan::{CircuitPlan, ParamsChoice, resolve_params};
use slaf_he_nn::{Engine, HeNnError, LayerPrecision, Mode, StageTimes};
use slaf_nn::WeightsFile;
use slaf_nn::data::{self, Split};
use slaf_report::{self as report, polars::prelude::*};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where the model comes from.
#[derive(Clone, Debug)]
pub enum ModelSource {
    /// A weights file written by `slaf-he train`.
    Path(PathBuf),
    /// An already loaded weights file.
    Weights(Box<WeightsFile>),
}

/// What to run.
#[derive(Clone, Debug)]
pub struct InferenceRequest {
    /// The trained model.
    pub model: ModelSource,
    /// Number of test images (None: all from `offset` to the end).
    pub images: Option<usize>,
    /// Index of the first test image.
    pub offset: usize,
    /// Engine.
    pub mode: Mode,
    /// CKKS parameters (None: the SPEC preset matching the model).
    pub params: Option<ParamsChoice>,
    /// Worker threads, at least 1 (None: rayon's default pool, all cores).
    pub threads: Option<usize>,
    /// 256-bit seed of keys and encryption randomness (None: the OS
    /// CSPRNG). The outputs of a seeded run say "seeded keys: for tests only".
    pub seed: Option<slaf_ckks::KeySeed>,
    /// Measure precision after each layer (decrypts intermediates; slower).
    pub precision: bool,
    /// Conv features per streamed chunk (batched mode; None: default).
    pub chunk: Option<usize>,
    /// Folder of the IDX files (None: the default place of the data set
    /// the model was trained on, see [`data::Mnist::open`]).
    pub data_dir: Option<PathBuf>,
    /// Hide the progress bar.
    pub quiet: bool,
}

impl InferenceRequest {
    /// A request with defaults: all test images, batched, matching preset.
    pub fn new(model: ModelSource) -> Self {
        Self {
            model,
            images: None,
            offset: 0,
            mode: Mode::Batched,
            params: None,
            threads: None,
            seed: None,
            precision: false,
            chunk: None,
            data_dir: None,
            quiet: true,
        }
    }
}

/// One test image's outcome (a row of `images.csv`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageRow {
    /// Index in the test split.
    pub index: usize,
    /// True digit.
    pub label: u8,
    /// Plaintext (inference-form) prediction.
    pub plain_pred: u8,
    /// Encrypted prediction.
    pub he_pred: u8,
    /// Max |encrypted - plaintext| over the 10 logits.
    pub max_logit_error: f64,
}

/// The CKKS parameters used, for reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamsSummary {
    /// Preset name, `auto` or `custom`.
    pub name: String,
    /// Ring degree N.
    pub n: usize,
    /// Bit sizes of the chain (base, levels, special).
    pub chain_bits: Vec<u32>,
    /// Sum of the chain's bits.
    pub total_bits: u32,
    /// log2 of the default scale.
    pub scale_bits: u32,
    /// Above the HE-standard 128-bit bound.
    pub insecure: bool,
    /// One-line description.
    pub description: String,
    /// Multiplicative depth of the circuit.
    pub depth: usize,
    /// Per-layer depth, e.g. `conv 1 + act1 2 + fc1 1 + act2 2 + fc2 1`.
    pub depth_breakdown: String,
    /// Level the inputs are encrypted at.
    pub start_level: usize,
    /// log2 of the logits' scale.
    pub output_scale_bits: f64,
}

/// Accuracy on one digit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassAccuracy {
    /// Digit.
    pub class: u8,
    /// Test images of that digit in the run.
    pub count: usize,
    /// Plaintext accuracy.
    pub plain_accuracy: f64,
    /// Encrypted accuracy.
    pub he_accuracy: f64,
}

/// Everything a run reports (serialised as `summary.json` and `--json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InferenceSummary {
    /// Architecture (`cnn1`, `cnn2`, `cryptonets`).
    pub model: String,
    /// Activation variant (`x2`, `slaf`, `slaf-p`, ...).
    pub act: String,
    /// Data set of the test images (`mnist`, `fashion-mnist`).
    pub dataset: String,
    /// Engine.
    pub mode: Mode,
    /// Number of test images.
    pub images: usize,
    /// Index of the first one.
    pub offset: usize,
    /// Plaintext accuracy of the inference form on the same images.
    pub plain_accuracy: f64,
    /// Accuracy of the decrypted predictions.
    pub he_accuracy: f64,
    /// Fraction of images whose encrypted argmax equals the plaintext argmax.
    pub agreement: f64,
    /// Max |encrypted - plaintext logit| over all images and logits.
    pub max_logit_error: f64,
    /// Mean |encrypted - plaintext logit|.
    pub mean_logit_error: f64,
    /// Precision after each layer (only with the precision option).
    pub precision_bits: Option<Vec<LayerPrecision>>,
    /// Per-digit accuracy.
    pub per_class: Vec<ClassAccuracy>,
    /// Stage times per image (batched: amortised), ms.
    pub stages_ms: StageTimes,
    /// Stage times per batch (batched mode), ms, averaged over batches.
    pub stages_ms_per_batch: Option<StageTimes>,
    /// Images per batch (batched mode).
    pub batch_size: Option<usize>,
    /// Batches run.
    pub batches: usize,
    /// Inference wall time / images (encryption + evaluation + decryption).
    pub seconds_per_image: f64,
    /// Inference wall time (encryption + evaluation + decryption), s.
    pub wall_seconds: f64,
    /// Key generation and model preparation, s.
    pub setup_seconds: f64,
    /// The parameters.
    pub params: ParamsSummary,
    /// Bytes of one input ciphertext.
    pub ciphertext_bytes: usize,
    /// Bytes of the input ciphertexts of one image (per-image) or one batch (batched).
    pub input_bytes: usize,
    /// Bytes of the evaluation keys (public + relinearisation (+ Galois)).
    pub key_bytes: usize,
    /// Peak resident memory of the process (Linux `VmHWM`), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Worker threads.
    pub threads: usize,
    /// 1-minute load average at the end of the run (Linux), to judge timings.
    pub load_average: Option<f64>,
    /// Where the keys came from: [`KEYS_FRESH`] or [`KEYS_SEEDED`].
    pub keys: String,
    /// CPU model.
    pub cpu: Option<String>,
    /// SIMD features the NTT kernels could use (avx2, avx512f, avx512ifma).
    pub simd: Option<Vec<String>>,
    /// The kernels `tfhe-ntt` ran in this build on this CPU (`avx512`,
    /// `avx2` or `scalar`; absent in summaries written before it was
    /// recorded).
    #[serde(default)]
    pub ntt_kernels: Option<String>,
}

/// [`InferenceSummary::keys`] of a run whose keys came from the OS CSPRNG.
pub const KEYS_FRESH: &str = "fresh keys from the OS CSPRNG";
/// [`InferenceSummary::keys`] of a run with `--seed`.
pub const KEYS_SEEDED: &str = "seeded keys: for tests only";

/// A summary plus its per-image rows.
#[derive(Clone, Debug)]
pub struct InferenceOutcome {
    /// Aggregates.
    pub summary: InferenceSummary,
    /// One row per image.
    pub rows: Vec<ImageRow>,
}

/// Reset the peak-RSS mark of this process (writes `5` to
/// `/proc/self/clear_refs`, Linux >= 4.0), so that [`peak_rss_bytes`]
/// measures one run even when several run in the same process. Returns
/// whether the reset took effect.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident set size of this process (`VmHWM` of `/proc/self/status`)
/// since it started or since [`reset_peak_rss`]; Linux only, `None`
/// elsewhere or when unreadable.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn load_average() -> Option<f64> {
    slaf_report::machine::load_averages().map(|l| l[0])
}

/// The test split of an IDX folder with its own `SHA256SUMS`, after
/// verifying every file's checksum.
pub fn load_test_split(dir: &Path) -> Result<Split, HeNnError> {
    Ok(data::open_test_split(data::Dataset::Mnist, Some(dir))?)
}

/// The predicted class of a row of logits ([`slaf_nn::stats::argmax`]).
fn argmax(v: &[f64]) -> u8 {
    slaf_nn::stats::argmax(v.iter().copied()) as u8
}

/// Run a request: plaintext and encrypted inference on the same images.
pub fn run(req: &InferenceRequest) -> Result<InferenceOutcome, HeNnError> {
    reset_peak_rss();
    match req.threads {
        Some(0) => Err(HeNnError::InvalidRequest {
            detail: "threads = 0: give at least 1 worker thread (None uses all cores)".into(),
        }),
        Some(t) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .map_err(|e| HeNnError::InvalidRequest {
                    detail: format!("cannot build a pool of {t} threads: {e}"),
                })?;
            pool.install(|| run_in_pool(req))
        }
        None => run_in_pool(req),
    }
}

/// The engine of `req.mode` for `weights` (keys from `req.seed`).
fn build_engine(
    req: &InferenceRequest,
    weights: &WeightsFile,
    plan: CircuitPlan,
    params: CkksParameters,
) -> Result<Box<dyn Engine>, HeNnError> {
    let model = &weights.inference.chain_form()?;
    Ok(match req.mode {
        Mode::PerImage => Box::new(PerImageEngine::from_plan(
            model,
            plan,
            params,
            req.seed.clone(),
            PerImageOptions::default(),
        )?),
        Mode::Batched => {
            let mut opts = BatchedOptions {
                seed: req.seed.clone(),
                ..BatchedOptions::default()
            };
            if let Some(c) = req.chunk {
                opts.chunk = c;
            }
            Box::new(BatchedEngine::new(model, plan, params, opts)?)
        }
    })
}

fn run_in_pool(req: &InferenceRequest) -> Result<InferenceOutcome, HeNnError> {
    let weights = match &req.model {
        ModelSource::Path(p) => WeightsFile::load(p)?,
        ModelSource::Weights(w) => (**w).clone(),
    };
    let (plan, params, choice) = resolve_params(&weights, req.params.clone(), req.mode)?;

    // The test images of the data set the model was trained on.
    let test = TestImages::load(
        weights.config.dataset,
        req.data_dir.as_deref(),
        req.offset,
        req.images,
    )?;
    let count = test.len();
    // Plaintext inference form: the one forward pass the agreement is measured against.
    let plain = test.plaintext_logits(&weights)?;

    // Both engines follow the planner's activation rules: one depth.
    let (depth, depth_breakdown) = (plan.depth, plan.breakdown());
    let t = Instant::now();
    let engine = build_engine(req, &weights, plan, params.clone())?;
    let setup = t.elapsed().as_secs_f64();
    let run = evaluate(engine.as_ref(), &test, req.precision, req.quiet)?;
    let batch_size = (req.mode == Mode::Batched).then_some(engine.images_per_call());
    let (start_level, out_scale) = (engine.start_level(), engine.output_scale());
    let sizes = (
        engine.ciphertext_bytes(),
        engine.input_bytes(),
        engine.key_bytes(),
    );
    drop(engine);
    let cmp = Comparison::new(&test, &run.logits, Some(&plain));
    let (rows, times, batches, wall) = (cmp.rows.clone(), run.times, run.calls, run.wall_seconds);
    let precision = run.precision;
    let frac = |a: usize, b: usize| a as f64 / b.max(1) as f64;
    let lit = params.literal();
    let summary = InferenceSummary {
        model: weights.model.name.clone(),
        dataset: weights.config.dataset.name().to_string(),
        act: weights.variant.name().to_string(),
        mode: req.mode,
        images: count,
        offset: test.offset(),
        plain_accuracy: frac(cmp.plain_correct, count),
        he_accuracy: frac(cmp.he_correct, count),
        agreement: frac(cmp.agree, count),
        max_logit_error: cmp.max_logit_error,
        mean_logit_error: cmp.mean_logit_error,
        precision_bits: precision,
        per_class: cmp.per_class(),
        stages_ms: times.scaled(1.0 / count as f64),
        stages_ms_per_batch: batch_size.map(|_| times.scaled(1.0 / batches as f64)),
        batch_size,
        batches,
        seconds_per_image: wall / count as f64,
        wall_seconds: wall,
        setup_seconds: setup,
        params: ParamsSummary {
            name: choice.name(),
            n: params.n(),
            chain_bits: lit.coeff_mod_bit_sizes.clone(),
            total_bits: params.total_bits(),
            scale_bits: lit.scale_bits,
            insecure: params.is_insecure(),
            description: params.describe(),
            depth,
            depth_breakdown,
            start_level,
            output_scale_bits: out_scale.log2(),
        },
        ciphertext_bytes: sizes.0,
        input_bytes: sizes.1,
        key_bytes: sizes.2,
        peak_rss_bytes: peak_rss_bytes(),
        threads: rayon::current_num_threads(),
        load_average: load_average(),
        cpu: Some(slaf_report::machine::cpu_model()),
        simd: Some(slaf_report::machine::simd_features()),
        ntt_kernels: Some(slaf_report::machine::ntt_kernels().to_string()),
        keys: if req.seed.is_some() {
            KEYS_SEEDED
        } else {
            KEYS_FRESH
        }
        .to_string(),
    };
    Ok(InferenceOutcome { summary, rows })
}

/// Test images of a run: their indices in the split, pixels and labels.
#[derive(Clone, Debug)]
pub struct TestImages {
    indices: Vec<usize>,
    images: Vec<Vec<f32>>,
    labels: Vec<u8>,
}

impl TestImages {
    /// `count` test images of `dataset` (None: all) from `offset`, read
    /// from `dir` (None: the data set's default place), checksums verified.
    pub fn load(
        dataset: data::Dataset,
        dir: Option<&Path>,
        offset: usize,
        count: Option<usize>,
    ) -> Result<Self, HeNnError> {
        let split = data::open_test_split(dataset, dir)?;
        let total = split.len();
        if offset >= total {
            return Err(HeNnError::InvalidRequest {
                detail: format!("offset {offset} is past the {total} test images"),
            });
        }
        let count = count.unwrap_or(total - offset);
        if count == 0 || count > total - offset {
            return Err(HeNnError::InvalidRequest {
                detail: format!(
                    "{count} images from offset {offset} do not fit the {total} test images (at most {})",
                    total - offset
                ),
            });
        }
        let indices: Vec<usize> = (offset..offset + count).collect();
        Ok(Self {
            images: indices
                .iter()
                .map(|&i| split.images.row(i).to_vec())
                .collect(),
            labels: indices.iter().map(|&i| split.labels[i]).collect(),
            indices,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Index of the first image in the split.
    pub fn offset(&self) -> usize {
        self.indices.first().copied().unwrap_or(0)
    }

    /// The images' pixels, in order.
    pub fn images(&self) -> &[Vec<f32>] {
        &self.images
    }

    /// The labels, in order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The plaintext inference form's logits of every image (the one
    /// forward pass agreement is measured against).
    pub fn plaintext_logits(&self, weights: &WeightsFile) -> Result<Vec<Vec<f64>>, HeNnError> {
        Ok(self
            .images
            .par_iter()
            .map(|im| {
                let x: Vec<f64> = im.iter().map(|&v| f64::from(v)).collect();
                weights.inference.forward(&x)
            })
            .collect::<Result<_, _>>()?)
    }
}

/// What [`evaluate`] measured of one engine over test images.
#[derive(Clone, Debug)]
pub struct EngineRun {
    /// Decrypted logits per image.
    pub logits: Vec<Vec<f64>>,
    /// Stage times summed over every call (ms).
    pub times: StageTimes,
    /// Per-stage precision (the precision option), merged over calls.
    pub precision: Option<Vec<LayerPrecision>>,
    /// Circuit evaluations (batches, or images per image).
    pub calls: usize,
    /// Wall time of encryption, evaluation and decryption (s).
    pub wall_seconds: f64,
}

/// Drive `engine` over `test`, [`Engine::images_per_call`] images at a
/// time, with a progress bar unless `quiet`. With `precision`, per image
/// the first image's stages are decrypted; batched, every batch's (merged:
/// worst error). The one evaluation loop: local and remote engines alike.
pub fn evaluate(
    engine: &dyn Engine,
    test: &TestImages,
    precision: bool,
    quiet: bool,
) -> Result<EngineRun, HeNnError> {
    let per_call = engine.images_per_call().max(1);
    let label = format!("{} HE", engine.mode().name());
    let bar = slaf_nn::progress::bar(engine.progress_units(test.len()), &label, quiet);
    let t = Instant::now();
    let mut run = EngineRun {
        logits: Vec::with_capacity(test.len()),
        times: StageTimes::default(),
        precision: None,
        calls: 0,
        wall_seconds: 0.0,
    };
    for chunk in test.images.chunks(per_call) {
        let refs: Vec<&[f32]> = chunk.iter().map(|v| v.as_slice()).collect();
        let tick = |k: u64| bar.inc(k);
        let want = precision && (run.calls == 0 || engine.mode() == Mode::Batched);
        let out = engine.infer_images(&refs, Some(&tick), want)?;
        run.logits.extend(out.logits);
        run.times.add(&out.times);
        if let Some(p) = out.precision {
            match &mut run.precision {
                None => run.precision = Some(p),
                Some(acc) => acc.iter_mut().zip(&p).for_each(|(a, b)| a.merge(b)),
            }
        }
        run.calls += 1;
    }
    bar.finish_and_clear();
    run.wall_seconds = t.elapsed().as_secs_f64();
    Ok(run)
}

/// Encrypted predictions against the labels and (when given) the
/// plaintext model's logits: accuracy, agreement, logit error, per class.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// One row per image (without a plaintext model, `plain_pred` is the
    /// encrypted prediction and the logit error 0).
    pub rows: Vec<ImageRow>,
    /// Plaintext predictions equal to the label.
    pub plain_correct: usize,
    /// Encrypted predictions equal to the label.
    pub he_correct: usize,
    /// Encrypted predictions equal to the plaintext ones.
    pub agree: usize,
    /// Max |encrypted − plaintext| logit.
    pub max_logit_error: f64,
    /// Mean |encrypted − plaintext| logit.
    pub mean_logit_error: f64,
}

impl Comparison {
    /// Compare the encrypted logits `he` of `test` with `plain`.
    pub fn new(test: &TestImages, he: &[Vec<f64>], plain: Option<&[Vec<f64>]>) -> Self {
        let mut c = Self {
            rows: Vec::with_capacity(he.len()),
            plain_correct: 0,
            he_correct: 0,
            agree: 0,
            max_logit_error: 0.0,
            mean_logit_error: 0.0,
        };
        let (mut sum_err, mut n_err) = (0.0f64, 0usize);
        for (k, (h, &y)) in he.iter().zip(&test.labels).enumerate() {
            let p = plain.and_then(|p| p.get(k)).unwrap_or(h);
            let errs: Vec<f64> = p.iter().zip(h).map(|(a, b)| (a - b).abs()).collect();
            let e = errs.iter().fold(0.0f64, |m, &v| m.max(v));
            c.max_logit_error = c.max_logit_error.max(e);
            sum_err += errs.iter().sum::<f64>();
            n_err += errs.len();
            let (pp, hp) = (argmax(p), argmax(h));
            c.plain_correct += usize::from(pp == y);
            c.he_correct += usize::from(hp == y);
            c.agree += usize::from(pp == hp);
            c.rows.push(ImageRow {
                index: test.indices[k],
                label: y,
                plain_pred: pp,
                he_pred: hp,
                max_logit_error: e,
            });
        }
        c.mean_logit_error = sum_err / n_err.max(1) as f64;
        c
    }

    /// Accuracy per class (plaintext and encrypted).
    pub fn per_class(&self) -> Vec<ClassAccuracy> {
        let frac = |a: usize, b: usize| a as f64 / b.max(1) as f64;
        let mut class = [(0usize, 0usize, 0usize); 10];
        for r in &self.rows {
            if let Some(c) = class.get_mut(usize::from(r.label)) {
                c.0 += 1;
                c.1 += usize::from(r.plain_pred == r.label);
                c.2 += usize::from(r.he_pred == r.label);
            }
        }
        class
            .iter()
            .enumerate()
            .map(|(d, &(n, p, h))| ClassAccuracy {
                class: d as u8,
                count: n,
                plain_accuracy: frac(p, n),
                he_accuracy: frac(h, n),
            })
            .collect()
    }
}

/// The default output folder: `results/inference/<model>-<act>-<mode>`.
pub fn default_out_dir(s: &InferenceSummary) -> PathBuf {
    PathBuf::from("results").join("inference").join(format!(
        "{}-{}-{}",
        s.model,
        s.act,
        s.mode.name()
    ))
}

fn pct(x: f64) -> String {
    format!("{:.2} %", 100.0 * x)
}

/// The summary as a markdown document (metrics, stages, per-class, precision).
pub fn summary_markdown(s: &InferenceSummary) -> String {
    let mib = |b: usize| format!("{:.1} MiB", b as f64 / 1048576.0);
    let mut o = format!(
        "# Encrypted inference: {}-{} ({})\n\n| metric | value |\n|---|---|\n",
        s.model,
        s.act,
        s.mode.name()
    );
    let rows: Vec<(&str, String)> = vec![
        (
            "test images",
            format!("{} (from index {})", s.images, s.offset),
        ),
        ("keys", s.keys.clone()),
        ("plaintext accuracy", pct(s.plain_accuracy)),
        ("encrypted accuracy", pct(s.he_accuracy)),
        ("agreement (argmax)", pct(s.agreement)),
        (
            "max / mean logit error",
            format!("{:.3e} / {:.3e}", s.max_logit_error, s.mean_logit_error),
        ),
        (
            "wall time (enc + eval + dec)",
            format!("{:.2} s", s.wall_seconds),
        ),
        (
            "time per image",
            format!("{:.3} ms", 1e3 * s.seconds_per_image),
        ),
        ("key generation", format!("{:.2} s", s.setup_seconds)),
        (
            "batches",
            match s.batch_size {
                Some(b) => format!("{} of up to {b} images", s.batches),
                None => "—".into(),
            },
        ),
        ("CKKS parameters", s.params.description.clone()),
        (
            "depth",
            format!(
                "{} ({}), inputs at level {}",
                s.params.depth, s.params.depth_breakdown, s.params.start_level
            ),
        ),
        ("ciphertext (one input)", mib(s.ciphertext_bytes)),
        ("inputs per batch/image", mib(s.input_bytes)),
        (
            "evaluation keys in memory (public, relin, Galois)",
            mib(s.key_bytes),
        ),
        (
            "peak RSS",
            s.peak_rss_bytes
                .map_or("n/a (not Linux)".into(), |b| mib(b as usize)),
        ),
        ("threads", s.threads.to_string()),
        (
            "CPU",
            s.cpu.clone().unwrap_or_else(|| "not recorded".into()),
        ),
        (
            "SIMD",
            s.simd
                .as_deref()
                .map_or("not recorded".into(), slaf_report::machine::simd_text),
        ),
        (
            "NTT kernels",
            s.ntt_kernels
                .clone()
                .unwrap_or_else(|| "not recorded".into()),
        ),
        (
            "load average (1 min, at end)",
            s.load_average.map_or("n/a".into(), |l| format!("{l:.2}")),
        ),
    ];
    for (k, v) in rows {
        o.push_str(&format!("| {k} | {v} |\n"));
    }
    o.push_str("\n## Time per stage (ms)\n\n| stage | per image (amortised) | per batch |\n|---|---|---|\n");
    let per_batch = s.stages_ms_per_batch.as_ref().map(StageTimes::values);
    for (i, (name, v)) in s
        .stages_ms
        .names()
        .iter()
        .zip(s.stages_ms.values())
        .enumerate()
    {
        let b = per_batch.as_ref().and_then(|p| p.get(i));
        o.push_str(&format!(
            "| {name} | {v:.4} | {} |\n",
            b.map_or("—".into(), |v| format!("{v:.1}"))
        ));
    }
    o.push_str(&format!(
        "| total | {:.4} | {} |\n",
        s.stages_ms.total(),
        s.stages_ms_per_batch
            .as_ref()
            .map_or("—".into(), |t| format!("{:.1}", t.total()))
    ));
    if let Some(p) = &s.precision_bits {
        o.push_str("\n## Precision after each layer (every feature)\n\n| layer | max abs error | p99 abs error | bits (max) | max abs value | values compared |\n|---|---|---|---|---|---|\n");
        for l in p {
            o.push_str(&format!(
                "| {} | {:.3e} | {:.3e} | {:.1} | {:.3e} | {} |\n",
                l.layer, l.max_abs_error, l.p99_abs_error, l.bits, l.max_abs_value, l.samples
            ));
        }
    }
    o.push_str("\n## Per-class accuracy\n\n| digit | images | plaintext | encrypted |\n|---|---|---|---|\n");
    for c in &s.per_class {
        o.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            c.class,
            c.count,
            if c.count == 0 {
                "—".into()
            } else {
                pct(c.plain_accuracy)
            },
            if c.count == 0 {
                "—".into()
            } else {
                pct(c.he_accuracy)
            }
        ));
    }
    o
}

/// Write `images.csv`, `summary.md` and `summary.json` into `dir`; returns the paths.
pub fn write_outputs(out: &InferenceOutcome, dir: &Path) -> Result<Vec<PathBuf>, StudyError> {
    let r = &out.rows;
    let mut df = DataFrame::new_infer_height(vec![
        Column::new(
            "index".into(),
            r.iter().map(|x| x.index as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "label".into(),
            r.iter().map(|x| u32::from(x.label)).collect::<Vec<_>>(),
        ),
        Column::new(
            "plain_pred".into(),
            r.iter()
                .map(|x| u32::from(x.plain_pred))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "he_pred".into(),
            r.iter().map(|x| u32::from(x.he_pred)).collect::<Vec<_>>(),
        ),
        Column::new(
            "max_logit_err".into(),
            r.iter().map(|x| x.max_logit_error).collect::<Vec<_>>(),
        ),
    ])
    .map_err(|source| report::ReportError::Table {
        context: "per-image table".into(),
        source,
    })?;
    let csv = dir.join("images.csv");
    report::write_csv(&mut df, &csv)?;
    let md = dir.join("summary.md");
    report::atomic_write(&md, summary_markdown(&out.summary).as_bytes())?;
    let json = dir.join("summary.json");
    let text =
        serde_json::to_string_pretty(&out.summary).map_err(|e| HeNnError::InvalidRequest {
            detail: format!("cannot serialise the summary: {e}"),
        })?;
    report::atomic_write(&json, text.as_bytes())?;
    Ok(vec![csv, md, json])
}
