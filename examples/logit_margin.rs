//! The plaintext logit margin (largest minus second-largest logit) of test
//! images, to explain an encrypted run whose argmax differs from the
//! plaintext one: a flip is expected where the margin is below the run's
//! CKKS logit error.
//!
//! `cargo run --release --example logit_margin -- WEIGHTS INDEX [INDEX ...]`
//! (the test images of the data set the weights file records).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_he::data::open_test_split;
use slaf_he::nn::WeightsFile;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((path, indices)) = args.split_first() else {
        anyhow::bail!("usage: logit_margin WEIGHTS INDEX [INDEX ...]");
    };
    let w = WeightsFile::load(std::path::Path::new(path))?;
    let test = open_test_split(w.config.dataset, None)?;
    for s in indices {
        let i: usize = s.parse()?;
        let img = test
            .image(i)
            .ok_or_else(|| anyhow::anyhow!("no test image {i} (of {})", test.len()))?;
        let x: Vec<f64> = img.iter().map(|&v| f64::from(v)).collect();
        let l = w.inference.forward(&x)?;
        let mut idx: Vec<usize> = (0..l.len()).collect();
        idx.sort_by(|&a, &b| l[b].total_cmp(&l[a]));
        let (a, b) = (idx[0], idx[1]);
        println!(
            "image {i} (label {}): top {a} ({:.5}), second {b} ({:.5}), margin {:.2e}",
            test.labels[i],
            l[a],
            l[b],
            l[a] - l[b]
        );
    }
    Ok(())
}
