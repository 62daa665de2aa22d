//! `slaf-he serve`, `slaf-he keygen` and `slaf-he query`: encrypted
//! inference split into a server that never holds a secret key and a
//! client that never needs the model's weights (see [`slaf_he::service`]).

use anyhow::Context;
use clap::Args;
use slaf_he::ckks::KeySeed;
use slaf_he::he_nn::Mode;
use slaf_he::he_nn::plan::ParamsChoice;
use slaf_he::nn::WeightsFile;
use slaf_he::service::client::{Client, QueryRequest, Remote, RemoteOptions, query};
use slaf_he::service::http::{Addresses, HttpConfig, serve_forever};
use slaf_he::service::listener::tls_config;
use slaf_he::service::server::{FloodPolicy, Server, ServerConfig};
use slaf_he::service::store::BundleStore;
use slaf_he::service::tenants::Tenants;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

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
    /// Bundles a tenant may have registered, at least 1; one more deletes its oldest.
    #[arg(long, default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_bundles: usize,
    /// MiB of bundles (as uploaded) a tenant may have registered; a larger bundle is refused (403).
    #[arg(long, default_value_t = 4096, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub tenant_mib: usize,
    /// MiB of evaluation keys held in memory, all tenants together. Full: the least
    /// recently used bundle leaves memory (with --bundle-dir; reloaded when next used),
    /// or, memory only, the registering tenant's own; else 503.
    #[arg(long, default_value_t = 2048, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub memory_mib: usize,
    /// Requests evaluated at once, at least 1 (each uses every core).
    #[arg(long, default_value_t = 2, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub workers: usize,
    /// Requests per route admitted beyond --workers to wait for one; more are shed (503).
    #[arg(long, default_value_t = 2)]
    pub queue: usize,
    /// Seconds a request may wait for a worker, and may run; at least 1.
    #[arg(long, default_value_t = 600, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    pub timeout_s: u64,
    /// Seconds to receive a request body; at least 1 (408 past it).
    #[arg(long, default_value_t = 120, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    pub body_timeout_s: u64,
    /// Seconds to receive a request's headers (and to keep an idle connection); at least 1.
    #[arg(long, default_value_t = 10, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    pub header_timeout_s: u64,
    /// Connections open at once, at least 1; more are closed at once.
    #[arg(long, default_value_t = 256, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,
    /// MiB of request bodies held in memory at once, all routes together (raised to
    /// one maximum-size body); a body that does not fit is shed (503) unread.
    #[arg(long, default_value_t = 1536, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub body_mib: usize,
    /// Requests one tenant may have in flight at once, at least 1; more are shed (503).
    #[arg(long, default_value_t = 4, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub tenant_requests: usize,
    /// Folder of the bundle store (objects bundles/TENANT/KEY_ID.bundle), shared by
    /// replicas [default: memory only].
    #[arg(long, value_name = "DIR")]
    pub bundle_dir: Option<PathBuf>,
    /// Tokens file (TOML, made with `slaf-he token`): every client needs a bearer
    /// token, each tenant has its own bundles and quota [default: open, one tenant].
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key the server speaks HTTPS.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Address of the Prometheus endpoint GET /metrics [default: not served].
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Noise flooding: add uniform noise in [-2^B, 2^B) to every coefficient of the
    /// returned ciphertexts (and re-randomize them with the client's public key),
    /// hiding the low B bits of the circuit's noise from the client. Refused when
    /// it would leave under 4 bits of logit precision (B <= 16 for CNN1 per-image).
    #[arg(long, value_name = "B", conflicts_with = "flood")]
    pub flood_bits: Option<u32>,
    /// Statistical noise flooding: a Gaussian on every coefficient of the answers,
    /// sized from the circuit's measured output noise for --flood-security bits over
    /// 2^--flood-queries-log2 answers per key (docs/service.md). Without --params the
    /// planner picks parameters with room for it (a larger scale, often a larger ring).
    #[arg(long)]
    pub flood: bool,
    /// Statistical security of --flood, in bits (OpenFHE's default: 30).
    #[arg(long, default_value_t = 30, requires = "flood", value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=128))]
    pub flood_security: u32,
    /// log2 of the answers per key --flood covers.
    #[arg(long, default_value_t = 10, requires = "flood", value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(0..=40))]
    pub flood_queries_log2: u32,
}

/// Log to standard error (`RUST_LOG` filters; default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Run `slaf-he serve`.
pub fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let weights = WeightsFile::load(&args.model)
        .with_context(|| format!("loading the model {}", args.model.display()))?;
    let params = args
        .params
        .clone()
        .map(|p| p.allowing_insecure(args.insecure_params));
    let bundle_store = match &args.bundle_dir {
        Some(dir) => Some(Arc::new(BundleStore::local(dir)?)),
        None => None,
    };
    let config = ServerConfig {
        max_bundles: args.max_bundles,
        tenant_bytes: args.tenant_mib << 20,
        memory_bytes: args.memory_mib << 20,
        bundle_store,
        allow_insecure: args.insecure_params,
        flood_bits: args.flood_bits,
        flooding: args.flood.then_some(FloodPolicy {
            security_bits: args.flood_security,
            queries_log2: args.flood_queries_log2,
            ..FloodPolicy::default()
        }),
        ..ServerConfig::default()
    };
    let tenants = match &args.tokens {
        Some(path) => Some(Arc::new(Tenants::from_file(path, config.quota())?)),
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(tls_config(c, k)?),
        _ => None,
    };
    let server = Server::new(&weights, args.mode, params, config)?;
    let plan = server.plan().clone();
    let http = HttpConfig {
        workers: args.workers,
        queue: args.queue,
        timeout: Duration::from_secs(args.timeout_s),
        body_timeout: Duration::from_secs(args.body_timeout_s),
        header_timeout: Duration::from_secs(args.header_timeout_s),
        max_connections: args.max_connections,
        body_bytes: args.body_mib << 20,
        tenant_requests: args.tenant_requests,
        tenants,
        tls,
    };
    let scheme = if http.tls.is_some() { "https" } else { "http" };
    let at = Addresses {
        api: args.addr,
        metrics: args.metrics_addr,
    };
    let limits = plan.limits;
    let admitted = args.workers + args.queue;
    serve_forever(Arc::new(server), &http, at, |addr, metrics| {
        println!(
            "serving {} ({}, N = 2^{}, depth {}, {} Galois steps) on {scheme}://{addr}{}; Ctrl-C stops",
            plan.model,
            plan.mode().name(),
            plan.params.log_n,
            plan.depth,
            plan.keys.galois_steps.len(),
            metrics.map(|m| format!(", metrics on http://{m}/metrics")).unwrap_or_default()
        );
        if plan.flooding.is_none() && plan.flood_bits.is_none() {
            println!(
                "no noise flooding: answers carry the circuit's noise, which says something about the weights; --flood hides it (2x bytes, about 6x latency: results/service/flooding.md)"
            );
        }
        if let Some(f) = plan.flooding {
            println!(
                "flooding: output noise 2^{:.1}, Gaussian sigma 2^{:.1} per coefficient ({} bits, 2^{} answers per key), logit noise 2^{:.1}, answers at level {}",
                f.noise_l2_bits, f.sigma_bits, f.security_bits, f.queries_log2, f.logit_noise_bits, f.output_level
            );
        }
        println!(
            "limits: bundle {:.1} MiB, request {:.1} MiB; {admitted} requests admitted per route; at most {:.0} MiB of bodies and {} MiB of keys in memory",
            mib(limits.bundle_bytes),
            mib(limits.request_bytes),
            mib((args.body_mib << 20).max(limits.bundle_bytes.max(limits.request_bytes))),
            args.memory_mib
        );
    })
    .with_context(|| format!("serving on {}", args.addr))
}

/// Arguments of `slaf-he token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The tenant's name (1-64 of a-z, 0-9, _ and -).
    #[arg(long)]
    pub name: String,
    /// The tenant's bundle quota [default: the server's --max-bundles].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_bundles: Option<usize>,
    /// The tenant's MiB quota [default: the server's --tenant-mib].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_bundle_mib: Option<usize>,
}

/// Run `slaf-he token`: a new token on standard output, its tokens-file
/// entry (the digest only) on standard error.
pub fn run_token(args: TokenArgs) -> anyhow::Result<()> {
    let (token, digest) = slaf_he::service::tenants::new_token()?;
    let mut entry = format!(
        "[[tenant]]\nname = {:?}\ntoken_sha256 = \"{digest}\"\n",
        args.name
    );
    if let Some(b) = args.max_bundles {
        entry += &format!("max_bundles = {b}\n");
    }
    if let Some(m) = args.max_bundle_mib {
        entry += &format!("max_bundle_mib = {m}\n");
    }
    // Check the entry as the server will read it.
    Tenants::from_toml(&entry, "the new entry", ServerConfig::default().quota())?;
    eprintln!(
        "# append to the server's tokens file (it holds no token):\n{entry}# give the client the token below (query --token, or SLAF_HE_TOKEN)"
    );
    println!("{token}");
    Ok(())
}

/// How `keygen` and `query` reach a server.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Bearer token from the server's operator.
    #[arg(long, env = "SLAF_HE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM certificate authority to trust for https:// [default: the Mozilla roots].
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// Retries of a request that failed in transport or with 502/503/504 (backing off
    /// from 0.2 s to 12.8 s, never below the server's Retry-After).
    #[arg(long, default_value_t = 8)]
    pub retries: u32,
}

impl RemoteArgs {
    fn options(&self, timeout: Duration) -> RemoteOptions {
        RemoteOptions {
            timeout,
            token: self.token.clone().map(Zeroizing::new),
            ca_cert: self.ca_cert.clone(),
            retries: self.retries,
        }
    }
}

fn mib(b: usize) -> f64 {
    b as f64 / (1 << 20) as f64
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
    #[command(flatten)]
    pub remote: RemoteArgs,
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
        (Some(url), _) => {
            Remote::with_options(url, &args.remote.options(Duration::from_secs(60)))?.plan()?
        }
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
    #[command(flatten)]
    pub remote: RemoteArgs,
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
        remote: args.remote.options(Duration::from_secs(args.timeout_s)),
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
        "{} requests ({} retried): latency p50 {:.0} ms, p95 {:.0} ms; {:.2} images/s over {:.1} s",
        s.requests, s.retries, s.latency_p50_ms, s.latency_p95_ms, s.images_per_s, s.wall_s
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
