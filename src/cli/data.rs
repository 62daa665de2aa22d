//! `slaf-he data ...`: checks the MNIST files and prints their contents.

use anyhow::Context;
use clap::{Args, Subcommand};
use slaf_he::data::{self, Mnist, NUM_CLASSES};
use std::path::PathBuf;
use std::time::Instant;

/// Subcommands of `slaf-he data`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Verify the SHA-256 of the four MNIST files, decode them and print the
    /// split sizes and per-class counts. Exits non-zero on a missing,
    /// corrupt or malformed file.
    Verify(VerifyArgs),
}

/// Arguments of `slaf-he data verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Folder holding the four gzip IDX files and SHA256SUMS
    /// [default: $SLAF_HE_DATA, else the repository's data/mnist].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Named data set: mnist (vendored) or fashion-mnist (Debian's
    /// dataset-fashion-mnist package, checked against data/fashion-mnist/SHA256SUMS).
    #[arg(long, value_enum, default_value_t = data::Dataset::Mnist)]
    pub dataset: data::Dataset,
}

/// Run a `data` subcommand.
pub fn run(cmd: DataCommand, _quiet: bool) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Verify(args) => verify(args),
    }
}

fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let name = args.dataset.name();
    let dir = args
        .data
        .clone()
        .unwrap_or_else(|| args.dataset.default_dir());
    let start = Instant::now();
    let mnist = Mnist::open(args.dataset, args.data.as_deref())
        .with_context(|| format!("{name} verification failed in {}", dir.display()))?;
    println!("{name} in {}", dir.display());
    for (name, hash) in &mnist.checksums {
        println!("  sha256 ok  {hash}  {name}");
    }
    println!(
        "train: {} images of {}x{}, test: {} images",
        mnist.train.len(),
        mnist.train.rows,
        mnist.train.cols,
        mnist.test.len()
    );
    let header: String = (0..NUM_CLASSES).map(|k| format!("{k:>6}")).collect();
    println!("class {header}");
    for (name, split) in [("train", &mnist.train), ("test", &mnist.test)] {
        let counts: String = split
            .class_counts()
            .iter()
            .map(|c| format!("{c:>6}"))
            .collect();
        println!("{name:<5} {counts}");
    }
    println!("verified in {:.2} s", start.elapsed().as_secs_f64());
    Ok(())
}
