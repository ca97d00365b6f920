//! Why a source gave no snapshot: the ratings or titles could not be read, or changed while
//! they were read.
//!
//! Must not import: the sources (they import it).

use crate::data::{DataError, Problem};

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
    /// The database could not be read.
    #[error(transparent)]
    Postgres(#[from] PostgresError),
}

/// Why a PostgreSQL source gave no snapshot; each message is one line starting `postgres:`.
/// None holds the password.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The server could not be reached, or refused the login.
    #[error("postgres: cannot connect to {target}: {reason}")]
    Connect {
        /// The connection string without its password.
        target: String,
        /// The client's or the server's reason (connection refused, password authentication
        /// failed, ...).
        reason: String,
    },
    /// The server refused the query or failed while running it.
    #[error("postgres: the query failed: {reason} (snapshot.query: {query})")]
    Query {
        /// The server's reason.
        reason: String,
        /// The query.
        query: String,
    },
    /// The query gives other than three or four columns.
    #[error(
        "postgres: the query gives {found} columns; expected user_id, item_id, rating and an \
         optional timestamp"
    )]
    ColumnCount {
        /// Columns it gives.
        found: usize,
    },
    /// A column of a type the source does not read.
    #[error("postgres: column {column} ({name}) is of type {found}; expected {expected}")]
    ColumnType {
        /// 1-based column.
        column: usize,
        /// Its name in the result.
        name: String,
        /// Its type.
        found: String,
        /// What would do.
        expected: &'static str,
    },
    /// One row of the result is not a rating.
    #[error("postgres: row {row}: {problem}")]
    Row {
        /// 1-based row of the result.
        row: u64,
        /// What was wrong.
        problem: Problem,
    },
    /// A user-item pair rated twice under `snapshot.duplicates = "error"`.
    #[error(
        "postgres: row {row}: duplicate rating of item {item:?} by user {user:?} (first on row \
         {first_row}); set snapshot.duplicates = \"latest\" to keep the latest"
    )]
    Duplicate {
        /// 1-based row of the second rating.
        row: u64,
        /// 1-based row of the first.
        first_row: u64,
        /// User id.
        user: String,
        /// Item id.
        item: String,
    },
    /// The binary COPY stream broke off or is not what the columns promised.
    #[error("postgres: row {row}: {reason}")]
    Stream {
        /// 1-based row (0: the header).
        row: u64,
        /// What was wrong.
        reason: String,
    },
}
