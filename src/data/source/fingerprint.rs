//! What identifies the content of a snapshot: a SHA-256, hex, of what the source read.
//!
//! Must not import: the sources (they import it).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What identifies the content of a snapshot: a model serves again only with a snapshot of the
/// same fingerprint. A SHA-256, hex; of the bytes of a file (a database source would hash the
/// rows it read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The SHA-256 of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Self {
        Self::from(Sha256::new_with_prefix(bytes))
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Sha256> for Fingerprint {
    /// The digest of what `hasher` was fed.
    fn from(hasher: Sha256) -> Self {
        Self(
            hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
