//! The model lifecycle, below the web: the [`Registry`] (the serving model, the one it
//! replaced, the version counter, the job table, the model store and the training threads),
//! the jobs that change it (start-up, retrain, rollback: train, gate, persist, install), the
//! model in service that answers profiles ([`ServedModel`]), and the model stores
//! ([`store`]), and a replica's following of the model a trainer published ([`follow`]). The fit policy, which model is trained on a snapshot, is [`fit::fit`].
//!
//! Errors keep their kinds ([`TrainError`], [`JobError`], [`OverrideError`], [`QueryError`])
//! until the web layer maps them to a status.
//!
//! Must not import: `src/http`, `src/cli`, web types (tokio is used to run jobs off the async
//! workers, never to serve).

mod catalogue;
mod check;
mod error;
mod feedback;
pub mod fit;
mod follow;
mod fresh;
mod gate;
mod info;
mod jobs;
mod lifecycle;
mod memory;
mod overrides;
mod registry;
mod schedule;
mod served;
pub mod store;
mod tasks;
mod train;

pub use catalogue::Catalogue;
pub use check::check;
pub use error::{JobError, TrainError, Unusable};
pub use feedback::{FeedbackError, Written};
pub use follow::{PollError, follow};
pub use gate::GateReport;
pub use info::{KSelection, ModelInfo, Selection, SnapshotInfo, TypeSummary};
pub use jobs::{Busy, CancelError, Ending, Job, JobKind, JobState, KEPT_JOBS, UnknownJob};
pub use lifecycle::Started;
pub use overrides::{OverrideError, Overrides, SnapshotRefusal};
pub use registry::{OpenError, Policy, Registry};
pub use served::{Answer, Onboarding, QueryError, ServedModel, shown_id};
pub use tasks::{Retrain, Task};
pub use train::{restore, train, train_loaded, type_summaries};
