//! Trained-model cache: a second request is served from the cache with the
//! identical weights, `retrain` forces training, a different configuration
//! gets its own entry and a corrupt entry is retrained rather than trusted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_nn::cache::{Provenance, cache_key, insert, load_dir, seed_from_dir, train_cached};
use slaf_nn::data::Mnist;
use slaf_nn::{Arch, TrainConfig, Variant};

#[test]
fn cache_reuses_retrains_and_recovers() {
    let data = Mnist::load_default().expect("mnist");
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = TrainConfig::new(Arch::Cnn1, Variant::Relu);
    cfg.epochs = 1;
    cfg.limit_train = Some(300);
    cfg.limit_test = Some(100);
    let mut n_epochs = 0;
    let (w1, p1) =
        train_cached(&data, &cfg, dir.path(), false, true, &mut |_| n_epochs += 1).expect("train");
    assert_eq!(p1, Provenance::Trained);
    assert_eq!(n_epochs, 1);
    let (w2, p2) =
        train_cached(&data, &cfg, dir.path(), false, true, &mut |_| n_epochs += 1).expect("cached");
    assert_eq!(p2, Provenance::Cached);
    assert_eq!(n_epochs, 1, "no training on a cache hit");
    assert_eq!(w1.inference, w2.inference);

    let (_, p3) = train_cached(&data, &cfg, dir.path(), true, true, &mut |_| ()).expect("retrain");
    assert_eq!(p3, Provenance::Trained);

    let mut other = cfg.clone();
    other.seed = 74;
    assert_ne!(
        cache_key(&cfg, &data).expect("key"),
        cache_key(&other, &data).expect("key")
    );

    let entry = dir
        .path()
        .join(format!("{}.json", cache_key(&cfg, &data).expect("key")));
    std::fs::write(&entry, "{ not json").expect("corrupt");
    let (_, p4) = train_cached(&data, &cfg, dir.path(), false, true, &mut |_| ()).expect("recover");
    assert_eq!(p4, Provenance::Trained);
    assert!(slaf_nn::WeightsFile::load(&entry).is_ok());
}

#[test]
fn committed_weights_seed_the_cache() {
    let data = Mnist::load_default().expect("mnist");
    let cache = tempfile::tempdir().expect("tmp");
    let committed = tempfile::tempdir().expect("tmp");
    let mut cfg = TrainConfig::new(Arch::Cnn1, Variant::X2);
    cfg.epochs = 1;
    cfg.limit_train = Some(200);
    cfg.limit_test = Some(50);
    let (w, _) = train_cached(&data, &cfg, cache.path(), false, true, &mut |_| ()).expect("train");
    w.save(&committed.path().join("cnn1-x2.json.gz"))
        .expect("save");
    std::fs::write(committed.path().join("broken.json"), "{").expect("write");
    let found = load_dir(committed.path());
    assert_eq!(found.len(), 1, "the broken file is skipped");
    assert_eq!(found[0].1.config, cfg);
    // A fresh cache seeded with the committed file serves it without training.
    let fresh = tempfile::tempdir().expect("tmp");
    let entry = insert(&data, &found[0].1, fresh.path()).expect("insert");
    assert!(entry.is_file());
    let mut epochs = 0;
    let (w2, p) =
        train_cached(&data, &cfg, fresh.path(), false, true, &mut |_| epochs += 1).expect("hit");
    assert_eq!((p, epochs), (Provenance::Cached, 0));
    assert_eq!(w2.inference, w.inference);
    assert!(load_dir(&committed.path().join("missing")).is_empty());

    // seed_from_dir: only configurations without an entry, only exact matches.
    let seeded = tempfile::tempdir().expect("tmp");
    let mut unmatched = cfg.clone();
    unmatched.epochs = 2;
    let used = seed_from_dir(
        &data,
        &[cfg.clone(), unmatched.clone()],
        committed.path(),
        seeded.path(),
    )
    .expect("seed");
    assert_eq!(used, vec![committed.path().join("cnn1-x2.json.gz")]);
    let key = |c: &TrainConfig| {
        seeded
            .path()
            .join(format!("{}.json", cache_key(c, &data).expect("key")))
    };
    assert!(key(&cfg).is_file());
    assert!(!key(&unmatched).exists());
    // A second call finds the entry and uses nothing.
    let again =
        seed_from_dir(&data, &[cfg.clone()], committed.path(), seeded.path()).expect("seed");
    assert!(again.is_empty());
}
