//! Both keyless circuits run on the CKKS simulator
//! (`SimBackend::for_params`): the same plan, layout, levels and scales as
//! the real run, slot values instead of ciphertexts. The decoded logits of
//! committed models match the plaintext forward pass, the outputs land at
//! the levels and scales the layout promises, and a bad input is refused
//! before any work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_ckks::circuits::CircuitBackend;
use slaf_ckks::circuits::sim::{SimBackend, SimCiphertext};
use slaf_he_nn::batched::BatchedCircuit;
use slaf_he_nn::per_image::PerImageCircuit;
use slaf_he_nn::plan::{ParamsChoice, StartLevel};
use slaf_he_nn::{Circuit, HeNnError, Mode};
use slaf_nn::WeightsFile;
use slaf_nn::data::{Dataset, open_test_split};

fn weights(name: &str) -> WeightsFile {
    let p = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join(format!("results/training/{name}.json.gz"));
    WeightsFile::load(&p).expect("committed weights")
}

fn images(count: usize) -> Vec<Vec<f32>> {
    let split = open_test_split(Dataset::Mnist, None).expect("MNIST test split");
    (0..count).map(|i| split.images.row(i).to_vec()).collect()
}

/// Encode `images` in the circuit's layout and "encrypt" them on `sim` at
/// the layout's start level and input scale.
fn inputs(c: &dyn Circuit, sim: &SimBackend, images: &[Vec<f32>]) -> Vec<SimCiphertext> {
    let refs: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
    let layout = c.layout();
    layout
        .encode(&refs)
        .expect("encode")
        .iter()
        .map(|v| sim.encrypt_at(v, layout.start_level(), layout.input_scale()))
        .collect()
}

/// Max |simulated − plaintext| logit, and whether every argmax agrees.
fn compare(w: &WeightsFile, images: &[Vec<f32>], logits: &[Vec<f64>]) -> (f64, bool) {
    let mut err = 0.0f64;
    let mut agree = true;
    for (im, lg) in images.iter().zip(logits) {
        let x: Vec<f64> = im.iter().map(|&v| f64::from(v)).collect();
        let p = w.inference.forward(&x).expect("forward");
        for (a, b) in p.iter().zip(lg) {
            err = err.max((a - b).abs());
        }
        agree &=
            slaf_nn::stats::argmax(p.iter().copied()) == slaf_nn::stats::argmax(lg.iter().copied());
    }
    (err, agree)
}

#[test]
fn batched_circuit_runs_on_the_simulator() {
    for name in ["cnn1-x2", "cnn1-slaf"] {
        let w = weights(name);
        let (plan, params, _) =
            slaf_he_nn::plan::resolve_params(&w, None, Mode::Batched).expect("plan");
        let model = w.inference.chain_form().expect("chain form");
        let c = BatchedCircuit::new(&model, plan, params, 128).expect("circuit");
        let sim = SimBackend::for_params(c.params(), 1.0, 7);
        let ims = images(6);
        let (out, times) = c
            .evaluate_on(&sim, inputs(&c, &sim, &ims), None, None)
            .expect("simulated evaluation");
        assert_eq!(out.len(), c.outputs());
        let end = c.start_level() - c.plan().depth;
        for ct in &out {
            assert_eq!(ct.level, end, "{name}: logits at start level - depth");
            assert_eq!(
                ct.scale,
                c.output_scale(),
                "{name}: the planned output scale"
            );
            assert_eq!(ct.parts, 2, "{name}: relinearised");
        }
        assert_eq!(times.stages.len(), 1 + 2 * model.pairs.len());
        let slots: Vec<Vec<f64>> = out.into_iter().map(|c| c.values).collect();
        let logits = c.layout().decode(slots, ims.len()).expect("decode");
        let (err, agree) = compare(&w, &ims, &logits);
        assert!(agree && err < 1e-2, "{name}: max logit error {err:e}");
    }
}

#[test]
fn per_image_circuit_runs_on_the_simulator() {
    let w = weights("cnn1-slaf");
    let (plan, _, _) = slaf_he_nn::plan::resolve_params(&w, None, Mode::PerImage).expect("plan");
    let params = ParamsChoice::Preset(slaf_ckks::Preset::Slaf)
        .resolve(&plan, 26)
        .expect("params");
    let model = w.inference.chain_form().expect("chain form");
    let c = PerImageCircuit::new(&model, plan, params, StartLevel::default()).expect("circuit");
    let sim = SimBackend::for_params(c.params(), 1.0, 8);
    let ims = images(3);
    let out = c
        .evaluate_on(&sim, inputs(&c, &sim, &ims))
        .expect("simulated evaluation");
    assert_eq!(out.len(), ims.len());
    assert!(out.iter().all(|ct| ct.level == c.pipeline().end_level()));
    let slots: Vec<Vec<f64>> = out.into_iter().map(|c| c.values).collect();
    let logits = c.layout().decode(slots, ims.len()).expect("decode");
    let (err, agree) = compare(&w, &ims, &logits);
    assert!(agree && err < 1e-2, "max logit error {err:e}");
    // The rotations the simulated run used are the ones the circuit asks keys for.
    let declared: std::collections::BTreeSet<usize> =
        c.keys().galois_steps.iter().map(|&s| s as usize).collect();
    assert!(sim.used_rotations().is_subset(&declared));
}

#[test]
fn the_simulated_circuits_refuse_inputs_at_the_wrong_level() {
    let w = weights("cnn1-x2");
    let (plan, params, _) =
        slaf_he_nn::plan::resolve_params(&w, None, Mode::Batched).expect("plan");
    let model = w.inference.chain_form().expect("chain form");
    let c = BatchedCircuit::new(&model, plan, params, 128).expect("circuit");
    let sim = SimBackend::for_params(c.params(), 0.0, 9);
    let mut xs = inputs(&c, &sim, &images(2));
    xs[3] = sim.mod_down(&xs[3], c.start_level() - 1).expect("mod down");
    match c.evaluate_on(&sim, xs, None, None) {
        Err(HeNnError::InvalidRequest { detail }) => {
            assert!(
                detail.contains("input ciphertext 3 is at level"),
                "{detail}"
            )
        }
        other => panic!("expected a refusal, got {:?}", other.map(|o| o.0.len())),
    }
}
