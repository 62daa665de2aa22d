//! The CKKS scheme end to end: parameters (HE-standard check), encoding
//! precision, public/symmetric encryption, every evaluator operation
//! against plaintext arithmetic, rotations and conjugation, inner sums and
//! the typed errors for depth exhaustion, missing keys and bad scales.
//! Thresholds derive from the scale: precision >= log2(scale) - (logN + 2)
//! bits, as Lattigo's tests use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use slaf_ckks::*;
use std::sync::Arc;

struct Setup {
    ctx: Arc<CkksContext>,
    kg: KeyGenerator,
    enc: Encoder,
    encryptor: Encryptor<ChaCha20Rng>,
    ev: Evaluator,
    rk: RelinearizationKey,
}

/// Test-only parameter sets: small rings for speed, so some exceed the
/// HE-standard bound and are built with the explicit opt-out.
fn setup(log_n: u32, bits: Vec<u32>, scale_bits: u32) -> Setup {
    let params = CkksParameters::new(CkksParametersLiteral {
        log_n,
        coeff_mod_bit_sizes: bits,
        scale_bits,
        allow_insecure: true,
        special_primes: 1,
        dnum: None,
    })
    .expect("params");
    let ctx = CkksContext::new(params).expect("ctx");
    let mut kg = KeyGenerator::new(&ctx, ChaCha20Rng::seed_from_u64(7));
    let pk = kg.public_key();
    let rk = kg.relinearization_key();
    Setup {
        enc: Encoder::new(&ctx),
        encryptor: Encryptor::new(&ctx, pk, ChaCha20Rng::seed_from_u64(8)),
        ev: Evaluator::new(&ctx),
        ctx,
        kg,
        rk,
    }
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

fn min_bits(scale: f64, log_n: u32) -> f64 {
    scale.log2() - f64::from(log_n + 2)
}

#[test]
fn presets_validate_and_insecure_sets_are_refused() {
    for p in [
        presets::cnn1_x2(),
        presets::slaf(),
        presets::slaf_p(),
        presets::comparison(),
    ] {
        assert!(!p.is_insecure());
        assert!(p.total_bits() <= 438);
    }
    assert_eq!(presets::cnn1_x2().total_bits(), 218);
    assert_eq!(presets::slaf().max_level(), 11);
    assert_eq!(presets::slaf_p().max_level(), 14);
    assert!(
        presets::slaf()
            .describe()
            .contains("[40, 26x11, 40] (366 bits)")
    );
    let lit = CkksParametersLiteral {
        log_n: 13,
        coeff_mod_bit_sizes: vec![40, 40, 40, 40, 40, 40],
        scale_bits: 30,
        allow_insecure: false,
        special_primes: 1,
        dnum: None,
    };
    let err = CkksParameters::new(lit.clone()).expect_err("insecure");
    assert!(matches!(
        err,
        CkksError::InsecureParameters {
            n: 8192,
            total_bits: 240,
            bound: 218
        }
    ));
    assert!(err.to_string().contains("218"));
    let ok = CkksParameters::new(CkksParametersLiteral {
        allow_insecure: true,
        ..lit
    })
    .expect("opt-out");
    assert!(ok.is_insecure());
    assert!(ok.describe().contains("INSECURE"));
    let bad = CkksParametersLiteral {
        log_n: 9,
        coeff_mod_bit_sizes: vec![30, 30],
        scale_bits: 20,
        allow_insecure: false,
        special_primes: 1,
        dnum: None,
    };
    assert!(matches!(
        CkksParameters::new(bad),
        Err(CkksError::InvalidParameters { .. })
    ));
}

#[test]
fn encoding_precision_at_2_40_and_2_26() {
    let s = setup(13, vec![50, 40, 50], 40);
    let v = values(4096, 1);
    let pt = s.enc.encode(&v, 1, 2f64.powi(40)).expect("encode");
    let (max_bits, _) = precision_bits(&s.enc.decode(&pt)[..4096], &v);
    assert!(max_bits >= 30.0, "{max_bits}");
    let p = presets::cnn1_x2();
    let ctx = CkksContext::new(p).expect("ctx");
    let enc = Encoder::new(&ctx);
    let pt = enc.encode(&v, 6, 2f64.powi(26)).expect("encode");
    let (max_bits, _) = precision_bits(&enc.decode(&pt)[..4096], &v);
    assert!(max_bits >= 18.0, "{max_bits}");
    // Too many values, non-finite values and overflow are typed errors.
    assert!(enc.encode(&vec![0.0; 4097], 0, 2f64.powi(26)).is_err());
    assert!(enc.encode(&[f64::NAN], 0, 2f64.powi(26)).is_err());
    assert!(enc.encode(&[1e30], 0, 2f64.powi(26)).is_err());
}

#[test]
fn encrypt_decrypt_public_and_symmetric() {
    let mut s = setup(12, vec![50, 30, 30, 50], 30);
    let v = values(2048, 2);
    let scale = 2f64.powi(30);
    let pt = s.enc.encode(&v, 2, scale).expect("encode");
    let ct = s.encryptor.encrypt(&pt);
    let out = s.enc.decode(&decrypt(&s.ctx, s.kg.secret_key(), &ct));
    let (_, bits) = precision_bits(&out, &v);
    assert!(bits >= min_bits(scale, 12), "{bits}");
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let ct = encrypt_symmetric(&s.ctx, s.kg.secret_key(), &pt, &mut rng);
    let out = s.enc.decode(&decrypt(&s.ctx, s.kg.secret_key(), &ct));
    assert!(precision_bits(&out, &v).1 >= min_bits(scale, 12));
    assert_eq!(
        format!("{:?}", s.kg.secret_key()),
        "SecretKey { .. redacted .. }"
    );
}

#[test]
fn arithmetic_matches_plaintext() {
    let mut s = setup(13, vec![50, 40, 40, 50], 40);
    let n = 4096;
    let (a, b) = (values(n, 4), values(n, 5));
    let scale = 2f64.powi(40);
    let top = 2;
    let ca = s
        .encryptor
        .encrypt(&s.enc.encode(&a, top, scale).expect("a"));
    let cb = s
        .encryptor
        .encrypt(&s.enc.encode(&b, top, scale).expect("b"));
    let sk = s.kg.secret_key();
    let dec = |ct: &Ciphertext| s.enc.decode(&decrypt(&s.ctx, sk, ct));
    let thr = min_bits(scale, 13) - 2.0;
    // Mean precision must reach the threshold, the worst slot 4 bits less.
    let check = |name: &str, got: Vec<f64>, want: Vec<f64>, thr: f64| {
        let (max_bits, mean_bits) = precision_bits(&got, &want);
        assert!(mean_bits >= thr, "{name}: mean {mean_bits:.1} bits < {thr}");
        assert!(
            max_bits >= thr - 4.0,
            "{name}: max {max_bits:.1} bits < {}",
            thr - 4.0
        );
    };
    let zip =
        |f: &dyn Fn(f64, f64) -> f64| a.iter().zip(&b).map(|(x, y)| f(*x, *y)).collect::<Vec<_>>();
    check(
        "add",
        dec(&s.ev.add(&ca, &cb).expect("add")),
        zip(&|x, y| x + y),
        thr,
    );
    check(
        "sub",
        dec(&s.ev.sub(&ca, &cb).expect("sub")),
        zip(&|x, y| x - y),
        thr,
    );
    check("negate", dec(&s.ev.negate(&ca)), zip(&|x, _| -x), thr);
    check(
        "add_scalar",
        dec(&s.ev.add_scalar(&ca, 0.75).expect("adds")),
        zip(&|x, _| x + 0.75),
        thr,
    );
    check(
        "mul_integer",
        dec(&s.ev.mul_integer(&ca, -3)),
        zip(&|x, _| -3.0 * x),
        thr - 2.0,
    );
    let pb = s.enc.encode(&b, top, scale).expect("pb");
    check(
        "add_plain",
        dec(&s.ev.add_plain(&ca, &pb).expect("ap")),
        zip(&|x, y| x + y),
        thr,
    );
    let mp =
        s.ev.rescale(&s.ev.mul_plain(&ca, &pb).expect("mp"))
            .expect("rescale");
    assert_eq!(mp.level(), top - 1);
    check("mul_plain", dec(&mp), zip(&|x, y| x * y), thr - 8.0);
    let q_last = s.ctx.params().q()[top] as f64;
    let ms =
        s.ev.rescale(&s.ev.mul_scalar(&ca, -1.25, q_last).expect("ms"))
            .expect("rs");
    assert!(
        (ms.scale() - scale).abs() / scale < 1e-12,
        "scale kept exactly"
    );
    check("mul_scalar", dec(&ms), zip(&|x, _| -1.25 * x), thr - 2.0);
    let m = s.ev.mul_relin_rescale(&ca, &cb, &s.rk).expect("mul");
    assert_eq!(m.level(), top - 1);
    // Exact scale tracking: scale²/q_top, not the nominal 2^40.
    assert!((m.scale() - scale * scale / q_last).abs() / m.scale() < 1e-12);
    check("mul_relin_rescale", dec(&m), zip(&|x, y| x * y), thr - 8.0);
    // Square twice: depth 2, then the chain is exhausted.
    let m2 = s.ev.mul_relin_rescale(&m, &m, &s.rk).expect("mul2");
    check(
        "square of product",
        dec(&m2),
        zip(&|x, y| (x * y).powi(2)),
        thr - 12.0,
    );
    assert_eq!(m2.level(), 0);
    assert!(matches!(
        s.ev.rescale(&m2),
        Err(CkksError::LevelExhausted {
            op: "rescale",
            level: 0
        })
    ));
    assert!(matches!(
        s.ev.mul_relin_rescale(&m2, &m2, &s.rk),
        Err(CkksError::LevelExhausted { .. })
    ));
    // Different scales cannot be added silently.
    assert!(matches!(
        s.ev.add(&ca, &m),
        Err(CkksError::Mismatch { op: "add", .. })
    ));
    // Levels are aligned automatically for equal scales.
    let low = s.ev.mod_down_to(&ca, 0).expect("mod down");
    check(
        "add across levels",
        dec(&s.ev.add(&low, &cb).expect("add")),
        zip(&|x, y| x + y),
        thr,
    );
    // Relinearising twice is harmless; multiplying a 3-part ciphertext is refused.
    let raw = s.ev.mul(&ca, &cb).expect("raw");
    assert!(matches!(s.ev.mul(&raw, &cb), Err(CkksError::Degree { .. })));
    check(
        "decrypt 3 parts",
        dec(&s.ev.rescale(&raw).expect("rs")),
        zip(&|x, y| x * y),
        thr - 8.0,
    );
}

#[test]
fn rotations_conjugation_and_inner_sum() {
    let mut s = setup(12, vec![50, 40, 50], 40);
    let slots = 2048;
    let v = values(slots, 6);
    let scale = 2f64.powi(40);
    let ct = s
        .encryptor
        .encrypt(&s.enc.encode(&v, 1, scale).expect("enc"));
    let mut steps: Vec<i64> = (0..11).map(|k| 1i64 << k).collect();
    steps.extend([3, 77, 1000, -1, -5]);
    let gk = s.kg.galois_keys(&steps, true);
    let sk = s.kg.secret_key();
    for &r in &steps {
        let rot = s.ev.rotate(&ct, r, &gk).expect("rotate");
        let out = s.enc.decode(&decrypt(&s.ctx, sk, &rot));
        let want: Vec<f64> = (0..slots)
            .map(|i| v[(i as i64 + r).rem_euclid(slots as i64) as usize])
            .collect();
        let (_, bits) = precision_bits(&out, &want);
        assert!(bits >= min_bits(scale, 12) - 2.0, "rotation {r}: {bits}");
    }
    assert!(matches!(
        s.ev.rotate(&ct, 5, &gk),
        Err(CkksError::MissingGaloisKey { step: 5 })
    ));
    // Conjugation of complex slots.
    let c: Vec<(f64, f64)> = v
        .iter()
        .zip(values(slots, 9))
        .map(|(a, b)| (*a, b))
        .collect();
    let cc = s
        .encryptor
        .encrypt(&s.enc.encode_complex(&c, 1, scale).expect("enc"));
    let conj = s.ev.conjugate(&cc, &gk).expect("conj");
    let out = s.enc.decode_complex(&decrypt(&s.ctx, sk, &conj));
    for (o, w) in out.iter().zip(&c) {
        assert!((o.0 - w.0).abs() < 1e-6 && (o.1 + w.1).abs() < 1e-6);
    }
    // Inner sum of 8 consecutive slots.
    let sum = s.ev.inner_sum(&ct, 8, &gk).expect("sum");
    let out = s.enc.decode(&decrypt(&s.ctx, sk, &sum));
    let want: f64 = v[..8].iter().sum();
    assert!((out[0] - want).abs() < 1e-6, "{} vs {want}", out[0]);
    assert!(s.ev.inner_sum(&ct, 6, &gk).is_err());
}

/// Noise flooding adds noise of the stated size (and no more), keeps the
/// values, and refuses a flood that would drown them.
#[test]
fn flooding_adds_noise_of_the_stated_size() {
    let params = CkksParameters::new(CkksParametersLiteral {
        log_n: 12,
        coeff_mod_bit_sizes: vec![50, 40, 50],
        scale_bits: 40,
        allow_insecure: true, // small test ring
        special_primes: 1,
        dnum: None,
    })
    .expect("params");
    let ctx = CkksContext::new(params).expect("ctx");
    let mut kg = KeyGenerator::from_seed(&ctx, &KeySeed::for_tests(9));
    let pk = kg.public_key();
    let enc = Encoder::new(&ctx);
    let ev = Evaluator::new(&ctx);
    let xs: Vec<f64> = (0..2048).map(|i| (i as f64 / 1024.0) - 1.0).collect();
    let scale = 2f64.powi(40);
    let ct = Encryptor::new(&ctx, pk.clone(), ChaCha20Rng::seed_from_u64(1))
        .encrypt(&enc.encode(&xs, 1, scale).expect("encode"));
    let rms = |c: &Ciphertext| {
        let d = enc.decode(&decrypt(&ctx, kg.secret_key(), c));
        (d.iter().zip(&xs).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
    };
    let before = rms(&ct);
    let bits = 20;
    let flooded = ev
        .flood(&ct, &pk, bits, &mut ChaCha20Rng::seed_from_u64(2))
        .expect("flood");
    let after = rms(&flooded);
    // Uniform in [-2^B, 2^B): variance 2^2B / 3 per coefficient; a slot
    // sums N of them (real part: half the power).
    let n = 4096f64;
    let want = 2f64.powi(bits as i32) * (n / 3.0 / 2.0).sqrt() / scale;
    assert!(
        after > 0.7 * want && after < 1.4 * want,
        "rms {after:e}, predicted {want:e}"
    );
    assert!(
        before < want / 100.0,
        "fresh noise {before:e} vs flood {want:e}"
    );
    // 36 bits would leave under 4 bits below the scale: refused.
    assert!(matches!(
        ev.flood(&ct, &pk, 36, &mut ChaCha20Rng::seed_from_u64(3)),
        Err(CkksError::Mismatch { .. })
    ));
}
