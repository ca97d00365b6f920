//! Id maps: snapshot ids (strings) to dense indices and back.
//!
//! Must not import: anything above `src/data`.

use std::borrow::Cow;
use std::collections::HashMap;

/// Ids of users or items, indexed `0..len`.
///
/// Matrix snapshots name rows and columns by their 0-based position, so they need no table
/// (`Positional`); triples snapshots keep the strings they came with (`Named`).
#[derive(Debug, Clone, PartialEq)]
pub enum IdMap {
    /// Ids are the decimal indices `"0"`, `"1"`, ...
    Positional(usize),
    /// Ids are arbitrary strings, in order of first appearance.
    Named {
        /// Index to id.
        names: Vec<String>,
        /// Id to index.
        index: HashMap<String, u32>,
    },
}

impl IdMap {
    /// A map of named ids, in the given order.
    pub fn named(names: Vec<String>) -> Self {
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        Self::Named { names, index }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        match self {
            Self::Positional(n) => *n,
            Self::Named { names, .. } => names.len(),
        }
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of index `i` (which must be below `len()`).
    pub fn name(&self, i: usize) -> Cow<'_, str> {
        match self {
            Self::Positional(_) => Cow::Owned(i.to_string()),
            Self::Named { names, .. } => Cow::Borrowed(&names[i]),
        }
    }

    /// The index of `id`, if it is known. Positional ids are canonical decimals: `"07"` is not `"7"`.
    pub fn index(&self, id: &str) -> Option<usize> {
        match self {
            Self::Positional(n) => {
                // Canonical: digits only (no sign), no leading zero but in "0" itself.
                let canonical = id.bytes().all(|b| b.is_ascii_digit())
                    && (id.len() == 1 || !id.starts_with('0'));
                let i = id.parse::<usize>().ok().filter(|_| canonical)?;
                (i < *n).then_some(i)
            }
            Self::Named { index, .. } => index.get(id).map(|&i| i as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_ids_are_canonical_decimals() {
        let ids = IdMap::Positional(12);
        assert_eq!(ids.index("7"), Some(7));
        assert_eq!(ids.index("07"), None);
        assert_eq!(ids.index("12"), None);
        assert_eq!(ids.index("-1"), None);
        assert_eq!(ids.index("0"), Some(0));
        assert_eq!(ids.index("00"), None);
        assert_eq!(ids.index("+7"), None);
        assert_eq!(ids.index(""), None);
        assert_eq!(ids.index(" 7"), None);
        assert_eq!(
            IdMap::Positional(usize::MAX).index("99999999999999999999999"),
            None
        );
        assert_eq!(ids.name(11), "11");
    }

    #[test]
    fn named_ids_round_trip() {
        let ids = IdMap::named(vec!["tt01".into(), "b".into()]);
        assert_eq!(ids.len(), 2);
        assert_eq!(ids.index("b"), Some(1));
        assert_eq!(ids.index("c"), None);
        assert_eq!(ids.name(0), "tt01");
    }
}
