//! `results/manifest.json`: what produced a results tree — crate version,
//! git commit, machine, seeds, parameters, start/end times and every
//! stage's duration, status and outputs.

use super::{ReportError, atomic_write};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use crate::machine::Machine;

/// Outcome of one stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// Finished and wrote its outputs.
    Ok,
    /// Failed; the error is in `error`.
    Failed,
    /// Not run (not selected, or its prerequisite is not available yet).
    Skipped,
}

/// One stage of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// Stage name (`comparison`, `interval`, `training`, `inference`).
    pub name: String,
    /// Outcome.
    pub status: StageStatus,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Files written, relative to the results folder.
    pub outputs: Vec<PathBuf>,
    /// Error or reason for skipping.
    pub error: Option<String>,
    /// What the stage measured, keyed like [`crate::paper`] (the
    /// paper-vs-reproduced table of `REPORT.md` is built from these).
    #[serde(default)]
    pub measured: std::collections::BTreeMap<String, f64>,
    /// Commit the stage ran at (a manifest merged from several `--only`
    /// runs holds stages of different commits).
    #[serde(default)]
    pub git_commit: Option<String>,
    /// When the stage finished, RFC 3339 (UTC).
    #[serde(default)]
    pub finished: Option<String>,
}

/// The whole manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// `slaf-he` crate version.
    pub crate_version: String,
    /// `git rev-parse HEAD` of the checkout, or "unknown".
    pub git_commit: String,
    /// Machine description.
    pub machine: Machine,
    /// Profile (`quick`, `full`, ...).
    pub profile: String,
    /// Seeds used.
    pub seeds: serde_json::Value,
    /// Parameters of the run (free-form, per stage).
    pub parameters: serde_json::Value,
    /// Start time, RFC 3339 (UTC).
    pub started: String,
    /// End time, RFC 3339 (UTC).
    pub finished: String,
    /// Stages in run order.
    pub stages: Vec<StageRecord>,
}

impl Manifest {
    /// Keep the stages of `previous` (an earlier run into the same folder,
    /// same profile) that this run did not repeat, so that `--only` updates
    /// its stages instead of discarding the others; `order` names the
    /// stages in run order. Their parameters are kept too.
    pub fn merge_previous(&mut self, previous: Manifest, order: &[&str]) {
        if previous.profile != self.profile {
            return;
        }
        for st in previous.stages {
            if !self.stages.iter().any(|s| s.name == st.name) {
                self.stages.push(st);
            }
        }
        let pos = |n: &str| order.iter().position(|o| *o == n).unwrap_or(order.len());
        self.stages.sort_by_key(|s| pos(&s.name));
        if let (serde_json::Value::Object(new), serde_json::Value::Object(old)) =
            (&mut self.parameters, previous.parameters)
        {
            for (k, v) in old {
                new.entry(k).or_insert(v);
            }
        }
    }

    /// Everything the stages measured, in one map.
    pub fn measured(&self) -> std::collections::BTreeMap<String, f64> {
        self.stages
            .iter()
            .flat_map(|s| s.measured.clone())
            .collect()
    }
}

/// Format a time as RFC 3339 UTC with seconds precision.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Seconds of a duration as f64.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The git commit of the repository containing `dir`, or "unknown".
pub fn git_commit(dir: &Path) -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

impl Manifest {
    /// Write the manifest as pretty JSON (atomically).
    pub fn write(&self, path: &Path) -> Result<(), ReportError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| ReportError::InvalidData {
            title: "manifest".into(),
            detail: e.to_string(),
        })?;
        atomic_write(path, text.as_bytes())
    }

    /// Read a manifest written by [`Manifest::write`].
    pub fn read(path: &Path) -> Result<Self, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| ReportError::InvalidData {
            title: path.display().to_string(),
            detail: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        let m = Manifest {
            crate_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: git_commit(Path::new(env!("CARGO_MANIFEST_DIR"))),
            machine: Machine::current(),
            profile: "quick".into(),
            seeds: serde_json::json!({"data": 73}),
            parameters: serde_json::json!({}),
            started: rfc3339(SystemTime::UNIX_EPOCH),
            finished: rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(90)),
            stages: vec![StageRecord {
                name: "comparison".into(),
                status: StageStatus::Ok,
                seconds: 1.5,
                outputs: vec![PathBuf::from("comparison/metrics.csv")],
                error: None,
                measured: [("p2.x".to_string(), 1.0)].into_iter().collect(),
                git_commit: Some("abc".into()),
                finished: None,
            }],
        };
        assert_eq!(m.started, "1970-01-01T00:00:00Z");
        assert_eq!(m.finished, "1970-01-01T00:01:30Z");
        assert!(m.machine.cores >= 1);
        let p = dir.path().join("manifest.json");
        m.write(&p).expect("write");
        assert_eq!(Manifest::read(&p).expect("read"), m);
        assert!(
            std::fs::read_to_string(&p)
                .expect("text")
                .contains("\"status\": \"ok\"")
        );
    }
}
