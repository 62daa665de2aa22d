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
    let cols: Vec<Vec<String>> = df
        .columns()
        .iter()
        .map(|c| format_column(c, digits))
        .collect();
    for row in 0..df.height() {
        let cells: Vec<&str> = cols.iter().map(|c| c[row].as_str()).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// The cells of one column. Floats get `digits` significant digits, and
/// every fixed-point value of a column the same number of decimals (the
/// most any of them needs, less the trailing zeros they all share), so a
/// column reads 0.0, 0.1, 0.3 rather than 0, 0.1000, 0.3000.
fn format_column(c: &Column, digits: usize) -> Vec<String> {
    let values: Vec<Option<AnyValue<'_>>> = (0..c.len()).map(|i| c.get(i).ok()).collect();
    let float = |v: &AnyValue<'_>| match v {
        AnyValue::Float64(x) => Some(*x),
        AnyValue::Float32(x) => Some(f64::from(*x)),
        _ => None,
    };
    let fixed: Vec<usize> = values
        .iter()
        .flatten()
        .filter_map(float)
        .filter_map(|x| fixed_decimals(x, digits))
        .collect();
    let decimals = fixed.iter().copied().max();
    let mut cells: Vec<String> = values
        .iter()
        .map(|v| match v {
            None => "—".into(),
            Some(v) => match (float(v), decimals) {
                (Some(x), Some(d)) if x == 0.0 || fixed_decimals(x, digits).is_some() => {
                    format!("{x:.d$}")
                }
                _ => format_cell(v, digits),
            },
        })
        .collect();
    if let Some(d) = decimals.filter(|&d| d > 0) {
        // Trailing zeros every fixed-point cell shares come off.
        let is_fixed = |s: &str| s.contains('.') && !s.contains('e') && !s.contains("NaN");
        let shared = cells
            .iter()
            .filter(|s| is_fixed(s))
            .map(|s| s.len() - s.trim_end_matches('0').len())
            .min()
            .unwrap_or(0)
            .min(d - 1);
        for s in cells.iter_mut().filter(|s| is_fixed(s)) {
            s.truncate(s.len() - shared);
        }
    }
    cells
}

/// Decimals [`format_float`] gives `x` in fixed-point notation (`None` for
/// zero, non-finite or scientific).
fn fixed_decimals(x: f64, digits: usize) -> Option<usize> {
    if !x.is_finite() || x == 0.0 {
        return None;
    }
    let mag = x.abs().log10().floor() as i32;
    let digits = digits.max(1) as i32;
    (-4..=8)
        .contains(&mag)
        .then(|| (digits - 1 - mag).max(0) as usize)
}

/// Render `df` as an HTML `<table>` (for notebooks); floats get `digits`
/// significant digits, missing values an em dash, text is HTML-escaped.
pub fn dataframe_to_html(df: &DataFrame, digits: usize) -> String {
    let mut out = String::from("<table>\n<thead><tr>");
    for n in df.get_column_names() {
        out.push_str(&format!("<th>{}</th>", html_escape(n.as_str())));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let cols: Vec<Vec<String>> = df
        .columns()
        .iter()
        .map(|c| format_column(c, digits))
        .collect();
    for row in 0..df.height() {
        out.push_str("<tr>");
        for c in &cols {
            out.push_str(&format!("<td>{}</td>", html_escape(&c[row])));
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
    match fixed_decimals(x, digits) {
        Some(decimals) => format!("{x:.decimals$}"),
        None => format!("{:.*e}", digits.max(1) - 1, x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_float_column_has_one_number_of_decimals() {
        let df = df!(
            "eps" => [0.0f64, 0.1, 0.3, 0.5],
            "acc" => [98.62f64, 100.0, 9.5, 0.0],
            "err" => [1.5e-9f64, 2.0, 0.25, f64::NAN],
        )
        .expect("df");
        let md = dataframe_to_markdown(&df, 4);
        assert!(md.contains("| 0.0 | 98.62 | 1.500e-9 |"), "{md}");
        assert!(md.contains("| 0.1 | 100.00 | 2.00 |"), "{md}");
        assert!(md.contains("| 0.5 | 0.00 | NaN |"), "{md}");
        let html = dataframe_to_html(&df, 4);
        assert!(
            html.contains("<td>0.3</td><td>9.50</td><td>0.25</td>"),
            "{html}"
        );
    }

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
