//! The registry: everything the model lifecycle owns. The serving model (swapped whole with
//! arc-swap: requests never wait for a retrain and never see half a model), the model it
//! replaced, the version counter, the job table, the model store and the training pool.
//! Whoever serves holds one `Arc<Registry>`; jobs run against it (`lifecycle.rs`).
//!
//! Must not import: the lifecycle's tasks, web types.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwapOption;

use super::fresh::Fresh;
use super::jobs::{CancelError, Job, Jobs, UnknownJob};
use super::served::ServedModel;
use super::store::{DirStore, Entry, ModelStore, ObjectStore, StoreError};
use crate::config::{
    FeedbackSettings, ModelsSettings, Role, Settings, SnapshotSettings, TrainingSettings,
};
use crate::data::Source;

/// The settings the lifecycle runs with.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Where ratings come from, and which files a retrain may name.
    pub snapshot: SnapshotSettings,
    /// How to train.
    pub training: TrainingSettings,
    /// Where models are kept, and what a new one must beat.
    pub models: ModelsSettings,
    /// Posted ratings: on or off, where they are written.
    pub feedback: FeedbackSettings,
    /// Standalone, trainer or replica.
    pub role: Role,
}

/// Why the registry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The model store could not be opened.
    #[error("cannot open the model store: {0}")]
    Store(#[from] StoreError),
    /// The training threads could not be started.
    #[error("cannot start {threads} training threads: {source}")]
    Threads {
        /// `training.threads`.
        threads: usize,
        /// Why not.
        source: rayon::ThreadPoolBuildError,
    },
}

/// The model lifecycle's state.
#[derive(Debug)]
pub struct Registry {
    policy: Policy,
    /// The serving model; `None` until the first one is installed.
    model: ArcSwapOption<ServedModel>,
    /// The model the serving one replaced (what a rollback goes back to first); `None` after a
    /// rollback.
    previous: ArcSwapOption<ServedModel>,
    /// The highest model version handed out so far.
    last_version: AtomicU64,
    jobs: Jobs,
    store: Option<Arc<dyn ModelStore>>,
    /// `training.threads` threads, built once: every training runs on them, so a retrain with
    /// `threads = 1` leaves the other cores to requests.
    pool: rayon::ThreadPool,
    /// Set on shutdown: a running training stops at its next iteration.
    stopping: AtomicBool,
    /// Saves under way: shutdown waits for them (bounded), and none starts once it has begun.
    saves: AtomicUsize,
    /// Ratings posted since the serving model's snapshot was read.
    fresh: Fresh,
}

/// A save under way (see [`Registry::begin_save`]); ends when dropped.
pub(super) struct Saving<'a>(&'a AtomicUsize);

impl Drop for Saving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Registry {
    /// A registry with no model yet; opens the model store if `models.dir` is set, and starts
    /// the training threads.
    pub fn open(settings: &Settings) -> Result<Self, OpenError> {
        let m = &settings.models;
        let store = match (m.store_url(), m.store_dir()) {
            (Some(url), _) => {
                Some(Arc::new(ObjectStore::open(url, m.keep)?) as Arc<dyn ModelStore>)
            }
            (None, Some(dir)) => {
                Some(Arc::new(DirStore::open(dir, m.keep)?) as Arc<dyn ModelStore>)
            }
            (None, None) => None,
        };
        let threads = settings.training.threads;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("mixrec-train-{i}"))
            .build()
            .map_err(|source| OpenError::Threads { threads, source })?;
        Ok(Self {
            policy: Policy {
                snapshot: settings.snapshot.clone(),
                training: settings.training.clone(),
                models: settings.models.clone(),
                feedback: settings.feedback.clone(),
                role: settings.server.role,
            },
            model: ArcSwapOption::empty(),
            previous: ArcSwapOption::empty(),
            last_version: AtomicU64::new(0),
            jobs: Jobs::default(),
            store,
            pool,
            stopping: AtomicBool::new(false),
            saves: AtomicUsize::new(0),
            fresh: Fresh::default(),
        })
    }

    /// The settings the lifecycle runs with.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The configured snapshot.
    pub fn configured_source(&self) -> Source {
        self.policy.snapshot.source()
    }

    /// The serving model, if any.
    pub fn current(&self) -> Option<Arc<ServedModel>> {
        self.model.load_full()
    }

    /// Whether this process is a replica: it never trains, it serves what the trainer
    /// published.
    pub fn is_replica(&self) -> bool {
        self.policy.role == Role::Replica
    }

    /// Seconds since the serving model was trained, if one serves.
    pub fn model_age_seconds(&self) -> Option<f64> {
        let model = self.current()?;
        let trained = humantime::parse_rfc3339(&model.info().trained_at).ok()?;
        let age = std::time::SystemTime::now().duration_since(trained);
        Some(age.unwrap_or_default().as_secs_f64())
    }

    /// The model the serving one replaced, if it is still a rollback target.
    pub(super) fn previous(&self) -> Option<Arc<ServedModel>> {
        self.previous.load_full()
    }

    /// The model store, when one is configured.
    pub fn store(&self) -> Option<Arc<dyn ModelStore>> {
        self.store.clone()
    }

    /// Where the model store is (`None` without one), for messages.
    pub fn store_location(&self) -> Option<String> {
        self.store.as_ref().map(|s| s.location())
    }

    /// The saved models, newest first, each read and its checksum verified on a blocking
    /// thread (never on the async workers), with the store's location; `None` without a store.
    /// The error is the store's, or the listing thread's panic, as text.
    pub async fn saved_models(&self) -> Option<(String, Result<Vec<Entry>, String>)> {
        let store = self.store.clone()?;
        let location = store.location();
        let entries = match tokio::task::spawn_blocking(move || store.entries()).await {
            Ok(listed) => listed.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        Some((location, entries))
    }

    /// The ratings posted since the serving model's snapshot was read.
    pub(super) fn fresh(&self) -> &Fresh {
        &self.fresh
    }

    /// The job table.
    pub(super) fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// The training threads.
    pub(super) fn pool(&self) -> &rayon::ThreadPool {
        &self.pool
    }

    /// A copy of job `id`.
    pub fn job(&self, id: u64) -> Result<Job, UnknownJob> {
        self.jobs.get(id)
    }

    /// The id of the queued or running job.
    pub fn active_job(&self) -> Option<u64> {
        self.jobs.active()
    }

    /// Asks job `id` to stop at its next iteration; returns it as it is now.
    pub fn cancel(&self, id: u64) -> Result<Job, CancelError> {
        self.jobs.cancel(id)
    }

    /// Shutdown has begun: a running training stops at its next iteration.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// A save may start: `None` once shutdown has begun, so after [`Registry::stop`] the only
    /// saves are those already under way, and [`Registry::saving`] falls to false for good once
    /// they end.
    pub(super) fn begin_save(&self) -> Option<Saving<'_>> {
        // Counted first, then checked: with `stop` storing first and `saving` loading after
        // (all SeqCst), either the save sees the stop or the shutdown sees the save.
        self.saves.fetch_add(1, Ordering::SeqCst);
        let saving = Saving(&self.saves);
        (!self.is_stopping()).then_some(saving)
    }

    /// Whether a save is under way: shutdown waits for it, within its bound.
    pub fn saving(&self) -> bool {
        self.saves.load(Ordering::SeqCst) > 0
    }

    /// The next version: above every version served, handed out or found in the store.
    pub(super) fn next_version(&self) -> Result<u64, StoreError> {
        let stored = match &self.store {
            Some(store) => store.newest_version()?,
            None => 0,
        };
        Ok(stored.max(self.last_version.load(Ordering::Relaxed)) + 1)
    }

    /// Swaps `model` in, keeps the one it replaces for a rollback, and updates the gauges;
    /// returns its version.
    pub fn install(&self, model: Arc<ServedModel>) -> u64 {
        let info = model.info().clone();
        if let Some(seen) = model.feedback_seen() {
            self.fresh.prune(seen);
        }
        let replaced = self.model.swap(Some(model));
        // After a rollback the replaced model is the one rolled back from: not a rollback target.
        let rolled_back = replaced
            .as_ref()
            .is_some_and(|r| r.info().version > info.version);
        self.previous.store(replaced.filter(|_| !rolled_back));
        self.last_version.fetch_max(info.version, Ordering::Relaxed);
        metrics::gauge!("mixrec_model_version").set(info.version as f64);
        if let Some(ll) = info.log_likelihood {
            metrics::gauge!("mixrec_model_log_likelihood").set(ll);
        }
        info.version
    }
}
