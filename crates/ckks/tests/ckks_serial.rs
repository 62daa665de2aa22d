//! Serialization of CKKS objects: round trips that still decrypt / compute
//! correctly, and corrupt or foreign input refused with a typed error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use slaf_ckks::serial::*;
use slaf_ckks::*;
use std::sync::Arc;

fn context(bits: Vec<u32>) -> Arc<CkksContext> {
    let params = CkksParameters::new(CkksParametersLiteral {
        log_n: 11,
        coeff_mod_bit_sizes: bits,
        scale_bits: 25,
        allow_insecure: true, // small test ring
        special_primes: 1,
        dnum: None,
    })
    .expect("params");
    CkksContext::new(params).expect("ctx")
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < tol)
}

#[test]
fn objects_round_trip_and_still_work() {
    let ctx = context(vec![40, 25, 25, 40]);
    let mut kg = KeyGenerator::new(&ctx, ChaCha20Rng::seed_from_u64(1));
    let pk = kg.public_key();
    let rk = kg.relinearization_key();
    let gk = kg.galois_keys(&[1, -3], true);
    let enc = Encoder::new(&ctx);
    let ev = Evaluator::new(&ctx);
    let xs: Vec<f64> = (0..16).map(|i| i as f64 / 8.0 - 1.0).collect();

    // Public key: a ciphertext made with the reloaded key decrypts.
    let pk2 = public_key_from_bytes(&ctx, &public_key_to_bytes(&ctx, &pk)).expect("pk");
    let mut encryptor = Encryptor::new(&ctx, pk2, ChaCha20Rng::seed_from_u64(2));
    let ct = encryptor.encrypt(&enc.encode(&xs, 2, 2f64.powi(25)).expect("encode"));

    // Ciphertext: identical after the round trip; size is as computed.
    let bytes = ciphertext_to_bytes(&ctx, &ct);
    assert_eq!(bytes.len(), ciphertext_size(&ctx, &ct));
    let ct2 = ciphertext_from_bytes(&ctx, &bytes).expect("ct");
    assert_eq!(ct, ct2);
    let dec = enc.decode(&decrypt(&ctx, kg.secret_key(), &ct2));
    assert!(close(&dec, &xs, 5e-3), "{:?}", &dec[..16]);

    // Relinearization key: x² with the reloaded key.
    let rk2 =
        relinearization_key_from_bytes(&ctx, &relinearization_key_to_bytes(&ctx, &rk)).expect("rk");
    let sq = ev.mul_relin_rescale(&ct2, &ct2, &rk2).expect("square");
    let dec = enc.decode(&decrypt(&ctx, kg.secret_key(), &sq));
    let want: Vec<f64> = xs.iter().map(|x| x * x).collect();
    assert!(close(&dec, &want, 1e-2));

    // Galois keys: rotations with the reloaded keys.
    let gk2 = galois_keys_from_bytes(&ctx, &galois_keys_to_bytes(&ctx, &gk)).expect("gk");
    assert_eq!(gk.elements(), gk2.elements());
    let rot = ev.rotate(&ct2, 1, &gk2).expect("rotate");
    let dec = enc.decode(&decrypt(&ctx, kg.secret_key(), &rot));
    assert!(close(&dec[..15], &xs[1..], 5e-3));

    // Parameters: JSON round trip, validated again on load.
    let json = parameters_to_json(ctx.params());
    let p2 = parameters_from_json(&json, true).expect("params");
    assert_eq!(p2.q(), ctx.params().q());
    // The opt-out is the caller's: without it the same JSON is refused.
    assert!(matches!(
        parameters_from_json(&json, false),
        Err(CkksError::InsecureParameters { .. })
    ));
    assert!(parameters_from_json("{\"log_n\": 13}", true).is_err());
}

#[test]
fn corrupt_or_foreign_input_is_refused() {
    let ctx = context(vec![40, 25, 25, 40]);
    let mut kg = KeyGenerator::new(&ctx, ChaCha20Rng::seed_from_u64(3));
    let pk = kg.public_key();
    let enc = Encoder::new(&ctx);
    let ct = Encryptor::new(&ctx, pk, ChaCha20Rng::seed_from_u64(4))
        .encrypt(&enc.encode(&[0.5], 2, 2f64.powi(25)).expect("encode"));
    let good = ciphertext_to_bytes(&ctx, &ct);
    let refused = |bytes: &[u8], needle: &str| match ciphertext_from_bytes(&ctx, bytes) {
        Err(CkksError::Deserialize { detail }) => {
            assert!(detail.contains(needle), "{detail:?} lacks {needle:?}")
        }
        other => panic!("expected a Deserialize error containing {needle:?}, got {other:?}"),
    };
    refused(&good[..good.len() - 1], "truncated");
    refused(&good[..3], "truncated");
    refused(&[], "truncated");
    let mut extra = good.clone();
    extra.push(0);
    refused(&extra, "trailing");
    let mut magic = good.clone();
    magic[0] = b'X';
    refused(&magic, "magic");
    // The last coefficient set to u64::MAX is not below its prime.
    let mut coef = good.clone();
    let n = coef.len();
    coef[n - 8..].copy_from_slice(&u64::MAX.to_le_bytes());
    refused(&coef, "not below its prime");
    // A public key is not a ciphertext.
    let pk_bytes = public_key_to_bytes(&ctx, &kg.public_key());
    refused(&pk_bytes, "expected a ciphertext");
    // Another chain: the primes differ.
    let other = context(vec![40, 26, 26, 40]);
    match ciphertext_from_bytes(&other, &good) {
        Err(CkksError::Deserialize { detail }) => assert!(detail.contains("prime"), "{detail}"),
        r => panic!("{r:?}"),
    }
    // Flipping every byte position of the header never panics.
    for i in 0..64.min(good.len()) {
        let mut b = good.clone();
        b[i] ^= 0xA5;
        let _ = ciphertext_from_bytes(&ctx, &b);
    }
}

#[test]
fn seed_compression_halves_keys_and_uploads_and_still_works() {
    let ctx = context(vec![40, 25, 25, 40]);
    let mut kg = KeyGenerator::from_seed(&ctx, &KeySeed::for_tests(5));
    let (pk, rk, gk) = (
        kg.public_key(),
        kg.relinearization_key(),
        kg.galois_keys(&[1, -3], true),
    );
    let enc = Encoder::new(&ctx);
    let ev = Evaluator::new(&ctx);
    let xs: Vec<f64> = (0..16).map(|i| i as f64 / 8.0 - 1.0).collect();
    let pt = enc.encode(&xs, 2, 2f64.powi(25)).expect("encode");

    // A seeded symmetric ciphertext: about half the bytes of the full one,
    // read back to exactly the ciphertext its expansion gives.
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let sct = encrypt_symmetric_seeded(&ctx, kg.secret_key(), &pt, &mut rng);
    let full = sct.expand(&ctx);
    let small = seeded_ciphertext_to_bytes(&ctx, &sct);
    let big = ciphertext_to_bytes(&ctx, &full);
    let ratio = small.len() as f64 / big.len() as f64;
    assert!((0.49..0.52).contains(&ratio), "seeded/full = {ratio}");
    let back = ciphertext_from_bytes(&ctx, &small).expect("seeded ct");
    assert_eq!(back, full);
    let dec = enc.decode(&decrypt(&ctx, kg.secret_key(), &back));
    assert!(close(&dec, &xs, 1e-3));
    // The same rng stream gives the same ciphertext through the unseeded path.
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    assert_eq!(
        encrypt_symmetric(&ctx, kg.secret_key(), &pt, &mut rng),
        full
    );

    // Keys: each seeded form is about half, and the reloaded keys compute.
    // Every polynomial is stored with 4 bytes per residue of the 25-bit
    // primes (8 for the 40-bit ones) in memory and serialised with 8 bytes
    // per residue of b and a's seed: about half their 64-bit form.
    let p = ctx.params();
    let pkb = public_key_to_bytes(&ctx, &pk);
    let pk_wide = 2 * p.q().len() * p.n() * 8;
    assert!((pkb.len() as f64) < 0.52 * pk_wide as f64, "{}", pkb.len());
    let word = |q: u64| if q < 1 << 32 { 4 } else { 8 };
    assert_eq!(
        pk.byte_size(),
        2 * p.n() * p.q().iter().map(|&q| word(q)).sum::<usize>()
    );
    let unpacked = |keys: usize| (keys * p.dnum() * 2 * 4 * p.n() * 8) as f64;
    assert_eq!(p.key_poly_bytes(), (8 + 4 + 4 + 8) * p.n());
    assert_eq!(rk.byte_size(), p.dnum() * 2 * p.key_poly_bytes());
    let rkb = relinearization_key_to_bytes(&ctx, &rk);
    assert!((rkb.len() as f64) < 0.52 * unpacked(1));
    let gkb = galois_keys_to_bytes(&ctx, &gk);
    assert_eq!(gk.len(), 3);
    assert!((gkb.len() as f64) < 0.52 * unpacked(3));
    // The computed sizes are the serialized ones (what a server bounds bodies by).
    assert_eq!(pkb.len(), sizes::public_key(p, true));
    assert_eq!(rkb.len(), sizes::relinearization_key(p, true));
    assert_eq!(gkb.len(), sizes::galois_keys(p, 3, true));
    assert_eq!(small.len(), sizes::seeded_ciphertext(p, 2));
    assert_eq!(big.len(), sizes::ciphertext(p, 2, 2));
    // The full form stores a's polynomial instead of its 32-byte seed.
    let a_poly = 4 + 1 + p.q().len() * p.n() * 8;
    assert_eq!(
        sizes::public_key(p, false) - sizes::public_key(p, true),
        a_poly - 32
    );
    assert!(sizes::galois_keys(p, 3, false) > sizes::galois_keys(p, 3, true));
    let rk2 = relinearization_key_from_bytes(&ctx, &rkb).expect("rk");
    let gk2 = galois_keys_from_bytes(&ctx, &gkb).expect("gk");
    // A reloaded seeded key serializes to the same bytes (seeds are kept).
    assert_eq!(galois_keys_to_bytes(&ctx, &gk2), gkb);
    let sq = ev.mul_relin_rescale(&back, &back, &rk2).expect("square");
    let dec = enc.decode(&decrypt(&ctx, kg.secret_key(), &sq));
    let want: Vec<f64> = xs.iter().map(|x| x * x).collect();
    assert!(close(&dec, &want, 1e-2));
    for (step, shift) in [(1i64, 1usize), (-3, 0)] {
        let rot = ev.rotate(&back, step, &gk2).expect("rotate");
        let dec = enc.decode(&decrypt(&ctx, kg.secret_key(), &rot));
        if step > 0 {
            assert!(close(&dec[..15], &xs[shift..], 5e-3), "step {step}");
        } else {
            assert!(close(&dec[3..16], &xs[..13], 5e-3), "step {step}");
        }
    }
    let conj = ev.conjugate(&back, &gk2).expect("conjugate");
    let dec = enc.decode(&decrypt(&ctx, kg.secret_key(), &conj));
    assert!(close(&dec, &xs, 5e-3));

    // A bad seed form byte is refused with a typed error.
    // (magic 8, version 4, kind 1, N 8, prime count 4, 4 primes, special
    // prime count 4, level 4, scale 8, part count 4, then the form byte.)
    let mut bad = small.clone();
    let at = 8 + 4 + 1 + 8 + 4 + 4 * 8 + 4 + 4 + 8 + 4;
    assert_eq!(bad[at], 1);
    bad[at] = 7;
    assert!(matches!(
        ciphertext_from_bytes(&ctx, &bad),
        Err(CkksError::Deserialize { .. })
    ));
}
