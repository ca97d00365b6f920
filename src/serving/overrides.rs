//! What `POST /admin/retrain` may change, and the bounds on it: a snapshot override must be a
//! regular file inside `snapshot.allowed_dirs`, `n_init` at most [`MAX_N_INIT`], `k` at most
//! `training.max_k`. Each refusal names its limit.
//!
//! Must not import: the registry's state, web or async types.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::registry::Policy;
use super::tasks::Retrain;
use crate::config::{Auto, ConfigError, MAX_N_INIT, TrainingSettings};
use crate::data::{Format, Source};
use crate::mixture::Algorithm;
use crate::predictor::ModelKind;

/// The overrides of a retrain; each absent one keeps the configured value.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Number of types (at most `training.max_k`), or `"auto"`.
    pub k: Option<Auto<usize>>,
    /// Seed.
    pub seed: Option<u64>,
    /// Restarts (at most [`MAX_N_INIT`]).
    pub n_init: Option<usize>,
    /// `em` or `kmeans`.
    pub algorithm: Option<Algorithm>,
    /// `mixture`, `mfa` or `gpl`.
    pub model: Option<ModelKind>,
    /// Snapshot file to train on instead of the configured one (inside
    /// `snapshot.allowed_dirs`).
    pub snapshot: Option<PathBuf>,
    /// Its format.
    pub format: Option<Format>,
    /// Serve the new model even if the quality gate would reject it.
    pub force: Option<bool>,
}

/// Overrides outside their bounds.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// `k` above `training.max_k`.
    #[error("k = {k} is above the limit training.max_k = {max}")]
    K {
        /// Asked.
        k: usize,
        /// `training.max_k`.
        max: usize,
    },
    /// `n_init` above [`MAX_N_INIT`].
    #[error("n_init = {n_init} is above the limit of {max} restarts")]
    NInit {
        /// Asked.
        n_init: usize,
        /// The limit.
        max: usize,
    },
    /// A snapshot the service may not read.
    #[error(transparent)]
    Snapshot(#[from] SnapshotRefusal),
    /// Settings that make no sense (`k = 0`, say).
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

/// Why a snapshot override was refused.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotRefusal {
    /// No directory is allowed: the configured snapshot is the embedded demo and
    /// `snapshot.allowed_dirs` is not set.
    #[error(
        "snapshot overrides are off: the configured snapshot is the embedded demo and \
         snapshot.allowed_dirs is not set"
    )]
    NoDirs,
    /// The path cannot be resolved.
    #[error("snapshot {}: {source}", path.display())]
    Unreadable {
        /// As asked.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// A directory, a device, a FIFO...
    #[error("snapshot {} is not a regular file", path.display())]
    NotAFile {
        /// As resolved.
        path: PathBuf,
    },
    /// A file outside every allowed directory.
    #[error("snapshot {} is outside snapshot.allowed_dirs ({dirs})", path.display())]
    Outside {
        /// As resolved.
        path: PathBuf,
        /// The allowed directories.
        dirs: String,
    },
}

impl Overrides {
    /// The retrain these overrides ask for under `policy`, or the first bound they break.
    pub fn retrain(&self, policy: &Policy) -> Result<Retrain, OverrideError> {
        let training = self.training(&policy.training)?;
        let source = match &self.snapshot {
            Some(path) => Source::File {
                path: allowed(path, &policy.snapshot.allowed_dirs())?,
                format: self.format.unwrap_or(Format::Auto),
                titles: None,
                duplicates: policy.snapshot.file_duplicates(),
                columns: policy.snapshot.columns.clone(),
            },
            None => policy.snapshot.source(),
        };
        let force = self.force.unwrap_or(false);
        Ok(Retrain {
            source,
            training,
            force,
        })
    }

    /// The configured training settings with the overrides, bounded and validated.
    fn training(&self, base: &TrainingSettings) -> Result<TrainingSettings, OverrideError> {
        let t = TrainingSettings {
            k: self.k.unwrap_or(base.k),
            seed: self.seed.unwrap_or(base.seed),
            n_init: self.n_init.unwrap_or(base.n_init),
            algorithm: self.algorithm.unwrap_or(base.algorithm),
            model: self.model.unwrap_or(base.model),
            ..base.clone()
        };
        if let Some(k) = t.k.value()
            && k > t.max_k
        {
            return Err(OverrideError::K { k, max: t.max_k });
        }
        if t.n_init > MAX_N_INIT {
            let (n_init, max) = (t.n_init, MAX_N_INIT);
            return Err(OverrideError::NInit { n_init, max });
        }
        t.validate()?;
        Ok(t)
    }
}

/// `path` resolved (links followed), if it is a regular file inside one of `dirs`.
fn allowed(path: &Path, dirs: &[PathBuf]) -> Result<PathBuf, SnapshotRefusal> {
    if dirs.is_empty() {
        return Err(SnapshotRefusal::NoDirs);
    }
    let unreadable = |source| SnapshotRefusal::Unreadable {
        path: path.to_owned(),
        source,
    };
    let real = std::fs::canonicalize(path).map_err(unreadable)?;
    if !std::fs::metadata(&real).map_err(unreadable)?.is_file() {
        return Err(SnapshotRefusal::NotAFile { path: real });
    }
    let inside = dirs
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .any(|d| real.starts_with(d));
    if !inside {
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let dirs = shown.join(", ");
        return Err(SnapshotRefusal::Outside { path: real, dirs });
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelsSettings, SnapshotSettings};
    use crate::serving::train::quick_settings;

    fn policy(allowed_dirs: Option<Vec<PathBuf>>) -> Policy {
        Policy {
            snapshot: SnapshotSettings {
                path: None,
                format: Format::Auto,
                titles: None,
                allowed_dirs,
                postgres: None,
                query: String::new(),
                duplicates: None,
                columns: Default::default(),
            },
            training: quick_settings(),
            models: ModelsSettings {
                dir: None,
                url: None,
                poll_interval_ms: 10_000,
                load_on_start: false,
                keep: 1,
                quality_gate: 0.05,
            },
            feedback: crate::config::FeedbackSettings {
                enabled: false,
                token: None,
                table: "ratings".into(),
                columns: vec!["user_id".into(), "item_id".into(), "rating".into()],
            },
            role: crate::config::Role::Standalone,
        }
    }

    #[test]
    fn each_bound_holds_at_its_limit_and_refuses_past_it() {
        let p = policy(None);
        let at = |k, n_init| Overrides {
            k: Some(Auto::Is(k)),
            n_init: Some(n_init),
            ..Overrides::default()
        };
        let ok = at(256, MAX_N_INIT).retrain(&p).unwrap();
        assert_eq!((ok.training.k, ok.training.n_init), (Auto::Is(256), 64));
        assert_eq!(ok.source, Source::Embedded);
        let k = at(257, 1).retrain(&p).unwrap_err();
        assert!(matches!(k, OverrideError::K { k: 257, max: 256 }), "{k}");
        let n = at(3, 65).retrain(&p).unwrap_err();
        assert!(
            matches!(
                n,
                OverrideError::NInit {
                    n_init: 65,
                    max: 64
                }
            ),
            "{n}"
        );
        let zero = at(0, 1).retrain(&p).unwrap_err();
        assert!(matches!(zero, OverrideError::Invalid(_)), "{zero}");
    }

    #[test]
    fn a_snapshot_resolves_to_the_real_file_inside_an_allowed_dir() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.csv");
        std::fs::write(&file, "u,m,5\n").unwrap();
        let p = policy(Some(vec![dir.path().to_owned()]));
        let o = Overrides {
            snapshot: Some(dir.path().join(".").join("r.csv")),
            format: Some(Format::Triples),
            ..Overrides::default()
        };
        let Source::File { path, format, .. } = o.retrain(&p).unwrap().source else {
            panic!("a file source")
        };
        assert_eq!(
            (path, format),
            (file.canonicalize().unwrap(), Format::Triples)
        );
        let none = Overrides {
            snapshot: Some(file),
            ..Overrides::default()
        };
        let err = none.retrain(&policy(None)).unwrap_err();
        assert!(
            matches!(err, OverrideError::Snapshot(SnapshotRefusal::NoDirs)),
            "{err}"
        );
    }
}
