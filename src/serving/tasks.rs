//! What each job does, on a training thread: the start-up (serve a saved model that matches
//! the configured snapshot and settings, else train), a retrain (train, gate, persist) and a
//! rollback (back to the newest earlier model). A new model is checked, gated and saved
//! before the lifecycle installs it: whatever serves can be found again after a crash.
//!
//! Must not import: web or async types.

use std::ops::ControlFlow;
use std::sync::Arc;

use crate::config::TrainingSettings;
use crate::data::{DataError, Guard, Loaded, Source, SourceError, Stop};
use crate::mixture::{FitError, Progress};
use crate::predictor::Predictor;

use super::error::{JobError, TrainError, Unusable};
use super::gate::compare;
use super::registry::Registry;
use super::served::ServedModel;
use super::store::{Manifest, ModelStore};
use super::train::{fits, restore, train_loaded, train_scored};

/// What a job asks for.
#[derive(Debug, Clone)]
pub enum Task {
    /// Serve a saved model matching the configured snapshot and training if there is one,
    /// else train on them.
    Startup,
    /// Train a new model.
    Retrain(Box<Retrain>),
    /// Go back to the newest earlier model.
    Rollback,
}

/// A retrain: what to train on, how, and whether to skip the quality gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrain {
    /// The snapshot.
    pub source: Source,
    /// The training settings.
    pub training: TrainingSettings,
    /// Skip the quality gate.
    pub force: bool,
}

/// A finished task: the model to install and a sentence about it (none for a trained model),
/// or why not.
pub(super) type Outcome = Result<(Arc<ServedModel>, Option<String>), JobError>;

/// Sees every training iteration; breaks to cancel.
pub(super) type Report<'a> = dyn FnMut(&Progress) -> ControlFlow<()> + 'a;

/// The start-up: a saved model if one fits, else a training on the configured snapshot.
pub(super) fn startup(reg: &Registry, stop: Stop<'_>, report: &mut Report<'_>) -> Outcome {
    let policy = reg.policy();
    // Before the read: every posted rating committed by now is in it.
    let seen = reg.fresh().seq();
    let loaded = reg
        .configured_source()
        .load_until(guard(stop, &policy.training))
        .map_err(|e| cancelled(e.into()))?;
    let store = reg.store().filter(|_| policy.models.load_on_start);
    if let Some(store) = store
        && let Some((version, manifest, model)) = saved(&*store, &loaded, &policy.training)?
    {
        let served = restore(loaded, manifest.info, model).with_feedback_seen(seen);
        publish(&*store, &served)?;
        let message = format!("served version {version} from the model store");
        tracing::info!(version, store = %store.location(), "{message}");
        return Ok((Arc::new(served), Some(message)));
    }
    let version = reg.next_version()?;
    let source = loaded.source.clone();
    let served = train_loaded(loaded, &policy.training, version, report).map_err(cancelled)?;
    let served = served.with_feedback_seen(seen);
    persist(reg, &source, &policy.training, &served)?;
    Ok((Arc::new(served), None))
}

/// The newest saved model that may serve with `loaded` and `training`; each file is read
/// once, newest first, and each one skipped is logged with its reason.
fn saved(
    store: &dyn ModelStore,
    loaded: &Loaded,
    training: &TrainingSettings,
) -> Result<Option<(u64, Manifest, Predictor)>, JobError> {
    for version in store.candidates()? {
        match usable(store, version, loaded, training) {
            Ok((manifest, model)) => return Ok(Some((version, manifest, model))),
            Err(why) => {
                tracing::warn!(version, store = %store.location(), reason = %why, "skipped a saved model");
            }
        }
    }
    Ok(None)
}

/// Saved version `version`, if it was trained on `loaded` with `training` and passes the
/// checks.
fn usable(
    store: &dyn ModelStore,
    version: u64,
    loaded: &Loaded,
    training: &TrainingSettings,
) -> Result<(Manifest, Predictor), Unusable> {
    let (manifest, model) = store.load(version).map_err(|e| e.fault)?;
    let trained_on = &manifest.info.snapshot.sha256;
    if *trained_on != loaded.fingerprint {
        return Err(Unusable::OtherSnapshot(trained_on.clone()));
    }
    if !manifest.training.same_model(training) {
        return Err(Unusable::OtherSettings);
    }
    fits(loaded, &manifest.info, &model)?;
    Ok((manifest, model))
}

/// A retrain (job `id`): train, gate (unless forced), save.
pub(super) fn retrain(
    reg: &Registry,
    id: u64,
    task: &Retrain,
    stop: Stop<'_>,
    report: &mut Report<'_>,
) -> Outcome {
    let version = reg.next_version()?;
    let seen = reg.fresh().seq();
    let loaded = task
        .source
        .load_until(guard(stop, &task.training))
        .map_err(|e| cancelled(e.into()))?;
    let (mut served, heldout) =
        train_scored(loaded, &task.training, version, report).map_err(cancelled)?;
    if task.source.name() == reg.configured_source().name() {
        served = served.with_feedback_seen(seen);
    }
    if !task.force {
        gate(reg, id, &task.training, &served, &heldout)?;
    }
    persist(reg, &task.source, &task.training, &served)?;
    Ok((Arc::new(served), None))
}

/// What a job's read of a snapshot checks as it goes: the job's stop flag, and the memory
/// bound of its training settings.
fn guard<'a>(stop: Stop<'a>, training: &TrainingSettings) -> Guard<'a> {
    Guard {
        stop,
        budget: Some(super::memory::budget(training)),
    }
}

/// A cancelled read or fit is a cancelled job, not a failed one.
fn cancelled(e: TrainError) -> JobError {
    match e {
        TrainError::Fit(FitError::Cancelled)
        | TrainError::Source(SourceError::Data(DataError::Cancelled { .. })) => JobError::Cancelled,
        e => JobError::Train(e),
    }
}

/// The quality gate: a new model clearly worse than the serving model on the same held-out
/// ratings of the new snapshot does not replace it ([`compare`]); what was compared goes into
/// job `id` either way.
fn gate(
    reg: &Registry,
    id: u64,
    training: &TrainingSettings,
    new: &ServedModel,
    heldout: &[f64],
) -> Result<(), JobError> {
    let Some(current) = reg.current() else {
        return Ok(());
    };
    let allowed = reg.policy().models.quality_gate;
    let split = (training.holdout, training.seed);
    let Some(report) = compare(new, heldout, split, &current, allowed) else {
        return Ok(());
    };
    tracing::info!(
        candidate_rmse = report.candidate_rmse,
        serving_rmse = report.serving_rmse,
        compared = report.compared,
        share = report.share,
        unknown_items = report.unknown_items,
        passed = report.passed,
        "quality gate"
    );
    reg.jobs().gated(id, &report);
    match report.passed {
        true => Ok(()),
        false => Err(JobError::Gate(report)),
    }
}

/// Saves a new model (when a store is configured) and prunes old ones; a model that cannot be
/// saved does not serve.
fn persist(
    reg: &Registry,
    source: &Source,
    training: &TrainingSettings,
    served: &ServedModel,
) -> Result<(), JobError> {
    let Some(store) = reg.store() else {
        return Ok(());
    };
    // Once shutdown has begun no save starts (the job ends cancelled, nothing half-written);
    // one under way is waited for (`http::serve`).
    let Some(_saving) = reg.begin_save() else {
        return Err(JobError::Cancelled);
    };
    let info = served.info();
    let saved = store.save(source, training, info, served.predictor());
    let file = saved.map_err(JobError::Save)?;
    tracing::info!(version = info.version, %file, "model saved");
    publish(&*store, served).map_err(|e| match e {
        JobError::Store(e) => JobError::Save(e),
        e => e,
    })?;
    let serving = reg.current().map_or(0, |m| m.info().version);
    match store.prune(&[serving, info.version]) {
        Ok(removed) => {
            for file in removed {
                tracing::info!(%file, "deleted an old model file");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot delete old model files"),
    }
    Ok(())
}

/// Back to the newest earlier model: the one replaced last if it is still in memory, else the
/// newest valid saved one whose snapshot is unchanged. The model rolled back from is marked in
/// the store and never loaded again.
pub(super) fn rollback(reg: &Registry) -> Outcome {
    let current = reg.current().ok_or(JobError::NotServing)?;
    let serving = current.info().version;
    let previous = reg.previous().filter(|p| p.info().version < serving);
    let mut skipped = Vec::new();
    let mut target = None;
    if let Some(store) = reg.store() {
        for version in store.candidates()?.into_iter().filter(|&v| v < serving) {
            if let Some(p) = previous.as_ref().filter(|p| p.info().version >= version) {
                target = Some(p.clone());
                break;
            }
            match restore_saved(&*store, version, &reg.configured_source()) {
                Ok(served) => {
                    target = Some(Arc::new(served));
                    break;
                }
                Err(why) => skipped.push((version, why)),
            }
        }
    }
    let target = target
        .or(previous)
        .ok_or(JobError::NoEarlierModel { serving, skipped })?;
    if let Some(store) = reg.store() {
        if store.holds(serving) {
            store.mark_rolled_back(serving)?;
        }
        // After the mark: a trainer killed in between comes back on the model rolled back to.
        publish(&*store, &target)?;
    }
    let message = format!(
        "rolled back from version {serving} to version {}",
        target.info().version
    );
    tracing::info!("{message}");
    Ok((target, Some(message)))
}

/// Makes `served` the model replicas serve (nothing for a store without replicas).
fn publish(store: &dyn ModelStore, served: &ServedModel) -> Result<(), JobError> {
    let info = served.info();
    store.publish(info.version, &info.snapshot.sha256, served.catalogue())?;
    Ok(())
}

/// A saved model with the snapshot its manifest names, if that snapshot is unchanged. A
/// model file keeps no password: the configured source lends its own when it names the same
/// database.
fn restore_saved(
    store: &dyn ModelStore,
    version: u64,
    configured: &Source,
) -> Result<ServedModel, Unusable> {
    let (manifest, model) = store.load(version).map_err(|e| e.fault)?;
    let loaded = manifest.source.with_password_of(configured).load()?;
    fits(&loaded, &manifest.info, &model)?;
    Ok(restore(loaded, manifest.info, model))
}
