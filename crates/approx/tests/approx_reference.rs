//! The P2 reference values of SPEC.md §6: plaintext metrics of the five
//! sign approximations to 4 significant digits (Fourier to 3, since its
//! frequency is fitted) and the interval-analysis reference points (to the
//! printed 2 decimals), plus the as-published defects and bad inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_approx::interval::{eps_values, interval_analysis};
use slaf_approx::methods::{DEFAULT_MINIMAX_EPS, Representation};
use slaf_approx::{Method, as_published, build, full_metrics, grid, poly};

/// Relative agreement to `digits` significant digits.
fn close(ours: f64, paper: f64, digits: i32) -> bool {
    let scale = 10f64.powi(paper.abs().log10().floor() as i32 - digits + 1);
    (ours - paper).abs() <= 0.5 * scale + 1e-12
}

#[test]
fn metrics_match_the_published_table() {
    // (method, R², L1, L2, L∞) from the original outputs; digits to match.
    let table = [
        (Method::LeastSquares, 0.93944, 152.201, 7.7820, 0.99334, 4),
        (Method::Composition, 0.89192, 197.715, 10.8208, 0.99688, 4),
        (Method::Newton, 0.85589, 266.920, 12.7175, 0.99775, 4),
        (Method::Chebyshev, 0.93474, 165.258, 8.1237, 0.99327, 4),
        (Method::Fourier, 0.97751, 72.645, 4.7424, 0.98179, 3),
    ];
    let g = grid();
    for (m, r2, l1, l2, linf, digits) in table {
        let a = build(m, &g, DEFAULT_MINIMAX_EPS).expect("build");
        let got = full_metrics(&a).expect("metrics");
        println!("{:?}: {got:?}", m);
        assert!(close(got.r2, r2, digits), "{m:?} R² {} vs {r2}", got.r2);
        assert!(close(got.l1, l1, digits), "{m:?} L1 {} vs {l1}", got.l1);
        assert!(close(got.l2, l2, digits), "{m:?} L2 {} vs {l2}", got.l2);
        assert!(
            close(got.linf, linf, digits),
            "{m:?} L∞ {} vs {linf}",
            got.linf
        );
        // Relative L1 divides by the L1 norm of sign over the grid (= 1000).
        assert!((got.rel_l1_pct - got.l1 / 10.0).abs() < 1e-9);
        assert!((got.chi2 - got.l2 * got.l2).abs() < 1e-6 * got.chi2);
    }
    // The fitted Fourier frequency is the original's 2.940.
    match build(Method::Fourier, &g, 0.05).expect("fourier").repr {
        Representation::Fourier { w, .. } => assert!((w - 2.940).abs() < 5e-3, "w = {w}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn native_chebyshev_reproduces_the_chebfun_coefficients() {
    let a = build(Method::Chebyshev, &grid(), 0.05).expect("cheb");
    let Representation::Chebyshev(c) = a.repr else {
        panic!("not chebyshev")
    };
    let published = slaf_approx::methods::CHEBFUN_PUBLISHED;
    for (ours, theirs) in c.iter().zip(published) {
        assert!((ours - theirs).abs() < 5e-5, "{c:?}");
    }
}

#[test]
fn interval_points_match_the_reference() {
    let methods = [
        Method::LeastSquares,
        Method::Composition,
        Method::Newton,
        Method::Chebyshev,
    ];
    let eps = [0.0, 0.1, 0.3, 0.5];
    let rows = interval_analysis(&methods, &eps, 0.05).expect("interval");
    let reference = [
        (Method::LeastSquares, [15.22, 8.46, 5.55, 3.67]),
        (Method::Composition, [19.77, 11.31, 2.59, 0.59]),
        (Method::Newton, [26.69, 17.81, 6.35, 1.44]),
        (Method::Chebyshev, [16.53, 9.80, 6.36, 2.95]),
    ];
    for (m, vals) in reference {
        for (e, v) in eps.iter().zip(vals) {
            let row = rows
                .iter()
                .find(|r| r.method == m && r.eps == *e)
                .expect("row");
            assert!(
                (row.metrics.rel_l1_pct - v).abs() <= 0.005 + 1e-9,
                "{m:?} eps {e}: {} vs {v}",
                row.metrics.rel_l1_pct
            );
        }
    }
    assert_eq!(eps_values().len(), 51);
    assert!(interval_analysis(&methods, &[1.0], 0.05).is_err());
    assert!(interval_analysis(&methods, &[-0.1], 0.05).is_err());
}

#[test]
fn fourier_is_refitted_on_reduced_sets_and_improves() {
    let rows = interval_analysis(&[Method::Fourier], &[0.0, 0.3], 0.05).expect("interval");
    assert!(rows[1].metrics.rel_l1_pct < rows[0].metrics.rel_l1_pct);
}

#[test]
fn as_published_defects_change_the_values() {
    let g = grid();
    for m in [Method::LeastSquares, Method::Composition, Method::Newton] {
        let a = build(m, &g, 0.05).expect("build");
        let (bad, what) = as_published(&a).expect("defect");
        assert_eq!(what, "x^9 term dropped");
        let good = a.power_coeffs().expect("poly");
        assert_eq!(good.len(), 10);
        assert!(good[9].abs() > 1e-3, "{m:?} has an x^9 term");
        // The defect shows at x = 0.5 (p(enc(1) - enc(0.5)) of the original).
        // (Newton's x^9 coefficient is 1/16, so the change there is 2^-13.)
        let diff = (poly::eval_power(&good, 0.5) - poly::eval_power(&bad, 0.5)).abs();
        assert!(diff > 1e-4, "{m:?}: {diff}");
        let at_one = (poly::eval_power(&good, 1.0) - poly::eval_power(&bad, 1.0)).abs();
        assert!((at_one - good[9].abs()).abs() < 1e-12);
    }
    let cheb = build(Method::ChebyshevPublished, &g, 0.05).expect("cheb");
    let (bad, _) = as_published(&cheb).expect("defect");
    assert!((poly::eval_power(&bad, 0.5) - cheb.eval(0.5)).abs() > 0.1);
}

#[test]
fn minimax_methods_beat_the_original_away_from_zero() {
    let g = grid();
    let eps = 0.05;
    let on_interval = |m: Method| {
        let a = build(m, &g, eps).expect("build");
        g.iter()
            .filter(|x| x.abs() >= eps)
            .map(|&x| (x.signum() - a.eval(x)).abs())
            .fold(0.0f64, f64::max)
    };
    let mm = on_interval(Method::Minimax);
    assert!(mm < on_interval(Method::LeastSquares));
    assert!(mm < on_interval(Method::Chebyshev));
    let cm = on_interval(Method::CompositeMinimax);
    assert!(cm < mm, "composite {cm} vs single {mm}");
    let a = build(Method::CompositeMinimax, &g, eps).expect("cm");
    assert_eq!(a.degree(), 49);
    assert_eq!(a.depth(), 6);
    assert_eq!(build(Method::Minimax, &g, eps).expect("m").depth(), 4);
    assert!(build(Method::Minimax, &g, 1.5).is_err());
}

#[test]
fn degenerate_degrees_are_typed_errors() {
    use slaf_approx::methods::{fit_fourier, least_squares};
    use slaf_approx::minimax::{composite_sign_minimax, odd_sign_minimax};
    let g = grid();
    let y: Vec<f64> = g.iter().map(|&x| slaf_approx::methods::sign(x)).collect();
    for err in [
        least_squares(&g, &y, 0).map(|_| ()).expect_err("degree 0"),
        fit_fourier(&g, &y, 0).map(|_| ()).expect_err("order 0"),
        odd_sign_minimax(0, 0.05, 1.0)
            .map(|_| ())
            .expect_err("degree 0"),
        odd_sign_minimax(8, 0.05, 1.0)
            .map(|_| ())
            .expect_err("even degree"),
        composite_sign_minimax(&[7, 0], 0.05)
            .map(|_| ())
            .expect_err("degree 0 stage"),
    ] {
        assert!(err.to_string().to_lowercase().contains("degree"), "{err}");
    }
    assert!(build(Method::Minimax, &g, -0.1).is_err());
    assert!(build(Method::CompositeMinimax, &g, 1.0).is_err());
}
