//! IDX data sets (MNIST, Fashion-MNIST or any 10-class set of 28×28 grey
//! images): the four gzip IDX files, verified against `SHA256SUMS` on every
//! load, decoded into `ndarray` tensors, and a seeded mini-batch sampler
//! that reshuffles every epoch. Both file-name styles are read
//! (`t10k-images.idx3-ubyte.gz`, `t10k-images-idx3-ubyte.gz`).
//!
//! Pixels are scaled to [0, 1] by dividing by 255 (no mean/std
//! normalisation), labels are `u8` digits 0..=9, as SPEC.md §1 describes.
//! Bad data never panics: every problem is a [`DataError`] naming the file.

mod batches;
mod idx;

pub use batches::BatchSampler;
pub use idx::{read_idx_images, read_idx_labels};

use ndarray::{Array2, ArrayView1, Axis};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name of the training images.
pub const TRAIN_IMAGES: &str = "train-images.idx3-ubyte.gz";
/// File name of the training labels.
pub const TRAIN_LABELS: &str = "train-labels.idx1-ubyte.gz";
/// File name of the test images.
pub const TEST_IMAGES: &str = "t10k-images.idx3-ubyte.gz";
/// File name of the test labels.
pub const TEST_LABELS: &str = "t10k-labels.idx1-ubyte.gz";
/// File name of the checksum list (`sha256sum` format).
pub const CHECKSUMS: &str = "SHA256SUMS";
/// The four data files, in the order they are verified.
pub const FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];
/// Default mini-batch size (SPEC.md §1).
pub const DEFAULT_BATCH_SIZE: usize = 64;
/// Default shuffling seed (SPEC.md §1).
pub const DEFAULT_SEED: u64 = 73;
/// Number of digit classes.
pub const NUM_CLASSES: usize = 10;

/// Errors raised while locating, verifying or decoding MNIST files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A named data set is not installed where it is looked for.
    #[error("data set {name} not found in {dir}: {hint}")]
    MissingDataset {
        /// The data set (`mnist`, `fashion-mnist`).
        name: &'static str,
        /// Where it was looked for.
        dir: PathBuf,
        /// How to install it or point to it.
        hint: &'static str,
    },
    /// An unknown data set name.
    #[error("unknown data set {name:?} (mnist, fashion-mnist; or --data DIR for any IDX set)")]
    UnknownDataset {
        /// The name given.
        name: String,
    },
    /// A required file does not exist.
    #[error("missing file {path}")]
    MissingFile {
        /// The path that was looked for.
        path: PathBuf,
    },
    /// A file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The SHA-256 of a file differs from the one in `SHA256SUMS`.
    #[error("checksum mismatch (sha256) for {file}: expected {expected}, actual {actual}")]
    ChecksumMismatch {
        /// The file whose hash differs.
        file: PathBuf,
        /// Hash listed in `SHA256SUMS`.
        expected: String,
        /// Hash of the file on disk.
        actual: String,
    },
    /// `SHA256SUMS` has no line for a data file.
    #[error("no sha256 listed for {file} in {sums}")]
    MissingChecksum {
        /// The data file without a checksum.
        file: String,
        /// The checksum list that was searched.
        sums: PathBuf,
    },
    /// A line of `SHA256SUMS` is not `<64 hex digits>  <file name>`.
    #[error("malformed line {line} in {path}: expected '<sha256 hex>  <file name>'")]
    BadChecksumLine {
        /// The checksum list.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// The gzip stream is corrupt.
    #[error("corrupt gzip data in {file}: {source}")]
    Gzip {
        /// The file being decompressed.
        file: PathBuf,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// The IDX magic number is not the expected one.
    #[error("bad magic number in {file}: expected {expected:#010x}, found {found:#010x}")]
    BadMagic {
        /// The file with the wrong header.
        file: PathBuf,
        /// Magic number of the expected IDX type.
        expected: u32,
        /// Magic number found.
        found: u32,
    },
    /// The file is shorter than its header says.
    #[error("truncated file {file}: expected {expected} bytes after decompression, found {actual}")]
    Truncated {
        /// The short file.
        file: PathBuf,
        /// Bytes the header announces (header included).
        expected: usize,
        /// Bytes actually present.
        actual: usize,
    },
    /// Shapes or counts disagree (e.g. images vs labels, 28x28 expected).
    #[error("shape mismatch: {detail}")]
    ShapeMismatch {
        /// What disagrees with what.
        detail: String,
    },
    /// A label is not a digit 0..=9.
    #[error("invalid label {value} at index {index} in {file}")]
    InvalidLabel {
        /// The label file.
        file: PathBuf,
        /// Index of the bad label.
        index: usize,
        /// The value found.
        value: u8,
    },
    /// A sampler was configured with an empty set or batch size 0.
    #[error("invalid batch sampler: {detail}")]
    InvalidSampler {
        /// What is wrong.
        detail: String,
    },
}

/// One split of MNIST (train or test).
#[derive(Clone, Debug)]
pub struct Split {
    /// Images, one row per image, `rows * cols` pixels in [0, 1], row-major.
    pub images: Array2<f32>,
    /// Labels, digits 0..=9.
    pub labels: Vec<u8>,
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
}

impl Split {
    /// Build a split, checking that images and labels agree in count and size.
    pub fn new(
        images: Array2<f32>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
    ) -> Result<Self, DataError> {
        if images.nrows() != labels.len() {
            return Err(DataError::ShapeMismatch {
                detail: format!("{} images but {} labels", images.nrows(), labels.len()),
            });
        }
        if images.ncols() != rows * cols {
            return Err(DataError::ShapeMismatch {
                detail: format!(
                    "images have {} pixels, expected {rows}x{cols}",
                    images.ncols()
                ),
            });
        }
        if let Some((index, &value)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| usize::from(**l) >= NUM_CLASSES)
        {
            return Err(DataError::InvalidLabel {
                file: PathBuf::from("<labels>"),
                index,
                value,
            });
        }
        Ok(Self {
            images,
            labels,
            rows,
            cols,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// How many examples each digit 0..=9 has.
    pub fn class_counts(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0usize; NUM_CLASSES];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// The pixels of image `i` (flattened), or `None` when out of range.
    pub fn image(&self, i: usize) -> Option<ArrayView1<'_, f32>> {
        (i < self.len()).then(|| self.images.row(i))
    }

    /// Gather the examples at `indices` into a batch `(images, labels)`.
    ///
    /// Indices out of range are a [`DataError::ShapeMismatch`].
    pub fn gather(&self, indices: &[usize]) -> Result<(Array2<f32>, Vec<u8>), DataError> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::ShapeMismatch {
                detail: format!("index {bad} out of range for a split of {}", self.len()),
            });
        }
        let images = self.images.select(Axis(0), indices);
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Ok((images, labels))
    }

    /// The first `n` examples (or all of them when `n` exceeds the size).
    pub fn head(&self, n: usize) -> Split {
        let n = n.min(self.len());
        Split {
            images: self.images.slice(ndarray::s![..n, ..]).to_owned(),
            labels: self.labels[..n].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// The MNIST data set: 60,000 training and 10,000 test images.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// Training split.
    pub train: Split,
    /// Test split.
    pub test: Split,
    /// `(file name, sha256)` of the four verified files.
    pub checksums: Vec<(String, String)>,
}

impl Mnist {
    /// Load and verify MNIST from `dir` (which holds the four gzip IDX files
    /// and `SHA256SUMS`). Every file's SHA-256 is checked before decoding.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, DataError> {
        let dir = dir.as_ref();
        Self::load_verified(dir, &dir.join(CHECKSUMS))
    }

    /// A short fingerprint of the data: SHA-256 over the four file hashes.
    /// Used to key caches of trained models.
    pub fn fingerprint(&self) -> String {
        let joined: String = self
            .checksums
            .iter()
            .map(|(n, h)| format!("{h}  {n}\n"))
            .collect();
        sha256_hex(joined.as_bytes())
    }

    /// Load from [`default_data_dir`].
    pub fn load_default() -> Result<Self, DataError> {
        Self::load(default_data_dir())
    }

    /// Load the four IDX files of `dir`, verified against the checksum file
    /// `sums` (which may live elsewhere, as the committed sums of a data set
    /// installed by the system's package manager).
    pub fn load_verified(dir: &Path, sums: &Path) -> Result<Self, DataError> {
        let checksums = verify_checksums_with(dir, sums)?;
        let train = load_split(dir, TRAIN_IMAGES, TRAIN_LABELS)?;
        let test = load_split(dir, TEST_IMAGES, TEST_LABELS)?;
        Ok(Self {
            train,
            test,
            checksums,
        })
    }

    /// What `--dataset NAME [--data DIR]` loads. With a folder: its own
    /// `SHA256SUMS` if it has one (any 10-class IDX set), else the sums
    /// committed for `set`. Without: MNIST from [`default_data_dir`] (its own
    /// sums), another set from [`Dataset::default_dir`] against the
    /// committed sums. A folder that does not exist is a
    /// [`DataError::MissingDataset`] saying how to install the set.
    pub fn open(set: Dataset, dir: Option<&Path>) -> Result<Self, DataError> {
        let (dir, sums) = locate(set, dir)?;
        Self::load_verified(&dir, &sums)
    }
}

/// The folder and checksum file `--dataset set [--data dir]` reads (see [`Mnist::open`]).
pub fn locate(set: Dataset, dir: Option<&Path>) -> Result<(PathBuf, PathBuf), DataError> {
    let (dir, sums) = match dir {
        Some(d) if d.join(CHECKSUMS).is_file() => (d.to_path_buf(), d.join(CHECKSUMS)),
        Some(d) => (d.to_path_buf(), set.checksums()),
        None if set == Dataset::Mnist => {
            let d = default_data_dir();
            let sums = d.join(CHECKSUMS);
            (d, sums)
        }
        None => (set.default_dir(), set.checksums()),
    };
    if !dir.is_dir() {
        return Err(DataError::MissingDataset {
            name: set.name(),
            dir,
            hint: set.install_hint(),
        });
    }
    Ok((dir, sums))
}

/// Only the test split of `--dataset set [--data dir]`, all four files verified.
pub fn open_test_split(set: Dataset, dir: Option<&Path>) -> Result<Split, DataError> {
    let (dir, sums) = locate(set, dir)?;
    verify_checksums_with(&dir, &sums)?;
    load_split(&dir, TEST_IMAGES, TEST_LABELS)
}

/// A 10-class IDX data set of 28×28 grey images that the suite knows by name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Dataset {
    /// MNIST digits, vendored in `data/mnist`.
    #[default]
    Mnist,
    /// Zalando's Fashion-MNIST, from Debian's `dataset-fashion-mnist`
    /// package (`/usr/share/datasets/fashion-mnist`).
    FashionMnist,
}

/// Where Debian's `dataset-fashion-mnist` installs its files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

impl Dataset {
    /// Every named data set.
    pub const ALL: [Self; 2] = [Self::Mnist, Self::FashionMnist];

    /// `mnist` or `fashion-mnist`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mnist => "mnist",
            Self::FashionMnist => "fashion-mnist",
        }
    }

    /// Parse a [`Self::name`].
    pub fn parse(s: &str) -> Result<Self, DataError> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| DataError::UnknownDataset {
                name: s.to_string(),
            })
    }

    /// Where the files are looked for: MNIST [`default_data_dir`];
    /// Fashion-MNIST `$SLAF_HE_FASHION_DATA` if set, else [`FASHION_MNIST_DIR`].
    pub fn default_dir(self) -> PathBuf {
        match self {
            Self::Mnist => default_data_dir(),
            Self::FashionMnist => match std::env::var_os("SLAF_HE_FASHION_DATA") {
                Some(d) if !d.is_empty() => PathBuf::from(d),
                _ => PathBuf::from(FASHION_MNIST_DIR),
            },
        }
    }

    /// The committed checksum file, `data/<name>/SHA256SUMS` in this repository.
    pub fn checksums(self) -> PathBuf {
        repo_root().join("data").join(self.name()).join(CHECKSUMS)
    }

    /// How to get the data set when it is missing.
    pub fn install_hint(self) -> &'static str {
        match self {
            Self::Mnist => {
                "MNIST ships in data/mnist of the repository; set SLAF_HE_DATA or pass --data DIR"
            }
            Self::FashionMnist => {
                "install it with `apt-get install dataset-fashion-mnist` (files in /usr/share/datasets/fashion-mnist), or set SLAF_HE_FASHION_DATA / pass --data DIR"
            }
        }
    }
}

/// The file in `dir` for the canonical MNIST name `name`
/// (`t10k-images.idx3-ubyte.gz`), or its Fashion-MNIST spelling
/// (`t10k-images-idx3-ubyte.gz`) when only that one exists.
pub fn resolve_file(dir: &Path, name: &str) -> PathBuf {
    let canonical = dir.join(name);
    if canonical.exists() {
        return canonical;
    }
    let alt = dir.join(alt_name(name));
    if alt.exists() { alt } else { canonical }
}

/// The other spelling of an IDX file name (`.idx` ↔ `-idx`).
fn alt_name(name: &str) -> String {
    if name.contains(".idx") {
        name.replacen(".idx", "-idx", 1)
    } else {
        name.replacen("-idx", ".idx", 1)
    }
}

/// The root of this repository (the workspace), where `data/`, `models/`
/// and `results/` live: two folders above this crate's manifest.
pub fn repo_root() -> &'static Path {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.ancestors().nth(2).unwrap_or(crate_dir)
}

/// The data directory used when none is given: `$SLAF_HE_DATA` if set,
/// otherwise the `data/mnist` folder vendored in this repository.
pub fn default_data_dir() -> PathBuf {
    match std::env::var_os("SLAF_HE_DATA") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo_root().join("data").join("mnist"),
    }
}

fn load_split(dir: &Path, images: &str, labels: &str) -> Result<Split, DataError> {
    let (imgs, rows, cols) = read_idx_images(resolve_file(dir, images))?;
    let labs = read_idx_labels(resolve_file(dir, labels))?;
    if imgs.nrows() != labs.len() {
        return Err(DataError::ShapeMismatch {
            detail: format!(
                "{images} has {} images but {labels} has {} labels",
                imgs.nrows(),
                labs.len()
            ),
        });
    }
    Split::new(imgs, labs, rows, cols)
}

/// Read a file fully, mapping "not found" to [`DataError::MissingFile`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::MissingFile {
                path: path.to_path_buf(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse `SHA256SUMS` in `dir` into a map file name -> expected hex hash.
pub fn read_checksums(dir: &Path) -> Result<BTreeMap<String, String>, DataError> {
    read_checksum_file(&dir.join(CHECKSUMS))
}

/// Parse a checksum file (`<sha256 hex>  <file name>` lines) into a map.
pub fn read_checksum_file(path: &Path) -> Result<BTreeMap<String, String>, DataError> {
    let path = path.to_path_buf();
    let text = read_file(&path)?;
    let text = String::from_utf8_lossy(&text);
    let mut map = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || DataError::BadChecksumLine {
            path: path.clone(),
            line: i + 1,
        };
        let (hash, name) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
        let name = name.trim_start().trim_start_matches('*');
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || name.is_empty() {
            return Err(bad());
        }
        map.insert(name.to_string(), hash.to_ascii_lowercase());
    }
    Ok(map)
}

/// Verify the four data files in `dir` against `SHA256SUMS`; returns
/// `(file name, hash)` for each verified file.
pub fn verify_checksums(dir: &Path) -> Result<Vec<(String, String)>, DataError> {
    verify_checksums_with(dir, &dir.join(CHECKSUMS))
}

/// Verify the four data files in `dir` (either spelling, see
/// [`resolve_file`]) against the checksum file `sums`.
pub fn verify_checksums_with(
    dir: &Path,
    sums_path: &Path,
) -> Result<Vec<(String, String)>, DataError> {
    let sums = read_checksum_file(sums_path)?;
    let mut out = Vec::with_capacity(FILES.len());
    for canonical in FILES {
        let path = resolve_file(dir, canonical);
        let name = path.file_name().map_or_else(
            || canonical.to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let expected = sums
            .get(&name)
            .or_else(|| sums.get(&alt_name(&name)))
            .ok_or_else(|| DataError::MissingChecksum {
                file: name.clone(),
                sums: sums_path.to_path_buf(),
            })?;
        let actual = sha256_hex(&read_file(&path)?);
        if &actual != expected {
            return Err(DataError::ChecksumMismatch {
                file: path,
                expected: expected.clone(),
                actual,
            });
        }
        out.push((name.to_string(), actual));
    }
    Ok(out)
}
