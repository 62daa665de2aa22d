//! How CKKS bootstrapping scales with the ring (issue #41, work in
//! progress): time, precision, levels left and key sizes, written to
//! `results/bootstrap/scaling.md` with the machine it ran on.
//! `cargo test --release --test bootstrap_scaling -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use rand::{Rng, SeedableRng};
use rand_chacha::{ChaCha8Rng, ChaCha20Rng};
use slaf_he::ckks::{
    CkksContext, CkksParameters, CkksParametersLiteral, Encoder, Encryptor, EvaluationKeys,
    Evaluator, KeyGenerator, decrypt,
};

/// How bootstrapping scales with the ring (insecure test chains, dense
/// secret, full slots, DFTs in 3 levels each): time, precision, keys.
#[test]
#[ignore = "measurement (minutes): bootstrapping from N = 2^11 to 2^13"]
fn bootstrapping_cost_by_ring() {
    use slaf_he::ckks::bootstrap::{BootstrapConfig, Bootstrapper};
    // |I| grows with sqrt(N) for a dense secret: K = 64 holds to 2^12
    // (2^13 with K = 64 measured -76 bits: EvalMod out of its range).
    let mut rows = Vec::new();
    // The last row: hybrid key switching (4 digits, 5 special primes).
    for (log_n, k, r, special, dnum) in [
        (11u32, 64.0, 6u32, 1usize, None),
        (12, 64.0, 6, 1, None),
        (13, 128.0, 7, 1, None),
        (12, 64.0, 6, 5, Some(4usize)),
    ] {
        let config = BootstrapConfig {
            k,
            degree: 63,
            double_angles: r,
            dft_levels: 3,
            arcsine: false,
        };
        let mut bits = vec![60];
        bits.extend(std::iter::repeat_n(60, 6 + 6 + r as usize + 1));
        bits.extend(std::iter::repeat_n(60, special));
        let ctx = CkksContext::new(
            CkksParameters::new(CkksParametersLiteral {
                log_n,
                coeff_mod_bit_sizes: bits,
                scale_bits: 55,
                allow_insecure: true,
                special_primes: special,
                dnum,
            })
            .unwrap(),
        )
        .unwrap();
        let boot = Bootstrapper::new(&ctx, config).unwrap();
        let mut kg = KeyGenerator::new(&ctx, ChaCha20Rng::seed_from_u64(20));
        let pk = kg.public_key();
        let rk = kg.relinearization_key();
        let t = std::time::Instant::now();
        let gk = kg.galois_keys(&boot.rotation_steps(), true);
        let keygen = t.elapsed().as_secs_f64();
        let key_bytes = rk.byte_size() + gk.byte_size();
        let ev = Evaluator::with_keys(&ctx, EvaluationKeys::new(Some(rk), Some(gk)));
        let enc = Encoder::new(&ctx);
        let mut encryptor = Encryptor::new(&ctx, pk, ChaCha20Rng::seed_from_u64(21));
        let mut rng = ChaCha8Rng::seed_from_u64(22);
        let xs: Vec<f64> = (0..ctx.params().slots())
            .map(|_| rng.random_range(-1.0..=1.0))
            .collect();
        let ct = encryptor.encrypt(&enc.encode(&xs, 0, 2f64.powi(50)).unwrap());
        let t = std::time::Instant::now();
        let out = boot.bootstrap(&ev, &ct).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let got = enc.decode(&decrypt(&ctx, kg.secret_key(), &out));
        let errs: Vec<f64> = xs.iter().zip(&got).map(|(x, y)| (x - y).abs()).collect();
        let worst = errs.iter().fold(0f64, |a, &b| a.max(b));
        let mean = errs.iter().sum::<f64>() / errs.len() as f64;
        rows.push(format!(
            "| 2^{log_n} | {} | {} | {k} | {} | {} | {:.2} | {:.1} | {:.1} | {:.0} | {keygen:.1} |",
            ctx.params().slots(),
            dnum.map_or("full digits".to_string(), |d| format!(
                "{d} digits, {special} special primes"
            )),
            boot.eval_mod().depth(),
            out.level(),
            secs,
            -worst.log2(),
            -mean.log2(),
            key_bytes as f64 / (1 << 20) as f64,
        ));
        eprintln!("{}", rows.last().unwrap());
    }
    let text = format!(
        "# Bootstrapping by ring size (work in progress, issue #41)\n\n{}.\n\nInsecure test chains (60-bit primes, a dense ternary secret), full slots, inputs uniform in [-1, 1] at Δ = 2^50 under q_0 = 2^60, EvalMod degree 63, DFTs in 3 levels each. K bounds the integer part after ModRaise, which grows with sqrt(N) for a dense secret (K = 64 at N = 2^13 measured -76 bits: out of EvalMod's range). Keys: the relinearisation key and the rotation keys the circuit lists, in memory.\n\n| N | slots | key switching | K | EvalMod depth | levels left | s per bootstrap | min bits | mean bits | keys (MiB) | keygen (s) |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n{}\n\n`cargo test --release --test bootstrap_scaling -- --ignored --nocapture` regenerates this file.\n",
        slaf_he::machine::timing_caption(rayon::current_num_threads()),
        rows.join("\n")
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/bootstrap");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("scaling.md"), text).unwrap();
}
