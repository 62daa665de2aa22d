//! The server side: a model's keyless circuit, the registered key bundles,
//! and evaluation on uploaded ciphertexts. [`Server`] is generic over the
//! [`Circuit`] it serves; [`Server::new`] picks the circuit of a model's
//! engine (boxed) and every later step goes through the trait.
//!
//! Invariants: nothing here can decrypt. The circuit types hold no key;
//! an evaluator is built per bundle from the public keys it carries. Every
//! bundle is checked against the model's parameters (N, every prime, the
//! Galois steps) before it is stored, and every ciphertext against the
//! circuit's input level, part count and scale before any work; each
//! failure is a typed [`ServiceError`] that names the numbers. The store
//! holds at most [`ServerConfig::max_bundles`] bundles and evicts the least
//! recently used one; with a bundle folder, bundles are also written as
//! content-addressed files `KEY_ID.bundle` and reloaded on a miss.

use super::{
    BundleParts, ServiceError, ServicePlan, WIRE_VERSION, decode_bundle, decode_message,
    encode_message, is_key_id, key_id,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use slaf_ckks::keys::wipe_rng;
use slaf_ckks::serial::{
    ciphertext_from_bytes, ciphertext_to_bytes, galois_keys_from_bytes, parameters_from_json,
    public_key_from_bytes, relinearization_key_from_bytes,
};
use slaf_ckks::{Ciphertext, CkksContext, EvaluationKeys, Evaluator, PublicKey};
use slaf_he_nn::batched::BatchedCircuit;
use slaf_he_nn::per_image::PerImageCircuit;
use slaf_he_nn::plan::{ParamsChoice, StartLevel, resolve_params};
use slaf_he_nn::{Circuit, HeNnError, Hooks, Mode, check_keys};
use slaf_nn::WeightsFile;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Limits and storage of a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Bundles kept in memory; registering one more evicts the least recently used.
    pub max_bundles: usize,
    /// Largest body accepted (None: twice the larger of one request and
    /// one bundle of this model, computed from the plan).
    pub max_body_bytes: Option<usize>,
    /// Ciphertexts per per-image request.
    pub max_images_per_request: usize,
    /// Folder of content-addressed bundle files shared by replicas (None: memory only).
    pub bundle_dir: Option<PathBuf>,
    /// Accept parameter sets below 128-bit security (tests only).
    pub allow_insecure: bool,
    /// Noise flooding of returned ciphertexts: uniform noise in
    /// [-2^B, 2^B) on every coefficient plus a re-randomisation with the
    /// client's public key ([`Evaluator::flood`]). None: off.
    pub flood_bits: Option<u32>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_bundles: 16,
            max_body_bytes: None,
            max_images_per_request: 64,
            bundle_dir: None,
            allow_insecure: false,
            flood_bits: None,
        }
    }
}

/// A registered bundle: its evaluator and public key (for flooding).
struct Entry {
    ev: Evaluator,
    pk: PublicKey,
}

struct Store {
    entries: HashMap<String, (Arc<Entry>, u64)>,
    tick: u64,
    evicted: u64,
}

/// What one evaluation did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvalStats {
    /// Ciphertexts in.
    pub inputs: usize,
    /// Ciphertexts out.
    pub outputs: usize,
    /// Milliseconds spent deserializing the inputs.
    pub decode_ms: f64,
    /// Milliseconds spent evaluating.
    pub eval_ms: f64,
}

/// A model served to clients that hold the keys: a keyless circuit (by
/// default whichever engine the model was prepared for, boxed).
pub struct Server<C: Circuit = Box<dyn Circuit>> {
    circuit: C,
    plan: ServicePlan,
    config: ServerConfig,
    store: Mutex<Store>,
}

impl<C: Circuit> std::fmt::Debug for Server<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Server({} {}, {})",
            self.plan.model,
            self.plan.mode().name(),
            self.context().params().describe()
        )
    }
}

fn poisoned<T>(_: T) -> ServiceError {
    ServiceError::Busy {
        detail: "the bundle store lock is poisoned (an earlier request panicked)".into(),
    }
}

impl Server {
    /// Prepare `weights` for `mode` on `params` (None: the parameters
    /// `infer` picks for the model).
    pub fn new(
        weights: &WeightsFile,
        mode: Mode,
        params: Option<ParamsChoice>,
        config: ServerConfig,
    ) -> Result<Self, ServiceError> {
        let (plan, params, _) = resolve_params(weights, params, mode)?;
        let model = weights.inference.chain_form().map_err(HeNnError::from)?;
        let circuit: Box<dyn Circuit> = match mode {
            Mode::Batched => Box::new(BatchedCircuit::new(&model, plan, params, 128)?),
            Mode::PerImage => Box::new(PerImageCircuit::new(
                &model,
                plan,
                params,
                StartLevel::default(),
            )?),
        };
        Server::with_circuit(circuit, &weights.model.name, weights.config.dataset, config)
    }
}

impl<C: Circuit> Server<C> {
    /// Serve `circuit` (the model `model` trained on `dataset`).
    pub fn with_circuit(
        circuit: C,
        model: &str,
        dataset: slaf_nn::data::Dataset,
        config: ServerConfig,
    ) -> Result<Self, ServiceError> {
        let params = circuit.context().params();
        let layout = circuit.layout().clone();
        let n = params.n();
        let images_per_request = match layout.mode() {
            Mode::Batched => layout.images_per_call(),
            Mode::PerImage => config.max_images_per_request.max(1),
        };
        let keys = circuit.keys();
        // Default body limit: twice the larger of a full request and a bundle.
        let limbs = params.literal().coeff_mod_bit_sizes.len();
        let ct = 2 * (layout.start_level() + 1) * n * 8 + 512;
        let request = ct * layout.inputs_for(images_per_request).max(1);
        let switching = 2 * limbs * limbs * n * 8;
        let bundle = switching * (1 + keys.galois_steps.len()) + 2 * limbs * n * 8 + 4096;
        let max_body_bytes = config.max_body_bytes.unwrap_or(2 * request.max(bundle));
        if let Some(bits) = config.flood_bits {
            let out_scale = layout.output_scale();
            let slot_bits = f64::from(bits) + (n as f64 / 3.0).log2() / 2.0;
            let max = (out_scale.log2() - 4.0 - (n as f64 / 3.0).log2() / 2.0).floor();
            if slot_bits + 4.0 > out_scale.log2() {
                return Err(ServiceError::bad(format!(
                    "--flood-bits {bits} would put slot noise 2^{slot_bits:.1} on logits of scale 2^{:.1}; at most {max} bits keep 4 bits of precision",
                    out_scale.log2()
                )));
            }
        }
        let plan = ServicePlan {
            version: WIRE_VERSION,
            flood_bits: config.flood_bits,
            model: model.to_string(),
            dataset,
            params: params.literal().clone(),
            depth: circuit.plan().depth,
            layout,
            images_per_request,
            keys,
            max_body_bytes,
        };
        if let Some(dir) = &config.bundle_dir {
            std::fs::create_dir_all(dir).map_err(|e| ServiceError::Io {
                path: dir.display().to_string(),
                detail: format!("cannot create the bundle folder: {e}"),
            })?;
        }
        Ok(Self {
            circuit,
            plan,
            config,
            store: Mutex::new(Store {
                entries: HashMap::new(),
                tick: 0,
                evicted: 0,
            }),
        })
    }

    /// The published plan (`GET /v1/model`).
    pub fn plan(&self) -> &ServicePlan {
        &self.plan
    }

    /// The limits.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    fn context(&self) -> &Arc<CkksContext> {
        self.circuit.context()
    }

    /// Bundles in memory and bundles evicted so far.
    pub fn bundle_counts(&self) -> (usize, u64) {
        self.store
            .lock()
            .map(|s| (s.entries.len(), s.evicted))
            .unwrap_or((0, 0))
    }

    /// Check a bundle against the model and build its evaluator.
    fn evaluator_of(&self, bytes: &[u8]) -> Result<Entry, ServiceError> {
        let BundleParts {
            params_json,
            public_key,
            relinearization_key,
            galois_keys,
        } = decode_bundle(bytes)?;
        let theirs = parameters_from_json(&params_json, self.config.allow_insecure)
            .map_err(|e| ServiceError::bad(format!("bundle parameters: {e}")))?;
        let ctx = self.context();
        let ours = ctx.params();
        if !theirs.same_chain(ours) || theirs.dnum() != ours.dnum() {
            return Err(ServiceError::bad(format!(
                "the bundle's primes are for {}; this model runs {}",
                theirs.describe(),
                ours.describe()
            )));
        }
        let what =
            |part: &str, e: slaf_ckks::CkksError| ServiceError::bad(format!("bundle {part}: {e}"));
        // The public key is used only by noise flooding, but always checked.
        let pk = public_key_from_bytes(ctx, &public_key).map_err(|e| what("public key", e))?;
        let rk = relinearization_key_from_bytes(ctx, &relinearization_key)
            .map_err(|e| what("relinearization key", e))?;
        let gk = if galois_keys.is_empty() {
            None
        } else {
            Some(galois_keys_from_bytes(ctx, &galois_keys).map_err(|e| what("Galois keys", e))?)
        };
        let ev = Evaluator::with_keys(ctx, EvaluationKeys::new(Some(rk), gk));
        check_keys(&ev, &self.plan.keys).map_err(|e| ServiceError::bad(format!("bundle: {e}")))?;
        Ok(Entry { ev, pk })
    }

    fn insert(&self, id: &str, ev: Entry) -> Result<Arc<Entry>, ServiceError> {
        let ev = Arc::new(ev);
        let mut s = self.store.lock().map_err(poisoned)?;
        s.tick += 1;
        let tick = s.tick;
        if !s.entries.contains_key(id) && s.entries.len() >= self.config.max_bundles.max(1) {
            // Evict the least recently used bundle.
            if let Some(old) = s
                .entries
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            {
                s.entries.remove(&old);
                s.evicted += 1;
            }
        }
        s.entries.insert(id.to_string(), (Arc::clone(&ev), tick));
        Ok(ev)
    }

    fn bundle_path(&self, id: &str) -> Option<PathBuf> {
        self.config
            .bundle_dir
            .as_ref()
            .map(|d| d.join(format!("{id}.bundle")))
    }

    /// Register a bundle (`POST /v1/keys`); returns its key id and whether
    /// it was new. Registering the same bundle twice is a no-op.
    pub fn register(&self, bytes: &[u8]) -> Result<(String, bool), ServiceError> {
        let id = key_id(bytes);
        {
            let mut s = self.store.lock().map_err(poisoned)?;
            s.tick += 1;
            let tick = s.tick;
            if let Some(e) = s.entries.get_mut(&id) {
                e.1 = tick;
                return Ok((id, false));
            }
        }
        let ev = self.evaluator_of(bytes)?;
        if let Some(path) = self.bundle_path(&id) {
            std::fs::write(&path, bytes).map_err(|e| {
                // The operator's log names the file; the client's answer does not.
                eprintln!(
                    "slaf-he serve: cannot store the bundle {}: {e}",
                    path.display()
                );
                ServiceError::Storage {
                    what: "store the bundle",
                }
            })?;
        }
        self.insert(&id, ev)?;
        Ok((id, true))
    }

    /// Whether a key id is known (in memory or in the bundle folder).
    pub fn knows(&self, id: &str) -> bool {
        let in_memory = self
            .store
            .lock()
            .map(|s| s.entries.contains_key(id))
            .unwrap_or(false);
        in_memory || (is_key_id(id) && self.bundle_path(id).is_some_and(|p| p.exists()))
    }

    fn evaluator(&self, id: &str) -> Result<Arc<Entry>, ServiceError> {
        let unknown = || ServiceError::UnknownKey {
            key_id: id.chars().take(80).collect(),
        };
        {
            let mut s = self.store.lock().map_err(poisoned)?;
            s.tick += 1;
            let tick = s.tick;
            if let Some(e) = s.entries.get_mut(id) {
                e.1 = tick;
                return Ok(Arc::clone(&e.0));
            }
        }
        if !is_key_id(id) {
            return Err(unknown());
        }
        // A bundle another replica stored: reload it (checked again).
        let Some(path) = self.bundle_path(id).filter(|p| p.exists()) else {
            return Err(unknown());
        };
        let reload = ServiceError::Storage {
            what: "reload a stored bundle",
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!(
                    "slaf-he serve: cannot read the bundle {}: {e}",
                    path.display()
                );
                return Err(reload);
            }
        };
        if key_id(&bytes) != id {
            eprintln!(
                "slaf-he serve: the bundle file {}'s SHA-256 is not its name",
                path.display()
            );
            return Err(reload);
        }
        let ev = self.evaluator_of(&bytes)?;
        self.insert(id, ev)
    }

    /// Evaluate one request (`POST /v1/infer/{key_id}`): a message of
    /// ciphertexts in the plan's layout in, a message of logit ciphertexts
    /// out (batched: one per logit; per-image: one per image).
    pub fn infer(&self, id: &str, body: &[u8]) -> Result<(Vec<u8>, EvalStats), ServiceError> {
        let entry = self.evaluator(id)?;
        let ev = &entry.ev;
        let ctx = self.context();
        let t = Instant::now();
        let items = decode_message(body, self.plan.max_inputs())?;
        let cts: Vec<Ciphertext> = items
            .iter()
            .enumerate()
            .map(|(i, b)| {
                ciphertext_from_bytes(ctx, b)
                    .map_err(|e| ServiceError::bad(format!("ciphertext {i}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let decode_ms = t.elapsed().as_secs_f64() * 1e3;
        let inputs = cts.len();
        let t = Instant::now();
        self.circuit
            .check_inputs(&cts)
            .map_err(|e| ServiceError::bad(e.to_string()))?;
        let (out, _) = self.circuit.evaluate(ev, cts, Hooks::default())?;
        let out = match self.config.flood_bits {
            Some(bits) => {
                let mut rng = ChaCha20Rng::from_os_rng();
                let flooded = out
                    .iter()
                    .map(|ct| ev.flood(ct, &entry.pk, bits, &mut rng))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(HeNnError::from);
                wipe_rng(&mut rng);
                flooded?
            }
            None => out,
        };
        let stats = EvalStats {
            inputs,
            outputs: out.len(),
            decode_ms,
            eval_ms: t.elapsed().as_secs_f64() * 1e3,
        };
        let bytes: Vec<Vec<u8>> = out.iter().map(|c| ciphertext_to_bytes(ctx, c)).collect();
        Ok((encode_message(&bytes), stats))
    }
}
