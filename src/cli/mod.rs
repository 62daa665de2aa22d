//! Command-line interface: argument definitions (clap derive) and dispatch
//! to one module per subcommand.

mod bench;
mod bench_bootstrap;
mod data;
mod infer;
mod model;
mod report;
mod reproduce;
mod serve;
mod study;
mod train;

use clap::{Parser, Subcommand};

/// Reproducibility suite for privacy-preserving CNN inference with CKKS
/// homomorphic encryption and self-learning activation functions (SLAF).
///
/// Regenerates the figures and tables of Pulido-Gaytan & Tchernykh,
/// PLOS ONE 2024 (SLAF CNNs under CKKS) and Pulido-Gaytan et al.,
/// IEEE Access 2023 (homomorphic sign approximations) into `results/`.
#[derive(Debug, Parser)]
#[command(name = "slaf-he", version, about, long_about)]
pub struct Cli {
    /// Suppress progress bars (they are also hidden when stdout is not a terminal).
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// MNIST data: verify the vendored files and print split sizes.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Train a CNN (CNN1, CNN2, CryptoNets) with a chosen activation and save its weights.
    Train(train::TrainArgs),
    /// Learning-rate range test: (lr, smoothed loss) points as CSV.
    LrFind(train::LrFindArgs),
    /// Encrypted inference of a trained model under CKKS: accuracy, agreement
    /// with plaintext, logit error, time per stage (batched or per image).
    Infer(infer::InferArgs),
    /// Compare the degree-9 sign approximations of the P2 study (plus minimax
    /// and TFHE-rs exact comparison): metrics.csv, as_published.csv, figures.
    Compare(study::CompareArgs),
    /// Interval analysis of the sign approximations: metrics for eps = 0..0.5.
    Interval(study::IntervalArgs),
    /// Benchmarks: `bench ckks` times the CKKS primitives (median µs), or
    /// with `--bootstrap SET` a named bootstrapping set.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Regenerate every table and figure into results/ (manifest.json, REPORT.md).
    ///
    /// `--quick` (default) takes minutes on 2 cores; `--full` runs the papers'
    /// complete protocol (hours). Trained models are cached.
    Reproduce(reproduce::ReproduceArgs),
    /// Model specs: `model list` the presets, `model show NAME|PATH` a spec
    /// with its layer shapes.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Serve a model for encrypted inference over HTTP; the server never holds a secret key.
    ///
    /// Routes: GET /healthz, GET /v1/model (the plan), POST /v1/keys (a
    /// client's evaluation-key bundle), GET/DELETE /v1/keys/{key_id},
    /// POST /v1/infer/{key_id} (ciphertexts); docs/wire-format.md specifies them.
    Serve(serve::ServeArgs),
    /// Operator: make a tenant's bearer token for `serve --tokens FILE`.
    ///
    /// Prints the token on standard output and the tokens-file entry (its
    /// SHA-256, never the token) on standard error.
    Token(serve::TokenArgs),
    /// Client: make a secret key and the evaluation-key bundle for a server's plan.
    Keygen(serve::KeygenArgs),
    /// Client: classify test images on a server; accuracy, latency, bytes up and down.
    Query(serve::QueryArgs),
    /// Reports built from the committed results: `report readme` rewrites
    /// the README's generated blocks (`--check`: fail when one is stale).
    #[command(subcommand)]
    Report(report::ReportCommand),
}

impl Command {
    /// Whether the command talks over sockets (`serve`, `keygen`, `query`):
    /// those keep SIGPIPE ignored, so a closed peer is a reported error
    /// ([`slaf_he::machine::quiet_on_broken_pipe`]).
    pub fn uses_network(&self) -> bool {
        matches!(
            self,
            Command::Serve(_) | Command::Keygen(_) | Command::Query(_) | Command::Token(_)
        )
    }
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Data(cmd) => data::run(cmd, cli.quiet),
        Command::Train(args) => train::run_train(args, cli.quiet),
        Command::LrFind(args) => train::run_lr_find(args, cli.quiet),
        Command::Infer(args) => infer::run_infer(args, cli.quiet),
        Command::Compare(args) => {
            let (files, _) = study::compare(&args)?;
            study::print_written(&files);
            Ok(())
        }
        Command::Interval(args) => {
            let (files, _) = study::interval(&args)?;
            study::print_written(&files);
            Ok(())
        }
        Command::Bench(cmd) => bench::run(cmd),
        Command::Reproduce(args) => reproduce::run(args, cli.quiet),
        Command::Report(cmd) => report::run(cmd),
        Command::Model(cmd) => model::run(cmd),
        Command::Serve(args) => serve::run_serve(args),
        Command::Keygen(args) => serve::run_keygen(args),
        Command::Token(args) => serve::run_token(args),
        Command::Query(args) => serve::run_query(args, cli.quiet),
    }
}

/// The `--params` parser of `infer` and `serve`: a
/// [`slaf_he::he_nn::plan::ParamsChoice`], whose named values `--help`
/// lists (the presets, `auto`, `auto-hybrid`) beside the open-ended
/// `custom:LOGN:BITS:SCALE`. `--insecure-params` is applied afterwards.
#[derive(Clone, Copy, Debug)]
pub struct ParamsParser;

impl clap::builder::TypedValueParser for ParamsParser {
    type Value = slaf_he::he_nn::plan::ParamsChoice;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let text = clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)?;
        slaf_he::he_nn::plan::ParamsChoice::parse(&text, false).map_err(|e| {
            let flag = arg.map_or_else(|| "--params".to_string(), ToString::to_string);
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("invalid value '{text}' for '{flag}': {e}\n"),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        let named = slaf_he::he_nn::plan::ParamsChoice::named()
            .into_iter()
            .map(clap::builder::PossibleValue::new);
        Some(Box::new(named.chain([clap::builder::PossibleValue::new(
            "custom:LOGN:BITS:SCALE",
        )])))
    }
}
