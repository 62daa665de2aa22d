//! The study's tables, figures and findings, built from stored cells alone
//! (see [`super::load_beyond`]): no training or encryption happens here.

use super::{Act, CellResult, HeMeasure};
use crate::StudyError;
use slaf_report::polars::prelude::{Column, DataFrame};
use slaf_report::{Figure, LineChart, Series};

/// One row per cell: plaintext accuracy (mean ± sd over the seeds), the
/// encrypted run's accuracy and agreement (batched, and per image), the
/// latency per image, the batched cost per image, and the parameters and
/// depth the planner chose. ReLU rows leave the encrypted columns empty.
pub fn beyond_table(cells: &[CellResult]) -> Result<DataFrame, StudyError> {
    let s = |f: &dyn Fn(&CellResult) -> String| cells.iter().map(f).collect::<Vec<_>>();
    let f = |f: &dyn Fn(&CellResult) -> f64| cells.iter().map(f).collect::<Vec<_>>();
    let he = |f: &dyn Fn(&HeMeasure) -> f64, per_image: bool| {
        cells
            .iter()
            .map(|c| {
                if per_image { &c.per_image } else { &c.batched }
                    .as_ref()
                    .map(f)
            })
            .collect::<Vec<Option<f64>>>()
    };
    let params = cells
        .iter()
        .map(|c| {
            c.batched
                .as_ref()
                .map(|b| b.params.split(" (").next().unwrap_or("").to_string())
        })
        .collect::<Vec<Option<String>>>();
    let depth = cells
        .iter()
        .map(|c| c.batched.as_ref().map(|b| b.depth as u32))
        .collect::<Vec<Option<u32>>>();
    let cols = vec![
        Column::new("dataset".into(), s(&|c| c.dataset.clone())),
        Column::new("net".into(), s(&|c| c.net.clone())),
        Column::new("act".into(), s(&|c| c.act.clone())),
        Column::new(
            "act_layers".into(),
            cells
                .iter()
                .map(|c| c.act_layers as u32)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "seeds".into(),
            cells
                .iter()
                .map(|c| c.test_accuracy_pct.len() as u32)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "diverged".into(),
            cells
                .iter()
                .map(|c| c.diverged.len() as u32)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "accuracy_mean_pct".into(),
            cells
                .iter()
                .map(|c| (!c.test_accuracy_pct.is_empty()).then(|| c.mean()))
                .collect::<Vec<Option<f64>>>(),
        ),
        Column::new("accuracy_sd_pct".into(), f(&|c| c.sd())),
        Column::new("he_accuracy_pct".into(), he(&|m| m.he_accuracy_pct, false)),
        Column::new(
            "agreement_batched_pct".into(),
            he(&|m| m.agreement_pct, false),
        ),
        Column::new(
            "agreement_per_image_pct".into(),
            he(&|m| m.agreement_pct, true),
        ),
        Column::new("ms_per_image".into(), he(&|m| m.ms_per_image, true)),
        Column::new(
            "batched_ms_per_image".into(),
            he(&|m| m.ms_per_image, false),
        ),
        Column::new("depth".into(), depth),
        Column::new("params".into(), params),
        Column::new("max_logit_error".into(), he(&|m| m.max_logit_error, false)),
    ];
    DataFrame::new_infer_height(cols)
        .map_err(|e| crate::p2::table_err("building the study table", e))
}

/// The cells of one data set, as the figures group them.
fn of<'a>(cells: &'a [CellResult], dataset: &str) -> Vec<&'a CellResult> {
    cells.iter().filter(|c| c.dataset == dataset).collect()
}

fn nets(cells: &[&CellResult]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for c in cells {
        if !v.contains(&c.net) {
            v.push(c.net.clone());
        }
    }
    v
}

/// Accuracy against time per image for one data set: one marker per
/// encrypted cell (x: per-image latency, log scale; y: encrypted accuracy
/// on the batched images), coloured by network and labelled with the
/// activation, and the Pareto front (no other cell is both faster and more
/// accurate) as a line.
pub fn pareto_figure(cells: &[CellResult], dataset: &str) -> Result<Figure, StudyError> {
    let mine = of(cells, dataset);
    let point = |c: &CellResult| match (&c.batched, &c.per_image) {
        (Some(b), Some(p)) => Some((p.ms_per_image, b.he_accuracy_pct)),
        _ => None,
    };
    let mut series = Vec::new();
    for net in nets(&mine) {
        let (pts, labels): (Vec<_>, Vec<_>) = mine
            .iter()
            .filter(|c| c.net == net)
            .filter_map(|c| point(c).map(|p| (p, c.act.clone())))
            .unzip();
        if !pts.is_empty() {
            series.push(Series::new(net, pts).with_labels(labels).scatter());
        }
    }
    let mut all: Vec<(f64, f64)> = mine.iter().filter_map(|c| point(c)).collect();
    if all.is_empty() {
        return Err(StudyError::InvalidOption(format!(
            "no encrypted cell of {dataset} to plot"
        )));
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut front: Vec<(f64, f64)> = Vec::new();
    for p in all {
        if front.last().is_none_or(|l| p.1 > l.1) {
            front.push(p);
        }
    }
    // A log axis only where the times span more than a decade.
    let (lo, hi) = front_span(&series);
    let log_x = hi / lo > 10.0;
    series.push(Series::new("Pareto front", front));
    let pad = if log_x {
        1.0
    } else {
        0.06 * (hi - lo).max(1e-9)
    };
    Ok(Figure::from(LineChart {
        title: format!("{dataset}: encrypted accuracy vs time per image"),
        x_label: format!(
            "ms per image (per-image engine{})",
            if log_x { ", log scale" } else { "" }
        ),
        y_label: "encrypted accuracy (%)".into(),
        series,
        log_x,
        x_range: Some(if log_x {
            (lo / 1.3, hi * 1.6)
        } else {
            (lo - pad, hi + 2.5 * pad)
        }),
        ..Default::default()
    }))
}

/// The smallest and largest x of the series' points.
fn front_span(series: &[Series]) -> (f64, f64) {
    series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        })
}

/// Mean plaintext accuracy against SLAF degree, one panel per data set and
/// one line per network; x² is drawn as a marker at degree 2 for reference.
pub fn degree_figure(cells: &[CellResult]) -> Result<Figure, StudyError> {
    let mut datasets: Vec<String> = Vec::new();
    for c in cells {
        if !datasets.contains(&c.dataset) {
            datasets.push(c.dataset.clone());
        }
    }
    let mut panels = Vec::new();
    for d in &datasets {
        // A cell whose every seed diverged has no mean to plot.
        let mine: Vec<&CellResult> = of(cells, d)
            .into_iter()
            .filter(|c| !c.test_accuracy_pct.is_empty())
            .collect();
        let mut series = Vec::new();
        for net in nets(&mine) {
            let mut pts: Vec<(f64, f64)> = mine
                .iter()
                .filter(|c| c.net == net)
                .filter_map(|c| c.degree.map(|k| (k as f64, c.mean())))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            if !pts.is_empty() {
                series.push(Series::new(format!("{net} SLAF"), pts));
            }
            if let Some(x2) = mine
                .iter()
                .find(|c| c.net == net && c.act == Act::X2.name())
            {
                series.push(Series::new(format!("{net} x²"), vec![(2.0, x2.mean())]).scatter());
            }
        }
        if series.is_empty() {
            continue;
        }
        panels.push(Figure::from(LineChart {
            title: format!("{d}: accuracy vs SLAF degree"),
            x_label: "SLAF degree".into(),
            y_label: "test accuracy, mean over seeds (%)".into(),
            series,
            x_range: Some((1.8, 4.2)),
            ..Default::default()
        }));
    }
    if panels.is_empty() {
        return Err(StudyError::InvalidOption(
            "no SLAF cell to plot against degree".into(),
        ));
    }
    let cols = panels.len();
    Ok(Figure::Grid {
        title: String::new(),
        panels,
        cols,
    })
}

/// The learned activations of the given networks on one data set: a row per
/// network, a panel per activation layer, with ReLU and every SLAF degree
/// over the layer's typical input range (the median of the runs' observed
/// ranges, so that one run with exploding inputs does not stretch the rest).
pub fn deep_activations_figure(
    cells: &[CellResult],
    dataset: &str,
    nets: &[&str],
) -> Result<Figure, StudyError> {
    let mine = of(cells, dataset);
    let mut rows = Vec::new();
    for net in nets {
        let slafs: Vec<&&CellResult> = mine
            .iter()
            .filter(|c| c.net == *net && c.degree.is_some() && !c.learned.is_empty())
            .collect();
        let Some(layers) = slafs.iter().map(|c| c.learned.len()).max() else {
            continue;
        };
        let mut panels = Vec::new();
        for k in 0..layers {
            let mut ranges: Vec<f64> = slafs
                .iter()
                .filter_map(|c| c.learned.get(k).map(|l| l.max_abs_input))
                .filter(|r| r.is_finite() && *r > 0.0)
                .collect();
            ranges.sort_by(f64::total_cmp);
            let r = ranges.get(ranges.len() / 2).copied().unwrap_or(1.0);
            let mut series = vec![Series::new(
                "ReLU",
                grid(r).map(|x| (x, x.max(0.0))).collect(),
            )];
            for c in &slafs {
                if let Some(l) = c.learned.get(k) {
                    series.push(Series::new(
                        c.act.clone(),
                        grid(r).map(|x| (x, l.apply(x))).collect(),
                    ));
                }
            }
            panels.push(Figure::from(LineChart {
                title: format!("act{} on [-{r:.1}, {r:.1}]", k + 1),
                x_label: "input".into(),
                y_label: "output".into(),
                series,
                ..Default::default()
            }));
        }
        rows.push(Figure::Grid {
            title: format!("{net} ({layers} activation layers)"),
            panels,
            cols: layers,
        });
    }
    if rows.is_empty() {
        return Err(StudyError::InvalidOption(format!(
            "no trained SLAF cell of {} on {dataset}",
            nets.join(", ")
        )));
    }
    Ok(Figure::Grid {
        title: format!("Learned activations of the deeper nets on {dataset}"),
        panels: rows,
        cols: 1,
    })
}

fn grid(r: f64) -> impl Iterator<Item = f64> {
    (0..=200).map(move |i| -r + 2.0 * r * f64::from(i) / 200.0)
}

fn find<'a>(cells: &'a [CellResult], d: &str, net: &str, act: Act) -> Option<&'a CellResult> {
    cells.iter().find(|c| {
        c.dataset == d && c.net == net && c.act == act.name() && !c.test_accuracy_pct.is_empty()
    })
}

fn datasets(cells: &[CellResult]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for c in cells {
        if !v.contains(&c.dataset) {
            v.push(c.dataset.clone());
        }
    }
    v
}

/// Per-image latency, batched cost and depth of an encrypted cell.
fn cost(c: &CellResult) -> Option<(f64, f64, usize)> {
    match (&c.per_image, &c.batched) {
        (Some(p), Some(b)) => Some((p.ms_per_image, b.ms_per_image, b.depth)),
        _ => None,
    }
}

/// Whether two cells' encrypted runs used the same machine (CPU and SIMD
/// features): only then is a ratio of their times a cost ratio.
fn same_machine(a: &CellResult, b: &CellResult) -> bool {
    let m = |c: &CellResult| c.batched.as_ref().map(|x| (x.cpu.clone(), x.simd.clone()));
    m(a) == m(b)
}

/// `t_b / t_a` to two decimals, marked † when the two cells were measured
/// on different machines ([`CROSS_MACHINE`]).
fn time_ratio(a: &CellResult, b: &CellResult, ta: f64, tb: f64) -> String {
    let mark = if same_machine(a, b) { "" } else { "†" };
    format!("{:.2}{mark}", tb / ta)
}

/// The footnote of a findings table with a † ratio.
const CROSS_MACHINE: &str =
    "† The two cells ran on different machines (other SIMD features): not a cost ratio.\n\n";

/// The three questions of the study, answered from the cells as markdown
/// tables (differences in percentage points, time ratios) with a sentence
/// each. A question whose cells this profile did not measure says so.
pub fn findings_markdown(cells: &[CellResult]) -> String {
    let ds = datasets(cells);
    let all_nets = nets(&cells.iter().collect::<Vec<_>>());
    let mut s = String::new();
    // 1. SLAF (degree 3) over x².
    s.push_str("**1. SLAF's advantage over x²** (SLAF degree 3 minus x², mean test accuracy over the seeds, percentage points; the sd is the larger of the two cells'):\n\n");
    let mut head = String::from("| network |");
    let mut rule = String::from("|---|");
    for d in &ds {
        head.push_str(&format!(" {d} |"));
        rule.push_str("---|");
    }
    s.push_str(&format!("{head}\n{rule}\n"));
    let mut gains: Vec<(String, String, f64)> = Vec::new();
    for net in &all_nets {
        let mut row = format!("| {net} |");
        for d in &ds {
            match (
                find(cells, d, net, Act::Slaf(3)),
                find(cells, d, net, Act::X2),
            ) {
                (Some(a), Some(b)) => {
                    let g = a.mean() - b.mean();
                    gains.push((d.clone(), net.clone(), g));
                    row.push_str(&format!(" {g:+.2} (± {:.2}) |", a.sd().max(b.sd())));
                }
                _ => row.push_str(" — |"),
            }
        }
        s.push_str(&format!("{row}\n"));
    }
    let mean_of = |f: &dyn Fn(&(String, String, f64)) -> bool| {
        let v: Vec<f64> = gains.iter().filter(|g| f(g)).map(|g| g.2).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let per_ds: Vec<String> = ds
        .iter()
        .filter_map(|d| mean_of(&|g| &g.0 == d).map(|m| format!("{d} {m:+.2} pp")))
        .collect();
    let per_net: Vec<String> = all_nets
        .iter()
        .filter_map(|n| mean_of(&|g| &g.1 == n).map(|m| format!("{n} {m:+.2}")))
        .collect();
    if gains.is_empty() {
        s.push_str("\nThis profile has no pair of SLAF-3 and x² cells.\n\n");
    } else {
        s.push_str(&format!(
            "\nAveraged over networks: {}. Averaged over data sets, by network (in order of depth): {}.\n\n",
            per_ds.join(", "),
            per_net.join(", ")
        ));
    }
    s.push_str(&degree_findings(cells, &ds, &all_nets));
    s.push_str(&layer_findings(cells, &ds));
    s
}

/// Question 2: what each extra degree buys and costs.
fn degree_findings(cells: &[CellResult], ds: &[String], nets: &[String]) -> String {
    let mut s = String::from(
        "**2. Which degree pays for its extra level?** Each step up in SLAF degree: the change in mean accuracy (pp, with the larger sd of the two cells), in depth (levels) and the ratio of per-image times:\n\n| data set | network | step | Δ accuracy | Δ depth | time ratio |\n|---|---|---|---|---|---|\n",
    );
    let mut pays = 0;
    let mut steps = 0;
    for d in ds {
        for net in nets {
            for (lo, hi) in [(2, 3), (3, 4)] {
                let (Some(a), Some(b)) = (
                    find(cells, d, net, Act::Slaf(lo)),
                    find(cells, d, net, Act::Slaf(hi)),
                ) else {
                    continue;
                };
                let g = b.mean() - a.mean();
                let sd = a.sd().max(b.sd());
                let (dd, tr) = match (cost(a), cost(b)) {
                    (Some(ca), Some(cb)) => (
                        format!("{:+}", cb.2 as i64 - ca.2 as i64),
                        time_ratio(a, b, ca.0, cb.0),
                    ),
                    _ => ("—".into(), "—".into()),
                };
                steps += 1;
                if g > sd {
                    pays += 1;
                }
                s.push_str(&format!(
                    "| {d} | {net} | {lo} → {hi} | {g:+.2} (± {sd:.2}) | {dd} | {tr} |\n"
                ));
            }
        }
    }
    if steps == 0 {
        s.push_str("| — | — | — | — | — | — |\n\nThis profile has no pair of SLAF degrees.\n\n");
    } else {
        s.push_str(&format!(
            "\nIn {pays} of {steps} steps the accuracy gain exceeds the seed-to-seed sd.\n\n"
        ));
    }
    if s.contains('†') {
        s.push_str(CROSS_MACHINE);
    }
    s
}

/// Question 3: cnn3 against cnn4 (the same network plus one dense layer and
/// one activation).
fn layer_findings(cells: &[CellResult], ds: &[String]) -> String {
    let mut s = String::from(
        "**3. What one more activation layer costs.** cnn4 is cnn3 plus one dense layer and one activation; cnn4 minus cnn3, per activation:\n\n| data set | act | Δ accuracy (pp) | Δ depth | per-image time ratio | batched time ratio | ring N (cnn3 → cnn4) |\n|---|---|---|---|---|---|---|\n",
    );
    let mut rows = 0;
    for d in ds {
        for act in Act::GRID {
            let (Some(a), Some(b)) = (find(cells, d, "cnn3", act), find(cells, d, "cnn4", act))
            else {
                continue;
            };
            let g = b.mean() - a.mean();
            let sd = a.sd().max(b.sd());
            let (dd, tr, br, ring) = match (cost(a), cost(b), &a.batched, &b.batched) {
                (Some(ca), Some(cb), Some(ba), Some(bb)) => (
                    format!("{:+}", cb.2 as i64 - ca.2 as i64),
                    time_ratio(a, b, ca.0, cb.0),
                    time_ratio(a, b, ca.1, cb.1),
                    format!("{} → {}", ba.n, bb.n),
                ),
                _ => ("—".into(), "—".into(), "—".into(), "—".into()),
            };
            rows += 1;
            s.push_str(&format!(
                "| {d} | {} | {g:+.2} (± {sd:.2}) | {dd} | {tr} | {br} | {ring} |\n",
                act.name()
            ));
        }
    }
    if rows == 0 {
        s.push_str("| — | — | — | — | — | — | — |\n\nThis profile has no cnn3/cnn4 pair.\n");
    }
    if s.contains('†') {
        s.push('\n');
        s.push_str(CROSS_MACHINE);
    }
    s
}

/// Rows of the disagreement table shown per run; the rest stay in the cell file.
const ROWS_PER_RUN: usize = 10;

/// How a disagreement reads: a near-tie when the plaintext margin is below
/// twice the image's logit error and that error is below one logit (CKKS
/// rounding noise); precision loss when the error itself reaches a whole
/// logit (the circuit amplified the noise); else not a near-tie.
fn reading(x: &super::Disagreement) -> &'static str {
    if x.max_logit_error >= 1.0 {
        "precision loss: logit error ≥ 1"
    } else if x.plain_margin < 2.0 * x.max_logit_error {
        "near-tie: margin below twice the logit error"
    } else {
        "NOT a near-tie"
    }
}

/// Each learned layer's observed input range and the largest slope of its
/// polynomial there (how much it amplifies an input error), as
/// `act1 |x| ≤ 4.3, max |p'| 3.1; …`.
fn amplification(c: &CellResult) -> String {
    c.learned
        .iter()
        .enumerate()
        .filter_map(|(k, l)| {
            let a = l.coeffs.as_ref()?;
            let r = l.max_abs_input;
            let slope = slaf_ckks::circuits::Polynomial::power(a.clone()).max_abs_slope(r);
            Some(format!("act{} |x| ≤ {r:.3e}, max |p'| {slope:.2e}", k + 1))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every encrypted run whose argmax differs from the plaintext one: a line
/// per run (how many, the largest logit error, the learned layers' input
/// ranges and slopes), then its first disagreements with their plaintext
/// margin, logit error and reading (see `reading`); "every encrypted run
/// agrees" when none differs.
pub fn disagreements_markdown(cells: &[CellResult]) -> String {
    let mut s = String::new();
    let mut runs = String::new();
    for c in cells {
        for (mode, m) in [("batched", &c.batched), ("per image", &c.per_image)] {
            let Some(m) = m else { continue };
            if m.disagreements.is_empty() {
                continue;
            }
            let lost = m
                .disagreements
                .iter()
                .filter(|x| x.max_logit_error >= 1.0)
                .count();
            runs.push_str(&format!(
                "- {} {mode}: {} of {} images disagree ({lost} with a logit error ≥ 1), largest logit error {:.2e}; layers: {}\n",
                c.key(),
                m.disagreements.len(),
                m.images,
                m.max_logit_error,
                amplification(c)
            ));
            for x in m.disagreements.iter().take(ROWS_PER_RUN) {
                s.push_str(&format!(
                    "| {} | {mode} | {} | {} | {} | {} | {:.2e} | {:.2e} | {} |\n",
                    c.key(),
                    x.index,
                    x.label,
                    x.plain_pred,
                    x.he_pred,
                    x.plain_margin,
                    x.max_logit_error,
                    reading(x)
                ));
            }
            if m.disagreements.len() > ROWS_PER_RUN {
                s.push_str(&format!(
                    "| {} | {mode} | … {} more in `cells/{}.json` | | | | | | |\n",
                    c.key(),
                    m.disagreements.len() - ROWS_PER_RUN,
                    c.key()
                ));
            }
        }
    }
    let mut div = String::new();
    for c in cells {
        for d in &c.diverged {
            div.push_str(&format!("- {} seed {}: {}\n", c.key(), d.seed, d.detail));
        }
    }
    let div = if div.is_empty() {
        String::new()
    } else {
        format!("\nTraining runs that diverged (left out of the means, listed here):\n\n{div}")
    };
    if s.is_empty() {
        return format!("Every encrypted run agrees with its plaintext run on every image.\n{div}");
    }
    format!(
        "{runs}\n| cell | mode | image | label | plaintext | encrypted | plaintext margin | logit error | reading |\n|---|---|---|---|---|---|---|---|---|\n{s}{div}"
    )
}

/// The spread of the 1-minute load averages the encrypted runs recorded:
/// the timings of a loaded machine are upper bounds, and the reader should
/// see how loaded it was.
fn load_range(cells: &[CellResult]) -> String {
    let loads: Vec<f64> = cells
        .iter()
        .flat_map(|c| [&c.batched, &c.per_image])
        .filter_map(|m| m.as_ref().and_then(|m| m.load_average))
        .collect();
    let lo = loads.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = loads.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match loads.len() {
        0 => "load average not recorded.".into(),
        n => format!(
            "1-minute load average {lo:.2}–{hi:.2} over the {n} encrypted runs (each cell file records its own; where the load exceeds the thread count the times are upper bounds)."
        ),
    }
}

/// The machines the encrypted runs used (CPU, SIMD, threads), each with
/// the cells it measured (named when few): the SIMD features set the
/// speed of the NTT kernels, so times compare only within one machine.
fn machines(cells: &[CellResult]) -> Option<String> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for c in cells {
        let Some(b) = c.batched.as_ref() else {
            continue;
        };
        let m = format!(
            "{} ({}), {} thread(s)",
            b.cpu.as_deref().unwrap_or("an unknown CPU"),
            b.simd
                .as_ref()
                .map_or("SIMD unknown".into(), |v| v.join(", ")),
            b.threads
        );
        match groups.iter_mut().find(|g| g.0 == m) {
            Some(g) => g.1.push(c.key()),
            None => groups.push((m, vec![c.key()])),
        }
    }
    match groups.as_slice() {
        [] => None,
        [(m, _)] => Some(format!("Encrypted runs on {m}")),
        _ => {
            let parts: Vec<String> = groups
                .iter()
                .map(|(m, keys)| {
                    let which = if keys.len() <= 4 {
                        keys.join(", ")
                    } else {
                        format!("{} cells", keys.len())
                    };
                    format!("{m}: {which}")
                })
                .collect();
            Some(format!(
                "Encrypted runs on {} machines (times compare within one machine only): {}",
                groups.len(),
                parts.join("; ")
            ))
        }
    }
}

/// Significant digits of the study table's floats: four, so that an
/// agreement of 99.99 % never reads as 100 and 98.57 % never as 99.
pub const TABLE_DIGITS: usize = 4;

/// The study's report as markdown: what ran, the table, the three answers
/// and every disagreement.
pub fn beyond_markdown(
    plan: &super::BeyondPlan,
    cells: &[CellResult],
) -> Result<String, StudyError> {
    let df = beyond_table(cells)?;
    let machine = machines(cells)
        .map(|m| format!("{m}; {}", load_range(cells)))
        .unwrap_or_default();
    Ok(format!(
        "# Beyond the paper: SLAF on Fashion-MNIST and deeper CNNs ({} profile)\n\n{plan}\n\nAccuracy: mean ± sd of the test accuracy over the seeds (plaintext, 30-epoch recipe of P1 in the full profile). Encrypted: the first seed, automatic 128-bit parameters, seeded keys (for tests only); `he_accuracy_pct` and `agreement_batched_pct` over the batched images, `ms_per_image` is the per-image engine's latency, `batched_ms_per_image` the batched engine's cost per image. {machine}\n\n{}\n\n## Findings\n\n{}\n## Disagreements\n\n{}",
        plan.profile.name(),
        slaf_report::dataframe_to_markdown(&df, TABLE_DIGITS),
        findings_markdown(cells),
        disagreements_markdown(cells)
    ))
}

/// The study's figures with their file stems: a Pareto plot per data set,
/// accuracy against degree, and the deeper nets' learned activations per
/// data set (when those cells exist).
pub fn beyond_figures(cells: &[CellResult]) -> Result<Vec<(String, Figure)>, StudyError> {
    let mut v = Vec::new();
    let ds = datasets(cells);
    for d in &ds {
        if cells.iter().any(|c| &c.dataset == d && c.batched.is_some()) {
            v.push((
                format!("pareto_{}", d.replace('-', "_")),
                pareto_figure(cells, d)?,
            ));
        }
    }
    if cells.iter().any(|c| c.degree.is_some()) {
        v.push(("accuracy_vs_degree".into(), degree_figure(cells)?));
    }
    let deep: Vec<&str> = ["cnn3", "cnn4"]
        .into_iter()
        .filter(|n| cells.iter().any(|c| c.net == *n && c.degree.is_some()))
        .collect();
    if !deep.is_empty() {
        for d in &ds {
            v.push((
                format!("activations_{}", d.replace('-', "_")),
                deep_activations_figure(cells, d, &deep)?,
            ));
        }
    }
    Ok(v)
}
