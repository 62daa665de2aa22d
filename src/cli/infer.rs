//! `slaf-he infer`: encrypted inference of a trained model on MNIST test
//! images (batched: one image per CKKS slot; per-image: one image per
//! ciphertext), with accuracy, agreement with plaintext, logit error, time
//! per stage and sizes; optional JSON line and result files.

use anyhow::Context;
use clap::Args;
use slaf_he::experiments::harness::{
    InferenceRequest, ModelSource, default_out_dir, run, summary_markdown, write_outputs,
};
use slaf_he::he_nn::Mode;
use slaf_he::he_nn::plan::ParamsChoice;
use std::path::PathBuf;

/// Arguments of `slaf-he infer`.
#[derive(Debug, Args)]
pub struct InferArgs {
    /// Weights file written by `slaf-he train` (JSON, optionally .gz).
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Number of test images [default: all from --offset to the end].
    #[arg(long)]
    pub images: Option<usize>,
    /// Index of the first test image.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Engine: batched (one image per slot) or per-image (one image per ciphertext).
    #[arg(long, value_enum, default_value_t = Mode::Batched)]
    pub mode: Mode,
    /// CKKS parameters: cnn1-x2, slaf, slaf-p (SPEC §5 presets), auto (smallest
    /// secure chain that fits), auto-hybrid (auto's ring and primes with
    /// hybrid key switching: 31-bit special primes and fewer digits where
    /// the 128-bit bound leaves room; faster relinearization and rotation),
    /// or custom:LOGN:BITS:SCALE (e.g. custom:12:36,26x6,36:26)
    /// [default: the preset matching the model].
    #[arg(long, value_parser = super::ParamsParser)]
    pub params: Option<ParamsChoice>,
    /// Accept custom parameters above the HE-standard 128-bit bound (experiments only).
    #[arg(long)]
    pub insecure_params: bool,
    /// Worker threads, at least 1 [default: all cores].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub threads: Option<usize>,
    /// Seed of keys and encryption randomness: 64 hexadecimal digits (256
    /// bits) or a decimal test seed. Seeded keys are for tests only, and the
    /// outputs say so [default: fresh keys from the OS CSPRNG].
    #[arg(long, value_parser = parse_key_seed)]
    pub seed: Option<slaf_he::ckks::KeySeed>,
    /// Decrypt a few values after each layer and report precision bits (slower; uses the secret key).
    #[arg(long)]
    pub precision: bool,
    /// Conv features per streamed chunk (batched mode).
    #[arg(long)]
    pub chunk: Option<usize>,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Write images.csv, summary.md and summary.json into DIR
    /// [default DIR: results/inference/<model>-<act>-<mode>].
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "")]
    pub out: Option<PathBuf>,
    /// Folder with the MNIST files [default: $SLAF_HE_DATA, else data/mnist].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// `--seed`: a [`slaf_he::ckks::KeySeed`] (clap needs a `String` error).
pub(crate) fn parse_key_seed(text: &str) -> Result<slaf_he::ckks::KeySeed, String> {
    slaf_he::ckks::KeySeed::parse(text).map_err(|e| e.to_string())
}

/// Run `slaf-he infer`.
pub fn run_infer(args: InferArgs, quiet: bool) -> anyhow::Result<()> {
    let mode = args.mode;
    if !args.weights.is_file() {
        anyhow::bail!("weights file {} does not exist", args.weights.display());
    }
    let params = args
        .params
        .clone()
        .map(|p| p.allowing_insecure(args.insecure_params));
    let req = InferenceRequest {
        model: ModelSource::Path(args.weights.clone()),
        images: args.images,
        offset: args.offset,
        mode,
        params,
        threads: args.threads,
        seed: args.seed,
        precision: args.precision,
        chunk: args.chunk,
        data_dir: args.data.clone(),
        quiet: quiet || args.json,
    };
    let out =
        run(&req).with_context(|| format!("encrypted inference of {}", args.weights.display()))?;
    if let Some(dir) = &args.out {
        let dir = if dir.as_os_str().is_empty() {
            default_out_dir(&out.summary)
        } else {
            dir.clone()
        };
        let files = write_outputs(&out, &dir)?;
        if !args.json {
            for f in files {
                println!("wrote {}", f.display());
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&out.summary)?);
    } else {
        print!("{}", summary_markdown(&out.summary));
    }
    Ok(())
}
