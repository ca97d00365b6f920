//! What `POST /admin/retrain` may change: the overrides of a retrain, over the configured
//! snapshot and training settings.
//!
//! Must not import: the registry's state, web or async types.

use std::path::PathBuf;

use serde::Deserialize;

use super::registry::Policy;
use super::tasks::Retrain;
use crate::config::{ConfigError, TrainingSettings};
use crate::data::{Format, Source};
use crate::mixture::Algorithm;
use crate::predictor::ModelKind;

/// The overrides of a retrain; each absent one keeps the configured value.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Number of types.
    pub k: Option<usize>,
    /// Seed.
    pub seed: Option<u64>,
    /// Restarts.
    pub n_init: Option<usize>,
    /// `em` or `kmeans`.
    pub algorithm: Option<Algorithm>,
    /// `mixture` or `gpl`.
    pub model: Option<ModelKind>,
    /// Snapshot file to train on instead of the configured one.
    pub snapshot: Option<PathBuf>,
    /// Its format.
    pub format: Option<Format>,
    /// Serve the new model even if the quality gate would reject it.
    pub force: Option<bool>,
}

/// Overrides the service cannot train with.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// Settings that make no sense (`k = 0`, say).
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

impl Overrides {
    /// The retrain these overrides ask for under `policy`.
    pub fn retrain(&self, policy: &Policy) -> Result<Retrain, OverrideError> {
        let training = self.training(&policy.training)?;
        let source = match &self.snapshot {
            Some(path) => Source::File {
                path: path.clone(),
                format: self.format.unwrap_or(Format::Auto),
                titles: None,
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

    /// The configured training settings with the overrides, validated.
    fn training(&self, base: &TrainingSettings) -> Result<TrainingSettings, OverrideError> {
        let t = TrainingSettings {
            k: self.k.unwrap_or(base.k),
            seed: self.seed.unwrap_or(base.seed),
            n_init: self.n_init.unwrap_or(base.n_init),
            algorithm: self.algorithm.unwrap_or(base.algorithm),
            model: self.model.unwrap_or(base.model),
            ..base.clone()
        };
        t.validate()?;
        Ok(t)
    }
}
