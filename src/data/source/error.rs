//! Why a source gave no snapshot: the ratings or titles could not be read, or changed while
//! they were read.
//!
//! Must not import: the sources (they import it).

use crate::data::DataError;

/// Why a source gave no snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The ratings could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The titles could not be read.
    #[error("{path}:{line}: {reason}")]
    Titles {
        /// The file.
        path: String,
        /// 1-based line (0: the file as a whole).
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// The snapshot changed while it was being read.
    #[error("{path}: the file changed while it was being read ({what}); retry once it is complete")]
    Changed {
        /// The file.
        path: String,
        /// What changed.
        what: String,
    },
}
