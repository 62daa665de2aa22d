//! # slaf-he
//!
//! A reproducibility suite for privacy-preserving CNN inference with
//! homomorphic encryption (CKKS) and self-learning activation functions
//! (SLAF). It reimplements, in Rust, the experiments of
//! Pulido-Gaytan & Tchernykh, *PLOS ONE* 19(7): e0306420 (2024) and
//! Pulido-Gaytan et al., *IEEE Access* (2023); see `../shared/SPEC.md`.
//!
//! This crate is the facade of the workspace: each layer is a crate of its
//! own, and a crate only ever depends on the layers below it (see
//! `ARCHITECTURE.md`). The modules here are those crates under one name:
//!
//! | module | crate | purpose |
//! |---|---|---|
//! | [`ckks`] | `slaf-ckks` | our own RNS-CKKS scheme (ring, keys, encoder, evaluator, circuits, parameters) |
//! | [`data`], [`nn`], [`progress`] | `slaf-nn` | data loaders; plaintext CNN layers, SLAF activations, optimisers, training |
//! | [`he_nn`] | `slaf-he-nn` | encrypted inference of trained models under CKKS |
//! | [`approx`] | `slaf-approx` | sign-function approximations and their metrics (P2 study) |
//! | [`report`], [`machine`] | `slaf-report` | tables and figures written into `results/`; the machine a timing ran on |
//! | [`experiments`] | `slaf-experiments` | the papers' experiments and the one evaluation harness |
//! | [`service`] | `slaf-service` | client/server encrypted inference over HTTP (the server holds no secret key) |
#![warn(missing_docs)]

pub use slaf_approx as approx;
pub use slaf_ckks as ckks;
pub use slaf_experiments as experiments;
pub use slaf_he_nn as he_nn;
pub use slaf_nn as nn;
pub use slaf_nn::{data, progress};
pub use slaf_report as report;
pub use slaf_report::machine;
pub use slaf_service as service;

pub use ndarray;
