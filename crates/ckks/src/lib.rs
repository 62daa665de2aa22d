//! Our own RNS-CKKS homomorphic encryption scheme.
//!
//! Layered like Lattigo: `math` (modular arithmetic, NTT-friendly primes)
//! and `ring` (RNS polynomials on `tfhe-ntt`; both private to this crate) -> [`params`] (validated
//! against the HE standard) and [`context`] -> [`encoder`], [`keys`],
//! encryption and decryption -> [`evaluator`] -> [`circuits`] (depth-optimal
//! polynomial evaluation, linear transforms). Scales are tracked exactly
//! through rescaling (no relabelling with a nominal scale).
//!
//! ```
//! use slaf_ckks::*;
//! use rand::SeedableRng;
//! let params = CkksParameters::new(CkksParametersLiteral::new(12, vec![40, 29, 40], 29)).unwrap();
//! let ctx = CkksContext::new(params).unwrap();
//! let mut kg = KeyGenerator::from_seed(&ctx, &KeySeed::for_tests(1)); // tests only
//! // (production: KeyGenerator::from_seed(&ctx, &KeySeed::from_os_rng()))
//! let pk = kg.public_key();
//! let rk = kg.relinearization_key();
//! let enc = Encoder::new(&ctx);
//! let mut encryptor = Encryptor::new(&ctx, pk, rand_chacha::ChaCha20Rng::seed_from_u64(2));
//! let ct = encryptor.encrypt(&enc.encode(&[1.5, -2.0], 1, 2f64.powi(29)).unwrap());
//! let sq = Evaluator::new(&ctx).mul_relin_rescale(&ct, &ct, &rk).unwrap();
//! let out = enc.decode(&decrypt(&ctx, kg.secret_key(), &sq));
//! assert!((out[0] - 2.25).abs() < 1e-4 && (out[1] - 4.0).abs() < 1e-4);
//! ```

/// Whether this build carries `tfhe-ntt`'s AVX-512 kernels (the `avx512`
/// feature); they run where the CPU has avx512f.
pub const AVX512_KERNELS: bool = cfg!(feature = "avx512");

mod basis;
pub mod bootstrap;
pub mod circuits;
pub mod context;
pub mod encoder;
pub mod error;
pub mod evaluator;
pub mod keys;
mod math;
pub mod params;
mod ring;
pub mod select;
pub mod serial;

pub use context::CkksContext;
pub use encoder::{Encoder, Plaintext};
pub use error::CkksError;
pub use evaluator::{
    Ciphertext, Encryptor, EvaluationKeys, Evaluator, Flood, SeededCiphertext, decrypt,
    encrypt_symmetric, encrypt_symmetric_seeded,
};
pub use keys::{
    EncapsulationKeys, GaloisKeys, KeyGenerator, KeySeed, PublicKey, RelinearizationKey, SecretKey,
};
pub use params::{CkksParameters, CkksParametersLiteral, Preset, Security, presets};
pub use ring::NttWords;
pub use select::{ChainRequest, auto, hybrid_key_switching};

/// Precision in bits of `got` against `want`: −log2 of the max and of the
/// mean absolute error (Lattigo's precision statistics, reduced).
pub fn precision_bits(got: &[f64], want: &[f64]) -> (f64, f64) {
    let errs: Vec<f64> = got.iter().zip(want).map(|(a, b)| (a - b).abs()).collect();
    let max = errs
        .iter()
        .fold(0.0f64, |a, &e| a.max(e))
        .max(f64::MIN_POSITIVE);
    let mean = (errs.iter().sum::<f64>() / errs.len().max(1) as f64).max(f64::MIN_POSITIVE);
    (-max.log2(), -mean.log2())
}

#[cfg(test)]
mod props_tests;
