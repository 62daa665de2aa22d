//! Tables: polars DataFrames written as CSV (atomically) and rendered as
//! GitHub markdown.

use super::{ReportError, atomic_write};
use polars::prelude::*;
use std::path::Path;

fn table_err(context: &str) -> impl FnOnce(PolarsError) -> ReportError + '_ {
    move |source| ReportError::Table {
        context: context.to_string(),
        source,
    }
}

/// Write `df` as CSV (header row, comma separated) to `path`, atomically.
pub fn write_csv(df: &mut DataFrame, path: &Path) -> Result<(), ReportError> {
    let mut buf = Vec::new();
    CsvWriter::new(&mut buf)
        .include_header(true)
        .finish(df)
        .map_err(table_err("writing CSV"))?;
    atomic_write(path, &buf)
}

/// Read a CSV file (header row) into a DataFrame.
pub fn read_csv(path: &Path) -> Result<DataFrame, ReportError> {
    CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .map_err(table_err("reading CSV"))
}

/// Render `df` as a GitHub markdown table; floats get `digits` significant
/// digits, missing values are shown as an em dash.
pub fn dataframe_to_markdown(df: &DataFrame, digits: usize) -> String {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let mut out = String::new();
    out.push_str(&format!("| {} |\n", names.join(" | ")));
    out.push_str(&format!(
        "|{}|\n",
        names.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    ));
    for row in 0..df.height() {
        let cells: Vec<String> = df
            .columns()
            .iter()
            .map(|c| match c.get(row) {
                Ok(v) => format_cell(&v, digits),
                Err(_) => "—".into(),
            })
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// Render `df` as an HTML `<table>` (for notebooks); floats get `digits`
/// significant digits, missing values an em dash, text is HTML-escaped.
pub fn dataframe_to_html(df: &DataFrame, digits: usize) -> String {
    let mut out = String::from("<table>\n<thead><tr>");
    for n in df.get_column_names() {
        out.push_str(&format!("<th>{}</th>", html_escape(n.as_str())));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in 0..df.height() {
        out.push_str("<tr>");
        for c in df.columns() {
            let cell = match c.get(row) {
                Ok(v) => format_cell(&v, digits),
                Err(_) => "—".into(),
            };
            out.push_str(&format!("<td>{}</td>", html_escape(&cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn format_cell(v: &AnyValue<'_>, digits: usize) -> String {
    match v {
        AnyValue::Null => "—".into(),
        AnyValue::Float64(x) => format_float(*x, digits),
        AnyValue::Float32(x) => format_float(f64::from(*x), digits),
        AnyValue::String(s) => (*s).to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// Format `x` with `digits` significant digits, switching to scientific
/// notation for very large or very small magnitudes.
pub(crate) fn format_float(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    let mag = x.abs().log10().floor() as i32;
    let digits = digits.max(1) as i32;
    if !(-4..=8).contains(&mag) {
        return format!("{:.*e}", (digits - 1) as usize, x);
    }
    let decimals = (digits - 1 - mag).max(0) as usize;
    format!("{x:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_of_a_small_frame() {
        let df = df!(
            "method" => ["least_squares", "newton"],
            "r2" => [0.939_441_2_f64, 0.855_89],
            "runs" => [30i64, 30],
        )
        .expect("df");
        let md = dataframe_to_markdown(&df, 5);
        assert_eq!(
            md,
            "| method | r2 | runs |\n|---|---|---|\n| least_squares | 0.93944 | 30 |\n| newton | 0.85589 | 30 |\n"
        );
    }

    #[test]
    fn html_of_a_small_frame_is_escaped() {
        let df = df!("m<1>" => ["a&b"], "x" => [None::<f64>]).expect("df");
        assert_eq!(
            dataframe_to_html(&df, 3),
            "<table>\n<thead><tr><th>m&lt;1&gt;</th><th>x</th></tr></thead>\n<tbody>\n<tr><td>a&amp;b</td><td>—</td></tr>\n</tbody>\n</table>\n"
        );
    }

    #[test]
    fn float_formatting() {
        assert_eq!(format_float(152.2013, 6), "152.201");
        assert_eq!(format_float(0.0, 3), "0");
        assert_eq!(format_float(1.5e-7, 3), "1.50e-7");
        assert_eq!(format_float(-0.5, 2), "-0.50");
    }

    #[test]
    fn csv_round_trip_is_atomic_and_exact() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("sub").join("m.csv");
        let mut df = df!("eps" => [0.0f64, 0.01], "method" => ["a", "b"]).expect("df");
        write_csv(&mut df, &path).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "eps,method\n0.0,a\n0.01,b\n");
        let back = read_csv(&path).expect("read csv");
        assert_eq!(back.shape(), (2, 2));
        // No temporary file is left behind.
        let leftovers = std::fs::read_dir(path.parent().expect("parent"))
            .expect("ls")
            .count();
        assert_eq!(leftovers, 1);
    }
}
