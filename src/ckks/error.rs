//! Typed errors of the CKKS layer.

/// Errors of the CKKS scheme.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CkksError {
    /// The parameters are malformed (ring degree, chain, scale).
    #[error("invalid CKKS parameters: {detail}")]
    InvalidParameters {
        /// What is wrong.
        detail: String,
    },
    /// The modulus chain exceeds the HE-standard 128-bit bound for N.
    #[error(
        "insecure CKKS parameters: total modulus of {total_bits} bits exceeds the HE-standard 128-bit bound of {bound} bits for N = {n} (use allow_insecure / --insecure-params to override for experiments)"
    )]
    InsecureParameters {
        /// Ring degree.
        n: usize,
        /// Sum of the chain's bit sizes.
        total_bits: u32,
        /// The bound for N.
        bound: u32,
    },
    /// No level left for an operation that consumes one.
    #[error(
        "cannot {op}: the ciphertext is at level {level}, no prime left to drop (depth exhausted)"
    )]
    LevelExhausted {
        /// The operation.
        op: &'static str,
        /// Its level.
        level: usize,
    },
    /// Operands do not fit together.
    #[error("cannot {op}: {detail}")]
    Mismatch {
        /// The operation.
        op: &'static str,
        /// What differs.
        detail: String,
    },
    /// A value does not fit the encoding.
    #[error("cannot encode: {detail}")]
    Encoding {
        /// What is wrong.
        detail: String,
    },
    /// A rotation has no Galois key.
    #[error("no Galois key for rotation by {step} (generate it with the rotation set)")]
    MissingGaloisKey {
        /// The rotation step.
        step: i64,
    },
    /// A ciphertext has the wrong shape for the operation (e.g. 3 parts before relinearisation).
    #[error("cannot {op}: ciphertext has {parts} parts, expected {expected}")]
    Degree {
        /// The operation.
        op: &'static str,
        /// Parts found.
        parts: usize,
        /// Parts expected.
        expected: usize,
    },
    /// A serialized object is malformed or belongs to other parameters.
    #[error("cannot load CKKS object: {detail}")]
    Deserialize {
        /// What is wrong.
        detail: String,
    },
}
