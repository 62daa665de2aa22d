//! Plaintext neural networks: layers with hand-written forward and backward
//! passes, self-learning activation functions (SLAF), optimisers, learning
//! rate schedules and the training loop for CNN1, CNN2 and CryptoNets.
//!
//! Filled in by the training-engine issue; nothing is exported yet.
