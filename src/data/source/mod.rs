//! Where ratings come from: the one place that turns a [`Source`] into a [`Loaded`] snapshot
//! (ratings, ids, display titles) with the [`Fingerprint`] that identifies what was read.
//!
//! Each kind of source is a file of its own here (`file.rs`, `embedded.rs`); a new one (a
//! database table, a Parquet file) is one more file, one more variant of [`Source`] and the
//! configuration that names it (`SnapshotSettings::source` in `src/config.rs`). Callers never
//! look inside a source: they [`Source::load`] it, [`Source::name`] it, and compare
//! fingerprints.
//!
//! Must not import: anything above `src/data` (models, the service, configuration, web or async
//! types).

mod embedded;
mod error;
mod file;
mod fingerprint;
mod titles;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use error::SourceError;
pub use fingerprint::Fingerprint;
pub use titles::parse_titles;

use super::{Format, Guard, Snapshot};

/// Where a snapshot's ratings come from. Saved in every model file (so a rollback can read the
/// snapshot a model was trained on again): the serde shape is part of that format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Source {
    /// The demo catalogue compiled into the binary.
    Embedded,
    /// A snapshot file, with its format and optional titles file.
    File {
        /// Snapshot file.
        path: PathBuf,
        /// Its format.
        format: Format,
        /// Optional `item_id,title` CSV.
        titles: Option<PathBuf>,
    },
}

impl Source {
    /// Reads the snapshot, its titles and its fingerprint. Nothing is half-loaded: any fault is
    /// an error naming where it is.
    pub fn load(&self) -> Result<Loaded, SourceError> {
        self.load_until(Guard::NONE)
    }

    /// [`Source::load`], stopping with [`crate::data::DataError::Cancelled`] as soon as the
    /// guard's stop says so (it is asked as the read goes on): a job's read can be cancelled,
    /// whatever the source. A snapshot over the guard's budget is refused
    /// ([`crate::data::DataError::TooLarge`]) before it is read whole.
    pub fn load_until(&self, guard: Guard<'_>) -> Result<Loaded, SourceError> {
        let (snapshot, titles, fingerprint) = match self {
            Self::Embedded => embedded::load()?,
            Self::File {
                path,
                format,
                titles,
            } => file::load(path, *format, titles.as_deref(), guard)?,
        };
        Ok(Loaded {
            source: self.clone(),
            snapshot,
            titles,
            fingerprint,
        })
    }

    /// How the source is named in metadata, jobs and logs.
    pub fn name(&self) -> String {
        match self {
            Self::Embedded => embedded::NAME.to_owned(),
            Self::File { path, .. } => path.display().to_string(),
        }
    }
}

/// A snapshot read for training.
#[derive(Debug)]
pub struct Loaded {
    /// Where it came from.
    pub source: Source,
    /// The ratings and ids.
    pub snapshot: Snapshot,
    /// Display titles by item id.
    pub titles: HashMap<String, String>,
    /// What identifies the ratings read.
    pub fingerprint: Fingerprint,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataError;

    #[test]
    fn the_embedded_demo_loads_with_titles_and_a_fingerprint() {
        let loaded = Source::Embedded.load().unwrap();
        assert_eq!(loaded.snapshot.ratings.n_users(), 2000);
        assert_eq!(loaded.snapshot.path, PathBuf::from(embedded::NAME));
        assert_eq!(loaded.fingerprint.as_str().len(), 64);
        assert!(loaded.titles.contains_key("m001"));
        assert_eq!(Source::Embedded.name(), "embedded:data/demo-ratings.csv");
    }

    #[test]
    fn a_file_is_fingerprinted_by_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let text = "u1,m1,5\nu2,m1,3\n";
        std::fs::write(&path, text).unwrap();
        let source = Source::File {
            path: path.clone(),
            format: Format::Auto,
            titles: None,
        };
        let loaded = source.load().unwrap();
        assert_eq!(loaded.fingerprint, Fingerprint::sha256(text.as_bytes()));
        assert_eq!(loaded.snapshot.format, Format::Triples);
        assert_eq!(source.name(), path.display().to_string());
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let source = Source::File {
            path: "/nonexistent/ratings.csv".into(),
            format: Format::Auto,
            titles: None,
        };
        let err = source.load().unwrap_err();
        assert!(
            matches!(err, SourceError::Data(DataError::Io { .. })),
            "{err}"
        );
        assert!(
            err.to_string().contains("/nonexistent/ratings.csv"),
            "{err}"
        );
    }
}
