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
    /// A document to rewrite (repeatable) [default: README.md and
    /// results/inference/README.md under the root].
    #[arg(long, value_name = "FILE")]
    pub readme: Vec<PathBuf>,
    /// The repository root the artifacts' paths are relative to
    /// [default: the first --readme's folder, else the current folder].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// Run a `slaf-he report` subcommand.
pub fn run(cmd: ReportCommand) -> anyhow::Result<()> {
    let ReportCommand::Readme(args) = cmd;
    let root = args.root.clone().unwrap_or_else(|| {
        args.readme
            .first()
            .and_then(|r| r.parent())
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    });
    let docs: Vec<PathBuf> = if args.readme.is_empty() {
        readme::DOCUMENTS.iter().map(|d| root.join(d)).collect()
    } else {
        args.readme.clone()
    };
    let mut stale_docs = Vec::new();
    for doc in &docs {
        let text = std::fs::read_to_string(doc)
            .with_context(|| format!("cannot read {}", doc.display()))?;
        if args.check {
            let stale = readme::stale_blocks(&text, &root)?;
            if stale.is_empty() {
                println!("{}: every generated block is up to date", doc.display());
            } else {
                stale_docs.push(format!("{}: {}", doc.display(), stale.join(", ")));
            }
            continue;
        }
        let fresh = readme::rewrite(&text, &root)?;
        if fresh == text {
            println!("{}: unchanged", doc.display());
        } else {
            slaf_he::report::atomic_write(doc, fresh.as_bytes())?;
            println!("{}: generated blocks rewritten", doc.display());
        }
    }
    if !stale_docs.is_empty() {
        anyhow::bail!(
            "generated block(s) out of date (run `slaf-he report readme`): {}",
            stale_docs.join("; ")
        );
    }
    Ok(())
}
