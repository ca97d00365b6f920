//! The job table: the start-up, every retrain and every rollback, as `GET /admin/jobs/{id}`
//! shows them. One job is active at a time; its progress is written here by the job's thread
//! and read by whoever polls, and its cancel flag is set here.
//!
//! Must not import: the registry, the lifecycle, web or async types.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use super::error::JobError;
use super::gate::GateReport;
use crate::mixture::{Algorithm, Progress};
use crate::predictor::ModelKind;

/// Finished jobs kept for polling; older ones are forgotten.
pub const KEPT_JOBS: usize = 100;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// The first model: a saved one if it matches, else a training.
    Startup,
    /// `POST /admin/retrain`.
    Retrain,
    /// `POST /admin/rollback`.
    Rollback,
}

impl JobKind {
    /// The name the API and the metrics use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Retrain => "retrain",
            Self::Rollback => "rollback",
        }
    }
}

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
    /// Stopped by `DELETE /admin/jobs/{id}` or shutdown; no new model.
    Cancelled,
}

impl JobState {
    /// The name the API uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A job as `GET /admin/jobs/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// Job id.
    pub id: u64,
    /// What it does.
    pub kind: JobKind,
    /// Where it is.
    pub state: JobState,
    /// Number of types asked for (`None`: chosen in training; `/v1/model` has the result).
    pub k: Option<usize>,
    /// The model kind it trains.
    pub model: ModelKind,
    /// How it fits: `kmeans` only for a mixture asked to; every other kind fits by EM.
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
    /// The version of the model it put in service.
    pub model_version: Option<u64>,
    /// How it ended, in words (e.g. which saved model it restored).
    pub message: Option<String>,
    /// What the quality gate compared (a retrain against a serving model, with ratings held
    /// out), whether it passed or not.
    pub gate: Option<GateReport>,
    /// Why it failed, as its kind (shown as its message).
    #[serde(serialize_with = "as_message")]
    pub error: Option<Arc<JobError>>,
    /// When it was accepted (RFC 3339).
    pub submitted_at: String,
    /// When it ended (RFC 3339).
    pub finished_at: Option<String>,
}

fn as_message<S: Serializer>(error: &Option<Arc<JobError>>, s: S) -> Result<S::Ok, S::Error> {
    match error {
        Some(e) => s.collect_str(e),
        None => s.serialize_none(),
    }
}

/// What a job is described by when it is accepted.
#[derive(Debug, Clone)]
pub struct Described {
    /// What it does.
    pub kind: JobKind,
    /// Number of types asked for (`None`: chosen in training).
    pub k: Option<usize>,
    /// The model kind it trains.
    pub model: ModelKind,
    /// How it fits.
    pub algorithm: Algorithm,
    /// The snapshot, by name.
    pub snapshot: String,
}

/// A job could not start: job `0` is still active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("job {0} is still running")]
pub struct Busy(pub u64);

/// No job of this id (or one forgotten).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no job {0} (only the last {KEPT_JOBS} jobs are kept)")]
pub struct UnknownJob(pub u64);

/// Why a job could not be cancelled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CancelError {
    /// No such job.
    #[error(transparent)]
    Unknown(#[from] UnknownJob),
    /// It had ended already, in this state.
    #[error("job {0} has ended ({state}); nothing to cancel", state = .1.name())]
    Finished(u64, JobState),
}

/// How a finished job ended: the version it put in service and a sentence about it, or why
/// not.
pub type Ending = Result<(u64, Option<String>), Arc<JobError>>;

#[derive(Debug, Default)]
struct Table {
    jobs: BTreeMap<u64, Job>,
    /// The queued or running job and its cancel flag.
    active: Option<(u64, Arc<AtomicBool>)>,
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

    /// Registers a queued job and its cancel flag, unless one is active.
    pub fn submit(&self, d: Described) -> Result<(Job, Arc<AtomicBool>), Busy> {
        let mut t = self.table();
        if let Some((active, _)) = &t.active {
            return Err(Busy(*active));
        }
        t.next_id += 1;
        let job = queued(t.next_id, d);
        let cancel = Arc::new(AtomicBool::new(false));
        t.active = Some((job.id, cancel.clone()));
        t.jobs.insert(job.id, job.clone());
        while t.jobs.len() > KEPT_JOBS {
            t.jobs.pop_first();
        }
        Ok((job, cancel))
    }

    /// A copy of job `id`.
    pub fn get(&self, id: u64) -> Result<Job, UnknownJob> {
        self.table().jobs.get(&id).cloned().ok_or(UnknownJob(id))
    }

    /// The id of the queued or running job.
    pub fn active(&self) -> Option<u64> {
        self.table().active.as_ref().map(|a| a.0)
    }

    /// Asks job `id` to stop at its next iteration; returns it as it is now.
    pub fn cancel(&self, id: u64) -> Result<Job, CancelError> {
        let t = self.table();
        let job = t.jobs.get(&id).cloned().ok_or(UnknownJob(id))?;
        match &t.active {
            Some((active, flag)) if *active == id => {
                flag.store(true, Ordering::Relaxed);
                Ok(job)
            }
            _ => Err(CancelError::Finished(id, job.state)),
        }
    }

    /// Job `id` is running.
    pub fn running(&self, id: u64) {
        self.update(id, |j| j.state = JobState::Running);
    }

    /// Job `id`'s quality gate compared what `report` says.
    pub fn gated(&self, id: u64, report: &GateReport) {
        self.update(id, |j| j.gate = Some(report.clone()));
    }

    /// Job `id` reached the iteration `p` describes.
    pub fn progress(&self, id: u64, p: &Progress) {
        self.update(id, |j| {
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
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut Job)) {
        if let Some(job) = self.table().jobs.get_mut(&id) {
            f(job);
        }
    }

    /// Job `id` has ended as `ending` says; no job is active any more.
    pub fn finish(&self, id: u64, ending: &Ending) {
        let mut t = self.table();
        t.active = None;
        let Some(job) = t.jobs.get_mut(&id) else {
            return;
        };
        job.finished_at = Some(now());
        match ending {
            Ok((version, message)) => {
                job.state = JobState::Succeeded;
                job.model_version = Some(*version);
                job.message.clone_from(message);
            }
            Err(e) => {
                job.state = match **e {
                    JobError::Cancelled => JobState::Cancelled,
                    _ => JobState::Failed,
                };
                job.error = Some(e.clone());
            }
        }
    }
}

fn queued(id: u64, d: Described) -> Job {
    Job {
        id,
        kind: d.kind,
        state: JobState::Queued,
        k: d.k,
        model: d.model,
        algorithm: d.algorithm,
        snapshot: d.snapshot,
        restart: 0,
        iteration: 0,
        log_likelihood: None,
        cost: None,
        iteration_seconds: None,
        eta_seconds: None,
        model_version: None,
        message: None,
        gate: None,
        error: None,
        submitted_at: now(),
        finished_at: None,
    }
}
