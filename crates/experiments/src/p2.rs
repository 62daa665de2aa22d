#![cfg_attr(not(feature = "tfhe-rs"), allow(unused_imports, unused_mut))]
//! The companion paper's (P2) sign-approximation study as data: the
//! comparison of the approximations (metrics, generation and encrypted
//! evaluation times, as-published defects, TFHE exact comparison) and the
//! interval analysis, each returned as polars tables plus figures.
//!
//! The CLI (`slaf-he compare`, `slaf-he interval`, `slaf-he reproduce`)
//! writes these into `results/`; the notebooks display the same values
//! inline. Sits above [`slaf_he_nn`], [`slaf_approx`] and
//! [`slaf_report`].

use slaf_approx::interval::{eps_values, interval_analysis};
use slaf_approx::methods::{FOURIER_HE_DEGREE, Representation, sign};
#[cfg(feature = "tfhe-rs")]
use slaf_approx::tfhe_exact::{ExactError, FixedPoint, edge_cases, run_exact_comparison};
use slaf_approx::{
    ApproxError, Approximation, IntervalRow, Method, Metrics, as_published, build, full_metrics,
    grid, metrics, poly, sign_norms,
};
use slaf_report::polars::prelude::{Column, DataFrame};
use slaf_report::{
    BarChart, Figure, LineChart, ReportError, Series, atomic_write, dataframe_to_markdown,
    write_csv,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Errors of the study.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StudyError {
    /// An approximation could not be built, measured or evaluated.
    #[error(transparent)]
    Approx(#[from] ApproxError),
    /// The TFHE-rs exact comparison failed.
    #[cfg(feature = "tfhe-rs")]
    #[error(transparent)]
    Exact(#[from] ExactError),
    /// A table or figure could not be built or written.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// An option is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Training or a model file failed.
    #[error(transparent)]
    Nn(#[from] slaf_nn::NnError),
    /// Encrypted inference failed.
    #[error(transparent)]
    HeNn(#[from] slaf_he_nn::HeNnError),
    /// A data set could not be found or read.
    #[error(transparent)]
    Data(#[from] slaf_nn::data::DataError),
}

/// The methods drawn in figures and analysed per eps (the published
/// Chebyshev row is left out: it is indistinguishable from the native one).
pub const PLOTTED: [Method; 7] = [
    Method::LeastSquares,
    Method::Composition,
    Method::Newton,
    Method::Chebyshev,
    Method::Fourier,
    Method::Minimax,
    Method::CompositeMinimax,
];

/// What the study measured, keyed like [`slaf_report::paper`].
pub type Measured = BTreeMap<String, f64>;

/// Options of the comparison.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Timing repetitions for generation and encrypted evaluation (>= 1).
    pub runs: usize,
    /// eps of the minimax methods (sign approximated on [-1,-eps] ∪ \[eps,1\]).
    pub eps: f64,
    /// Evaluate every polynomial under CKKS (N=8192, [31, 26x6, 31], 2^26).
    pub he: bool,
    /// Add the TFHE-rs exact comparison row; `Some(batch)` sets the size of
    /// the parallel batch timed after the single comparisons.
    pub tfhe_batch: Option<usize>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            runs: 30,
            eps: slaf_approx::methods::DEFAULT_MINIMAX_EPS,
            he: true,
            tfhe_batch: Some(32),
        }
    }
}

/// The outcome of [`compare`].
#[derive(Clone, Debug)]
pub struct CompareStudy {
    /// The approximations, in [`Method::ALL`] order.
    pub approximations: Vec<Approximation>,
    /// One row per method (plus `tfhe_exact`): metrics, degree, depth,
    /// generation and encrypted-evaluation times (columns of `metrics.csv`).
    pub metrics: DataFrame,
    /// The original code's defects: plaintext (and encrypted) value at
    /// x = 1 − 0.5 with the correct and the as-published coefficients.
    pub as_published: DataFrame,
    /// Markdown notes (Fourier frequency and conversion, minimax eps,
    /// encrypted set-up, TFHE line) followed by both tables.
    pub details: String,
    /// Figures with their file stems.
    pub figures: Vec<(String, Figure)>,
    /// Values for the paper-vs-reproduced report.
    pub measured: Measured,
}

/// The figure saved as `stem` among `figures`, or an error naming the stems there are.
fn find_figure<'a>(figures: &'a [(String, Figure)], stem: &str) -> Result<&'a Figure, StudyError> {
    figures
        .iter()
        .find(|(s, _)| s == stem)
        .map(|(_, f)| f)
        .ok_or_else(|| {
            let known: Vec<&str> = figures.iter().map(|(s, _)| s.as_str()).collect();
            StudyError::InvalidOption(format!("no figure {stem:?}; there are {known:?}"))
        })
}

/// Save the figures `stems` of `figures` as `dir/<prefix><stem>.svg|png` and
/// show them inline as one grid (two columns when there are several).
pub fn show_figures(
    figures: &[(String, Figure)],
    dir: &Path,
    prefix: &str,
    stems: &[&str],
) -> Result<(), StudyError> {
    let picked: Vec<(String, Figure)> = stems
        .iter()
        .map(|stem| {
            Ok((
                format!("{prefix}{stem}"),
                find_figure(figures, stem)?.clone(),
            ))
        })
        .collect::<Result<_, StudyError>>()?;
    slaf_report::save_and_show_grid(&picked, dir, "", picked.len().min(2))?;
    Ok(())
}

impl CompareStudy {
    /// The figure written as `<stem>.svg` / `.png` by the CLI.
    pub fn figure(&self, stem: &str) -> Result<&Figure, StudyError> {
        find_figure(&self.figures, stem)
    }

    /// sign(x) and the approximation of `method` over [-1, 1], titled with
    /// its basis, degree and depth.
    pub fn method_figure(&self, method: Method) -> Result<Figure, StudyError> {
        let a = self
            .approximations
            .iter()
            .find(|a| a.method == method)
            .ok_or_else(|| {
                StudyError::InvalidOption(format!("{} is not in the study", method.name()))
            })?;
        let xs = poly::linspace(-1.0, 1.0, 801);
        Ok(Figure::from(LineChart {
            title: format!(
                "{} ({} basis, degree {}, depth {})",
                a.method.name(),
                a.basis(),
                a.degree(),
                a.depth()
            ),
            x_label: "x".into(),
            y_label: "p(x)".into(),
            series: vec![
                Series::new("sign", xs.iter().map(|&x| (x, sign(x))).collect()),
                Series::new(
                    a.method.name(),
                    xs.iter().map(|&x| (x, a.eval(x))).collect(),
                ),
            ],
            y_range: Some((-1.4, 1.4)),
            ..Default::default()
        }))
    }

    /// [`Self::method_figure`] of every method, with the stem
    /// `<prefix><method name>`.
    pub fn method_figures(&self, prefix: &str) -> Result<Vec<(String, Figure)>, StudyError> {
        self.approximations
            .iter()
            .map(|a| {
                Ok((
                    format!("{prefix}{}", a.method.name()),
                    self.method_figure(a.method)?,
                ))
            })
            .collect()
    }

    /// The notes of [`Self::details`] before its tables (markdown).
    pub fn notes(&self) -> &str {
        self.details.split("\n## Metrics").next().unwrap_or("")
    }
}

impl IntervalStudy {
    /// The figure written as `<stem>.svg` / `.png` by the CLI.
    pub fn figure(&self, stem: &str) -> Result<&Figure, StudyError> {
        find_figure(&self.figures, stem)
    }

    /// One line: rows, eps values and methods.
    pub fn describe(&self) -> String {
        format!(
            "{} rows ({} eps values x {} methods)",
            self.rows.len(),
            eps_values().len(),
            PLOTTED.len()
        )
    }

    /// Every metric at the given eps values (the paper's reference points
    /// are 0, 0.1, 0.3 and 0.5), a row per (eps, method).
    pub fn at_eps(&self, eps: &[f64]) -> Result<DataFrame, StudyError> {
        let picked: Vec<IntervalRow> = self
            .rows
            .iter()
            .filter(|r| eps.iter().any(|e| (r.eps - e).abs() < 1e-9))
            .cloned()
            .collect();
        interval_frame(&picked)
    }
}

fn col_f64(name: &str, v: Vec<Option<f64>>) -> Column {
    Column::new(name.into(), v)
}

pub(crate) fn table_err(context: &str, e: slaf_report::polars::error::PolarsError) -> StudyError {
    StudyError::Report(ReportError::Table {
        context: context.into(),
        source: e,
    })
}

/// Run the comparison of the sign approximations; `log` receives one line
/// per finished step (the CLI prints them, a notebook may ignore them).
pub fn compare(
    opts: &CompareOptions,
    log: &mut dyn FnMut(&str),
) -> Result<CompareStudy, StudyError> {
    if !(opts.eps > 0.0 && opts.eps < 1.0) {
        return Err(StudyError::InvalidOption(format!(
            "eps must lie in (0, 1), got {}",
            opts.eps
        )));
    }
    let runs = opts.runs.max(1);
    let g = grid();
    let mut approxs: Vec<(Approximation, Metrics, f64)> = Vec::new();
    for m in Method::ALL {
        let a = build(m, &g, opts.eps)?;
        let met = full_metrics(&a)?;
        let (gen_mean, _median) = slaf_approx::methods::time_generation(m, &g, opts.eps, runs)?;
        approxs.push((a, met, gen_mean));
    }
    let mut names: Vec<String> = approxs.iter().map(|a| a.0.method.name().into()).collect();
    let mut basis: Vec<String> = approxs.iter().map(|a| a.0.basis().into()).collect();
    let mut degree: Vec<u32> = approxs.iter().map(|a| a.0.degree() as u32).collect();
    let mut depth: Vec<Option<u32>> = approxs.iter().map(|a| Some(a.0.depth() as u32)).collect();
    let mut mets: Vec<Metrics> = approxs.iter().map(|a| a.1).collect();
    let mut gen_ms: Vec<Option<f64>> = approxs.iter().map(|a| Some(a.2)).collect();
    // Encrypted evaluation with our CKKS. A method whose depth does not fit
    // the chain keeps empty columns and a note.
    let mut he_eval_ms: Vec<Option<f64>> = vec![None; approxs.len()];
    let mut he_max_err: Vec<Option<f64>> = vec![None; approxs.len()];
    let mut he_value: Vec<Option<f64>> = vec![None; approxs.len()];
    let mut he_notes: Vec<String> = Vec::new();
    let mut he_setup = if opts.he {
        Some(slaf_approx::he_eval::HeSetup::new()?)
    } else {
        None
    };
    if let Some(setup) = he_setup.as_mut() {
        log(&format!("encrypted evaluation with {}", setup.describe()));
        for (i, (a, ..)) in approxs.iter().enumerate() {
            match setup.evaluate(a, runs) {
                Ok(r) => {
                    log(&format!(
                        "  {:<20} {:>8.1} ms (median {:.1}), max |dec - p| {:.2e}, p(enc(1)-enc(0.5)) = {:.5}, {} levels",
                        a.method.name(),
                        r.eval_ms_mean,
                        r.eval_ms_median,
                        r.max_err,
                        r.value_1_minus_05,
                        r.levels_used
                    ));
                    he_eval_ms[i] = Some(r.eval_ms_mean);
                    he_max_err[i] = Some(r.max_err);
                    he_value[i] = Some(r.value_1_minus_05);
                }
                Err(e) => {
                    log(&format!("  {:<20} not evaluated: {e}", a.method.name()));
                    he_notes.push(format!(
                        "{}: not evaluated under CKKS: {e}",
                        a.method.name()
                    ));
                }
            }
        }
    }

    #[cfg_attr(not(feature = "tfhe-rs"), allow(unused_mut))]
    let mut tfhe_line = String::new();
    #[cfg(not(feature = "tfhe-rs"))]
    if opts.tfhe_batch.is_some() {
        return Err(StudyError::InvalidOption(
            "the TFHE-rs exact comparison is not in this build (built without the default feature `tfhe-rs`, e.g. to measure the AVX2 kernels): rebuild with default features, or leave the row out (`--no-tfhe`)".into(),
        ));
    }
    #[cfg(feature = "tfhe-rs")]
    if let Some(batch) = opts.tfhe_batch {
        let fmt = FixedPoint::default();
        let pairs = edge_cases(fmt);
        let r = run_exact_comparison(fmt, &pairs, pairs.len(), batch.max(1))?;
        // The exact comparator's values on the grid: sign of the quantised x
        // (every grid point is at least 1e-3 from 0, far above 2^-12).
        let vals: Vec<f64> = g
            .iter()
            .map(|&x| fmt.quantise(x).map(|q| sign(f64::from(q))))
            .collect::<Result<_, _>>()?;
        names.push("tfhe_exact".into());
        basis.push("integer".into());
        degree.push(0);
        depth.push(None);
        mets.push(metrics(&g, &vals, sign_norms(&g))?);
        gen_ms.push(Some(r.keygen_ms));
        he_eval_ms.push(Some(r.compare_ms));
        he_max_err.push(Some(if r.all_exact() { 0.0 } else { 2.0 }));
        he_value.push(Some(r.value_1_minus_05));
        tfhe_line = format!(
            "TFHE-rs exact comparison (FheInt16, {} fractional bits): keygen {:.0} ms, one comparison {:.1} ms (median), batch of {} in parallel {:.1} ms per comparison, {} of {} comparisons exact, sign(enc(1) - enc(0.5)) = {}",
            r.frac_bits,
            r.keygen_ms,
            r.compare_ms,
            r.batch_size,
            r.batch_ms_per_comparison,
            r.cases.iter().filter(|c| c.expected == c.decrypted).count(),
            r.cases.len(),
            r.value_1_minus_05
        );
        log(&tfhe_line);
    }

    let df = DataFrame::new_infer_height(vec![
        Column::new("method".into(), names.clone()),
        Column::new("basis".into(), basis),
        Column::new("degree".into(), degree),
        Column::new("depth".into(), depth),
        col_f64("r2", mets.iter().map(|m| Some(m.r2)).collect()),
        col_f64("chi2", mets.iter().map(|m| Some(m.chi2)).collect()),
        col_f64("l1", mets.iter().map(|m| Some(m.l1)).collect()),
        col_f64("l2", mets.iter().map(|m| Some(m.l2)).collect()),
        col_f64("linf", mets.iter().map(|m| Some(m.linf)).collect()),
        col_f64(
            "rel_l1_pct",
            mets.iter().map(|m| Some(m.rel_l1_pct)).collect(),
        ),
        col_f64(
            "rel_l2_pct",
            mets.iter().map(|m| Some(m.rel_l2_pct)).collect(),
        ),
        col_f64(
            "rel_linf_pct",
            mets.iter().map(|m| Some(m.rel_linf_pct)).collect(),
        ),
        col_f64("gen_ms", gen_ms.clone()),
        col_f64("he_eval_ms", he_eval_ms.clone()),
        col_f64("he_max_err", he_max_err),
        col_f64("he_value_1_minus_05", he_value),
    ])
    .map_err(|e| table_err("building the metrics table", e))?;

    // As-published defects, evaluated in plaintext at 0.5 = 1 - 0.5.
    let mut ap_rows: Vec<(String, String, f64, f64, Option<f64>)> = Vec::new();
    for (a, ..) in &approxs {
        if let Some((coeffs, defect)) = as_published(a) {
            let he = match he_setup.as_mut() {
                Some(setup) => {
                    let c = coeffs.clone();
                    setup
                        .evaluate_polys(
                            &[slaf_ckks::circuits::Polynomial::power(coeffs.clone())],
                            1,
                            &move |x| poly::eval_power(&c, x),
                        )
                        .ok()
                        .map(|r| r.value_1_minus_05)
                }
                None => None,
            };
            ap_rows.push((
                a.method.name().into(),
                defect.into(),
                a.eval(0.5),
                poly::eval_power(&coeffs, 0.5),
                he,
            ));
        }
    }
    let ap = DataFrame::new_infer_height(vec![
        Column::new(
            "method".into(),
            ap_rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "defect".into(),
            ap_rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "p_0_5_correct".into(),
            ap_rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        ),
        Column::new(
            "p_0_5_as_published".into(),
            ap_rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        ),
        Column::new(
            "he_value_1_minus_05_as_published".into(),
            ap_rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        ),
    ])
    .map_err(|e| table_err("building the as-published table", e))?;

    // Details: Fourier frequency and its HE conversion, minimax eps.
    let mut details = String::from("# Sign-approximation study: details\n\n");
    for (a, ..) in &approxs {
        if let Representation::Fourier { w, .. } = a.repr {
            let (_, err) = a.he_stages();
            details.push_str(&format!(
                "- Fourier: fitted frequency w = {w:.4} (original 2.940); for encrypted evaluation it is replaced by its degree-{FOURIER_HE_DEGREE} Chebyshev interpolant, max error {err:.2e} on the grid.\n"
            ));
        }
    }
    details.push_str(&format!(
        "- Minimax methods approximate sign on [-1, -{e}] ∪ [{e}, 1] (eps = {e}); composite minimax = two odd degree-7 Remez stages.\n- Chebyshev: native interpolant at the 10 Chebyshev points of the second kind (chebfun's construction); `chebyshev_published` uses the original's rounded coefficients.\n- chi2 = Σ (p − sign)² / |sign| (Pearson with |expected|; equals L2² on this grid).\n- Encrypted evaluation: our CKKS with N=8192, [31, 26x6, 31], scale 2^26 (the original's parameters); he_eval_ms is the mean evaluation time over {runs} runs (all cores), he_max_err the max |decrypted − plaintext p| over the 1000 points. The depth-optimal evaluator (baby-step giant-step, exact scales) uses ⌈log2(d+1)⌉ levels per polynomial stage: 4 for degree 9 and for the two cubic stages of composition and Newton, 6 for the composite minimax (7∘7); the Fourier series is evaluated as its degree-{FOURIER_HE_DEGREE} Chebyshev interpolant. A method whose depth exceeded the 6 levels would keep empty columns.\n",
        e = opts.eps,
    ));
    for n in &he_notes {
        details.push_str(&format!("- {n}\n"));
    }
    if !tfhe_line.is_empty() {
        details.push_str(&format!("- {tfhe_line}\n"));
    }
    details.push_str("\n## Metrics\n\n");
    details.push_str(&dataframe_to_markdown(&df, 5));
    details.push_str("\n## As-published defects (plaintext value at x = 1 − 0.5)\n\n");
    details.push_str(&dataframe_to_markdown(&ap, 5));

    // Figures.
    let approximations: Vec<Approximation> = approxs.iter().map(|a| a.0.clone()).collect();
    let mut figures = vec![
        (
            "approximations".to_string(),
            approximations_figure(&approximations),
        ),
        ("abs_error".to_string(), abs_error_figure(&approximations)),
        (
            "generation_time".to_string(),
            Figure::from(BarChart {
                title: "Generation time (mean)".into(),
                y_label: "milliseconds".into(),
                bars: names
                    .iter()
                    .zip(&gen_ms)
                    .filter_map(|(n, t)| t.map(|t| (n.clone(), t.max(1e-4))))
                    .collect(),
                log_y: true,
            }),
        ),
    ];
    // Encrypted evaluation time: ours beside the original's (Colab, TenSEAL).
    let mut he_bars = Vec::new();
    for (n, t) in names.iter().zip(&he_eval_ms) {
        if let Some(t) = t {
            he_bars.push((format!("{n} (ours)"), *t));
            if let Some(r) = slaf_report::paper::reference(&format!("p2.he_ms.{n}")) {
                he_bars.push((format!("{n} (original)"), r.paper));
            }
        }
    }
    if !he_bars.is_empty() {
        figures.push((
            "he_eval_time".into(),
            Figure::from(BarChart {
                title: "Encrypted evaluation time (CKKS N=8192): ours vs the original".into(),
                y_label: "milliseconds".into(),
                bars: he_bars,
                log_y: false,
            }),
        ));
    }
    figures.push((
        "rel_l1".into(),
        Figure::from(BarChart {
            title: "Relative L1 error on [-1, 1]".into(),
            y_label: "relative L1 (%)".into(),
            bars: names
                .iter()
                .zip(&mets)
                .map(|(n, m)| (n.clone(), m.rel_l1_pct))
                .collect(),
            log_y: false,
        }),
    ));

    let mut measured = Measured::new();
    for (a, m, ..) in &approxs {
        let k = a.method.name();
        measured.insert(format!("p2.r2.{k}"), m.r2);
        measured.insert(format!("p2.l1.{k}"), m.l1);
        measured.insert(format!("p2.l2.{k}"), m.l2);
        measured.insert(format!("p2.linf.{k}"), m.linf);
    }
    for (n, t) in names.iter().zip(&he_eval_ms) {
        if let Some(t) = t {
            measured.insert(format!("p2.he_ms.{n}"), *t);
        }
    }
    Ok(CompareStudy {
        approximations,
        metrics: df,
        as_published: ap,
        details,
        figures,
        measured,
    })
}

impl CompareStudy {
    /// Write `metrics.csv`, `as_published.csv`, `metrics.md` and every
    /// figure (SVG + PNG) into `dir`; returns the files written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, StudyError> {
        let mut written = Vec::new();
        let csv = dir.join("metrics.csv");
        write_csv(&mut self.metrics.clone(), &csv)?;
        written.push(csv);
        let ap_csv = dir.join("as_published.csv");
        write_csv(&mut self.as_published.clone(), &ap_csv)?;
        written.push(ap_csv);
        let md = dir.join("metrics.md");
        atomic_write(&md, self.details.as_bytes())?;
        written.push(md);
        written.extend(save_figures(&self.figures, dir)?);
        Ok(written)
    }
}

fn save_figures(figures: &[(String, Figure)], dir: &Path) -> Result<Vec<PathBuf>, StudyError> {
    let mut written = Vec::new();
    for (stem, fig) in figures {
        let (svg, png) = fig.save(dir, stem)?;
        written.extend([svg, png]);
    }
    Ok(written)
}

/// sign(x) and the [`PLOTTED`] approximations over [-1, 1].
pub fn approximations_figure(approxs: &[Approximation]) -> Figure {
    let xs = poly::linspace(-1.0, 1.0, 801);
    let mut series = vec![Series::new(
        "sign",
        xs.iter().map(|&x| (x, sign(x))).collect(),
    )];
    for a in approxs.iter().filter(|a| PLOTTED.contains(&a.method)) {
        series.push(Series::new(
            a.method.name(),
            xs.iter().map(|&x| (x, a.eval(x))).collect(),
        ));
    }
    Figure::from(LineChart {
        title: "Approximations of sign(x) on [-1, 1]".into(),
        x_label: "x".into(),
        y_label: "p(x)".into(),
        series,
        y_range: Some((-1.4, 1.4)),
        ..Default::default()
    })
}

/// |sign − p| over [-1, 1] for each method.
pub fn abs_error_figure(approxs: &[Approximation]) -> Figure {
    let xs = poly::linspace(-1.0, 1.0, 801);
    Figure::from(LineChart {
        title: "|sign(x) − p(x)| over [-1, 1]".into(),
        x_label: "x".into(),
        y_label: "absolute error".into(),
        series: approxs
            .iter()
            .filter(|a| a.method != Method::ChebyshevPublished)
            .map(|a| {
                Series::new(
                    a.method.name(),
                    xs.iter()
                        .map(|&x| (x, (sign(x) - a.eval(x)).abs()))
                        .collect(),
                )
            })
            .collect(),
        ..Default::default()
    })
}

/// The outcome of [`interval`].
#[derive(Clone, Debug)]
pub struct IntervalStudy {
    /// One row per (eps, method).
    pub rows: Vec<IntervalRow>,
    /// The rows as a table (columns of `interval/metrics.csv`).
    pub metrics: DataFrame,
    /// Relative L1 at SPEC §6's reference points: paper beside ours (markdown).
    pub reference_points: String,
    /// Figures with their file stems.
    pub figures: Vec<(String, Figure)>,
    /// Values for the paper-vs-reproduced report.
    pub measured: Measured,
}

/// Run the interval analysis: for eps = 0.00, 0.01, …, 0.50 drop |x| < eps
/// and recompute the metrics of the [`PLOTTED`] methods.
pub fn interval(minimax_eps: f64) -> Result<IntervalStudy, StudyError> {
    let methods = PLOTTED;
    let rows = interval_analysis(&methods, &eps_values(), minimax_eps)?;
    let df = interval_frame(&rows)?;
    let chart = |title: &str, y: &str, f: &dyn Fn(&Metrics) -> f64| {
        Figure::from(LineChart {
            title: title.into(),
            x_label: "eps (points with |x| < eps dropped)".into(),
            y_label: y.into(),
            series: methods
                .iter()
                .map(|m| {
                    Series::new(
                        m.name(),
                        rows.iter()
                            .filter(|r| r.method == *m)
                            .map(|r| (r.eps, f(&r.metrics)))
                            .collect(),
                    )
                })
                .collect(),
            ..Default::default()
        })
    };
    let g = grid();
    let approxs: Vec<Approximation> = methods
        .iter()
        .map(|&m| build(m, &g, minimax_eps))
        .collect::<Result<_, _>>()?;
    let figures = vec![
        (
            "rel_l1_vs_eps".to_string(),
            chart("Relative L1 error versus eps", "relative L1 (%)", &|m| {
                m.rel_l1_pct
            }),
        ),
        (
            "r2_vs_eps".to_string(),
            chart("R² versus eps", "R²", &|m| m.r2),
        ),
        (
            "linf_vs_eps".to_string(),
            chart("L∞ error versus eps", "L∞", &|m| m.linf),
        ),
        ("abs_error".to_string(), abs_error_figure(&approxs)),
    ];

    // The reference points of SPEC §6 beside ours.
    let mut md = String::from(
        "# Interval analysis: relative L1 (%) at the reference points\n\n| method | eps | paper | reproduced |\n|---|---|---|---|\n",
    );
    let mut measured = Measured::new();
    for m in [
        Method::LeastSquares,
        Method::Composition,
        Method::Newton,
        Method::Chebyshev,
    ] {
        for e in [0.0, 0.1, 0.3, 0.5] {
            let key = format!("p2.interval.rel_l1.{}.{e:.2}", m.name());
            if let Some(r) = rows
                .iter()
                .find(|r| r.method == m && (r.eps - e).abs() < 1e-9)
            {
                measured.insert(key.clone(), r.metrics.rel_l1_pct);
                let paper = slaf_report::paper::reference(&key)
                    .map_or("—".to_string(), |r| format!("{:.2}", r.paper));
                md.push_str(&format!(
                    "| {} | {e:.2} | {paper} | {:.2} |\n",
                    m.name(),
                    r.metrics.rel_l1_pct
                ));
            }
        }
    }
    Ok(IntervalStudy {
        rows,
        metrics: df,
        reference_points: md,
        figures,
        measured,
    })
}

impl IntervalStudy {
    /// Write `metrics.csv`, `reference_points.md` and every figure into
    /// `dir`; returns the files written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, StudyError> {
        let mut written = Vec::new();
        let csv = dir.join("metrics.csv");
        write_csv(&mut self.metrics.clone(), &csv)?;
        written.push(csv);
        written.extend(save_figures(&self.figures, dir)?);
        let mdp = dir.join("reference_points.md");
        atomic_write(&mdp, self.reference_points.as_bytes())?;
        written.push(mdp);
        Ok(written)
    }
}

fn interval_frame(rows: &[IntervalRow]) -> Result<DataFrame, StudyError> {
    let f = |g: &dyn Fn(&Metrics) -> f64| rows.iter().map(|r| g(&r.metrics)).collect::<Vec<_>>();
    DataFrame::new_infer_height(vec![
        Column::new("eps".into(), rows.iter().map(|r| r.eps).collect::<Vec<_>>()),
        Column::new(
            "method".into(),
            rows.iter().map(|r| r.method.name()).collect::<Vec<_>>(),
        ),
        Column::new("r2".into(), f(&|m| m.r2)),
        Column::new("l1".into(), f(&|m| m.l1)),
        Column::new("l2".into(), f(&|m| m.l2)),
        Column::new("linf".into(), f(&|m| m.linf)),
        Column::new("rel_l1_pct".into(), f(&|m| m.rel_l1_pct)),
        Column::new("rel_l2_pct".into(), f(&|m| m.rel_l2_pct)),
        Column::new("rel_linf_pct".into(), f(&|m| m.rel_linf_pct)),
    ])
    .map_err(|e| table_err("building the interval table", e))
}
