//! The `slaf-he` command-line program: verifies data, and (as the issues
//! land) trains models, runs the comparison study, encrypted inference,
//! benchmarks and the one-command reproduction into `results/`.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    slaf_he::machine::tune_allocator();
    let args = cli::Cli::parse();
    if !args.command.uses_network() {
        slaf_he::machine::quiet_on_broken_pipe();
    }
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, separated by ": ".
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
