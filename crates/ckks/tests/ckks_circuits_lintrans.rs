//! The one linear-transform kernel (diagonal method, BSGS, hoisting) as a
//! dense matrix times an encrypted vector ([`dense_transform`]) vs ndarray,
//! on the CKKS bookkeeping simulator; chained transforms prove the
//! zero-padding layout is preserved (no replicated copy is assumed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slaf_ckks::circuits::sim::{SimBackend, SimCiphertext};
use slaf_ckks::circuits::{
    CircuitBackend, CircuitError, DiagTransform, dense_transform, dot_plain,
    inner_sum_rotation_steps,
};

const SCALE: f64 = 67108864.0; // 2^26

/// N = 2^12 (2048 slots), chain [40, 26 x 4].
fn backend() -> SimBackend {
    SimBackend::with_bit_sizes(&[40, 26, 26, 26, 26], 12, 8.0, 21)
}

fn random_matrix(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| rng.random_range(-0.5..0.5))
}

fn random_vec(n: usize, seed: u64) -> Array1<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array1::from_shape_fn(n, |_| rng.random_range(-1.0..1.0))
}

fn apply(
    bk: &SimBackend,
    m: &Array2<f64>,
    ct: &SimCiphertext,
) -> (
    SimCiphertext,
    DiagTransform<slaf_ckks::circuits::sim::SimPlaintext>,
) {
    let (rows, cols) = m.dim();
    let flat: Vec<f64> = m.iter().copied().collect();
    let lt = dense_transform(bk, &flat, rows, cols, ct.level).unwrap();
    let out = lt.apply(bk, ct).unwrap();
    (out, lt)
}

fn check(out: &SimCiphertext, want: &Array1<f64>, tol: f64, zero_tail: bool) {
    let err = want
        .iter()
        .zip(&out.values)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(err < tol, "max error {err:e} >= {tol:e}");
    if !zero_tail {
        return;
    }
    let tail = out.values[want.len()..]
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(tail < tol, "slots past the output are not zero: {tail:e}");
}

#[test]
fn shapes_square_and_rectangular_vs_ndarray() {
    for (rows, cols) in [
        (10usize, 64usize),
        (64, 256),
        (64, 64),
        (100, 500),
        (256, 10),
        (3, 2048),
    ] {
        let bk = backend();
        let m = random_matrix(rows, cols, (rows * 7 + cols) as u64);
        let v = random_vec(cols, cols as u64);
        let ct = bk.encrypt(v.as_slice().unwrap(), SCALE);
        let (out, lt) = apply(&bk, &m, &ct);
        assert_eq!(out.level, ct.level - 1);
        assert_eq!(out.scale, SCALE, "exact input scale");
        // Error: cols products of rounding errors ~2^-26 each, plus noise.
        let tol = (cols as f64).sqrt() * 64.0 / SCALE * 8.0;
        check(&out, &m.dot(&v), tol, lt.output_zero_padded());
        // Only declared rotations were used, about 2 sqrt(#diagonals) of
        // them (baby + giant steps) plus the folds.
        let declared = lt.rotation_steps();
        let used = bk.used_rotations();
        assert!(used.iter().all(|s| declared.contains(s)), "{rows}x{cols}");
        let diagonals = lt.diagonal_count() as f64;
        assert!(
            bk.key_switches() <= lt.rotation_count()
                && (lt.rotation_count() as f64) <= 3.0 * diagonals.sqrt() + 12.0,
            "{rows}x{cols}: {} key switches, {} rotations for {diagonals} diagonals",
            bk.key_switches(),
            lt.rotation_count()
        );
    }
}

#[test]
fn chained_transforms_three_layers_vs_ndarray() {
    let bk = backend();
    let m1 = random_matrix(64, 256, 1);
    let m2 = random_matrix(10, 64, 2);
    let m3 = random_matrix(40, 10, 3);
    let v = random_vec(256, 4);
    let ct = bk.encrypt(v.as_slice().unwrap(), SCALE);
    let (h1, _) = apply(&bk, &m1, &ct);
    let (h2, _) = apply(&bk, &m2, &h1);
    let (h3, _) = apply(&bk, &m3, &h2);
    let want = m3.dot(&m2.dot(&m1.dot(&v)));
    assert_eq!(h3.level, ct.level - 3);
    assert_eq!(h3.scale, SCALE);
    check(&h3, &want, 1e-4, false);
}

#[test]
fn dot_product_and_inner_sum() {
    let bk = backend();
    let w = random_vec(300, 5);
    let v = random_vec(300, 6);
    let ct = bk.encrypt(v.as_slice().unwrap(), SCALE);
    let out = dot_plain(&bk, &ct, w.as_slice().unwrap()).unwrap();
    assert!((out.values[0] - w.dot(&v)).abs() < 1e-4);
    assert_eq!(
        inner_sum_rotation_steps(300),
        vec![1, 2, 4, 8, 16, 32, 64, 128, 256]
    );
}

#[test]
fn errors_are_typed() {
    let bk = backend();
    let ct = bk.encrypt(&[1.0, 2.0], SCALE);
    let e = dense_transform(&bk, &[0.0; 6], 2, 3, 0).unwrap_err();
    assert!(matches!(
        e,
        CircuitError::DepthExhausted {
            needed: 1,
            available: 0
        }
    ));
    let e = dense_transform(&bk, &[0.0; 5], 2, 3, 2).unwrap_err();
    assert!(matches!(
        e,
        CircuitError::LengthMismatch {
            expected: 6,
            got: 5,
            ..
        }
    ));
    let e = dense_transform(&bk, &[], 0, 3, 2).unwrap_err();
    assert!(matches!(e, CircuitError::ShapeTooLarge { .. }));
    // A higher input level is brought down; a lower one is refused.
    let lt = dense_transform(&bk, &[1.0; 6], 2, 3, 2).unwrap();
    let out = lt.apply(&bk, &ct).unwrap();
    assert_eq!(out.level, 1);
    assert!((out.values[0] - 3.0).abs() < 1e-5 && (out.values[1] - 3.0).abs() < 1e-5);
    let low = bk.mod_down(&ct, 1).unwrap();
    let e = lt.apply(&bk, &low).unwrap_err();
    assert!(
        matches!(
            e,
            CircuitError::LevelMismatch {
                ct_level: 1,
                pt_level: 2
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "linear transform: ciphertext at level 1 is below the level 2 the diagonals are encoded at"
    );
}

#[test]
fn apply_is_deterministic_and_reports_its_shape() {
    let bk = backend();
    let m = random_matrix(64, 256, 31);
    let v = random_vec(256, 32);
    let flat: Vec<f64> = m.iter().copied().collect();
    let ct = bk.encrypt(v.as_slice().unwrap(), SCALE);
    let lt = dense_transform(&bk, &flat, 64, 256, ct.level).unwrap();
    assert_eq!((lt.out_len(), lt.level()), (64, ct.level));
    let a = lt.apply(&bk, &ct).unwrap();
    let b = lt.apply(&bk, &ct).unwrap();
    assert_eq!((a.level, a.scale), (b.level, b.scale));
    check(&a, &m.dot(&v), 1e-4, lt.output_zero_padded());
    assert_eq!(a.values.len(), b.values.len());
}

#[test]
fn band_and_folded_layouts_ignore_input_padding() {
    for (rows, cols, expect_folded) in [
        (10usize, 64usize, true),
        (100, 500, true),
        (100, 1600, true),
        (128, 2048, true), // L = n: the wrap band merges into the first
        (3, 2048, true),   // the band (2050 diagonals) does not fit: rows padded to 4
        (64, 64, false),
    ] {
        let m = random_matrix(rows, cols, (rows + 3 * cols) as u64);
        let flat: Vec<f64> = m.iter().copied().collect();
        let v = random_vec(cols, 77);
        let bk = backend();
        // Garbage past the vector: it must never be read.
        let mut padded = vec![0.0; bk.slots()];
        padded[..cols].copy_from_slice(v.as_slice().unwrap());
        for (i, x) in padded.iter_mut().enumerate().skip(cols) {
            *x = ((i * 37) % 11) as f64 - 5.0;
        }
        let ct = bk.encrypt(&padded, SCALE);
        let lt = dense_transform(&bk, &flat, rows, cols, ct.level).unwrap();
        assert_eq!(!lt.output_zero_padded(), expect_folded, "{rows}x{cols}");
        let out = lt.apply(&bk, &ct).unwrap();
        let tol = (cols as f64).sqrt() * 512.0 / SCALE;
        check(&out, &m.dot(&v), tol, lt.output_zero_padded());
        let used = bk.used_rotations();
        let declared = lt.rotation_steps();
        assert!(used.iter().all(|s| declared.contains(s)));
        if !lt.output_zero_padded() {
            assert!(lt.diagonal_count() <= 2 * rows.next_power_of_two());
        }
    }
}

#[test]
fn folded_output_chains_into_the_next_layer() {
    let bk = backend();
    let m1 = random_matrix(100, 1000, 41);
    let m2 = random_matrix(10, 100, 42);
    let v = random_vec(1000, 43);
    let ct = bk.encrypt(v.as_slice().unwrap(), SCALE);
    let (h1, lt1) = apply(&bk, &m1, &ct);
    assert!(!lt1.output_zero_padded(), "100x1000 is folded");
    let (h2, _) = apply(&bk, &m2, &h1);
    check(&h2, &m2.dot(&m1.dot(&v)), 1e-4, false);
}
