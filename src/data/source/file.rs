//! A snapshot file on the local disk, in any format `data::load` reads, with an optional titles
//! file. Its fingerprint is the SHA-256 of its bytes, worked out as they are read (a Parquet
//! file's too: it is read whole, through the same hashing reader). A file that changes while it
//! is read (it grows, or is replaced) is an error, not a model of half the data.
//!
//! Must not import: the other sources, anything above `src/data`.

use std::path::Path;
use std::time::SystemTime;

use super::error::SourceError;
use super::fingerprint::Fingerprint;
use super::titles::{Titles, read_titles};
use crate::data::{DataError, Guard, LoadOptions, Snapshot};

/// Reads the snapshot at `path` as `options` say, the titles at `titles`, and the file's
/// SHA-256; stops with [`DataError::Cancelled`] once the guard's stop says so, and refuses a
/// snapshot over its budget before reading it whole.
pub(super) fn load(
    path: &Path,
    options: LoadOptions,
    titles: Option<&Path>,
    guard: Guard<'_>,
) -> Result<(Snapshot, Titles, Fingerprint), SourceError> {
    let before = Stamp::of(path)?;
    // A file still being written often ends in half a line: say it changed rather than report
    // that line.
    let read = crate::data::load_hashed(path, options, guard)
        .map(|(s, hasher)| (s, Fingerprint::from(hasher)))
        .map_err(SourceError::from);
    // A read stopped half-way is that, even if the file changed meanwhile (a FIFO always does).
    let read = match read {
        Err(e @ SourceError::Data(DataError::Cancelled { .. })) => return Err(e),
        other => other,
    };
    if let Some(what) = before.change(&Stamp::of(path)?) {
        return Err(SourceError::Changed {
            path: path.display().to_string(),
            what,
        });
    }
    let (snapshot, fingerprint) = read?;
    let titles = match titles {
        Some(t) => read_titles(t)?,
        None => Titles::default(),
    };
    Ok((snapshot, titles, fingerprint))
}

/// What tells one version of a file from the next: size, modification time, and (on Unix)
/// the inode, which a replace-by-rename changes.
#[derive(Debug, PartialEq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Result<Self, DataError> {
        let meta = std::fs::metadata(path).map_err(|source| DataError::Io {
            path: path.to_owned(),
            source,
        })?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }

    /// What changed between `self` and `later`, if anything.
    fn change(&self, later: &Self) -> Option<String> {
        if self.inode != later.inode {
            Some("it was replaced".into())
        } else if self.len != later.len {
            Some(format!("{} bytes, then {}", self.len, later.len))
        } else if self.modified != later.modified {
            Some("it was written to".into())
        } else {
            None
        }
    }
}
