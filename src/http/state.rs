//! Shared state: one `Clone` handle to an `Arc` holding the settings, the serving model (swapped
//! whole with arc-swap: requests never wait for a retrain and never see half a model), the jobs,
//! the request permits and the metrics handle.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwapOption;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;

use super::error::ApiError;
use super::jobs::Jobs;
use super::ops;
use crate::config::Settings;
use crate::service::ServedModel;
use crate::train::Source;

/// What every handler shares.
#[derive(Debug)]
pub struct App {
    /// Validated settings.
    pub settings: Settings,
    /// The serving model; `None` until the first training succeeds.
    pub model: ArcSwapOption<ServedModel>,
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
    /// State with no model yet.
    pub fn new(settings: Settings) -> Self {
        let permits = Semaphore::new(settings.server.max_concurrent_requests as usize);
        Self(Arc::new(App {
            settings,
            model: ArcSwapOption::empty(),
            jobs: Jobs::default(),
            stopping: AtomicBool::new(false),
            permits,
            metrics: ops::metrics_handle(),
        }))
    }

    /// State serving `model` from the start (tests, and a future model store).
    pub fn with_model(settings: Settings, model: ServedModel) -> Self {
        let state = Self::new(settings);
        state.model.store(Some(Arc::new(model)));
        state
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
