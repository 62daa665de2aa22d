//! TFHE-rs exact comparison: every encrypted comparison of the edge cases
//! (equal values, negatives, zero, range extremes, one quantum apart) and a
//! parallel batch agrees with plaintext, and sign(enc(1) - enc(0.5)) = +1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly
#![cfg(feature = "tfhe-rs")]

use slaf_approx::tfhe_exact::{FixedPoint, edge_cases, run_exact_comparison};

#[test]
fn tfhe_comparison_is_exact_on_edge_cases() {
    let fmt = FixedPoint::default();
    let pairs = edge_cases(fmt);
    let report = run_exact_comparison(fmt, &pairs, pairs.len(), 8).expect("tfhe run");
    assert_eq!(report.cases.len(), pairs.len() + 8);
    for c in &report.cases {
        assert_eq!(c.expected, c.decrypted, "{c:?}");
    }
    assert!(report.all_exact());
    // Equal values are not greater; one quantum apart is resolved.
    assert!(report.cases.iter().any(|c| c.a == c.b && !c.decrypted));
    assert!(
        report
            .cases
            .iter()
            .any(|c| c.a > c.b && (c.a - c.b) < 1e-3 && c.decrypted)
    );
    assert_eq!(report.value_1_minus_05, 1.0);
    assert!(report.keygen_ms > 0.0 && report.compare_ms > 0.0);
    assert!(report.batch_ms_per_comparison > 0.0);
}

#[test]
fn out_of_range_inputs_are_refused_before_any_key_generation() {
    let fmt = FixedPoint::default();
    let err = run_exact_comparison(fmt, &[(5.0, 0.0)], 1, 1).expect_err("refused");
    assert!(err.to_string().contains("cannot quantise 5"), "{err}");
}
