//! Polynomial evaluation on real ciphertexts (the circuits'
//! depth-optimal evaluator over the CKKS core) vs direct evaluation:
//! degrees 3, 9 and 15 in the power and Chebyshev bases (including the P2
//! sign approximations), the levels consumed (⌈log2(d+1)⌉), exact output
//! scale, a SLAF-like cubic with large coefficients on wide inputs, and
//! depth exhaustion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use slaf_ckks::circuits::{Polynomial, PolynomialEvaluator};
use slaf_ckks::*;

fn cheb(c: Vec<f64>) -> Polynomial {
    Polynomial::chebyshev(c, -1.0, 1.0)
}

fn run(
    poly: &Polynomial,
    xs: &[f64],
    bits: Vec<u32>,
    scale_bits: u32,
) -> (Vec<f64>, Ciphertext, usize) {
    let params = CkksParameters::new(CkksParametersLiteral {
        log_n: 13,
        coeff_mod_bit_sizes: bits,
        scale_bits,
        allow_insecure: true, // test-only sets
        special_primes: 1,
        dnum: None,
    })
    .expect("params");
    let ctx = CkksContext::new(params).expect("ctx");
    let mut kg = KeyGenerator::new(&ctx, ChaCha20Rng::seed_from_u64(11));
    let pk = kg.public_key();
    let rk = kg.relinearization_key();
    let enc = Encoder::new(&ctx);
    let top = ctx.params().max_level();
    let scale = ctx.params().default_scale();
    let ct = Encryptor::new(&ctx, pk, ChaCha20Rng::seed_from_u64(12))
        .encrypt(&enc.encode(xs, top, scale).expect("encode"));
    let bk = Evaluator::with_keys(&ctx, EvaluationKeys::new(Some(rk), None));
    let out = PolynomialEvaluator::new(&bk)
        .evaluate(&ct, poly, None)
        .expect("evaluate");
    let dec = enc.decode(&decrypt(&ctx, kg.secret_key(), &out));
    (dec[..xs.len()].to_vec(), out, top)
}

fn grid(n: usize, r: f64) -> Vec<f64> {
    (0..n)
        .map(|i| -r + 2.0 * r * i as f64 / (n - 1) as f64)
        .collect()
}

#[test]
fn power_and_chebyshev_polynomials_match_direct_evaluation() {
    let xs = grid(1000, 1.0);
    let cheb9 = vec![
        0.0, 1.2797, 0.0, -0.4444, 0.0, 0.2901, 0.0, -0.2365, 0.0, 0.1111,
    ];
    let cases = vec![
        Polynomial::power(vec![0.1, 1.5, 0.0, -0.5]),
        cheb(cheb9),
        Polynomial::power(
            (0..10)
                .map(|i| 0.3 / (i as f64 + 1.0) * if i % 2 == 0 { 1.0 } else { -1.0 })
                .collect(),
        ),
        cheb((0..16).map(|i| 0.5f64.powi(i)).collect()),
    ];
    for p in cases {
        let bits = std::iter::once(60)
            .chain(std::iter::repeat_n(40, p.depth()))
            .chain([60])
            .collect();
        let (got, out, top) = run(&p, &xs, bits, 40);
        let want: Vec<f64> = xs.iter().map(|&x| p.eval(x)).collect();
        let (max_bits, _) = precision_bits(&got, &want);
        assert!(max_bits >= 15.0, "{p:?}: {max_bits:.1} bits");
        assert_eq!(top - out.level(), p.depth(), "levels consumed");
        assert!(
            (out.scale() - 2f64.powi(40)).abs() / 2f64.powi(40) < 1e-12,
            "exact scale"
        );
    }
    assert_eq!(cheb(vec![1.0; 10]).depth(), 4);
    assert_eq!(cheb(vec![1.0; 16]).depth(), 4);
    assert_eq!(cheb(vec![1.0; 17]).depth(), 5);
    assert_eq!(Polynomial::power(vec![1.0; 4]).depth(), 2);
}

#[test]
fn slaf_like_cubic_with_large_coefficients_on_wide_inputs() {
    // A SLAF of CNN2 reaches |x| ~ 14 with coefficients up to ~1e2.
    let p = Polynomial::power(vec![0.5, 3.0, 0.8, 0.05]);
    let xs = grid(512, 14.0);
    let (got, _, _) = run(&p, &xs, vec![60, 30, 30, 30, 60], 30);
    let want: Vec<f64> = xs.iter().map(|&x| p.eval(x)).collect();
    let max_err = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(max_err < 1e-2, "{max_err}");
}

#[test]
fn composition_stages_and_depth_exhaustion() {
    let params = CkksParameters::new(CkksParametersLiteral {
        log_n: 13,
        coeff_mod_bit_sizes: vec![31, 26, 26, 26, 26, 26, 26, 31],
        scale_bits: 26,
        allow_insecure: false,
        special_primes: 1,
        dnum: None,
    })
    .expect("params");
    let ctx = CkksContext::new(params).expect("ctx");
    let mut kg = KeyGenerator::new(&ctx, ChaCha20Rng::seed_from_u64(1));
    let pk = kg.public_key();
    let rk = kg.relinearization_key();
    let enc = Encoder::new(&ctx);
    let xs = grid(1000, 1.0);
    let ct = Encryptor::new(&ctx, pk, ChaCha20Rng::seed_from_u64(2))
        .encrypt(&enc.encode(&xs, 6, 2f64.powi(26)).expect("enc"));
    let f = Polynomial::power(vec![0.0, 1.5, 0.0, -0.5]);
    let g = Polynomial::power(vec![0.0, 2126.0 / 1024.0, 0.0, -1359.0 / 1024.0]);
    let bk = Evaluator::with_keys(&ctx, EvaluationKeys::new(Some(rk), None));
    let pe = PolynomialEvaluator::new(&bk);
    let out = pe
        .evaluate_composition(&ct, &[g.clone(), f.clone()], None)
        .expect("f∘g");
    assert_eq!(out.level(), 2, "two cubic stages take 2 + 2 levels");
    let got = enc.decode(&decrypt(&ctx, kg.secret_key(), &out));
    let max_err = xs
        .iter()
        .zip(&got)
        .map(|(&x, y)| (f.eval(g.eval(x)) - y).abs())
        .fold(0.0, f64::max);
    assert!(max_err < 5e-2, "{max_err}");
    // A degree-7 stage needs 3 more levels: a typed error, not garbage.
    let f7 = Polynomial::power(vec![0.0, 1.0, 0.0, 0.1, 0.0, 0.01, 0.0, 0.001]);
    let err = pe.evaluate(&out, &f7, None).expect_err("exhausted");
    assert!(err.to_string().contains("depth 3"), "{err}");
}
