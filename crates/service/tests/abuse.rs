//! A server that survives its clients (issue #40): each failure measured on
//! the old server, tried again as an attacker would, over raw sockets where
//! an HTTP library would be too polite.
//!
//! - slow headers, idle sockets and a connection flood: closed by the
//!   header timeout and the connection cap, `/healthz` still answers;
//! - slow bodies: 408 after the body timeout;
//! - declared bodies over the plan's exact limits: 413 before a body byte;
//! - more concurrent requests than workers + queue: shed with 503 and
//!   `Retry-After`, counted in the metrics;
//! - bundles with keys the plan does not list: refused;
//! - tenants: tokens required, key ids private to their tenant, quotas
//!   that evict only the tenant's own bundles, a full memory answered 503;
//! - TLS with a self-signed certificate; a client's bounds on a plan and
//!   on its own secret-key file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use slaf_ckks::KeySeed;
use slaf_he_nn::Mode;
use slaf_nn::WeightsFile;
use slaf_service::client::{Client, Remote, RemoteOptions};
use slaf_service::http::{Addresses, HttpConfig, RunningServer, spawn_at};
use slaf_service::server::{Server, ServerConfig};
use slaf_service::store::BundleStore;
use slaf_service::tenants::{Tenants, new_token};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../results/training/cnn1-x2.json.gz"
);

fn weights() -> WeightsFile {
    WeightsFile::load(std::path::Path::new(WEIGHTS)).expect("committed CNN1-X2 weights")
}

fn serve(server: Server, cfg: &HttpConfig) -> RunningServer {
    let at = Addresses {
        api: "127.0.0.1:0".parse().unwrap(),
        metrics: Some("127.0.0.1:0".parse().unwrap()),
    };
    spawn_at(Arc::new(server), cfg, at).expect("spawn")
}

fn batched(config: ServerConfig) -> Server {
    Server::new(&weights(), Mode::Batched, None, config).expect("server")
}

/// A batched plan and one client bundle of it (made once: key generation
/// is the slow part).
fn batched_client(seed: u64) -> Client {
    static PLAN: OnceLock<slaf_service::ServicePlan> = OnceLock::new();
    let plan = PLAN.get_or_init(|| batched(ServerConfig::default()).plan().clone());
    Client::generate(plan.clone(), &KeySeed::for_tests(seed), false).expect("client")
}

/// Write `head` (and `body`) on a fresh socket and read the answer until
/// the server closes or `wait` passes: (status, text, seconds to the answer).
fn raw(addr: std::net::SocketAddr, head: &str, body: &[u8], wait: Duration) -> (u16, String, f64) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let t = Instant::now();
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                buf.extend_from_slice(&chunk[..k]);
                // One full answer is enough (keep-alive would wait on).
                let text = String::from_utf8_lossy(&buf);
                if let Some((h, b)) = text.split_once("\r\n\r\n") {
                    let len = h.lines().find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    });
                    if len.is_some_and(|n| b.len() >= n) {
                        break;
                    }
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text, t.elapsed().as_secs_f64())
}

fn healthz_ok(addr: std::net::SocketAddr) -> f64 {
    let (status, text, secs) = raw(
        addr,
        "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(status, 200, "{text}");
    assert!(
        text.ends_with("{\"status\":\"ok\"}"),
        "healthz says more than ok: {text}"
    );
    secs
}

fn metrics(s: &RunningServer) -> String {
    let url = s.metrics_url().unwrap();
    let addr: std::net::SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();
    raw(
        addr,
        "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        b"",
        Duration::from_secs(10),
    )
    .1
}

/// 300 idle sockets, 20 slow-drip ones and a cap of 64: the extra
/// connections are refused at once, the idle and dripping ones are closed
/// by the header timeout, and `/healthz` answers throughout.
#[test]
fn idle_and_slow_sockets_are_closed_and_healthz_still_answers() {
    let cfg = HttpConfig {
        header_timeout: Duration::from_secs(1),
        max_connections: 64,
        ..HttpConfig::default()
    };
    let s = serve(batched(ServerConfig::default()), &cfg);
    let addr = s.addr();
    let mut idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let t = Instant::now();
    let drippers: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let t = Instant::now();
                for b in b"POST /v1/keys HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n".iter().cycle() {
                    if s.write_all(&[*b]).is_err() || t.elapsed() > Duration::from_secs(20) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                t.elapsed().as_secs_f64()
            })
        })
        .collect();
    // Every idle socket is closed by the server (read sees EOF or a 503).
    for sock in &mut idle {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut b = [0u8; 256];
        let k = sock.read(&mut b).unwrap_or(0);
        let text = String::from_utf8_lossy(&b[..k]);
        assert!(k == 0 || text.starts_with("HTTP/1.1 503"), "{text}");
    }
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "idle sockets took {:?}",
        t.elapsed()
    );
    for d in drippers {
        let secs = d.join().unwrap();
        assert!(secs < 6.0, "a slow-drip socket stayed open {secs} s");
    }
    assert!(healthz_ok(addr) < 1.0);
    let m = metrics(&s);
    assert!(m.contains("slaf_refused_connections_total"), "{m}");
    assert!(
        !m.contains("slaf_refused_connections_total 0\n"),
        "nothing refused: {m}"
    );
}

/// A body that stops arriving is a 408 after the body timeout.
#[test]
fn a_stalled_body_is_answered_408() {
    let cfg = HttpConfig {
        body_timeout: Duration::from_secs(1),
        ..HttpConfig::default()
    };
    let s = serve(batched(ServerConfig::default()), &cfg);
    let (status, text, secs) = raw(
        s.addr(),
        "POST /v1/keys HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n",
        b"SLAFBNDL",
        Duration::from_secs(10),
    );
    assert_eq!(status, 408, "{text}");
    assert!(text.contains("\"error\":\"timeout\""), "{text}");
    assert!((0.9..5.0).contains(&secs), "answered after {secs} s");
    healthz_ok(s.addr());
}

/// A declared body over the route's exact limit is refused before any of
/// it is read: 1.4 GB bundles, `Content-Length: 10^15`, a request one
/// byte over the plan's.
#[test]
fn declared_oversized_bodies_are_refused_at_once() {
    let s = serve(batched(ServerConfig::default()), &HttpConfig::default());
    let limits = batched_client(1).plan().limits;
    let id = "0".repeat(64);
    let cases = [
        ("/v1/keys".to_string(), 1_400_000_000usize.to_string()),
        ("/v1/keys".to_string(), "1000000000000000".to_string()),
        (
            "/v1/keys".to_string(),
            (limits.bundle_bytes + 1).to_string(),
        ),
        (
            format!("/v1/infer/{id}"),
            (limits.request_bytes + 1).to_string(),
        ),
    ];
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(path, len)| {
            let addr = s.addr();
            std::thread::spawn(move || {
                let head =
                    format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len}\r\n\r\n");
                (len, raw(addr, &head, b"", Duration::from_secs(10)))
            })
        })
        .collect();
    for h in handles {
        let (len, (status, text, secs)) = h.join().unwrap();
        assert_eq!(status, 413, "Content-Length {len}: {text}");
        assert!(text.contains("\"error\":\"too_large\""), "{text}");
        assert!(secs < 2.0, "Content-Length {len} answered after {secs} s");
    }
    healthz_ok(s.addr());
}

/// With 1 worker and a queue of 1, a third concurrent request on a route
/// is shed at once (503, `Retry-After`) before its body is read; the
/// sheds are counted.
#[test]
fn requests_beyond_workers_and_queue_are_shed() {
    let cfg = HttpConfig {
        workers: 1,
        queue: 1,
        body_timeout: Duration::from_secs(3),
        ..HttpConfig::default()
    };
    let s = serve(batched(ServerConfig::default()), &cfg);
    let addr = s.addr();
    // Two admitted requests whose bodies stall (they hold both slots).
    let hold: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                raw(
                    addr,
                    "POST /v1/keys HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n",
                    b"x",
                    Duration::from_secs(10),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..4 {
        let (status, text, secs) = raw(
            addr,
            "POST /v1/keys HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n",
            b"",
            Duration::from_secs(10),
        );
        assert_eq!(status, 503, "{text}");
        assert!(
            text.to_ascii_lowercase().contains("retry-after: 1"),
            "{text}"
        );
        assert!(secs < 1.0, "shed after {secs} s");
    }
    for h in hold {
        let (status, text, _) = h.join().unwrap();
        assert_eq!(status, 408, "{text}");
    }
    // The slots are free again: a well-formed request is served.
    let mut r = Remote::new(&s.url(), Duration::from_secs(60));
    r.plan().expect("plan");
    r.ensure_registered(&batched_client(2))
        .expect("register after the flood");
    let m = metrics(&s);
    assert!(m.contains("slaf_shed_total{route=\"/v1/keys\"} 4"), "{m}");
    assert!(
        m.contains("slaf_requests_total{route=\"/v1/keys\",status=\"503\"} 4"),
        "{m}"
    );
}

/// A bundle must hold exactly the plan's Galois keys: an extra key makes
/// it longer than the plan's exact bundle size (413 before reading), and a
/// key swapped for one the plan does not list is refused by name (400).
#[test]
fn bundles_with_keys_the_plan_does_not_list_are_refused() {
    let server = Server::new(&weights(), Mode::PerImage, None, ServerConfig::default()).unwrap();
    let plan = server.plan().clone();
    let t = server.config().open_tenant();
    let s = serve(server, &HttpConfig::default());
    let unused = (1..4096)
        .find(|k| !plan.keys.galois_steps.contains(k))
        .unwrap();
    let mut extra = plan.clone();
    extra.keys.galois_steps.push(unused);
    let over = Client::generate(extra, &KeySeed::for_tests(30), false).unwrap();
    assert!(over.bundle().len() > plan.limits.bundle_bytes);
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        over.bundle().len()
    );
    let (status, text, _) = raw(s.addr(), &head, over.bundle(), Duration::from_secs(30));
    assert_eq!(status, 413, "{text}");
    let mut swapped = plan.clone();
    swapped.keys.galois_steps[0] = unused;
    let other = Client::generate(swapped, &KeySeed::for_tests(31), false).unwrap();
    assert!(other.bundle().len() <= plan.limits.bundle_bytes);
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        other.bundle().len()
    );
    let (status, text, _) = raw(s.addr(), &head, other.bundle(), Duration::from_secs(60));
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("not in the plan"), "{text}");
    let _ = t;
    healthz_ok(s.addr());
}

fn tokens_file(dir: &std::path::Path) -> (std::path::PathBuf, String, String) {
    let (ta, da) = new_token().unwrap();
    let (tb, db) = new_token().unwrap();
    let path = dir.join("tokens.toml");
    std::fs::write(
        &path,
        format!(
            "[[tenant]]\nname = \"alice\"\ntoken_sha256 = \"{da}\"\nmax_bundles = 1\n\n[[tenant]]\nname = \"bob\"\ntoken_sha256 = \"{db}\"\nmax_bundles = 2\n"
        ),
    )
    .unwrap();
    (path, ta, tb)
}

fn remote_as(s: &RunningServer, token: Option<&str>) -> Remote {
    let opts = RemoteOptions {
        timeout: Duration::from_secs(120),
        token: token.map(|t| zeroize::Zeroizing::new(t.to_string())),
        ca_cert: None,
        retries: 0,
    };
    let mut r = Remote::with_options(&s.url(), &opts).unwrap();
    r.plan().unwrap();
    r
}

/// Tokens are required; a tenant sees only its own key ids; 40 forged
/// registrations by one tenant evict only its own bundles; the other
/// tenant's bundle is still served.
#[test]
fn tenants_cannot_see_or_evict_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ta, tb) = tokens_file(dir.path());
    let config = ServerConfig {
        bundle_store: Some(Arc::new(
            BundleStore::local(&dir.path().join("store")).unwrap(),
        )),
        ..ServerConfig::default()
    };
    let tenants = Tenants::from_file(&path, config.quota()).unwrap();
    let cfg = HttpConfig {
        tenants: Some(Arc::new(tenants)),
        ..HttpConfig::default()
    };
    let s = serve(batched(config), &cfg);
    let (alice, bob) = (remote_as(&s, Some(&ta)), remote_as(&s, Some(&tb)));
    let victim = batched_client(40);
    bob.ensure_registered(&victim).unwrap();
    // No token, a wrong token: 401 before anything is read.
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        victim.bundle().len()
    );
    let (status, text, _) = raw(s.addr(), &head, b"", Duration::from_secs(10));
    assert_eq!(status, 401, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{text}"
    );
    let wrong = remote_as(&s, Some("slaf_0000"));
    assert!(
        wrong
            .ensure_registered(&victim)
            .unwrap_err()
            .to_string()
            .contains("401")
    );
    // Alice cannot see Bob's key id, nor run on it.
    let path = format!("/v1/keys/{}", victim.key_id());
    assert!(alice.get(&path).unwrap_err().to_string().contains("404"));
    assert!(bob.get(&path).is_ok());
    let ims = [vec![0.5f32; 784]];
    let refs: Vec<&[f32]> = ims.iter().map(Vec::as_slice).collect();
    assert!(
        alice
            .infer(&victim, &refs)
            .unwrap_err()
            .to_string()
            .contains("404")
    );
    // Alice registers forged bundles (one coefficient of the public key
    // changed each time): her quota of 1 evicts her own, never Bob's.
    let mine = batched_client(41);
    let mut forged = mine.bundle().to_vec();
    let at = forged.len() / 2;
    for k in 0..40u8 {
        forged[at] = k;
        let (status, text, _) = raw(
            s.addr(),
            &format!(
                "POST /v1/keys HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ta}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                forged.len()
            ),
            &forged,
            Duration::from_secs(60),
        );
        assert!(status == 200 || status == 400, "{status}: {text}");
    }
    assert!(bob.get(&path).is_ok(), "Bob's bundle survived");
    let (logits, _) = bob.infer(&victim, &refs).unwrap();
    assert_eq!(logits.len(), 1);
    let stored = std::fs::read_dir(dir.path().join("store/bundles/alice"))
        .unwrap()
        .count();
    assert!(stored <= 1, "alice's quota of 1 keeps {stored} files");
    let m = metrics(&s);
    assert!(
        m.contains("slaf_bundle_evictions_total{reason=\"quota\"}"),
        "{m}"
    );
}

/// Memory for bundles is a byte budget: without a store a registration
/// that would evict another tenant's bundle is a 503 (never an eviction
/// across tenants, never an abort); with a store the other tenant's
/// bundle leaves memory and is reloaded, checked, on its next use.
#[test]
fn a_full_bundle_memory_is_a_503_or_a_reload_never_a_loss() {
    let probe = batched(ServerConfig::default());
    let t = probe.config().open_tenant();
    let (a, b) = (batched_client(50), batched_client(51));
    probe.register(&t, a.bundle()).unwrap();
    let one = probe.bundle_stats().bytes;
    assert!(one > 0);
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = tokens_file(dir.path());
    for with_store in [false, true] {
        let config = ServerConfig {
            memory_bytes: one + one / 2,
            bundle_store: with_store
                .then(|| Arc::new(BundleStore::local(&dir.path().join("s")).unwrap())),
            ..ServerConfig::default()
        };
        let tenants = Tenants::from_file(&path, config.quota()).unwrap().all();
        let alice = tenants.iter().find(|t| t.name == "alice").unwrap();
        let bob = tenants.iter().find(|t| t.name == "bob").unwrap();
        let server = batched(config);
        server.register(bob, a.bundle()).unwrap();
        match server.register(alice, b.bundle()) {
            Err(e) if !with_store => {
                assert_eq!(e.status(), 503, "{e}");
                assert!(e.to_string().contains("other tenants"), "{e}");
            }
            Ok(_) if with_store => {
                assert_eq!(server.bundle_stats().evicted_memory, 1);
            }
            other => panic!("store {with_store}: {other:?}"),
        }
        assert!(server.knows(bob, a.key_id()).unwrap(), "store {with_store}");
        let body = a.encrypt(&[&[0.5f32; 784]]).unwrap();
        server.infer(bob, a.key_id(), &body).unwrap();
    }
}

/// TLS: a self-signed certificate trusted with `--ca-cert` works; a client
/// that does not trust it, or speaks plain HTTP, gets nothing.
#[test]
fn tls_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_pem, key_pem) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let tls = slaf_service::listener::tls_config(&cert_pem, &key_pem).unwrap();
    let cfg = HttpConfig {
        tls: Some(tls),
        ..HttpConfig::default()
    };
    let s = serve(batched(ServerConfig::default()), &cfg);
    let url = format!("https://localhost:{}", s.addr().port());
    let opts = RemoteOptions {
        ca_cert: Some(cert_pem.clone()),
        retries: 0,
        ..RemoteOptions::default()
    };
    let mut r = Remote::with_options(&url, &opts).unwrap();
    let plan = r.plan().expect("plan over TLS");
    assert_eq!(plan.mode(), Mode::Batched);
    let c = batched_client(60);
    r.ensure_registered(&c).expect("register over TLS");
    let untrusted = RemoteOptions {
        retries: 0,
        ..RemoteOptions::default()
    };
    let e = Remote::with_options(&url, &untrusted)
        .unwrap()
        .get("/healthz")
        .unwrap_err();
    assert!(
        e.to_string().to_lowercase().contains("certificate") || e.to_string().contains("tls"),
        "{e}"
    );
    let plain = format!("http://127.0.0.1:{}", s.addr().port());
    assert!(
        Remote::with_options(&plain, &untrusted)
            .unwrap()
            .get("/healthz")
            .is_err()
    );
    // Bad certificate files are named.
    let e = slaf_service::listener::tls_config(&key_pem, &key_pem).unwrap_err();
    assert!(e.to_string().contains("key.pem"), "{e}");
}

/// A client bounds a plan before allocating for it, and refuses a secret
/// key file that others can read.
#[test]
fn a_client_bounds_hostile_plans_and_private_files() {
    let c = batched_client(70);
    let mut plan = c.plan().clone();
    plan.limits.response_bytes = usize::MAX / 2;
    let e = Client::generate(plan, &KeySeed::for_tests(71), false).unwrap_err();
    assert!(e.to_string().contains("a client reads at most"), "{e}");
    let mut plan = c.plan().clone();
    plan.images_per_request = 0;
    let e = Client::generate(plan, &KeySeed::for_tests(71), false).unwrap_err();
    assert!(e.to_string().contains("images per request is 0"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("k");
    let seed = KeySeed::for_tests(72);
    Client::generate(c.plan().clone(), &seed, false)
        .unwrap()
        .write_key_dir(&keys, &seed)
        .unwrap();
    assert!(Client::open(&keys, false).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let secret = keys.join("secret.key");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Client::open(&keys, false).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
}

/// The batched engine's hostile inputs: a message with the wrong number of
/// ciphertexts (not one per pixel), random ciphertext bytes, ciphertexts at
/// the wrong level, and a bundle with a Galois key the batched plan does
/// not list; each a 4xx, and the good client is served after them.
#[test]
fn the_batched_engine_refuses_hostile_inputs() {
    let s = serve(batched(ServerConfig::default()), &HttpConfig::default());
    let mut r = Remote::new(&s.url(), Duration::from_secs(120));
    let plan = r.plan().unwrap();
    let c = batched_client(100);
    r.ensure_registered(&c).unwrap();
    let path = format!("/v1/infer/{}", c.key_id());
    let send = |body: &[u8]| {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        raw(s.addr(), &head, body, Duration::from_secs(60))
    };
    let good = c.encrypt(&[&[0.5f32; 784]]).unwrap();
    let items = slaf_service::decode_message(&good, plan.max_inputs()).unwrap();
    assert_eq!(items.len(), plan.max_inputs());
    let owned: Vec<Vec<u8>> = items.iter().map(|i| i.to_vec()).collect();
    // One ciphertext short of one per pixel.
    let short = slaf_service::encode_message(&owned[..owned.len() - 1]);
    let (status, text, _) = send(&short);
    assert_eq!(status, 400, "{text}");
    // Random bytes in place of one ciphertext.
    let mut noisy = owned.clone();
    noisy[3] = vec![0x5a; noisy[3].len()];
    let (status, text, _) = send(&slaf_service::encode_message(&noisy));
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("ciphertext 3"), "{text}");
    // Ciphertexts at another level (a client that ignores the plan).
    let mut low = plan.clone();
    if let slaf_he_nn::Layout::Batched(l) = &mut low.layout {
        l.start_level -= 1;
    }
    let wrong = Client::generate(low, &KeySeed::for_tests(100), false).unwrap();
    let (status, text, _) = send(&wrong.encrypt(&[&[0.5f32; 784]]).unwrap());
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("level"), "{text}");
    // A batched bundle with a Galois key the plan does not list.
    let mut keyed = plan.clone();
    keyed.keys.galois_steps = vec![1];
    let over = Client::generate(keyed, &KeySeed::for_tests(101), false).unwrap();
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        over.bundle().len()
    );
    let (status, text, _) = raw(s.addr(), &head, over.bundle(), Duration::from_secs(60));
    assert!(status == 413 || status == 400, "{status}: {text}");
    // The good client is still served.
    let (logits, _) = r.infer(&c, &[&[0.5f32; 784]]).unwrap();
    assert_eq!(logits[0].len(), 10);
}
