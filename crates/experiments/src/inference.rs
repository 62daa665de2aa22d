//! Encrypted inference as experiments: the runs of each profile, one
//! standard run (seeded keys, the SPEC parameters of the model, precision
//! per layer in per-image mode), the summary table, the stage-time figure
//! and P1's CryptoNets time ratio.

use super::{Profile, StudyError};
use crate::harness::{InferenceOutcome, InferenceRequest, InferenceSummary, ModelSource, run};
use slaf_ckks::KeySeed;
use slaf_he_nn::{Mode, StageTimes};
use slaf_nn::{Arch, Variant, WeightsFile};
use slaf_report::polars::prelude::{Column, DataFrame};
use slaf_report::{Figure, StackedBarChart};

/// The encrypted-inference runs of a profile: `(arch, variant, mode, images)`.
pub fn inference_plan(profile: Profile) -> Vec<(Arch, Variant, Mode, usize)> {
    use Arch::*;
    use Mode::*;
    use Variant::*;
    match profile {
        Profile::Tiny => vec![(Cnn1, X2, PerImage, 2), (Cnn1, X2, Batched, 16)],
        Profile::Quick => vec![
            (Cnn1, X2, Batched, 1000),
            (Cnn1, Slaf, Batched, 1000),
            (Cnn1, X2, PerImage, 10),
            (Cnn2, Slaf, PerImage, 3),
            (Cryptonets, X2, PerImage, 3),
        ],
        Profile::Full => {
            let models = [(Cnn1, X2), (Cnn1, Slaf), (Cnn2, Slaf), (Cryptonets, X2)];
            let mut v: Vec<_> = models
                .iter()
                .map(|&(a, x)| (a, x, Batched, 10_000))
                .collect();
            v.extend(models.iter().map(|&(a, x)| (a, x, PerImage, 100)));
            v
        }
    }
}

/// One standard encrypted run of `w` on the first `images` test images:
/// keys seeded from the data seed (reproducible; such keys are for tests
/// only), the SPEC parameters of the model, and, per image, the precision
/// after every layer of the first image.
pub fn he_run(
    w: &WeightsFile,
    mode: Mode,
    images: usize,
    quiet: bool,
) -> Result<InferenceOutcome, StudyError> {
    let mut req = InferenceRequest::new(ModelSource::Weights(Box::new(w.clone())));
    req.images = Some(images);
    req.mode = mode;
    req.seed = Some(KeySeed::for_tests(slaf_nn::data::DEFAULT_SEED));
    req.precision = mode == Mode::PerImage;
    req.quiet = quiet;
    Ok(run(&req)?)
}

/// `markdown` with every ATX heading `levels` deeper (at most `######`), so
/// that a summary shown in a notebook sits below the notebook's sections.
pub fn demote_headings(markdown: &str, levels: usize) -> String {
    markdown
        .lines()
        .map(|l| {
            let hashes = l.chars().take_while(|&c| c == '#').count();
            if hashes > 0 && l[hashes..].starts_with(' ') {
                format!("{}{}", "#".repeat((hashes + levels).min(6)), &l[hashes..])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The multiplicative depth of each model's circuit and its breakdown, one
/// line per model (the planner's rules, which both engines follow).
pub fn depth_lines(runs: &[&WeightsFile]) -> Result<String, StudyError> {
    let mut s = String::new();
    for w in runs {
        let plan = slaf_he_nn::plan::CircuitPlan::from_weights(w)?;
        s.push_str(&format!(
            "{}-{}: depth {} ({})\n",
            w.config.model.name,
            w.config.variant.name(),
            plan.depth,
            plan.breakdown()
        ));
    }
    Ok(s)
}

/// The main columns of [`inference_table`] (what a notebook shows).
pub fn inference_table_main(summaries: &[InferenceSummary]) -> Result<DataFrame, StudyError> {
    inference_table(summaries)?
        .select([
            "model",
            "act",
            "mode",
            "images",
            "plain_accuracy_pct",
            "he_accuracy_pct",
            "agreement_pct",
            "max_logit_error",
            "ms_per_image",
            "params",
        ])
        .map_err(|e| super::p2::table_err("selecting the main inference columns", e))
}

/// [`he_run`] for a notebook: the summary shown inline (markdown), and returned.
pub fn he_run_shown(
    w: &WeightsFile,
    mode: Mode,
    images: usize,
) -> Result<InferenceSummary, StudyError> {
    let out = he_run(w, mode, images, true)?;
    let md = crate::harness::summary_markdown(&out.summary);
    slaf_report::show_markdown(&demote_headings(&md, 3));
    Ok(out.summary)
}

/// P1's "faster than CryptoNets" claim, measured through one pipeline:
/// CryptoNets-X2 and CNN2-SLAF in the same inference mode.
#[derive(Clone, Debug, PartialEq)]
pub struct CryptonetsRatio {
    /// The inference mode both runs used.
    pub mode: Mode,
    /// CryptoNets-X2 milliseconds per image.
    pub cryptonets_ms: f64,
    /// CNN2-SLAF milliseconds per image.
    pub slaf_ms: f64,
    /// `cryptonets_ms / slaf_ms`: above 1 means CNN2-SLAF is faster (P1: 6.26).
    pub ratio: f64,
}

impl std::fmt::Display for CryptonetsRatio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.ratio;
        write!(
            f,
            "{} mode: CryptoNets-X2 {:.1} ms/image, CNN2-SLAF {:.1} ms/image: time ratio CryptoNets/CNN2-SLAF = {r:.2} ({}; P1 reports 6.26x faster, against CryptoNets' published time rather than the same pipeline)",
            self.mode.name(),
            self.cryptonets_ms,
            self.slaf_ms,
            if r >= 1.0 {
                format!("CNN2-SLAF {r:.2}x faster")
            } else {
                format!("CNN2-SLAF {:.2}x slower", 1.0 / r)
            }
        )
    }
}

/// Per inference mode present in `summaries` for both CryptoNets-X2 and
/// CNN2-SLAF (the first run of each), their time ratio.
pub fn cryptonets_ratios(summaries: &[InferenceSummary]) -> Vec<CryptonetsRatio> {
    let find = |arch: &str, act: &str, mode: Mode| {
        summaries
            .iter()
            .find(|s| s.model == arch && s.act == act && s.mode == mode)
    };
    [Mode::PerImage, Mode::Batched]
        .into_iter()
        .filter_map(|mode| {
            let c = find("cryptonets", "x2", mode)?;
            let s = find("cnn2", "slaf", mode)?;
            Some(CryptonetsRatio {
                mode,
                cryptonets_ms: 1e3 * c.seconds_per_image,
                slaf_ms: 1e3 * s.seconds_per_image,
                ratio: c.seconds_per_image / s.seconds_per_image,
            })
        })
        .collect()
}

/// The encrypted-inference runs as one table, a row per run: model, act,
/// mode, images, CKKS parameters, plaintext / encrypted accuracy and
/// agreement (%), max logit error, ms per image, wall seconds, peak RSS
/// (MiB) and the time per image of each stage (`<stage>_ms`).
pub fn inference_table(summaries: &[InferenceSummary]) -> Result<DataFrame, StudyError> {
    let col_s =
        |f: &dyn Fn(&InferenceSummary) -> String| summaries.iter().map(f).collect::<Vec<_>>();
    let col_f = |f: &dyn Fn(&InferenceSummary) -> f64| summaries.iter().map(f).collect::<Vec<_>>();
    let mut cols = vec![
        Column::new("model".into(), col_s(&|s| s.model.clone())),
        Column::new("act".into(), col_s(&|s| s.act.clone())),
        Column::new("mode".into(), col_s(&|s| s.mode.name().to_string())),
        Column::new(
            "images".into(),
            summaries
                .iter()
                .map(|s| s.images as u32)
                .collect::<Vec<_>>(),
        ),
        Column::new("params".into(), col_s(&|s| s.params.description.clone())),
        Column::new(
            "plain_accuracy_pct".into(),
            col_f(&|s| 100.0 * s.plain_accuracy),
        ),
        Column::new("he_accuracy_pct".into(), col_f(&|s| 100.0 * s.he_accuracy)),
        Column::new("agreement_pct".into(), col_f(&|s| 100.0 * s.agreement)),
        Column::new("max_logit_error".into(), col_f(&|s| s.max_logit_error)),
        Column::new("ms_per_image".into(), col_f(&|s| 1e3 * s.seconds_per_image)),
        Column::new("wall_seconds".into(), col_f(&|s| s.wall_seconds)),
        Column::new(
            "peak_rss_mib".into(),
            summaries
                .iter()
                .map(|s| s.peak_rss_bytes.map(|b| b as f64 / 1048576.0))
                .collect::<Vec<_>>(),
        ),
    ];
    // One column per stage name of the longest chain (a shorter model has
    // no value there).
    let longest = summaries
        .iter()
        .max_by_key(|s| s.stages_ms.stages.len())
        .map(|s| s.stages_ms.names())
        .unwrap_or_else(|| StageTimes::zeros(5).names());
    for name in longest {
        let v: Vec<Option<f64>> = summaries.iter().map(|s| s.stages_ms.get(&name)).collect();
        cols.push(Column::new(format!("{name}_ms").into(), v));
    }
    DataFrame::new_infer_height(cols)
        .map_err(|e| super::p2::table_err("building the inference table", e))
}

/// Time per image and stage of encrypted-inference runs (batched runs:
/// amortised over the images of a ciphertext): one stacked bar per model ×
/// activation, one colour per stage, one panel per mode (per-image times
/// are about 100 × the batched ones, so each mode gets its own linear axis).
pub fn stage_times_figure(summaries: &[InferenceSummary]) -> Figure {
    // Stage names of the longest chain, in pipeline order.
    let names = summaries
        .iter()
        .max_by_key(|s| s.stages_ms.stages.len())
        .map(|s| s.stages_ms.names())
        .unwrap_or_default();
    let panel = |mode: Mode| {
        let bars: Vec<(String, Vec<f64>)> = summaries
            .iter()
            .filter(|s| s.mode == mode)
            .map(|s| {
                let v = names.iter().map(|n| s.stages_ms.get(n).unwrap_or(0.0));
                (format!("{}-{}", s.model, s.act), v.collect())
            })
            .collect();
        (!bars.is_empty()).then(|| {
            Figure::from(StackedBarChart {
                title: format!("{} mode", mode.name()),
                x_label: "milliseconds per image".into(),
                segments: names.clone(),
                bars,
            })
        })
    };
    Figure::Grid {
        title: "Encrypted inference: time per image and stage".into(),
        panels: [Mode::PerImage, Mode::Batched]
            .into_iter()
            .filter_map(panel)
            .collect(),
        cols: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_move_down_and_other_lines_stay() {
        let md = "# Title\n\n## Part\n#hashtag\n| a | b |\n###### deep";
        assert_eq!(
            demote_headings(md, 3),
            "#### Title\n\n##### Part\n#hashtag\n| a | b |\n###### deep"
        );
    }
}
