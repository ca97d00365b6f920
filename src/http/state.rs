//! Shared state: one `Clone` handle to an `Arc` holding the server settings, the model
//! lifecycle's [`Registry`], the request permits and the metrics handle.
//!
//! Must not import: the routes, the handlers.

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;

use super::error::ApiError;
use super::recorder::metrics_handle;
use crate::config::{Secret, ServerSettings, Settings};
use crate::serving::{OpenError, Registry, ServedModel};

/// What every handler shares.
#[derive(Debug)]
pub struct App {
    /// `[server]`: listening, limits, CORS, the admin token.
    pub server: ServerSettings,
    /// The serving model, the jobs, the store.
    pub registry: Arc<Registry>,
    /// One permit per request being handled (`server.max_concurrent_requests`): one semaphore
    /// for every listener, connection and route, so the limit is global.
    pub permits: Semaphore,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// The bearer token `POST /v1/users/{user_id}/ratings` requires, if any.
    pub feedback_token: Option<Secret>,
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
    /// State with no model yet: opens the model store if one is configured and starts the
    /// training threads.
    pub fn new(settings: Settings) -> Result<Self, OpenError> {
        let registry = Arc::new(Registry::open(&settings)?);
        let permits = Semaphore::new(settings.server.max_concurrent_requests as usize);
        Ok(Self(Arc::new(App {
            server: settings.server,
            registry,
            permits,
            metrics: metrics_handle(),
            feedback_token: settings.feedback.token,
        })))
    }

    /// State serving `model` from the start (tests, benchmarks).
    pub fn with_model(settings: Settings, model: ServedModel) -> Result<Self, OpenError> {
        let state = Self::new(settings)?;
        state.registry.install(Arc::new(model));
        Ok(state)
    }

    /// The serving model, or 503.
    pub fn ready_model(&self) -> Result<Arc<ServedModel>, ApiError> {
        self.registry.current().ok_or_else(ApiError::not_ready)
    }
}
