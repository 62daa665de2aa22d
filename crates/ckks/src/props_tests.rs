//! Property-based tests (proptest) of the CKKS layer on random inputs:
//! exact modular reduction of large constants, encode/decode round trip,
//! and the homomorphism of add, multiply and rotate on random vectors.

use crate::math::{is_prime, reduce_f64, reduce_i64};
use crate::*;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::sync::{Arc, OnceLock};

struct Fixture {
    ctx: Arc<CkksContext>,
    enc: Encoder,
    sk: KeyGenerator,
    pk: PublicKey,
    rk: RelinearizationKey,
    gk: GaloisKeys,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let params = CkksParameters::new(CkksParametersLiteral {
            log_n: 12,
            coeff_mod_bit_sizes: vec![50, 35, 35, 50],
            scale_bits: 35,
            allow_insecure: true, // 170 bits > 109 for N=4096: test-only ring
            special_primes: 1,
            dnum: None,
        })
        .expect("params");
        let ctx = CkksContext::new(params).expect("ctx");
        let mut sk = KeyGenerator::new(&ctx, ChaCha20Rng::seed_from_u64(7));
        let pk = sk.public_key();
        let rk = sk.relinearization_key();
        let gk = sk.galois_keys(&[1, 2, 5, -7, 100], false);
        Fixture {
            enc: Encoder::new(&ctx),
            ctx,
            sk,
            pk,
            rk,
            gk,
        }
    })
}

fn encrypt(f: &Fixture, xs: &[f64], seed: u64) -> Ciphertext {
    let pt = f.enc.encode(xs, 2, 2f64.powi(35)).expect("encode");
    Encryptor::new(&f.ctx, f.pk.clone(), ChaCha20Rng::seed_from_u64(seed)).encrypt(&pt)
}

fn decrypt_vec(f: &Fixture, ct: &Ciphertext) -> Vec<f64> {
    f.enc.decode(&decrypt(&f.ctx, f.sk.secret_key(), ct))
}

fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn reduce_f64_agrees_with_integer_reduction(v in any::<i64>(), q in (1u64 << 20)..(1u64 << 61)) {
        let v = (v >> 12) as f64; // exactly representable
        prop_assert_eq!(reduce_f64(v, q), reduce_i64(v as i64, q));
    }

    #[test]
    fn reduce_f64_of_a_power_of_two_multiple(m in -(1i64 << 40)..(1i64 << 40), e in 0u32..60) {
        let q = 1_152_921_504_606_584_833u64;
        prop_assume!(is_prime(q));
        let v = m as f64 * 2f64.powi(e as i32 + 30);
        let mut want = (i128::from(m)).rem_euclid(i128::from(q));
        for _ in 0..(e + 30) {
            want = (want * 2) % i128::from(q);
        }
        prop_assert_eq!(reduce_f64(v, q), want as u64);
    }

    #[test]
    fn encode_decode_round_trip(xs in prop::collection::vec(-100.0f64..100.0, 1..64)) {
        let f = fixture();
        let pt = f.enc.encode(&xs, 2, 2f64.powi(35)).expect("encode");
        let back = f.enc.decode(&pt);
        prop_assert!(max_err(&back, &xs) < 1e-6, "{}", max_err(&back, &xs));
    }

    #[test]
    fn add_mul_rotate_are_homomorphic(
        xs in prop::collection::vec(-2.0f64..2.0, 128),
        ys in prop::collection::vec(-2.0f64..2.0, 128),
        step in prop::sample::select(vec![1i64, 2, 5, -7, 100]),
        seed in any::<u64>(),
    ) {
        let f = fixture();
        let ev = Evaluator::new(&f.ctx);
        let (a, b) = (encrypt(f, &xs, seed), encrypt(f, &ys, seed ^ 1));
        let sum = decrypt_vec(f, &ev.add(&a, &b).expect("add"));
        let want: Vec<f64> = xs.iter().zip(&ys).map(|(x, y)| x + y).collect();
        prop_assert!(max_err(&sum, &want) < 1e-4);
        let prod = decrypt_vec(f, &ev.mul_relin_rescale(&a, &b, &f.rk).expect("mul"));
        let want: Vec<f64> = xs.iter().zip(&ys).map(|(x, y)| x * y).collect();
        prop_assert!(max_err(&prod, &want) < 1e-3, "{}", max_err(&prod, &want));
        let rot = decrypt_vec(f, &ev.rotate(&a, step, &f.gk).expect("rotate"));
        let slots = f.ctx.params().slots() as i64;
        let mut full = vec![0.0; slots as usize];
        full[..xs.len()].copy_from_slice(&xs);
        let want: Vec<f64> = (0..slots).map(|i| full[(i + step).rem_euclid(slots) as usize]).collect();
        prop_assert!(max_err(&rot, &want) < 1e-4, "{}", max_err(&rot, &want));
    }
}
