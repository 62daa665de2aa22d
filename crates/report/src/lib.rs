//! Reporting: CSV and markdown tables from polars DataFrames, and figures
//! (SVG for the README, PNG for quick viewing) drawn with plotters in one
//! shared style, reused by the CLI and the notebooks.
//!
//! Everything written into `results/` goes through [`atomic_write`] (or the
//! helpers built on it): a file is written to a temporary name in the same
//! folder and renamed, so a crash never leaves a half-written result.
//!
//! [`machine`] names the machine a timing ran on (CPU, SIMD flags, NTT
//! kernels, load); every timing artifact records it.

mod figure;
pub mod machine;
pub mod manifest;
pub mod paper;
pub mod readme;
mod table;

pub use figure::{
    BarChart, Figure, LineChart, Series, StackedBarChart, digits_grid, save_and_show_grid,
};
pub use table::{dataframe_to_html, dataframe_to_markdown, read_csv, write_csv};

/// Show markdown inline in an evcxr (Rust Jupyter) notebook (`text/markdown`).
pub fn show_markdown(markdown: &str) {
    println!("EVCXR_BEGIN_CONTENT text/markdown\n{markdown}\nEVCXR_END_CONTENT");
}

/// Show a DataFrame inline in an evcxr notebook as an HTML table, floats
/// with `digits` significant digits.
pub fn show_dataframe(df: &polars::prelude::DataFrame, digits: usize) {
    println!(
        "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
        dataframe_to_html(df, digits)
    );
}

pub use plotters;
pub use polars;

use std::path::{Path, PathBuf};

/// Errors raised while writing tables and figures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Writing or renaming a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// polars failed to build, read or write a table.
    #[error("table error ({context}): {source}")]
    Table {
        /// What was being done.
        context: String,
        /// The polars error.
        #[source]
        source: polars::error::PolarsError,
    },
    /// plotters failed to draw a figure.
    #[error("cannot draw figure '{title}': {detail}")]
    Draw {
        /// The figure's title.
        title: String,
        /// The drawing error.
        detail: String,
    },
    /// The data given to a figure or table is unusable (empty, non-finite, ragged).
    #[error("invalid data for '{title}': {detail}")]
    InvalidData {
        /// The figure or table concerned.
        title: String,
        /// What is wrong.
        detail: String,
    },
}

/// Write `bytes` to `path` atomically: write a temporary file beside it,
/// then rename. Creates the parent folder if needed.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let tmp = temp_beside(path)?;
    std::fs::write(&tmp, bytes).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    persist(tmp, path)
}

/// A new hidden temporary file beside `path` that keeps its extension
/// (`dir/.name.tmp-XXXXXX.ext`, for writers that pick a format by
/// extension), its folder created first. The file is removed when the
/// returned path is dropped without [`persist`].
pub(crate) fn temp_beside(path: &Path) -> Result<tempfile::TempPath, ReportError> {
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => {
            std::fs::create_dir_all(parent).map_err(io)?;
            parent
        }
        None => Path::new("."),
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{stem}.tmp-"))
        .suffix(&ext)
        .tempfile_in(dir)
        .map(tempfile::NamedTempFile::into_temp_path)
        .map_err(io)
}

/// Rename a finished temporary file ([`temp_beside`]) onto `path`.
pub(crate) fn persist(tmp: tempfile::TempPath, path: &Path) -> Result<(), ReportError> {
    tmp.persist(path).map_err(|e| ReportError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })
}
