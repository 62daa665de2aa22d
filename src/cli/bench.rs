//! `slaf-he bench ...`: benchmarks that print tables (median over
//! repetitions) and optionally one JSON object on the last line.

use clap::{Args, Subcommand};
use slaf_he::ckks::{
    CkksContext, CkksParameters, CkksParametersLiteral, Encoder, Encryptor, EvaluationKeys,
    Evaluator, KeyGenerator, KeySeed, NttWords, decrypt, precision_bits,
};
use std::time::Instant;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// CKKS primitives: key generation, encrypt/decrypt, add, multiply, rotate, rescale.
    Ckks(CkksBenchArgs),
}

/// Arguments of `slaf-he bench ckks`.
#[derive(Debug, Args)]
pub struct CkksBenchArgs {
    /// Fewer repetitions.
    #[arg(long)]
    pub quick: bool,
    /// Print one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Worker threads, at least 1 (default 1, to compare with single-threaded SEAL).
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub threads: usize,
    /// Ring degree of a custom set (with --coeff-mod-bit-sizes and --scale-bits).
    #[arg(long, requires_all = ["coeff_mod_bit_sizes", "scale_bits"])]
    pub poly_modulus_degree: Option<usize>,
    /// Chain bit sizes of a custom set, e.g. 40,26,26,40.
    #[arg(long, value_delimiter = ',')]
    pub coeff_mod_bit_sizes: Option<Vec<u32>>,
    /// log2 of the scale of a custom set.
    #[arg(long)]
    pub scale_bits: Option<u32>,
    /// Hybrid key switching of a custom set: how many of the last chain
    /// sizes are special primes (P is their product).
    #[arg(long, default_value_t = 1, requires = "coeff_mod_bit_sizes")]
    pub special_primes: usize,
    /// Key-switching digits of a custom set (default: one per ciphertext
    /// prime, as SEAL); each digit's modulus must fit P.
    #[arg(long, requires = "coeff_mod_bit_sizes")]
    pub dnum: Option<usize>,
    /// Allow a custom set above the HE-standard bound (loudly reported).
    #[arg(long)]
    pub insecure_params: bool,
    /// Word width of each prime's limbs (storage, NTT and products):
    /// `auto` (32-bit for primes below 2^32, 64-bit for the others), `64`
    /// (64-bit for every prime, the reference path), or `both` (each op
    /// under both, with the ratio, in one run).
    #[arg(long, value_enum, default_value_t = WordsArg::Auto)]
    pub ntt_words: WordsArg,
    /// Time a bootstrapping set instead of the primitives: key generation,
    /// seconds per bootstrap (median of 3, 1 with --quick) and its phases,
    /// levels left, precision (measured and as the simulator predicts it),
    /// key MiB and peak RSS, on uniform slots in [-1, 1]. `n16` takes
    /// minutes and about 8 GiB; `n12-toy` needs --insecure-params.
    #[arg(long, value_enum)]
    pub bootstrap: Option<crate::cli::bench_bootstrap::BootstrapArg>,
    /// With --bootstrap: levels left after a bootstrap instead of the set's
    /// (to compare at another library's depth); the chain grows by one
    /// prime of the scale's size per level and must stay within the
    /// 128-bit bound unless --insecure-params.
    #[arg(long, requires = "bootstrap")]
    pub user_levels: Option<usize>,
}

/// `--ntt-words`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WordsArg {
    /// 32-bit words where the prime allows.
    Auto,
    /// 64-bit words everywhere.
    #[value(name = "64")]
    Only64,
    /// Both, side by side.
    Both,
}

/// The batched engine's kernel: one linear combination of 64 ciphertexts
/// with real weights at the default scale (lazy reduction, no rescale),
/// the cost of one dense-layer output; (median µs, precision bits).
fn linear_combination_row(
    ev: &Evaluator,
    ct: &slaf_he::ckks::Ciphertext,
    v: &[f64],
    sk: &slaf_he::ckks::SecretKey,
    reps: usize,
) -> anyhow::Result<(f64, f64)> {
    let xs: Vec<slaf_he::ckks::Ciphertext> = (0..64).map(|_| ct.clone()).collect();
    let refs: Vec<&slaf_he::ckks::Ciphertext> = xs.iter().collect();
    let w: Vec<f64> = (0..64)
        .map(|i| ((i * 37) % 19) as f64 / 19.0 - 0.5)
        .collect();
    let scale = ev.context().params().default_scale();
    let mut out = ev.linear_combination(&refs, &w, scale)?;
    let us = median_us(reps, || {
        if let Ok(o) = ev.linear_combination(&refs, &w, scale) {
            out = o;
        }
    });
    let got = ev.encoder().decode(&decrypt(ev.context(), sk, &out));
    let sum: f64 = w.iter().sum();
    let want: Vec<f64> = v.iter().map(|x| x * sum).collect();
    Ok((us, precision_bits(&got, &want).0))
}

/// Run a bench subcommand.
pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Ckks(args) => ckks(args),
    }
}

struct Row {
    op: &'static str,
    words: &'static str,
    n: usize,
    levels: usize,
    threads: usize,
    median_us: f64,
    precision_bits: Option<f64>,
}

fn median_us(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn ckks(args: CkksBenchArgs) -> anyhow::Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.max(1))
        .build()?;
    if let Some(set) = args.bootstrap {
        return bootstrap(&pool, set, &args);
    }
    let sets: Vec<CkksParameters> = match (
        &args.poly_modulus_degree,
        &args.coeff_mod_bit_sizes,
        args.scale_bits,
    ) {
        (Some(n), Some(bits), Some(s)) => {
            if !n.is_power_of_two() {
                anyhow::bail!("--poly-modulus-degree must be a power of two, got {n}");
            }
            vec![CkksParameters::new(CkksParametersLiteral {
                log_n: n.trailing_zeros(),
                coeff_mod_bit_sizes: bits.clone(),
                scale_bits: s,
                allow_insecure: args.insecure_params,
                special_primes: args.special_primes,
                dnum: args.dnum,
            })?]
        }
        _ => vec![
            slaf_he::ckks::presets::cnn1_x2(),
            slaf_he::ckks::presets::slaf(),
        ],
    };
    let reps = if args.quick { 3 } else { 15 };
    let machine = slaf_he::machine::Machine::current();
    let load = slaf_he::machine::load_averages();
    println!("{}", slaf_he::machine::timing_caption(args.threads));
    let mut rows = Vec::new();
    for params in sets {
        if params.is_insecure() {
            println!(
                "WARNING: benchmarking INSECURE parameters: {}",
                params.describe()
            );
        }
        println!("{}", params.describe());
        let words: &[NttWords] = match args.ntt_words {
            WordsArg::Auto => &[NttWords::Auto],
            WordsArg::Only64 => &[NttWords::Only64],
            WordsArg::Both => &[NttWords::Only64, NttWords::Auto],
        };
        for &w in words {
            let ctx = CkksContext::with_ntt_words(params.clone(), w)?;
            println!(
                "   word width per prime (q0..qL, P) with --ntt-words {}: {}",
                words_name(w),
                ctx.ntt_word_bits()
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            let r = pool.install(|| bench_set(&ctx, words_name(w), reps, args.threads))?;
            rows.extend(r);
        }
    }
    print_rows(&rows, args.ntt_words == WordsArg::Both);
    if args.json {
        let ops: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "op": r.op, "n": r.n, "levels": r.levels, "threads": r.threads,
                    "ntt_words": r.words,
                    "median_us": r.median_us, "precision_bits": r.precision_bits,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "machine": machine, "load_average": load, "threads": args.threads, "ops": ops,
            })
        );
    }
    Ok(())
}

/// `bench ckks --bootstrap SET`: the table, and the JSON line with `--json`.
fn bootstrap(
    pool: &rayon::ThreadPool,
    set: crate::cli::bench_bootstrap::BootstrapArg,
    args: &CkksBenchArgs,
) -> anyhow::Result<()> {
    use crate::cli::bench_bootstrap as bb;
    println!("{}", slaf_he::machine::timing_caption(args.threads));
    let reps = if args.quick { 1 } else { 3 };
    let row = pool.install(|| {
        bb::run(
            set,
            args.user_levels,
            args.insecure_params,
            reps,
            args.threads,
        )
    })?;
    if !row_secure(&row) {
        println!("WARNING: benchmarking an INSECURE test set");
    }
    print!("{}", bb::markdown(std::slice::from_ref(&row)));
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "machine": slaf_he::machine::Machine::current(),
                "load_average": slaf_he::machine::load_averages(),
                "threads": args.threads,
                "bootstrap": row.json(),
            })
        );
    }
    Ok(())
}

fn row_secure(row: &crate::cli::bench_bootstrap::BootstrapRow) -> bool {
    row.secure()
}

fn words_name(w: NttWords) -> &'static str {
    match w {
        NttWords::Only64 => "64",
        _ => "auto",
    }
}

/// The table; with both word widths, one line per op with the 64-bit time,
/// the auto time and their ratio.
fn print_rows(rows: &[Row], both: bool) {
    let prec = |r: &Row| r.precision_bits.map_or("—".into(), |b| format!("{b:.1}"));
    if both {
        println!(
            "{:<22} {:>6} {:>7} {:>8} {:>12} {:>12} {:>9} {:>10} {:>10}",
            "op",
            "N",
            "levels",
            "threads",
            "64-bit us",
            "auto us",
            "auto/64",
            "prec 64",
            "prec auto"
        );
        for a in rows.iter().filter(|r| r.words == "auto") {
            let Some(w) = rows
                .iter()
                .find(|r| r.words == "64" && r.op == a.op && r.n == a.n && r.levels == a.levels)
            else {
                continue;
            };
            println!(
                "{:<22} {:>6} {:>7} {:>8} {:>12.1} {:>12.1} {:>9.2} {:>10} {:>10}",
                a.op,
                a.n,
                a.levels,
                a.threads,
                w.median_us,
                a.median_us,
                a.median_us / w.median_us,
                prec(w),
                prec(a)
            );
        }
        return;
    }
    println!(
        "{:<22} {:>6} {:>7} {:>8} {:>14} {:>10}",
        "op", "N", "levels", "threads", "median_us", "prec_bits"
    );
    for r in rows {
        println!(
            "{:<22} {:>6} {:>7} {:>8} {:>14.1} {:>10}",
            r.op,
            r.n,
            r.levels,
            r.threads,
            r.median_us,
            prec(r)
        );
    }
}

fn bench_set(
    ctx: &std::sync::Arc<CkksContext>,
    words: &'static str,
    reps: usize,
    threads: usize,
) -> anyhow::Result<Vec<Row>> {
    let params = ctx.params();
    let n = params.n();
    let levels = params.max_level() + 1;
    let top = params.max_level();
    let scale = params.default_scale();
    let ctx = std::sync::Arc::clone(ctx);
    let mut rows = Vec::new();
    let mut row = |op, us, prec| {
        rows.push(Row {
            op,
            words,
            n,
            levels,
            threads,
            median_us: us,
            precision_bits: prec,
        })
    };
    // One limb of q_1 (a 26-bit prime in the presets): the NTT and the
    // pointwise product every op above is made of.
    {
        let md = &ctx.q_moduli(top)[1.min(top)];
        let values: Vec<u64> = (0..n as u64).map(|i| i * 2_654_435_761).collect();
        let mut a = md.limb(&values);
        let b = a.clone();
        row(
            "ntt_fwd_limb",
            median_us(reps * 20, || md.ntt_fwd(&mut a)),
            None,
        );
        row(
            "ntt_inv_limb",
            median_us(reps * 20, || md.ntt_inv(&mut a)),
            None,
        );
        let mut acc = md.limb(&vec![0u64; n]);
        row(
            "pointwise_mul_acc_limb",
            median_us(reps * 20, || md.pointwise_mul_acc(&mut acc, &a, &b)),
            None,
        );
    }
    let mut seed = 1u64;
    let mut next = || {
        seed += 1;
        KeySeed::for_tests(seed)
    };
    let kg_reps = reps.min(5);
    row(
        "keygen_secret_public",
        median_us(kg_reps, || {
            let mut kg = KeyGenerator::from_seed(&ctx, &next());
            std::hint::black_box(kg.public_key());
        }),
        None,
    );
    let mut kg = KeyGenerator::from_seed(&ctx, &KeySeed::for_tests(99));
    let pk = kg.public_key();
    let mut rk = None;
    row(
        "keygen_relin",
        median_us(kg_reps, || rk = Some(kg.relinearization_key())),
        None,
    );
    let rk = rk.ok_or_else(|| anyhow::anyhow!("no relinearisation key"))?;
    let mut gk = None;
    row(
        "keygen_galois",
        median_us(kg_reps.min(3), || gk = Some(kg.galois_keys(&[1], false))),
        None,
    );
    let gk = gk.ok_or_else(|| anyhow::anyhow!("no Galois key"))?;
    let enc = Encoder::new(&ctx);
    let slots = n / 2;
    let v: Vec<f64> = (0..slots)
        .map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.5)
        .collect();
    let pt = enc.encode(&v, top, scale)?;
    let mut encryptor = Encryptor::new(&ctx, pk, KeySeed::for_tests(5).rng());
    let mut ct = encryptor.encrypt(&pt);
    row(
        "encrypt",
        median_us(reps, || ct = encryptor.encrypt(&pt)),
        None,
    );
    let sk = kg.secret_key();
    let mut out = Vec::new();
    row(
        "decrypt",
        median_us(reps, || out = enc.decode(&decrypt(&ctx, sk, &ct))),
        Some(precision_bits(&out, &v).0),
    );
    // One evaluator owns the keys: every op below uses the same ones.
    let ev = Evaluator::with_keys(&ctx, EvaluationKeys::new(Some(rk), Some(gk)));
    let rk = ev.relin_key("bench")?;
    let gk = ev.galois_keys("bench")?;
    let mut r = ct.clone();
    row(
        "add",
        median_us(reps, || r = ev.add(&ct, &ct).unwrap_or_else(|_| ct.clone())),
        None,
    );
    row(
        "mul_plain",
        median_us(reps, || {
            r = ev.mul_plain(&ct, &pt).unwrap_or_else(|_| ct.clone())
        }),
        None,
    );
    let mut m = ct.clone();
    row(
        "mul_relin_rescale",
        median_us(reps, || {
            m = ev
                .mul_relin_rescale(&ct, &ct, rk)
                .unwrap_or_else(|_| ct.clone())
        }),
        {
            let got = enc.decode(&decrypt(&ctx, sk, &m));
            let want: Vec<f64> = v.iter().map(|x| x * x).collect();
            Some(precision_bits(&got, &want).0)
        },
    );
    let mut rot = ct.clone();
    row(
        "rotate",
        median_us(reps, || {
            rot = ev.rotate(&ct, 1, gk).unwrap_or_else(|_| ct.clone())
        }),
        {
            let got = enc.decode(&decrypt(&ctx, sk, &rot));
            let want: Vec<f64> = (0..slots).map(|i| v[(i + 1) % slots]).collect();
            Some(precision_bits(&got, &want).0)
        },
    );
    // Relinearisation alone: one key switch (decompose, inner product with
    // the key, mod-down by P), the part hybrid key switching changes.
    let three = ev.mul(&ct, &ct)?;
    let mut prod = ct.clone();
    row(
        "relinearize",
        median_us(reps, || {
            prod = ev.relinearize(&three, rk).unwrap_or_else(|_| ct.clone())
        }),
        None,
    );
    row(
        "rescale",
        median_us(reps, || {
            r = ev.rescale(&prod).unwrap_or_else(|_| prod.clone())
        }),
        None,
    );
    let (us, prec) = linear_combination_row(&ev, &ct, &v, sk, reps)?;
    row("linear_combination_64", us, Some(prec));
    // Degree-9 polynomial (the P2 least-squares sign approximation's shape:
    // odd, Chebyshev basis) with the depth-optimal evaluator: 4 levels.
    if top >= 4 {
        use slaf_he::ckks::circuits::{Polynomial, PolynomialEvaluator};
        let p = Polynomial::chebyshev(
            vec![
                0.0, 1.2797, 0.0, -0.4444, 0.0, 0.2901, 0.0, -0.2365, 0.0, 0.1111,
            ],
            -1.0,
            1.0,
        );
        let pe = PolynomialEvaluator::new(&ev);
        let mut y = ct.clone();
        row(
            "poly_eval_deg9",
            median_us(reps.min(10), || {
                y = pe.evaluate(&ct, &p, None).unwrap_or_else(|_| ct.clone())
            }),
            {
                let got = enc.decode(&decrypt(&ctx, sk, &y));
                let want: Vec<f64> = v.iter().map(|&x| p.eval(x)).collect();
                Some(precision_bits(&got, &want).0)
            },
        );
    }
    Ok(rows)
}
