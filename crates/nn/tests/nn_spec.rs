//! Model specs (`slaf_nn::spec`): the presets are specs whose models
//! are bit-identical to the hand-built ones, TOML and builder agree, and
//! every malformed spec is a typed error naming the layer and the numbers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_nn::{ActSpec, Arch, Layer, Model, ModelSpec, NnError, Shape};

/// SHA-256 of a model's state (names, shapes and f32 bits of every tensor).
fn state_hash(m: &Model) -> String {
    let mut bytes = Vec::new();
    for t in m.state() {
        bytes.extend(t.name.as_bytes());
        for d in &t.shape {
            bytes.extend((*d as u64).to_le_bytes());
        }
        for v in &t.values {
            bytes.extend(v.to_bits().to_le_bytes());
        }
    }
    slaf_nn::data::sha256_hex(&bytes)
}

/// Hashes of `Model::new(arch, act, 73, false)` computed with the
/// hand-written constructors of commit f193c30 (before presets became
/// specs), for (relu, x2, slaf degree 3 from zeros): a spec-built preset
/// must initialise exactly as before, or retraining would not reproduce
/// the committed weights.
const GOLDEN: &[(&str, &str, &str)] = &[
    (
        "cnn1",
        "relu",
        "55eb472399f383ece58bca1d4af1b1cf463507d6edfe29ad692e609771e7b89e",
    ),
    (
        "cnn1",
        "x2",
        "55eb472399f383ece58bca1d4af1b1cf463507d6edfe29ad692e609771e7b89e",
    ),
    (
        "cnn1",
        "slaf",
        "ca9cd7a17a6998b377ae4554264c60727a1a02d671fd9729ecca146bf3804c3f",
    ),
    (
        "cnn2",
        "relu",
        "9b36ac3a60121db997cf05d69dd39dbd691245715d502ca6786fe62a9e32061a",
    ),
    (
        "cnn2",
        "x2",
        "9b36ac3a60121db997cf05d69dd39dbd691245715d502ca6786fe62a9e32061a",
    ),
    (
        "cnn2",
        "slaf",
        "5b1ee351c14980b1df2d587200e22f46f71a94e5d69f08b591e4f9abda2bf708",
    ),
    (
        "cnn2-nopad",
        "relu",
        "69ec63b003689823bb0650f2db413d7c8d5af172c379d6148c21781f9f7b9733",
    ),
    (
        "cnn2-nopad",
        "x2",
        "69ec63b003689823bb0650f2db413d7c8d5af172c379d6148c21781f9f7b9733",
    ),
    (
        "cnn2-nopad",
        "slaf",
        "feae9bf663d1d3eb7067c732b29eb281b0b9c474c018119f73fe0b01cc5a6b58",
    ),
    (
        "cryptonets",
        "relu",
        "4f376de918c997546d36378754cb6e9d0d29766eb8526868b8d8ecf31ca735cd",
    ),
    (
        "cryptonets",
        "x2",
        "4f376de918c997546d36378754cb6e9d0d29766eb8526868b8d8ecf31ca735cd",
    ),
    (
        "cryptonets",
        "slaf",
        "9d42fad7ba80056a3dfd9ee563bb02698b1ea522bd1afc92e2fc0dd01e0eff3f",
    ),
];

#[test]
fn presets_initialise_exactly_as_the_hand_built_networks() {
    let acts = [
        ("relu", ActSpec::Relu),
        ("x2", ActSpec::Square),
        (
            "slaf",
            ActSpec::Slaf {
                degree: 3,
                init: None,
            },
        ),
    ];
    let mut got = Vec::new();
    for arch in Arch::ALL {
        for (an, act) in &acts {
            let m = Model::new(arch, act, 73, false);
            got.push(format!(
                "(\"{}\", \"{an}\", \"{}\"),",
                arch.name(),
                state_hash(&m)
            ));
            if let Some((_, _, h)) = GOLDEN.iter().find(|g| g.0 == arch.name() && g.1 == *an) {
                assert_eq!(*h, state_hash(&m), "{} {an}", arch.name());
            }
        }
    }
    assert_eq!(GOLDEN.len(), 12, "golden hashes:\n{}", got.join("\n"));
}

#[test]
fn presets_parse_and_have_the_papers_shapes() {
    for (arch, flat, hidden) in [
        (Arch::Cnn1, 256, 64),
        (Arch::Cnn2, 200, 100),
        (Arch::Cnn2Nopad, 50, 100),
        (Arch::Cryptonets, 1250, 100),
    ] {
        let spec = arch.spec();
        assert_eq!(spec.name, arch.name());
        let shapes = spec.shapes().expect("preset checks");
        let f = shapes
            .iter()
            .find(|l| l.name == "flatten")
            .expect("flatten");
        assert_eq!(f.output, Shape::Flat(flat), "{}", arch.name());
        let fc1 = shapes.iter().find(|l| l.name == "fc1").expect("fc1");
        assert_eq!(fc1.output, Shape::Flat(hidden));
        assert_eq!(spec.act_count(), 2);
        let m = Model::new(arch, &ActSpec::Square, 1, false);
        assert_eq!(m.arch(), Some(arch));
        // Round trip through TOML.
        assert_eq!(
            ModelSpec::from_toml(&spec.to_toml()).expect("round trip"),
            spec
        );
    }
    let cnn3 = ModelSpec::resolve(concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/models/cnn3.toml"
    ))
    .expect("cnn3");
    assert!(cnn3.act_count() >= 3);
    assert_eq!(
        cnn3.layers.iter().filter(|l| l.kind() == "conv2d").count(),
        2
    );
}

#[test]
fn the_builder_and_the_toml_give_the_same_spec() {
    let built = ModelSpec::new("cnn3", [1, 28, 28])
        .conv2d(8, 5, 2, 1)
        .act()
        .avgpool(3, 1, 1)
        .conv2d(16, 3, 2, 0)
        .act()
        .flatten()
        .dense(64)
        .act()
        .dense(10);
    let file = ModelSpec::resolve(concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/models/cnn3.toml"
    ))
    .expect("cnn3");
    assert_eq!(built, file);
    let shapes = built.shapes().expect("shapes");
    let names: Vec<&str> = shapes.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv1", "act1", "pool1", "conv2", "act2", "flatten", "fc1", "act3", "fc2"
        ]
    );
    assert_eq!(shapes[3].output, Shape::Spatial { c: 16, h: 6, w: 6 });
    // A spec model trains like a preset: its forward pass gives 10 logits.
    let mut m = Model::from_spec(&built, &ActSpec::Square, 5, false).expect("build");
    let x = ndarray::Array2::<f32>::from_elem((2, 784), 0.5);
    let y = m.forward(&x, slaf_nn::Mode::Eval);
    assert_eq!(y.dim(), (2, 10));
    assert!(y.iter().all(|v| v.is_finite()));
    assert_eq!(m.arch(), None);
}

#[test]
fn per_layer_activations_override_the_variant() {
    let text = r#"
name = "mixed"
input = [1, 8, 8]
[[layer]]
type = "flatten"
[[layer]]
type = "dense"
out = 16
[[layer]]
type = "act"
act = "x2"
[[layer]]
type = "dense"
out = 16
[[layer]]
type = "act"
act = "slaf"
degree = 2
[[layer]]
type = "dense"
out = 10
"#;
    let spec = ModelSpec::from_toml(text).expect("parse");
    let m = Model::from_spec(&spec, &ActSpec::Relu, 1, false).expect("build");
    let kinds: Vec<&str> = m
        .layers
        .iter()
        .filter_map(|(_, l)| match l {
            Layer::Act(a) => Some(a.act.name()),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["x2", "slaf"]);
}

fn spec_error(text: &str) -> (usize, &'static str, String) {
    match ModelSpec::from_toml(text) {
        Err(NnError::Spec {
            layer,
            kind,
            detail,
        }) => (layer, kind, detail),
        other => panic!("expected a layer error, got {other:?}"),
    }
}

fn parse_error(text: &str) -> String {
    match ModelSpec::from_toml(text) {
        Err(e @ NnError::SpecParse { .. }) => e.to_string(),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

const HEAD: &str = "name = \"t\"\ninput = [1, 28, 28]\n";

#[test]
fn each_malformed_spec_is_a_typed_error_naming_the_layer() {
    // Kernel larger than its (padded) input.
    let (l, k, d) = spec_error(&format!(
        "{HEAD}[[layer]]\ntype = \"conv2d\"\nout_channels = 2\nkernel = 31\n[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"dense\"\nout = 10\n"
    ));
    assert_eq!((l, k), (0, "conv2d"));
    assert!(
        d.contains("kernel 31 is larger than the padded input height 28"),
        "{d}"
    );
    // Zero channels.
    let (l, _, d) = spec_error(&format!(
        "{HEAD}[[layer]]\ntype = \"conv2d\"\nout_channels = 0\nkernel = 3\n"
    ));
    assert_eq!(l, 0);
    assert!(d.contains("out_channels is 0"), "{d}");
    // Dense after a spatial layer without flatten.
    let (l, k, d) = spec_error(&format!(
        "{HEAD}[[layer]]\ntype = \"conv2d\"\nout_channels = 2\nkernel = 3\n[[layer]]\ntype = \"dense\"\nout = 10\n"
    ));
    assert_eq!((l, k), (1, "dense"));
    assert!(
        d.contains("got 2x26x26") && d.contains("add a flatten"),
        "{d}"
    );
    // Conv after flatten.
    let (l, k, d) = spec_error(&format!(
        "{HEAD}[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"conv2d\"\nout_channels = 2\nkernel = 3\n"
    ));
    assert_eq!((l, k), (1, "conv2d"));
    assert!(d.contains("got 784 flat features"), "{d}");
    // Last layer not 10 outputs.
    let (l, k, d) = spec_error(&format!(
        "{HEAD}[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"dense\"\nout = 12\n"
    ));
    assert_eq!((l, k), (1, "dense"));
    assert!(d.contains("ends with 12 outputs"), "{d}");
    // Duplicate names.
    let (l, _, d) = spec_error(&format!(
        "{HEAD}[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"dense\"\nout = 10\nname = \"flatten\"\n"
    ));
    assert_eq!(l, 1);
    assert!(d.contains("already used by layer 0 (flatten)"), "{d}");
    // Pool padding above half its kernel; zero stride.
    let (_, k, d) = spec_error(&format!(
        "{HEAD}[[layer]]\ntype = \"avgpool\"\nkernel = 2\npadding = 2\n"
    ));
    assert_eq!(k, "avgpool");
    assert!(
        d.contains("padding 2 is more than half the kernel 2"),
        "{d}"
    );
    let (_, _, d) = spec_error(&format!(
        "{HEAD}[[layer]]\ntype = \"conv2d\"\nout_channels = 1\nkernel = 3\nstride = 0\n"
    ));
    assert!(d.contains("stride 0 must be at least 1"), "{d}");
    // Degree 0, and a degree on a non-SLAF activation.
    let (_, k, d) = spec_error(&format!("{HEAD}[[layer]]\ntype = \"act\"\ndegree = 0\n"));
    assert_eq!(k, "act");
    assert!(d.contains("degree 0"), "{d}");
    let (_, _, d) = spec_error(&format!(
        "{HEAD}[[layer]]\ntype = \"act\"\nact = \"x2\"\ndegree = 3\n"
    ));
    assert!(d.contains("degree applies only to act = \"slaf\""), "{d}");
    // Too many features.
    let (_, _, d) = spec_error(&format!(
        "{HEAD}[[layer]]\ntype = \"conv2d\"\nout_channels = 4096\nkernel = 1\n"
    ));
    assert!(d.contains("3211264 values"), "{d}");
}

#[test]
fn unreadable_specs_are_parse_errors() {
    let e = parse_error(&format!(
        "{HEAD}[[layer]]\ntype = \"maxpool\"\nkernel = 2\n"
    ));
    assert!(e.contains("maxpool"), "{e}");
    let e = parse_error(&format!(
        "{HEAD}[[layer]]\ntype = \"dense\"\nout = 10\nunits = 3\n"
    ));
    assert!(e.contains("units"), "{e}");
    let e = parse_error("name = \"t\"\ninput = [0, 28, 28]\n[[layer]]\ntype = \"flatten\"\n");
    assert!(e.contains("zero dimension"), "{e}");
    let e = parse_error("name = \"t\"\ninput = [1, 28, 28]\nlayer = []\n");
    assert!(e.contains("no layers"), "{e}");
    let e = parse_error(&format!(
        "{HEAD}[[layer]]\ntype = \"act\"\nact = \"tanh\"\n"
    ));
    assert!(e.contains("tanh"), "{e}");
    match ModelSpec::resolve("no-such-model") {
        Err(NnError::UnknownName { name, .. }) => assert_eq!(name, "no-such-model"),
        other => panic!("{other:?}"),
    }
}

mod random_specs {
    use proptest::prelude::*;
    use slaf_nn::{ActSpec, InferenceModel, Mode, Model, ModelSpec};

    /// A small random spec: conv → act, then optionally pool / bn / a second
    /// conv, an act, flatten, an optional hidden dense with act, dense 10.
    fn spec_strategy() -> impl Strategy<Value = ModelSpec> {
        (
            (1usize..4, 2usize..4, 1usize..3, 0usize..2),
            any::<bool>(),
            any::<bool>(),
            prop::option::of((1usize..4, 1usize..3)),
            prop::option::of(4usize..12),
        )
            .prop_map(|((c1, k1, s1, p1), bn, pool, conv2, hidden)| {
                let mut s = ModelSpec::new("random", [1, 12, 12]).conv2d(c1, k1, s1, p1);
                if bn {
                    s = s.batchnorm();
                }
                s = s.act();
                if pool {
                    s = s.avgpool(2, 1, 1);
                }
                if let Some((c2, k2)) = conv2 {
                    s = s.conv2d(c2, k2, 1, 0).act();
                }
                s = s.flatten();
                if let Some(h) = hidden {
                    s = s.dense(h);
                    if bn {
                        s = s.batchnorm();
                    }
                    s = s.act();
                }
                s.dense(10)
            })
            .prop_filter("shapes fit", |s| s.shapes().is_ok())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The inference form (BatchNorm folded, runs collapsed in f64)
        /// computes what the training form computes in evaluation mode.
        #[test]
        fn inference_form_equals_the_training_form(spec in spec_strategy(), seed in 0u64..1000) {
            let act = ActSpec::Slaf { degree: 2, init: Some(vec![0.1, 0.5, 0.2]) };
            let mut m = Model::from_spec(&spec, &act, seed, false).expect("build");
            // Non-trivial BatchNorm statistics: a few training-mode passes.
            let x = ndarray::Array2::<f32>::from_shape_fn((8, 144), |(i, j)| {
                ((i * 31 + j * 17 + seed as usize) % 97) as f32 / 97.0
            });
            for _ in 0..3 {
                m.forward(&x, Mode::Train);
            }
            let inf = InferenceModel::from_model(&m).expect("inference form");
            inf.validate().expect("valid");
            let y = m.forward(&x, Mode::Eval);
            for i in 0..8 {
                let img: Vec<f64> = x.row(i).iter().map(|&v| f64::from(v)).collect();
                let got = inf.forward(&img).expect("forward");
                for (k, g) in got.iter().enumerate() {
                    let want = f64::from(y[[i, k]]);
                    prop_assert!((g - want).abs() <= 1e-3 * (1.0 + want.abs()),
                        "{}: sample {i} logit {k}: {g} vs {want}", spec.to_toml());
                }
            }
        }
    }
}

/// Regression: a convolution whose patch has one entry (1 input channel,
/// kernel 1) gave all-zero outputs in the training forward pass, because
/// the matrix product came back in column-major order and the row-major
/// fast path silently skipped it (found by the random-spec property test).
#[test]
fn a_one_by_one_convolution_computes_its_outputs() {
    use slaf_nn::{Conv2d, ConvGeom, Mode};
    let geom = ConvGeom {
        in_c: 1,
        in_h: 3,
        in_w: 3,
        out_c: 2,
        k: 1,
        stride: 1,
        pad: 0,
    };
    let w = ndarray::Array2::from_shape_vec((2, 1), vec![2.0f32, -1.0]).expect("w");
    let b = ndarray::Array1::from_vec(vec![0.5f32, 0.25]);
    let mut conv = Conv2d::new(geom, w, b);
    let x = ndarray::Array2::from_shape_fn((2, 9), |(i, j)| (i * 9 + j) as f32);
    let y = conv.forward(&x, Mode::Eval);
    for i in 0..2 {
        for p in 0..9 {
            let v = x[[i, p]];
            assert_eq!(y[[i, p]], 2.0 * v + 0.5, "sample {i} pixel {p}");
            assert_eq!(y[[i, 9 + p]], -v + 0.25, "sample {i} pixel {p}");
        }
    }
}
