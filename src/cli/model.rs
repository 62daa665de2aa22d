//! `slaf-he model ...`: model specs — list the presets, show a spec with
//! its layer shapes, check a spec file.

use clap::{Args, Subcommand};
use slaf_he::nn::ModelSpec;
use slaf_he::nn::spec::PRESETS;

/// `slaf-he model` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// List the built-in presets (`models/*.toml`).
    List,
    /// Print a spec as TOML and a table of its layers with their input and
    /// output shapes and parameter counts; a bad spec is an error naming the layer.
    Show(ShowArgs),
}

/// Arguments of `slaf-he model show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A preset (cnn1, cnn2, cnn2-nopad, cryptonets, cnn3, cnn4) or a path to a .toml spec.
    #[arg(value_name = "NAME|PATH")]
    pub model: String,
}

/// Run a `slaf-he model` subcommand.
pub fn run(cmd: ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::List => {
            for (name, _) in PRESETS {
                let spec = ModelSpec::preset(name)?;
                let shapes = spec.shapes()?;
                println!(
                    "{name:<12} {} layers, {} activations, {} parameters",
                    shapes.len(),
                    spec.act_count(),
                    shapes.iter().map(|l| l.params).sum::<usize>()
                );
            }
            Ok(())
        }
        ModelCommand::Show(args) => {
            let spec = ModelSpec::resolve(&args.model)?;
            print!("{}", spec.to_toml());
            println!();
            print!("{}", spec.summary_table()?);
            Ok(())
        }
    }
}
