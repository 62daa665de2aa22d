//! `slaf-he report ...`: documents built from the committed results.

use anyhow::Context;
use clap::{Args, Subcommand};
use slaf_he::report::readme;
use std::path::PathBuf;

/// `slaf-he report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Rewrite the README's generated blocks (`<!-- generated: NAME -->` ...
    /// `<!-- end -->`) from the committed result files.
    Readme(ReadmeArgs),
}

/// Arguments of `slaf-he report readme`.
#[derive(Debug, Args)]
pub struct ReadmeArgs {
    /// Change nothing; exit non-zero when a block differs from its artifacts.
    #[arg(long)]
    pub check: bool,
    /// The README to rewrite.
    #[arg(long, value_name = "FILE", default_value = "README.md")]
    pub readme: PathBuf,
    /// The repository root the artifacts' paths are relative to
    /// [default: the README's folder].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// Run a `slaf-he report` subcommand.
pub fn run(cmd: ReportCommand) -> anyhow::Result<()> {
    let ReportCommand::Readme(args) = cmd;
    let text = std::fs::read_to_string(&args.readme)
        .with_context(|| format!("cannot read {}", args.readme.display()))?;
    let root = args.root.clone().unwrap_or_else(|| {
        args.readme
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    });
    if args.check {
        let stale = readme::stale_blocks(&text, &root)?;
        if !stale.is_empty() {
            anyhow::bail!(
                "{}: generated block(s) out of date: {} (run `slaf-he report readme`)",
                args.readme.display(),
                stale.join(", ")
            );
        }
        println!(
            "{}: every generated block is up to date",
            args.readme.display()
        );
        return Ok(());
    }
    let fresh = readme::rewrite(&text, &root)?;
    if fresh == text {
        println!("{}: unchanged", args.readme.display());
    } else {
        slaf_he::report::atomic_write(&args.readme, fresh.as_bytes())?;
        println!("{}: generated blocks rewritten", args.readme.display());
    }
    Ok(())
}
