//! Where ratings come from: the one place that turns a [`Source`] into a [`Loaded`] snapshot
//! (ratings, ids, display titles) with the [`Fingerprint`] that identifies what was read.
//!
//! Each kind of source is a file of its own here (`file.rs`, `embedded.rs`, `postgres.rs`); a
//! new one is one more file, one more variant of [`Source`] and the configuration that names
//! it (`SnapshotSettings::source` in `src/config.rs`). A file format (Parquet) is not a
//! source: `file.rs` reads every format `data::load` knows. Callers never
//! look inside a source: they [`Source::load`] it, [`Source::name`] it, and compare
//! fingerprints.
//!
//! Must not import: anything above `src/data` (models, the service, configuration, web or async
//! types).

mod embedded;
mod error;
mod file;
mod fingerprint;
mod pgtypes;
mod postgres;
mod titles;
mod upsert;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use error::{PostgresError, SourceError};
pub use fingerprint::Fingerprint;
pub use postgres::{Password, check_url as check_postgres_url, split_password};
pub use titles::{Titles, parse_titles};
pub use upsert::{Target, UpsertError};

use super::{Columns, Duplicates, Format, Guard, LoadOptions, Snapshot};

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
        /// What a re-rating gives (model files older than the setting: an error).
        #[serde(default)]
        duplicates: Duplicates,
        /// The columns of a Parquet file (model files older than the setting: the default).
        #[serde(default)]
        columns: Columns,
    },
    /// A PostgreSQL query giving `user_id, item_id, rating[, timestamp]`.
    Postgres {
        /// The connection URL, without its password.
        url: String,
        /// The query.
        query: String,
        /// What a re-rating gives.
        duplicates: Duplicates,
        /// Optional `item_id,title` CSV.
        titles: Option<PathBuf>,
        /// The password the configured URL held: never saved (a model file's source has
        /// none: [`Source::with_password_of`] takes the configured one), never printed.
        #[serde(skip)]
        password: Option<Password>,
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
                duplicates,
                columns,
            } => {
                let options = LoadOptions {
                    format: *format,
                    scale: None,
                    duplicates: *duplicates,
                    columns: columns.clone(),
                };
                file::load(path, options, titles.as_deref(), guard)?
            }
            Self::Postgres {
                url,
                query,
                duplicates,
                titles,
                password,
            } => {
                let query = postgres::Query {
                    url,
                    password: password.as_ref(),
                    query,
                    duplicates: *duplicates,
                    titles: titles.as_deref(),
                };
                postgres::load(&query, guard)?
            }
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
            Self::Postgres { url, .. } => url.clone(),
        }
    }

    /// Upserts `ratings` (item id, rating) of `user` into `target` in one transaction: all are
    /// committed when this returns `Ok`, none otherwise. Only a database takes writes.
    pub fn upsert(
        &self,
        target: &Target,
        user: &str,
        ratings: &[(String, f64)],
    ) -> Result<(), UpsertError> {
        let Self::Postgres {
            url,
            query,
            duplicates,
            password,
            ..
        } = self
        else {
            return Err(UpsertError::ReadOnly);
        };
        let q = postgres::Query {
            url,
            password: password.as_ref(),
            query,
            duplicates: *duplicates,
            titles: None,
        };
        upsert::upsert(&q, target, user, ratings)
    }

    /// What a re-rating gives with this source.
    pub fn duplicates(&self) -> Duplicates {
        match self {
            Self::Embedded => Duplicates::Error,
            Self::File { duplicates, .. } | Self::Postgres { duplicates, .. } => *duplicates,
        }
    }

    /// This source with the password of `configured` when both read the same database as the
    /// same user (a source read back from a model file has none).
    pub fn with_password_of(mut self, configured: &Source) -> Self {
        if let (
            Self::Postgres { url, password, .. },
            Self::Postgres {
                url: same,
                password: given,
                ..
            },
        ) = (&mut self, configured)
            && url == same
            && password.is_none()
        {
            password.clone_from(given);
        }
        self
    }
}

/// A snapshot read for training.
#[derive(Debug)]
pub struct Loaded {
    /// Where it came from.
    pub source: Source,
    /// The ratings and ids.
    pub snapshot: Snapshot,
    /// Display titles and attributes by item id.
    pub titles: Titles,
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
            duplicates: Duplicates::Error,
            columns: Default::default(),
        };
        let loaded = source.load().unwrap();
        assert_eq!(loaded.fingerprint, Fingerprint::sha256(text.as_bytes()));
        assert_eq!(loaded.snapshot.format, Format::Triples);
        assert_eq!(source.name(), path.display().to_string());
    }

    #[test]
    fn a_file_re_rating_is_refused_or_the_latest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        // u1 rates m1 at time 20, then again at time 10: the earlier line is the latest.
        std::fs::write(&path, "u1,m1,5,20\nu2,m1,3,15\nu1,m1,1,10\n").unwrap();
        let source = |duplicates| Source::File {
            path: path.clone(),
            format: Format::Auto,
            titles: None,
            duplicates,
            columns: Default::default(),
        };
        let err = source(Duplicates::Error).load().unwrap_err().to_string();
        assert!(
            err.ends_with(":3: duplicate rating of item \"m1\" by user \"u1\" (first on line 1)"),
            "{err}"
        );
        let loaded = source(Duplicates::Latest).load().unwrap();
        assert_eq!(loaded.snapshot.ratings.get(0, 0), Some(5.0));
        assert_eq!(loaded.snapshot.replaced, 1);
        assert_eq!(source(Duplicates::Latest).duplicates(), Duplicates::Latest);
    }

    #[test]
    fn a_model_files_source_borrows_the_configured_password() {
        let (url, password) = split_password("postgres://u:pw@db/r");
        let configured = Source::Postgres {
            url: url.clone(),
            query: "q".into(),
            duplicates: Duplicates::Latest,
            titles: None,
            password,
        };
        let saved: Source =
            serde_json::from_str(&serde_json::to_string(&configured).unwrap()).unwrap();
        assert!(!serde_json::to_string(&saved).unwrap().contains("pw"));
        assert_ne!(saved, configured);
        assert_eq!(saved.clone().with_password_of(&configured), configured);
        let other = Source::Postgres {
            url: "postgres://u@elsewhere/r".into(),
            query: "q".into(),
            duplicates: Duplicates::Latest,
            titles: None,
            password: split_password("postgres://u:pw@elsewhere/r").1,
        };
        assert_ne!(saved.with_password_of(&other), configured);
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let source = Source::File {
            path: "/nonexistent/ratings.csv".into(),
            format: Format::Auto,
            titles: None,
            duplicates: Duplicates::Error,
            columns: Default::default(),
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
