//! Per-image encrypted inference: one image per ciphertext in im2col
//! layout; convolution by plaintext multiplies and rotation sums, dense
//! layers by the diagonal method with baby-step giant-step.
