//! # slaf-he
//!
//! A reproducibility suite for privacy-preserving CNN inference with
//! homomorphic encryption (CKKS) and self-learning activation functions
//! (SLAF). It reimplements, in Rust, the experiments of
//! Pulido-Gaytan & Tchernykh, *PLOS ONE* 19(7): e0306420 (2024) and
//! Pulido-Gaytan et al., *IEEE Access* (2023); see `../shared/SPEC.md`.
//!
//! The modules form layers that only ever depend downwards:
//!
//! | module | purpose |
//! |---|---|
//! | [`data`] | MNIST loading with checksum verification, seeded mini-batches |
//! | [`ckks`] | our own RNS-CKKS scheme (ring, keys, encoder, evaluator) |
//! | [`nn`] | plaintext CNN layers, SLAF activations, optimisers, training |
//! | [`he_nn`] | encrypted inference of trained models under CKKS |
//! | [`approx`] | sign-function approximations and their metrics (P2 study) |
//! | [`report`] | tables and figures written into `results/` |
//! | [`experiments`] | the papers' experiments (training, encrypted inference, the P2 study) as library functions |
//! | [`service`] | client/server encrypted inference over HTTP (the server holds no secret key) |
//! | [`machine`] | CPU model, SIMD features and load average for timing artifacts |
//! | [`progress`] | progress bars that hide themselves when not on a terminal |
#![warn(missing_docs)]

pub mod approx;
pub mod ckks;
pub mod data;
pub mod experiments;
pub mod he_nn;
pub mod machine;
pub mod nn;
pub mod progress;
pub mod report;
pub mod service;

pub use ndarray;
