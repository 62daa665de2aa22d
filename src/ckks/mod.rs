//! Our own RNS-CKKS homomorphic encryption scheme.
//!
//! Layered like Lattigo: modular arithmetic and RNS polynomial rings (on
//! `tfhe-ntt`) -> parameters, keys, encoder and encryptor -> evaluator ->
//! polynomial evaluator and linear transforms. The CKKS core issue fills it
//! in; nothing is exported yet.

pub mod circuits;
