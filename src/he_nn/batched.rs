//! Batched encrypted inference: one image per CKKS slot (CryptoNets-style
//! SIMD); every layer is a scalar-times-ciphertext sum, no rotations.
