//! `slaf-he serve`, `slaf-he keygen` and `slaf-he query`: encrypted
//! inference split into a server that never holds a secret key and a
//! client that never needs the model's weights (see [`slaf_he::service`]).

use anyhow::Context;
use clap::Args;
use slaf_he::ckks::KeySeed;
use slaf_he::he_nn::Mode;
use slaf_he::he_nn::plan::ParamsChoice;
use slaf_he::nn::WeightsFile;
use slaf_he::service::client::{Client, QueryRequest, Remote, query};
use slaf_he::service::http::{HttpConfig, serve_forever};
use slaf_he::service::server::{Server, ServerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `slaf-he serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Weights file written by `slaf-he train` (the server's secret: the model).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Address to listen on (127.0.0.1 by default: put a TLS proxy in front for other hosts).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Engine: batched (one image per slot, relinearization key only) or
    /// per-image (one image per ciphertext, Galois keys too).
    #[arg(long, value_enum, default_value_t = Mode::Batched)]
    pub mode: Mode,
    /// CKKS parameters, as for `infer` [default: the preset matching the model].
    #[arg(long, value_parser = super::ParamsParser)]
    pub params: Option<ParamsChoice>,
    /// Accept parameter sets below 128-bit security (experiments only).
    #[arg(long)]
    pub insecure_params: bool,
    /// Bundles kept in memory, at least 1; one more evicts the least recently used.
    #[arg(long, default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_bundles: usize,
    /// Largest request body in MiB, at least 1 [default: twice a full request or bundle of this model].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_body_mib: Option<usize>,
    /// Requests evaluated at once, at least 1 (each uses every core).
    #[arg(long, default_value_t = 2, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub workers: usize,
    /// Seconds a request may wait for a worker, and may run; at least 1.
    #[arg(long, default_value_t = 600, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    pub timeout_s: u64,
    /// Folder of content-addressed bundle files, shared by replicas [default: memory only].
    #[arg(long, value_name = "DIR")]
    pub bundle_dir: Option<PathBuf>,
    /// Noise flooding: add uniform noise in [-2^B, 2^B) to every coefficient of the
    /// returned ciphertexts (and re-randomize them with the client's public key),
    /// hiding the low B bits of the circuit's noise from the client. Refused when
    /// it would leave under 4 bits of logit precision (B <= 16 for CNN1 per-image).
    #[arg(long, value_name = "B")]
    pub flood_bits: Option<u32>,
}

/// Run `slaf-he serve`.
pub fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let weights = WeightsFile::load(&args.model)
        .with_context(|| format!("loading the model {}", args.model.display()))?;
    let params = args
        .params
        .clone()
        .map(|p| p.allowing_insecure(args.insecure_params));
    let config = ServerConfig {
        max_bundles: args.max_bundles,
        max_body_bytes: args.max_body_mib.map(|m| m << 20),
        bundle_dir: args.bundle_dir.clone(),
        allow_insecure: args.insecure_params,
        flood_bits: args.flood_bits,
        ..ServerConfig::default()
    };
    let server = Server::new(&weights, args.mode, params, config)?;
    let plan = server.plan().clone();
    let http = HttpConfig {
        workers: args.workers,
        timeout: Duration::from_secs(args.timeout_s),
    };
    serve_forever(Arc::new(server), &http, args.addr, |addr| {
        println!(
            "serving {} ({}, N = 2^{}, depth {}, {} Galois steps) on http://{addr}; body limit {:.0} MiB; Ctrl-C stops",
            plan.model,
            plan.mode().name(),
            plan.params.log_n,
            plan.depth,
            plan.keys.galois_steps.len(),
            plan.max_body_bytes as f64 / (1 << 20) as f64
        );
    })
    .with_context(|| format!("serving on {}", args.addr))
}

/// Arguments of `slaf-he keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Server to fetch the plan from (e.g. http://127.0.0.1:8080).
    #[arg(long, conflicts_with = "plan", required_unless_present = "plan")]
    pub server: Option<String>,
    /// A plan saved from GET /v1/model (offline key generation).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// New key folder: secret.key (mode 0600), bundle.bin, plan.json. Never overwritten.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Key seed: 64 hex digits [default: the OS CSPRNG]. A decimal test
    /// seed makes a publicly known secret key and needs --test-seed.
    #[arg(long, value_name = "SEED")]
    pub seed: Option<String>,
    /// Accept a decimal --seed (tests only: anyone can regenerate its secret key).
    #[arg(long, requires = "seed")]
    pub test_seed: bool,
    /// Accept parameter sets below 128-bit security (experiments only).
    #[arg(long)]
    pub insecure_params: bool,
}

/// Run `slaf-he keygen`.
pub fn run_keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let seed = match args.seed.as_deref() {
        None => KeySeed::from_os_rng(),
        Some(text) => {
            if text.trim().parse::<u64>().is_ok() && !args.test_seed {
                anyhow::bail!(
                    "--seed {text} is a decimal test seed: its secret key is publicly known; pass 64 hexadecimal digits, or add --test-seed for a test"
                );
            }
            KeySeed::parse(text).map_err(|e| anyhow::anyhow!("--seed: {e}"))?
        }
    };
    if args.test_seed {
        eprintln!("warning: a decimal test seed: this key folder's secret key is publicly known");
    }
    if args.out.exists() {
        anyhow::bail!(
            "{} already exists; refusing to overwrite a key folder",
            args.out.display()
        );
    }
    let plan = match (&args.server, &args.plan) {
        (Some(url), _) => Remote::new(url, Duration::from_secs(60)).plan()?,
        (None, Some(p)) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading the plan {}", p.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("parsing the plan {}", p.display()))?
        }
        (None, None) => anyhow::bail!("give --server URL or --plan FILE"),
    };
    let client = Client::generate(plan, &seed, args.insecure_params)?;
    client.write_key_dir(&args.out, &seed)?;
    let p = client.plan();
    println!(
        "wrote {}: key id {}; bundle {:.1} MiB ({} mode, {} Galois keys); secret.key is mode 0600",
        args.out.display(),
        client.key_id(),
        client.bundle().len() as f64 / (1 << 20) as f64,
        p.mode().name(),
        p.keys.galois_steps.len()
    );
    Ok(())
}

/// Arguments of `slaf-he query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Server URL (e.g. http://127.0.0.1:8080).
    #[arg(long)]
    pub server: String,
    /// Key folder written by `slaf-he keygen`.
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
    /// Test images to classify.
    #[arg(long, default_value_t = 16)]
    pub images: usize,
    /// Index of the first test image.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Per-image mode: images per request.
    #[arg(long, default_value_t = 1)]
    pub per_request: usize,
    /// Folder of the IDX files [default: the plan's data set in its default place].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Weights to run the plaintext model locally and report agreement (a
    /// testing aid: a real client has no weights).
    #[arg(long, value_name = "FILE")]
    pub reference: Option<PathBuf>,
    /// Seconds per request before giving up; at least 1.
    #[arg(long, default_value_t = 900, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    pub timeout_s: u64,
    /// Accept parameter sets below 128-bit security (experiments only).
    #[arg(long)]
    pub insecure_params: bool,
    /// Print one JSON summary line.
    #[arg(long)]
    pub json: bool,
}

/// Run `slaf-he query`.
pub fn run_query(args: QueryArgs, quiet: bool) -> anyhow::Result<()> {
    let client = Client::open(&args.keys, args.insecure_params)
        .with_context(|| format!("opening the key folder {}", args.keys.display()))?;
    let req = QueryRequest {
        server: args.server.clone(),
        images: args.images,
        offset: args.offset,
        data_dir: args.data.clone(),
        reference: args.reference.clone(),
        images_per_request: args.per_request,
        timeout: Duration::from_secs(args.timeout_s),
        quiet: quiet || args.json,
        allow_insecure: args.insecure_params,
    };
    let s = query(client, &req)?;
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
        return Ok(());
    }
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    println!(
        "{} ({}) at {}, key id {}",
        s.model,
        s.mode.name(),
        args.server,
        &s.key_id[..16]
    );
    println!(
        "accuracy {:.2}% ({}/{}){}",
        100.0 * s.accuracy,
        s.correct,
        s.images,
        s.agreement
            .map(|a| format!(
                ", agreement with the local plaintext model {:.2}% (max logit error {:.2e})",
                100.0 * a,
                s.max_logit_error.unwrap_or(0.0)
            ))
            .unwrap_or_default()
    );
    println!(
        "{} requests: latency p50 {:.0} ms, p95 {:.0} ms; {:.2} images/s over {:.1} s",
        s.requests, s.latency_p50_ms, s.latency_p95_ms, s.images_per_s, s.wall_s
    );
    println!(
        "bytes: bundle {:.1} MiB{}, up {:.1} MiB, down {:.2} MiB ({:.2} MiB up per request)",
        mib(s.bundle_bytes),
        if s.bundle_bytes == 0 {
            " (already registered)"
        } else {
            ""
        },
        mib(s.bytes_up),
        mib(s.bytes_down),
        mib(s.bytes_up) / s.requests.max(1) as f64
    );
    Ok(())
}
