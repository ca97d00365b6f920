//! Errors of snapshot loading and writing: each says which file, which line (or row and
//! column) and what was wrong.
//!
//! Must not import: anything above `src/data`, or the readers (they import it).

use std::path::PathBuf;

/// What was wrong with one line of a snapshot.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// A matrix row with a different number of columns than the first row.
    #[error("row has {found} columns, expected {expected} like the first row")]
    Ragged {
        /// Columns in the first row.
        expected: usize,
        /// Columns in this row.
        found: usize,
    },
    /// A field that is not a number.
    #[error("field {field} ({text:?}) is not a number")]
    NotANumber {
        /// 1-based field number.
        field: usize,
        /// The offending text (truncated).
        text: String,
    },
    /// NaN or an infinity.
    #[error("field {field} is not finite ({text:?})")]
    NotFinite {
        /// 1-based field number.
        field: usize,
        /// The offending text (truncated).
        text: String,
    },
    /// A finite number that a rating (stored as `f32`) cannot hold: beyond ±3.4e38, or so
    /// close to 0 that it would be stored as 0.
    #[error("field {field} ({text:?}) cannot be held as a rating (0 or 1.2e-38..3.4e38 in size)")]
    Unrepresentable {
        /// 1-based field number.
        field: usize,
        /// The offending text (truncated).
        text: String,
    },
    /// A rating outside the declared scale.
    #[error("rating {value} in field {field} is outside the scale {min}..={max}")]
    OutOfScale {
        /// 1-based field number.
        field: usize,
        /// The rating.
        value: f64,
        /// Scale minimum.
        min: f64,
        /// Scale maximum.
        max: f64,
    },
    /// A triples line without user, item and rating.
    #[error("expected user{d}item{d}rating[{d}timestamp], found {found} fields", d = .delimiter)]
    FieldCount {
        /// The delimiter in use, for the message.
        delimiter: String,
        /// Fields found.
        found: usize,
    },
    /// An empty user or item id.
    #[error("empty {what} id")]
    EmptyId {
        /// `user` or `item`.
        what: &'static str,
    },
    /// The same user rated the same item twice.
    #[error("duplicate rating of item {item:?} by user {user:?} (first on line {first_line})")]
    Duplicate {
        /// User id.
        user: String,
        /// Item id.
        item: String,
        /// Line of the first rating of the pair.
        first_line: usize,
    },
    /// A database column that is NULL (`what`: user_id, item_id or rating).
    #[error("{what} is NULL")]
    Null {
        /// Which column.
        what: &'static str,
    },
    /// A NULL in a column of a table-shaped file (Parquet), named as the file names it.
    #[error("{column} is NULL")]
    NullIn {
        /// The column.
        column: String,
    },
    /// A column of a type that cannot hold what it is read as.
    #[error("column {column} is of type {found}; expected {expected}")]
    ColumnType {
        /// The column.
        column: String,
        /// Its type.
        found: String,
        /// What would do.
        expected: &'static str,
    },
    /// The same user rated the same item twice, in a table-shaped file (Parquet).
    #[error("duplicate rating of item {item:?} by user {user:?} (first on row {first_row})")]
    DuplicateRow {
        /// User id.
        user: String,
        /// Item id.
        item: String,
        /// 1-based row of the first rating of the pair.
        first_row: u64,
    },
    /// A database field whose bytes are not what its type promises.
    #[error("{reason}")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// A blank line between matrix rows (rows are users: a gap would renumber them).
    #[error("blank line inside the matrix (an unrated user is a row of zeros)")]
    BlankLine,
    /// Text that is not UTF-8.
    #[error("line is not valid UTF-8")]
    NotUtf8,
    /// More users, items or ratings than the in-memory form can index.
    #[error("too many {0} (the limit is 4,294,967,295)")]
    TooMany(&'static str),
}

/// A snapshot that could not be loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A line of the file is malformed.
    #[error("{}:{line}: {problem}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        problem: Problem,
    },
    /// A row of a table-shaped file (Parquet) is not a rating.
    #[error("{}: row {row}: {problem}", path.display())]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based row of the file, across its row groups.
        row: u64,
        /// What was wrong.
        problem: Problem,
    },
    /// The file holds no ratings at all.
    #[error("{}: the snapshot holds no ratings", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A binary snapshot that is damaged or breaks an invariant.
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The read was stopped (a cancelled job, a shutdown) before it ended.
    #[error("{}: reading stopped: the job was cancelled or the service is shutting down", path.display())]
    Cancelled {
        /// The file.
        path: PathBuf,
    },
    /// The snapshot would take more memory than allowed; refused before it was read whole.
    #[error(
        "{}: refused before it was read whole: about {ratings} ratings would take about \
         {estimate} bytes to load and train on, above the limit of {limit} bytes \
         (training.max_memory)",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Ratings it holds, estimated from what was read and the bytes left.
        ratings: u64,
        /// The bytes they would take.
        estimate: u64,
        /// The bound.
        limit: u64,
    },
    /// The requested operation does not fit the snapshot.
    #[error("{}: {reason}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}
