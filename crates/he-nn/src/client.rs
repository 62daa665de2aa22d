//! The client's side of encrypted inference: the secret key, the
//! evaluation keys a circuit needs ([`crate::circuit::KeyRequirements`]),
//! encryption of images and decryption of logits, both through the
//! circuit's [`Layout`]. The in-process engines and the service's client
//! are this plus, respectively, a local circuit and an HTTP connection.
//!
//! Invariants: the secret key and the encryption generator never leave a
//! [`ClientSide`] (its `Debug` prints neither; the generator is wiped on
//! drop); keys come from one-way derivations of a 256-bit seed, and
//! encryption randomness from another derivation (or the OS CSPRNG), so
//! the generator kept for encryption cannot regenerate the keys.
//!
//! Encryption randomness: one input ciphertext is encrypted from the
//! client's generator directly; several are encrypted in parallel, in 16
//! groups of consecutive ciphertexts, each group from its own generator
//! keyed by the client's. Seeded runs are therefore reproducible
//! ciphertext for ciphertext.

use crate::HeNnError;
use crate::circuit::KeyRequirements;
use crate::layout::{Layout, Probe, ProbeValues};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use slaf_ckks::keys::wipe_rng;
use slaf_ckks::{
    Ciphertext, CkksContext, CkksError, Encoder, Encryptor, EvaluationKeys, GaloisKeys,
    KeyGenerator, KeySeed, PublicKey, RelinearizationKey, SecretKey, SeededCiphertext, decrypt,
    encrypt_symmetric, encrypt_symmetric_seeded,
};
use std::sync::{Arc, Mutex};

/// How a client encrypts its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// With the public key, as TenSEAL does: fresh noise `v e + e0 + e1 s`.
    Public,
    /// With the secret key, which the client owns: fresh noise `e` alone
    /// (about 7 bits more input precision at N = 8192).
    Symmetric,
}

/// The derivation labels of a client's keys and encryption generator
/// (each engine keeps its own, so that seeded runs stay reproducible).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedLabels {
    /// Label of the key derivation.
    pub keys: &'static str,
    /// Label of the encryption generator's derivation; `None`: the OS
    /// CSPRNG (fresh randomness on every run).
    pub encryption: Option<&'static str>,
}

/// The evaluation keys a client gives a circuit (no secret in them).
pub struct EvaluationKeySet {
    /// The public key (a server uses it only to re-randomise when flooding).
    pub public: PublicKey,
    /// The relinearisation key.
    pub relinearization: RelinearizationKey,
    /// Galois keys for exactly the circuit's rotation steps (None: none needed).
    pub galois: Option<GaloisKeys>,
}

impl EvaluationKeySet {
    /// Bytes in memory of every key.
    pub fn byte_size(&self) -> usize {
        self.public.byte_size()
            + self.relinearization.byte_size()
            + self.galois.as_ref().map_or(0, GaloisKeys::byte_size)
    }

    /// The keys an [`slaf_ckks::Evaluator`] evaluates with (the public key stays here).
    pub fn evaluation_keys(&self) -> EvaluationKeys {
        EvaluationKeys::new(Some(self.relinearization.clone()), self.galois.clone())
    }
}

impl std::fmt::Debug for EvaluationKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EvaluationKeySet({} bytes, {} Galois keys)",
            self.byte_size(),
            self.galois.as_ref().map_or(0, GaloisKeys::len)
        )
    }
}

/// A client: secret key, public key, encryption generator and the layout
/// it encodes with.
pub struct ClientSide {
    ctx: Arc<CkksContext>,
    encoder: Encoder,
    sk: SecretKey,
    pk: PublicKey,
    layout: Layout,
    encryption: Encryption,
    rng: Mutex<ChaCha20Rng>,
}

impl std::fmt::Debug for ClientSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientSide({}, {:?} encryption, .. secret key redacted ..)",
            self.layout.mode().name(),
            self.encryption
        )
    }
}

impl Drop for ClientSide {
    fn drop(&mut self) {
        // The encryption generator could recompute the inputs' randomness.
        if let Ok(rng) = self.rng.get_mut() {
            wipe_rng(rng);
        }
    }
}

fn poisoned<T>(_: T) -> HeNnError {
    HeNnError::InvalidRequest {
        detail: "the encryption generator's lock is poisoned (an earlier call panicked)".into(),
    }
}

impl ClientSide {
    /// Keys for a circuit on `ctx` that needs `need`, from `seed` (None:
    /// the OS CSPRNG; a seeded client's keys are for tests only): the
    /// client and the evaluation keys it gives the circuit. Key order:
    /// public, relinearisation, then Galois keys for `need.galois_steps`.
    pub fn generate(
        ctx: &Arc<CkksContext>,
        layout: Layout,
        need: &KeyRequirements,
        seed: Option<KeySeed>,
        labels: SeedLabels,
        encryption: Encryption,
    ) -> (Self, EvaluationKeySet) {
        let seed = seed.unwrap_or_else(KeySeed::from_os_rng);
        let mut keygen = KeyGenerator::from_seed(ctx, &seed.derive(labels.keys));
        let rng = match labels.encryption {
            Some(label) => seed.derive(label).rng(),
            None => ChaCha20Rng::from_os_rng(),
        };
        drop(seed);
        let public = keygen.public_key();
        let relinearization = keygen.relinearization_key();
        let galois =
            (!need.galois_steps.is_empty()).then(|| keygen.galois_keys(&need.galois_steps, false));
        let sk = keygen.into_secret_key();
        let keys = EvaluationKeySet {
            public: public.clone(),
            relinearization,
            galois,
        };
        (
            Self::from_keys(ctx, layout, sk, public, encryption, rng),
            keys,
        )
    }

    /// A client from its keys (e.g. a secret key regenerated from a stored
    /// seed) and an encryption generator.
    pub fn from_keys(
        ctx: &Arc<CkksContext>,
        layout: Layout,
        sk: SecretKey,
        pk: PublicKey,
        encryption: Encryption,
        rng: ChaCha20Rng,
    ) -> Self {
        Self {
            ctx: Arc::clone(ctx),
            encoder: Encoder::new(ctx),
            sk,
            pk,
            layout,
            encryption,
            rng: Mutex::new(rng),
        }
    }

    /// The layout it encodes with.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The CKKS context.
    pub fn context(&self) -> &Arc<CkksContext> {
        &self.ctx
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.pk
    }

    /// The input ciphertexts of `images` (pixels in [0, 1]) in the layout,
    /// at its start level and input scale.
    pub fn encrypt(&self, images: &[&[f32]]) -> Result<Vec<Ciphertext>, HeNnError> {
        let vectors = self.layout.encode(images)?;
        let (level, scale) = (self.layout.start_level(), self.layout.input_scale());
        let encode = |v: &[f64]| self.encoder.encode(v, level, scale);
        if let [v] = vectors.as_slice() {
            let pt = encode(v)?;
            let mut rng = self.rng.lock().map_err(poisoned)?;
            return Ok(vec![match self.encryption {
                Encryption::Public => {
                    Encryptor::new(&self.ctx, self.pk.clone(), &mut *rng).encrypt(&pt)
                }
                Encryption::Symmetric => encrypt_symmetric(&self.ctx, &self.sk, &pt, &mut *rng),
            }]);
        }
        self.in_groups(&vectors, |mut rng, chunk| {
            let out = match self.encryption {
                Encryption::Public => {
                    let mut enc = Encryptor::new(&self.ctx, self.pk.clone(), rng.clone());
                    chunk
                        .iter()
                        .map(|v| Ok(enc.encrypt(&encode(v)?)))
                        .collect::<Result<Vec<_>, CkksError>>()
                }
                Encryption::Symmetric => chunk
                    .iter()
                    .map(|v| {
                        Ok(encrypt_symmetric(
                            &self.ctx,
                            &self.sk,
                            &encode(v)?,
                            &mut rng,
                        ))
                    })
                    .collect(),
            };
            wipe_rng(&mut rng);
            out
        })
    }

    /// As [`Self::encrypt`], symmetric and seed-compressed (half the bytes):
    /// what a client uploads.
    pub fn encrypt_seeded(&self, images: &[&[f32]]) -> Result<Vec<SeededCiphertext>, HeNnError> {
        let vectors = self.layout.encode(images)?;
        let (level, scale) = (self.layout.start_level(), self.layout.input_scale());
        self.in_groups(&vectors, |mut rng, chunk| {
            let out = chunk
                .iter()
                .map(|v| {
                    let pt = self.encoder.encode(v, level, scale)?;
                    Ok(encrypt_symmetric_seeded(&self.ctx, &self.sk, &pt, &mut rng))
                })
                .collect::<Result<Vec<_>, CkksError>>();
            wipe_rng(&mut rng);
            out
        })
    }

    /// Encrypt `vectors` in 16 groups of consecutive vectors, in parallel,
    /// each from a generator keyed by the client's.
    fn in_groups<T: Send>(
        &self,
        vectors: &[Vec<f64>],
        encrypt: impl Fn(ChaCha20Rng, &[Vec<f64>]) -> Result<Vec<T>, CkksError> + Sync,
    ) -> Result<Vec<T>, HeNnError> {
        const GROUPS: usize = 16;
        let seeds: Vec<KeySeed> = {
            let mut rng = self.rng.lock().map_err(poisoned)?;
            (0..GROUPS).map(|_| KeySeed::from_rng(&mut *rng)).collect()
        };
        let per = vectors.len().div_ceil(GROUPS).max(1);
        let groups: Vec<Vec<T>> = seeds
            .into_par_iter()
            .enumerate()
            .map(|(g, seed)| {
                let range = (g * per).min(vectors.len())..((g + 1) * per).min(vectors.len());
                encrypt(seed.rng(), &vectors[range])
            })
            .collect::<Result<_, _>>()?;
        Ok(groups.into_iter().flatten().collect())
    }

    /// The decoded slots of one ciphertext.
    pub fn decrypt_slots(&self, ct: &Ciphertext) -> Vec<f64> {
        self.encoder.decode(&decrypt(&self.ctx, &self.sk, ct))
    }

    /// The root mean square of the imaginary parts of a ciphertext's slots
    /// (in units of the message): the noise of a circuit on real values.
    pub fn imaginary_rms(&self, ct: &Ciphertext) -> f64 {
        let slots = self
            .encoder
            .decode_complex(&decrypt(&self.ctx, &self.sk, ct));
        let n = slots.len().max(1) as f64;
        (slots.iter().map(|(_, im)| im * im).sum::<f64>() / n).sqrt()
    }

    /// The logits of `images` images from the output ciphertexts.
    pub fn decrypt(
        &self,
        outputs: &[Ciphertext],
        images: usize,
    ) -> Result<Vec<Vec<f64>>, HeNnError> {
        let slots: Vec<Vec<f64>> = outputs.par_iter().map(|c| self.decrypt_slots(c)).collect();
        self.layout.decode(slots, images)
    }

    /// The true values an intermediate ciphertext holds (the precision
    /// option), per image of a call of `images` images.
    pub fn probe(&self, p: &Probe, ct: &Ciphertext, images: usize) -> Vec<ProbeValues> {
        self.layout.probe_values(p, &self.decrypt_slots(ct), images)
    }
}
