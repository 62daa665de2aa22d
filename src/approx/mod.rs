//! Approximations of sign(x) on [-1, 1] (least squares, composition, Newton,
//! Chebyshev, Fourier, minimax) with the P2 metrics and the interval
//! analysis.
//!
//! Filled in by the comparison-study issue; nothing is exported yet.
pub mod tfhe_exact;
