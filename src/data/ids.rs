//! Id maps: snapshot ids (strings) to dense indices and back.
//!
//! Must not import: anything above `src/data`.

use std::borrow::Cow;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

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
        index: NameIndex,
    },
}

/// Id to index without a second copy of the ids: positions into the names, found by the hash
/// of the name each points at (a `HashMap<String, u32>` held every id twice: at 480,000 named
/// users, tens of MB and an allocation an id). Derived from the names alone, so two maps with
/// the same names are equal whatever their indices' hash keys.
#[derive(Clone, Default)]
pub struct NameIndex {
    table: HashTable<u32>,
    hasher: RandomState,
}

impl NameIndex {
    /// The index of `names`, which must be distinct.
    fn of(names: &[String]) -> Self {
        let mut index = Self {
            table: HashTable::with_capacity(names.len()),
            hasher: RandomState::new(),
        };
        (0..names.len()).for_each(|i| index.insert_new(names, i as u32));
        index
    }

    /// The position of `id` in `names` (the names this index was made over).
    pub(crate) fn get(&self, names: &[String], id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.table.find(hash, |&i| names[i as usize] == id).copied()
    }

    /// Adds `names[i]`, which is not in the index yet.
    pub(crate) fn insert_new(&mut self, names: &[String], i: u32) {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(names[i as usize].as_str());
        self.table
            .insert_unique(hash, i, |&j| hasher.hash_one(names[j as usize].as_str()));
    }
}

impl PartialEq for NameIndex {
    /// Always: the index is a function of the names it is held beside.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for NameIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NameIndex({} ids)", self.table.len())
    }
}

impl IdMap {
    /// A map of named ids, in the given order.
    pub fn named(names: Vec<String>) -> Self {
        let index = NameIndex::of(&names);
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
        match self.id(i) {
            Id::Position(i) => Cow::Owned(i.to_string()),
            Id::Name(name) => Cow::Borrowed(name),
        }
    }

    /// The id of index `i` (which must be below `len()`) without making a string: what an
    /// answer writes out.
    pub fn id(&self, i: usize) -> Id<'_> {
        match self {
            Self::Positional(_) => Id::Position(i),
            Self::Named { names, .. } => Id::Name(&names[i]),
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
            Self::Named { names, index } => index.get(names, id).map(|i| i as usize),
        }
    }
}

/// An id as [`IdMap::id`] gives it: a position, written in decimal, or a borrowed name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id<'a> {
    /// The decimal id of this index.
    Position(usize),
    /// A named id.
    Name(&'a str),
}

impl std::fmt::Display for Id<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Position(i) => write!(f, "{i}"),
            Self::Name(name) => f.write_str(name),
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
        // Borrowed, written the same as the name.
        assert_eq!(ids.id(11), Id::Position(11));
        assert_eq!(ids.id(11).to_string(), ids.name(11));
    }

    #[test]
    fn named_ids_round_trip() {
        let ids = IdMap::named(vec!["tt01".into(), "b".into()]);
        assert_eq!(ids.len(), 2);
        assert_eq!(ids.index("b"), Some(1));
        assert_eq!(ids.index("c"), None);
        assert_eq!(ids.name(0), "tt01");
        assert_eq!(ids.id(0), Id::Name("tt01"));
        assert_eq!(ids.id(1).to_string(), "b");
        // Many: every id found at its position, none of the absent ones; two maps of the same
        // names (indices with other hash keys) are equal, of other names not.
        let names: Vec<String> = (0..20_000).map(|i| format!("user-{i}")).collect();
        let many = IdMap::named(names.clone());
        assert!((0..20_000).all(|i| many.index(&format!("user-{i}")) == Some(i)));
        assert!((20_000..20_100).all(|i| many.index(&format!("user-{i}")).is_none()));
        assert_eq!(many.index("user-"), None);
        assert_eq!(IdMap::named(names.clone()), many);
        assert_ne!(IdMap::named(names[1..].to_vec()), many);
    }
}
