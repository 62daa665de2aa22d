//! Hybrid key switching: the special modulus P as a product of several
//! primes and the ciphertext primes grouped into dnum digits. For every
//! configuration, products, relinearisation and rotations decrypt to the
//! plaintext results at every level (partial digits included), the
//! key-switch noise stays within its analytic bound, keys round-trip
//! through the binary format, and invalid digit layouts are typed errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use slaf_ckks::keys::SIGMA;
use slaf_ckks::serial::{galois_keys_from_bytes, galois_keys_to_bytes};
use slaf_ckks::*;

/// A chain of 7 ciphertext primes [40, 26 x 6] with the given special
/// prime sizes and digit count (N = 8192; test sets may exceed the bound).
fn params(special: &[u32], dnum: Option<usize>) -> CkksParameters {
    let mut bits = vec![40, 26, 26, 26, 26, 26, 26];
    bits.extend_from_slice(special);
    CkksParameters::new(CkksParametersLiteral {
        log_n: 13,
        coeff_mod_bit_sizes: bits,
        scale_bits: 26,
        allow_insecure: true,
        special_primes: special.len(),
        dnum,
    })
    .expect("params")
}

fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The configurations under test: (special prime sizes, dnum).
const CONFIGS: [(&[u32], Option<usize>); 5] = [
    (&[40], None),                // SEAL: 7 digits, one special prime
    (&[40, 40], Some(4)),         // 2 primes per digit
    (&[36, 36, 36], Some(3)),     // 3 primes per digit
    (&[45, 45, 45], Some(2)),     // 4 + 3 primes
    (&[50, 50, 50, 50], Some(1)), // one digit: all of Q
];

/// Key-switch noise bound (slot domain, integer units): six standard
/// deviations of Σ_i d_i e_i / P (digits centred, |d_i| ~ U(-D/2, D/2),
/// errors of σ = SIGMA, N terms per coefficient, dnum digits) plus the
/// rounding of the mod-down (u0 + u1 s, s ternary), each coefficient's
/// deviation times sqrt(N) in a slot; 2x slack for the float centring.
fn ks_bound(p: &CkksParameters, level: usize) -> f64 {
    let n = p.n() as f64;
    let log_p: f64 = p.special_primes().iter().map(|&x| (x as f64).log2()).sum();
    let digits = p.digits(level);
    let var_ks: f64 = digits
        .iter()
        .map(|d| {
            let log_d: f64 = p.q()[d.clone()].iter().map(|&x| (x as f64).log2()).sum();
            let ratio = 2f64.powf(log_d - log_p);
            n * ratio * ratio / 12.0 * SIGMA * SIGMA
        })
        .sum();
    let var_round = (1.0 + 2.0 * n / 3.0) / 12.0;
    2.0 * 6.0 * n.sqrt() * (var_ks + var_round).sqrt()
}

#[test]
fn digits_cover_the_level_in_groups() {
    let p = params(&[40, 40], Some(4));
    assert_eq!(p.dnum(), 4);
    assert_eq!(p.digit_primes(), 2);
    assert_eq!(p.digits(6), vec![0..2, 2..4, 4..6, 6..7]);
    assert_eq!(p.digits(4), vec![0..2, 2..4, 4..5]);
    assert_eq!(p.digits(0), vec![0..1]);
    let seal = params(&[40], None);
    assert_eq!(seal.dnum(), 7);
    assert_eq!(seal.digits(2), vec![0..1, 1..2, 2..3]);
    // The HE-standard check counts every special prime.
    assert_eq!(params(&[40, 40], Some(4)).total_bits(), 40 + 6 * 26 + 80);
}

#[test]
fn invalid_digit_layouts_are_typed_errors() {
    let lit = |special: Vec<u32>, dnum| {
        let mut bits = vec![40, 26, 26, 26, 26, 26, 26];
        let k = special.len();
        bits.extend(special);
        CkksParametersLiteral {
            log_n: 13,
            coeff_mod_bit_sizes: bits,
            scale_bits: 26,
            allow_insecure: true,
            special_primes: k,
            dnum,
        }
    };
    // A digit of 40 + 26 bits does not fit a 60-bit P.
    match CkksParameters::new(lit(vec![30, 30], Some(4))) {
        Err(CkksError::SpecialPrimeTooSmall {
            special_bits: 60,
            chain_bits: 66,
        }) => {}
        other => panic!("expected SpecialPrimeTooSmall, got {other:?}"),
    }
    for dnum in [0, 8] {
        let e = CkksParameters::new(lit(vec![40, 40], Some(dnum))).expect_err("dnum");
        assert!(e.to_string().contains("dnum"), "{e}");
    }
    // 7 primes in 5 digits of 2 leave the fifth digit empty.
    let e = CkksParameters::new(lit(vec![60, 60], Some(5))).expect_err("empty digit");
    assert!(e.to_string().contains("use dnum = 4"), "{e}");
    let mut none = lit(vec![40], None);
    none.special_primes = 0;
    assert!(CkksParameters::new(none).is_err());
    // Over the 128-bit bound for N = 8192 without the opt-out.
    let mut strict = lit(vec![40, 40], Some(4));
    strict.allow_insecure = false;
    assert!(matches!(
        CkksParameters::new(strict),
        Err(CkksError::InsecureParameters { .. })
    ));
}

#[test]
fn every_digit_layout_multiplies_and_rotates_within_the_noise_bound() {
    for (special, dnum) in CONFIGS {
        let p = params(special, dnum);
        let label = format!("special {special:?}, dnum {}", p.dnum());
        let ctx = CkksContext::new(p.clone()).expect("ctx");
        let mut kg = KeyGenerator::from_seed(&ctx, &KeySeed::for_tests(11));
        let pk = kg.public_key();
        let rk = kg.relinearization_key();
        let gk = kg.galois_keys(&[1, 3, -2], false);
        // Stored packed: 4 bytes per residue of the six 26-bit primes, 8
        // for the 40-bit base prime and every special prime (36-50 bits).
        assert_eq!(p.key_poly_bytes(), (8 + 6 * 4 + 8 * special.len()) * 8192);
        assert_eq!(rk.byte_size(), p.dnum() * 2 * p.key_poly_bytes());
        let enc = Encoder::new(&ctx);
        let mut encryptor = Encryptor::new(&ctx, pk, ChaCha20Rng::seed_from_u64(3));
        let ev = Evaluator::new(&ctx);
        let sk = kg.secret_key();
        let dec = |ct: &Ciphertext| enc.decode(&decrypt(&ctx, sk, ct));
        let slots = p.slots();
        let (a, b) = (values(slots, 1), values(slots, 2));
        let scale = p.default_scale();
        let mut ca = encryptor.encrypt(&enc.encode(&a, 6, scale).expect("a"));
        let mut cb = encryptor.encrypt(&enc.encode(&b, 6, scale).expect("b"));
        // Levels 6 (full digits) down to 1 (partial digits). References are
        // the decrypted operands, so that only what the operation adds counts.
        for level in (1..=6).rev() {
            let (da, db) = (dec(&ca), dec(&cb));
            let prod = ev.mul(&ca, &cb).expect("mul");
            let relin = ev.relinearize(&prod, &rk).expect("relin");
            // Key-switch noise alone: the 3-part product against its relinearisation.
            let noise = max_err(&dec(&relin), &dec(&prod)) * prod.scale();
            let bound = ks_bound(&p, level);
            assert!(
                noise < bound,
                "{label}, level {level}: noise {noise:.1} >= bound {bound:.1}"
            );
            let next = ev.rescale(&relin).expect("rescale");
            let exact: Vec<f64> = da.iter().zip(&db).map(|(x, y)| x * y).collect();
            let err = max_err(&dec(&next), &exact);
            assert!(
                err < 1e-3,
                "{label}, level {level}: product error {err:.2e}"
            );
            for step in [1i64, 3, -2] {
                let rot = dec(&ev.rotate(&ca, step, &gk).expect("rotate"));
                let shifted: Vec<f64> = (0..slots)
                    .map(|i| da[(i as i64 + step).rem_euclid(slots as i64) as usize])
                    .collect();
                let err = max_err(&rot, &shifted) * ca.scale();
                assert!(
                    err < bound,
                    "{label}, level {level}, step {step}: rotation noise {err:.1} >= {bound:.1}"
                );
            }
            // Next level: the product becomes the new left operand.
            ca = next;
            cb = ev.mod_down_to(&cb, level - 1).expect("mod down");
        }
    }
}

/// Seeded keys (secret 5, encryption rng 9) and the ciphertexts of a fixed
/// vector at level 6: fresh, squared (relinearised, rescaled), rotated by
/// one and conjugated; with the secret key.
fn square_rotate_conjugate(ctx: &std::sync::Arc<CkksContext>) -> (Vec<Ciphertext>, SecretKey) {
    let mut kg = KeyGenerator::from_seed(ctx, &KeySeed::for_tests(5));
    let pk = kg.public_key();
    let rk = kg.relinearization_key();
    let gk = kg.galois_keys(&[1], true);
    let enc = Encoder::new(ctx);
    let mut encryptor = Encryptor::new(ctx, pk, ChaCha20Rng::seed_from_u64(9));
    let ev = Evaluator::new(ctx);
    let ct = encryptor.encrypt(&enc.encode(&values(4096, 3), 6, 2f64.powi(26)).expect("pt"));
    let sq = ev.mul_relin_rescale(&ct, &ct, &rk).expect("mul");
    let rot = ev.rotate(&sq, 1, &gk).expect("rotate");
    let conj = ev.conjugate(&rot, &gk).expect("conjugate");
    (vec![ct, sq, rot, conj], kg.into_secret_key())
}

#[test]
fn one_prime_digits_with_one_special_prime_are_seals_layout_bit_for_bit() {
    // dnum = L + 1 spelled out is the default layout: same primes, same
    // keys, the same ciphertext after a product and a rotation.
    let run = |p: CkksParameters| {
        let ctx = CkksContext::new(p).expect("ctx");
        let (cts, _) = square_rotate_conjugate(&ctx);
        serial::ciphertext_to_bytes(&ctx, &cts[2])
    };
    assert_eq!(run(params(&[40], None)), run(params(&[40], Some(7))));
}

#[test]
fn hybrid_keys_round_trip_and_a_different_layout_is_refused() {
    let p = params(&[40, 40], Some(4));
    let ctx = CkksContext::new(p).expect("ctx");
    let mut kg = KeyGenerator::from_seed(&ctx, &KeySeed::for_tests(2));
    let gk = kg.galois_keys(&[1, 2], false);
    let bytes = galois_keys_to_bytes(&ctx, &gk);
    let back = galois_keys_from_bytes(&ctx, &bytes).expect("round trip");
    assert_eq!(galois_keys_to_bytes(&ctx, &back), bytes);
    // The same chain sizes, one special prime and one digit per prime.
    let other = CkksContext::new(params(&[40, 40], Some(7))).expect("ctx");
    let err = galois_keys_from_bytes(&other, &bytes).expect_err("digit count");
    assert!(err.to_string().contains("digits"), "{err}");
}

/// The word widths are exact at the evaluator level: a context that stores
/// every limb in 64-bit words ([`NttWords::Only64`], the reference path)
/// and the default one (32-bit words for the primes below 2^32) produce the
/// same ciphertext bytes after encryption, a product with relinearisation
/// and rescale, a rotation and a conjugation, for SEAL's layout and for a
/// hybrid one (three 31-bit special primes, a 40-bit q_0, mixed widths in
/// one polynomial); the default stores fewer bytes, and a ciphertext
/// written by one context is read and decrypted by the other.
#[test]
fn word_widths_give_the_same_ciphertexts_through_key_switching() {
    let run = |p: &CkksParameters, words: NttWords| {
        let ctx = CkksContext::with_ntt_words(p.clone(), words).expect("ctx");
        let (cts, sk) = square_rotate_conjugate(&ctx);
        let bytes: Vec<Vec<u8>> = cts
            .iter()
            .map(|c| serial::ciphertext_to_bytes(&ctx, c))
            .collect();
        (bytes, cts[0].byte_size(), sk, ctx)
    };
    for p in [params(&[40], None), params(&[31, 31, 31], Some(3))] {
        let (wide, wide_size, _, wide_ctx) = run(&p, NttWords::Only64);
        let (auto, auto_size, sk, ctx) = run(&p, NttWords::Auto);
        for (i, (w, a)) in wide.iter().zip(&auto).enumerate() {
            assert!(w == a, "step {i} differs between word widths");
        }
        // [40, 26 x 6]: one limb of 64-bit words, six of 32-bit ones.
        assert_eq!(wide_size, 2 * 7 * 8192 * 8);
        assert_eq!(auto_size, 2 * (8 + 6 * 4) * 8192);
        // Written by the 64-bit context, read and decrypted by the other.
        let back = serial::ciphertext_from_bytes(&ctx, &wide[1]).expect("read");
        assert_eq!(serial::ciphertext_to_bytes(&wide_ctx, &back), wide[1]);
        let got = Encoder::new(&ctx).decode(&decrypt(&ctx, &sk, &back));
        let want: Vec<f64> = values(4096, 3).iter().map(|x| x * x).collect();
        assert!(
            max_err(&got[..4096], &want) < 1e-2,
            "{}",
            max_err(&got[..4096], &want)
        );
    }
}
