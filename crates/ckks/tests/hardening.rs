//! CKKS hardening: one regression test per defect of the review (issue
//! "no silent wrong answer, no secret left in memory"), each failing on the
//! code before its fix. Every test name carries the word `hardening`, so
//! `cargo test --release hardening` runs them all (with the lib's unit
//! tests of the same name).
//!
//! The tests that watch memory use a global allocator that, while armed,
//! inspects every freed block of the two limb sizes of the test's ring
//! degree (4·N bytes: a limb of a prime below 2^32 in 32-bit words; 8·N
//! bytes: a limb in 64-bit words, or a signed sample) and counts the blocks
//! that were not zero. They are serialised by a lock so that no other test
//! frees blocks meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_ckks::serial::{ciphertext_from_bytes, ciphertext_to_bytes, parameters_from_json};
use slaf_ckks::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Counts frees (and allocations) of blocks of `WATCH_SIZE` or twice as
/// many bytes while `ARMED`.
struct Watch;
static ARMED: AtomicBool = AtomicBool::new(false);
static WATCH_SIZE: AtomicUsize = AtomicUsize::new(0);
static FREED: AtomicUsize = AtomicUsize::new(0);
static FREED_NONZERO: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

fn watched(size: usize) -> bool {
    let w = WATCH_SIZE.load(Ordering::SeqCst);
    size == w || size == 2 * w
}

unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::SeqCst) && watched(layout.size()) {
            ALLOCATED.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::SeqCst) && watched(layout.size()) {
            ALLOCATED.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::SeqCst) && watched(layout.size()) {
            FREED.fetch_add(1, Ordering::SeqCst);
            // SAFETY: the block is still allocated and `layout.size()` long.
            let bytes = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if bytes.iter().any(|&b| b != 0) {
                FREED_NONZERO.fetch_add(1, Ordering::SeqCst);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Watch = Watch;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// (freed, freed and not zero, allocated) blocks of one limb (either
/// width) during `f`.
fn watch_limbs<T>(n: usize, f: impl FnOnce() -> T) -> (T, usize, usize, usize) {
    WATCH_SIZE.store(4 * n, Ordering::SeqCst);
    FREED.store(0, Ordering::SeqCst);
    FREED_NONZERO.store(0, Ordering::SeqCst);
    ALLOCATED.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    let out = f();
    ARMED.store(false, Ordering::SeqCst);
    (
        out,
        FREED.load(Ordering::SeqCst),
        FREED_NONZERO.load(Ordering::SeqCst),
        ALLOCATED.load(Ordering::SeqCst),
    )
}

fn small_ctx(log_n: u32, bits: Vec<u32>, scale_bits: u32) -> Arc<CkksContext> {
    let params = CkksParameters::new(CkksParametersLiteral {
        log_n,
        coeff_mod_bit_sizes: bits,
        scale_bits,
        allow_insecure: true,
        special_primes: 1,
        dnum: None,
    })
    .expect("params");
    CkksContext::new(params).expect("context")
}

struct Keys {
    ctx: Arc<CkksContext>,
    sk: SecretKey,
    pk: PublicKey,
    ev: Evaluator,
}

fn keys(ctx: &Arc<CkksContext>) -> Keys {
    let mut kg = KeyGenerator::from_seed(ctx, &KeySeed::for_tests(7));
    let pk = kg.public_key();
    let rk = kg.relinearization_key();
    let gk = kg.galois_keys(&[1], false);
    Keys {
        ctx: Arc::clone(ctx),
        sk: kg.into_secret_key(),
        pk,
        ev: Evaluator::with_keys(ctx, EvaluationKeys::new(Some(rk), Some(gk))),
    }
}

fn encrypt(k: &Keys, values: &[f64], level: usize, scale: f64) -> Ciphertext {
    let pt = k.ev.encoder().encode(values, level, scale).expect("encode");
    encrypt_symmetric(&k.ctx, &k.sk, &pt, &mut KeySeed::for_tests(3).rng())
}

// 1. Encoder overflow.
#[test]
fn hardening_encoder_refuses_values_that_wrap_the_level_modulus() {
    let _g = serial();
    let ctx = CkksContext::new(presets::cnn1_x2()).expect("context");
    let enc = Encoder::new(&ctx);
    let slots = ctx.params().slots();
    let scale = 2f64.powi(30);
    // q0 has 31 bits: 4 · 2^30 = 2^32 wraps at level 0 (decoded garbage before).
    let err = enc
        .encode(&vec![4.0; slots], 0, scale)
        .expect_err("4.0 at 2^30 overflows q0");
    match err {
        CkksError::EncodingOverflow {
            level, scale_bits, ..
        } => {
            assert_eq!(level, 0);
            assert!((scale_bits - 30.0).abs() < 1e-9);
        }
        e => panic!("wrong error: {e}"),
    }
    let msg = err_text(enc.encode(&vec![4.0; slots], 0, scale));
    assert!(msg.contains("level 0") && msg.contains("2^30.0"), "{msg}");
    // The same values fit one level up, and small values fit level 0.
    assert!(enc.encode(&vec![4.0; slots], 1, scale).is_ok());
    let pt = enc.encode(&vec![0.25; slots], 0, scale).expect("fits");
    let back = enc.decode(&pt);
    assert!(back.iter().all(|v| (v - 0.25).abs() < 1e-6));
}

fn err_text<T>(r: Result<T, CkksError>) -> String {
    match r {
        Ok(_) => String::from("no error"),
        Err(e) => e.to_string(),
    }
}

// 2. Products check their scale against Q_l.
#[test]
fn hardening_products_at_level_zero_are_scale_out_of_bounds() {
    let _g = serial();
    let ctx = CkksContext::new(presets::cnn1_x2()).expect("context");
    let k = keys(&ctx);
    let scale = 2f64.powi(26);
    let ct = encrypt(&k, &[0.5, -0.25], 0, scale);
    // 2^52 does not fit the 31-bit q0: before the fix this wrapped silently.
    for (what, r) in [
        ("mul", k.ev.mul(&ct, &ct)),
        (
            "mul_plain",
            k.ev.mul_plain(&ct, &k.ev.encoder().encode(&[1.0], 0, scale).expect("pt")),
        ),
        ("mul_scalar", k.ev.mul_scalar(&ct, 2.0, scale)),
    ] {
        match r {
            Err(CkksError::ScaleOutOfBounds { level: 0, .. }) => {}
            Err(e) => panic!("{what}: wrong error {e}"),
            Ok(_) => panic!("{what} at level 0 with scale 2^52 must fail"),
        }
    }
    // One level up the same product fits and is right.
    let ct1 = encrypt(&k, &[0.5, -0.25], 1, scale);
    let sq = k.ev.mul(&ct1, &ct1).expect("fits at level 1");
    let rk = k.ev.relin_key("test").expect("relin key");
    let out =
        k.ev.rescale(&k.ev.relinearize(&sq, rk).expect("relin"))
            .expect("rescale");
    let got = k.ev.encoder().decode(&decrypt(&ctx, &k.sk, &out));
    assert!((got[0] - 0.25).abs() < 1e-3 && (got[1] - 0.0625).abs() < 1e-3);
}

#[test]
fn hardening_linear_combination_checks_its_scale() {
    let _g = serial();
    let ctx = CkksContext::new(presets::cnn1_x2()).expect("context");
    let k = keys(&ctx);
    let ct = encrypt(&k, &[0.5], 0, 2f64.powi(26));
    let r =
        k.ev.linear_combination(&[&ct, &ct], &[1.0, 2.0], 2f64.powi(26));
    assert!(
        matches!(r, Err(CkksError::ScaleOutOfBounds { .. })),
        "{}",
        err_text(r)
    );
}

// 2b. Non-finite scales, and scale equality within a few ulps.
#[test]
fn hardening_non_finite_scales_are_refused() {
    let _g = serial();
    let ctx = small_ctx(12, vec![40, 30, 40], 30);
    let k = keys(&ctx);
    let mut ct = encrypt(&k, &[1.0], 1, 2f64.powi(30));
    for bad in [f64::NAN, f64::INFINITY, 0.0, -1.0] {
        assert!(k.ev.set_scale(&mut ct, bad).is_err(), "set_scale({bad})");
        assert!(
            k.ev.mul_scalar(&ct, 1.0, bad).is_err(),
            "mul_scalar(.., {bad})"
        );
    }
    assert_eq!(
        ct.scale(),
        2f64.powi(30),
        "a refused relabel leaves the scale"
    );
}

#[test]
fn hardening_scales_must_agree_to_a_few_ulps() {
    let _g = serial();
    let ctx = small_ctx(12, vec![40, 30, 40], 30);
    let k = keys(&ctx);
    let a = encrypt(&k, &[1.0], 1, 2f64.powi(30));
    let mut b = a.clone();
    // 1e-12 relative passed the old 1e-9 tolerance and added garbage bits.
    k.ev.set_scale(&mut b, 2f64.powi(30) * (1.0 + 1e-12))
        .expect("relabel");
    assert!(k.ev.add(&a, &b).is_err());
    let mut c = a.clone();
    k.ev.set_scale(&mut c, 2f64.powi(30) * (1.0 + 2.0 * f64::EPSILON))
        .expect("relabel");
    assert!(
        k.ev.add(&a, &c).is_ok(),
        "2 ulps is rounding, not a mismatch"
    );
}

#[test]
fn hardening_set_scale_is_checked_against_the_level() {
    let _g = serial();
    let ctx = small_ctx(12, vec![40, 30, 40], 30);
    let k = keys(&ctx);
    let mut ct = encrypt(&k, &[1.0], 0, 2f64.powi(30));
    // Q_0 has 40 bits: a 2^39.5 label leaves less than the 1-bit headroom.
    let r = k.ev.set_scale(&mut ct, 2f64.powf(39.5));
    assert!(matches!(
        r,
        Err(CkksError::ScaleOutOfBounds { level: 0, .. })
    ));
    assert!(k.ev.set_scale(&mut ct, 2f64.powi(31)).is_ok());
}

// 3. Secret temporaries are zeroized; the decryptor copies no secret.
#[test]
fn hardening_secret_temporaries_are_zeroized_when_freed() {
    let _g = serial();
    let n = 1 << 11;
    let ctx = small_ctx(11, vec![30, 25, 30], 25);
    // Key generation, public key and relinearisation key: every freed
    // limb-sized block is secret (s, s², errors) and must be zero.
    let ((mut kg, pk, rk), freed, nonzero, _) = watch_limbs(n, || {
        let mut kg = KeyGenerator::from_seed(&ctx, &KeySeed::for_tests(11));
        let pk = kg.public_key();
        let rk = kg.relinearization_key();
        (kg, pk, rk)
    });
    drop(rk);
    assert!(freed >= 4, "the window saw the temporaries ({freed} frees)");
    assert_eq!(
        nonzero, 0,
        "{nonzero} of {freed} freed secret blocks not wiped"
    );
    let enc = Encoder::new(&ctx);
    let pt = enc.encode(&[0.5], 1, 2f64.powi(25)).expect("encode");
    let mut encryptor = Encryptor::new(&ctx, pk, KeySeed::for_tests(12).rng());
    // Public-key encryption: u, e0, e1 are wiped.
    let (ct, freed, nonzero, _) = watch_limbs(n, || encryptor.encrypt(&pt));
    assert!(freed >= 3, "encryption frees its randomness ({freed})");
    assert_eq!(
        nonzero, 0,
        "{nonzero} of {freed} encryption temporaries not wiped"
    );
    // Dropping the secret key wipes s and s².
    let sk = std::mem::replace(
        &mut kg,
        KeyGenerator::from_seed(&ctx, &KeySeed::for_tests(13)),
    )
    .into_secret_key();
    let (_, freed, nonzero, _) = watch_limbs(n, || drop(sk));
    assert_eq!(freed, 2 * 3, "s and s² over 2 primes + P");
    assert_eq!(nonzero, 0);
    drop(ct);
}

#[test]
fn hardening_decrypt_makes_no_copy_of_the_secret() {
    let _g = serial();
    let n = 1 << 11;
    let ctx = small_ctx(11, vec![30, 25, 25, 30], 25);
    let k = keys(&ctx);
    let ct = encrypt(&k, &[0.5], 2, 2f64.powi(25));
    let sq = k.ev.mul(&ct, &ct).expect("3-part product");
    // Only the accumulator (one limb per prime of the level) is allocated;
    // the old decryptor cloned s and built s², s³ on every call.
    let (pt, _, _, allocated) = watch_limbs(n, || decrypt(&ctx, &k.sk, &sq));
    assert_eq!(allocated, 3, "one accumulator limb per prime");
    let got = k.ev.encoder().decode(&pt);
    assert!((got[0] - 0.25).abs() < 1e-3, "{}", got[0]);
}

// 4. The special prime must not be smaller than the chain primes.
#[test]
fn hardening_special_prime_smaller_than_the_chain_is_refused() {
    let lit = CkksParametersLiteral {
        log_n: 13,
        coeff_mod_bit_sizes: vec![50, 40, 40, 20],
        scale_bits: 40,
        allow_insecure: false,
        special_primes: 1,
        dnum: None,
    };
    match CkksParameters::new(lit) {
        Err(CkksError::SpecialPrimeTooSmall {
            special_bits: 20,
            chain_bits: 50,
        }) => {}
        other => panic!("expected SpecialPrimeTooSmall, got {other:?}"),
    }
    // Every preset's special prime is at least its largest chain prime
    // (equal sizes: the special prime takes the largest prime of the size).
    for p in [presets::cnn1_x2(), presets::slaf(), presets::slaf_p()] {
        let max = p.q().iter().copied().max().unwrap_or(0);
        let sp = p.special_primes();
        assert_eq!(sp.len(), 1, "{}: SEAL layout", p.describe());
        assert!(sp[0] > max, "{}: P = {} < {max}", p.describe(), sp[0]);
    }
}

// 5. The insecure opt-out is the caller's only; sizes are capped on load.
#[test]
fn hardening_parameters_json_cannot_opt_out_of_security() {
    let json = r#"{"log_n": 12, "coeff_mod_bit_sizes": [60, 60, 60], "scale_bits": 40, "allow_insecure": true}"#;
    assert!(matches!(
        parameters_from_json(json, false),
        Err(CkksError::InsecureParameters { n: 4096, .. })
    ));
    let p = parameters_from_json(json, true).expect("the caller may opt out");
    assert!(p.is_insecure());
    // The serialized form carries no opt-out at all.
    let text = slaf_ckks::serial::parameters_to_json(&p);
    assert!(!text.contains("allow_insecure"), "{text}");
    // Chain length and N are capped before any prime search.
    let long = format!(
        r#"{{"log_n": 16, "coeff_mod_bit_sizes": [{}], "scale_bits": 30}}"#,
        vec!["40"; 10_000].join(",")
    );
    let t = std::time::Instant::now();
    let e = parameters_from_json(&long, true).expect_err("10000 primes");
    assert!(e.to_string().contains("at most 64"), "{e}");
    assert!(t.elapsed().as_secs_f64() < 1.0);
    let big_n = r#"{"log_n": 30, "coeff_mod_bit_sizes": [40, 40], "scale_bits": 30}"#;
    assert!(parameters_from_json(big_n, true).is_err());
}

// 6. The deserializer refuses coefficient-form polynomials.
#[test]
fn hardening_deserializer_refuses_ntt_flag_zero() {
    let _g = serial();
    let ctx = small_ctx(11, vec![30, 25, 30], 25);
    let k = keys(&ctx);
    let ct = encrypt(&k, &[0.5], 1, 2f64.powi(25));
    let mut bytes = ciphertext_to_bytes(&ctx, &ct);
    assert!(ciphertext_from_bytes(&ctx, &bytes).is_ok());
    // Header: magic 8, version 4, kind 1, N 8, count 4, 3 primes x 8,
    // special prime count 4; then level 4, scale 8, parts 4, form 1 (full),
    // limb count 4, then the first NTT flag.
    let flag = 8 + 4 + 1 + 8 + 4 + 3 * 8 + 4 + 4 + 8 + 4 + 1 + 4;
    assert_eq!(bytes[flag], 1);
    bytes[flag] = 0;
    let e = ciphertext_from_bytes(&ctx, &bytes).expect_err("NTT flag 0");
    assert!(e.to_string().contains("NTT flag 0"), "{e}");
}

// 7. Samplers: constant-time centred binomial errors and ternary secrets
// with the HE-standard width (observed through fresh-encryption noise).
#[test]
fn hardening_fresh_noise_is_centred_binomial_with_the_standard_width() {
    let _g = serial();
    let ctx = small_ctx(12, vec![40, 40], 30);
    let k = keys(&ctx);
    let enc = k.ev.encoder();
    let zero = enc.encode(&[], 0, 2f64.powi(30)).expect("zero");
    let mut rng = KeySeed::for_tests(21).rng();
    let mut noise = Vec::new();
    for _ in 0..64 {
        let ct = encrypt_symmetric(&ctx, &k.sk, &zero, &mut rng);
        noise.extend(enc.centered_coefficients(&decrypt(&ctx, &k.sk, &ct)));
    }
    // Symmetric encryption of 0 decrypts to e exactly.
    assert!(noise.iter().all(|e| e.fract() == 0.0 && e.abs() <= 21.0));
    let var = noise.iter().map(|e| e * e).sum::<f64>() / noise.len() as f64;
    let mean = noise.iter().sum::<f64>() / noise.len() as f64;
    // Var(CBD(21)) = 10.5 exactly. The sample variance of n draws has a
    // standard error of about sqrt(2 sigma^4 / n) (0.029 for n = 2^18);
    // 4.5 of them separate it from the old rounded Gaussian of sigma 3.2
    // (variance 10.24 + 1/12 = 10.32, 6 standard errors away).
    let n = noise.len() as f64;
    let se = (2.0 * 10.5f64.powi(2) / n).sqrt();
    assert!(
        (var - 10.5).abs() < 4.5 * se,
        "variance {var} vs 10.5 ± {se}"
    );
    assert!(mean.abs() < 4.5 * (10.5 / n).sqrt(), "mean {mean}");
}

// 8. Sealed types: the scale changes only through the checked relabel;
// the evaluator owns its keys and is the circuit backend itself.
#[test]
fn hardening_evaluator_owns_its_keys_and_reports_missing_ones() {
    let _g = serial();
    let ctx = small_ctx(12, vec![40, 30, 30, 40], 30);
    let k = keys(&ctx);
    let bare = Evaluator::new(&ctx);
    let ct = encrypt(&k, &[1.0, 2.0], 2, 2f64.powi(30));
    let e = bare.relin_key("square").expect_err("no relin key");
    assert!(e.to_string().contains("no relinearization key"), "{e}");
    assert!(bare.galois_keys("rotate").is_err());
    let poly = slaf_ckks::circuits::Polynomial::power(vec![0.0, 0.0, 1.0]);
    let r = slaf_ckks::circuits::PolynomialEvaluator::new(&bare).evaluate(&ct, &poly, None);
    assert!(r.is_err(), "x² without a relinearization key");
    let sq = slaf_ckks::circuits::PolynomialEvaluator::new(&k.ev)
        .evaluate(&ct, &poly, None)
        .expect("x² with the evaluator's own key");
    let got = k.ev.encoder().decode(&decrypt(&ctx, &k.sk, &sq));
    assert!((got[0] - 1.0).abs() < 1e-3 && (got[1] - 4.0).abs() < 1e-3);
}

// 9. Seeds are 256 bits: every byte matters.
#[test]
fn hardening_key_seeds_are_256_bits() {
    let _g = serial();
    let ctx = small_ctx(11, vec![30, 25, 30], 25);
    let pk_bytes = |seed: [u8; 32]| {
        let mut kg = KeyGenerator::from_seed(&ctx, &KeySeed::from_bytes(seed));
        slaf_ckks::serial::public_key_to_bytes(&ctx, &kg.public_key())
    };
    let a = [7u8; 32];
    let mut b = a;
    b[31] ^= 1; // beyond the 64 bits that seed_from_u64 used
    assert_ne!(pk_bytes(a), pk_bytes(b));
    assert_eq!(pk_bytes(a), pk_bytes(a), "deterministic per seed");
    // Parsing: 64 hex digits, or a decimal test seed; anything else is an error.
    let hex = "00".repeat(31) + "01";
    assert!(KeySeed::parse(&hex).is_ok());
    assert!(KeySeed::parse("73").is_ok());
    let e = KeySeed::parse("abc").expect_err("3 hex digits");
    assert!(e.to_string().contains("64 hexadecimal digits"), "{e}");
    // Seeds and secret keys never print.
    let s = format!("{:?}", KeySeed::for_tests(1));
    assert!(s.contains("redacted"), "{s}");
    // Derived streams differ from each other (one-way: SHA-256).
    let seed = KeySeed::for_tests(5);
    let (mut x, mut y) = (seed.derive("keys").rng(), seed.derive("encryption").rng());
    use rand::RngCore;
    assert_ne!(x.next_u64(), y.next_u64());
}

// The statistical noise test (tfhe-rs style), public-key side: the
// variance of fresh public-key encryption noise e·u + e0 + e1·s is
// sigma² (1 + 4N/3) for a ternary u and s (Var = 2/3 each).
#[test]
fn hardening_public_key_noise_variance_matches_theory() {
    let _g = serial();
    let n = 1usize << 12;
    let ctx = small_ctx(12, vec![50, 50], 30);
    let k = keys(&ctx);
    let enc = k.ev.encoder();
    let zero = enc.encode(&[], 0, 2f64.powi(30)).expect("zero");
    let mut encryptor = Encryptor::new(&ctx, k.pk.clone(), KeySeed::for_tests(31).rng());
    let mut noise = Vec::new();
    for _ in 0..16 {
        let ct = encryptor.encrypt(&zero);
        noise.extend(enc.centered_coefficients(&decrypt(&ctx, &k.sk, &ct)));
    }
    let var = noise.iter().map(|e| e * e).sum::<f64>() / noise.len() as f64;
    let want = 10.5 * (1.0 + 4.0 * n as f64 / 3.0);
    // Coefficients of one product are only uncorrelated, not independent:
    // a 5 % band (the standard error is 0.5 % for 2^16 samples).
    assert!(
        (var / want - 1.0).abs() < 0.05,
        "public-key noise variance {var:.0} vs theory {want:.0}"
    );
}
