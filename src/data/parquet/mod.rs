//! Parquet snapshots: a table with a user, an item and a rating column (and optionally a
//! timestamp), named by [`Columns`] (`snapshot.columns`), read column chunk by column chunk
//! into the row collector every reader shares (`read.rs`), and written by `mixrec convert
//! --to parquet` (`write.rs`).
//!
//! Decisions, all of them documented in the README:
//! - `auto` recognises a Parquet file by its first four bytes, `PAR1` ([`MAGIC`]).
//! - The file is read into memory once (through the reader `load_hashed` hashes, so the
//!   fingerprint stays the SHA-256 of the whole file) and parsed from that buffer: the
//!   Parquet reader needs random access (the footer first, then each column chunk), and a
//!   compressed Parquet file is far smaller than the ratings it loads into.
//! - Rows are decoded a batch at a time per column ([`BATCH`] rows), never as strings; the
//!   stop flag is asked before every batch.
//! - A NULL, a column of the wrong type or a missing column is an error naming the file, the
//!   column and the row.
//!
//! Must not import: anything above `src/data`; the other readers.

mod cells;
mod read;
mod write;

pub(super) use read::read_parquet;
pub use write::write_parquet;

use serde::{Deserialize, Serialize};

/// The first (and last) four bytes of every Parquet file.
pub const MAGIC: &[u8; 4] = b"PAR1";

/// Rows decoded per column at a time (and between two looks at the stop flag).
const BATCH: usize = 8192;

/// Rows per row group that [`write_parquet`] writes: large enough for good compression, small
/// enough that a reader holds one group's column chunks at a time.
pub const ROWS_PER_GROUP: usize = 1 << 20;

/// The columns of a Parquet snapshot: user, item, rating and an optional timestamp, by name.
/// Settings spell it as a list of three or four names (`snapshot.columns`); the default is
/// `["user_id", "item_id", "rating", "timestamp"]`. The timestamp column is used only by
/// `snapshot.duplicates = "latest"`, and only when the file has it: without it the row read
/// last wins, as in a text file without timestamps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Columns {
    /// The user id column (integers or text).
    pub user: String,
    /// The item id column (integers or text).
    pub item: String,
    /// The rating column (integers, floats or decimals).
    pub rating: String,
    /// The timestamp column (integers or timestamps), if any.
    pub stamp: Option<String>,
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            user: "user_id".into(),
            item: "item_id".into(),
            rating: "rating".into(),
            stamp: Some("timestamp".into()),
        }
    }
}

impl TryFrom<Vec<String>> for Columns {
    type Error = String;

    /// Three or four distinct, non-empty names.
    fn try_from(names: Vec<String>) -> Result<Self, Self::Error> {
        if !(3..=4).contains(&names.len()) {
            let why = "three or four column names: user, item, rating[, timestamp]";
            return Err(format!("expected {why}, got {}", names.len()));
        }
        if let Some(empty) = names.iter().position(|n| n.trim().is_empty()) {
            return Err(format!("column name {} is empty", empty + 1));
        }
        for (k, name) in names.iter().enumerate() {
            if names[..k].contains(name) {
                return Err(format!("column {name:?} is named twice"));
            }
        }
        let mut names = names.into_iter();
        let mut next = || names.next().expect("counted");
        Ok(Self {
            user: next(),
            item: next(),
            rating: next(),
            stamp: names.next(),
        })
    }
}

impl From<Columns> for Vec<String> {
    fn from(c: Columns) -> Self {
        [c.user, c.item, c.rating]
            .into_iter()
            .chain(c.stamp)
            .collect()
    }
}

impl std::str::FromStr for Columns {
    type Err = String;

    /// `user_id,item_id,rating[,timestamp]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let names: Vec<String> = s.split(',').map(|n| n.trim().to_owned()).collect();
        Self::try_from(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_or_four_distinct_names() {
        let c: Columns = "u, i ,r".parse().unwrap();
        assert_eq!(
            (c.user.as_str(), c.item.as_str(), c.rating.as_str()),
            ("u", "i", "r")
        );
        assert_eq!(c.stamp, None);
        assert_eq!(
            Vec::from(Columns::default()).join(","),
            "user_id,item_id,rating,timestamp"
        );
        assert!("u,i".parse::<Columns>().is_err());
        assert!("u,i,r,t,x".parse::<Columns>().is_err());
        assert!("u,u,r".parse::<Columns>().unwrap_err().contains("twice"));
        assert!("u,,r".parse::<Columns>().unwrap_err().contains("empty"));
    }
}
