//! Batched encrypted inference on small (insecure, fast) rings: the fused
//! linear-combination kernel against plaintext, and the engine on trained
//! CNN1 models against the plaintext inference form.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use std::path::PathBuf;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::{ChaCha8Rng, ChaCha20Rng};
use slaf_he::ckks::{
    CkksContext, CkksParameters, CkksParametersLiteral, Encoder, Encryptor, Evaluator,
    KeyGenerator, decrypt,
};
use slaf_he::experiments::harness::{InferenceRequest, ModelSource, load_test_split, run};
use slaf_he::he_nn::Mode;
use slaf_he::he_nn::batched::{BatchedEngine, BatchedOptions};
use slaf_he::he_nn::plan::{CircuitPlan, ParamsChoice};
use slaf_he::nn::WeightsFile;

fn weights(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("results/training")
        .join(format!("{name}.json.gz"))
}

fn small(log_n: u32, bits: Vec<u32>) -> CkksParametersLiteral {
    CkksParametersLiteral {
        log_n,
        coeff_mod_bit_sizes: bits,
        scale_bits: 26,
        allow_insecure: true,
        special_primes: 1,
        dnum: None,
    }
}

#[test]
fn linear_combinations_match_plaintext_on_small_and_large_primes() {
    // 40-bit base prime (Shoup path) and 26-bit primes (lazy 32-bit path).
    let params = CkksParameters::new(small(11, vec![40, 26, 26, 40])).unwrap();
    let ctx: Arc<CkksContext> = CkksContext::new(params).unwrap();
    let mut kg = KeyGenerator::new(&ctx, ChaCha20Rng::seed_from_u64(1));
    let pk = kg.public_key();
    let rk = kg.relinearization_key();
    let enc = Encoder::new(&ctx);
    let ev = Evaluator::new(&ctx);
    let mut encryptor = Encryptor::new(&ctx, pk, ChaCha20Rng::seed_from_u64(2));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let slots = ctx.params().slots();
    // Inputs at 2^34 (public-key encryption noise is ~2^13 in a slot at N = 2^11).
    let scale = 2f64.powi(34);
    let top = ctx.params().max_level();
    let xs: Vec<Vec<f64>> = (0..40)
        .map(|_| (0..slots).map(|_| rng.random_range(-1.0..1.0)).collect())
        .collect();
    let cts: Vec<_> = xs
        .iter()
        .map(|x| encryptor.encrypt(&enc.encode(x, top, scale).unwrap()))
        .collect();
    let refs: Vec<_> = cts.iter().collect();
    let q = ctx.params().q()[top] as f64;

    // One combination, then rescale: exact scale.
    let w: Vec<f64> = (0..40).map(|_| rng.random_range(-3.0..3.0)).collect();
    let c = q / 256.0;
    let lc = ev.linear_combination(&refs, &w, c).unwrap();
    assert_eq!(lc.scale(), scale * c);
    let lc = ev.rescale(&lc).unwrap();
    let got = enc.decode(&decrypt(&ctx, kg.secret_key(), &lc));
    let err = (0..slots)
        .map(|s| {
            let want: f64 = (0..40).map(|j| w[j] * xs[j][s]).sum();
            (got[s] - want).abs()
        })
        .fold(0.0f64, f64::max);
    assert!(err < 1e-3, "linear combination error {err}");

    // Several sparse rows, accumulated in two calls, on 3-part (unrelinearised) inputs.
    let sq: Vec<_> = cts[..8].iter().map(|c| ev.mul(c, c).unwrap()).collect();
    let sq_refs: Vec<_> = sq.iter().collect();
    let rows: Vec<Vec<(usize, f64)>> = (0..5)
        .map(|i| {
            (0..8)
                .filter(|j| (i + j) % 3 != 0)
                .map(|j| (j, 0.25 * (i as f64 - j as f64)))
                .collect()
        })
        .collect();
    let c = 256.0;
    let mut accs: Vec<_> = (0..5)
        .map(|_| ev.zero_ciphertext(top, 3, sq[0].scale() * c))
        .collect();
    ev.linear_combinations_into(&sq_refs, &rows, c, &mut accs)
        .unwrap();
    ev.linear_combinations_into(&sq_refs, &rows, c, &mut accs)
        .unwrap();
    for (i, acc) in accs.iter().enumerate() {
        assert_eq!(acc.part_count(), 3);
        let r = ev.rescale(&ev.relinearize(acc, &rk).unwrap()).unwrap();
        let got = enc.decode(&decrypt(&ctx, kg.secret_key(), &r));
        for s in (0..slots).step_by(97) {
            let want: f64 = 2.0
                * rows[i]
                    .iter()
                    .map(|&(j, w)| w * xs[j][s] * xs[j][s])
                    .sum::<f64>();
            let got = got[s];
            assert!(
                (got - want).abs() < 1e-3,
                "row {i} slot {s}: {got} vs {want}"
            );
        }
    }

    // Mismatched inputs are typed errors.
    let low = ev.mod_down_to(&cts[0], top - 1).unwrap();
    assert!(
        ev.linear_combination(&[&cts[1], &low], &[1.0, 1.0], q)
            .is_err()
    );
    assert!(ev.linear_combination(&refs[..2], &[1.0], q).is_err());
}

#[test]
fn batched_engine_matches_plaintext_on_cnn1_slaf() {
    let w = WeightsFile::load(&weights("cnn1-slaf")).unwrap();
    let plan = CircuitPlan::from_weights(&w).unwrap();
    assert_eq!(plan.depth, 7);
    let params = CkksParameters::new(small(12, vec![40, 26, 26, 26, 26, 26, 26, 26, 40])).unwrap();
    let engine = BatchedEngine::new(
        &w.inference.chain_form().unwrap(),
        plan,
        params,
        BatchedOptions {
            seed: Some(slaf_he::ckks::KeySeed::for_tests(7)),
            precision: true,
            chunk: 100,
        },
    )
    .unwrap();
    assert_eq!(engine.batch_size(), 2048);
    let split = load_test_split(&slaf_he::data::default_data_dir()).unwrap();
    let imgs: Vec<Vec<f32>> = (0..16).map(|i| split.images.row(i).to_vec()).collect();
    let refs: Vec<&[f32]> = imgs.iter().map(|v| v.as_slice()).collect();
    let out = engine.infer_batch(&refs, None).unwrap();
    assert_eq!(out.logits.len(), 16);
    let mut max_err = 0.0f64;
    for (im, he) in imgs.iter().zip(&out.logits) {
        let x: Vec<f64> = im.iter().map(|&v| f64::from(v)).collect();
        let plain = w.inference.forward(&x).unwrap();
        for (a, b) in plain.iter().zip(he) {
            max_err = max_err.max((a - b).abs());
        }
        let am = |v: &[f64]| (0..10).fold(0, |b, i| if v[i] > v[b] { i } else { b });
        assert_eq!(am(&plain), am(he));
    }
    let prec = out.precision.expect("precision option");
    for p in &prec {
        eprintln!("{p:?}");
    }
    assert!(max_err < 1e-2, "max logit error {max_err}");
    assert_eq!(prec.len(), 5);
    assert!(prec.iter().all(|p| p.bits > 6.0), "{prec:?}");
    assert!(out.times.total() > 0.0);
}

#[test]
fn run_driver_on_cnn1_x2_small_ring_agrees_with_plaintext() {
    let mut req = InferenceRequest::new(ModelSource::Path(weights("cnn1-x2")));
    req.images = Some(16);
    req.offset = 100;
    req.params = Some(ParamsChoice::parse("custom:12:36,26x6,36:26", true).unwrap());
    req.seed = Some(slaf_he::ckks::KeySeed::for_tests(3));
    req.threads = Some(2);
    let out = run(&req).unwrap();
    let s = &out.summary;
    assert_eq!(s.mode, Mode::Batched);
    assert_eq!((s.model.as_str(), s.act.as_str()), ("cnn1", "x2"));
    assert_eq!(s.images, 16);
    assert_eq!(s.agreement, 1.0);
    assert!(s.max_logit_error < 1e-2, "{}", s.max_logit_error);
    assert_eq!(s.params.depth, 5);
    assert!(s.params.insecure);
    assert_eq!(out.rows.len(), 16);
    assert_eq!(out.rows[0].index, 100);
    let dir = tempfile::tempdir().unwrap();
    let files = slaf_he::experiments::harness::write_outputs(&out, dir.path()).unwrap();
    assert_eq!(files.len(), 3);
    let csv = std::fs::read_to_string(dir.path().join("images.csv")).unwrap();
    assert!(csv.starts_with("index,label,plain_pred,he_pred,max_logit_err\n"));
    assert_eq!(csv.lines().count(), 17);
    // A seeded run says so in every output.
    assert_eq!(s.keys, slaf_he::experiments::harness::KEYS_SEEDED);
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(md.contains("seeded keys: for tests only"), "{md}");

    // The shared summaries of `reproduce` and the notebooks.
    let table = slaf_he::experiments::inference_table(std::slice::from_ref(s)).unwrap();
    assert_eq!(table.height(), 1);
    assert_eq!(
        table.width(),
        12 + slaf_he::he_nn::StageTimes::zeros(5).names().len()
    );
    let picked = table
        .select(["model", "act", "mode", "he_accuracy_pct", "ms_per_image"])
        .unwrap();
    assert_eq!(picked.width(), 5);
    let svg = slaf_he::experiments::stage_times_figure(std::slice::from_ref(s))
        .to_svg()
        .unwrap();
    // One bar per run in a panel per mode, one legend entry per stage.
    assert!(svg.contains("cnn1-x2"), "stage bars are labelled by run");
    assert!(svg.contains("batched mode"), "one panel per mode");
    for stage in ["encrypt", "conv", "act1", "fc1", "act2", "fc2", "decrypt"] {
        assert!(svg.contains(stage), "legend entry {stage}");
    }
    // P1's CryptoNets ratio needs both runs in the same mode.
    assert!(slaf_he::experiments::cryptonets_ratios(std::slice::from_ref(s)).is_empty());
    let mut c = s.clone();
    (c.model, c.act, c.seconds_per_image) = ("cryptonets".into(), "x2".into(), 0.3);
    let mut v = s.clone();
    (v.model, v.act, v.seconds_per_image) = ("cnn2".into(), "slaf".into(), 0.1);
    let r = slaf_he::experiments::cryptonets_ratios(&[v, c]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].mode, Mode::Batched);
    assert!((r[0].ratio - 3.0).abs() < 1e-12);
    assert!(
        r[0].to_string().contains("CNN2-SLAF 3.00x faster"),
        "{}",
        r[0]
    );
}

/// Throughput of the fused kernel on 128 random ciphertexts x 100 rows at
/// N = 2^14 (run with `--ignored --nocapture`); the result is checked
/// against the plaintext combination, so the timing is of a right answer.
#[test]
#[ignore]
fn linear_combination_throughput() {
    let params = CkksParameters::new(small(14, vec![27, 26, 26, 26, 26, 27])).unwrap();
    let ctx = CkksContext::new(params).unwrap();
    let kg = KeyGenerator::from_seed(&ctx, &slaf_he::ckks::KeySeed::for_tests(1));
    let ev = Evaluator::new(&ctx);
    let enc = Encoder::new(&ctx);
    let lvl = ctx.params().max_level();
    let scale = 2f64.powi(26);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut enc_rng = ChaCha20Rng::seed_from_u64(2);
    let values: Vec<Vec<f64>> = (0..128)
        .map(|_| (0..64).map(|_| rng.random_range(-1.0..1.0)).collect())
        .collect();
    let xs: Vec<_> = values
        .iter()
        .map(|v| {
            let pt = enc.encode(v, lvl, scale).unwrap();
            slaf_he::ckks::encrypt_symmetric(&ctx, kg.secret_key(), &pt, &mut enc_rng)
        })
        .collect();
    let refs: Vec<_> = xs.iter().collect();
    let rows: Vec<Vec<(usize, f64)>> = (0..100)
        .map(|_| (0..128).map(|j| (j, rng.random_range(-1.0..1.0))).collect())
        .collect();
    let c = 2f64.powi(20);
    let mut accs: Vec<_> = (0..100)
        .map(|_| ev.zero_ciphertext(lvl, 2, scale * c))
        .collect();
    let t = std::time::Instant::now();
    ev.linear_combinations_into(&refs, &rows, c, &mut accs)
        .unwrap();
    let s = t.elapsed().as_secs_f64();
    let macs = 100.0 * 128.0 * 2.0 * (lvl + 1) as f64 * 16384.0;
    eprintln!("{:.2} s, {:.2} G lane-MAC/s", s, macs / s / 1e9);
    let got = enc.decode(&decrypt(&ctx, kg.secret_key(), &accs[7]));
    for (slot, g) in got.iter().take(64).enumerate() {
        let want: f64 = rows[7]
            .iter()
            .map(|&(j, w)| (w * c).round() / c * values[j][slot])
            .sum();
        assert!((g - want).abs() < 1e-3, "slot {slot}: {g} vs {want}");
    }
}

/// The cheap activation shapes of the planner (`a0 + a2·x²`, depth 1, and
/// `a0 + a1·x`, depth 0) run in the batched engine with their constants
/// folded into the next layer, and both engines count the same depth.
#[test]
fn square_with_constant_and_affine_activations_fold_in_the_batched_engine() {
    use slaf_he::he_nn::per_image::{circuit_depth, reference_stages};
    use slaf_he::he_nn::plan::ActPlan;
    use slaf_he::nn::{Arch, Dense, InferenceAct, InferenceConv, PaperForm};
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut r =
        |n: usize, b: f64| -> Vec<f64> { (0..n).map(|_| rng.random_range(-b..b)).collect() };
    let g = Arch::Cnn1.conv1();
    let (h, cols) = (Arch::Cnn1.hidden(), g.out_len());
    let model: slaf_he::nn::ChainForm = PaperForm {
        conv: InferenceConv {
            geom: g,
            weight: r(g.out_c * g.patch(), 0.3),
            bias: r(g.out_c, 0.1),
        },
        act1: InferenceAct::Poly {
            coeffs: vec![0.25, 0.0, 0.5],
        },
        dense1: Dense {
            rows: h,
            cols,
            weight: r(h * cols, 1.0 / (cols as f64).sqrt()),
            bias: r(h, 0.1),
        },
        act2: InferenceAct::Poly {
            coeffs: vec![-0.3, 0.8, 0.0],
        },
        fc2: Dense {
            rows: 10,
            cols: h,
            weight: r(10 * h, 1.0 / (h as f64).sqrt()),
            bias: r(10, 0.1),
        },
    }
    .into();
    let plan = CircuitPlan::new(&model, Some(vec![4.0, 8.0])).unwrap();
    assert!(matches!(plan.acts[0], ActPlan::Square { a0, a2 } if a0 == 0.25 && a2 == 0.5));
    assert!(matches!(plan.acts[1], ActPlan::Affine { a0, a1 } if a0 == -0.3 && a1 == 0.8));
    assert_eq!(plan.depth, 4, "{}", plan.breakdown());
    assert_eq!(circuit_depth(&model).unwrap().0, plan.depth);
    let params = CkksParameters::new(small(12, vec![40, 26, 26, 26, 26, 40])).unwrap();
    let engine = BatchedEngine::new(
        &model,
        plan,
        params,
        BatchedOptions {
            seed: Some(slaf_he::ckks::KeySeed::for_tests(12)),
            ..BatchedOptions::default()
        },
    )
    .unwrap();
    let imgs: Vec<Vec<f32>> = (0..8)
        .map(|s| {
            let mut q = ChaCha8Rng::seed_from_u64(100 + s);
            (0..784).map(|_| q.random_range(0.0..1.0f32)).collect()
        })
        .collect();
    let refs: Vec<&[f32]> = imgs.iter().map(Vec::as_slice).collect();
    let out = engine.infer_batch(&refs, None).unwrap();
    for (im, he) in imgs.iter().zip(&out.logits) {
        let x: Vec<f64> = im.iter().map(|&v| f64::from(v)).collect();
        let plain = reference_stages(&model, &x).pop().unwrap();
        let err = plain
            .iter()
            .zip(he)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-2, "logit error {err}: {he:?} vs {plain:?}");
    }
}

/// A cnn4-shaped model (second conv after an average pool, four
/// activation layers) with random weights and a gentle square activation.
fn cnn4_square_model(seed: u64) -> slaf_he::nn::ChainForm {
    use slaf_he::nn::inference::InferenceModel;
    use slaf_he::nn::model::{ActSpec, Model};
    let spec = slaf_he::nn::ModelSpec::preset("cnn4").unwrap();
    let act = ActSpec::Slaf {
        degree: 2,
        init: Some(vec![0.0, 0.0, 0.5]),
    };
    let m = Model::from_spec(&spec, &act, seed, false).unwrap();
    InferenceModel::from_model(&m)
        .unwrap()
        .chain_form()
        .unwrap()
}

/// The first block streams position-major: the inputs held fall to a band
/// of rows, a dense1 row of a local second conv is open only over its
/// window of chunks, and a fully connected dense1 (CNN1) keeps every row
/// open; on the cnn4 layout the engine still agrees with the plaintext.
#[test]
fn the_first_block_streams_inputs_and_accumulators_and_agrees_on_cnn4() {
    use slaf_he::he_nn::batched::BatchedCircuit;
    use slaf_he::he_nn::per_image::reference_stages;
    let model = cnn4_square_model(5);
    let imgs: Vec<Vec<f32>> = (0..6)
        .map(|s| {
            let mut q = ChaCha8Rng::seed_from_u64(200 + s);
            (0..784).map(|_| q.random_range(0.0..1.0f32)).collect()
        })
        .collect();
    // The planner's activation ranges, from the plaintext stages.
    let stages: Vec<Vec<Vec<f64>>> = imgs
        .iter()
        .map(|im| {
            let x: Vec<f64> = im.iter().map(|&v| f64::from(v)).collect();
            reference_stages(&model, &x)
        })
        .collect();
    let ranges: Vec<f64> = (0..model.pairs.len())
        .map(|k| {
            let m = stages
                .iter()
                .flat_map(|s| s[2 * k].iter())
                .fold(0.0f64, |a, v| a.max(v.abs()));
            (1.5 * m).max(1.0)
        })
        .collect();
    let plan = CircuitPlan::new(&model, Some(ranges)).unwrap();
    assert_eq!(plan.depth, 9, "{}", plan.breakdown());
    let bits = [vec![45], vec![26; 9], vec![45]].concat();
    let params = CkksParameters::new(small(12, bits)).unwrap();
    let circuit = BatchedCircuit::new(&model, plan.clone(), params.clone(), 64).unwrap();
    let profile = circuit.stream_profile();
    let rows = model.pairs[0].1.rows;
    assert_eq!(
        profile.iter().map(|s| s.features).sum::<usize>(),
        circuit.features()
    );
    assert_eq!(profile[0].inputs_held, 784);
    assert!(
        profile
            .windows(2)
            .all(|w| w[1].inputs_held <= w[0].inputs_held)
    );
    let last = profile.last().unwrap();
    assert!(last.inputs_held < 784 / 4, "{last:?}");
    let most_open = profile.iter().map(|s| s.open_accumulators).max().unwrap();
    assert!(
        most_open < rows * 2 / 3,
        "{most_open} of {rows} open at once"
    );
    // CNN1's dense1 reads every conv feature: all rows open throughout.
    let w = WeightsFile::load(&weights("cnn1-slaf")).unwrap();
    let cnn1 = w.inference.chain_form().unwrap();
    let p1 = CircuitPlan::from_weights(&w).unwrap();
    let c1 = BatchedCircuit::new(&cnn1, p1, small_params_for(7), 100).unwrap();
    let r1 = cnn1.pairs[0].1.rows;
    assert!(
        c1.stream_profile()
            .iter()
            .all(|s| s.open_accumulators == r1)
    );

    let engine = BatchedEngine::new(
        &model,
        plan,
        params,
        BatchedOptions {
            seed: Some(slaf_he::ckks::KeySeed::for_tests(13)),
            precision: false,
            chunk: 64,
        },
    )
    .unwrap();
    let refs: Vec<&[f32]> = imgs.iter().map(Vec::as_slice).collect();
    let out = engine.infer_batch(&refs, None).unwrap();
    for (s, he) in stages.iter().zip(&out.logits) {
        let plain = s.last().unwrap();
        let top = plain.iter().fold(1.0f64, |a, v| a.max(v.abs()));
        let err = plain
            .iter()
            .zip(he)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            err < 1e-3 * top,
            "logit error {err} (max |logit| {top}): {he:?} vs {plain:?}"
        );
    }
}

/// CNN1-SLAF's chain on a small insecure ring (depth 7).
fn small_params_for(depth: usize) -> CkksParameters {
    CkksParameters::new(small(12, [vec![40], vec![26; depth], vec![40]].concat())).unwrap()
}
