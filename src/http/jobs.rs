//! Training jobs: the start-up training and every `POST /admin/retrain`. One runs at a time;
//! each runs on a blocking thread and reports its progress here, where `GET /admin/jobs/{id}`
//! reads it. Success swaps the model in whole; failure leaves the serving model alone.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use super::state::AppState;
use crate::config::TrainingSettings;
use crate::mixture::{Algorithm, Progress};
use crate::service::ServedModel;
use crate::train::{self, Source};

/// Finished jobs kept for polling; older ones are forgotten.
const KEPT_JOBS: usize = 100;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Accepted, not started.
    Queued,
    /// Loading or fitting.
    Running,
    /// The new model is serving.
    Succeeded,
    /// No new model; `error` says why.
    Failed,
}

/// A training job as `GET /admin/jobs/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Job id.
    pub id: u64,
    /// Where it is.
    pub state: JobState,
    /// Number of types asked for.
    pub k: usize,
    /// Algorithm asked for.
    pub algorithm: Algorithm,
    /// Snapshot trained on.
    pub snapshot: String,
    /// Restart in progress (0-based).
    pub restart: usize,
    /// Iteration reached within the restart.
    pub iteration: usize,
    /// Current log-likelihood (EM).
    pub log_likelihood: Option<f64>,
    /// Current cost (k-means).
    pub cost: Option<f64>,
    /// Seconds the last iteration took.
    pub iteration_seconds: Option<f64>,
    /// Estimated seconds left in the current restart (from how fast the changes shrink).
    pub eta_seconds: Option<f64>,
    /// The version of the model it produced.
    pub model_version: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was accepted (RFC 3339).
    pub submitted_at: String,
    /// When it ended (RFC 3339).
    pub finished_at: Option<String>,
}

#[derive(Debug, Default)]
struct Table {
    jobs: BTreeMap<u64, Job>,
    /// The queued or running job, if any.
    active: Option<u64>,
    next_id: u64,
}

/// All jobs, behind one lock (held only to copy a job in or out, never across an await).
#[derive(Debug, Default)]
pub struct Jobs(Mutex<Table>);

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

impl Jobs {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding the lock cannot leave a job half-written: recover the data.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a queued job, or returns the id of the one already active.
    fn submit(&self, training: &TrainingSettings, source: &Source) -> Result<Job, u64> {
        let mut t = self.table();
        if let Some(active) = t.active {
            return Err(active);
        }
        t.next_id += 1;
        let job = Job {
            id: t.next_id,
            state: JobState::Queued,
            k: training.k,
            algorithm: training.algorithm,
            snapshot: source_name(source),
            restart: 0,
            iteration: 0,
            log_likelihood: None,
            cost: None,
            iteration_seconds: None,
            eta_seconds: None,
            model_version: None,
            error: None,
            submitted_at: now(),
            finished_at: None,
        };
        t.active = Some(job.id);
        t.jobs.insert(job.id, job.clone());
        while t.jobs.len() > KEPT_JOBS {
            t.jobs.pop_first();
        }
        Ok(job)
    }

    /// A copy of job `id`.
    pub fn get(&self, id: u64) -> Option<Job> {
        self.table().jobs.get(&id).cloned()
    }

    /// The id of the queued or running job.
    pub fn active(&self) -> Option<u64> {
        self.table().active
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut Job)) {
        if let Some(job) = self.table().jobs.get_mut(&id) {
            f(job);
        }
    }

    fn finish(&self, id: u64, outcome: Result<u64, String>) {
        let mut t = self.table();
        t.active = None;
        if let Some(job) = t.jobs.get_mut(&id) {
            job.finished_at = Some(now());
            match outcome {
                Ok(version) => {
                    job.state = JobState::Succeeded;
                    job.model_version = Some(version);
                }
                Err(e) => {
                    job.state = JobState::Failed;
                    job.error = Some(e);
                }
            }
        }
    }
}

fn source_name(source: &Source) -> String {
    match source {
        Source::Embedded => train::DEMO_PATH.to_owned(),
        Source::File { path, .. } => path.display().to_string(),
    }
}

/// Starts a training job on a blocking thread; `Err` holds the id of the job already active.
pub fn start(state: &AppState, source: Source, training: TrainingSettings) -> Result<Job, u64> {
    let job = state.jobs.submit(&training, &source)?;
    let (state, id) = (state.clone(), job.id);
    tokio::spawn(async move {
        // One job at a time, so the next version cannot be taken by another.
        let version = state.current().map_or(0, |m| m.info().version) + 1;
        let worker = state.clone();
        let outcome =
            tokio::task::spawn_blocking(move || run(&worker, id, &source, &training, version))
                .await;
        let outcome = match outcome {
            Ok(Ok(model)) => Ok(install(&state, model)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(join) => Err(format!("training stopped unexpectedly: {join}")),
        };
        if let Err(e) = &outcome {
            tracing::warn!(job = id, error = %e, "training failed; the serving model is unchanged");
            metrics::counter!("mixrec_training_runs_total", "outcome" => "failed").increment(1);
        }
        state.jobs.finish(id, outcome);
    });
    Ok(job)
}

/// The blocking part: train, reporting each iteration to the job.
fn run(
    state: &AppState,
    id: u64,
    source: &Source,
    training: &TrainingSettings,
    version: u64,
) -> Result<ServedModel, train::TrainError> {
    state.jobs.update(id, |j| j.state = JobState::Running);
    let mut report = |p: &Progress| {
        state.jobs.update(id, |j| {
            j.restart = p.restart;
            j.iteration = p.iteration;
            j.iteration_seconds = Some(p.seconds);
            j.eta_seconds = p.eta_seconds();
            let objective = p.objective.is_finite().then_some(p.objective);
            match j.algorithm {
                Algorithm::Em => j.log_likelihood = objective,
                Algorithm::Kmeans => j.cost = objective,
            }
        });
        // Shutting down: stop between iterations rather than hold up the exit.
        match state.stopping.load(Ordering::Relaxed) {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    };
    match training.threads {
        0 => train::train(source, training, version, &mut report),
        // The engine's parallel loops run on whichever rayon pool they are called from.
        n => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("mixrec-train-{i}"))
            .build()
            .map_err(|e| train::TrainError::Threads(e.to_string()))?
            .install(|| train::train(source, training, version, &mut report)),
    }
}

/// Swaps `model` in and updates the gauges; returns its version.
fn install(state: &AppState, model: ServedModel) -> u64 {
    let info = model.info().clone();
    state.model.store(Some(Arc::new(model)));
    metrics::counter!("mixrec_training_runs_total", "outcome" => "succeeded").increment(1);
    metrics::histogram!("mixrec_training_seconds").record(info.training_seconds);
    metrics::gauge!("mixrec_model_version").set(info.version as f64);
    if let Some(ll) = info.log_likelihood {
        metrics::gauge!("mixrec_model_log_likelihood").set(ll);
    }
    info.version
}
