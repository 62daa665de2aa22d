//! Scale-out on a real load balancer (issue #40): three `slaf-he serve`
//! replicas share one bundle store (`--bundle-dir`, `object_store`'s local
//! backend) behind HAProxy on loopback. A client registers through the
//! balancer once and every replica serves it; one replica is killed during
//! a load run and no request is lost (the client retries idempotent
//! inference; HAProxy re-dispatches), and every answer still decrypts to the
//! plaintext model's class. In the same run one replica alone serves the
//! same load: throughput and p50/p95 of both, and each replica's peak RSS.
//!
//! `SLAF_SCALEOUT_REQUESTS` (default 24 per client, 3 clients) sizes the
//! load and `SLAF_SCALEOUT_OUT=FILE` writes the report as Markdown
//! (`benches/serve_scaleout.sh` does both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use slaf_he::ckks::KeySeed;
use slaf_he::nn::WeightsFile;
use slaf_he::nn::data::{Dataset, open_test_split};
use slaf_he::service::client::{Client, Remote};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/results/training/cnn1-x2.json.gz"
);
const CLIENTS: usize = 3;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `serve` replica on a free port sharing `store`.
fn replica(store: &std::path::Path) -> (Proc, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slaf-he"))
        .args([
            "serve",
            "--model",
            WEIGHTS,
            "--mode",
            "per-image",
            "--addr",
            "127.0.0.1:0",
        ])
        .args(["--workers", "1", "--queue", "4", "--memory-mib", "1024"])
        .arg("--bundle-dir")
        .arg(store)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.split("http://").nth(1) {
            break rest
                .split(&[';', ','][..])
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), addr)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HAProxy on loopback in front of `backends` (health-checked on /healthz,
/// a failed connection re-dispatched to another replica).
fn haproxy(dir: &std::path::Path, backends: &[SocketAddr]) -> (Proc, u16) {
    let port = free_port();
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, a)| format!("    server r{i} {a} check inter 500ms fall 1 rise 2\n"))
        .collect();
    let cfg = format!(
        "global\n    maxconn 512\n\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 300s\n    timeout server 300s\n    retries 3\n    option redispatch\n    retry-on conn-failure empty-response response-timeout\n\nfrontend api\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\nbackend replicas\n    balance roundrobin\n    option httpchk GET /healthz\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let child = Command::new("haproxy")
        .arg("-f")
        .arg(&path)
        .arg("-db")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy (Debian package haproxy; .ci/run installs it)");
    // Wait until it answers.
    let t = Instant::now();
    while Remote::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5))
        .get("/healthz")
        .is_err()
    {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "haproxy did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (Proc(child), port)
}

/// What one load run did.
#[derive(Debug, Default)]
struct Load {
    requests: usize,
    retried: usize,
    wrong: usize,
    wall_s: f64,
    latencies_ms: Vec<f64>,
}

/// `CLIENTS` threads each sending `per_client` one-image requests to `url`;
/// `during` runs once a third of them are done.
fn load(url: &str, client: &Client, per_client: usize, during: impl FnOnce() + Send) -> Load {
    let split = open_test_split(Dataset::Mnist, None).unwrap();
    let w = WeightsFile::load(std::path::Path::new(WEIGHTS)).unwrap();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let t = Instant::now();
    let runs: Vec<Load> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (split, w, done) = (&split, &w, &done);
                s.spawn(move || {
                    let mut r = Remote::new(url, Duration::from_secs(300));
                    r.plan().unwrap();
                    let mut l = Load::default();
                    for k in 0..per_client {
                        let i = c * per_client + k;
                        let im = split.images.row(i).to_vec();
                        let x: Vec<f64> = im.iter().map(|&v| f64::from(v)).collect();
                        let want = argmax(&w.inference.forward(&x).unwrap());
                        let (logits, ex) = r
                            .infer(client, &[im.as_slice()])
                            .unwrap_or_else(|e| panic!("request {i} was lost: {e}"));
                        l.requests += 1;
                        l.retried += usize::from(ex.retries > 0);
                        l.wrong += usize::from(argmax(&logits[0]) != want);
                        l.latencies_ms.push(ex.ms);
                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    l
                })
            })
            .collect();
        while done.load(std::sync::atomic::Ordering::Relaxed) < CLIENTS * per_client / 3 {
            std::thread::sleep(Duration::from_millis(20));
        }
        during();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all = Load {
        wall_s: t.elapsed().as_secs_f64(),
        ..Load::default()
    };
    for r in runs {
        all.requests += r.requests;
        all.retried += r.retried;
        all.wrong += r.wrong;
        all.latencies_ms.extend(r.latencies_ms);
    }
    all
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn row(name: &str, l: &Load) -> String {
    let p = |q: f64| slaf_he::nn::stats::percentile(&l.latencies_ms, q);
    format!(
        "| {name} | {} | {:.1} | {:.2} | {:.0} | {:.0} | {} | {} |",
        l.requests,
        l.wall_s,
        l.requests as f64 / l.wall_s,
        p(0.5),
        p(0.95),
        l.retried,
        l.wrong
    )
}

#[test]
fn three_replicas_behind_haproxy_lose_no_request_when_one_is_killed() {
    let per_client: usize = std::env::var("SLAF_SCALEOUT_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut replicas: Vec<(Proc, SocketAddr)> = (0..3).map(|_| replica(&store)).collect();
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.1).collect();
    let (_lb, port) = haproxy(dir.path(), &addrs);
    let lb = format!("http://127.0.0.1:{port}");
    // Register once, through the balancer: every replica can use the bundle.
    let mut r = Remote::new(&lb, Duration::from_secs(300));
    let plan = r.plan().unwrap();
    let client = Client::generate(plan, &KeySeed::for_tests(80), false).unwrap();
    r.ensure_registered(&client).unwrap();
    for a in &addrs {
        let direct = Remote::new(&format!("http://{a}"), Duration::from_secs(60));
        assert!(
            direct.get(&format!("/v1/keys/{}", client.key_id())).is_ok(),
            "{a} sees the bundle"
        );
    }
    // One replica alone, then three behind HAProxy with one killed mid-run.
    let single = load(&format!("http://{}", addrs[0]), &client, per_client, || {});
    let rss: Vec<f64> = replicas.iter().map(|r| peak_rss_mib(r.0.0.id())).collect();
    let victim = replicas.remove(1);
    let victim_pid = victim.0.0.id();
    let mut victim = Some(victim);
    let behind = load(&lb, &client, per_client, || {
        drop(victim.take());
    });
    let gone = Command::new("kill")
        .args(["-0", &victim_pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map_or(true, |s| !s.success());
    assert!(gone, "the killed replica is gone");
    let rss_after: Vec<f64> = replicas.iter().map(|r| peak_rss_mib(r.0.0.id())).collect();
    assert_eq!(single.wrong + behind.wrong, 0, "{single:?} {behind:?}");
    assert_eq!(
        behind.requests,
        CLIENTS * per_client,
        "every request answered"
    );
    let report = format!(
        "{}.\n\n{CLIENTS} clients x {per_client} one-image per-image requests (CNN1-X2), each replica `serve --workers 1 --queue 4`, one bundle store; the same run, one after the other.\n\n| run | requests | wall (s) | requests/s | p50 (ms) | p95 (ms) | retried | wrong |\n|---|---:|---:|---:|---:|---:|---:|---:|\n{}\n{}\n\nPeak RSS per replica (MiB): r0, r1, r2 after the single-replica run {}; r0, r2 after the balanced run {}. Replica r1 was killed after a third of the second run's requests: {} of its requests were retried by the client, none lost, every answer decrypted to the plaintext model's class.\n",
        slaf_he::machine::timing_caption(
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        row("1 replica, direct", &single),
        row("3 replicas behind HAProxy, r1 killed", &behind),
        rss.iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        rss_after
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        behind.retried
    );
    eprintln!("{report}");
    if let Ok(out) = std::env::var("SLAF_SCALEOUT_OUT") {
        std::fs::write(out, report).unwrap();
    }
}
