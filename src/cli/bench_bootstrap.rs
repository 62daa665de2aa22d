//! `slaf-he bench ckks --bootstrap PRESET`: one named bootstrapping set,
//! timed end to end and by phase, with its precision (measured and as the
//! simulator's model predicts it), levels left, key bytes and peak memory.

use slaf_he::ckks::bootstrap::BootstrapPreset;
use slaf_he::ckks::{CkksContext, KeySeed};

/// `--bootstrap`: the named sets of [`BootstrapPreset`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BootstrapArg {
    /// N = 2^16, 32,768 slots, 128-bit, 5 levels left, scale 2^54.
    N16,
    /// N = 2^16, 128-bit, the arcsine correction, 2 levels left, scale 2^56.
    N16Precise,
    /// N = 2^15, a sparse packing of 1,024 slots, 128-bit, 2 levels left, scale 2^44.
    N15Sparse,
    /// N = 2^12, 2,048 slots, INSECURE (needs --insecure-params): quick runs.
    N12Toy,
}

impl BootstrapArg {
    fn preset(self) -> BootstrapPreset {
        match self {
            Self::N16 => BootstrapPreset::N16,
            Self::N16Precise => BootstrapPreset::N16Precise,
            Self::N15Sparse => BootstrapPreset::N15Sparse,
            Self::N12Toy => BootstrapPreset::N12Toy,
        }
    }
}

/// One bootstrap benchmark's results.
#[derive(Debug)]
pub struct BootstrapRow {
    preset: &'static str,
    n: usize,
    slots: usize,
    threads: usize,
    secure: bool,
    keygen_s: f64,
    key_mib: f64,
    rotation_keys: usize,
    /// Median seconds per bootstrap over the repetitions.
    bootstrap_s: f64,
    /// The median run's phases.
    mod_raise_s: f64,
    coeffs_to_slots_s: f64,
    eval_mod_s: f64,
    slots_to_coeffs_s: f64,
    levels_left: usize,
    /// −log2 of the largest slot error.
    min_bits: f64,
    /// −log2 of the mean slot error.
    mean_bits: f64,
    /// −log2 of the model's predicted largest error.
    predicted_bits: f64,
    peak_rss_mib: Option<f64>,
}

/// Generate the keys, bootstrap `reps` times a ciphertext of uniform
/// values in [-1, 1] at level 0, and measure.
pub fn run(
    arg: BootstrapArg,
    user_levels: Option<usize>,
    insecure: bool,
    reps: usize,
    threads: usize,
) -> anyhow::Result<BootstrapRow> {
    let preset = arg.preset();
    let levels = user_levels.unwrap_or(preset.user_levels());
    let params = preset.params_with_levels(levels, insecure).map_err(|e| {
        anyhow::anyhow!("bootstrapping set {preset}: {e} (--insecure-params allows the toy set)")
    })?;
    let secure = !params.is_insecure();
    slaf_he::experiments::harness::reset_peak_rss();
    let ctx = CkksContext::new(params)?;
    let boot = preset.bootstrapper(&ctx)?;
    let delta = ctx.params().default_scale();
    let run = slaf_he::experiments::bootstrap::measure(
        &ctx,
        &boot,
        Some(BootstrapPreset::HAMMING_WEIGHT),
        delta,
        reps,
        &KeySeed::from_os_rng(),
    )?;
    Ok(BootstrapRow {
        preset: preset.name(),
        n: ctx.params().n(),
        slots: boot.slots(),
        threads,
        secure,
        keygen_s: run.keygen_s,
        key_mib: run.key_bytes as f64 / f64::from(1u32 << 20),
        rotation_keys: run.rotation_keys,
        bootstrap_s: run.bootstrap_s,
        mod_raise_s: run.times.mod_raise,
        coeffs_to_slots_s: run.times.coeffs_to_slots,
        eval_mod_s: run.times.eval_mod,
        slots_to_coeffs_s: run.times.slots_to_coeffs,
        levels_left: run.level,
        min_bits: run.min_bits,
        mean_bits: run.mean_bits,
        predicted_bits: run.predicted_bits,
        peak_rss_mib: slaf_he::experiments::harness::peak_rss_bytes()
            .map(|b| b as f64 / f64::from(1u32 << 20)),
    })
}

impl BootstrapRow {
    /// Whether the set is 128-bit secure.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The row as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "preset": self.preset, "n": self.n, "slots": self.slots,
            "threads": self.threads, "secure": self.secure,
            "keygen_s": self.keygen_s, "key_mib": self.key_mib,
            "rotation_keys": self.rotation_keys, "bootstrap_s": self.bootstrap_s,
            "mod_raise_s": self.mod_raise_s, "coeffs_to_slots_s": self.coeffs_to_slots_s,
            "eval_mod_s": self.eval_mod_s, "slots_to_coeffs_s": self.slots_to_coeffs_s,
            "levels_left": self.levels_left, "min_bits": self.min_bits,
            "mean_bits": self.mean_bits, "predicted_bits": self.predicted_bits,
            "peak_rss_mib": self.peak_rss_mib,
        })
    }
}

/// The rows as a markdown table (header included).
pub fn markdown(rows: &[BootstrapRow]) -> String {
    let mut s = String::from(
        "| set | N | slots | threads | 128-bit | s per bootstrap | ModRaise | CoeffsToSlots | EvalMod | SlotsToCoeffs | levels left | min bits | mean bits | predicted min bits | keys (MiB) | rotation keys | keygen (s) | peak RSS (MiB) |\n|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | 2^{} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {:.1} | {} |\n",
            r.preset,
            r.n.trailing_zeros(),
            r.slots,
            r.threads,
            if r.secure { "yes" } else { "no (test set)" },
            r.bootstrap_s,
            r.mod_raise_s,
            r.coeffs_to_slots_s,
            r.eval_mod_s,
            r.slots_to_coeffs_s,
            r.levels_left,
            r.min_bits,
            r.mean_bits,
            r.predicted_bits,
            r.key_mib,
            r.rotation_keys,
            r.keygen_s,
            r.peak_rss_mib.map_or("n/a".into(), |m| format!("{m:.0}")),
        ));
    }
    s
}
