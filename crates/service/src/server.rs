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
//! failure is a typed [`ServiceError`] that names the numbers. A bundle
//! must hold exactly the plan's keys (no Galois key the plan does not
//! list) and fit the plan's [`WireLimits::bundle_bytes`].
//!
//! Bundles belong to a [`Tenant`]: a tenant's quota (bundles and bytes)
//! evicts only its own oldest bundles (deleted), and bundles in memory are
//! bounded by [`ServerConfig::memory_bytes`]: with a shared
//! [`BundleStore`] the least recently used bundle leaves memory (and is
//! reloaded from the store, checked again, on its next request); without
//! one only the registering tenant's own bundles are evicted, and a
//! registration that cannot fit is a 503, never an abort.

use super::metrics::Metrics;
use super::store::BundleStore;
use super::tenants::{Quota, Tenant};
use super::{
    BundleParts, Flooding, ServiceError, ServicePlan, WIRE_VERSION, WireLimits, decode_bundle,
    decode_message, encode_message, is_key_id, key_id,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use slaf_ckks::keys::galois_element;
use slaf_ckks::keys::wipe_rng;
use slaf_ckks::serial::{
    ciphertext_from_bytes, ciphertext_to_bytes, galois_keys_from_bytes, parameters_from_json,
    public_key_from_bytes, relinearization_key_from_bytes,
};
use slaf_ckks::{Ciphertext, CkksContext, EvaluationKeys, Evaluator, Flood, PublicKey};
use slaf_he_nn::batched::BatchedCircuit;
use slaf_he_nn::per_image::PerImageCircuit;
use slaf_he_nn::plan::{
    ParamsChoice, StartLevel, default_scale_bits, resolve_params, resolve_params_for_output_scale,
};
use slaf_he_nn::{Circuit, HeNnError, Hooks, Mode, check_keys};
use slaf_nn::WeightsFile;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Limits and storage of a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Bundles a tenant may have registered (a tenant of the tokens file
    /// may name its own); one more evicts its oldest.
    pub max_bundles: usize,
    /// Bundle bytes (as uploaded) a tenant may have registered (a tenant of
    /// the tokens file may name its own).
    pub tenant_bytes: usize,
    /// Bytes of evaluation keys held in memory, all tenants together. With
    /// a [`ServerConfig::bundle_store`] a full memory evicts the least
    /// recently used bundle (reloaded from the store on its next request);
    /// without one only the registering tenant's own bundles are evicted,
    /// and a registration that cannot fit is answered 503.
    pub memory_bytes: usize,
    /// Ciphertexts per per-image request.
    pub max_images_per_request: usize,
    /// The store of registered bundles replicas share (None: memory only).
    pub bundle_store: Option<Arc<BundleStore>>,
    /// Accept parameter sets below 128-bit security (tests only).
    pub allow_insecure: bool,
    /// Noise flooding of returned ciphertexts: uniform noise in
    /// [-2^B, 2^B) on every coefficient plus a re-randomisation with the
    /// client's public key ([`Evaluator::flood`]). None: off.
    pub flood_bits: Option<u32>,
    /// Statistical noise flooding sized from the circuit's noise
    /// ([`super::Flooding`]). None: off.
    pub flooding: Option<FloodPolicy>,
}

/// What statistical flooding must achieve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FloodPolicy {
    /// Statistical security (bits).
    pub security_bits: u32,
    /// log2 of the decryptions per key the bound covers.
    pub queries_log2: u32,
    /// Most flood noise a logit may carry: a standard deviation of
    /// 2^-precision_bits.
    pub precision_bits: u32,
}

impl Default for FloodPolicy {
    fn default() -> Self {
        Self {
            security_bits: 30,
            queries_log2: 10,
            precision_bits: 5,
        }
    }
}

/// Random images the noise estimate runs on (per-image; a batched
/// circuit takes them in one call).
const NOISE_SAMPLES: usize = 4;

impl FloodPolicy {
    /// Size the flood for `circuit` from its estimated output noise; Err
    /// carries the output scale (bits) the policy would need.
    fn size(&self, circuit: &dyn Circuit) -> Result<Result<Flooding, f64>, ServiceError> {
        let noise = slaf_he_nn::noise::estimate_output_noise(circuit, NOISE_SAMPLES)?;
        let params = circuit.context().params();
        let n = params.n();
        let sigma_bits =
            Flooding::sigma_bits_for(self.security_bits, self.queries_log2, noise.l2_bits);
        let slot = Flood::Gaussian { sigma_bits }.slot_noise_bits(n);
        let logit_noise_bits = slot - noise.scale_bits;
        if logit_noise_bits > -f64::from(self.precision_bits) {
            return Ok(Err(slot + f64::from(self.precision_bits)));
        }
        // The lowest level that still holds the logits (|logit| < 2^10)
        // with the flood: answers shrink to it.
        let need = noise.scale_bits + 12.0;
        let output_level = (0..=circuit.layout().start_level())
            .find(|&l| params.modulus_bits(l) >= need)
            .unwrap_or(0);
        Ok(Ok(Flooding {
            security_bits: self.security_bits,
            queries_log2: self.queries_log2,
            noise_l2_bits: noise.l2_bits,
            sigma_bits,
            scale_bits: noise.scale_bits,
            logit_noise_bits,
            output_level,
        }))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_bundles: 16,
            tenant_bytes: 4 << 30,
            memory_bytes: 2 << 30,
            max_images_per_request: 64,
            bundle_store: None,
            allow_insecure: false,
            flood_bits: None,
            flooding: None,
        }
    }
}

impl ServerConfig {
    /// The default quota of a tenant.
    pub fn quota(&self) -> Quota {
        Quota {
            max_bundles: self.max_bundles.max(1),
            max_bytes: self.tenant_bytes,
        }
    }

    /// The tenant of an open server (no tokens) with this configuration's quota.
    pub fn open_tenant(&self) -> Tenant {
        Tenant {
            name: super::tenants::OPEN_TENANT.into(),
            max_bundles: self.max_bundles.max(1),
            max_bytes: self.tenant_bytes,
        }
    }
}

/// A registered bundle: its evaluator and public key (for flooding).
struct Entry {
    ev: Evaluator,
    pk: PublicKey,
}

impl Entry {
    /// Bytes of the keys in memory.
    fn bytes(&self) -> usize {
        let keys = self.ev.keys();
        self.pk.byte_size()
            + keys.relin().map_or(0, |k| k.byte_size())
            + keys.galois().map_or(0, |k| k.byte_size())
    }
}

/// A bundle in memory.
struct Cached {
    entry: Arc<Entry>,
    /// Bytes in memory.
    bytes: usize,
    /// Bytes as uploaded (what quotas count).
    wire: usize,
    /// Last use.
    used: u64,
    /// Registration (or reload) order.
    added: u64,
}

/// Bundles in memory, by (tenant, key id).
#[derive(Default)]
struct Memory {
    entries: HashMap<(String, String), Cached>,
    bytes: usize,
    tick: u64,
    /// Evictions (memory, quota) not yet reported to the metrics.
    unreported: (u64, u64),
    /// Evictions (memory, quota) since start.
    evicted: (u64, u64),
}

impl Memory {
    fn remove(&mut self, key: &(String, String)) -> bool {
        match self.entries.remove(key) {
            Some(c) => {
                self.bytes -= c.bytes;
                true
            }
            None => false,
        }
    }
}

/// What the bundle store holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BundleStats {
    /// Bundles in memory.
    pub bundles: usize,
    /// Bytes of keys in memory.
    pub bytes: usize,
    /// Bundles evicted from memory since start (still in the store, if any).
    pub evicted_memory: u64,
    /// Bundles deleted by their tenant's quota since start.
    pub evicted_quota: u64,
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
    memory: Mutex<Memory>,
    /// The Galois elements of the plan's steps (exact conformance).
    galois_elements: BTreeSet<usize>,
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

fn mib(b: usize) -> f64 {
    b as f64 / (1u64 << 20) as f64
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
        let model = weights.inference.chain_form().map_err(HeNnError::from)?;
        let build = |plan, params| -> Result<Box<dyn Circuit>, ServiceError> {
            Ok(match mode {
                Mode::Batched => Box::new(BatchedCircuit::new(&model, plan, params, 128)?),
                Mode::PerImage => Box::new(PerImageCircuit::new(
                    &model,
                    plan,
                    params,
                    StartLevel::default(),
                )?),
            })
        };
        let (name, dataset) = (&weights.model.name, weights.config.dataset);
        if let (Some(policy), None) = (config.flooding, &params) {
            // The planner's room for flooding: auto parameters whose
            // output scale carries the flood, raised until it fits.
            let mut bits = default_scale_bits(weights);
            for _ in 0..4 {
                let (plan, p) = resolve_params_for_output_scale(weights, mode, bits)?;
                let circuit = build(plan, p)?;
                match policy.size(circuit.as_ref())? {
                    Ok(f) => return Server::build(circuit, name, dataset, config, Some(f)),
                    Err(need) => bits = (need.ceil() as u32 + 1).max(bits + 1),
                }
            }
            return Err(ServiceError::bad(format!(
                "statistical flooding ({} bits, 2^{} queries) found no parameters up to a {bits}-bit scale",
                policy.security_bits, policy.queries_log2
            )));
        }
        let (plan, params, _) = resolve_params(weights, params, mode)?;
        Server::with_circuit(build(plan, params)?, name, dataset, config)
    }
}

/// Refuse a flooding width that leaves under 4 bits of logit precision.
fn check_flood_bits(bits: u32, n: usize, out_scale: f64) -> Result<(), ServiceError> {
    let slot_bits = Flood::Uniform { bits }.slot_noise_bits(n);
    let max = (out_scale.log2() - 4.0 - Flood::Uniform { bits: 0 }.slot_noise_bits(n)).floor();
    if slot_bits + 4.0 > out_scale.log2() {
        return Err(ServiceError::bad(format!(
            "--flood-bits {bits} would put slot noise 2^{slot_bits:.1} on logits of scale 2^{:.1}; at most {max} bits keep 4 bits of precision",
            out_scale.log2()
        )));
    }
    Ok(())
}

impl<C: Circuit> Server<C> {
    /// Serve `circuit` (the model `model` trained on `dataset`).
    pub fn with_circuit(
        circuit: C,
        model: &str,
        dataset: slaf_nn::data::Dataset,
        config: ServerConfig,
    ) -> Result<Self, ServiceError> {
        let flooding = match config.flooding {
            Some(policy) => Some(policy.size(&circuit)?.map_err(|need| {
                ServiceError::bad(format!(
                    "statistical flooding ({} bits, 2^{} queries, logits to 2^-{}) needs an output scale of 2^{need:.1}; these parameters give 2^{:.1}. Without --params, serve --flood picks parameters with room for it",
                    policy.security_bits,
                    policy.queries_log2,
                    policy.precision_bits,
                    circuit.layout().output_scale().log2()
                ))
            })?),
            None => None,
        };
        Self::build(circuit, model, dataset, config, flooding)
    }

    fn build(
        circuit: C,
        model: &str,
        dataset: slaf_nn::data::Dataset,
        config: ServerConfig,
        flooding: Option<Flooding>,
    ) -> Result<Self, ServiceError> {
        let params = circuit.context().params();
        let layout = circuit.layout().clone();
        let n = params.n();
        let images_per_request = match layout.mode() {
            Mode::Batched => layout.images_per_call(),
            Mode::PerImage => config.max_images_per_request.max(1),
        };
        let keys = circuit.keys();
        if let Some(bits) = config.flood_bits {
            check_flood_bits(bits, n, layout.output_scale())?;
        }
        let limits = WireLimits::for_plan(params, &layout, &keys, images_per_request);
        let galois_elements = keys
            .galois_steps
            .iter()
            .map(|&s| galois_element(s, n))
            .collect();
        if flooding.is_some() && config.flood_bits.is_some() {
            return Err(ServiceError::bad(
                "--flood-bits and --flood are two floodings: choose one",
            ));
        }
        let plan = ServicePlan {
            version: WIRE_VERSION,
            flood_bits: config.flood_bits,
            flooding,
            model: model.to_string(),
            dataset,
            params: params.literal().clone(),
            depth: circuit.plan().depth,
            layout,
            images_per_request,
            keys,
            limits,
        };
        Ok(Self {
            circuit,
            plan,
            config,
            memory: Mutex::new(Memory::default()),
            galois_elements,
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

    /// The bundles in memory and the evictions so far.
    pub fn bundle_stats(&self) -> BundleStats {
        self.memory
            .lock()
            .map(|m| BundleStats {
                bundles: m.entries.len(),
                bytes: m.bytes,
                evicted_memory: m.evicted.0,
                evicted_quota: m.evicted.1,
            })
            .unwrap_or_default()
    }

    /// Report the bundle counts and the evictions since the last call.
    pub fn report(&self, metrics: &Metrics) {
        if let Ok(mut m) = self.memory.lock() {
            let (mem, quota) = std::mem::take(&mut m.unreported);
            metrics.bundles(m.entries.len(), m.bytes, mem, quota);
        }
    }

    /// Check a bundle against the model and build its evaluator: the
    /// parameters, every key, and exactly the plan's Galois keys.
    fn evaluator_of(&self, bytes: &[u8]) -> Result<Entry, ServiceError> {
        let limit = self.plan.limits.bundle_bytes;
        if bytes.len() > limit {
            return Err(ServiceError::TooLarge {
                detail: format!(
                    "a bundle of {} bytes; this plan's bundles are at most {limit}",
                    bytes.len()
                ),
            });
        }
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
        let theirs: BTreeSet<usize> = gk
            .as_ref()
            .map(|g| g.elements())
            .unwrap_or_default()
            .into_iter()
            .collect();
        if theirs != self.galois_elements {
            let extra = theirs.difference(&self.galois_elements).count();
            let missing = self.galois_elements.difference(&theirs).count();
            return Err(ServiceError::bad(format!(
                "bundle: {} Galois keys, the plan lists exactly {} ({extra} not in the plan, {missing} of the plan's missing)",
                theirs.len(),
                self.galois_elements.len()
            )));
        }
        let ev = Evaluator::with_keys(ctx, EvaluationKeys::new(Some(rk), gk));
        check_keys(&ev, &self.plan.keys).map_err(|e| ServiceError::bad(format!("bundle: {e}")))?;
        Ok(Entry { ev, pk })
    }

    /// Put a checked bundle in memory, evicting least recently used
    /// bundles to fit the memory budget: any bundle when a store keeps
    /// them, else only `tenant`'s own. 503 when it cannot fit.
    fn insert(
        &self,
        tenant: &str,
        id: &str,
        entry: Entry,
        wire: usize,
    ) -> Result<Arc<Entry>, ServiceError> {
        let bytes = entry.bytes();
        let budget = self.config.memory_bytes;
        let entry = Arc::new(entry);
        let key = (tenant.to_string(), id.to_string());
        let mut m = self.memory.lock().map_err(poisoned)?;
        m.remove(&key);
        let shared = self.config.bundle_store.is_some();
        while m.bytes + bytes > budget {
            let victim = m
                .entries
                .iter()
                .filter(|(k, _)| shared || k.0 == tenant)
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else {
                return Err(ServiceError::Busy {
                    detail: format!(
                        "the server's memory for bundles is full ({:.0} of {:.0} MiB held by other tenants' bundles; this one needs {:.0} MiB): retry later",
                        mib(m.bytes),
                        mib(budget),
                        mib(bytes)
                    ),
                });
            };
            m.remove(&victim);
            m.evicted.0 += 1;
            m.unreported.0 += 1;
        }
        m.tick += 1;
        let tick = m.tick;
        m.bytes += bytes;
        m.entries.insert(
            key,
            Cached {
                entry: Arc::clone(&entry),
                bytes,
                wire,
                used: tick,
                added: tick,
            },
        );
        Ok(entry)
    }

    /// A tenant's registered bundles, oldest first: (key id, bytes as uploaded).
    fn registered(&self, tenant: &str) -> Result<Vec<(String, usize)>, ServiceError> {
        if let Some(store) = &self.config.bundle_store {
            return Ok(store
                .list(tenant)?
                .into_iter()
                .map(|b| (b.key_id, b.bytes))
                .collect());
        }
        let m = self.memory.lock().map_err(poisoned)?;
        let mut mine: Vec<(u64, String, usize)> = m
            .entries
            .iter()
            .filter(|(k, _)| k.0 == tenant)
            .map(|(k, c)| (c.added, k.1.clone(), c.wire))
            .collect();
        mine.sort();
        Ok(mine.into_iter().map(|(_, id, w)| (id, w)).collect())
    }

    /// Make room in `tenant`'s quota for one more bundle of `wire` bytes
    /// by deleting its oldest bundles.
    fn enforce_quota(&self, tenant: &Tenant, wire: usize) -> Result<(), ServiceError> {
        if wire > tenant.max_bytes {
            return Err(ServiceError::Quota {
                detail: format!(
                    "a bundle of {:.1} MiB; tenant {}'s quota is {:.1} MiB",
                    mib(wire),
                    tenant.name,
                    mib(tenant.max_bytes)
                ),
            });
        }
        let mut oldest = std::collections::VecDeque::from(self.registered(&tenant.name)?);
        let mut total: usize = oldest.iter().map(|b| b.1).sum();
        while oldest.len() + 1 > tenant.max_bundles.max(1) || total + wire > tenant.max_bytes {
            let Some((id, bytes)) = oldest.pop_front() else {
                break;
            };
            self.forget(&tenant.name, &id)?;
            total -= bytes.min(total);
            let mut m = self.memory.lock().map_err(poisoned)?;
            m.evicted.1 += 1;
            m.unreported.1 += 1;
        }
        Ok(())
    }

    /// Drop a bundle from memory and from the store.
    fn forget(&self, tenant: &str, id: &str) -> Result<bool, ServiceError> {
        let in_memory = self
            .memory
            .lock()
            .map_err(poisoned)?
            .remove(&(tenant.to_string(), id.to_string()));
        let stored = match &self.config.bundle_store {
            Some(store) => {
                let there = store.exists(tenant, id)?;
                store.delete(tenant, id)?;
                there
            }
            None => false,
        };
        Ok(in_memory || stored)
    }

    /// Mark a bundle in memory as used; whether it is there.
    fn touch(&self, tenant: &str, id: &str) -> Result<Option<Arc<Entry>>, ServiceError> {
        let mut m = self.memory.lock().map_err(poisoned)?;
        m.tick += 1;
        let tick = m.tick;
        Ok(m.entries
            .get_mut(&(tenant.to_string(), id.to_string()))
            .map(|c| {
                c.used = tick;
                Arc::clone(&c.entry)
            }))
    }

    /// Register a bundle for `tenant` (`POST /v1/keys`); returns its key
    /// id and whether it was new. Registering the same bundle twice is a
    /// no-op; a new one past the tenant's quota deletes its oldest.
    pub fn register(&self, tenant: &Tenant, bytes: &[u8]) -> Result<(String, bool), ServiceError> {
        let id = key_id(bytes);
        if self.touch(&tenant.name, &id)?.is_some() {
            return Ok((id, false));
        }
        if let Some(store) = &self.config.bundle_store
            && store.exists(&tenant.name, &id)?
        {
            return Ok((id, false));
        }
        let entry = self.evaluator_of(bytes)?;
        self.enforce_quota(tenant, bytes.len())?;
        if let Some(store) = &self.config.bundle_store {
            store.put(&tenant.name, &id, bytes)?;
        }
        self.insert(&tenant.name, &id, entry, bytes.len())?;
        Ok((id, true))
    }

    /// Whether `tenant` has registered the key id (in memory or in the store).
    pub fn knows(&self, tenant: &Tenant, id: &str) -> Result<bool, ServiceError> {
        if !is_key_id(id) {
            return Ok(false);
        }
        if self.touch(&tenant.name, id)?.is_some() {
            return Ok(true);
        }
        match &self.config.bundle_store {
            Some(store) => store.exists(&tenant.name, id),
            None => Ok(false),
        }
    }

    /// Delete `tenant`'s bundle (`DELETE /v1/keys/{key_id}`).
    pub fn delete(&self, tenant: &Tenant, id: &str) -> Result<(), ServiceError> {
        if is_key_id(id) && self.forget(&tenant.name, id)? {
            return Ok(());
        }
        Err(ServiceError::UnknownKey {
            key_id: id.chars().take(80).collect(),
        })
    }

    fn evaluator(&self, tenant: &str, id: &str) -> Result<Arc<Entry>, ServiceError> {
        let unknown = || ServiceError::UnknownKey {
            key_id: id.chars().take(80).collect(),
        };
        if !is_key_id(id) {
            return Err(unknown());
        }
        if let Some(e) = self.touch(tenant, id)? {
            return Ok(e);
        }
        // A bundle another replica stored, or one evicted from memory:
        // reload it (checked again).
        let Some(store) = &self.config.bundle_store else {
            return Err(unknown());
        };
        let Some(bytes) = store.get(tenant, id, self.plan.limits.bundle_bytes)? else {
            return Err(unknown());
        };
        let entry = self.evaluator_of(&bytes)?;
        self.insert(tenant, id, entry, bytes.len())
    }

    /// Evaluate one request of `tenant` (`POST /v1/infer/{key_id}`): a
    /// message of ciphertexts in the plan's layout in, a message of logit
    /// ciphertexts out (batched: one per logit; per-image: one per image).
    pub fn infer(
        &self,
        tenant: &Tenant,
        id: &str,
        body: &[u8],
    ) -> Result<(Vec<u8>, EvalStats), ServiceError> {
        let entry = self.evaluator(&tenant.name, id)?;
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
        let out = match (self.config.flood_bits, self.plan.flooding) {
            (_, Some(f)) => {
                let mut rng = ChaCha20Rng::from_os_rng();
                let flood = Flood::Gaussian {
                    sigma_bits: f.sigma_bits,
                };
                let flooded = out
                    .iter()
                    .map(|ct| {
                        let low = ev.mod_down_to(ct, f.output_level.min(ct.level()))?;
                        ev.flood_with(&low, &entry.pk, flood, &mut rng)
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(HeNnError::from);
                wipe_rng(&mut rng);
                flooded?
            }
            (Some(bits), None) => {
                let mut rng = ChaCha20Rng::from_os_rng();
                let flooded = out
                    .iter()
                    .map(|ct| ev.flood(ct, &entry.pk, bits, &mut rng))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(HeNnError::from);
                wipe_rng(&mut rng);
                flooded?
            }
            (None, None) => out,
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
