//! Jobs: the start-up (serve a saved model or train), every `POST /admin/retrain` and every
//! `POST /admin/rollback`. One runs at a time, on a blocking thread, and reports its progress
//! here, where `GET /admin/jobs/{id}` reads it and `DELETE /admin/jobs/{id}` cancels it.
//!
//! A new model is checked (finite, no empty type, the quality gate), then saved, and only then
//! swapped in: whatever serves can be found again after a crash. A failure anywhere, a panic
//! included, leaves the serving model alone.

use std::any::Any;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use super::state::AppState;
use crate::config::TrainingSettings;
use crate::mixture::{Algorithm, FitError, Progress};
use crate::service::ServedModel;
use crate::train::{self, Source, TrainError};

/// Finished jobs kept for polling; older ones are forgotten.
const KEPT_JOBS: usize = 100;

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
    /// Stopped by `DELETE /admin/jobs/{id}`; no new model.
    Cancelled,
}

/// A job as `GET /admin/jobs/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Job id.
    pub id: u64,
    /// What it does.
    pub kind: JobKind,
    /// Where it is.
    pub state: JobState,
    /// Number of types asked for (`None`: chosen in training; `/v1/model` has the result).
    pub k: Option<usize>,
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
    /// The version of the model it put in service.
    pub model_version: Option<u64>,
    /// How it ended, in words (e.g. which saved model it restored).
    pub message: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was accepted (RFC 3339).
    pub submitted_at: String,
    /// When it ended (RFC 3339).
    pub finished_at: Option<String>,
}

/// What a job asks for.
#[derive(Debug, Clone)]
pub enum Task {
    /// Serve a saved model matching `source` and `training` if there is one, else train.
    Startup {
        /// The configured snapshot.
        source: Source,
        /// The configured training.
        training: TrainingSettings,
    },
    /// Train on `source`; `force` skips the quality gate.
    Retrain {
        /// The snapshot.
        source: Source,
        /// The training settings.
        training: TrainingSettings,
        /// Skip the quality gate.
        force: bool,
    },
    /// Go back to the newest earlier model.
    Rollback,
}

/// Why `DELETE /admin/jobs/{id}` could not cancel.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelError {
    /// No such job (or forgotten).
    Unknown,
    /// It had ended already, in this state.
    Finished(JobState),
}

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

/// A finished job's outcome: the model to serve and a sentence about it, or why not.
type Outcome = Result<(Arc<ServedModel>, Option<String>), Failure>;

/// Why a job put no model in service.
#[derive(Debug)]
enum Failure {
    Cancelled,
    Error(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::Error(e.to_string())
    }
}

impl Jobs {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding the lock cannot leave a job half-written: recover the data.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a queued job, or returns the id of the one already active.
    fn submit(&self, task: &Task, state: &AppState) -> Result<(Job, Arc<AtomicBool>), u64> {
        let mut t = self.table();
        if let Some((active, _)) = &t.active {
            return Err(*active);
        }
        let described = |kind, source: &Source, ts: &TrainingSettings| {
            (kind, ts.k.value(), ts.algorithm, train::source_name(source))
        };
        let (kind, k, algorithm, snapshot) = match task {
            Task::Startup {
                source,
                training: ts,
            } => described(JobKind::Startup, source, ts),
            Task::Retrain {
                source,
                training: ts,
                ..
            } => described(JobKind::Retrain, source, ts),
            // Described by the model it rolls back from (the route refuses when none serves).
            Task::Rollback => match state.current() {
                Some(m) => {
                    let i = m.info();
                    (JobKind::Rollback, Some(i.k), i.algorithm, i.snapshot.path.clone())
                }
                None => {
                    let source = train::source_name(&state.configured_source());
                    (JobKind::Rollback, None, Algorithm::Em, source)
                }
            },
        };
        t.next_id += 1;
        let job = Job {
            id: t.next_id,
            kind,
            state: JobState::Queued,
            k,
            algorithm,
            snapshot,
            restart: 0,
            iteration: 0,
            log_likelihood: None,
            cost: None,
            iteration_seconds: None,
            eta_seconds: None,
            model_version: None,
            message: None,
            error: None,
            submitted_at: now(),
            finished_at: None,
        };
        let cancel = Arc::new(AtomicBool::new(false));
        t.active = Some((job.id, cancel.clone()));
        t.jobs.insert(job.id, job.clone());
        while t.jobs.len() > KEPT_JOBS {
            t.jobs.pop_first();
        }
        Ok((job, cancel))
    }

    /// A copy of job `id`.
    pub fn get(&self, id: u64) -> Option<Job> {
        self.table().jobs.get(&id).cloned()
    }

    /// The id of the queued or running job.
    pub fn active(&self) -> Option<u64> {
        self.table().active.as_ref().map(|a| a.0)
    }

    /// Asks job `id` to stop at its next iteration; returns it as it is now.
    pub fn cancel(&self, id: u64) -> Result<Job, CancelError> {
        let t = self.table();
        let job = t.jobs.get(&id).cloned().ok_or(CancelError::Unknown)?;
        match &t.active {
            Some((active, flag)) if *active == id => {
                flag.store(true, Ordering::Relaxed);
                Ok(job)
            }
            _ => Err(CancelError::Finished(job.state)),
        }
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut Job)) {
        if let Some(job) = self.table().jobs.get_mut(&id) {
            f(job);
        }
    }

    fn finish(&self, id: u64, outcome: Result<(u64, Option<String>), Failure>) {
        let mut t = self.table();
        t.active = None;
        if let Some(job) = t.jobs.get_mut(&id) {
            job.finished_at = Some(now());
            match outcome {
                Ok((version, message)) => {
                    job.state = JobState::Succeeded;
                    job.model_version = Some(version);
                    job.message = message;
                }
                Err(Failure::Cancelled) => {
                    job.state = JobState::Cancelled;
                    job.error = Some("cancelled".into());
                }
                Err(Failure::Error(e)) => {
                    job.state = JobState::Failed;
                    job.error = Some(e);
                }
            }
        }
    }
}

/// Starts `task` on a blocking thread; `Err` holds the id of the job already active.
pub fn start(state: &AppState, task: Task) -> Result<Job, u64> {
    let (job, cancel) = state.jobs.submit(&task, state)?;
    launch(state, job.id, cancel, move |state, id, cancel| {
        run(state, id, &task, cancel)
    });
    Ok(job)
}

/// Runs `work` for job `id` on a blocking thread, then installs its model or records why not
/// (a panic included).
fn launch(
    state: &AppState,
    id: u64,
    cancel: Arc<AtomicBool>,
    work: impl FnOnce(&AppState, u64, &AtomicBool) -> Outcome + Send + 'static,
) {
    let state = state.clone();
    tokio::spawn(async move {
        let worker = state.clone();
        let outcome = tokio::task::spawn_blocking(move || work(&worker, id, &cancel)).await;
        let outcome = match outcome {
            Ok(Ok((model, message))) => {
                // A model restored or rolled back to says so; a trained one does not.
                if message.is_none() {
                    metrics::histogram!("mixrec_training_seconds")
                        .record(model.info().training_seconds);
                }
                Ok((install(&state, model), message))
            }
            Ok(Err(failure)) => Err(failure),
            Err(join) => Err(Failure::Error(match join.try_into_panic() {
                Ok(panic) => format!("the job panicked: {}", panic_message(&*panic)),
                Err(join) => format!("the job stopped unexpectedly: {join}"),
            })),
        };
        let label = match &outcome {
            Ok(_) => "succeeded",
            Err(Failure::Cancelled) => {
                tracing::info!(job = id, "job cancelled; the serving model is unchanged");
                "cancelled"
            }
            Err(Failure::Error(e)) => {
                tracing::warn!(job = id, error = %e, "job failed; the serving model is unchanged");
                "failed"
            }
        };
        let kind = state.jobs.get(id).map_or("", |j| j.kind.name());
        metrics::counter!("mixrec_jobs_total", "kind" => kind, "outcome" => label).increment(1);
        state.jobs.finish(id, outcome);
    });
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// The blocking part of a job.
fn run(state: &AppState, id: u64, task: &Task, cancel: &AtomicBool) -> Outcome {
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
        // Cancelled, or shutting down: stop between iterations.
        match cancel.load(Ordering::Relaxed) || state.stopping.load(Ordering::Relaxed) {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    };
    let outcome = match task {
        Task::Startup { source, training } => startup(state, source, training, &mut report),
        Task::Retrain {
            source,
            training,
            force,
        } => retrain(state, source, training, *force, &mut report),
        Task::Rollback => rollback(state),
    };
    match outcome {
        Err(Failure::Error(_)) if cancel.load(Ordering::Relaxed) => Err(Failure::Cancelled),
        other => other,
    }
}

type Report<'a> = dyn FnMut(&Progress) -> ControlFlow<()> + 'a;

/// The next version: above every version served, handed out or found in the store.
fn next_version(state: &AppState) -> Result<u64, Failure> {
    let stored = match &state.store {
        Some(store) => store.newest_version()?,
        None => 0,
    };
    let served = state.last_version.load(Ordering::Relaxed);
    Ok(stored.max(served) + 1)
}

fn startup(
    state: &AppState,
    source: &Source,
    training: &TrainingSettings,
    report: &mut Report<'_>,
) -> Outcome {
    let loaded = train::load(source)?;
    let store = state
        .store
        .as_ref()
        .filter(|_| state.settings.models.load_on_start);
    if let Some(store) = store {
        // Each file is read once, newest first, until one fits.
        for version in store.candidates()? {
            let file = store.path(version);
            let why_not = match store.load(version) {
                Err(e) => e.reason,
                Ok((m, _)) if m.info.snapshot.sha256 != loaded.sha256 => {
                    format!(
                        "trained on another snapshot (SHA-256 {})",
                        m.info.snapshot.sha256
                    )
                }
                Ok((m, _)) if !m.training.same_model(training) => {
                    "trained with other [training] settings".into()
                }
                Ok((m, model)) => match train::fits(&loaded, &m.info, &model) {
                    Err(e) => e.to_string(),
                    Ok(()) => {
                        let served = train::restore(loaded, m.info, model);
                        let message = format!("served version {version} from the model store");
                        tracing::info!(version, file = %file.display(), "{message}");
                        return Ok((Arc::new(served), Some(message)));
                    }
                },
            };
            tracing::warn!(version, file = %file.display(), reason = %why_not, "skipped a saved model");
        }
    }
    let version = next_version(state)?;
    let served = train::train_loaded(loaded, training, version, report).map_err(cancelled)?;
    persist(state, source, training, &served)?;
    Ok((Arc::new(served), None))
}

fn retrain(
    state: &AppState,
    source: &Source,
    training: &TrainingSettings,
    force: bool,
    report: &mut Report<'_>,
) -> Outcome {
    let version = next_version(state)?;
    let served = train::train(source, training, version, report).map_err(cancelled)?;
    if !force {
        gate(state, &served)?;
    }
    persist(state, source, training, &served)?;
    Ok((Arc::new(served), None))
}

/// A cancelled fit is a cancelled job, not a failed one.
fn cancelled(e: TrainError) -> Failure {
    match e {
        TrainError::Fit(FitError::Cancelled) => Failure::Cancelled,
        e => Failure::Error(e.to_string()),
    }
}

/// The quality gate: a new model whose held-out RMSE is clearly worse than the serving model's
/// does not replace it.
fn gate(state: &AppState, new: &ServedModel) -> Result<(), Failure> {
    let Some(current) = state.current() else {
        return Ok(());
    };
    let (Some(old), Some(new_rmse)) = (current.info().heldout_rmse, new.info().heldout_rmse) else {
        return Ok(());
    };
    let allowed = state.settings.models.quality_gate;
    if new_rmse > old * (1.0 + allowed) {
        return Err(Failure::Error(format!(
            "quality gate: held-out RMSE {new_rmse:.4} is more than {:.1} % above the serving \
             model's {old:.4} (version {}); retrain with \"force\": true to serve it anyway",
            allowed * 100.0,
            current.info().version
        )));
    }
    Ok(())
}

/// Saves a new model (when a store is configured) and prunes old files; a model that cannot
/// be saved does not serve.
fn persist(
    state: &AppState,
    source: &Source,
    training: &TrainingSettings,
    served: &ServedModel,
) -> Result<(), Failure> {
    let Some(store) = &state.store else {
        return Ok(());
    };
    let info = served.info();
    let path = store
        .save(source, training, info, served.predictor())
        .map_err(|e| Failure::Error(format!("cannot save the model: {e}")))?;
    tracing::info!(version = info.version, file = %path.display(), "model saved");
    let serving = state.current().map_or(0, |m| m.info().version);
    match store.prune(&[serving, info.version]) {
        Ok(removed) => {
            for file in removed {
                tracing::info!(file = %file.display(), "deleted an old model file");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot delete old model files"),
    }
    Ok(())
}

/// Back to the newest earlier model: the one replaced last if it is still in memory, else the
/// newest valid saved one whose snapshot is unchanged. The model rolled back from is marked
/// in the store and never loaded again.
fn rollback(state: &AppState) -> Outcome {
    let current = state
        .current()
        .ok_or_else(|| Failure::Error("no model is serving".into()))?;
    let serving = current.info().version;
    let previous = state
        .previous
        .load_full()
        .filter(|p| p.info().version < serving);
    let mut skipped = Vec::new();
    let mut target = None;
    if let Some(store) = &state.store {
        for version in store.candidates()?.into_iter().filter(|&v| v < serving) {
            if let Some(p) = previous.as_ref().filter(|p| p.info().version >= version) {
                target = Some(p.clone());
                break;
            }
            match restore_saved(store, version) {
                Ok(served) => {
                    target = Some(Arc::new(served));
                    break;
                }
                Err(reason) => skipped.push(format!("version {version}: {reason}")),
            }
        }
    }
    let target = match (target, previous) {
        (Some(t), _) => t,
        (None, Some(p)) => p,
        (None, None) => {
            let mut why = format!("no earlier model to roll back to from version {serving}");
            if !skipped.is_empty() {
                why = format!("{why} ({})", skipped.join("; "));
            }
            return Err(Failure::Error(why));
        }
    };
    if let Some(store) = &state.store
        && store.path(serving).exists()
    {
        store.mark_rolled_back(serving)?;
    }
    let message = format!(
        "rolled back from version {serving} to version {}",
        target.info().version
    );
    tracing::info!("{message}");
    Ok((target, Some(message)))
}

/// A saved model with the snapshot its manifest names, if that snapshot is unchanged.
fn restore_saved(store: &crate::store::Store, version: u64) -> Result<ServedModel, String> {
    let (manifest, model) = store.load(version).map_err(|e| e.reason)?;
    let loaded = train::load(&manifest.source).map_err(|e| e.to_string())?;
    train::fits(&loaded, &manifest.info, &model).map_err(|e| e.to_string())?;
    Ok(train::restore(loaded, manifest.info, model))
}

/// Swaps `model` in, keeps the one it replaces for a rollback, and updates the gauges;
/// returns its version.
fn install(state: &AppState, model: Arc<ServedModel>) -> u64 {
    let info = model.info().clone();
    let replaced = state.model.swap(Some(model));
    // After a rollback the replaced model is the one rolled back from: not a rollback target.
    let rolled_back = replaced
        .as_ref()
        .is_some_and(|r| r.info().version > info.version);
    state.previous.store(replaced.filter(|_| !rolled_back));
    state
        .last_version
        .fetch_max(info.version, Ordering::Relaxed);
    metrics::gauge!("mixrec_model_version").set(info.version as f64);
    if let Some(ll) = info.log_likelihood {
        metrics::gauge!("mixrec_model_log_likelihood").set(ll);
    }
    info.version
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::predictor::Predictor;

    fn settings() -> Settings {
        use figment::providers::Format as _;
        let toml = figment::providers::Toml::string(crate::config::DEFAULT_TOML);
        let f = figment::Figment::from(toml);
        let mut s = Settings::from_figment(f, &Default::default()).unwrap();
        s.models.dir = None;
        s.training = train::quick_settings();
        s
    }

    fn demo() -> ServedModel {
        let mut go = |_: &Progress| ControlFlow::Continue(());
        train::train(&Source::Embedded, &train::quick_settings(), 1, &mut go).unwrap()
    }

    async fn finished(state: &AppState, id: u64) -> Job {
        loop {
            let job = state.jobs.get(id).unwrap();
            if job.finished_at.is_some() {
                return job;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_panic_inside_a_job_fails_it_and_the_model_keeps_serving() {
        let state = AppState::with_model(settings(), demo()).unwrap();
        let task = Task::Retrain {
            source: Source::Embedded,
            training: train::quick_settings(),
            force: false,
        };
        let (job, cancel) = state.jobs.submit(&task, &state).unwrap();
        launch(&state, job.id, cancel, |_, _, _| {
            panic!("injected fault at iteration 3")
        });
        let done = finished(&state, job.id).await;
        assert_eq!(done.state, JobState::Failed);
        let error = done.error.unwrap();
        assert!(
            error.contains("panicked: injected fault at iteration 3"),
            "{error}"
        );
        assert_eq!(state.current().unwrap().info().version, 1);
        assert_eq!(state.jobs.active(), None);
        // And the next job runs normally.
        let next = start(&state, task).unwrap();
        assert_eq!(finished(&state, next.id).await.state, JobState::Succeeded);
        assert_eq!(state.current().unwrap().info().version, 2);
    }

    #[test]
    fn a_model_with_an_empty_type_or_a_nan_is_refused() {
        let served = demo();
        let Predictor::Mixture(model) = served.predictor().clone() else {
            unreachable!("the quick settings train a mixture")
        };
        let n = 2000;
        let mut empty = model.clone();
        empty.mixture.weights[1] = 1e-6;
        let err = train::check(&Predictor::Mixture(empty), n).unwrap_err();
        assert!(
            matches!(err, TrainError::EmptyType { index: 1, .. }),
            "{err}"
        );
        let mut nan = model.clone();
        nan.mixture.means[[4, 0]] = f64::NAN;
        let err = train::check(&Predictor::Mixture(nan), n).unwrap_err();
        assert!(matches!(err, TrainError::NonFinite), "{err}");
        train::check(&Predictor::Mixture(model), n).unwrap();
    }
}
