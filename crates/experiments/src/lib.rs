//! The papers' experiments as library functions: what `slaf-he reproduce`
//! runs (it only writes the results to files) and what every notebook cell
//! calls, so that a notebook cell is one to three lines.
//!
//! - [`Profile`]: how much of the protocol runs (quick, full, tiny);
//! - [`training`]: the training plans, cached training of a plan, the
//!   accuracy table with the paper's and the PyTorch reference's columns,
//!   per-class accuracy, learning curves and the learned activations;
//! - [`inference`]: the encrypted-inference plans, one standard run, its
//!   table, the stage-time figure and P1's CryptoNets time ratio;
//! - [`beyond`]: the study beyond the papers (SLAF on Fashion-MNIST and
//!   deeper CNNs, degrees 2-4), cell by cell, resumable;
//! - [`p2`]: the companion paper's sign-approximation study (comparison and
//!   interval analysis);
//! - [`bootstrap`]: one measured CKKS bootstrap (what `bench ckks
//!   --bootstrap` and the bootstrapping measurements run).
//!
//! Sits above [`slaf_he_nn`], [`slaf_approx`] and [`slaf_report`];
//! nothing below imports it. Every function returns values (tables,
//! figures, summaries); none writes outside the folder it is given.

pub mod beyond;
pub mod bootstrap;
pub mod harness;
pub mod inference;
pub mod p2;
pub mod training;

pub use inference::*;
pub use p2::*;
pub use training::*;

/// The default minimax eps of the P2 study.
pub use slaf_approx::methods::DEFAULT_MINIMAX_EPS;

/// How much of the papers' protocol to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Minutes on 2 cores: one or two epochs, a few hundred images.
    Quick,
    /// The papers' complete protocol (30 epochs, all 10,000 test images).
    Full,
    /// Seconds; for tests of the orchestration only (tiny subsets, 1 epoch).
    Tiny,
}

impl Profile {
    /// Its name: `quick`, `full` or `tiny`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Full => "full",
            Profile::Tiny => "tiny",
        }
    }

    /// The profile named by `SLAF_HE_PROFILE` (`quick`, `full`, `tiny`), or
    /// `default` when it is unset; an unknown name is an error.
    pub fn from_env(default: Profile) -> Result<Profile, StudyError> {
        match std::env::var("SLAF_HE_PROFILE") {
            Err(_) => Ok(default),
            Ok(v) => match v.as_str() {
                "quick" => Ok(Profile::Quick),
                "full" => Ok(Profile::Full),
                "tiny" => Ok(Profile::Tiny),
                other => Err(StudyError::InvalidOption(format!(
                    "SLAF_HE_PROFILE={other:?}: expected quick, full or tiny"
                ))),
            },
        }
    }

    /// Whether this is the full protocol.
    pub fn is_full(self) -> bool {
        self == Profile::Full
    }

    /// `full` in the full profile, `quick` otherwise (image counts, runs).
    pub fn choose<T>(self, quick: T, full: T) -> T {
        if self.is_full() { full } else { quick }
    }
}

/// Where a notebook (or an example) finds the repository and writes its
/// figures.
#[derive(Clone, Debug)]
pub struct NotebookEnv {
    /// The profile (`SLAF_HE_PROFILE`, full by default).
    pub profile: Profile,
    /// The repository root: the nearest folder, from the working directory
    /// up, that holds `data/mnist/SHA256SUMS`.
    pub repo: std::path::PathBuf,
    /// Where figures are written, created: `<repo>/results/notebooks/` in
    /// the full profile (the committed figures), `<repo>/results/<profile>/notebooks/`
    /// (git-ignored) otherwise, so that a quick run never overwrites them.
    pub figs: std::path::PathBuf,
}

impl NotebookEnv {
    /// Find the repository, read the profile and create the figure folder;
    /// also keeps freed ring buffers in the process
    /// ([`slaf_report::machine::tune_allocator`]).
    pub fn open() -> Result<Self, StudyError> {
        slaf_report::machine::tune_allocator();
        let profile = Profile::from_env(Profile::Full)?;
        let cwd = std::env::current_dir()
            .map_err(|e| StudyError::InvalidOption(format!("no working directory: {e}")))?;
        let repo = cwd
            .ancestors()
            .find(|d| d.join("data").join("mnist").join("SHA256SUMS").is_file())
            .ok_or_else(|| {
                StudyError::InvalidOption(format!(
                    "no folder from {} up holds data/mnist/SHA256SUMS: run the notebook inside the repository",
                    cwd.display()
                ))
            })?
            .to_path_buf();
        let figs = if profile.is_full() {
            repo.join("results").join("notebooks")
        } else {
            repo.join("results").join(profile.name()).join("notebooks")
        };
        std::fs::create_dir_all(&figs).map_err(|source| {
            StudyError::Report(slaf_report::ReportError::Io {
                path: figs.clone(),
                source,
            })
        })?;
        Ok(Self {
            profile,
            repo,
            figs,
        })
    }

    /// MNIST from `<repo>/data/mnist` (SHA-256 verified), its sizes printed.
    pub fn mnist(&self) -> Result<slaf_nn::data::Mnist, StudyError> {
        let m = slaf_nn::data::Mnist::load(self.repo.join("data").join("mnist"))
            .map_err(|e| StudyError::InvalidOption(format!("MNIST: {e}")))?;
        println!(
            "train: {} images, test: {} images; test images per digit: {:?}",
            m.train.len(),
            m.test.len(),
            m.test.class_counts()
        );
        Ok(m)
    }
}

impl std::fmt::Display for NotebookEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "profile: {}; figures are also written to {}",
            self.profile.name(),
            self.figs
                .strip_prefix(&self.repo)
                .unwrap_or(&self.figs)
                .display()
        )
    }
}

/// The CKKS presets of SPEC §5 with their security check, and a chain the
/// HE-standard 128-bit table refuses, as markdown.
pub fn ckks_presets_markdown() -> String {
    use slaf_ckks::{CkksParameters, CkksParametersLiteral, presets};
    let mut s = String::from("| preset | parameters |\n|---|---|\n");
    for (name, p) in [
        ("CNN1-X2", presets::cnn1_x2()),
        ("SLAF", presets::slaf()),
        ("SLAF-P", presets::slaf_p()),
    ] {
        s.push_str(&format!("| {name} | {} |\n", p.describe()));
    }
    s.push_str(&format!(
        "\nHE standard, 128-bit, largest log2(QP) per N: {:?}\n\n",
        slaf_ckks::params::HE_STANDARD_128
    ));
    let refused = CkksParameters::new(CkksParametersLiteral {
        log_n: 13,
        coeff_mod_bit_sizes: vec![60; 5],
        scale_bits: 40,
        allow_insecure: false,
        special_primes: 1,
        dnum: None,
    });
    s.push_str(&match refused {
        Err(e) => format!("N = 8192 with [60 x5] (300 bits) is refused: *{e}*\n"),
        Ok(_) => "N = 8192 with [60 x5] was accepted: the security check is broken\n".into(),
    });
    s
}
