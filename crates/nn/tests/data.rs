//! MNIST loading: the real files round-trip, corrupted, truncated and
//! mislabelled copies give their typed errors, and the batch sampler is a
//! deterministic per-epoch permutation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use flate2::Compression;
use flate2::write::GzEncoder;
use slaf_nn::data::{
    self, BatchSampler, DataError, Mnist, TEST_IMAGES, TEST_LABELS, read_idx_images,
    read_idx_labels,
};
use std::io::Write;
use std::path::Path;

fn copy_data() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in data::FILES.iter().chain([&data::CHECKSUMS]) {
        std::fs::copy(data::default_data_dir().join(name), dir.path().join(name)).expect("copy");
    }
    dir
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

/// Rewrite SHA256SUMS in `dir` so that it matches the files as they are now.
fn reseal(dir: &Path) {
    let lines: String = data::FILES
        .iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(n)).expect("read");
            format!("{}  {n}\n", data::sha256_hex(&bytes))
        })
        .collect();
    std::fs::write(dir.join(data::CHECKSUMS), lines).expect("write sums");
}

#[test]
fn real_files_load_with_expected_shapes_and_values() {
    let m = Mnist::load_default().expect("vendored MNIST loads");
    assert_eq!(m.train.len(), 60_000);
    assert_eq!(m.test.len(), 10_000);
    assert_eq!((m.train.rows, m.train.cols), (28, 28));
    assert_eq!(m.train.images.dim(), (60_000, 784));
    assert_eq!(m.test.images.dim(), (10_000, 784));
    // Pixels are in [0, 1] and both extremes occur.
    let (lo, hi) = m
        .test
        .images
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert_eq!((lo, hi), (0.0, 1.0));
    // Well-known facts of MNIST: the first training label is 5, the first test label 7,
    // and the per-class test counts.
    assert_eq!(m.train.labels[0], 5);
    assert_eq!(m.test.labels[0], 7);
    assert_eq!(
        m.test.class_counts(),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert_eq!(m.train.class_counts().iter().sum::<usize>(), 60_000);
    assert_eq!(m.checksums.len(), 4);
    assert_eq!(m.fingerprint().len(), 64);
    // Pixel (row 7, col 7) of test image 0 divided by 255 exactly.
    let raw = m.test.image(0).expect("image 0");
    assert!(
        raw.iter()
            .all(|&v| (v * 255.0 - (v * 255.0).round()).abs() < 1e-4)
    );
    assert!(m.test.image(10_000).is_none());
}

#[test]
fn one_flipped_byte_is_a_checksum_mismatch_naming_the_file() {
    let dir = copy_data();
    let path = dir.path().join(TEST_LABELS);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[100] ^= 0x01;
    std::fs::write(&path, bytes).expect("write");
    let err = Mnist::load(dir.path()).expect_err("corrupt copy refused");
    match &err {
        DataError::ChecksumMismatch {
            file,
            expected,
            actual,
        } => {
            assert!(file.ends_with(TEST_LABELS));
            assert_ne!(expected, actual);
            assert_eq!(actual.len(), 64);
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("checksum mismatch (sha256)"), "{msg}");
    assert!(msg.contains(TEST_LABELS), "{msg}");
}

#[test]
fn missing_file_and_missing_checksum_are_typed() {
    let dir = copy_data();
    std::fs::remove_file(dir.path().join(TEST_IMAGES)).expect("rm");
    assert!(matches!(
        Mnist::load(dir.path()),
        Err(DataError::MissingFile { path }) if path.ends_with(TEST_IMAGES)
    ));
    let dir = copy_data();
    std::fs::write(dir.path().join(data::CHECKSUMS), "").expect("write");
    assert!(matches!(
        Mnist::load(dir.path()),
        Err(DataError::MissingChecksum { .. })
    ));
    std::fs::write(dir.path().join(data::CHECKSUMS), "nothex  file\n").expect("write");
    assert!(matches!(
        Mnist::load(dir.path()),
        Err(DataError::BadChecksumLine { line: 1, .. })
    ));
}

#[test]
fn truncated_file_is_a_truncation_error() {
    let dir = copy_data();
    let path = dir.path().join(TEST_LABELS);
    // A valid gzip whose IDX payload is shorter than its header says.
    let raw = read_idx_labels(&path).expect("labels");
    let mut idx = vec![0, 0, 8, 1];
    idx.extend_from_slice(&(raw.len() as u32).to_be_bytes());
    idx.extend_from_slice(&raw[..raw.len() - 10]);
    std::fs::write(&path, gzip(&idx)).expect("write");
    reseal(dir.path());
    match Mnist::load(dir.path()) {
        Err(DataError::Truncated {
            file,
            expected,
            actual,
        }) => {
            assert!(file.ends_with(TEST_LABELS));
            assert_eq!(expected, 8 + raw.len());
            assert_eq!(actual, 8 + raw.len() - 10);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    // A truncated gzip stream itself is a gzip error, not a panic.
    let full = std::fs::read(data::default_data_dir().join(TEST_LABELS)).expect("read");
    std::fs::write(&path, &full[..full.len() / 2]).expect("write");
    assert!(matches!(
        read_idx_labels(&path),
        Err(DataError::Gzip { .. })
    ));
    // A header cut short.
    std::fs::write(&path, gzip(&[0, 0, 8])).expect("write");
    assert!(matches!(
        read_idx_labels(&path),
        Err(DataError::Truncated { .. })
    ));
}

#[test]
fn wrong_magic_number_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.gz");
    // A label file read as images.
    let labels = std::fs::read(data::default_data_dir().join(TEST_LABELS)).expect("read");
    std::fs::write(&path, labels).expect("write");
    match read_idx_images(&path) {
        Err(DataError::BadMagic {
            expected, found, ..
        }) => {
            assert_eq!(expected, 0x0803);
            assert_eq!(found, 0x0801);
        }
        other => panic!("expected BadMagic, got {other:?}"),
    }
}

#[test]
fn invalid_label_and_count_mismatch_are_typed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("l.gz");
    std::fs::write(&path, gzip(&[0, 0, 8, 1, 0, 0, 0, 3, 1, 12, 3])).expect("write");
    assert!(matches!(
        read_idx_labels(&path),
        Err(DataError::InvalidLabel {
            index: 1,
            value: 12,
            ..
        })
    ));
    let imgs = ndarray::Array2::<f32>::zeros((3, 4));
    assert!(matches!(
        data::Split::new(imgs, vec![1, 2], 2, 2),
        Err(DataError::ShapeMismatch { .. })
    ));
}

#[test]
fn sampler_covers_every_index_once_per_epoch_and_is_deterministic() {
    let n = 1000;
    let mut a = BatchSampler::new(n, 64, data::DEFAULT_SEED).expect("sampler");
    let mut b = BatchSampler::new(n, 64, data::DEFAULT_SEED).expect("sampler");
    let mut c = BatchSampler::new(n, 64, 74).expect("sampler");
    assert_eq!(a.batches_per_epoch(), 16);
    let mut previous = None;
    for _ in 0..3 {
        let ea = a.next_epoch();
        let eb = b.next_epoch();
        let ec = c.next_epoch();
        assert_eq!(ea, eb, "same seed, same epoch");
        assert_ne!(ea, ec, "another seed shuffles differently");
        assert_eq!(ea.len(), 16);
        assert!(ea[..15].iter().all(|batch| batch.len() == 64));
        assert_eq!(ea[15].len(), 1000 - 15 * 64);
        let mut all: Vec<usize> = ea.concat();
        assert_ne!(all, (0..n).collect::<Vec<_>>(), "shuffled");
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "every index exactly once");
        assert_ne!(previous.as_ref(), Some(&ea), "reshuffled each epoch");
        previous = Some(ea);
    }
    assert_eq!(a.epochs_done(), 3);
    assert!(BatchSampler::new(0, 64, 1).is_err());
    assert!(BatchSampler::new(10, 0, 1).is_err());
}

#[test]
fn gather_builds_batches_and_rejects_bad_indices() {
    let m = Mnist::load_default().expect("load");
    let (x, y) = m.test.gather(&[0, 1, 2]).expect("gather");
    assert_eq!(x.dim(), (3, 784));
    assert_eq!(y, vec![7, 2, 1]);
    assert_eq!(x.row(1), m.test.image(1).expect("image"));
    assert!(m.test.gather(&[10_000]).is_err());
    assert_eq!(m.test.head(5).len(), 5);
}

#[test]
fn fashion_mnist_loads_from_the_debian_package_against_committed_sums() {
    use slaf_nn::data::{Dataset, Mnist};
    let dir = Dataset::FashionMnist.default_dir();
    assert!(
        dir.is_dir(),
        "Fashion-MNIST is not installed in {}: `apt-get install dataset-fashion-mnist` (.ci/run does)",
        dir.display()
    );
    let f = Mnist::open(Dataset::FashionMnist, None).expect("fashion-mnist loads");
    assert_eq!((f.train.len(), f.test.len()), (60_000, 10_000));
    assert_eq!((f.train.rows, f.train.cols), (28, 28));
    // Its file names use the dash spelling; the sums are the committed ones.
    assert!(
        f.checksums.iter().all(|(n, _)| n.contains("-idx")),
        "{:?}",
        f.checksums
    );
    let sums = std::fs::read_to_string(Dataset::FashionMnist.checksums()).expect("sums");
    for (name, hash) in &f.checksums {
        assert!(sums.contains(&format!("{hash}  {name}")), "{name}");
    }
    assert_eq!(f.test.class_counts(), [1000; 10]);
    // Not the digits.
    let m = Mnist::load_default().expect("mnist");
    assert_ne!(m.fingerprint(), f.fingerprint());
}

#[test]
fn both_file_name_styles_load_and_a_missing_set_says_how_to_install_it() {
    use slaf_nn::data::{DataError, Dataset, Mnist, default_data_dir};
    let tmp = tempfile::tempdir().expect("tmp");
    let src = default_data_dir();
    let sums = std::fs::read_to_string(src.join("SHA256SUMS")).expect("sums");
    for name in slaf_nn::data::FILES {
        let dashed = name.replacen(".idx", "-idx", 1);
        std::fs::copy(src.join(name), tmp.path().join(&dashed)).expect("copy");
    }
    // Sums written in the MNIST spelling still match the dashed files.
    std::fs::write(tmp.path().join("SHA256SUMS"), &sums).expect("sums");
    let m = Mnist::open(Dataset::Mnist, Some(tmp.path())).expect("dashed names load");
    assert_eq!(m.test.len(), 10_000);
    let hashes = |m: &Mnist| m.checksums.iter().map(|c| c.1.clone()).collect::<Vec<_>>();
    assert_eq!(hashes(&m), hashes(&Mnist::load_default().expect("mnist")));
    // A corrupted dashed file is named.
    let bad = tmp.path().join("t10k-labels-idx1-ubyte.gz");
    std::fs::write(&bad, b"junk").expect("write");
    match Mnist::open(Dataset::Mnist, Some(tmp.path())) {
        Err(DataError::ChecksumMismatch { file, .. }) => assert_eq!(file, bad),
        other => panic!("{other:?}"),
    }
    // A folder without sums is checked against the committed sums of the set.
    let none = tmp.path().join("nope");
    match Mnist::open(Dataset::FashionMnist, Some(&none)) {
        Err(e @ DataError::MissingDataset { .. }) => {
            let s = e.to_string();
            assert!(s.contains("apt-get install dataset-fashion-mnist"), "{s}");
            assert!(s.contains("nope"), "{s}");
        }
        other => panic!("{other:?}"),
    }
    match Dataset::parse("cifar") {
        Err(e) => assert!(e.to_string().contains("\"cifar\""), "{e}"),
        Ok(d) => panic!("{d:?}"),
    }
}
