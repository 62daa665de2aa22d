//! Circuit planner: multiplicative depth of an inference model per layer,
//! choice of CKKS parameters (a SPEC preset, or the smallest secure chain
//! that fits), and a typed refusal of a chain that is too short.
