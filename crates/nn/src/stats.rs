//! The small statistics every layer above shares: the predicted class of a
//! row of logits ([`argmax`]) and nearest-rank percentiles
//! ([`percentile`]), so that training, plaintext inference, encrypted
//! inference, the service client and the reports count a prediction and a
//! tail error the same way.
//!
//! Invariants: [`argmax`] takes the first of equal maxima and a NaN never
//! wins; [`percentile`] is the nearest-rank percentile (no interpolation),
//! 0 for no values.

/// Index of the largest value: the first of equal maxima; a NaN never
/// wins; 0 when empty or when no value exceeds minus infinity.
pub fn argmax(values: impl IntoIterator<Item = f64>) -> usize {
    let mut best = (0usize, f64::NEG_INFINITY);
    for (i, v) in values.into_iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Nearest-rank percentile `p` in (0, 1] of `values`: the smallest value
/// with at least `p · n` values at or below it (sorted by `total_cmp`);
/// 0 when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_maximum_and_skips_nan() {
        assert_eq!(argmax([1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax([f64::NAN, -1.0, 5.0]), 2);
        assert_eq!(argmax([f64::NAN, f64::NAN]), 0);
        assert_eq!(argmax(std::iter::empty()), 0);
        assert_eq!(argmax([-0.0, 0.0]), 0);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.01), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.95), 3.0);
    }
}
