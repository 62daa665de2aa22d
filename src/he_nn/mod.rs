//! Encrypted inference: runs a trained model's inference form on CKKS
//! ciphertexts (per image, or batched with one image per slot) and reports
//! accuracy, agreement with plaintext and time per stage.
//!
//! Filled in by the encrypted-inference issue; nothing is exported yet.
