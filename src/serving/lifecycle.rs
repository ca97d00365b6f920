//! Running jobs: [`Registry::start`] registers a job, runs its task on a blocking thread inside
//! the training pool, then installs the new model or records why not (a panic included). One
//! job runs at a time; a failure anywhere leaves the serving model alone.
//!
//! Must not import: web types.

use std::any::Any;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinHandle;
use tracing::Instrument;

use super::error::JobError;
use super::jobs::{Busy, Described, Ending, Job, JobKind};
use super::registry::Registry;
use super::tasks::{Outcome, Task, retrain, rollback, startup};
use crate::mixture::{Algorithm, Progress};
use crate::predictor::ModelKind;

/// A job that was accepted: as it is now, and its ending once it has one.
#[derive(Debug)]
pub struct Started {
    /// The job, queued.
    pub job: Job,
    /// Resolves when the job has ended (its model installed or not).
    pub done: JoinHandle<Ending>,
}

impl Registry {
    /// Starts `task` as a job (needs a tokio runtime); [`Busy`] while another one is active.
    pub fn start(self: &Arc<Self>, task: Task) -> Result<Started, Busy> {
        let (job, cancel) = self.jobs().submit(self.describe(&task))?;
        let done = launch(self, job.id, cancel, move |reg, id, cancel| {
            run(reg, id, &task, cancel)
        });
        Ok(Started { job, done })
    }

    /// How the job of `task` is shown: what it trains, or for a rollback the model it rolls
    /// back from.
    fn describe(&self, task: &Task) -> Described {
        let training = |kind, source: &crate::data::Source, t: &crate::config::TrainingSettings| {
            let snapshot = source.name();
            // pLSA and the low-rank mixture fit by EM whatever `algorithm` says.
            let algorithm = match t.model {
                ModelKind::Mixture => t.algorithm,
                ModelKind::Gpl | ModelKind::Mfa => Algorithm::Em,
            };
            (kind, t.k.value(), t.model, algorithm, snapshot)
        };
        let (kind, k, model, algorithm, snapshot) = match task {
            Task::Startup => training(
                JobKind::Startup,
                &self.configured_source(),
                &self.policy().training,
            ),
            Task::Retrain(r) => training(JobKind::Retrain, &r.source, &r.training),
            Task::Rollback => match self.current() {
                Some(m) => {
                    let i = m.info();
                    (
                        JobKind::Rollback,
                        Some(i.k),
                        i.model,
                        i.algorithm,
                        i.snapshot.path.clone(),
                    )
                }
                None => {
                    let snapshot = self.configured_source().name();
                    (
                        JobKind::Rollback,
                        None,
                        ModelKind::Mixture,
                        Algorithm::Em,
                        snapshot,
                    )
                }
            },
        };
        Described {
            kind,
            k,
            model,
            algorithm,
            snapshot,
        }
    }
}

/// Runs `work` for job `id` on a blocking thread, inside the training pool and the job's span,
/// then installs its model or records why not.
fn launch(
    reg: &Arc<Registry>,
    id: u64,
    cancel: Arc<AtomicBool>,
    work: impl FnOnce(&Registry, u64, &AtomicBool) -> Outcome + Send + 'static,
) -> JoinHandle<Ending> {
    let reg = reg.clone();
    let kind = reg.job(id).map_or("", |j| j.kind.name());
    let span = tracing::info_span!("job", id, kind);
    let inner = span.clone();
    tokio::spawn(
        async move {
            let worker = reg.clone();
            let blocking = move || {
                let pool = worker.pool();
                pool.install(|| inner.in_scope(|| work(&worker, id, &cancel)))
            };
            let ending = match tokio::task::spawn_blocking(blocking).await {
                Ok(outcome) => end(&reg, outcome),
                Err(join) => Err(Arc::new(match join.try_into_panic() {
                    Ok(panic) => JobError::Panicked(panic_message(&*panic).to_owned()),
                    Err(join) => JobError::Lost(join.to_string()),
                })),
            };
            record(&reg, id, kind, &ending);
            ending
        }
        .instrument(span),
    )
}

/// Installs the model of a task that succeeded.
fn end(reg: &Registry, outcome: Outcome) -> Ending {
    let (model, message) = outcome.map_err(Arc::new)?;
    // A model restored or rolled back to says so; a trained one does not.
    if message.is_none() {
        metrics::histogram!("mixrec_training_seconds").record(model.info().training_seconds);
    }
    Ok((reg.install(model), message))
}

/// Logs and counts how job `id` ended, and writes it to the job table.
fn record(reg: &Registry, id: u64, kind: &'static str, ending: &Ending) {
    let outcome = match ending {
        Ok(_) => "succeeded",
        Err(e) if matches!(**e, JobError::Cancelled) => {
            tracing::info!(job = id, "job cancelled; the serving model is unchanged");
            "cancelled"
        }
        Err(e) => {
            tracing::warn!(job = id, error = %e, "job failed; the serving model is unchanged");
            "failed"
        }
    };
    metrics::counter!("mixrec_jobs_total", "kind" => kind, "outcome" => outcome).increment(1);
    reg.jobs().finish(id, ending);
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// The blocking part of a job: its task, reporting progress to the job table and stopping
/// between iterations when cancelled or shutting down.
fn run(reg: &Registry, id: u64, task: &Task, cancel: &AtomicBool) -> Outcome {
    reg.jobs().running(id);
    // Asked between iterations and as a snapshot is read.
    let stop = || cancel.load(Ordering::Relaxed) || reg.is_stopping();
    let mut report = |p: &Progress| {
        reg.jobs().progress(id, p);
        match stop() {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    };
    let outcome = match task {
        Task::Startup => startup(reg, &stop, &mut report),
        Task::Retrain(r) => retrain(reg, id, r, &stop, &mut report),
        Task::Rollback => rollback(reg),
    };
    match outcome {
        Err(_) if cancel.load(Ordering::Relaxed) => Err(JobError::Cancelled),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Settings, TrainingSettings};
    use crate::data::Source;
    use crate::serving::jobs::JobState;
    use crate::serving::tasks::Retrain;
    use crate::serving::train::{quick_settings, train};

    fn registry(threads: usize) -> Arc<Registry> {
        use figment::providers::Format as _;
        let toml = figment::providers::Toml::string(crate::config::DEFAULT_TOML);
        let f = figment::Figment::from(toml);
        let mut s = Settings::from_figment(f, &Default::default()).unwrap();
        s.models.dir = None;
        s.training = TrainingSettings {
            threads,
            ..quick_settings()
        };
        let reg = Arc::new(Registry::open(&s).unwrap());
        let mut go = |_: &Progress| ControlFlow::Continue(());
        let demo = train(&Source::Embedded, &quick_settings(), 1, &mut go).unwrap();
        reg.install(Arc::new(demo));
        reg
    }

    fn retrain() -> Task {
        Task::Retrain(Box::new(Retrain {
            source: Source::Embedded,
            training: quick_settings(),
            force: false,
        }))
    }

    #[tokio::test]
    async fn a_panic_inside_a_job_fails_it_and_the_model_keeps_serving() {
        let reg = registry(1);
        let (job, cancel) = reg.jobs().submit(reg.describe(&retrain())).unwrap();
        let done = launch(&reg, job.id, cancel, |_, _, _| {
            panic!("injected fault at iteration 3")
        });
        let error = done.await.unwrap().unwrap_err();
        assert!(matches!(*error, JobError::Panicked(_)), "{error}");
        let done = reg.job(job.id).unwrap();
        assert_eq!(done.state, JobState::Failed);
        let shown = done.error.unwrap().to_string();
        assert!(
            shown.contains("panicked: injected fault at iteration 3"),
            "{shown}"
        );
        assert_eq!(reg.current().unwrap().info().version, 1);
        assert_eq!(reg.active_job(), None);
        // And the next job runs normally.
        let next = reg.start(retrain()).unwrap();
        assert_eq!(next.done.await.unwrap().unwrap().0, 2);
        assert_eq!(reg.job(next.job.id).unwrap().state, JobState::Succeeded);
        assert_eq!(reg.current().unwrap().info().version, 2);
    }

    #[tokio::test]
    async fn a_job_runs_on_the_training_threads() {
        for threads in [1, 2] {
            let reg = registry(threads);
            let (job, cancel) = reg.jobs().submit(reg.describe(&retrain())).unwrap();
            let done = launch(&reg, job.id, cancel, |_, _, _| {
                let name = std::thread::current().name().map(str::to_owned);
                let pool = rayon::current_num_threads();
                panic!("{name:?} in a pool of {pool}")
            });
            let error = done.await.unwrap().unwrap_err().to_string();
            let pool = format!("\") in a pool of {threads}");
            assert!(error.contains("panicked: Some(\"mixrec-train-"), "{error}");
            assert!(error.ends_with(&pool), "{error}");
        }
    }
}
