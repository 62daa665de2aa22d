//! Per-image encrypted-inference latency on MNIST test images.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release --example per_image_latency -- \
//!     results/training/cnn2-slaf.json.gz 10 [--params cnn1-x2|slaf|slaf-p] \
//!     [--full-chain] [--pk] [--offset K] [--precision]
//! ```
//! Default parameters: the SPEC §5 preset of the model (CNN1-X2: `cnn1-x2`,
//! N = 8192; every other model: `slaf`, N = 16384). Prints the engine's
//! layout, per-image stage times, their means, the max logit error against
//! the plaintext inference form, agreement of the argmax, and a markdown
//! table row.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use std::path::PathBuf;
use std::time::Instant;

use slaf_he::ckks::{CkksParameters, presets};
use slaf_he::he_nn::StageTimes;
use slaf_he::he_nn::per_image::{PerImageEngine, PerImageOptions};
use slaf_he::nn::{ChainForm, WeightsFile};

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |x| x.0)
}

fn main() -> anyhow::Result<()> {
    slaf_he::machine::tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pos = Vec::new();
    let mut params_name: Option<String> = None;
    let mut opts = PerImageOptions::default();
    let mut offset = 0usize;
    let mut precision = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--params" => params_name = it.next().cloned(),
            "--full-chain" => opts.full_chain = true,
            "--pk" => opts.public_key_encryption = true,
            "--precision" => precision = true,
            "--offset" => offset = it.next().map(|s| s.parse()).transpose()?.unwrap_or(0),
            _ => pos.push(a.clone()),
        }
    }
    let path = PathBuf::from(
        pos.first()
            .ok_or_else(|| anyhow::anyhow!("usage: per_image_latency WEIGHTS [N] [options]"))?,
    );
    let count: usize = pos.get(1).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let wf = WeightsFile::load(&path)?;
    let model: ChainForm = wf.inference.chain_form()?;
    let name = path
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .trim_end_matches(".json.gz")
        .to_string();
    let params: CkksParameters = match params_name.as_deref() {
        Some("cnn1-x2") => presets::cnn1_x2(),
        Some("slaf") => presets::slaf(),
        Some("slaf-p") => presets::slaf_p(),
        Some(other) => anyhow::bail!("unknown --params {other}"),
        None if name == "cnn1-x2" => presets::cnn1_x2(),
        None => presets::slaf(),
    };
    let threads = rayon::current_num_threads();
    let t = Instant::now();
    let engine = PerImageEngine::with_options(&model, params, None, opts)?;
    println!(
        "model {name}, {threads} rayon thread(s), setup {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    println!("{}", engine.describe());
    println!(
        "keys {:.1} MiB, input ciphertext {:.1} KiB",
        engine.key_bytes() as f64 / 1048576.0,
        engine.ciphertext_bytes() as f64 / 1024.0
    );
    let data = slaf_he::data::Mnist::load_default()?;
    let mut sum = StageTimes::default();
    let mut max_err = 0.0f64;
    let mut agree = 0;
    let mut correct = 0;
    let mut totals = Vec::new();
    for i in offset..offset + count {
        let img: Vec<f32> = data
            .test
            .image(i)
            .ok_or_else(|| anyhow::anyhow!("no test image {i}"))?
            .to_vec();
        let x: Vec<f64> = img.iter().map(|&v| f64::from(v)).collect();
        let want = wf.inference.forward(&x)?;
        let (got, times) = if precision && i == offset {
            let (g, t, p) = engine.infer_with_precision(&img)?;
            for l in &p {
                println!(
                    "  precision {:5} level {:2}: max err {:.2e} ({:.1} bits), mean {:.1} bits",
                    l.stage, l.level, l.max_abs_error, l.max_bits, l.mean_bits
                );
            }
            (g, t)
        } else {
            engine.infer(&img)?
        };
        let e = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        max_err = max_err.max(e);
        agree += usize::from(argmax(&got) == argmax(&want));
        correct += usize::from(argmax(&got) == usize::from(data.test.labels[i]));
        println!(
            "image {i}: {:.1} ms ({}), logit error {e:.2e}",
            times.total(),
            stage_list(&times)
        );
        totals.push(times.total());
        sum.add(&times);
    }
    let m = sum.scaled(1.0 / count.max(1) as f64);
    totals.sort_by(f64::total_cmp);
    let median = totals.get(totals.len() / 2).copied().unwrap_or(0.0);
    println!(
        "mean {:.1} ms/image (median {median:.1}); stages: {}; max logit error {max_err:.2e}; agreement {agree}/{count}; correct {correct}/{count}",
        m.total(),
        stage_list(&m)
    );
    let cells: Vec<String> = m.values().iter().map(|v| format!("{v:.1}")).collect();
    println!(
        "| {name} | {} | {threads} | {count} | {:.1} | {median:.1} | {} | {max_err:.1e} | {agree}/{count} |",
        engine.params().describe().split(',').next().unwrap_or(""),
        m.total(),
        cells.join(" | ")
    );
    Ok(())
}

/// `encrypt 1.0 conv 2.0 …` in pipeline order.
fn stage_list(t: &StageTimes) -> String {
    t.names()
        .iter()
        .zip(t.values())
        .map(|(n, v)| format!("{n} {v:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}
