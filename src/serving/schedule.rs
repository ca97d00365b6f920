//! Scheduled retraining: every `training.retrain_interval`, a retrain from the configured
//! source exactly as `POST /admin/retrain` without overrides starts one (the same job table,
//! gate and store), when at least `training.retrain_min_new_ratings` ratings were posted
//! since the serving model's snapshot was read (and since the last scheduled attempt, so a
//! retrain the quality gate refused is not repeated on the same ratings every tick). A tick
//! while a job runs, before the first model, or on a replica starts nothing.
//!
//! Must not import: web types.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::registry::Registry;
use super::tasks::{Retrain, Task};

impl Registry {
    /// Starts the scheduled retrains when `training.retrain_interval` is set (needs a tokio
    /// runtime); they end with the process or once shutdown has begun.
    pub fn schedule(self: &Arc<Self>) -> Option<JoinHandle<()>> {
        let every = self.policy().training.retrain_interval?;
        let reg = self.clone();
        Some(tokio::spawn(async move {
            let first = tokio::time::Instant::now() + every;
            let mut tick = tokio::time::interval_at(first, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut attempted = 0;
            loop {
                tick.tick().await;
                if reg.is_stopping() {
                    return;
                }
                reg.scheduled_retrain(every, &mut attempted);
            }
        }))
    }

    /// One tick: a retrain job if one is due, else a line saying why not. New ratings count
    /// from the serving model's read, or from the last scheduled attempt (`attempted`, in
    /// ratings committed) if later: a retrain the gate refused waits for more before the next.
    fn scheduled_retrain(self: &Arc<Self>, every: Duration, attempted: &mut u64) {
        let Some(model) = self.current().filter(|_| !self.is_replica()) else {
            return;
        };
        let seq = self.fresh().seq();
        let since = model.feedback_seen().unwrap_or(0).max(*attempted).min(seq);
        let new = seq - since;
        let min = self.policy().training.retrain_min_new_ratings;
        if new < min {
            tracing::debug!(new, min, "scheduled retrain skipped: too few new ratings");
            return;
        }
        let retrain = Retrain {
            source: self.configured_source(),
            training: self.policy().training.clone(),
            force: false,
        };
        match self.start(Task::Retrain(Box::new(retrain))) {
            Ok(started) => {
                *attempted = seq;
                let id = started.job.id;
                tracing::info!(job = id, ?every, new, "scheduled retrain started");
            }
            Err(busy) => tracing::info!(%busy, "scheduled retrain skipped: a job is running"),
        }
    }
}
