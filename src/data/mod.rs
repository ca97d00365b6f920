//! Ratings: the sparse in-memory form, the id maps, splits, the snapshot formats on disk, and
//! the ratings sources ([`Source`]: where a snapshot comes from and what identifies it).
//!
//! Nothing here knows about mixtures, the service, HTTP or async runtimes: this module turns
//! files into [`Snapshot`]s (or refuses them with an error naming file, line and problem) and
//! back. Must not import anything above it.

mod binary;
mod collect;
mod error;
mod fields;
mod format;
mod ids;
mod lines;
mod load;
mod matrix;
mod parquet;
mod ratings;
mod source;
mod split;
mod triples;
mod write;

pub use self::parquet::{Columns, write_parquet};
pub use binary::{MAGIC, write_binary};
pub use collect::Duplicates;
pub use error::{DataError, Problem};
pub use format::Format;
pub use ids::{Id, IdMap, NameIndex};
pub use load::{LoadOptions, load, load_bytes, load_hashed, load_str, load_until};

pub(crate) use ratings::balanced_cuts;
pub use ratings::{Ratings, RatingsBuilder};
pub use source::{
    Fingerprint, Loaded, Password, PostgresError, Source, SourceError, Target, Titles, UpsertError,
    check_postgres_url, parse_titles, split_password,
};
pub use split::{Held, Split, clipped_rmse, holdout, k_fold};
pub use write::{write_matrix, write_triples};

use std::path::PathBuf;

/// Asked as a long read goes on (every few thousand lines, every MiB): `true` stops it with
/// [`DataError::Cancelled`]. A job passes its cancellation flag and the service's shutdown.
pub type Stop<'a> = &'a (dyn Fn() -> bool + Sync);

/// A [`Stop`] that never stops.
pub const NEVER: Stop<'static> = &|| false;

/// A bound on the memory a snapshot may take once loaded and trained on, checked as it is
/// read (every few thousand lines) from the ratings seen so far and the bytes left to read:
/// a snapshot over it is refused with [`DataError::TooLarge`] before it is read whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The bound, in bytes.
    pub max_bytes: u64,
    /// Bytes one rating takes, loaded and trained on (measured; see the README).
    pub bytes_per_rating: u64,
}

impl Budget {
    /// [`DataError::TooLarge`] when `ratings` would take more than the bound.
    pub fn check(&self, ratings: u64, path: &std::path::Path) -> Result<(), DataError> {
        let estimate = ratings.saturating_mul(self.bytes_per_rating);
        if estimate <= self.max_bytes {
            return Ok(());
        }
        Err(DataError::TooLarge {
            path: path.to_owned(),
            ratings,
            estimate,
            limit: self.max_bytes,
        })
    }
}

/// What a long read checks as it goes: a stop flag and a memory bound.
#[derive(Clone, Copy)]
pub struct Guard<'a> {
    /// Asked every few thousand lines.
    pub stop: Stop<'a>,
    /// The memory bound, if any.
    pub budget: Option<Budget>,
}

impl Guard<'_> {
    /// Neither stops nor bounds.
    pub const NONE: Guard<'static> = Guard {
        stop: NEVER,
        budget: None,
    };
}

/// The closed interval of valid ratings, e.g. 1..=5 stars.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RatingScale {
    /// Smallest valid rating.
    pub min: f64,
    /// Largest valid rating.
    pub max: f64,
}

impl RatingScale {
    /// Whether `x` is a finite number inside the scale.
    pub fn contains(&self, x: f64) -> bool {
        x.is_finite() && x >= self.min && x <= self.max
    }

    /// `x` clipped into the scale.
    pub fn clip(&self, x: f64) -> f64 {
        x.clamp(self.min, self.max)
    }
}

impl std::str::FromStr for RatingScale {
    type Err = String;

    /// Parses `MIN:MAX`, e.g. `1:5`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (lo, hi) = s
            .split_once(':')
            .ok_or_else(|| format!("expected MIN:MAX, got {s:?}"))?;
        let parse = |t: &str| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("{t:?} is not a finite number"))
        };
        let (min, max) = (parse(lo)?, parse(hi)?);
        if min >= max {
            return Err(format!("scale {s:?} is empty: MIN must be below MAX"));
        }
        Ok(Self { min, max })
    }
}

/// A loaded ratings snapshot: sparse ratings plus the ids they came with.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Ratings by user row, items by column index.
    pub ratings: Ratings,
    /// User ids, indexed like the rows of `ratings`.
    pub users: IdMap,
    /// Item ids, indexed like the columns of `ratings`.
    pub items: IdMap,
    /// The rating scale: given when loading, else the observed min and max.
    pub scale: RatingScale,
    /// The format the file was read as (never [`Format::Auto`]).
    pub format: Format,
    /// Where the snapshot was read from (`<memory>` for strings).
    pub path: PathBuf,
    /// Ratings replaced by a later re-rating of the same pair ([`Duplicates::Latest`]).
    pub replaced: usize,
}
