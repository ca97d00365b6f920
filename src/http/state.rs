//! Shared state: one `Clone` handle to an `Arc` holding the settings, the serving model (swapped
//! whole with arc-swap: requests never wait for a retrain and never see half a model), the jobs,
//! the request permits and the metrics handle.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;

use super::error::ApiError;
use super::jobs::Jobs;
use super::ops;
use crate::config::Settings;
use crate::service::ServedModel;
use crate::store::{Store, StoreError};
use crate::train::Source;

/// What every handler shares.
#[derive(Debug)]
pub struct App {
    /// Validated settings.
    pub settings: Settings,
    /// The serving model; `None` until the first training succeeds.
    pub model: ArcSwapOption<ServedModel>,
    /// The model the serving one replaced (what a rollback goes back to first); `None` after
    /// a rollback.
    pub previous: ArcSwapOption<ServedModel>,
    /// The highest model version handed out so far.
    pub last_version: AtomicU64,
    /// The model store, when `models.dir` is set.
    pub store: Option<Store>,
    /// Training jobs.
    pub jobs: Jobs,
    /// Set on shutdown: `/readyz` answers 503 and a running training stops at its next
    /// iteration.
    pub stopping: AtomicBool,
    /// One permit per request being handled (`server.max_concurrent_requests`): one semaphore
    /// for every listener, connection and route, so the limit is global.
    pub permits: Semaphore,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
}

/// The handle handlers receive.
#[derive(Debug, Clone)]
pub struct AppState(Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl AppState {
    /// State with no model yet; opens the model store if one is configured.
    pub fn new(settings: Settings) -> Result<Self, StoreError> {
        let m = &settings.models;
        let store = m.store_dir().map(|d| Store::open(d, m.keep)).transpose()?;
        let permits = Semaphore::new(settings.server.max_concurrent_requests as usize);
        Ok(Self(Arc::new(App {
            settings,
            model: ArcSwapOption::empty(),
            previous: ArcSwapOption::empty(),
            last_version: AtomicU64::new(0),
            store,
            jobs: Jobs::default(),
            stopping: AtomicBool::new(false),
            permits,
            metrics: ops::metrics_handle(),
        })))
    }

    /// State serving `model` from the start (tests, benchmarks).
    pub fn with_model(settings: Settings, model: ServedModel) -> Result<Self, StoreError> {
        let state = Self::new(settings)?;
        state
            .last_version
            .store(model.info().version, Ordering::Relaxed);
        state.model.store(Some(Arc::new(model)));
        Ok(state)
    }

    /// The serving model, if any.
    pub fn current(&self) -> Option<Arc<ServedModel>> {
        self.model.load_full()
    }

    /// The serving model, or 503.
    pub fn ready_model(&self) -> Result<Arc<ServedModel>, ApiError> {
        self.current().ok_or_else(ApiError::not_ready)
    }

    /// The configured snapshot.
    pub fn configured_source(&self) -> Source {
        let s = &self.settings.snapshot;
        match &s.path {
            None => Source::Embedded,
            Some(path) => Source::File {
                path: path.clone(),
                format: s.format,
                titles: s.titles.clone(),
            },
        }
    }
}
