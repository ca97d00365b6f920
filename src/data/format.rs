//! The names of the snapshot formats, as settings, flags and metadata spell them.
//!
//! Must not import: the readers and writers (they import it).

/// The text format of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Decide from the first non-blank line.
    #[default]
    Auto,
    /// Whitespace-separated rows, one per user, one column per item, 0 = missing.
    Matrix,
    /// `user,item,rating[,timestamp]` lines (CSV, TSV or `::`), optional header.
    Triples,
    /// mixrec's binary snapshot (see `binary.rs`); `auto` recognises it by its magic bytes.
    Binary,
    /// A Parquet table with the columns `snapshot.columns` names (see `parquet/`); `auto`
    /// recognises it by its magic bytes (`PAR1`).
    Parquet,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "matrix" => Ok(Self::Matrix),
            "triples" => Ok(Self::Triples),
            "binary" => Ok(Self::Binary),
            "parquet" => Ok(Self::Parquet),
            _ => Err(format!(
                "unknown format {s:?} (auto, matrix, triples, binary or parquet)"
            )),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Matrix => "matrix",
            Self::Triples => "triples",
            Self::Binary => "binary",
            Self::Parquet => "parquet",
        })
    }
}
