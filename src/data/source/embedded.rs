//! The demo catalogue compiled into the binary (made by `mixrec synth`, see the README), so
//! `mixrec` with no arguments has something to serve from any directory.
//!
//! Must not import: the other sources, anything above `src/data`.

use std::path::PathBuf;

use super::error::SourceError;
use super::fingerprint::Fingerprint;
use super::titles::{Titles, parse_titles};
use crate::data::{LoadOptions, Snapshot, load_str};

/// The demo ratings.
const RATINGS: &str = include_str!("../../../data/demo-ratings.csv");
/// Titles of the demo's items.
const TITLES: &str = include_str!("../../../data/demo-items.csv");
/// How the demo is named in metadata and logs.
pub(super) const NAME: &str = "embedded:data/demo-ratings.csv";
/// How its titles are named in errors.
const TITLES_NAME: &str = "embedded:data/demo-items.csv";

/// The demo snapshot, its titles, and the SHA-256 of its bytes (as the file's would be).
pub(super) fn load() -> Result<(Snapshot, Titles, Fingerprint), SourceError> {
    let mut snapshot = load_str(RATINGS, LoadOptions::default())?;
    snapshot.path = PathBuf::from(NAME);
    let titles = parse_titles(TITLES, TITLES_NAME)?;
    Ok((snapshot, titles, Fingerprint::sha256(RATINGS.as_bytes())))
}
