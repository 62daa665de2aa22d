//! Encrypted inference as a client and a server that talk over HTTP: the
//! server computes on ciphertexts it cannot read and never holds a secret
//! key.
//!
//! - [`client`]: holds the [`slaf_ckks::SecretKey`]. From the server's
//!   published [`ServicePlan`] it makes an evaluation-key bundle (public
//!   key, relinearisation key, Galois keys for exactly the plan's rotation
//!   steps), encrypts images in the plan's layout and decrypts the logits.
//! - [`server`]: holds the model's keyless [`slaf_he_nn::Circuit`] (batched
//!   or per image) and the registered bundles, and evaluates. It has no path to a secret key: its source
//!   names no secret-key type or function (checked by `tests/service.rs`).
//! - [`http`]: the axum routes over [`server::Server`] (`/healthz`,
//!   `/v1/model`, `/v1/keys`, `/v1/infer/{key_id}`): tenant tokens,
//!   admission and load shedding before any body is read, per-route body
//!   limits from the plan, CKKS work on a bounded blocking pool, metrics;
//! - [`listener`]: the connections under the routes (hyper HTTP/1 with
//!   header and idle timeouts, a connection cap, optional TLS by rustls);
//! - [`store`]: the bundle store replicas share (`object_store`) and
//!   [`tenants`]: who may register and how much;
//! - [`metrics`]: the Prometheus counters and histograms.
//!
//! Wire format: the checked binary serialization of [`slaf_ckks::serial`]
//! (versioned; seed-compressed uniform parts) inside two small containers
//! defined here: a key bundle ([`encode_bundle`]) and a message of
//! ciphertexts ([`encode_message`]). A bundle's key id is the hex SHA-256 of
//! its bytes: bundles are content-addressed, so replicas sharing one bundle
//! folder serve any client.
//!
//! Threat model (README "Client and server"): an honest-but-curious server
//! sees only ciphertexts under the client's key and never a decryption
//! (the client does not send decrypted results back, so the IND-CPA-D
//! attacks on CKKS do not apply). The model's weights stay on the server;
//! the client learns the logits, and without flooding their low-order
//! noise carries information about the circuit.

pub mod client;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod server;
pub mod store;
pub mod tenants;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use slaf_ckks::CkksParametersLiteral;
use slaf_he_nn::{HeNnError, Layout, Mode};

pub use slaf_he_nn::KeyRequirements;

/// Version of the published plan and of the containers below (2: the plan
/// publishes the circuit's [`Layout`], output scale included; 3: the plan
/// publishes exact per-route [`WireLimits`]). `docs/wire-format.md` is the
/// specification.
pub const WIRE_VERSION: u32 = 3;
const BUNDLE_MAGIC: &[u8; 8] = b"SLAFBNDL";
const MESSAGE_MAGIC: &[u8; 8] = b"SLAFMSG\0";

/// Errors of the client/server split. Each maps to one HTTP status
/// ([`ServiceError::status`]); a server keeps serving after any of them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The request is malformed or does not fit the model (400).
    #[error("bad request: {detail}")]
    BadRequest {
        /// What is wrong, with the numbers.
        detail: String,
    },
    /// No bundle is registered under this key id (404).
    #[error("unknown key id {key_id:?}: register the bundle with POST /v1/keys first")]
    UnknownKey {
        /// The id asked for.
        key_id: String,
    },
    /// The body is larger than the server accepts (413).
    #[error("body too large: {detail}")]
    TooLarge {
        /// Sizes.
        detail: String,
    },
    /// No route at this path (404).
    #[error(
        "no route {method} {path}: the routes are GET /healthz, GET /v1/model, POST /v1/keys, GET /v1/keys/{{key_id}}, POST /v1/infer/{{key_id}}"
    )]
    NotFound {
        /// The request's method.
        method: String,
        /// The request's path (at most 200 characters).
        path: String,
    },
    /// The route exists, not with this method (405).
    #[error("{path} does not take {method}")]
    MethodNotAllowed {
        /// The request's method.
        method: String,
        /// The request's path (at most 200 characters).
        path: String,
    },
    /// The server could not use its bundle store (500). The response names
    /// no server file: the server's standard error does.
    #[error("the server could not {what}; its log names the file")]
    Storage {
        /// What failed (`store the bundle`, `reload a stored bundle`).
        what: &'static str,
    },
    /// Every worker stayed busy, the work ran past the timeout, or the
    /// server's memory for bundles is full (503, with `Retry-After`).
    #[error("server busy: {detail}")]
    Busy {
        /// What timed out or is full.
        detail: String,
    },
    /// No token, or a token the server does not know (401).
    #[error("unauthorized: {detail}")]
    Unauthorized {
        /// What was wrong with the `Authorization` header.
        detail: String,
    },
    /// The bundle alone is larger than the tenant's byte quota (403).
    #[error("over quota: {detail}")]
    Quota {
        /// The sizes.
        detail: String,
    },
    /// The request body did not arrive within the body timeout (408).
    #[error("request timeout: {detail}")]
    SlowBody {
        /// The timeout.
        detail: String,
    },
    /// Encrypted inference failed on a well-formed request (500).
    #[error(transparent)]
    HeNn(#[from] HeNnError),
    /// A file of the key folder or the bundle store could not be used.
    #[error("{path}: {detail}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        detail: String,
    },
    /// The HTTP exchange failed (client side) or the server answered an error.
    #[error("{url}: {detail}")]
    Http {
        /// The URL.
        url: String,
        /// The server's status, when it answered.
        status: Option<u16>,
        /// Status and message.
        detail: String,
    },
}

impl ServiceError {
    /// A 400 error.
    pub fn bad(detail: impl Into<String>) -> Self {
        Self::BadRequest {
            detail: detail.into(),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest { .. } => 400,
            Self::Unauthorized { .. } => 401,
            Self::Quota { .. } => 403,
            Self::SlowBody { .. } => 408,
            Self::UnknownKey { .. } | Self::NotFound { .. } => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::TooLarge { .. } => 413,
            Self::Busy { .. } => 503,
            Self::HeNn(HeNnError::InvalidRequest { .. } | HeNnError::Ckks(_)) => 400,
            Self::HeNn(_) | Self::Io { .. } | Self::Http { .. } | Self::Storage { .. } => 500,
        }
    }

    /// A short machine-readable kind for JSON error bodies.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownKey { .. } => "unknown_key",
            Self::NotFound { .. } => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Quota { .. } => "quota",
            _ => match self.status() {
                400 => "bad_request",
                401 => "unauthorized",
                408 => "timeout",
                413 => "too_large",
                503 => "busy",
                _ => "internal",
            },
        }
    }
}

/// What `GET /v1/model` publishes: everything a client needs to make keys,
/// encrypt and decrypt, and nothing about the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServicePlan {
    /// [`WIRE_VERSION`].
    pub version: u32,
    /// Model name.
    pub model: String,
    /// Data set the model was trained on (its test split is what a client queries).
    pub dataset: slaf_nn::data::Dataset,
    /// CKKS parameters (validated again by the client).
    pub params: CkksParametersLiteral,
    /// Multiplicative depth of the circuit.
    pub depth: usize,
    /// The circuit's slot layout: the engine, levels and scales, what the
    /// client encodes with and decodes by.
    pub layout: Layout,
    /// Most images one request carries (batched: the slots, one ciphertext
    /// per pixel; per image: one ciphertext per image).
    pub images_per_request: usize,
    /// Keys the bundle must hold: exactly these (a bundle with any other
    /// Galois key is refused).
    pub keys: KeyRequirements,
    /// The exact size bounds of each route's body and of the answer.
    pub limits: WireLimits,
    /// Noise flooding of the returned logits (uniform in [-2^B, 2^B) per
    /// coefficient), if the server applies it.
    #[serde(default)]
    pub flood_bits: Option<u32>,
    /// Statistical noise flooding of the returned logits, if the server
    /// applies it.
    #[serde(default)]
    pub flooding: Option<Flooding>,
}

/// Statistical noise flooding as a server applies it and publishes it: a
/// rounded Gaussian of standard deviation 2^`sigma_bits` on every
/// coefficient, sized from the circuit's estimated output noise as
/// Li, Micciancio, Schultz and Sorrell size it for `queries` decryptions
/// at `security_bits` of statistical security (the bound OpenFHE's
/// NOISE_FLOODING_DECRYPT mode follows):
/// `sigma_bits = noise_l2_bits + 1 + security_bits/2 + log2(64 · queries)/2`
/// (the 1: a factor-2 margin on the estimate). Answers are switched down
/// to `output_level` (the lowest level that holds the logits) first.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flooding {
    /// Statistical security (bits; OpenFHE's default is 30).
    pub security_bits: u32,
    /// log2 of the decryptions per key the bound covers.
    pub queries_log2: u32,
    /// log2 of the estimated l2 norm of the circuit's output noise
    /// (coefficients; [`slaf_he_nn::noise::estimate_output_noise`]).
    pub noise_l2_bits: f64,
    /// log2 of the flood's standard deviation per coefficient.
    pub sigma_bits: f64,
    /// log2 of the outputs' scale.
    pub scale_bits: f64,
    /// log2 of the flood's standard deviation in one logit (units of 1).
    pub logit_noise_bits: f64,
    /// The level answers are returned at.
    pub output_level: usize,
}

impl Flooding {
    /// The flood's standard deviation (bits) for an output noise of
    /// 2^`noise_l2_bits`.
    pub fn sigma_bits_for(security_bits: u32, queries_log2: u32, noise_l2_bits: f64) -> f64 {
        noise_l2_bits + 1.0 + f64::from(security_bits) / 2.0 + (6.0 + f64::from(queries_log2)) / 2.0
    }
}

impl ServicePlan {
    /// The engine.
    pub fn mode(&self) -> Mode {
        self.layout.mode()
    }

    /// Logits per image.
    pub fn outputs(&self) -> usize {
        self.layout.outputs()
    }

    /// Input ciphertexts of a full request.
    pub fn max_inputs(&self) -> usize {
        self.layout.inputs_for(self.images_per_request)
    }
}

/// Exact byte bounds of the messages of a plan, computed from the
/// parameters, the layout and the keys ([`WireLimits::for_plan`]): the
/// server refuses a longer body before reading it (a declared
/// `Content-Length` at once), and a client refuses a plan whose answer
/// could exceed [`MAX_RESPONSE_BYTES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireLimits {
    /// `POST /v1/keys`: a bundle of exactly the plan's keys, seed-compressed
    /// as [`slaf_ckks::serial`] writes them, parameters JSON of at most
    /// [`slaf_ckks::serial::MAX_PARAMETERS_JSON`] bytes.
    pub bundle_bytes: usize,
    /// `POST /v1/infer/{key_id}`: a message of the most input ciphertexts a
    /// request may carry, each at the input level in full (unseeded) form.
    pub request_bytes: usize,
    /// The answer: a message of the most output ciphertexts, each at most
    /// at the input level, in full form.
    pub response_bytes: usize,
}

/// Most bytes of an answer a client accepts (a plan promising more is refused).
pub const MAX_RESPONSE_BYTES: usize = 1 << 30;

impl WireLimits {
    /// The bounds for `params`, `layout`, `keys` and requests of at most
    /// `images_per_request` images.
    pub fn for_plan(
        params: &slaf_ckks::CkksParameters,
        layout: &Layout,
        keys: &KeyRequirements,
        images_per_request: usize,
    ) -> Self {
        use slaf_ckks::serial::{MAX_PARAMETERS_JSON, sizes};
        let container = 8 + 4 + 4 * 8;
        let galois = if keys.galois_steps.is_empty() {
            0
        } else {
            sizes::galois_keys(params, keys.galois_steps.len(), true)
        };
        let bundle_bytes = container
            + MAX_PARAMETERS_JSON
            + sizes::public_key(params, true)
            + sizes::relinearization_key(params, true)
            + galois;
        let ct = 8 + sizes::ciphertext(params, layout.start_level(), 2);
        let inputs = layout.inputs_for(images_per_request).max(1);
        let outputs = layout.outputs_for(images_per_request);
        Self {
            bundle_bytes,
            request_bytes: 16 + inputs.saturating_mul(ct),
            response_bytes: 16 + outputs.max(1).saturating_mul(ct),
        }
    }
}

/// The evaluation keys a client registers, serialized: parameters JSON and
/// the public, relinearisation and Galois keys (each in the checked
/// [`slaf_ckks::serial`] format; Galois keys empty when none are needed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleParts {
    /// Parameters JSON ([`slaf_ckks::serial::parameters_to_json`]).
    pub params_json: String,
    /// Public key bytes.
    pub public_key: Vec<u8>,
    /// Relinearisation key bytes.
    pub relinearization_key: Vec<u8>,
    /// Galois key bytes (empty: none).
    pub galois_keys: Vec<u8>,
}

/// The key id of a bundle: hex SHA-256 of its bytes.
pub fn key_id(bundle: &[u8]) -> String {
    Sha256::digest(bundle)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `s` looks like a key id (64 lowercase hex digits).
pub fn is_key_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn push_section(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    buf.extend_from_slice(bytes);
}

/// A bounds-checked reader of the containers.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, k: usize) -> Result<&'a [u8], ServiceError> {
        let end = self.pos.checked_add(k).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| {
            ServiceError::bad(format!(
                "{}: truncated at byte {} of {} (wanted {k} more)",
                self.what,
                self.pos,
                self.buf.len()
            ))
        })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, ServiceError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn section(&mut self) -> Result<&'a [u8], ServiceError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        let len = usize::try_from(u64::from_le_bytes(a)).unwrap_or(usize::MAX);
        self.take(len)
    }
    fn header(&mut self, magic: &[u8; 8]) -> Result<(), ServiceError> {
        if self.take(8)? != magic {
            return Err(ServiceError::bad(format!("{}: bad magic", self.what)));
        }
        let v = self.u32()?;
        if v != WIRE_VERSION {
            return Err(ServiceError::bad(format!(
                "{}: version {v}, this server reads {WIRE_VERSION}",
                self.what
            )));
        }
        Ok(())
    }
    fn finish(&self) -> Result<(), ServiceError> {
        if self.pos != self.buf.len() {
            return Err(ServiceError::bad(format!(
                "{}: {} trailing bytes",
                self.what,
                self.buf.len() - self.pos
            )));
        }
        Ok(())
    }
}

/// Serialize a bundle: magic `SLAFBNDL`, [`WIRE_VERSION`], then four
/// length-prefixed (u64) sections in the order of [`BundleParts`].
pub fn encode_bundle(parts: &BundleParts) -> Vec<u8> {
    let mut buf = Vec::new();
    buf.extend_from_slice(BUNDLE_MAGIC);
    buf.extend_from_slice(&WIRE_VERSION.to_le_bytes());
    for s in [
        parts.params_json.as_bytes(),
        &parts.public_key,
        &parts.relinearization_key,
        &parts.galois_keys,
    ] {
        push_section(&mut buf, s);
    }
    buf
}

/// Read a bundle's sections (their contents are checked by the server).
pub fn decode_bundle(bytes: &[u8]) -> Result<BundleParts, ServiceError> {
    let mut c = Cursor {
        buf: bytes,
        pos: 0,
        what: "key bundle",
    };
    c.header(BUNDLE_MAGIC)?;
    let params = c.section()?;
    let params_json = std::str::from_utf8(params)
        .map_err(|_| ServiceError::bad("key bundle: parameters are not UTF-8"))?
        .to_string();
    let public_key = c.section()?.to_vec();
    let relinearization_key = c.section()?.to_vec();
    let galois_keys = c.section()?.to_vec();
    c.finish()?;
    Ok(BundleParts {
        params_json,
        public_key,
        relinearization_key,
        galois_keys,
    })
}

/// Serialize a message of ciphertexts: magic `SLAFMSG\0`,
/// [`WIRE_VERSION`], the count (u32), then each serialized ciphertext as a
/// length-prefixed (u64) section.
pub fn encode_message(items: &[Vec<u8>]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(16 + items.iter().map(|i| i.len() + 8).sum::<usize>());
    buf.extend_from_slice(MESSAGE_MAGIC);
    buf.extend_from_slice(&WIRE_VERSION.to_le_bytes());
    buf.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for i in items {
        push_section(&mut buf, i);
    }
    buf
}

/// The sections of a message, refused unless there are `1..=max` of them.
pub fn decode_message(bytes: &[u8], max: usize) -> Result<Vec<&[u8]>, ServiceError> {
    let mut c = Cursor {
        buf: bytes,
        pos: 0,
        what: "ciphertext message",
    };
    c.header(MESSAGE_MAGIC)?;
    let count = c.u32()? as usize;
    if count == 0 || count > max {
        return Err(ServiceError::bad(format!(
            "ciphertext message holds {count} ciphertexts, expected 1..={max}"
        )));
    }
    let items = (0..count)
        .map(|_| c.section())
        .collect::<Result<Vec<_>, _>>()?;
    c.finish()?;
    Ok(items)
}
