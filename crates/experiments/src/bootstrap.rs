//! One measured CKKS bootstrap: keys made, uniform slots in [-1, 1]
//! encrypted at level 0, bootstrapped, decrypted, compared with the values
//! and with the simulator's prediction. `slaf-he bench ckks --bootstrap`
//! and `tests/bootstrap_scaling.rs` both run it.

use rand::Rng;
use slaf_ckks::bootstrap::{BootstrapTimes, Bootstrapper};
use slaf_ckks::{
    CkksContext, CkksError, Encoder, Encryptor, EvaluationKeys, Evaluator, KeyGenerator, KeySeed,
    decrypt,
};
use std::sync::Arc;
use std::time::Instant;

/// What one run measured.
#[derive(Clone, Debug)]
pub struct BootstrapRun {
    /// Seconds to make the evaluation keys.
    pub keygen_s: f64,
    /// Bytes of the evaluation keys in memory.
    pub key_bytes: usize,
    /// Galois keys (rotations and the conjugation).
    pub rotation_keys: usize,
    /// Median seconds per bootstrap.
    pub bootstrap_s: f64,
    /// The median run's phases.
    pub times: BootstrapTimes,
    /// The level the result came back at.
    pub level: usize,
    /// −log2 of the largest slot error.
    pub min_bits: f64,
    /// −log2 of the mean slot error.
    pub mean_bits: f64,
    /// −log2 of the model's predicted largest error.
    pub predicted_bits: f64,
}

/// Bootstrap `reps` times (the median is reported) a ciphertext of
/// uniform values in [-1, 1] (one per slot of `boot`'s packing,
/// replicated) at level 0 and scale `delta`. Keys come from `seed`:
/// with `hamming_weight`, [`Bootstrapper::keygen`] (sparse-secret
/// encapsulation); without, a relinearisation key and the circuit's
/// Galois keys only (a dense secret). `seed` also draws the values.
pub fn measure(
    ctx: &Arc<CkksContext>,
    boot: &Bootstrapper,
    hamming_weight: Option<usize>,
    delta: f64,
    reps: usize,
    seed: &KeySeed,
) -> Result<BootstrapRun, CkksError> {
    let clock = Instant::now();
    let mut kg = KeyGenerator::from_seed(ctx, &seed.derive("bootstrap keys"));
    let pk = kg.public_key();
    let keys = match hamming_weight {
        Some(h) => boot.keygen(&mut kg, &[], h)?,
        None => EvaluationKeys::new(
            Some(kg.relinearization_key()),
            Some(kg.galois_keys(&boot.rotation_steps(), true)),
        ),
    };
    let keygen_s = clock.elapsed().as_secs_f64();
    let rotation_keys = keys.galois().map_or(0, |g| g.len());
    let key_bytes = keys.relin().map_or(0, |k| k.byte_size())
        + keys.galois().map_or(0, |g| g.byte_size())
        + keys.encapsulation().map_or(0, |e| e.byte_size());
    let model = boot.model(keys.encapsulation().map(|e| e.integer_bound()));
    let ev = Evaluator::with_keys(ctx, keys);
    let enc = Encoder::new(ctx);
    let mut encryptor = Encryptor::new(ctx, pk, seed.derive("bootstrap encryption").rng());
    let mut rng = seed.derive("bootstrap values").rng();
    let short: Vec<f64> = (0..boot.slots())
        .map(|_| rng.random_range(-1.0..=1.0))
        .collect();
    let xs = boot.replicate(&short);
    let ct = encryptor.encrypt(&enc.encode(&xs, 0, delta)?);
    let mut runs = Vec::with_capacity(reps.max(1));
    for _ in 0..reps.max(1) {
        let clock = Instant::now();
        let (out, times) = boot.bootstrap_timed(&ev, &ct, delta)?;
        runs.push((clock.elapsed().as_secs_f64(), times, out));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (bootstrap_s, times, out) = &runs[runs.len() / 2];
    let got = enc.decode(&decrypt(ctx, kg.secret_key(), out));
    let errs: Vec<f64> = xs.iter().zip(&got).map(|(a, b)| (a - b).abs()).collect();
    let worst = errs.iter().fold(0f64, |m, &e| m.max(e));
    let mean = errs.iter().sum::<f64>() / errs.len() as f64;
    Ok(BootstrapRun {
        keygen_s,
        key_bytes,
        rotation_keys,
        bootstrap_s: *bootstrap_s,
        times: *times,
        level: out.level(),
        min_bits: -worst.log2(),
        mean_bits: -mean.log2(),
        predicted_bits: -model.predicted_error(delta, &xs).log2(),
    })
}
