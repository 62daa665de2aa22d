//! `slaf-he compare` and `slaf-he interval`: the P2 sign-approximation
//! study written into `results/comparison/` and `results/interval/` (CSV
//! with contract columns, markdown tables and figures).

use anyhow::Context;
use clap::Args;
use slaf_he::approx::interval::{eps_values, interval_analysis};
use slaf_he::approx::methods::{DEFAULT_MINIMAX_EPS, FOURIER_HE_DEGREE, Representation, sign};
use slaf_he::approx::tfhe_exact::{FixedPoint, edge_cases, run_exact_comparison};
use slaf_he::approx::{
    Approximation, IntervalRow, Method, Metrics, as_published, build, full_metrics, grid, metrics,
    poly, sign_norms,
};
use slaf_he::report::polars::prelude::{Column, DataFrame};
use slaf_he::report::{
    BarChart, Figure, LineChart, Series, atomic_write, dataframe_to_markdown, write_csv,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Arguments of `slaf-he compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Timing repetitions for generation (and encrypted evaluation).
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
    /// Fewer runs and a smaller TFHE batch (for tests and CI).
    #[arg(long)]
    pub quick: bool,
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "results/comparison")]
    pub out: PathBuf,
    /// eps of the minimax methods (sign approximated on [-1,-eps] ∪ [eps,1]).
    #[arg(long, default_value_t = DEFAULT_MINIMAX_EPS)]
    pub eps: f64,
    /// Skip the TFHE-rs exact comparison row (its key generation takes seconds).
    #[arg(long)]
    pub no_tfhe: bool,
    /// Skip the encrypted (CKKS) evaluation of the polynomials.
    #[arg(long)]
    pub no_he: bool,
}

/// Arguments of `slaf-he interval`.
#[derive(Debug, Args)]
pub struct IntervalArgs {
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "results/interval")]
    pub out: PathBuf,
    /// eps of the minimax methods.
    #[arg(long, default_value_t = DEFAULT_MINIMAX_EPS)]
    pub eps: f64,
}

/// The methods drawn in figures and analysed per eps (the published
/// Chebyshev row is left out: it is indistinguishable from the native one).
const PLOTTED: [Method; 7] = [
    Method::LeastSquares,
    Method::Composition,
    Method::Newton,
    Method::Chebyshev,
    Method::Fourier,
    Method::Minimax,
    Method::CompositeMinimax,
];

/// What a study command measured: numbers keyed like `report::paper`.
pub type Measured = BTreeMap<String, f64>;

fn col_f64(name: &str, v: Vec<Option<f64>>) -> Column {
    Column::new(name.into(), v)
}

/// Run `slaf-he compare`; returns the files written and the measured values.
pub fn compare(args: &CompareArgs) -> anyhow::Result<(Vec<PathBuf>, Measured)> {
    if !(args.eps > 0.0 && args.eps < 1.0) {
        anyhow::bail!("--eps must lie in (0, 1), got {}", args.eps);
    }
    let runs = if args.quick {
        args.runs.min(3)
    } else {
        args.runs
    }
    .max(1);
    let g = grid();
    let mut approxs: Vec<(Approximation, Metrics, f64, f64)> = Vec::new();
    for m in Method::ALL {
        let a = build(m, &g, args.eps).with_context(|| format!("building {}", m.name()))?;
        let met = full_metrics(&a)?;
        let (gen_mean, gen_median) =
            slaf_he::approx::methods::time_generation(m, &g, args.eps, runs)?;
        approxs.push((a, met, gen_mean, gen_median));
    }
    let mut names: Vec<String> = approxs.iter().map(|a| a.0.method.name().into()).collect();
    let mut basis: Vec<String> = approxs.iter().map(|a| a.0.basis().into()).collect();
    let mut degree: Vec<u32> = approxs.iter().map(|a| a.0.degree() as u32).collect();
    let mut depth: Vec<Option<u32>> = approxs.iter().map(|a| Some(a.0.depth() as u32)).collect();
    let mut mets: Vec<Metrics> = approxs.iter().map(|a| a.1).collect();
    let mut gen_ms: Vec<Option<f64>> = approxs.iter().map(|a| Some(a.2)).collect();
    // Encrypted evaluation with our CKKS (N=8192, [31, 26x6, 31], 2^26).
    // A method whose depth does not fit the chain keeps empty columns.
    let mut he_eval_ms: Vec<Option<f64>> = vec![None; approxs.len()];
    let mut he_max_err: Vec<Option<f64>> = vec![None; approxs.len()];
    let mut he_value: Vec<Option<f64>> = vec![None; approxs.len()];
    let mut he_notes: Vec<String> = Vec::new();
    let mut he_setup = if args.no_he {
        None
    } else {
        Some(slaf_he::approx::he_eval::HeSetup::new()?)
    };
    if let Some(setup) = he_setup.as_mut() {
        println!("encrypted evaluation with {}", setup.describe());
        for (i, (a, ..)) in approxs.iter().enumerate() {
            match setup.evaluate(a, runs) {
                Ok(r) => {
                    println!(
                        "  {:<20} {:>8.1} ms (median {:.1}), max |dec - p| {:.2e}, p(enc(1)-enc(0.5)) = {:.5}, {} levels",
                        a.method.name(),
                        r.eval_ms_mean,
                        r.eval_ms_median,
                        r.max_err,
                        r.value_1_minus_05,
                        r.levels_used
                    );
                    he_eval_ms[i] = Some(r.eval_ms_mean);
                    he_max_err[i] = Some(r.max_err);
                    he_value[i] = Some(r.value_1_minus_05);
                }
                Err(e) => {
                    println!("  {:<20} not evaluated: {e}", a.method.name());
                    he_notes.push(format!(
                        "{}: not evaluated under CKKS: {e}",
                        a.method.name()
                    ));
                }
            }
        }
    }

    let mut tfhe_line = String::new();
    if !args.no_tfhe {
        let fmt = FixedPoint::default();
        let pairs = edge_cases(fmt);
        let batch = if args.quick { 4 } else { 32 };
        let r = run_exact_comparison(fmt, &pairs, pairs.len(), batch)?;
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
        println!("{tfhe_line}");
    }

    let mut df = DataFrame::new_infer_height(vec![
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
    .map_err(|e| anyhow::anyhow!("building the metrics table: {e}"))?;
    let out = &args.out;
    let mut written = Vec::new();
    let csv = out.join("metrics.csv");
    write_csv(&mut df, &csv)?;
    written.push(csv);

    // As-published defects, evaluated in plaintext at 0.5 = 1 - 0.5.
    let mut ap_rows: Vec<(String, String, f64, f64, Option<f64>)> = Vec::new();
    for (a, ..) in &approxs {
        if let Some((coeffs, defect)) = as_published(a) {
            let he = match he_setup.as_mut() {
                Some(setup) => {
                    let c = coeffs.clone();
                    setup
                        .evaluate_polys(
                            &[slaf_he::ckks::circuits::Polynomial::power(coeffs.clone())],
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
    let mut ap = DataFrame::new_infer_height(vec![
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
    .map_err(|e| anyhow::anyhow!("building the as-published table: {e}"))?;
    let ap_csv = out.join("as_published.csv");
    write_csv(&mut ap, &ap_csv)?;
    written.push(ap_csv);

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
        "- Minimax methods approximate sign on [-1, -{e}] ∪ [{e}, 1] (eps = {e}); composite minimax = two odd degree-7 Remez stages.\n- Chebyshev: native interpolant at the 10 Chebyshev points of the second kind (chebfun's construction); `chebyshev_published` uses the original's rounded coefficients.\n- chi2 = Σ (p − sign)² / |sign| (Pearson with |expected|; equals L2² on this grid).\n- Encrypted evaluation: our CKKS with N=8192, [31, 26x6, 31], scale 2^26 (the original's parameters); he_eval_ms is the mean evaluation time (single run of the evaluator, all cores), he_max_err the max |decrypted − plaintext p| over the 1000 points. The depth-optimal evaluator (baby-step giant-step, exact scales) uses ⌈log2(d+1)⌉ levels per polynomial stage: 4 for degree 9 and for the two cubic stages of composition and Newton, 6 for the composite minimax (7∘7); the Fourier series is evaluated as its degree-{fd} Chebyshev interpolant. A method whose depth exceeded the 6 levels would keep empty columns.\n",
        e = args.eps,
        fd = slaf_he::approx::methods::FOURIER_HE_DEGREE
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
    let md = out.join("metrics.md");
    atomic_write(&md, details.as_bytes())?;
    written.push(md);

    // Figures.
    let xs = slaf_he::approx::poly::linspace(-1.0, 1.0, 801);
    let mut series = vec![Series::new(
        "sign",
        xs.iter().map(|&x| (x, sign(x))).collect(),
    )];
    let shown = PLOTTED;
    for (a, ..) in approxs.iter().filter(|a| shown.contains(&a.0.method)) {
        series.push(Series::new(
            a.method.name(),
            xs.iter().map(|&x| (x, a.eval(x))).collect(),
        ));
    }
    let fig = Figure::from(LineChart {
        title: "Approximations of sign(x) on [-1, 1]".into(),
        x_label: "x".into(),
        y_label: "p(x)".into(),
        series,
        y_range: Some((-1.4, 1.4)),
        ..Default::default()
    });
    written.extend(pair(fig.save(out, "approximations")?));
    let fig = abs_error_figure(&approxs.iter().map(|a| a.0.clone()).collect::<Vec<_>>());
    written.extend(pair(fig.save(out, "abs_error")?));
    let fig = Figure::from(BarChart {
        title: "Generation time (mean)".into(),
        y_label: "milliseconds".into(),
        bars: names
            .iter()
            .zip(&gen_ms)
            .filter_map(|(n, t)| t.map(|t| (n.clone(), t.max(1e-4))))
            .collect(),
        log_y: true,
    });
    written.extend(pair(fig.save(out, "generation_time")?));
    // Encrypted evaluation time: ours beside the original's (Colab, TenSEAL).
    let mut he_bars = Vec::new();
    for (n, t) in names.iter().zip(&he_eval_ms) {
        if let Some(t) = t {
            he_bars.push((format!("{n} (ours)"), *t));
            if let Some(r) = slaf_he::report::paper::reference(&format!("p2.he_ms.{n}")) {
                he_bars.push((format!("{n} (original)"), r.paper));
            }
        }
    }
    if !he_bars.is_empty() {
        let fig = Figure::from(BarChart {
            title: "Encrypted evaluation time (CKKS N=8192): ours vs the original".into(),
            y_label: "milliseconds".into(),
            bars: he_bars,
            log_y: false,
        });
        written.extend(pair(fig.save(out, "he_eval_time")?));
    }
    let fig = Figure::from(BarChart {
        title: "Relative L1 error on [-1, 1]".into(),
        y_label: "relative L1 (%)".into(),
        bars: names
            .iter()
            .zip(&mets)
            .map(|(n, m)| (n.clone(), m.rel_l1_pct))
            .collect(),
        log_y: false,
    });
    written.extend(pair(fig.save(out, "rel_l1")?));

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
    Ok((written, measured))
}

fn pair((a, b): (PathBuf, PathBuf)) -> [PathBuf; 2] {
    [a, b]
}

/// |sign − p| over [-1, 1] for each method.
pub fn abs_error_figure(approxs: &[Approximation]) -> Figure {
    let xs = slaf_he::approx::poly::linspace(-1.0, 1.0, 801);
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

/// Run `slaf-he interval`; returns the files written and the measured values.
pub fn interval(args: &IntervalArgs) -> anyhow::Result<(Vec<PathBuf>, Measured)> {
    let methods = PLOTTED;
    let rows = interval_analysis(&methods, &eps_values(), args.eps)?;
    let out = &args.out;
    let mut df = interval_frame(&rows)?;
    let mut written = Vec::new();
    let csv = out.join("metrics.csv");
    write_csv(&mut df, &csv)?;
    written.push(csv);
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
    written.extend(pair(
        chart("Relative L1 error versus eps", "relative L1 (%)", &|m| {
            m.rel_l1_pct
        })
        .save(out, "rel_l1_vs_eps")?,
    ));
    written.extend(pair(
        chart("R² versus eps", "R²", &|m| m.r2).save(out, "r2_vs_eps")?,
    ));
    written.extend(pair(
        chart("L∞ error versus eps", "L∞", &|m| m.linf).save(out, "linf_vs_eps")?,
    ));
    let g = grid();
    let approxs: Vec<Approximation> = methods
        .iter()
        .map(|&m| build(m, &g, args.eps))
        .collect::<Result<_, _>>()?;
    written.extend(pair(abs_error_figure(&approxs).save(out, "abs_error")?));

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
                let paper = slaf_he::report::paper::reference(&key)
                    .map_or("—".to_string(), |r| format!("{:.2}", r.paper));
                md.push_str(&format!(
                    "| {} | {e:.2} | {paper} | {:.2} |\n",
                    m.name(),
                    r.metrics.rel_l1_pct
                ));
            }
        }
    }
    let mdp = out.join("reference_points.md");
    atomic_write(&mdp, md.as_bytes())?;
    written.push(mdp);
    Ok((written, measured))
}

fn interval_frame(rows: &[IntervalRow]) -> anyhow::Result<DataFrame> {
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
    .map_err(|e| anyhow::anyhow!("building the interval table: {e}"))
}

/// Print the files written, relative to the working directory.
pub fn print_written(files: &[PathBuf]) {
    for f in files {
        println!("  wrote {}", f.display());
    }
}

/// Make paths relative to `base` where possible.
pub fn relative_to(files: Vec<PathBuf>, base: &Path) -> Vec<PathBuf> {
    files
        .into_iter()
        .map(|p| p.strip_prefix(base).map(Path::to_path_buf).unwrap_or(p))
        .collect()
}
