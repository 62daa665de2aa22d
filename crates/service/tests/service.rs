//! The client/server split over HTTP on loopback (server on port 0 inside
//! the test): end-to-end agreement in both modes, hostile clients answered
//! with 4xx while the server keeps serving, four concurrent clients, and
//! the server source holding no path to a secret key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_ckks::KeySeed;
use slaf_he_nn::Mode;
use slaf_nn::WeightsFile;
use slaf_nn::data::{Dataset, open_test_split};
use slaf_service::client::{Client, Remote};
use slaf_service::http::{Addresses, HttpConfig, RunningServer, spawn_at};
use slaf_service::server::{Server, ServerConfig};
use slaf_service::store::BundleStore;
use slaf_service::{ServicePlan, encode_message};
use std::sync::Arc;
use std::time::Duration;

const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../results/training/cnn1-x2.json.gz"
);

fn weights() -> WeightsFile {
    WeightsFile::load(std::path::Path::new(WEIGHTS)).expect("committed CNN1-X2 weights")
}

fn start(mode: Mode, config: ServerConfig) -> RunningServer {
    let server = Server::new(&weights(), mode, None, config).expect("server");
    let at = Addresses {
        api: "127.0.0.1:0".parse().expect("addr"),
        metrics: Some("127.0.0.1:0".parse().expect("addr")),
    };
    spawn_at(Arc::new(server), &HttpConfig::default(), at).expect("spawn")
}

fn remote(s: &RunningServer) -> Remote {
    Remote::new(&s.url(), Duration::from_secs(600))
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Test images `0..count` and the plaintext model's logits.
fn images(count: usize) -> (Vec<Vec<f32>>, Vec<Vec<f64>>) {
    let split = open_test_split(Dataset::Mnist, None).expect("MNIST test split");
    let w = weights();
    let ims: Vec<Vec<f32>> = (0..count).map(|i| split.images.row(i).to_vec()).collect();
    let plain = ims
        .iter()
        .map(|im| {
            let x: Vec<f64> = im.iter().map(|&v| f64::from(v)).collect();
            w.inference.forward(&x).expect("forward")
        })
        .collect();
    (ims, plain)
}

/// Register, infer and compare with plaintext: every argmax agrees and
/// every logit is within `tol`.
fn round_trip(r: &Remote, client: &mut Client, count: usize, tol: f64) {
    assert!(r.ensure_registered(client).expect("register") > 0);
    // Known now: a second registration sends nothing.
    assert_eq!(r.ensure_registered(client).expect("known"), 0);
    let (ims, plain) = images(count);
    let refs: Vec<&[f32]> = ims.iter().map(Vec::as_slice).collect();
    let (logits, ex) = r.infer(client, &refs).expect("infer");
    assert_eq!(logits.len(), count);
    for (i, (he, p)) in logits.iter().zip(&plain).enumerate() {
        assert_eq!(argmax(he), argmax(p), "image {i}: {he:?} vs {p:?}");
        let err = he
            .iter()
            .zip(p)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < tol, "image {i}: logit error {err}");
    }
    assert!(ex.up > 0 && ex.down > 0);
}

#[test]
fn per_image_end_to_end_agrees_with_plaintext() {
    let s = start(Mode::PerImage, ServerConfig::default());
    let mut r = remote(&s);
    let plan = r.plan().expect("plan");
    assert_eq!(plan.mode(), Mode::PerImage);
    assert!(!plan.keys.galois_steps.is_empty());
    let mut c = Client::generate(plan, &KeySeed::for_tests(1), false).expect("client");
    round_trip(&r, &mut c, 2, 0.1);
    // Uploads are seed-compressed: one ciphertext is c0 plus a 32-byte seed.
    let p = c.plan().clone();
    let limbs = p.layout.start_level() + 1;
    let n = 1usize << p.params.log_n;
    let ims = images(1).0;
    let body = c.encrypt(&[ims[0].as_slice()]).expect("encrypt");
    let half = limbs * n * 8;
    assert!(
        body.len() > half && body.len() < half + 512,
        "{} vs {half}",
        body.len()
    );
}

#[test]
fn batched_end_to_end_agrees_with_plaintext() {
    let s = start(Mode::Batched, ServerConfig::default());
    let mut r = remote(&s);
    let plan = r.plan().expect("plan");
    assert_eq!(plan.mode(), Mode::Batched);
    assert!(
        plan.keys.galois_steps.is_empty(),
        "batched needs no Galois key"
    );
    let mut c = Client::generate(plan, &KeySeed::for_tests(2), false).expect("client");
    round_trip(&r, &mut c, 24, 0.1);
}

#[test]
fn noise_flooding_keeps_accuracy_and_agreement() {
    let flooded = ServerConfig {
        flood_bits: Some(12),
        ..ServerConfig::default()
    };
    let s = start(Mode::PerImage, flooded);
    let mut r = remote(&s);
    let plan = r.plan().expect("plan");
    assert_eq!(plan.flood_bits, Some(12));
    let mut c = Client::generate(plan, &KeySeed::for_tests(7), false).expect("client");
    round_trip(&r, &mut c, 2, 0.1);
    // A flood that would drown the logits is refused up front, naming the bound.
    let too_much = ServerConfig {
        flood_bits: Some(30),
        ..ServerConfig::default()
    };
    let e = Server::new(&weights(), Mode::PerImage, None, too_much).expect_err("30 bits");
    assert!(e.to_string().contains("at most 16 bits"), "{e}");
}

/// POST raw bytes; the status and the body.
fn post_raw(url: &str, body: &[u8]) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    match agent.post(url).send(body) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let text = resp
                .body_mut()
                .with_config()
                .limit(1 << 30)
                .read_to_string()
                .unwrap_or_default();
            (status, text)
        }
        // A server may close the connection while a too-large body is
        // still being sent; that too is a refusal.
        Err(e) => (0, e.to_string()),
    }
}

fn healthy(r: &Remote) {
    let body = r.get("/healthz").expect("healthz answers");
    assert!(String::from_utf8_lossy(&body).contains("\"ok\""));
}

#[test]
fn hostile_clients_get_4xx_and_the_server_keeps_serving() {
    let s = start(
        Mode::PerImage,
        ServerConfig {
            max_images_per_request: 4,
            ..ServerConfig::default()
        },
    );
    let mut r = remote(&s);
    let plan: ServicePlan = r.plan().expect("plan");
    let url = s.url();
    let expect = |what: &str, (status, body): (u16, String), want: u16, needle: &str| {
        assert_eq!(status, want, "{what}: {body}");
        assert!(body.contains(needle), "{what}: {body:?} lacks {needle:?}");
        assert!(
            body.contains("\"error\""),
            "{what}: not a JSON error: {body}"
        );
        healthy(&r);
    };
    // Random bytes as a bundle, and a truncated bundle.
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    expect(
        "random bundle",
        post_raw(&format!("{url}/v1/keys"), &noise),
        400,
        "magic",
    );
    let good = Client::generate(plan.clone(), &KeySeed::for_tests(3), false).expect("client");
    let half = &good.bundle()[..good.bundle().len() / 2];
    expect(
        "truncated bundle",
        post_raw(&format!("{url}/v1/keys"), half),
        400,
        "truncated",
    );
    // A bundle for other parameters (another chain of the same N).
    let mut other = plan.clone();
    other.params.coeff_mod_bit_sizes = vec![31, 26, 26, 26, 26, 26, 31];
    let foreign = Client::generate(other, &KeySeed::for_tests(4), false).expect("client");
    expect(
        "foreign bundle",
        post_raw(&format!("{url}/v1/keys"), foreign.bundle()),
        400,
        "primes",
    );
    // A bundle missing one Galois step.
    let mut fewer = plan.clone();
    fewer.keys.galois_steps.pop();
    let missing = Client::generate(fewer, &KeySeed::for_tests(5), false).expect("client");
    expect(
        "missing step",
        post_raw(&format!("{url}/v1/keys"), missing.bundle()),
        400,
        "1 of the plan's missing",
    );
    // An unknown key id.
    let c = good;
    let ims = images(1).0;
    let body = c.encrypt(&[ims[0].as_slice()]).expect("encrypt");
    let unknown = format!("{url}/v1/infer/{}", "0".repeat(64));
    expect(
        "unknown key",
        post_raw(&unknown, &body),
        404,
        "unknown key id",
    );
    // Register the good bundle; then hostile ciphertexts under it.
    r.ensure_registered(&c).expect("register");
    let infer = format!("{url}/v1/infer/{}", c.key_id());
    expect("random ciphertexts", post_raw(&infer, &noise), 400, "magic");
    expect(
        "truncated ciphertexts",
        post_raw(&infer, &body[..body.len() - 9]),
        400,
        "truncated",
    );
    expect(
        "no ciphertext",
        post_raw(&infer, &encode_message(&[])),
        400,
        "expected 1..=4",
    );
    let five = encode_message(&vec![vec![0u8; 8]; 5]);
    expect("too many", post_raw(&infer, &five), 400, "expected 1..=4");
    // A ciphertext at the wrong level (a client that ignores the plan).
    let mut low = plan.clone();
    match &mut low.layout {
        slaf_he_nn::Layout::PerImage(l) => l.start_level -= 1,
        slaf_he_nn::Layout::Batched(l) => l.start_level -= 1,
    }
    let wrong = Client::generate(low, &KeySeed::for_tests(3), false).expect("client");
    let body_low = wrong.encrypt(&[ims[0].as_slice()]).expect("encrypt");
    expect("wrong level", post_raw(&infer, &body_low), 400, "level");
    // An oversized body: refused by the plan's exact limit before any parsing.
    let huge = vec![0u8; plan.limits.request_bytes + 1];
    let (status, text) = post_raw(&infer, &huge);
    assert!(status == 413 || status == 0, "oversized: {status} {text}");
    healthy(&r);
    // And the good client is still served correctly.
    let (logits, _) = r.infer(&c, &[ims[0].as_slice()]).expect("infer");
    let (_, plain) = images(1);
    assert_eq!(argmax(&logits[0]), argmax(&plain[0]));
}

#[test]
fn four_concurrent_clients_are_all_served_correctly() {
    let s = start(Mode::PerImage, ServerConfig::default());
    let url = s.url();
    let plan = remote(&s).plan().expect("plan");
    let (ims, plain) = images(4);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|k| {
                let (plan, url, im) = (plan.clone(), url.clone(), ims[k].clone());
                scope.spawn(move || {
                    let r = Remote::new(&url, Duration::from_secs(600));
                    let seed = KeySeed::for_tests(10 + k as u64);
                    let c = Client::generate(plan, &seed, false).expect("client");
                    r.ensure_registered(&c).expect("register");
                    r.infer(&c, &[im.as_slice()]).expect("infer").0
                })
            })
            .collect();
        for (k, h) in handles.into_iter().enumerate() {
            let logits = h.join().expect("client thread");
            assert_eq!(argmax(&logits[0]), argmax(&plain[k]), "client {k}");
        }
    });
    let (status, text) = get_raw(&s.metrics_url().expect("metrics"));
    assert_eq!(status, 200);
    assert!(text.contains("slaf_bundles 4"), "{text}");
}

#[test]
fn bundle_store_evicts_the_least_recently_used() {
    let server = Server::new(
        &weights(),
        Mode::Batched,
        None,
        ServerConfig {
            max_bundles: 2,
            ..ServerConfig::default()
        },
    )
    .expect("server");
    let plan = server.plan().clone();
    let t = server.config().open_tenant();
    let ids: Vec<String> = (0..3)
        .map(|k| {
            let c =
                Client::generate(plan.clone(), &KeySeed::for_tests(20 + k), false).expect("client");
            server.register(&t, c.bundle()).expect("register").0
        })
        .collect();
    assert!(
        !server.knows(&t, &ids[0]).unwrap(),
        "the oldest bundle is evicted"
    );
    assert!(server.knows(&t, &ids[1]).unwrap() && server.knows(&t, &ids[2]).unwrap());
    let st = server.bundle_stats();
    assert_eq!((st.bundles, st.evicted_quota, st.evicted_memory), (2, 1, 0));
}

/// The server side has no path to a secret key: its source names no
/// secret-key type, key generator, decryption or secret-key encryption.
#[test]
fn server_source_names_no_secret_key() {
    // Integration tests run in the crate folder (crates/service).
    for file in [
        "src/server.rs",
        "src/http.rs",
        "src/listener.rs",
        "src/store.rs",
        "src/tenants.rs",
        "src/metrics.rs",
    ] {
        let text = std::fs::read_to_string(file).expect("source");
        // Skip the module documentation (it explains the invariant).
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for forbidden in [
            "SecretKey",
            "KeyGenerator",
            "decrypt",
            "encrypt_symmetric",
            "secret_key",
            "super::client",
            "crate::client",
        ] {
            assert!(!code.contains(forbidden), "{file} mentions {forbidden}");
        }
    }
}

/// The HTTP client is an engine too: `query` runs it through the one
/// evaluation harness, and the summary's accuracy, agreement, requests and
/// bytes are what the server and the plaintext model say.
#[test]
fn query_runs_the_remote_engine_through_the_harness() {
    use slaf_service::client::{QueryRequest, query};
    let s = start(Mode::PerImage, ServerConfig::default());
    let plan = remote(&s).plan().expect("plan");
    let client = Client::generate(plan, &KeySeed::for_tests(11), false).expect("client");
    let dir = tempfile::tempdir().expect("tmp");
    let reference = dir.path().join("w.json.gz");
    weights().save(&reference).expect("save weights");
    let req = QueryRequest {
        server: s.url(),
        images: 5,
        offset: 3,
        data_dir: None,
        reference: Some(reference),
        images_per_request: 2,
        remote: slaf_service::client::RemoteOptions::default(),
        quiet: true,
        allow_insecure: false,
    };
    let q = query(client, &req).expect("query");
    assert_eq!(q.images, 5);
    assert_eq!(q.mode, Mode::PerImage);
    // 5 images, 2 per request: 3 requests, each sized and timed.
    assert_eq!(q.requests, 3, "{q:?}");
    assert!(q.bundle_bytes > 0 && q.bytes_up > q.bytes_down && q.bytes_down > 0);
    assert!(q.latency_p95_ms >= q.latency_p50_ms && q.latency_p50_ms > 0.0);
    assert_eq!(q.agreement, Some(1.0), "{q:?}");
    assert!(q.max_logit_error.is_some_and(|e| e < 0.1), "{q:?}");
    // The labels of images 3..8 against the plaintext predictions.
    let (ims, plain) = images(8);
    let split = open_test_split(Dataset::Mnist, None).expect("split");
    let correct = (3..8)
        .filter(|&i| argmax(&plain[i]) == usize::from(split.labels[i]))
        .count();
    assert_eq!(q.correct, correct, "{q:?}");
    assert_eq!(ims.len(), 8);
}

/// `GET url` with the status as data.
fn get_raw(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    match agent.get(url).call() {
        Ok(mut resp) => (
            resp.status().as_u16(),
            resp.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(e) => (0, e.to_string()),
    }
}

/// Unknown paths and methods get JSON errors (they were empty 404s), and
/// a bundle the server cannot store is a 500 that names no server file.
#[test]
fn unknown_routes_are_json_and_storage_failures_name_no_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("bundles");
    let config = ServerConfig {
        bundle_store: Some(Arc::new(BundleStore::local(&store).expect("store"))),
        ..ServerConfig::default()
    };
    let s = start(Mode::Batched, config);
    let url = s.url();
    let (status, text) = get_raw(&format!("{url}/nope"));
    assert_eq!(status, 404, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("a JSON 404");
    assert_eq!(v["error"], "not_found", "{text}");
    assert!(
        text.contains("/v1/infer/{key_id}"),
        "names the routes: {text}"
    );
    let (status, text) = post_raw(&format!("{url}/healthz"), b"x");
    assert_eq!(status, 405, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("a JSON 405");
    assert_eq!(v["error"], "method_not_allowed", "{text}");
    // A folder where the bundle file should go: the write fails, as root too.
    let plan = remote(&s).plan().expect("plan");
    let c = Client::generate(plan, &KeySeed::for_tests(12), false).expect("client");
    let blocker = store
        .join("bundles/public")
        .join(format!("{}.bundle", c.key_id()));
    std::fs::create_dir_all(blocker).expect("blocker");
    let (status, text) = post_raw(&format!("{url}/v1/keys"), c.bundle());
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("could not store the bundle"), "{text}");
    let folder = store.display().to_string();
    assert!(
        !text.contains(&folder),
        "the answer names a server path: {text}"
    );
    healthy(&remote(&s));
}

/// A hostile plan cannot make the client exhaust its memory: a key for
/// every one of the 4,095 rotations (about 14 GiB at this ring) is refused
/// before any key is generated, and so are repeated or out-of-range steps.
#[test]
fn a_plan_asking_for_too_many_keys_is_refused_before_keygen() {
    let s = start(Mode::PerImage, ServerConfig::default());
    let plan = remote(&s).plan().expect("plan");
    let t = std::time::Instant::now();
    for (steps, want) in [
        ((1..4096).collect::<Vec<i64>>(), "GiB of evaluation keys"),
        (vec![1, 2, 2], "3 Galois steps, 2 of them distinct"),
        (vec![0], "rotation 0"),
        (vec![1 << 20], "rotations are 1..4096"),
    ] {
        let mut hostile = plan.clone();
        hostile.keys.galois_steps = steps;
        match Client::generate(hostile, &KeySeed::for_tests(13), false) {
            Err(e) => assert!(e.to_string().contains(want), "{e}"),
            Ok(_) => panic!("a hostile plan was accepted ({want})"),
        }
    }
    assert!(
        t.elapsed().as_secs() < 5,
        "refused before any key generation"
    );
}

/// A key folder whose secret key is not the bundle's is refused on open
/// (it used to decrypt every answer to noise, with exit 0).
#[test]
fn a_secret_key_from_another_folder_is_refused() {
    let s = start(Mode::Batched, ServerConfig::default());
    let plan = remote(&s).plan().expect("plan");
    let dir = tempfile::tempdir().expect("tmp");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (d, n) in [(&a, 21u64), (&b, 22)] {
        let seed = KeySeed::for_tests(n);
        Client::generate(plan.clone(), &seed, false)
            .expect("client")
            .write_key_dir(d, &seed)
            .expect("key folder");
    }
    assert!(Client::open(&a, false).is_ok(), "a folder's own key opens");
    std::fs::remove_file(a.join("secret.key")).expect("rm");
    std::fs::copy(b.join("secret.key"), a.join("secret.key")).expect("cp");
    let err = Client::open(&a, false).expect_err("a mixed folder must be refused");
    assert!(err.to_string().contains("does not belong to"), "{err}");
}
