//! Statistical noise flooding (issue #40): the flood is sized from the
//! circuit's measured output noise (`Flooding::sigma_bits_for`), the
//! planner picks parameters whose output scale carries it, answers come
//! back at the lowest level that holds the logits, and the client still
//! agrees with the plaintext model. A parameter set without room is
//! refused with the scale it would need.
//!
//! The cost (ring, time, bytes, accuracy) against no flooding, per engine:
//! `cargo test --release -p slaf-service --test flooding -- --ignored --nocapture`
//! writes `results/service/flooding.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use slaf_ckks::KeySeed;
use slaf_he_nn::Mode;
use slaf_he_nn::plan::ParamsChoice;
use slaf_nn::WeightsFile;
use slaf_service::client::{Client, QueryRequest, RemoteOptions, query};
use slaf_service::http::{HttpConfig, spawn};
use slaf_service::server::{FloodPolicy, Server, ServerConfig};
use slaf_service::{Flooding, decode_message};
use std::sync::Arc;
use std::time::Instant;

const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../results/training/cnn1-x2.json.gz"
);

fn weights() -> WeightsFile {
    WeightsFile::load(std::path::Path::new(WEIGHTS)).unwrap()
}

fn flooded() -> ServerConfig {
    ServerConfig {
        flooding: Some(FloodPolicy::default()),
        ..ServerConfig::default()
    }
}

/// Serve `server`, query `images` test images with a fresh client; the summary.
fn run(server: Server, images: usize, per_request: usize) -> slaf_service::client::QuerySummary {
    let plan = server.plan().clone();
    let s = spawn(
        Arc::new(server),
        &HttpConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let client = Client::generate(plan, &KeySeed::from_os_rng(), false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("w.json.gz");
    weights().save(&reference).unwrap();
    let req = QueryRequest {
        server: s.url(),
        images,
        offset: 0,
        data_dir: None,
        reference: Some(reference),
        images_per_request: per_request,
        remote: RemoteOptions::default(),
        quiet: true,
        allow_insecure: false,
    };
    query(client, &req).unwrap()
}

#[test]
fn statistical_flooding_is_sized_from_the_noise_and_keeps_agreement() {
    let server = Server::new(&weights(), Mode::PerImage, None, flooded()).unwrap();
    let plan = server.plan().clone();
    let f = plan.flooding.expect("the plan publishes its flooding");
    let policy = FloodPolicy::default();
    assert!(
        (f.sigma_bits - Flooding::sigma_bits_for(30, 10, f.noise_l2_bits)).abs() < 1e-9,
        "{f:?}"
    );
    assert!(
        (f.sigma_bits - f.noise_l2_bits - 1.0 - 15.0 - 8.0).abs() < 1e-9,
        "{f:?}"
    );
    assert!(
        f.logit_noise_bits <= -f64::from(policy.precision_bits),
        "{f:?}"
    );
    assert!(
        plan.params.scale_bits > 26,
        "the planner raised the scale for the flood: {:?}",
        plan.params
    );
    assert!(f.output_level < plan.layout.start_level(), "{f:?}");
    // An answer is at the output level: one ciphertext of output_level + 1 limbs.
    let c = Client::generate(plan.clone(), &KeySeed::for_tests(90), false).unwrap();
    let t = server.config().open_tenant();
    server.register(&t, c.bundle()).unwrap();
    let body = c.encrypt(&[&[0.5f32; 784]]).unwrap();
    let (answer, _) = server.infer(&t, c.key_id(), &body).unwrap();
    let items = decode_message(&answer, 1).unwrap();
    let params = slaf_service::client::check_plan(&plan, false).unwrap();
    let want = slaf_ckks::serial::sizes::ciphertext(&params, f.output_level, 2);
    assert_eq!(
        items[0].len(),
        want,
        "the answer is at level {}",
        f.output_level
    );
    // Over HTTP the flooded answers agree with the plaintext model.
    let q = run(server, 3, 1);
    assert_eq!(q.agreement, Some(1.0), "{q:?}");
    assert!(q.max_logit_error.is_some_and(|e| e < 0.5), "{q:?}");
    // Parameters without room for the flood are refused, naming the scale.
    let preset = Some(ParamsChoice::parse("cnn1-x2", false).unwrap());
    let e = Server::new(&weights(), Mode::PerImage, preset, flooded()).unwrap_err();
    assert!(e.to_string().contains("needs an output scale of 2^"), "{e}");
}

fn machine() -> String {
    format!(
        "{}.",
        slaf_report::machine::timing_caption(rayon::current_num_threads())
    )
}

#[test]
#[ignore = "measures the cost of flooding (minutes): writes results/service/flooding.md"]
fn flooding_cost() {
    let mut rows = Vec::new();
    for (mode, images, per_request) in [(Mode::PerImage, 100, 1), (Mode::Batched, 1000, 1)] {
        for flood in [false, true] {
            let config = if flood {
                flooded()
            } else {
                ServerConfig::default()
            };
            let t = Instant::now();
            let server = Server::new(&weights(), mode, None, config).unwrap();
            let setup_s = t.elapsed().as_secs_f64();
            let plan = server.plan().clone();
            let p = slaf_service::client::check_plan(&plan, false).unwrap();
            let log_qp: f64 = plan
                .params
                .coeff_mod_bit_sizes
                .iter()
                .map(|&b| f64::from(b))
                .sum();
            let q = run(server, images, per_request);
            let f = plan.flooding;
            rows.push(format!(
                "| {} | {} | 2^{} | {:.0} | 2^{} | {} | {} | {:.0} | {:.2} % | {:.2} % | {:.3} | {:.0} / {:.0} | {:.1} | {:.2} / {:.2} |",
                mode.name(),
                if flood { "statistical" } else { "off" },
                plan.params.log_n,
                log_qp,
                plan.params.scale_bits,
                f.map_or("—".into(), |f| format!("2^{:.1}", f.noise_l2_bits)),
                f.map_or("—".into(), |f| format!("2^{:.1} (logit 2^{:.1})", f.sigma_bits, f.logit_noise_bits)),
                setup_s,
                100.0 * q.accuracy,
                100.0 * q.agreement.unwrap_or(0.0),
                q.max_logit_error.unwrap_or(f64::NAN),
                q.latency_p50_ms,
                q.latency_p95_ms,
                q.bundle_bytes as f64 / (1 << 20) as f64,
                q.bytes_up as f64 / q.requests as f64 / (1 << 20) as f64,
                q.bytes_down as f64 / q.requests as f64 / (1 << 20) as f64,
            ));
            eprintln!("{}", rows.last().unwrap());
            let _ = p;
        }
    }
    let text = format!(
        "# The cost of statistical noise flooding\n\n{}\n\nCNN1-X2 on the MNIST test images (per-image: the first 100, one per request; batched: the first 1000 in one request). `statistical`: `serve --flood` (30 bits of statistical security over 2^10 answers per key, logit noise at most 2^-5); `off`: the default parameters. Setup: building the server, the noise estimate and the planner's search included.\n\n| engine | flooding | N | log2 QP | scale | output noise (l2) | flood sigma | setup (s) | accuracy | agreement | max logit error | p50 / p95 (ms) | bundle (MiB) | up / down per request (MiB) |\n|---|---|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n{}\n\n`cargo test --release -p slaf-service --test flooding -- --ignored --nocapture` regenerates this file.\n",
        machine(),
        rows.join("\n")
    );
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results/service/flooding.md");
    std::fs::write(out, text).unwrap();
}
