//! Generated README blocks: the numbers of the README's result tables are
//! written from the committed result files, never typed by hand.
//!
//! A block is the text between `<!-- generated: NAME -->` and the next
//! `<!-- end -->` on lines of their own. [`rewrite`] replaces each block's
//! body with what [`render_block`] makes of the files under the repository
//! root; `slaf-he report readme --check` fails when a body differs, so a
//! README number cannot drift from its artifact. Invariants: every marker
//! names a known block, every block is closed, and a block's body is a
//! pure function of the committed files (no clock, no machine state), so
//! the check is reproducible on any clone.

use super::ReportError;
use std::path::Path;

/// The documents (relative to the repository root) whose blocks
/// `slaf-he report readme` rewrites and checks by default.
pub const DOCUMENTS: &[&str] = &["README.md", "results/inference/README.md"];

/// The blocks this module can generate, with the artifacts each reads.
pub const BLOCKS: &[(&str, &str)] = &[
    (
        "p1-accuracy",
        "results/training/accuracy.csv, results/inference/*-batched/summary.json",
    ),
    ("seed-study", "results/training/seeds.csv"),
    ("ckks-vs-tenseal", "results/ckks/compare_tenseal.md"),
    (
        "ckks-vs-tenseal-avx2",
        "results/ckks/compare_tenseal_avx2.md",
    ),
    (
        "ckks-vs-tenseal-avx2-only",
        "results/ckks/compare_tenseal_avx2_only.md",
    ),
    ("cnn3", "results/cnn3/*/summary.json"),
    ("p2-metrics", "results/comparison/metrics.csv"),
    ("he-inference", "results/inference/*/summary.json"),
    ("ckks-vs-previous", "results/ckks/bench_vs_previous.md"),
    (
        "ckks-vs-previous-avx2",
        "results/ckks/bench_vs_previous_avx2.md",
    ),
    ("tenseal-per-image", "results/inference/tenseal/summary.md"),
    ("service", "results/service/query-*.json"),
    ("service-load", "results/service/serve_load-*.md"),
    ("beyond", "results/beyond/beyond.csv"),
];

fn invalid(title: &str, detail: String) -> ReportError {
    ReportError::InvalidData {
        title: title.to_string(),
        detail,
    }
}

fn read(root: &Path, rel: &str) -> Result<String, ReportError> {
    let path = root.join(rel);
    std::fs::read_to_string(&path).map_err(|source| ReportError::Io { path, source })
}

/// The body of block `name` (with a trailing newline), from the files under `root`.
pub fn render_block(root: &Path, name: &str) -> Result<String, ReportError> {
    match name {
        "p1-accuracy" => p1_accuracy(root),
        "seed-study" => seed_study(root),
        "ckks-vs-tenseal" => verbatim(root, "results/ckks/compare_tenseal.md"),
        "ckks-vs-tenseal-avx2" => verbatim(root, "results/ckks/compare_tenseal_avx2.md"),
        "ckks-vs-tenseal-avx2-only" => verbatim(root, "results/ckks/compare_tenseal_avx2_only.md"),
        "cnn3" => cnn3(root),
        "p2-metrics" => p2_metrics(root),
        "he-inference" => he_inference(root),
        "ckks-vs-previous" => verbatim(root, "results/ckks/bench_vs_previous.md"),
        "ckks-vs-previous-avx2" => verbatim(root, "results/ckks/bench_vs_previous_avx2.md"),
        "tenseal-per-image" => verbatim(root, "results/inference/tenseal/summary.md"),
        "service" => service(root),
        "beyond" => beyond(root),
        "service-load" => {
            let a = verbatim(root, "results/service/serve_load-per-image.md")?;
            let b = verbatim(root, "results/service/serve_load-batched.md")?;
            Ok(format!("{a}\n{b}"))
        }
        other => Err(invalid(
            "README",
            format!(
                "unknown generated block {other:?} (known: {})",
                BLOCKS.iter().map(|b| b.0).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// `text` with every generated block's body rebuilt from `root`.
pub fn rewrite(text: &str, root: &Path) -> Result<String, ReportError> {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.split_inclusive('\n').enumerate();
    while let Some((i, line)) = lines.next() {
        out.push_str(line);
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- generated: ")
            .and_then(|r| r.strip_suffix("-->"))
            .map(str::trim)
        else {
            continue;
        };
        let body = render_block(root, name)?;
        loop {
            match lines.next() {
                Some((_, l)) if l.trim() == "<!-- end -->" => {
                    out.push_str(&body);
                    out.push_str(l);
                    break;
                }
                Some(_) => {}
                None => {
                    return Err(invalid(
                        "README",
                        format!(
                            "generated block {name:?} opened on line {} has no <!-- end -->",
                            i + 1
                        ),
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Names of the generated blocks whose body in `text` differs from a rebuild.
pub fn stale_blocks(text: &str, root: &Path) -> Result<Vec<String>, ReportError> {
    let fresh = rewrite(text, root)?;
    let blocks = |t: &str| -> Vec<(String, String)> {
        let mut v = Vec::new();
        let mut cur: Option<(String, String)> = None;
        for l in t.lines() {
            if let Some(n) = l
                .trim()
                .strip_prefix("<!-- generated: ")
                .and_then(|r| r.strip_suffix("-->"))
            {
                cur = Some((n.trim().to_string(), String::new()));
            } else if l.trim() == "<!-- end -->" {
                v.extend(cur.take());
            } else if let Some((_, body)) = &mut cur {
                body.push_str(l);
                body.push('\n');
            }
        }
        v
    };
    Ok(blocks(text)
        .into_iter()
        .zip(blocks(&fresh))
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0)
        .collect())
}

/// A committed CSV (polars, every column read as text): header and rows of
/// cells, a missing cell as the empty string.
fn csv(root: &Path, rel: &str) -> Result<(Vec<String>, Vec<Vec<String>>), ReportError> {
    use polars::prelude::*;
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(root.join(rel)))
        .and_then(|r| r.finish())
        .map_err(|e| invalid(rel, format!("cannot read CSV: {e}")))?;
    let header: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let cols: Vec<&StringChunked> = df
        .columns()
        .iter()
        .map(|c| c.str())
        .collect::<PolarsResult<_>>()
        .map_err(|e| invalid(rel, format!("non-text column: {e}")))?;
    let rows = (0..df.height())
        .map(|i| {
            cols.iter()
                .map(|c| c.get(i).unwrap_or("").to_string())
                .collect()
        })
        .collect();
    Ok((header, rows))
}

fn cell<'a>(
    header: &[String],
    row: &'a [String],
    col: &str,
    what: &str,
) -> Result<&'a str, ReportError> {
    header
        .iter()
        .position(|h| h == col)
        .and_then(|i| row.get(i))
        .map(String::as_str)
        .ok_or_else(|| invalid(what, format!("no column {col:?}")))
}

fn num(text: &str, what: &str) -> Result<f64, ReportError> {
    text.parse::<f64>()
        .map_err(|_| invalid(what, format!("{text:?} is not a number")))
}

/// `x` with `sig` significant digits, in plain notation.
fn sig(x: f64, sig: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (sig - 1 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}

/// An agreement fraction as a percentage that never rounds up to 100: `100`
/// only when every image agrees, else two decimals or more (`99.98`).
fn agreement_pct(a: f64) -> String {
    if a >= 1.0 {
        return "100".into();
    }
    let mut digits = 2;
    loop {
        let t = format!("{:.digits$}", a * 100.0);
        if !t.starts_with("100") || digits >= 8 {
            return t;
        }
        digits += 1;
    }
}

/// `x` in short scientific notation (`1.0e-2`).
fn sci(x: f64) -> String {
    let s = format!("{x:.1e}");
    match s.split_once('e') {
        Some((m, e)) => format!(
            "{m}e{}",
            e.parse::<i32>().map_or(e.to_string(), |v| v.to_string())
        ),
        None => s,
    }
}

/// `CNN1-SLAF-R` from `cnn1`, `slaf-r`.
fn run_label(model: &str, act: &str) -> String {
    let m = match model {
        "cryptonets" => "CryptoNets".to_string(),
        other => other.to_uppercase(),
    };
    let a = match act {
        "relu" => "ReLU".to_string(),
        other => other.to_uppercase(),
    };
    format!("{m}-{a}")
}

/// Notes of the accuracy table: what differs between our run and the reference's.
const ACCURACY_NOTES: &[(&str, &str)] = &[
    ("cnn1-slaf", "one seed; see the seed study"),
    (
        "cnn1-slaf-r",
        "weights frozen; unstable over seeds, see the seed study",
    ),
    (
        "cnn1-slaf-p",
        "fixed s as our model; the reference ran without clipping",
    ),
    ("cnn2-x2", "the reference ran without clipping"),
    ("cnn2-slaf", "P1's own numbers: see below"),
    ("cnn2-slaf-r", "weights frozen"),
];

fn p1_accuracy(root: &Path) -> Result<String, ReportError> {
    const FILE: &str = "results/training/accuracy.csv";
    let (h, rows) = csv(root, FILE)?;
    let mut o = String::from(
        "| model | epochs | plaintext | encrypted (images) | agreement | reference (SPEC §4) | note |\n|---|---|---|---|---|---|---|\n",
    );
    for row in &rows {
        let get = |c: &str| cell(&h, row, c, FILE);
        let (model, act) = (get("model")?, get("act")?);
        let key = format!("{model}-{act}");
        let batched = format!("results/inference/{key}-batched/summary.json");
        let (enc, agree) = if root.join(&batched).is_file() {
            let b = summary(root, &format!("{key}-batched"))?;
            (
                format!(
                    "{:.2} % ({})",
                    field(&b, &["he_accuracy"], &batched)? * 100.0,
                    field(&b, &["images"], &batched)?
                ),
                format!("{} %", agreement_pct(field(&b, &["agreement"], &batched)?)),
            )
        } else {
            ("—".into(), "—".into())
        };
        let note = ACCURACY_NOTES
            .iter()
            .find(|n| n.0 == key)
            .map_or("", |n| n.1);
        o.push_str(&format!(
            "| {} | {} | {:.2} % | {enc} | {agree} | {:.2} % | {note} |\n",
            run_label(model, act),
            get("epochs")?,
            num(get("test_accuracy_pct")?, FILE)?,
            num(get("pytorch_reference_pct")?, FILE)?,
        ));
    }
    o.push_str(&format!(
        "\n(Generated from `{FILE}` and `results/inference/*-batched/summary.json` by `slaf-he report readme`.)\n"
    ));
    Ok(o)
}

fn seed_study(root: &Path) -> Result<String, ReportError> {
    const FILE: &str = "results/training/seeds.csv";
    let (h, rows) = csv(root, FILE)?;
    let mut o = String::from(
        "| run | note | slaf-he: mean ± sd (seeds) | PyTorch, same machine | reference (seed 73) | reference vs our range |\n|---|---|---|---|---|---|\n",
    );
    let mut runs: Vec<&str> = Vec::new();
    for row in &rows {
        let run = cell(&h, row, "run", FILE)?;
        if !runs.contains(&run) {
            runs.push(run);
        }
    }
    for run in runs {
        let of = |engine: &str| {
            rows.iter().find(|r| {
                cell(&h, r, "run", FILE).is_ok_and(|v| v == run)
                    && cell(&h, r, "engine", FILE).is_ok_and(|v| v == engine)
            })
        };
        let stat = |r: Option<&Vec<String>>| -> Result<String, ReportError> {
            let Some(r) = r else { return Ok("—".into()) };
            let get = |c: &str| cell(&h, r, c, FILE);
            let n = get("n")?;
            Ok(if n == "1" {
                format!("{} (1)", get("mean_pct")?)
            } else {
                format!("{} ± {} ({n})", get("mean_pct")?, get("sd_pct")?)
            })
        };
        let ours = of("slaf-he");
        let (note, reference, range) = match ours.or(of("PyTorch")) {
            Some(r) => (
                cell(&h, r, "note", FILE)?,
                cell(&h, r, "reference_pct", FILE)?,
                match ours.map(|r| cell(&h, r, "reference_in_range", FILE)) {
                    Some(Ok("yes")) => "inside",
                    Some(Ok("above")) => "above",
                    Some(Ok("below")) => "below",
                    Some(Ok(other)) => {
                        return Err(invalid(
                            FILE,
                            format!("{run}: reference_in_range {other:?} is not yes/above/below"),
                        ));
                    }
                    Some(Err(e)) => return Err(e),
                    None => "—",
                },
            ),
            None => continue,
        };
        o.push_str(&format!(
            "| {run} | {note} | {} | {} | {reference} | {range} |\n",
            stat(ours)?,
            stat(of("PyTorch"))?,
        ));
    }
    o.push_str(&format!(
        "\n(Generated from `{FILE}` by `slaf-he report readme`; made by `results/training/seeds.sh` and `summarize_seeds.py`.)\n"
    ));
    Ok(o)
}

fn p2_metrics(root: &Path) -> Result<String, ReportError> {
    const FILE: &str = "results/comparison/metrics.csv";
    let (h, rows) = csv(root, FILE)?;
    let labels = [
        ("least_squares", "least squares"),
        ("composition", "composition"),
        ("newton", "Newton"),
        ("chebyshev", "Chebyshev"),
        (
            "fourier",
            "Fourier (as its degree-47 Chebyshev interpolant)",
        ),
        ("minimax", "minimax, eps 0.05 (new)"),
        ("composite_minimax", "composite minimax 7∘7 (new)"),
        ("tfhe_exact", "TFHE-rs exact (FheInt16, new)"),
    ];
    let mut o = String::from(
        "| method | R² | L1 | L2 | L∞ | levels | HE eval ms (ours) | HE eval ms (original) | max \\|dec − p\\| | p(enc(1) − enc(0.5)) |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (key, label) in labels {
        let Some(row) = rows.iter().find(|r| r.first().is_some_and(|m| m == key)) else {
            return Err(invalid(FILE, format!("no row for {key}")));
        };
        let get = |c: &str| cell(&h, row, c, FILE);
        let n = |c: &str| get(c).and_then(|v| num(v, FILE));
        let original = super::paper::reference(&format!("p2.he_ms.{key}"))
            .map_or("—".to_string(), |r| format!("{}", r.paper));
        let levels = match get("depth")? {
            "" => "—".to_string(),
            d => d.to_string(),
        };
        let ms = n("he_eval_ms")?;
        let ms = if key == "tfhe_exact" {
            format!("{} per comparison", sig(ms, 3))
        } else {
            sig(ms, 3)
        };
        o.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {levels} | {ms} | {original} | {} | {:.3} |\n",
            sig(n("r2")?, 5),
            sig(n("l1")?, 5),
            sig(n("l2")?, 5),
            sig(n("linf")?, 5),
            if key == "tfhe_exact" {
                "0".to_string()
            } else {
                sci(n("he_max_err")?)
            },
            n("he_value_1_minus_05")?,
        ));
    }
    o.push_str(&format!(
        "\n(Generated from `{FILE}` by `slaf-he report readme`.)\n"
    ));
    Ok(o)
}

fn summary(root: &Path, dir: &str) -> Result<serde_json::Value, ReportError> {
    let rel = format!("results/inference/{dir}/summary.json");
    serde_json::from_str(&read(root, &rel)?).map_err(|e| invalid(&rel, format!("bad JSON: {e}")))
}

fn field(v: &serde_json::Value, path: &[&str], what: &str) -> Result<f64, ReportError> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| invalid(what, format!("no number at {}", path.join("."))))
}

/// `CPU: ..; SIMD: ..; [NTT kernels: ..;] N threads` of one summary, "not
/// recorded" where absent (the kernels only where recorded).
fn machine_of(v: &serde_json::Value) -> String {
    let cpu = v["cpu"].as_str().unwrap_or("not recorded");
    let simd = v["simd"]
        .as_array()
        .map_or("not recorded".to_string(), |a| {
            let s: Vec<String> = a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect();
            crate::machine::simd_text(&s)
        });
    let threads = v["threads"]
        .as_u64()
        .map_or("? threads".into(), |t| format!("{t} threads"));
    match v["ntt_kernels"].as_str() {
        Some(k) => format!("CPU: {cpu}; SIMD: {simd}; NTT kernels: {k}; {threads}"),
        None => format!("CPU: {cpu}; SIMD: {simd}; {threads}"),
    }
}

/// One summary under `results/<dir>/summary.json`.
fn summary_at(root: &Path, dir: &str) -> Result<serde_json::Value, ReportError> {
    let rel = format!("results/{dir}/summary.json");
    serde_json::from_str(&read(root, &rel)?).map_err(|e| invalid(&rel, format!("bad JSON: {e}")))
}

fn cnn3(root: &Path) -> Result<String, ReportError> {
    let mut o = String::from(
        "| data set | activation | CKKS parameters (auto) | depth | plaintext (10k) | encrypted, batched (10k) | agreement batched / per image | per image (images) | batched, per image |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut machines = Vec::new();
    let mut missing = Vec::new();
    let mut loads: Vec<f64> = Vec::new();
    for ds in ["mnist", "fashion-mnist"] {
        for act in ["x2", "slaf"] {
            let m = format!("cnn3/{ds}-cnn3-{act}");
            if !root
                .join(format!("results/{m}-batched/summary.json"))
                .is_file()
            {
                missing.push(format!("{ds} {act}"));
                continue;
            }
            let b = summary_at(root, &format!("{m}-batched"))?;
            let p = summary_at(root, &format!("{m}-per-image")).ok();
            let what = format!("results/{m}-*/summary.json");
            let f = |v: &serde_json::Value, path: &[&str]| field(v, path, &what);
            let desc = b["params"]["description"]
                .as_str()
                .and_then(|d| d.split(" (").next())
                .unwrap_or("?")
                .to_string();
            o.push_str(&format!(
                "| {ds} | {act} | {desc}, 2^{} | {} | {:.2} % | {:.2} % | {} % / {} | {} | {:.2} ms |\n",
                f(&b, &["params", "scale_bits"])?,
                f(&b, &["params", "depth"])?,
                f(&b, &["plain_accuracy"])? * 100.0,
                f(&b, &["he_accuracy"])? * 100.0,
                agreement_pct(f(&b, &["agreement"])?),
                match &p {
                    Some(p) => format!("{} %", agreement_pct(f(p, &["agreement"])?)),
                    None => "—".into(),
                },
                match &p {
                    Some(p) => format!(
                        "{:.0} ms ({})",
                        f(p, &["seconds_per_image"])? * 1e3,
                        f(p, &["images"])?
                    ),
                    None => "not run".into(),
                },
                f(&b, &["seconds_per_image"])? * 1e3,
            ));
            machines.push(machine_of(&b));
            loads.extend(b["load_average"].as_f64());
            loads.extend(p.as_ref().and_then(|p| p["load_average"].as_f64()));
        }
    }
    if machines.is_empty() {
        return Err(invalid(
            "results/cnn3",
            "no run has a batched summary yet (bash results/cnn3/run.sh)".into(),
        ));
    }
    machines.sort();
    machines.dedup();
    let missing = if missing.is_empty() {
        String::new()
    } else {
        format!(" Not run yet: {}.", missing.join(", "))
    };
    o.push_str(&format!(
        "\n(Generated from `results/cnn3/*/summary.json` by `slaf-he report readme`; {}; load average {:.1}-{:.1} at the end of the runs; made by `bash results/cnn3/run.sh`.{missing})\n",
        machines.join(" / "),
        loads.iter().copied().fold(f64::INFINITY, f64::min),
        loads.iter().copied().fold(0.0, f64::max),
    ));
    Ok(o)
}

fn he_inference(root: &Path) -> Result<String, ReportError> {
    let models = [
        ("cnn1-x2", "CNN1-X2"),
        ("cnn1-slaf", "CNN1-SLAF"),
        ("cnn2-slaf", "CNN2-SLAF"),
        ("cryptonets-x2", "CryptoNets-X2"),
    ];
    let mut o = String::from(
        "| model | CKKS parameters | per image (images) | batched, all images (per image) | agreement per image / batched | max logit error per image / batched | peak RSS (batched) |\n|---|---|---|---|---|---|---|\n",
    );
    let mut machines: Vec<String> = Vec::new();
    let mut loads: Vec<f64> = Vec::new();
    for (dir, label) in models {
        let p = summary(root, &format!("{dir}-per-image"))?;
        let b = summary(root, &format!("{dir}-batched"))?;
        let what = format!("results/inference/{dir}-*/summary.json");
        let f = |v: &serde_json::Value, path: &[&str]| field(v, path, &what);
        let desc = b["params"]["description"]
            .as_str()
            .and_then(|d| d.split(" (").next())
            .unwrap_or("?")
            .to_string();
        let scale = f(&b, &["params", "scale_bits"])?;
        o.push_str(&format!(
            "| {label} | {desc}, 2^{scale} | {:.0} ms ({}) | {:.1} s ({:.2} ms, {} images) | {} % / {} % | {} / {} | {:.1} GiB |\n",
            f(&p, &["seconds_per_image"])? * 1e3,
            f(&p, &["images"])?,
            f(&b, &["wall_seconds"])?,
            f(&b, &["seconds_per_image"])? * 1e3,
            f(&b, &["images"])?,
            agreement_pct(f(&p, &["agreement"])?),
            agreement_pct(f(&b, &["agreement"])?),
            sci(f(&p, &["max_logit_error"])?),
            sci(f(&b, &["max_logit_error"])?),
            f(&b, &["peak_rss_bytes"])? / f64::from(1u32 << 30),
        ));
        for v in [&p, &b] {
            machines.push(machine_of(v));
            if let Some(l) = v["load_average"].as_f64() {
                loads.push(l);
            }
        }
    }
    machines.sort();
    machines.dedup();
    let loads = match loads.iter().copied().reduce(f64::min) {
        Some(lo) => format!(
            "load average {lo:.2}-{:.2} at the end of the runs",
            loads.iter().copied().fold(lo, f64::max)
        ),
        None => "load average not recorded".into(),
    };
    o.push_str(&format!(
        "\n(Generated from `results/inference/*/summary.json` by `slaf-he report readme`; {}; {loads}.)\n",
        machines.join(" / ")
    ));
    Ok(o)
}

/// A committed markdown table, copied with a line naming it.
/// The client/server runs of `results/service/run.sh`: one row per
/// `query --json` summary.
fn service(root: &Path) -> Result<String, ReportError> {
    let mut o = String::from(
        "| mode | flooding | images | accuracy | agreement | max logit error | latency p50 / p95 | key bundle | up / down per request |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mib = |b: f64| b / f64::from(1u32 << 20);
    for run in [
        "batched",
        "per-image",
        "batched-flood16",
        "per-image-flood16",
    ] {
        let rel = format!("results/service/query-{run}.json");
        let v: serde_json::Value = serde_json::from_str(&read(root, &rel)?)
            .map_err(|e| invalid(&rel, format!("bad JSON: {e}")))?;
        let f = |k: &str| field(&v, &[k], &rel);
        let requests = f("requests")?.max(1.0);
        let (mode, flood) = run.split_once("-flood").unwrap_or((run, ""));
        o.push_str(&format!(
            "| {mode} | {} | {} | {:.2} % | {} % | {:.3} | {:.0} / {:.0} ms | {:.1} MiB | {:.2} / {:.2} MiB |\n",
            if flood.is_empty() { "—".to_string() } else { format!("B = {flood}") },
            f("images")?,
            100.0 * f("accuracy")?,
            agreement_pct(f("agreement")?),
            f("max_logit_error")?,
            f("latency_p50_ms")?,
            f("latency_p95_ms")?,
            mib(f("bundle_bytes")?),
            mib(f("bytes_up")? / requests),
            mib(f("bytes_down")? / requests),
        ));
    }
    o.push_str("\n(Generated from `results/service/query-*.json` by `slaf-he report readme`; `bash results/service/run.sh` regenerates them.)\n");
    Ok(o)
}

/// The study beyond the paper: one row per cell of `results/beyond/beyond.csv`
/// (plaintext accuracy over the seeds; the encrypted columns where the cell
/// ran encrypted, "not yet" for a polynomial cell that has not, "no model"
/// for a cell whose seeds all diverged), then the
/// findings and disagreements copied from `results/beyond/beyond.md`.
fn beyond(root: &Path) -> Result<String, ReportError> {
    const CSV: &str = "results/beyond/beyond.csv";
    const MD: &str = "results/beyond/beyond.md";
    let (h, rows) = csv(root, CSV)?;
    let mut o = String::from(
        "| data set | network | activation | accuracy (%, mean ± sd, seeds) | encrypted accuracy (%) | agreement (%) | per image (ms) | batched (ms/image) | depth | parameters |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        let c = |col: &str| cell(&h, r, col, CSV);
        let (net, act) = (c("net")?, c("act")?);
        let mean = c("accuracy_mean_pct")?;
        let diverged = mean.is_empty();
        let acc = match mean {
            "" => format!("diverged ({} seeds)", c("diverged")?),
            m => format!(
                "{:.2} ± {:.2} ({})",
                num(m, CSV)?,
                num(c("accuracy_sd_pct")?, CSV)?,
                c("seeds")?
            ),
        };
        let opt = |col: &str, f: &dyn Fn(f64) -> String| -> Result<String, ReportError> {
            Ok(match c(col)? {
                "" if act == "relu" => "plaintext only".into(),
                "" if diverged => "no model".into(),
                "" => "not yet".into(),
                v => f(num(v, CSV)?),
            })
        };
        let dash = |v: &str| {
            if v.is_empty() {
                "—".to_string()
            } else {
                v.to_string()
            }
        };
        o.push_str(&format!(
            "| {} | {net} | {act} | {acc} | {} | {} | {} | {} | {} | {} |\n",
            c("dataset")?,
            opt("he_accuracy_pct", &|x| format!("{x:.2}"))?,
            opt("agreement_batched_pct", &|x| agreement_pct(x / 100.0))?,
            opt("ms_per_image", &|x| sig(x, 3))?,
            opt("batched_ms_per_image", &|x| sig(x, 3))?,
            dash(c("depth")?),
            dash(c("params")?),
        ));
    }
    let md = read(root, MD)?;
    let findings = md
        .split_once("## Findings")
        .map(|(_, f)| f.replace("## Disagreements", "**Disagreements.**"))
        .ok_or_else(|| invalid(MD, "no \"## Findings\" section".into()))?;
    o.push_str(findings.trim_end());
    o.push_str(&format!(
        "\n\n(Generated from `{CSV}` and `{MD}` by `slaf-he report readme`; `slaf-he reproduce --full --only beyond` regenerates them.)\n"
    ));
    Ok(o)
}

fn verbatim(root: &Path, file: &str) -> Result<String, ReportError> {
    let text = read(root, file)?;
    let mut o = String::new();
    for l in text.lines() {
        o.push_str(l);
        o.push('\n');
    }
    o.push_str(&format!(
        "\n(Copied from `{file}` by `slaf-he report readme`.)\n"
    ));
    Ok(o)
}
