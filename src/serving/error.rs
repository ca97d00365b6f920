//! Why the lifecycle produced no model, by kind: a training ([`TrainError`]), a saved model
//! that cannot serve ([`Unusable`]), a job ([`JobError`]). Each keeps its kind up to the job
//! record and the web layer; none is a string.
//!
//! Must not import: the registry, the jobs, web or async types.

use crate::data::{Fingerprint, SourceError};
use crate::mixture::{FitError, ParamsError};

use super::gate::GateReport;
use super::store::{StoreError, StoreFault};

/// Why a training produced no model.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The snapshot could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The parameters do not fit the snapshot.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The fit failed or was cancelled.
    #[error(transparent)]
    Fit(#[from] FitError),
    /// The fit returned parameters that are not all finite numbers.
    #[error("the trained model has non-finite parameters; it was not used")]
    NonFinite,
    /// A type of the trained model holds (almost) no users.
    #[error(
        "type {index} of the trained model is empty (weight {weight:.3e}, {users:.2} users' worth); it was not used"
    )]
    EmptyType {
        /// The type.
        index: usize,
        /// Its weight.
        weight: f64,
        /// Weight × users.
        users: f64,
    },
}

/// A gain over the baseline as a percentage, or "unmeasured".
fn gain(g: Option<f64>) -> String {
    g.map_or_else(
        || "unmeasured".to_owned(),
        |g| format!("{:.1} %", g * 100.0),
    )
}

/// Why a saved model may not serve.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    /// The file cannot be read or is damaged.
    #[error(transparent)]
    File(#[from] StoreFault),
    /// It was trained on other ratings than the configured snapshot's.
    #[error("trained on another snapshot (SHA-256 {0})")]
    OtherSnapshot(Fingerprint),
    /// It was trained with other training settings than the configured ones.
    #[error("trained with other [training] settings")]
    OtherSettings,
    /// The snapshot it names has changed since.
    #[error(
        "model version {version} was trained on a snapshot with SHA-256 {trained}, {snapshot} now has {now}"
    )]
    Changed {
        /// The model.
        version: u64,
        /// The fingerprint it was trained on.
        trained: Fingerprint,
        /// The snapshot, by name.
        snapshot: String,
        /// Its fingerprint now.
        now: Fingerprint,
    },
    /// It has another number of items than the snapshot.
    #[error("model version {version} has {model} items, the snapshot {snapshot}")]
    Items {
        /// The model.
        version: u64,
        /// Its items.
        model: usize,
        /// The snapshot's.
        snapshot: usize,
    },
    /// The snapshot it names cannot be read.
    #[error(transparent)]
    Snapshot(#[from] SourceError),
    /// Its parameters fail the checks every new model passes.
    #[error(transparent)]
    Refused(#[from] TrainError),
}

/// Why a job put no model in service.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The training failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The quality gate kept the new model out.
    #[error(
        "quality gate: on the same {compared} held-out ratings of the new snapshot ({share:.1} % \
         of them), the new model's RMSE is {new:.4} against the serving model's {old:.4} \
         (version {version}; at most {allowed:.1} % worse allowed), and it removes {cg} of its \
         baseline's error against the serving model's {sg} (at least half of it needed); \
         retrain with \"force\": true to serve it anyway",
        cg = gain(.0.candidate_gain),
        sg = gain(.0.serving_gain),
        compared = .0.compared,
        share = .0.share * 100.0,
        new = .0.candidate_rmse,
        old = .0.serving_rmse,
        allowed = .0.allowed * 100.0,
        version = .0.serving_version,
    )]
    Gate(GateReport),
    /// The new model could not be saved, so it does not serve.
    #[error("cannot save the model: {0}")]
    Save(StoreError),
    /// The model store could not be read or changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A rollback with no model serving.
    #[error("no model is serving")]
    NotServing,
    /// A rollback with nothing to go back to.
    #[error("no earlier model to roll back to from version {serving}{}", skipped_list(.skipped))]
    NoEarlierModel {
        /// The serving version.
        serving: u64,
        /// The earlier saved models and why none could serve.
        skipped: Vec<(u64, Unusable)>,
    },
    /// The job's thread panicked.
    #[error("the job panicked: {0}")]
    Panicked(String),
    /// The job's task ended without an outcome (the runtime shut down).
    #[error("the job stopped unexpectedly: {0}")]
    Lost(String),
    /// `DELETE /admin/jobs/{id}` or shutdown stopped it.
    #[error("cancelled")]
    Cancelled,
}

/// ` (version 3: reason; version 2: reason)`, or nothing.
fn skipped_list(skipped: &[(u64, Unusable)]) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    let each: Vec<String> = skipped
        .iter()
        .map(|(version, why)| format!("version {version}: {why}"))
        .collect();
    format!(" ({})", each.join("; "))
}
