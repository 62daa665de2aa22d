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
    /// Automatic selection found no secure ring for the requested chain.
    #[error("no secure N <= 65536 holds a {total_bits}-bit chain with {slots} slots ({reason})")]
    NoSecureRing {
        /// Bits of the smallest chain that fits the request.
        total_bits: u32,
        /// Slots the request needs.
        slots: usize,
        /// The last ring's refusal.
        reason: String,
    },
    /// The special prime is smaller than a chain prime.
    #[error(
        "invalid CKKS parameters: the special modulus P ({special_bits} bits) must be at least as large as every key-switching digit's modulus (the largest has {chain_bits} bits); key switching would return noise"
    )]
    SpecialPrimeTooSmall {
        /// Bits of the special modulus P (the product of the special primes).
        special_bits: u32,
        /// Bits of the largest digit's modulus (one chain prime when dnum = L+1).
        chain_bits: u32,
    },
    /// An encoded value does not fit the level's modulus.
    #[error(
        "cannot encode: max |coefficient| = 2^{coeff_bits:.1} (values up to {max_value:.3e} at scale 2^{scale_bits:.1}) reaches the bound 2^{bound_bits:.1} of level {level} (Q = 2^{log_q:.1}); lower the scale or the values, or encode at a higher level"
    )]
    EncodingOverflow {
        /// log2 of the largest integer coefficient.
        coeff_bits: f64,
        /// Largest |value| encoded.
        max_value: f64,
        /// log2 of the scale.
        scale_bits: f64,
        /// The level.
        level: usize,
        /// log2 of Q_level.
        log_q: f64,
        /// log2 of the bound (Q_level / 2 less the margin).
        bound_bits: f64,
    },
    /// A scale is not finite and positive, or leaves no room below the modulus.
    #[error(
        "cannot {op}: scale out of bounds: log2(scale) = {scale_bits:.2} with {headroom_bits} bits of headroom reaches log2(Q) = {log_q:.2} at level {level} (rescale first, or multiply at a higher level)"
    )]
    ScaleOutOfBounds {
        /// The operation.
        op: &'static str,
        /// log2 of the scale (NaN or inf when it is not finite).
        scale_bits: f64,
        /// Headroom required (bits).
        headroom_bits: u32,
        /// The level.
        level: usize,
        /// log2 of Q_level.
        log_q: f64,
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
    /// A bootstrap whose EvalMod cannot cover the integer part ModRaise adds.
    #[error(
        "cannot bootstrap: EvalMod is fitted for |t| < K = {k}, but {what} bounds the integer part |I| by {bound} (fit it for K >= {need})"
    )]
    BootstrapRange {
        /// The K EvalMod was fitted for.
        k: f64,
        /// The bound on |I|.
        bound: f64,
        /// The smallest K that covers it.
        need: f64,
        /// Where the bound comes from.
        what: String,
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
