//! `slaf-he compare` and `slaf-he interval`: the P2 sign-approximation
//! study written into `results/comparison/` and `results/interval/` (CSV
//! with contract columns, markdown tables and figures).

use clap::Args;
use slaf_he::approx::methods::DEFAULT_MINIMAX_EPS;
use slaf_he::experiments::CompareOptions;
use std::path::{Path, PathBuf};

/// Arguments of `slaf-he compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Timing repetitions for generation (and encrypted evaluation).
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
    /// Fewer runs and a smaller TFHE batch (for tests and CI).
    #[arg(long)]
    pub quick: bool,
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "results/comparison")]
    pub out: PathBuf,
    /// eps of the minimax methods (sign approximated on [-1,-eps] ∪ [eps,1]).
    #[arg(long, default_value_t = DEFAULT_MINIMAX_EPS)]
    pub eps: f64,
    /// Skip the TFHE-rs exact comparison row (its key generation takes seconds).
    #[arg(long)]
    pub no_tfhe: bool,
    /// Skip the encrypted (CKKS) evaluation of the polynomials.
    #[arg(long)]
    pub no_he: bool,
}

/// Arguments of `slaf-he interval`.
#[derive(Debug, Args)]
pub struct IntervalArgs {
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "results/interval")]
    pub out: PathBuf,
    /// eps of the minimax methods.
    #[arg(long, default_value_t = DEFAULT_MINIMAX_EPS)]
    pub eps: f64,
}

/// What a study command measured: numbers keyed like `report::paper`.
pub type Measured = slaf_he::experiments::Measured;

/// Run `slaf-he compare`; returns the files written and the measured values.
pub fn compare(args: &CompareArgs) -> anyhow::Result<(Vec<PathBuf>, Measured)> {
    let opts = CompareOptions {
        runs: if args.quick {
            args.runs.min(3)
        } else {
            args.runs
        },
        eps: args.eps,
        he: !args.no_he,
        tfhe_batch: (!args.no_tfhe).then_some(if args.quick { 4 } else { 32 }),
    };
    let study = slaf_he::experiments::compare(&opts, &mut |line| println!("{line}"))?;
    let written = study.write(&args.out)?;
    Ok((written, study.measured))
}

/// Run `slaf-he interval`; returns the files written and the measured values.
pub fn interval(args: &IntervalArgs) -> anyhow::Result<(Vec<PathBuf>, Measured)> {
    let study = slaf_he::experiments::interval(args.eps)?;
    let written = study.write(&args.out)?;
    Ok((written, study.measured))
}

/// Print the files written, relative to the working directory.
pub fn print_written(files: &[PathBuf]) {
    for f in files {
        println!("  wrote {}", f.display());
    }
}

/// Make paths relative to `base` where possible.
pub fn relative_to(files: Vec<PathBuf>, base: &Path) -> Vec<PathBuf> {
    files
        .into_iter()
        .map(|p| p.strip_prefix(base).map(Path::to_path_buf).unwrap_or(p))
        .collect()
}
