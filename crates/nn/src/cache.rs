//! A cache of trained models keyed by a hash of everything that determines
//! them (training configuration, data checksums, crate version), so that
//! `slaf-he reproduce` reruns and the notebooks reuse trained weights
//! instead of retraining.
//!
//! Entries are weights files (`<key>.json`) in one folder, by default
//! `results/.cache/models/` of the repository (`$SLAF_HE_CACHE` overrides).

use super::{NnError, TrainConfig, WeightsFile, train};
use crate::data::{Mnist, sha256_hex};
use std::path::{Path, PathBuf};

/// The default cache folder: `$SLAF_HE_CACHE`, else `results/.cache/models`
/// in this repository.
pub fn default_cache_dir() -> PathBuf {
    match std::env::var_os("SLAF_HE_CACHE") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => crate::data::repo_root()
            .join("results")
            .join(".cache")
            .join("models"),
    }
}

/// The cache key of a configuration on a data set: SHA-256 over the
/// configuration (JSON), the data fingerprint and the crate version.
pub fn cache_key(cfg: &TrainConfig, data: &Mnist) -> Result<String, NnError> {
    let cfg_json = serde_json::to_string(cfg).map_err(|e| NnError::InvalidConfig {
        detail: format!("cannot serialise the training configuration: {e}"),
    })?;
    let text = format!(
        "slaf-he {}\n{cfg_json}\n{}",
        env!("CARGO_PKG_VERSION"),
        data.fingerprint()
    );
    Ok(sha256_hex(text.as_bytes())[..20].to_string())
}

/// Where a trained model has come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provenance {
    /// Loaded from the cache.
    Cached,
    /// Trained now (and stored in the cache).
    Trained,
}

/// Return the model for `cfg`: from `dir` when a valid entry exists and
/// `retrain` is false, otherwise train it (calling `on_epoch` per epoch)
/// and store it. A corrupt cache entry is retrained, not trusted.
pub fn train_cached(
    data: &Mnist,
    cfg: &TrainConfig,
    dir: &Path,
    retrain: bool,
    quiet: bool,
    on_epoch: &mut dyn FnMut(&super::EpochLog),
) -> Result<(WeightsFile, Provenance), NnError> {
    let path = dir.join(format!("{}.json", cache_key(cfg, data)?));
    if !retrain
        && path.is_file()
        && let Ok(w) = WeightsFile::load(&path)
        && &w.config == cfg
    {
        return Ok((w, Provenance::Cached));
    }
    let (model, report) = train(data, cfg, quiet, on_epoch)?;
    let weights = WeightsFile::new(&model, cfg, &report)?;
    std::fs::create_dir_all(dir).map_err(|source| NnError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    // Write beside, then rename, so a crash never leaves a half-written entry.
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        cache_key(cfg, data)?,
        std::process::id()
    ));
    weights.save(&tmp)?;
    std::fs::rename(&tmp, &path).map_err(|source| NnError::Io {
        path: path.clone(),
        source,
    })?;
    Ok((weights, Provenance::Trained))
}

/// Store an already trained model in the cache under the key of its own
/// configuration (e.g. a weights file committed under `results/training/`),
/// so that [`train_cached`] returns it. Returns the cache entry's path.
pub fn insert(data: &Mnist, weights: &WeightsFile, dir: &Path) -> Result<PathBuf, NnError> {
    weights.validate()?;
    let key = cache_key(&weights.config, data)?;
    std::fs::create_dir_all(dir).map_err(|source| NnError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(format!("{key}.json"));
    let tmp = dir.join(format!(".{key}.tmp-{}", std::process::id()));
    weights.save(&tmp)?;
    std::fs::rename(&tmp, &path).map_err(|source| NnError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Every readable weights file (`*.json`, `*.json.gz`) in `dir`, sorted
/// by path; unreadable or invalid files are skipped.
pub fn load_dir(dir: &Path) -> Vec<(PathBuf, WeightsFile)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !n.starts_with('.') && (n.ends_with(".json.gz") || n.ends_with(".json"))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| WeightsFile::load(&p).ok().map(|w| (p, w)))
        .collect()
}

/// Seed the cache in `cache_dir` from the weights files in `committed_dir`
/// (e.g. the 30-epoch runs committed under `results/training/`): for each
/// configuration in `wanted` that has no cache entry yet, a committed file
/// whose configuration is exactly that one is inserted. Returns the
/// committed files used.
pub fn seed_from_dir(
    data: &Mnist,
    wanted: &[TrainConfig],
    committed_dir: &Path,
    cache_dir: &Path,
) -> Result<Vec<PathBuf>, NnError> {
    let mut used = Vec::new();
    let mut missing = Vec::new();
    for cfg in wanted {
        if !cache_dir
            .join(format!("{}.json", cache_key(cfg, data)?))
            .is_file()
        {
            missing.push(cfg);
        }
    }
    if missing.is_empty() {
        return Ok(used);
    }
    let committed = load_dir(committed_dir);
    for cfg in missing {
        if let Some((p, w)) = committed.iter().find(|(_, w)| &w.config == cfg) {
            insert(data, w, cache_dir)?;
            used.push(p.clone());
        }
    }
    Ok(used)
}
