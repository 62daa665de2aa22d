//! `slaf-he serve` under a 4 GiB address-space cap (`prlimit --as`): the
//! abusive clients of issue #40 at once (an authenticated tenant sending
//! maximum-size bodies from eight threads and forged bundle registrations,
//! strangers declaring 1.4 GB bodies that then stream, idle sockets)
//! cannot make it abort, and a good tenant is served correctly during the
//! abuse. The old server peaked at 6.8 GiB with 8
//! concurrent requests and died (SIGABRT) on five stalled 1.4 GB uploads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CAP: u64 = 4 << 30;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_slaf-he")
}

struct Served {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("slaf-he-serve-capped-{}.log", std::process::id()))
}

fn log_tail() -> String {
    let text = std::fs::read_to_string(log_path()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// `slaf-he serve` (batched CNN1-X2) under the cap with the tokens file
/// `tokens`; its address.
fn serve_capped(tokens: &std::path::Path) -> Served {
    let weights = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/results/training/cnn1-x2.json.gz"
    );
    let mut child = Command::new("prlimit")
        .arg(format!("--as={CAP}"))
        .arg("--")
        .arg(bin())
        .args(["serve", "--model", weights, "--addr", "127.0.0.1:0"])
        .args([
            "--memory-mib",
            "512",
            "--body-mib",
            "1536",
            "--tenant-requests",
            "1",
        ])
        .arg("--tokens")
        .arg(tokens)
        .args(["--header-timeout-s", "2", "--body-timeout-s", "20"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log_path()).unwrap()))
        .spawn()
        .expect("prlimit (util-linux) and the slaf-he binary");
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let addr = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.split("http://").nth(1) {
            let a = rest.split(';').next().unwrap().trim();
            break a.parse::<SocketAddr>().unwrap();
        }
    };
    // Keep draining stdout so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Served { child, addr }
}

/// Peak resident memory of a process (VmHWM, bytes).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb << 10)
}

/// POST `declared` bytes' worth of headers, then stream `body` until the
/// server closes; the status it answered (0: none).
fn post(addr: SocketAddr, path: &str, token: &str, declared: usize, body: &[u8]) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(120)));
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-length: {declared}\r\nconnection: close\r\n\r\n"
    );
    if s.write_all(head.as_bytes()).is_err() {
        return 0;
    }
    for chunk in body.chunks(1 << 20) {
        if s.write_all(chunk).is_err() {
            break;
        }
    }
    let mut buf = [0u8; 64];
    let k = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..k])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn abusive_clients_cannot_abort_a_capped_server_and_a_good_client_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let token = |name: &str| {
        let out = Command::new(bin())
            .args(["token", "--name", name])
            .output()
            .unwrap();
        assert!(out.status.success());
        let t = String::from_utf8(out.stdout).unwrap().trim().to_string();
        (t, String::from_utf8(out.stderr).unwrap())
    };
    let (alice, alice_entry) = token("alice");
    let (mallory, mallory_entry) = token("mallory");
    let tokens = dir.path().join("tokens.toml");
    let entries: String = [alice_entry, mallory_entry]
        .iter()
        .flat_map(|e| {
            e.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| format!("{l}\n"))
        })
        .collect();
    std::fs::write(&tokens, entries).unwrap();
    let served = serve_capped(&tokens);
    let addr = served.addr;
    let url = format!("http://{addr}");
    let keys = dir.path().join("keys");
    let ok = Command::new(bin())
        .args(["keygen", "--server", &url, "--out"])
        .arg(&keys)
        .env("SLAF_HE_TOKEN", &alice)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keys.join("plan.json")).unwrap()).unwrap();
    let request_bytes = plan["limits"]["request_bytes"].as_u64().unwrap() as usize;
    let bundle = std::fs::read(keys.join("bundle.bin")).unwrap();
    let garbage = Arc::new(vec![7u8; request_bytes]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let t0 = Instant::now();
    let mut abusers = Vec::new();
    // Mallory sends maximum-size bodies from eight threads, over and over.
    for _ in 0..8 {
        let (g, stop, m) = (Arc::clone(&garbage), Arc::clone(&stop), mallory.clone());
        abusers.push(std::thread::spawn(move || {
            let mut answers = Vec::new();
            let path = format!("/v1/infer/{}", "a".repeat(64));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                answers.push(post(addr, &path, &m, g.len(), &g));
            }
            answers
        }));
    }
    // Five strangers declaring 1.4 GB and streaming 700 MiB.
    for _ in 0..5 {
        abusers.push(std::thread::spawn(move || {
            let chunk = vec![1u8; 700 << 20];
            vec![post(addr, "/v1/keys", "none", 1_400_000_000, &chunk)]
        }));
    }
    // Three hundred idle sockets.
    let idle: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    // Forged bundle registrations (one byte changed each time).
    {
        let (stop, m) = (Arc::clone(&stop), mallory.clone());
        let mut forged = bundle.clone();
        abusers.push(std::thread::spawn(move || {
            let mut answers = Vec::new();
            let at = forged.len() / 2;
            let mut k = 0u8;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                forged[at] = k;
                k = k.wrapping_add(1);
                answers.push(post(addr, "/v1/keys", &m, forged.len(), &forged));
            }
            answers
        }));
    }
    std::thread::sleep(Duration::from_secs(3));
    // The good client, during the abuse (it retries a shed request).
    let weights = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/results/training/cnn1-x2.json.gz"
    );
    let good = Command::new(bin())
        .args(["query", "--server", &url, "--keys"])
        .arg(&keys)
        .args([
            "--images",
            "16",
            "--json",
            "--retries",
            "10",
            "--reference",
            weights,
        ])
        .env("SLAF_HE_TOKEN", &alice)
        .output()
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut statuses = std::collections::BTreeMap::new();
    for a in abusers {
        for s in a.join().unwrap() {
            *statuses.entry(s).or_insert(0usize) += 1;
        }
    }
    drop(idle);
    let alive = Command::new("kill")
        .args(["-0", &served.child.id().to_string()])
        .status()
        .unwrap();
    let peak = peak_rss(served.child.id());
    eprintln!(
        "abuse for {:.0} s: answers by status {statuses:?}; server peak RSS {:.2} GiB under a {} GiB cap",
        t0.elapsed().as_secs_f64(),
        peak as f64 / (1u64 << 30) as f64,
        CAP >> 30
    );
    assert!(
        alive.success(),
        "the server died under abuse:\n{}",
        log_tail()
    );
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "good client: {stdout} {}",
        String::from_utf8_lossy(&good.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["images"], 16);
    assert_eq!(summary["agreement"], 1.0, "{summary}");
    // The abuse was refused, not served: sheds, 413s, 400s.
    assert!(
        statuses.keys().any(|&s| s == 413 || s == 503 || s == 400),
        "{statuses:?}"
    );
    assert!(peak < CAP, "peak RSS {peak}");
}
