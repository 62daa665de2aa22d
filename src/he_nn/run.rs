//! Drives an engine over a range of MNIST test images: plaintext and
//! encrypted accuracy, agreement, logit error, precision per layer, stage
//! times, sizes; the summary written as JSON, CSV and markdown.
