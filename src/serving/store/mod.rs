//! Model stores: where trained models are kept so they outlive the process and can be rolled
//! back to. [`ModelStore`] is what the lifecycle asks of a store; [`DirStore`] keeps models as
//! files in a directory, [`ObjectStore`] as objects in an S3 bucket shared by a trainer and its
//! replicas. Every store writes and reads the same self-checking bytes
//! ([`format`]); a new kind of store (object storage) is one file implementing the trait over
//! them.
//!
//! The catalogue (ids, titles, the users' ratings) is not stored with a model: it is the
//! snapshot, which the [`Manifest`] names by source and fingerprint. A store with replicas
//! publishes it beside the models, once per snapshot ([`ModelStore::publish`]), since a replica
//! has no snapshot of its own. A model comes back into service only with the
//! very snapshot it was trained on. A model rolled back from is kept for inspection and never
//! loaded again.
//!
//! Must not import: the registry, jobs, training, web or async types.

mod dir;
pub mod format;
mod object;

use serde::{Deserialize, Serialize};

pub use dir::DirStore;
pub use object::ObjectStore;

use super::catalogue::Catalogue;
use super::info::ModelInfo;
use crate::config::TrainingSettings;
use crate::data::{Fingerprint, Snapshot, Source, Titles};
use crate::predictor::{DecodeError, Layout, Predictor};

/// What the lifecycle asks of a model store. One process writes a store at a time.
pub trait ModelStore: std::fmt::Debug + Send + Sync {
    /// Where the models are (a directory, an `s3://` URL), for listings and logs.
    fn location(&self) -> String;

    /// Writes `model`, trained on `source` with `training`, as version `info.version`: all or
    /// nothing; a reader never sees half a model. Returns where it went.
    fn save(
        &self,
        source: &Source,
        training: &TrainingSettings,
        info: &ModelInfo,
        model: &Predictor,
    ) -> Result<String, StoreError>;

    /// Reads and checks version `version`.
    fn load(&self, version: u64) -> Result<(Manifest, Predictor), StoreError>;

    /// Every model the store holds, newest version first, each checked in full.
    fn entries(&self) -> Result<Vec<Entry>, StoreError>;

    /// The versions a model may be served from (not rolled back), newest first; each is
    /// checked when it is loaded.
    fn candidates(&self) -> Result<Vec<u64>, StoreError>;

    /// The highest version the store holds (valid or not), 0 for none: a new model takes a
    /// higher one, so nothing is ever overwritten.
    fn newest_version(&self) -> Result<u64, StoreError>;

    /// Whether version `version` is held and not rolled back from.
    fn holds(&self, version: u64) -> bool;

    /// Marks version `version` as rolled back from: never loaded again.
    fn mark_rolled_back(&self, version: u64) -> Result<(), StoreError>;

    /// Deletes all but the newest models the store keeps, sparing the versions in `protect`;
    /// returns where the deleted ones were.
    fn prune(&self, protect: &[u64]) -> Result<Vec<String>, StoreError>;

    /// Makes saved version `version`, trained on snapshot `fingerprint` and served with
    /// `catalogue`, the model replicas serve: the catalogue is written whole first (once per
    /// snapshot), then the pointer moves. A store no other process reads (a directory) has
    /// nothing to do.
    fn publish(
        &self,
        version: u64,
        fingerprint: &Fingerprint,
        catalogue: &Catalogue,
    ) -> Result<(), StoreError> {
        let _ = (version, fingerprint, catalogue);
        Ok(())
    }

    /// The published version, `None` before the first publish.
    fn published(&self) -> Result<Option<u64>, StoreError> {
        Err(StoreError::new(
            self.location(),
            StoreFault::Unsupported("publish models"),
        ))
    }

    /// The published catalogue of snapshot `fingerprint`: its snapshot and titles.
    fn catalogue(&self, fingerprint: &Fingerprint) -> Result<(Snapshot, Titles), StoreError> {
        let _ = fingerprint;
        Err(StoreError::new(
            self.location(),
            StoreFault::Unsupported("publish catalogues"),
        ))
    }
}

/// What a stored model says about itself: enough to list it and to decide whether it may
/// serve, without the parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The model's version.
    pub version: u64,
    /// When it was written (RFC 3339, UTC).
    pub created: String,
    /// Where the snapshot came from: the model serves again only with it.
    pub source: Source,
    /// The training settings it was trained with.
    pub training: TrainingSettings,
    /// What `GET /v1/model` reports: snapshot fingerprint, K, training figures.
    pub info: ModelInfo,
    /// How the parameters are laid out.
    pub layout: Layout,
}

/// One model of a store, as listed.
#[derive(Debug)]
pub struct Entry {
    /// Its version.
    pub version: u64,
    /// Where it is (a file).
    pub location: String,
    /// Whether it was rolled back from.
    pub rolled_back: bool,
    /// Its manifest, or why it cannot be used (bad checksum, torn, unreadable).
    pub manifest: Result<Manifest, StoreFault>,
}

/// A model store operation that failed, and where.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {fault}")]
pub struct StoreError {
    /// The file or directory.
    pub location: String,
    /// What went wrong.
    pub fault: StoreFault,
}

/// What went wrong with a store or one of its models.
#[derive(Debug, thiserror::Error)]
pub enum StoreFault {
    /// The operating system refused.
    #[error("cannot {action}: {source}")]
    Io {
        /// What was being done (`write`, `rename into place`, ...).
        action: &'static str,
        /// Why not.
        source: std::io::Error,
    },
    /// A model of that version is there already.
    #[error("a model with this version exists")]
    Exists,
    /// The bytes do not start as a model does.
    #[error("not a mixrec model file (or a newer format)")]
    NotAModel,
    /// Fewer bytes than the smallest model.
    #[error("cut short ({0} bytes)")]
    CutShort(usize),
    /// No checksum line at the end.
    #[error("no checksum line at the end: the file is cut short or damaged")]
    NoChecksum,
    /// The checksum does not match the bytes.
    #[error("checksum mismatch: the file is damaged or was cut short")]
    Checksum,
    /// No manifest line.
    #[error("no manifest line")]
    NoManifest,
    /// The manifest cannot be read.
    #[error("unreadable manifest: {0}")]
    Manifest(serde_json::Error),
    /// The manifest cannot be written.
    #[error("cannot write the manifest: {0}")]
    ManifestOut(serde_json::Error),
    /// The parameters are not as long as the manifest says.
    #[error("the payload has {bytes} bytes where the manifest lists {values} values")]
    Payload {
        /// Bytes of parameters.
        bytes: usize,
        /// Values the layout lists.
        values: usize,
    },
    /// The parameters do not make a model.
    #[error(transparent)]
    Parameters(#[from] DecodeError),
    /// A published catalogue's snapshot is refused.
    #[error("the catalogue's snapshot is refused: {0}")]
    Catalogue(String),
    /// The object store refused or could not be reached.
    #[error("object store: {0}")]
    Remote(String),
    /// Not something this kind of store does.
    #[error("this model store does not {0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// `fault` at `location`.
    pub fn new(location: impl std::fmt::Display, fault: StoreFault) -> Self {
        Self {
            location: location.to_string(),
            fault,
        }
    }

    /// The operating system refused `action` at `location`.
    pub fn io(location: impl std::fmt::Display, action: &'static str, e: std::io::Error) -> Self {
        Self::new(location, StoreFault::Io { action, source: e })
    }
}
