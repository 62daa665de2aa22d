//! How CKKS bootstrapping scales with the ring (issue #41): time,
//! precision (measured and as the simulator's model predicts it), levels
//! left and key sizes, for a dense secret, for the sparse-secret
//! encapsulation, and for the named sets; written to
//! `results/bootstrap/scaling.md` with the machine it ran on.
//! `cargo test --release --test bootstrap_scaling -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use rand::{Rng, SeedableRng};
use rand_chacha::{ChaCha8Rng, ChaCha20Rng};
use slaf_he::ckks::bootstrap::{BootstrapConfig, BootstrapPreset, Bootstrapper};
use slaf_he::ckks::{
    CkksContext, CkksParameters, CkksParametersLiteral, Encoder, Encryptor, Evaluator,
    KeyGenerator, KeySeed, decrypt,
};
use std::sync::Arc;

/// One measured configuration.
struct Case {
    name: String,
    ctx: Arc<CkksContext>,
    config: BootstrapConfig,
    /// The ephemeral secret's Hamming weight (None: the dense secret).
    encapsulation: Option<usize>,
    delta: f64,
    /// Slots bootstrapped (N/2 or a sparse packing's).
    slots: Option<usize>,
}

/// An insecure test chain: q_0, `user` primes, the bootstrap's, specials.
fn test_chain(log_n: u32, r: u32, special: usize, dnum: Option<usize>) -> Arc<CkksContext> {
    let mut bits = vec![60];
    bits.extend(std::iter::repeat_n(60, 6 + 6 + r as usize + 1));
    bits.extend(std::iter::repeat_n(60, special));
    CkksContext::new(
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
    .unwrap()
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    // A dense secret: |I| grows with sqrt(N), so K does (K = 64 at 2^13
    // measured -76 bits: EvalMod out of its range).
    for (log_n, k, r, special, dnum) in [
        (11u32, 64.0, 6u32, 1usize, None),
        (12, 64.0, 6, 1, None),
        (13, 128.0, 7, 1, None),
        (12, 64.0, 6, 5, Some(4usize)),
    ] {
        v.push(Case {
            name: format!(
                "dense secret, {}",
                dnum.map_or("full digits".to_string(), |d| format!(
                    "{d} digits, {special} special"
                ))
            ),
            ctx: test_chain(log_n, r, special, dnum),
            config: BootstrapConfig {
                k,
                degree: 63,
                double_angles: r,
                dft_levels: 3,
                arcsine: false,
            },
            encapsulation: None,
            delta: 2f64.powi(50),
            slots: None,
        });
    }
    // The encapsulation: K = 17 whatever N.
    for log_n in [11u32, 12, 13] {
        v.push(Case {
            name: "encapsulation h = 32, full digits".into(),
            ctx: test_chain(log_n, 2, 1, None),
            config: BootstrapConfig {
                k: 17.0,
                degree: 63,
                double_angles: 2,
                dft_levels: 3,
                arcsine: false,
            },
            encapsulation: Some(32),
            delta: 2f64.powi(50),
            slots: None,
        });
    }
    for preset in BootstrapPreset::ALL {
        let params = preset.params(true).unwrap();
        let delta = params.default_scale();
        v.push(Case {
            name: format!(
                "set `{preset}`{}",
                if params.is_insecure() {
                    " (insecure)"
                } else {
                    " (128-bit)"
                }
            ),
            ctx: CkksContext::new(params).unwrap(),
            config: preset.config(),
            encapsulation: Some(BootstrapPreset::HAMMING_WEIGHT),
            delta,
            slots: Some(preset.slots()),
        });
    }
    v
}

fn measure(case: &Case) -> String {
    let ctx = &case.ctx;
    let slots = case.slots.unwrap_or(ctx.params().slots());
    let boot = Bootstrapper::with_slots(ctx, case.config, slots).unwrap();
    let run = slaf_he::experiments::bootstrap::measure(
        ctx,
        &boot,
        case.encapsulation,
        case.delta,
        1,
        &KeySeed::for_tests(20),
    )
    .unwrap();
    format!(
        "| 2^{} | {} | {} | {} | 2^{:.0} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} |",
        ctx.params().n().trailing_zeros(),
        slots,
        case.name,
        case.config.k,
        case.delta.log2(),
        boot.eval_mod().depth(),
        run.level,
        run.bootstrap_s,
        run.min_bits,
        run.mean_bits,
        run.predicted_bits,
        run.key_bytes as f64 / (1 << 20) as f64,
        run.keygen_s,
    )
}

/// Bootstrapping by ring and secret (insecure test chains of 60-bit
/// primes, full slots, DFTs in 3 levels each) and the named sets.
#[test]
#[ignore = "measurement (about 5 minutes, 8 GiB): bootstrapping from N = 2^11 to 2^16"]
fn bootstrapping_cost_by_ring() {
    let mut rows = Vec::new();
    for case in cases() {
        rows.push(measure(&case));
        eprintln!("{}", rows.last().unwrap());
    }
    let text = format!(
        "# Bootstrapping by ring, secret and set (issue #41)\n\n{}.\n\n\
         Full slots, inputs uniform in [-1, 1] at level 0 and scale Δ, one bootstrap each (seconds: that one run). \
         Test chains (insecure): 60-bit primes, q_0 = 2^60, EvalMod of degree 63, DFTs in 3 levels each. \
         K bounds |t| = |I + x| after ModRaise: a dense secret's |I| grows with sqrt(N) (K = 64 at N = 2^13 measured -76 bits, \
         out of EvalMod's range); with the sparse-secret encapsulation (h = 32) |I| ≤ 16 whatever N, so K = 17. \
         The named sets are described in docs/bootstrapping.md. \
         min bits: −log2 of the largest slot error; mean bits: −log2 of the mean error; predicted: the simulator's model \
         (`BootstrapModel::predicted_error`) for the same values. Keys: relinearisation, rotation and encapsulation keys in memory.\n\n\
         | N | slots | secret and key switching | K | Δ | EvalMod depth | levels left | s per bootstrap | min bits | mean bits | predicted min bits | keys (MiB) | keygen (s) |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n{}\n\n\
         `cargo test --release --test bootstrap_scaling -- --ignored --nocapture` regenerates this file.\n",
        slaf_he::machine::timing_caption(rayon::current_num_threads()),
        rows.join("\n")
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/bootstrap");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("scaling.md"), text).unwrap();
}

/// Ten bootstraps in a chain on a named set (default `n16-precise`; set
/// `SLAF_HE_BOOT_SET` to another set's name): the precision after each,
/// against the simulator running the same chain with the set's model.
/// Written to `results/bootstrap/chain-SET.md`.
/// `cargo test --release --test bootstrap_scaling chain -- --ignored --nocapture`
#[test]
#[ignore = "measurement (about 7 minutes at N = 2^16, 8 GiB)"]
fn ten_bootstraps_in_a_chain() {
    use slaf_he::ckks::circuits::CircuitBackend;
    use slaf_he::ckks::circuits::sim::SimBackend;
    let name = std::env::var("SLAF_HE_BOOT_SET").unwrap_or_else(|_| "n16-precise".into());
    let preset = BootstrapPreset::ALL
        .into_iter()
        .find(|p| p.name() == name)
        .unwrap_or_else(|| panic!("no bootstrapping set {name}"));
    let ctx = CkksContext::new(preset.params(true).unwrap()).unwrap();
    let boot = preset.bootstrapper(&ctx).unwrap();
    let mut kg = KeyGenerator::new(&ctx, ChaCha20Rng::seed_from_u64(90));
    let pk = kg.public_key();
    let keys = boot
        .keygen(&mut kg, &[], BootstrapPreset::HAMMING_WEIGHT)
        .unwrap();
    let model = boot.model(keys.encapsulation().map(|e| e.integer_bound()));
    let ev = Evaluator::with_keys(&ctx, keys);
    let enc = Encoder::new(&ctx);
    let mut encryptor = Encryptor::new(&ctx, pk, ChaCha20Rng::seed_from_u64(91));
    let mut rng = ChaCha8Rng::seed_from_u64(92);
    let short: Vec<f64> = (0..boot.slots())
        .map(|_| rng.random_range(-1.0..=1.0))
        .collect();
    let xs = boot.replicate(&short);
    let delta = ctx.params().default_scale();
    let mut ct = encryptor.encrypt(&enc.encode(&xs, 0, delta).unwrap());
    let sim = SimBackend::for_params(ctx.params(), 0.0, 93);
    let mut sct = sim.encrypt_at(&xs, 0, delta);
    let bits = |got: &[f64]| {
        let worst = xs
            .iter()
            .zip(got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f64, f64::max);
        -worst.log2()
    };
    let mut rows = Vec::new();
    let mut total = 0.0;
    for i in 1..=10 {
        let t = std::time::Instant::now();
        ct = boot.bootstrap(&ev, &ct).unwrap();
        total += t.elapsed().as_secs_f64();
        sct = sim.bootstrap(&sct, &model, delta).unwrap();
        let real = bits(&enc.decode(&decrypt(&ctx, kg.secret_key(), &ct)));
        let simulated = bits(&sct.values);
        rows.push(format!(
            "| {i} | {} | {real:.1} | {simulated:.1} |",
            ct.level()
        ));
        eprintln!("{}", rows.last().unwrap());
        // Back to level 0 for the next one (the user's levels unused).
        ct = ev.mod_down_to(&ct, 0).unwrap();
        sct = sim.mod_down(&sct, 0).unwrap();
    }
    let text = format!(
        "# Ten bootstraps in a chain, set `{}` (issue #41)\n\n{}.\n\n\
         {} slots, inputs uniform in [-1, 1] at scale 2^{}; each output switched down to level 0 and bootstrapped again \
         ({:.1} s per bootstrap on average). min bits: −log2 of the largest slot error against the original values; \
         simulated: the plaintext simulator running the same chain with the set's `BootstrapModel`.\n\n\
         | bootstraps | level | min bits | simulated min bits |\n|---:|---:|---:|---:|\n{}\n\n\
         `cargo test --release --test bootstrap_scaling chain -- --ignored --nocapture` regenerates this file \
         (`SLAF_HE_BOOT_SET=NAME` for another set).\n",
        preset.name(),
        slaf_he::machine::timing_caption(rayon::current_num_threads()),
        boot.slots(),
        preset.scale_bits(),
        total / 10.0,
        rows.join("\n")
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/bootstrap");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("chain-{}.md", preset.name())), text).unwrap();
}
