//! The client side: the secret key, the evaluation-key bundle made for a
//! server's plan, encryption of images in the plan's layout, decryption of
//! the logits, the key folder on disk, and the HTTP calls.
//!
//! Invariants: the secret key never leaves this module's values except as
//! the 256-bit seed written to `secret.key` (mode 0600) in a key folder
//! that is never overwritten. Keys are regenerated from that seed
//! (`KeySeed::derive("client keys")`); encryption randomness is fresh from
//! the OS CSPRNG on every run (re-using it across runs would leak the
//! difference of two images), and wiped on drop. Uploads are
//! seed-compressed symmetric ciphertexts.

use super::{
    BundleParts, ServiceError, ServicePlan, WIRE_VERSION, decode_bundle, decode_message,
    encode_bundle, encode_message, key_id,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use slaf_ckks::serial::{
    ciphertext_from_bytes, galois_keys_to_bytes, parameters_from_json, parameters_to_json,
    public_key_to_bytes, relinearization_key_to_bytes, seeded_ciphertext_to_bytes,
};
use slaf_ckks::{Ciphertext, CkksContext, CkksParameters, KeyGenerator, KeySeed};
use slaf_experiments::harness::{Comparison, TestImages, evaluate};
use slaf_he_nn::Mode;
use slaf_he_nn::{ClientSide, Encryption, Engine, EngineOutput, HeNnError, SeedLabels, StageTimes};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// File names inside a key folder.
pub const SECRET_FILE: &str = "secret.key";
/// The evaluation bundle (what the server receives).
pub const BUNDLE_FILE: &str = "bundle.bin";
/// The plan the keys were made for.
pub const PLAN_FILE: &str = "plan.json";

/// The derivation label of a client's keys; its encryption randomness
/// is fresh from the OS CSPRNG on every run.
pub const CLIENT_LABELS: SeedLabels = SeedLabels {
    keys: "client keys",
    encryption: None,
};

/// A client: the client's side of the plan's layout (secret key,
/// encryption, decryption), the bundle and the plan it was made for.
pub struct Client {
    plan: ServicePlan,
    side: ClientSide,
    bundle: Vec<u8>,
    key_id: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Client({} {}, key id {})",
            self.plan.model,
            self.plan.mode().name(),
            self.key_id
        )
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Most bytes of evaluation keys a client makes for a plan (public,
/// relinearisation and Galois keys in memory): a plan asking for more is
/// refused before any key is generated (a hostile server could otherwise
/// exhaust the client's memory).
pub const MAX_KEY_BYTES: usize = 8 << 30;

/// Check a plan as a client must before making anything for it: the
/// version, its counts and answer size ([`super::MAX_RESPONSE_BYTES`]),
/// its parameters against the HE standard, and its key request
/// ([`MAX_KEY_BYTES`]); the parameters it names.
pub fn check_plan(
    plan: &ServicePlan,
    allow_insecure: bool,
) -> Result<CkksParameters, ServiceError> {
    plan_params(plan, allow_insecure)
}

fn plan_params(plan: &ServicePlan, allow_insecure: bool) -> Result<CkksParameters, ServiceError> {
    if plan.version != WIRE_VERSION {
        return Err(ServiceError::bad(format!(
            "the plan is version {}, this client reads {WIRE_VERSION}",
            plan.version
        )));
    }
    let json = serde_json::to_string(&plan.params)
        .map_err(|e| ServiceError::bad(format!("plan parameters: {e}")))?;
    check_plan_bounds(plan)?;
    let params = parameters_from_json(&json, allow_insecure)
        .map_err(|e| ServiceError::bad(format!("the plan's parameters are refused: {e}")))?;
    check_key_request(plan, &params)?;
    Ok(params)
}

/// Most images per request, logits per image and input ciphertexts a client accepts in a plan.
const MAX_PLAN_COUNT: usize = 1 << 16;

/// A plan's counts and its answer size are bounded before anything is
/// allocated for them.
fn check_plan_bounds(plan: &ServicePlan) -> Result<(), ServiceError> {
    let counts = [
        ("images per request", plan.images_per_request, 1),
        ("logits per image", plan.outputs(), 1),
        ("input ciphertexts", plan.max_inputs(), 1),
        ("Galois steps", plan.keys.galois_steps.len(), 0),
    ];
    if let Some((what, n, min)) = counts
        .iter()
        .find(|(_, n, min)| *n < *min || *n > MAX_PLAN_COUNT)
    {
        return Err(ServiceError::bad(format!(
            "the plan's {what} is {n}; a client accepts {min}..={MAX_PLAN_COUNT}"
        )));
    }
    if plan.limits.response_bytes > super::MAX_RESPONSE_BYTES {
        return Err(ServiceError::bad(format!(
            "the plan's answers may be {} bytes; a client reads at most {}",
            plan.limits.response_bytes,
            super::MAX_RESPONSE_BYTES
        )));
    }
    Ok(())
}

/// The plan's Galois steps are distinct, non-zero rotations of fewer than
/// N/2 slots, and its keys fit [`MAX_KEY_BYTES`].
fn check_key_request(plan: &ServicePlan, params: &CkksParameters) -> Result<(), ServiceError> {
    let steps = &plan.keys.galois_steps;
    let slots = params.slots() as i64;
    if let Some(s) = steps.iter().find(|&&s| s == 0 || s.abs() >= slots) {
        return Err(ServiceError::bad(format!(
            "the plan asks for a Galois key of rotation {s}; rotations are 1..{slots} slots either way"
        )));
    }
    let distinct: std::collections::BTreeSet<i64> = steps.iter().copied().collect();
    if distinct.len() != steps.len() {
        return Err(ServiceError::bad(format!(
            "the plan lists {} Galois steps, {} of them distinct",
            steps.len(),
            distinct.len()
        )));
    }
    // Each switching key holds dnum pairs of polynomials over every prime.
    let per_key = params.dnum() * 2 * params.key_poly_bytes();
    let total =
        (1 + steps.len()).saturating_mul(per_key) + 2 * params.poly_bytes(params.max_level());
    if total > MAX_KEY_BYTES {
        return Err(ServiceError::bad(format!(
            "the plan asks for {} Galois keys: {:.1} GiB of evaluation keys, more than the {} GiB a client makes",
            steps.len(),
            total as f64 / (1u64 << 30) as f64,
            MAX_KEY_BYTES >> 30
        )));
    }
    Ok(())
}

impl Client {
    /// Keys for `plan` from `seed`: the secret key and the bundle
    /// (public, relinearisation and exactly the plan's Galois keys).
    /// Parameters below 128-bit security are refused unless `allow_insecure`.
    pub fn generate(
        plan: ServicePlan,
        seed: &KeySeed,
        allow_insecure: bool,
    ) -> Result<Self, ServiceError> {
        let params = plan_params(&plan, allow_insecure)?;
        let ctx = CkksContext::new(params.clone()).map_err(slaf_he_nn::HeNnError::from)?;
        let (side, keys) = ClientSide::generate(
            &ctx,
            plan.layout.clone(),
            &plan.keys,
            Some(seed.clone()),
            CLIENT_LABELS,
            Encryption::Symmetric,
        );
        let galois_keys = keys
            .galois
            .as_ref()
            .map_or_else(Vec::new, |g| galois_keys_to_bytes(&ctx, g));
        let bundle = encode_bundle(&BundleParts {
            params_json: parameters_to_json(&params),
            public_key: public_key_to_bytes(&ctx, &keys.public),
            relinearization_key: relinearization_key_to_bytes(&ctx, &keys.relinearization),
            galois_keys,
        });
        Ok(Self::with_parts(plan, side, bundle))
    }

    fn with_parts(plan: ServicePlan, side: ClientSide, bundle: Vec<u8>) -> Self {
        Self {
            key_id: key_id(&bundle),
            plan,
            side,
            bundle,
        }
    }

    /// Write a new key folder: `secret.key` (the seed, 64 hex digits, mode
    /// 0600), `bundle.bin` and `plan.json`. Refuses an existing folder.
    pub fn write_key_dir(&self, dir: &Path, seed: &KeySeed) -> Result<(), ServiceError> {
        if dir.exists() {
            return Err(io_err(
                dir,
                "already exists; refusing to overwrite a key folder (choose another --out)",
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let secret = dir.join(SECRET_FILE);
        let hex = Zeroizing::new(seed.to_hex());
        write_private(&secret, hex.as_bytes())?;
        let bundle = dir.join(BUNDLE_FILE);
        std::fs::write(&bundle, &self.bundle).map_err(|e| io_err(&bundle, e))?;
        let plan = dir.join(PLAN_FILE);
        let text = serde_json::to_string_pretty(&self.plan).map_err(|e| io_err(&plan, e))?;
        std::fs::write(&plan, text + "\n").map_err(|e| io_err(&plan, e))?;
        Ok(())
    }

    /// Open a key folder: the plan, the bundle as written, and the secret
    /// key regenerated from the seed.
    pub fn open(dir: &Path, allow_insecure: bool) -> Result<Self, ServiceError> {
        let plan_path = dir.join(PLAN_FILE);
        let text = std::fs::read_to_string(&plan_path).map_err(|e| io_err(&plan_path, e))?;
        let plan: ServicePlan = serde_json::from_str(&text).map_err(|e| io_err(&plan_path, e))?;
        let secret = dir.join(SECRET_FILE);
        check_private(&secret)?;
        let hex = Zeroizing::new(std::fs::read_to_string(&secret).map_err(|e| io_err(&secret, e))?);
        let seed = KeySeed::parse(&hex).map_err(|e| io_err(&secret, e))?;
        let bundle_path = dir.join(BUNDLE_FILE);
        let bundle = std::fs::read(&bundle_path).map_err(|e| io_err(&bundle_path, e))?;
        let params = plan_params(&plan, allow_insecure)?;
        let ctx = CkksContext::new(params).map_err(slaf_he_nn::HeNnError::from)?;
        let mut kg = KeyGenerator::from_seed(&ctx, &seed.derive(CLIENT_LABELS.keys));
        let pk = kg.public_key();
        // The secret key must be the one the bundle was made with: else the
        // server evaluates under another key and every answer decrypts to noise.
        let stored = decode_bundle(&bundle).map_err(|e| io_err(&bundle_path, e))?;
        if stored.public_key != public_key_to_bytes(&ctx, &pk) {
            return Err(io_err(
                &secret,
                format!(
                    "does not belong to {}: the public key it regenerates differs from the bundle's (a key folder mixed with another?)",
                    bundle_path.display()
                ),
            ));
        }
        let side = ClientSide::from_keys(
            &ctx,
            plan.layout.clone(),
            kg.into_secret_key(),
            pk,
            Encryption::Symmetric,
            ChaCha20Rng::from_os_rng(),
        );
        Ok(Self::with_parts(plan, side, bundle))
    }

    /// The plan the keys were made for.
    pub fn plan(&self) -> &ServicePlan {
        &self.plan
    }

    /// The serialized evaluation-key bundle.
    pub fn bundle(&self) -> &[u8] {
        &self.bundle
    }

    /// The bundle's key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Images one request carries at most.
    pub fn images_per_request(&self) -> usize {
        self.plan.images_per_request
    }

    /// One request body for `images` (pixels in [0, 1]): batched, one
    /// ciphertext per pixel with image `b` in slot `b`; per-image, one
    /// ciphertext per image in the im2col layout.
    pub fn encrypt(&self, images: &[&[f32]]) -> Result<Vec<u8>, ServiceError> {
        if images.is_empty() || images.len() > self.plan.images_per_request {
            return Err(ServiceError::bad(format!(
                "a request holds 1..={} images, got {}",
                self.plan.images_per_request,
                images.len()
            )));
        }
        let ctx = self.side.context();
        let items: Vec<Vec<u8>> = self
            .side
            .encrypt_seeded(images)
            .map_err(|e| ServiceError::bad(format!("encryption: {e}")))?
            .iter()
            .map(|ct| seeded_ciphertext_to_bytes(ctx, ct))
            .collect();
        Ok(encode_message(&items))
    }

    /// The logits of `count` images from a response body.
    pub fn decrypt(&self, body: &[u8], count: usize) -> Result<Vec<Vec<f64>>, ServiceError> {
        let expected = self.plan.layout.outputs_for(count);
        let items = decode_message(body, expected)?;
        if items.len() != expected {
            return Err(ServiceError::bad(format!(
                "the response holds {} ciphertexts, expected {expected}",
                items.len()
            )));
        }
        let ctx = self.side.context();
        let cts: Vec<Ciphertext> = items
            .iter()
            .map(|b| {
                ciphertext_from_bytes(ctx, b)
                    .map_err(|e| ServiceError::bad(format!("response ciphertext: {e}")))
            })
            .collect::<Result<_, _>>()?;
        self.side
            .decrypt(&cts, count)
            .map_err(|e| ServiceError::bad(format!("response: {e}")))
    }
}

/// Refuse a secret-key file that others may read or write (as ssh does).
fn check_private(path: &Path) -> Result<(), ServiceError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| io_err(path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(io_err(
                path,
                format!(
                    "mode {:04o}: a secret key must be private to its owner (chmod 600 {})",
                    mode & 0o7777,
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ServiceError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| io_err(path, e))?;
    f.write_all(bytes).map_err(|e| io_err(path, e))
}

/// How a client reaches a server.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// Per-request timeout.
    pub timeout: Duration,
    /// Bearer token (a server with a tokens file needs one).
    pub token: Option<Zeroizing<String>>,
    /// PEM file of the certificate authority to trust for `https://`
    /// (None: the Mozilla roots).
    pub ca_cert: Option<std::path::PathBuf>,
    /// Retries of a request that failed in transport or with 502, 503 or
    /// 504 (every call is idempotent: bundles are content-addressed and
    /// inference has no side effect).
    pub retries: u32,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(900),
            token: None,
            ca_cert: None,
            retries: 8,
        }
    }
}

/// A blocking HTTP connection to a server.
pub struct Remote {
    base: String,
    agent: ureq::Agent,
    token: Option<Zeroizing<String>>,
    retries: u32,
    /// Largest answer read (the plan's, once known).
    response_limit: usize,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({})", self.base)
    }
}

/// What one exchange moved.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Exchange {
    /// Bytes sent.
    pub up: usize,
    /// Bytes received.
    pub down: usize,
    /// Wall time of the request, retries included (ms).
    pub ms: f64,
    /// Times the request was sent again.
    pub retries: u32,
}

/// One attempt's outcome: the answer, or whether trying again may help.
enum Attempt {
    Done(Vec<u8>),
    Retry(ServiceError, Option<Duration>),
    Fail(ServiceError),
}

impl Remote {
    /// A connection to `base` (e.g. `http://127.0.0.1:8080`) with a
    /// per-request timeout and the default options.
    pub fn new(base: &str, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent,
            token: None,
            retries: RemoteOptions::default().retries,
            response_limit: super::MAX_RESPONSE_BYTES,
        }
    }

    /// A connection to `base` with `opts` (the CA file is read here).
    pub fn with_options(base: &str, opts: &RemoteOptions) -> Result<Self, ServiceError> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(opts.timeout));
        if let Some(ca) = &opts.ca_cert {
            let pem = std::fs::read(ca).map_err(|e| io_err(ca, e))?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| io_err(ca, e))?;
            if certs.is_empty() {
                return Err(io_err(ca, "no CERTIFICATE in the PEM file"));
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
                    .build(),
            );
        }
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            agent: config.build().into(),
            token: opts.token.clone(),
            retries: opts.retries,
            response_limit: super::MAX_RESPONSE_BYTES,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `Authorization` header value, when there is a token.
    fn authorization(&self) -> Option<Zeroizing<String>> {
        self.token
            .as_ref()
            .map(|tok| Zeroizing::new(format!("Bearer {}", tok.as_str())))
    }

    fn attempt(
        &self,
        url: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        limit: usize,
    ) -> Attempt {
        let http = |detail: String| ServiceError::Http {
            url: url.to_string(),
            status: None,
            detail,
        };
        let mut resp = match r {
            Ok(r) => r,
            Err(
                e @ (ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_)),
            ) => return Attempt::Retry(http(e.to_string()), None),
            Err(e) => return Attempt::Fail(http(e.to_string())),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(5)));
        let body = match resp
            .body_mut()
            .with_config()
            .limit(limit as u64)
            .read_to_vec()
        {
            Ok(b) => b,
            Err(e @ ureq::Error::BodyExceedsLimit(_)) => {
                return Attempt::Fail(http(format!("{e} (the plan's bound is {limit} bytes)")));
            }
            Err(e) => return Attempt::Retry(http(e.to_string()), None),
        };
        if status >= 400 {
            let e = ServiceError::Http {
                url: url.to_string(),
                status: Some(status),
                detail: format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(2000)])
                ),
            };
            return if matches!(status, 502..=504) {
                Attempt::Retry(e, retry_after)
            } else {
                Attempt::Fail(e)
            };
        }
        Attempt::Done(body)
    }

    /// Send a request (again on a transport error or a 502/503/504, at
    /// most `retries` more times, backing off); the answer and its counts.
    fn exchange(
        &self,
        path: &str,
        body: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<u8>, Exchange), ServiceError> {
        let url = self.url(path);
        let t = Instant::now();
        let mut tries = 0u32;
        loop {
            let auth = self.authorization();
            let r = match body {
                Some(b) => {
                    let mut req = self
                        .agent
                        .post(&url)
                        .header("content-type", "application/octet-stream");
                    if let Some(a) = &auth {
                        req = req.header("authorization", a.as_str());
                    }
                    req.send(b)
                }
                None => {
                    let mut req = self.agent.get(&url).header("accept", "application/json");
                    if let Some(a) = &auth {
                        req = req.header("authorization", a.as_str());
                    }
                    req.call()
                }
            };
            match self.attempt(&url, r, limit) {
                Attempt::Done(out) => {
                    let ex = Exchange {
                        up: body.map_or(0, <[u8]>::len),
                        down: out.len(),
                        ms: t.elapsed().as_secs_f64() * 1e3,
                        retries: tries,
                    };
                    return Ok((out, ex));
                }
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(e, after) => {
                    if tries >= self.retries {
                        return Err(e);
                    }
                    // Exponential backoff from 200 ms, never below the
                    // server's Retry-After, at most 12.8 s.
                    let backoff = Duration::from_millis(200u64 << tries.min(6));
                    std::thread::sleep(after.map_or(backoff, |a| a.max(backoff)));
                    tries += 1;
                }
            }
        }
    }

    /// `GET path`, the body (at most 1 MiB).
    pub fn get(&self, path: &str) -> Result<Vec<u8>, ServiceError> {
        self.exchange(path, None, 1 << 20).map(|r| r.0)
    }

    /// `POST path` with a binary body; the response body (at most the
    /// plan's response bound once [`Remote::plan`] read it) and sizes.
    pub fn post(&self, path: &str, body: &[u8]) -> Result<(Vec<u8>, Exchange), ServiceError> {
        self.exchange(path, Some(body), self.response_limit)
    }

    /// `DELETE /v1/keys/{key_id}`: the server forgets a bundle.
    pub fn delete_bundle(&self, key_id: &str) -> Result<(), ServiceError> {
        let url = self.url(&format!("/v1/keys/{key_id}"));
        let mut req = self.agent.delete(&url);
        if let Some(a) = self.authorization() {
            req = req.header("authorization", a.as_str());
        }
        match self.attempt(&url, req.call(), 1 << 20) {
            Attempt::Done(_) => Ok(()),
            Attempt::Fail(e) | Attempt::Retry(e, _) => Err(e),
        }
    }

    /// The server's plan (`GET /v1/model`), checked; answers are bounded by
    /// its response size from now on.
    pub fn plan(&mut self) -> Result<ServicePlan, ServiceError> {
        let body = self.get("/v1/model")?;
        let plan: ServicePlan = serde_json::from_slice(&body).map_err(|e| ServiceError::Http {
            url: self.url("/v1/model"),
            status: None,
            detail: format!("not a plan: {e}"),
        })?;
        check_plan_bounds(&plan)?;
        self.response_limit = plan.limits.response_bytes;
        Ok(plan)
    }

    /// Register `client`'s bundle unless the server knows it; returns the
    /// bytes sent (0 when already known).
    pub fn ensure_registered(&self, client: &Client) -> Result<usize, ServiceError> {
        // Known: done. Unknown (404): register. Anything else (a 401 for a
        // missing token, say) is the answer: uploading would not help.
        match self.get(&format!("/v1/keys/{}", client.key_id())) {
            Ok(_) => return Ok(0),
            Err(ServiceError::Http {
                status: Some(404), ..
            }) => {}
            Err(e) => return Err(e),
        }
        let (body, ex) = self.exchange("/v1/keys", Some(client.bundle()), 1 << 20)?;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if v.get("key_id").and_then(|k| k.as_str()) != Some(client.key_id()) {
            return Err(ServiceError::Http {
                url: self.url("/v1/keys"),
                status: None,
                detail: format!(
                    "the server answered key id {v}, expected {}",
                    client.key_id()
                ),
            });
        }
        Ok(ex.up)
    }

    /// One encrypted inference: encrypt, upload, download, decrypt.
    pub fn infer(
        &self,
        client: &Client,
        images: &[&[f32]],
    ) -> Result<(Vec<Vec<f64>>, Exchange), ServiceError> {
        let body = client.encrypt(images)?;
        let (resp, ex) = self.post(&format!("/v1/infer/{}", client.key_id()), &body)?;
        Ok((client.decrypt(&resp, images.len())?, ex))
    }
}

/// What `slaf-he query` runs.
#[derive(Clone, Debug)]
pub struct QueryRequest {
    /// Server base URL.
    pub server: String,
    /// Test images to send.
    pub images: usize,
    /// Index of the first test image.
    pub offset: usize,
    /// Folder of the IDX files (None: the default place of the plan's data set).
    pub data_dir: Option<std::path::PathBuf>,
    /// A weights file to run the plaintext model locally (testing aid:
    /// a real client has no weights) and report agreement.
    pub reference: Option<std::path::PathBuf>,
    /// Per-image mode: images per request (batched: always one batch of up to N/2).
    pub images_per_request: usize,
    /// Timeout, token, trusted CA and retries.
    pub remote: RemoteOptions,
    /// Hide the progress bar.
    pub quiet: bool,
    /// Accept parameter sets below 128-bit security (experiments only).
    pub allow_insecure: bool,
}

/// The outcome of a query run (one JSON line with `--json`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct QuerySummary {
    /// Model name from the plan.
    pub model: String,
    /// Engine.
    pub mode: Mode,
    /// The bundle's key id.
    pub key_id: String,
    /// Images classified.
    pub images: usize,
    /// Argmax equal to the label.
    pub correct: usize,
    /// `correct / images`.
    pub accuracy: f64,
    /// Share of images whose encrypted argmax equals the local plaintext
    /// model's (with `reference`).
    pub agreement: Option<f64>,
    /// Max |encrypted − plaintext| logit (with `reference`).
    pub max_logit_error: Option<f64>,
    /// Inference requests sent.
    pub requests: usize,
    /// Of which sent again (transport error, 502, 503 or 504).
    pub retries: usize,
    /// Median request latency (ms; encryption and decryption excluded).
    pub latency_p50_ms: f64,
    /// 95th percentile request latency (ms).
    pub latency_p95_ms: f64,
    /// Bundle bytes uploaded (0 when the server already knew the bundle).
    pub bundle_bytes: usize,
    /// Bytes uploaded by the inference requests.
    pub bytes_up: usize,
    /// Bytes downloaded.
    pub bytes_down: usize,
    /// Wall time of the whole run, encryption and decryption included (s).
    pub wall_s: f64,
    /// Images per second over `wall_s`.
    pub images_per_s: f64,
}

pub use slaf_nn::stats::percentile;

/// Requests and bytes of a remote engine's calls.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transfer {
    /// Bytes uploaded by the inference requests.
    pub up: usize,
    /// Bytes downloaded.
    pub down: usize,
    /// Latency of each request (ms; encryption and decryption excluded).
    pub latencies_ms: Vec<f64>,
    /// Requests sent again after a transport error or a 502/503/504.
    pub retries: usize,
}

/// A client and a server as one [`Engine`]: encryption and decryption
/// here, the circuit on the server, so the evaluation harness measures a
/// remote run as it measures a local one. It cannot probe intermediate
/// ciphertexts: the precision option reports nothing.
pub struct RemoteEngine {
    remote: Remote,
    client: Client,
    params: CkksParameters,
    per_call: usize,
    transfer: Mutex<Transfer>,
}

impl std::fmt::Debug for RemoteEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteEngine({:?} at {})", self.client, self.remote.base)
    }
}

impl RemoteEngine {
    /// An engine over `remote` with `client`'s keys (the server must
    /// publish the plan they were made for), sending at most
    /// `images_per_request` images per request (batched: always one batch).
    pub fn new(
        mut remote: Remote,
        client: Client,
        images_per_request: usize,
        allow_insecure: bool,
    ) -> Result<Self, ServiceError> {
        let plan = remote.plan()?;
        if plan != *client.plan() {
            return Err(ServiceError::bad(format!(
                "the server at {} now publishes a different plan ({} {}, N = 2^{}) than the keys were made for ({} {}, N = 2^{}); run keygen again",
                remote.base,
                plan.model,
                plan.mode().name(),
                plan.params.log_n,
                client.plan().model,
                client.plan().mode().name(),
                client.plan().params.log_n
            )));
        }
        let per_call = match plan.mode() {
            Mode::Batched => client.images_per_request(),
            Mode::PerImage => images_per_request.clamp(1, client.images_per_request()),
        };
        Ok(Self {
            params: plan_params(&plan, allow_insecure)?,
            remote,
            client,
            per_call,
            transfer: Mutex::new(Transfer::default()),
        })
    }

    /// Register the client's bundle unless the server knows it; returns
    /// the bytes sent (0 when already known).
    pub fn register(&self) -> Result<usize, ServiceError> {
        self.remote.ensure_registered(&self.client)
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Requests and bytes so far.
    pub fn transfer(&self) -> Transfer {
        self.transfer.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

impl Engine for RemoteEngine {
    fn mode(&self) -> Mode {
        self.client.plan().mode()
    }
    fn params(&self) -> &CkksParameters {
        &self.params
    }
    fn images_per_call(&self) -> usize {
        self.per_call
    }
    fn progress_units(&self, images: usize) -> u64 {
        images as u64
    }
    fn infer_images(
        &self,
        images: &[&[f32]],
        progress: Option<&(dyn Fn(u64) + Sync)>,
        _precision: bool,
    ) -> Result<EngineOutput, HeNnError> {
        let remote_err = |e: ServiceError| HeNnError::InvalidRequest {
            detail: format!("remote inference: {e}"),
        };
        let mut out = EngineOutput {
            logits: Vec::with_capacity(images.len()),
            times: StageTimes::default(),
            precision: None,
        };
        for call in images.chunks(self.per_call) {
            let t = Instant::now();
            let body = self.client.encrypt(call).map_err(remote_err)?;
            out.times.encrypt += t.elapsed().as_secs_f64() * 1e3;
            let path = format!("/v1/infer/{}", self.client.key_id());
            let (resp, ex) = self.remote.post(&path, &body).map_err(remote_err)?;
            let t = Instant::now();
            out.logits
                .extend(self.client.decrypt(&resp, call.len()).map_err(remote_err)?);
            out.times.decrypt += t.elapsed().as_secs_f64() * 1e3;
            if let Ok(mut tr) = self.transfer.lock() {
                tr.up += ex.up;
                tr.down += ex.down;
                tr.latencies_ms.push(ex.ms);
                tr.retries += ex.retries as usize;
            }
            if let Some(p) = progress {
                p(call.len() as u64);
            }
        }
        Ok(out)
    }
    fn pixels(&self) -> usize {
        self.client.plan().layout.pixels()
    }
    fn start_level(&self) -> usize {
        self.client.plan().layout.start_level()
    }
    fn output_scale(&self) -> f64 {
        self.client.plan().layout.output_scale()
    }
    fn ciphertext_bytes(&self) -> usize {
        self.client.plan().layout.ciphertext_bytes(&self.params)
    }
    fn input_bytes(&self) -> usize {
        let layout = &self.client.plan().layout;
        layout.inputs_for(self.per_call) * self.ciphertext_bytes()
    }
    fn key_bytes(&self) -> usize {
        self.client.bundle().len()
    }
}

/// Register the bundle if needed, then encrypt, upload, download and
/// decrypt `req.images` test images of the plan's data set through the
/// evaluation harness ([`slaf_experiments::harness::evaluate`]): accuracy
/// against the labels, latency and bytes (and agreement with `reference`).
pub fn query(client: Client, req: &QueryRequest) -> Result<QuerySummary, ServiceError> {
    let remote = Remote::with_options(&req.server, &req.remote)?;
    let engine = RemoteEngine::new(remote, client, req.images_per_request, req.allow_insecure)?;
    let plan = engine.client().plan().clone();
    let test = TestImages::load(
        plan.dataset,
        req.data_dir.as_deref(),
        req.offset,
        Some(req.images),
    )
    .map_err(|e| ServiceError::bad(format!("test data: {e}")))?;
    let reference =
        match &req.reference {
            Some(p) => {
                let w = slaf_nn::WeightsFile::load(p).map_err(|e| ServiceError::Io {
                    path: p.display().to_string(),
                    detail: e.to_string(),
                })?;
                Some(test.plaintext_logits(&w).map_err(|e| {
                    ServiceError::bad(format!("the reference model cannot run: {e}"))
                })?)
            }
            None => None,
        };
    let t0 = Instant::now();
    let bundle_bytes = engine.register()?;
    let run = evaluate(&engine, &test, false, req.quiet)?;
    let wall_s = t0.elapsed().as_secs_f64();
    let cmp = Comparison::new(&test, &run.logits, reference.as_deref());
    let tr = engine.transfer();
    let n = test.len() as f64;
    Ok(QuerySummary {
        model: plan.model.clone(),
        mode: plan.mode(),
        key_id: engine.client().key_id().to_string(),
        images: test.len(),
        correct: cmp.he_correct,
        accuracy: cmp.he_correct as f64 / n,
        agreement: reference.as_ref().map(|_| cmp.agree as f64 / n),
        max_logit_error: reference.as_ref().map(|_| cmp.max_logit_error),
        requests: tr.latencies_ms.len(),
        retries: tr.retries,
        latency_p50_ms: percentile(&tr.latencies_ms, 0.5),
        latency_p95_ms: percentile(&tr.latencies_ms, 0.95),
        bundle_bytes,
        bytes_up: tr.up,
        bytes_down: tr.down,
        wall_s,
        images_per_s: n / wall_s.max(1e-9),
    })
}
