//! Property-based mutation fuzzing of every deserializer: CKKS parameters
//! (JSON), ciphertexts, public, relinearization and Galois keys (binary),
//! weights files (JSON, plain and gzip), and the service's key-bundle and
//! ciphertext-message containers and published plan (JSON, as a client
//! checks it). Each case takes a valid
//! serialized object, applies 1-4 random mutations (bit flips, random or
//! extreme bytes, overwritten length fields, truncation, extension,
//! deleted or duplicated ranges, biased toward the header where the
//! counts live) and parses the result. A case passes when the parser
//! returns (Ok or a typed error) without a panic, and the largest single
//! allocation and the peak of live heap bytes during the parse stay within
//! [`alloc_bound`] of the input's size.
//!
//! Case count: `SLAF_HE_FUZZ_CASES` (default 2000 per binary/JSON format;
//! the weights formats default to 100 cases, since each parse of the CNN1
//! document takes milliseconds). Seeded and reproducible: case `i` of a
//! format always gets the same mutations. The long run:
//! `SLAF_HE_FUZZ_CASES=100000 cargo test --release --test fuzz -- --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slaf_he::ckks::serial::*;
use slaf_he::ckks::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

/// Per-thread heap accounting (the parsers are single-threaded).
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn on_alloc(size: usize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + size;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

fn on_free(size: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(size)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        on_free(layout.size());
        on_alloc(new);
        unsafe { System.realloc(ptr, layout, new) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_free(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The stated bound on both the largest single allocation and the peak of
/// live heap bytes of one parse: 8 bytes per input byte (a JSON number of
/// at least 2 characters becomes an f64, vectors grow by doubling) plus
/// 1 MiB for fixed costs.
fn alloc_bound(input_len: usize) -> usize {
    8 * input_len + (1 << 20)
}

/// The bound for gzip input: that of the JSON it inflates to, counted at
/// 16 times the compressed size (the committed weights inflate 7 times).
fn gzip_bound(input_len: usize) -> usize {
    alloc_bound(16 * input_len)
}

fn cases(default: usize) -> usize {
    std::env::var("SLAF_HE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const INTERESTING_U32: [u32; 7] = [0, 1, 2, 3, 0x7fff_ffff, 0xffff_ffff, 1 << 20];

/// 1-4 random mutations of `base`; half of the offsets fall in the first
/// `header` bytes.
fn mutate(base: &[u8], header: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        if v.is_empty() {
            v.push(rng.random());
            continue;
        }
        let len = v.len();
        let at = if rng.random_bool(0.5) {
            rng.random_range(0..header.min(len).max(1))
        } else {
            rng.random_range(0..len)
        };
        match rng.random_range(0..8) {
            0 => v[at] ^= 1 << rng.random_range(0..8),
            1 => v[at] = rng.random(),
            2 => v[at] = if rng.random_bool(0.5) { 0 } else { 0xff },
            3 => {
                let x = INTERESTING_U32[rng.random_range(0..INTERESTING_U32.len())];
                for (k, b) in x.to_le_bytes().iter().enumerate() {
                    if let Some(slot) = v.get_mut(at + k) {
                        *slot = *b;
                    }
                }
            }
            4 => v.truncate(at),
            5 => {
                let extra = rng.random_range(1..64);
                v.extend((0..extra).map(|_| rng.random::<u8>()));
            }
            6 => {
                let end = (at + rng.random_range(1..256)).min(len);
                v.drain(at..end);
            }
            _ => {
                let end = (at + rng.random_range(1..64)).min(len);
                let chunk = v[at..end].to_vec();
                let pos = rng.random_range(0..=v.len());
                v.splice(pos..pos, chunk);
            }
        }
    }
    v
}

/// Run `cases` mutated inputs of `base` through `parse`; panics (naming the
/// case) on a parser panic or an allocation beyond the bound. Returns the
/// number of inputs that still parsed.
fn fuzz(
    name: &str,
    base: &[u8],
    header: usize,
    cases: usize,
    bound: fn(usize) -> usize,
    parse: &dyn Fn(&[u8]) -> bool,
) -> usize {
    assert!(parse(base), "{name}: the unmutated input must parse");
    // FNV-1a of the name: each format gets its own reproducible cases.
    let name_hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let t = std::time::Instant::now();
    let mut accepted = 0;
    let (mut worst_largest, mut worst_peak) = (0usize, 0usize);
    for case in 0..cases {
        let mut rng = ChaCha8Rng::seed_from_u64(case as u64 ^ (name_hash << 20));
        let input = mutate(base, header, &mut rng);
        let live0 = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(live0));
        LARGEST.with(|m| m.set(0));
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&input)));
        let largest = LARGEST.with(Cell::get);
        let peak = PEAK.with(Cell::get).saturating_sub(live0);
        let ok = match ok {
            Ok(ok) => ok,
            Err(_) => panic!(
                "{name}: case {case} panicked (input of {} bytes)",
                input.len()
            ),
        };
        let bound = bound(input.len());
        assert!(
            largest <= bound && peak <= bound,
            "{name}: case {case}: largest allocation {largest} B, peak {peak} B, bound {bound} B for {} input bytes",
            input.len()
        );
        worst_largest = worst_largest.max(largest);
        worst_peak = worst_peak.max(peak);
        accepted += usize::from(ok);
    }
    eprintln!(
        "fuzz {name}: {cases} cases in {:.1} s, {accepted} still parsed; largest allocation {worst_largest} B, peak {worst_peak} B (bound {} B for the base input)",
        t.elapsed().as_secs_f64(),
        bound(base.len())
    );
    accepted
}

struct Objects {
    ctx: Arc<CkksContext>,
    ct2: Vec<u8>,
    ct3: Vec<u8>,
    pk: Vec<u8>,
    rk: Vec<u8>,
    gk: Vec<u8>,
    ek: Vec<u8>,
}

fn objects() -> Objects {
    let params = CkksParameters::new(CkksParametersLiteral {
        log_n: 10,
        coeff_mod_bit_sizes: vec![30, 25, 30],
        scale_bits: 25,
        allow_insecure: true,
        special_primes: 1,
        dnum: None,
    })
    .expect("params");
    let ctx = CkksContext::new(params).expect("context");
    let mut kg = KeyGenerator::from_seed(&ctx, &KeySeed::for_tests(1));
    let pk = kg.public_key();
    let rk = kg.relinearization_key();
    let gk = kg.galois_keys(&[1, -2], true);
    let ek = kg.encapsulation_keys(32).expect("encapsulation keys");
    let ev = Evaluator::new(&ctx);
    let pt = ev
        .encoder()
        .encode(&[0.5, -1.0], 1, 2f64.powi(25))
        .expect("pt");
    let ct = Encryptor::new(&ctx, pk.clone(), KeySeed::for_tests(2).rng()).encrypt(&pt);
    let ct3 = ev.mul(&ct, &ct).expect("product");
    Objects {
        ct2: ciphertext_to_bytes(&ctx, &ct),
        ct3: ciphertext_to_bytes(&ctx, &ct3),
        pk: public_key_to_bytes(&ctx, &pk),
        rk: relinearization_key_to_bytes(&ctx, &rk),
        gk: galois_keys_to_bytes(&ctx, &gk),
        ek: encapsulation_keys_to_bytes(&ctx, &ek),
        ctx,
    }
}

/// The binary header: magic, version, kind, N, prime count, 3 primes and
/// the special prime count (inside the 32-byte margin),
/// then the object's own counts.
const HEADER: usize = 8 + 4 + 1 + 8 + 4 + 3 * 8 + 32;

#[test]
fn fuzz_ciphertexts() {
    let o = objects();
    let parse = |b: &[u8]| ciphertext_from_bytes(&o.ctx, b).is_ok();
    fuzz(
        "ciphertext (2 parts)",
        &o.ct2,
        HEADER,
        cases(2000),
        alloc_bound,
        &parse,
    );
    fuzz(
        "ciphertext (3 parts)",
        &o.ct3,
        HEADER,
        cases(2000),
        alloc_bound,
        &parse,
    );
}

#[test]
fn fuzz_public_key() {
    let o = objects();
    let parse = |b: &[u8]| public_key_from_bytes(&o.ctx, b).is_ok();
    fuzz(
        "public key",
        &o.pk,
        HEADER,
        cases(2000),
        alloc_bound,
        &parse,
    );
}

#[test]
fn fuzz_relinearization_key() {
    let o = objects();
    let parse = |b: &[u8]| relinearization_key_from_bytes(&o.ctx, b).is_ok();
    fuzz(
        "relinearization key",
        &o.rk,
        HEADER,
        cases(2000),
        alloc_bound,
        &parse,
    );
}

#[test]
fn fuzz_encapsulation_keys() {
    let o = objects();
    let parse = |b: &[u8]| encapsulation_keys_from_bytes(&o.ctx, b).is_ok();
    fuzz(
        "encapsulation keys",
        &o.ek,
        HEADER,
        cases(2000),
        alloc_bound,
        &parse,
    );
}

#[test]
fn fuzz_galois_keys() {
    let o = objects();
    let parse = |b: &[u8]| galois_keys_from_bytes(&o.ctx, b).is_ok();
    fuzz(
        "Galois keys",
        &o.gk,
        HEADER,
        cases(2000),
        alloc_bound,
        &parse,
    );
}

#[test]
fn fuzz_parameters_json() {
    let base = parameters_to_json(&presets::slaf());
    let parse = |b: &[u8]| {
        let text = String::from_utf8_lossy(b);
        // Both opt-out settings: the caller's flag must not change safety.
        let strict = parameters_from_json(&text, false).is_ok();
        let lax = parameters_from_json(&text, true).is_ok();
        assert!(!strict || lax, "accepted strictly but not laxly");
        strict
    };
    fuzz(
        "parameters JSON",
        base.as_bytes(),
        base.len(),
        cases(2000),
        alloc_bound,
        &parse,
    );
}

#[test]
fn fuzz_service_bundles_and_messages() {
    use slaf_he::service::{
        BundleParts, decode_bundle, decode_message, encode_bundle, encode_message,
    };
    let o = objects();
    let bundle = encode_bundle(&BundleParts {
        params_json: parameters_to_json(o.ctx.params()),
        public_key: o.pk.clone(),
        relinearization_key: o.rk.clone(),
        galois_keys: o.gk.clone(),
    });
    // What the server does with a bundle: the container, then every part.
    let parse_bundle = |b: &[u8]| {
        decode_bundle(b).is_ok_and(|p| {
            parameters_from_json(&p.params_json, true).is_ok()
                && public_key_from_bytes(&o.ctx, &p.public_key).is_ok()
                && relinearization_key_from_bytes(&o.ctx, &p.relinearization_key).is_ok()
                && galois_keys_from_bytes(&o.ctx, &p.galois_keys).is_ok()
        })
    };
    fuzz(
        "key bundle",
        &bundle,
        12 + 8 + 64,
        cases(2000),
        alloc_bound,
        &parse_bundle,
    );
    let message = encode_message(&[o.ct2.clone(), o.ct3.clone()]);
    let parse_message = |b: &[u8]| {
        decode_message(b, 4).is_ok_and(|items| {
            items
                .iter()
                .all(|c| ciphertext_from_bytes(&o.ctx, c).is_ok())
        })
    };
    fuzz(
        "ciphertext message",
        &message,
        16 + 8 + 64,
        cases(2000),
        alloc_bound,
        &parse_message,
    );
}

#[test]
fn fuzz_service_plan_json() {
    use slaf_he::service::ServicePlan;
    let server = slaf_he::service::server::Server::new(
        &slaf_he::nn::WeightsFile::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("results/training/cnn1-x2.json.gz"),
        )
        .expect("weights"),
        slaf_he::he_nn::Mode::PerImage,
        None,
        slaf_he::service::server::ServerConfig::default(),
    )
    .expect("server");
    let base = serde_json::to_vec(server.plan()).expect("plan JSON");
    // What a client does with a plan before any key: parse, then check.
    let parse = |b: &[u8]| {
        serde_json::from_slice::<ServicePlan>(b)
            .is_ok_and(|p| slaf_he::service::client::check_plan(&p, false).is_ok())
    };
    fuzz(
        "service plan JSON",
        &base,
        base.len(),
        cases(300),
        alloc_bound,
        &parse,
    );
    // Byte mutations mostly break the JSON: also set single fields to
    // extreme values, each of which must be refused or checked, quickly.
    let value: serde_json::Value = serde_json::from_slice(&base).expect("plan value");
    let fields: [&[&str]; 8] = [
        &["images_per_request"],
        &["limits", "response_bytes"],
        &["layout", "outputs"],
        &["layout", "start_level"],
        &["params", "log_n"],
        &["params", "scale_bits"],
        &["params", "special_primes"],
        &["version"],
    ];
    let extremes = [
        0u64,
        1,
        2,
        17,
        63,
        64,
        65_537,
        1 << 31,
        u64::from(u32::MAX),
        u64::MAX,
    ];
    let mut refused = 0;
    let t = std::time::Instant::now();
    for f in fields {
        for &x in &extremes {
            let mut v = value.clone();
            let mut at = &mut v;
            for k in f {
                at = &mut at[*k];
            }
            *at = serde_json::json!(x);
            let ok = serde_json::from_value::<ServicePlan>(v)
                .is_ok_and(|p| slaf_he::service::client::check_plan(&p, false).is_ok());
            refused += usize::from(!ok);
        }
    }
    let mut steps = value.clone();
    steps["keys"]["galois_steps"] = serde_json::json!((1..70_000).collect::<Vec<i64>>());
    let p: ServicePlan = serde_json::from_value(steps).expect("plan");
    assert!(slaf_he::service::client::check_plan(&p, false).is_err());
    eprintln!(
        "fuzz service plan fields: {} cases in {:.1} s, {refused} refused",
        fields.len() * extremes.len(),
        t.elapsed().as_secs_f64()
    );
    assert!(refused >= fields.len() * 5, "{refused}");
}

fn cnn1_weights_json() -> Vec<u8> {
    use std::io::Read;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/training/cnn1-x2.json.gz");
    let gz = std::fs::read(&path).expect("committed CNN1-X2 weights");
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut text)
        .expect("gzip");
    text
}

#[test]
fn fuzz_weights_json() {
    let text = cnn1_weights_json();
    let parse = |b: &[u8]| match std::str::from_utf8(b) {
        Ok(t) => slaf_he::nn::WeightsFile::from_json(t).is_ok(),
        Err(_) => false,
    };
    fuzz(
        "weights JSON (CNN1-X2)",
        &text,
        4096,
        cases(100),
        alloc_bound,
        &parse,
    );
}

#[test]
fn fuzz_weights_gzip_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/training/cnn1-x2.json.gz");
    let gz = std::fs::read(&path).expect("committed CNN1-X2 weights");
    let file = dir.path().join("w.json.gz");
    let parse = |b: &[u8]| {
        std::fs::write(&file, b).expect("write");
        slaf_he::nn::WeightsFile::load(&file).is_ok()
    };
    fuzz(
        "weights file (gzip)",
        &gz,
        64,
        cases(100),
        gzip_bound,
        &parse,
    );
}

/// A gzip bomb (a tiny file that inflates past the cap) is refused
/// without being inflated whole.
#[test]
fn fuzz_weights_decompression_bomb_is_refused() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bomb.json.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..(slaf_he::nn::weights::MAX_JSON_BYTES >> 20) + 8 {
        enc.write_all(&zeros).expect("gzip");
    }
    let bomb = enc.finish().expect("gzip");
    std::fs::write(&file, &bomb).expect("write");
    let e = slaf_he::nn::WeightsFile::load(&file).expect_err("bomb");
    assert!(e.to_string().contains("bytes of JSON"), "{e}");
}
