//! A replica's side of a shared model store: it never trains; it reads the trainer's published
//! pointer every `models.poll_interval_ms`, and when it names another version loads that model
//! and its catalogue (ids, titles, the users' ratings: everything the public routes need, no
//! local snapshot), checks both, and swaps the model in as a job would. A failed poll (store
//! unreachable, object damaged) leaves the serving model alone, is counted in
//! `mixrec_model_poll_failures_total`, and is logged once per outage, not once per poll.
//!
//! Must not import: web types (tokio only runs the polls off the async workers).

use std::sync::Arc;
use std::time::Duration;

use super::error::Unusable;
use super::registry::Registry;
use super::store::StoreError;
use super::train::{fits, restore};
use crate::data::Loaded;

/// Why a poll did not bring the published model in.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The published model does not fit its catalogue or fails the checks.
    #[error("published version {version} is refused: {why}")]
    Unusable {
        /// The version the pointer names.
        version: u64,
        /// Why it may not serve.
        why: Unusable,
    },
    /// The poll's thread was lost.
    #[error("the poll was lost: {0}")]
    Lost(String),
}

impl Registry {
    /// One poll: when the published pointer names a version other than the serving one, loads,
    /// checks and installs it. Returns the version installed; `None` when nothing changed (or
    /// nothing is published yet). Blocking.
    pub fn follow_once(&self) -> Result<Option<u64>, PollError> {
        let store = self
            .store()
            .ok_or_else(|| PollError::Lost("a replica needs a model store (models.url)".into()))?;
        let Some(version) = store.published()? else {
            return Ok(None);
        };
        let current = self.current();
        if current
            .as_ref()
            .is_some_and(|m| m.info().version == version)
        {
            return Ok(None);
        }
        let (manifest, model) = store.load(version)?;
        let fingerprint = manifest.info.snapshot.sha256.clone();
        // The same snapshot as the serving model: its catalogue, not another download.
        let same = current.filter(|m| m.info().snapshot.sha256 == fingerprint);
        let (snapshot, titles) = match same {
            Some(m) => (m.catalogue().snapshot(), m.catalogue().titles().clone()),
            None => store.catalogue(&fingerprint)?,
        };
        let loaded = Loaded {
            source: manifest.source,
            snapshot,
            titles,
            fingerprint,
        };
        let refused = |why| PollError::Unusable { version, why };
        fits(&loaded, &manifest.info, &model).map_err(refused)?;
        let served = restore(loaded, manifest.info, model);
        Ok(Some(self.install(Arc::new(served))))
    }
}

/// Polls every `every` until shutdown begins (needs a tokio runtime).
pub async fn follow(reg: Arc<Registry>, every: Duration) {
    let location = reg.store().map(|s| s.location()).unwrap_or_default();
    tracing::info!(store = %location, ?every, "replica: following the published model");
    let mut failing = false;
    while !reg.is_stopping() {
        let worker = reg.clone();
        let polled = tokio::task::spawn_blocking(move || worker.follow_once())
            .await
            .unwrap_or_else(|e| Err(PollError::Lost(e.to_string())));
        match polled {
            Ok(installed) => {
                if failing {
                    tracing::info!(store = %location, "model store readable again");
                    failing = false;
                }
                if let Some(version) = installed {
                    tracing::info!(version, store = %location, "serving the published model");
                }
            }
            Err(e) => {
                metrics::counter!("mixrec_model_poll_failures_total").increment(1);
                if !failing {
                    let serving = reg.current().map(|m| m.info().version);
                    tracing::warn!(store = %location, error = %e, ?serving,
                        "cannot follow the published model; still serving what this replica has \
                         (logged once until a poll succeeds)");
                    failing = true;
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}
