//! Training behaviour on real MNIST: a short run learns, runs are
//! deterministic (also across thread counts), SLAF-R leaves every non-SLAF
//! tensor bit-identical, divergence is a typed error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_nn::data::Mnist;
use slaf_nn::optim::{OneCycle, OptimizerConfig, Schedule};
use slaf_nn::train::{Phase, train_phase};
use slaf_nn::{ActSpec, Arch, FrozenBatchNorm, Model, NnError, TrainConfig, Variant, train};

fn mnist() -> Mnist {
    Mnist::load_default().expect("vendored MNIST")
}

#[test]
fn short_cnn1_runs_learn() {
    let data = mnist();
    for variant in [Variant::Relu, Variant::Slaf] {
        let mut cfg = TrainConfig::new(Arch::Cnn1, variant);
        cfg.epochs = 3;
        cfg.limit_train = Some(12000);
        cfg.limit_test = Some(1000);
        let mut logs = Vec::new();
        let (_, report) = train(&data, &cfg, true, &mut |l| logs.push(l.clone())).unwrap();
        assert_eq!(logs.len(), 3);
        eprintln!("{variant:?}: {}", report.test.overall);
        assert!(
            report.test.overall > 0.90,
            "{variant:?}: test accuracy {}",
            report.test.overall
        );
        assert_eq!(report.test.total, 1000);
        assert_eq!(report.test.per_class.len(), 10);
        assert_eq!(report.max_abs_input.len(), 2);
        assert!(
            report
                .max_abs_input
                .iter()
                .all(|m| m.train > 0.0 && m.test > 0.0)
        );
    }
}

fn state_after(cfg: &TrainConfig, threads: usize) -> Vec<slaf_nn::NamedTensor> {
    let data = mnist();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| train(&data, cfg, true, &mut |_| {}))
        .unwrap()
        .0
        .state()
}

#[test]
fn same_seed_gives_identical_weights_for_any_thread_count() {
    let mut cfg = TrainConfig::new(Arch::Cnn2, Variant::Slaf);
    cfg.epochs = 1;
    cfg.limit_train = Some(700);
    cfg.limit_test = Some(100);
    let a = state_after(&cfg, 2);
    let b = state_after(&cfg, 2);
    let c = state_after(&cfg, 1);
    assert!(a == b, "two runs with the same seed differ");
    assert!(a == c, "1 and 2 threads differ");
    cfg.seed += 1;
    let d = state_after(&cfg, 2);
    assert!(a != d, "a different seed gave the same weights");
}

fn phase(epochs: usize, steps: usize) -> Phase<'static> {
    Phase {
        label: "test",
        epochs,
        optimizer: OptimizerConfig::Sgd { weight_decay: 1e-4 },
        schedule: Schedule::OneCycle(OneCycle::recipe(steps * epochs)),
        clip_grad: Some(1.0),
        batch_size: 64,
        seed: 5,
        quiet: true,
    }
}

#[test]
fn slaf_r_freezes_every_non_slaf_tensor() {
    let data = mnist();
    let train_s = data.train.head(640);
    let test_s = data.test.head(100);
    // None: as published (unfrozen); Some(mode): frozen with that BatchNorm mode.
    for freeze in [
        Some(FrozenBatchNorm::RunningStats),
        Some(FrozenBatchNorm::BatchStats),
        None,
    ] {
        let mut m = Model::new(Arch::Cnn2, &ActSpec::Relu, 3, false);
        train_phase(&mut m, &train_s, &test_s, &phase(1, 10), &mut |_| {}).unwrap();
        m.swap_relu_for_slaf(3);
        let before = m.state();
        if let Some(bn) = freeze {
            m.freeze_non_activation(bn);
        }
        train_phase(&mut m, &train_s, &test_s, &phase(1, 10), &mut |_| {}).unwrap();
        let after = m.state();
        let (mut changed_weights, mut changed_stats) = (0, 0);
        for (b, a) in before.iter().zip(&after) {
            let running = b.name.contains(".running_");
            if b.name.ends_with(".coeffs") {
                assert!(b.values != a.values, "{} did not train", b.name);
            } else if b.values != a.values {
                if running {
                    changed_stats += 1;
                } else {
                    changed_weights += 1;
                }
                match freeze {
                    Some(FrozenBatchNorm::RunningStats) => {
                        panic!("{} changed under SLAF-R freezing", b.name)
                    }
                    Some(FrozenBatchNorm::BatchStats) => assert!(
                        running,
                        "{} changed under SLAF-R freezing (batch statistics)",
                        b.name
                    ),
                    None => {}
                }
            }
        }
        match freeze {
            None => assert!(
                changed_weights > 0,
                "as-published mode must train the weights"
            ),
            // Both BatchNorms (2d after conv1, 1d after fc1) keep tracking.
            Some(FrozenBatchNorm::BatchStats) => assert_eq!(changed_stats, 4),
            Some(FrozenBatchNorm::RunningStats) => {}
        }
    }
}

#[test]
fn divergence_is_a_typed_error_naming_epoch_and_batch() {
    let data = mnist();
    let mut m = Model::new(Arch::Cnn1, &ActSpec::Square, 1, false);
    let p = Phase {
        schedule: Schedule::Constant {
            lr: 1e4,
            momentum: 0.9,
        },
        clip_grad: None,
        ..phase(1, 10)
    };
    let err = train_phase(
        &mut m,
        &data.train.head(640),
        &data.test.head(10),
        &p,
        &mut |_| {},
    )
    .unwrap_err();
    match &err {
        NnError::NonFiniteLoss { epoch, batch, .. } => {
            assert_eq!(*epoch, 1);
            assert!(*batch >= 1 && *batch <= 10);
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("epoch 1, batch"));
}
