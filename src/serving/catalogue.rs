//! The catalogue a model serves with: the ids, titles and ratings of the snapshot it was
//! trained on (item and user ids to indices and back), and what onboarding needs of it (each
//! item's rating share and the scale's steps, [`Askable`]).
//!
//! Must not import: the rest of `src/serving`, web or async types.

use std::borrow::Cow;

use crate::data::{Format, IdMap, RatingScale, Ratings, Snapshot, Titles};
use crate::onboard::Askable;

/// Users, items, titles and the ratings of the snapshot.
#[derive(Debug, Clone)]
pub struct Catalogue {
    users: IdMap,
    items: IdMap,
    ratings: Ratings,
    titles: Titles,
    step: Option<f64>,
    /// Rating shares and the scale's steps, for onboarding (one pass over the ratings, here
    /// on the training thread rather than in a request).
    askable: Askable,
    scale: RatingScale,
}

impl Catalogue {
    /// The catalogue of `snapshot`, with display titles by item id.
    pub fn new(snapshot: Snapshot, titles: Titles) -> Self {
        // Once here, not per request: it reads every rating.
        let step = snapshot.ratings.step();
        let scale = snapshot.scale;
        Self {
            askable: Askable::new(&snapshot.ratings, snapshot.scale),
            users: snapshot.users,
            items: snapshot.items,
            ratings: snapshot.ratings,
            titles,
            step,
            scale,
        }
    }

    /// The snapshot's ratings, (n_users, n_items) sparse.
    pub fn ratings(&self) -> &Ratings {
        &self.ratings
    }

    /// The snapshot again (a copy), as a binary snapshot would hold it: what a trainer
    /// publishes for its replicas.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            ratings: self.ratings.clone(),
            users: self.users.clone(),
            items: self.items.clone(),
            scale: self.scale,
            format: Format::Binary,
            path: "<catalogue>".into(),
            replaced: 0,
        }
    }

    /// Display titles and attributes by item id.
    pub fn titles(&self) -> &Titles {
        &self.titles
    }

    /// The grid the snapshot's ratings lie on (1 or 0.5), if any: see
    /// [`crate::data::Ratings::step`].
    pub fn step(&self) -> Option<f64> {
        self.step
    }

    /// Each item's rating share and the scale's steps: what [`crate::onboard::ask`] reads.
    pub fn askable(&self) -> &Askable {
        &self.askable
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
        self.titles.title(id)
    }

    /// The other columns of the titles file for item `id` (genres, ...), if any.
    pub fn attributes(&self, id: &str) -> Option<&std::collections::BTreeMap<String, String>> {
        self.titles.attributes(id)
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
