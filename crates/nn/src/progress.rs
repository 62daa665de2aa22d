//! Progress bars for long loops.
//!
//! A bar is drawn only when standard output is a terminal and the caller did
//! not ask for quiet output, so logs, pipes, CI and notebooks stay clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Whether progress bars should be drawn, given the user's `--quiet` flag.
pub fn bars_enabled(quiet: bool) -> bool {
    !quiet && std::io::stdout().is_terminal()
}

/// A progress bar of `len` steps labelled `msg`, hidden unless [`bars_enabled`].
pub fn bar(len: u64, msg: &str, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if bars_enabled(quiet) {
        pb.set_draw_target(ProgressDrawTarget::stdout());
        let style = ProgressStyle::with_template(
            "{msg:>12} [{bar:40.cyan/blue}] {pos}/{len} ({elapsed}, ETA {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        pb.set_style(style);
    } else {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_message(msg.to_string());
    pb
}
