//! The catalogue a model serves with: the ids, titles and ratings of the snapshot it was
//! trained on (item and user ids to indices and back).
//!
//! Must not import: the rest of `src/serving`, web or async types.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::data::{IdMap, Ratings, Snapshot};

/// Users, items, titles and the ratings of the snapshot.
#[derive(Debug, Clone)]
pub struct Catalogue {
    users: IdMap,
    items: IdMap,
    ratings: Ratings,
    titles: HashMap<String, String>,
}

impl Catalogue {
    /// The catalogue of `snapshot`, with display titles by item id.
    pub fn new(snapshot: Snapshot, titles: HashMap<String, String>) -> Self {
        Self {
            users: snapshot.users,
            items: snapshot.items,
            ratings: snapshot.ratings,
            titles,
        }
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    /// The id of item index `l`.
    pub fn item_id(&self, l: u32) -> Cow<'_, str> {
        self.items.name(l as usize)
    }

    /// The title of item `id`, if known.
    pub fn title(&self, id: &str) -> Option<&str> {
        self.titles.get(id).map(String::as_str)
    }

    /// The index of item `id`.
    pub fn item_index(&self, id: &str) -> Option<u32> {
        self.items.index(id).map(|l| l as u32)
    }

    /// The index of snapshot user `id`.
    pub fn user_index(&self, id: &str) -> Option<usize> {
        self.users.index(id)
    }

    /// Snapshot user `u`'s ratings: (item indices, values).
    pub fn user_ratings(&self, u: usize) -> (&[u32], &[f32]) {
        self.ratings.row(u)
    }

    /// Item indices `offset..offset + limit` (clipped to the catalogue).
    pub fn page(&self, offset: usize, limit: usize) -> std::ops::Range<u32> {
        let end = offset.saturating_add(limit).min(self.n_items());
        offset.min(end) as u32..end as u32
    }
}
