//! The catalogue a model serves with: the ids, titles and ratings of the snapshot it was
//! trained on (item and user ids to indices and back), and what onboarding needs of it (each
//! item's rating share and the scale's steps, [`Askable`]).
//!
//! Must not import: the rest of `src/serving`, web or async types.

use std::borrow::Cow;

use crate::data::{Format, Id, IdMap, RatingScale, Ratings, Snapshot, Titles};
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

    /// The id of item `l` as an answer writes it: no string is made for a positional id.
    pub fn item(&self, l: u32) -> Id<'_> {
        self.items.id(l as usize)
    }

    /// The title of item `l`, if known (a positional id is spelled out only when there are
    /// titles to look it up in).
    pub fn item_title(&self, l: u32) -> Option<&str> {
        match self.item(l) {
            Id::Name(id) => self.title(id),
            Id::Position(_) if self.titles.titles.is_empty() => None,
            Id::Position(i) => self.title(&i.to_string()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue(items: IdMap, titles: &[(&str, &str)]) -> Catalogue {
        let snapshot = Snapshot {
            ratings: Ratings::from_dense_rows(&[vec![1.0, 0.0, 5.0], vec![0.0, 2.0, 3.0]]),
            users: IdMap::Positional(2),
            items,
            scale: RatingScale { min: 1.0, max: 5.0 },
            format: Format::Binary,
            path: "<memory>".into(),
            replaced: 0,
        };
        let titles = Titles {
            titles: titles
                .iter()
                .map(|&(id, t)| (id.to_owned(), t.to_owned()))
                .collect(),
            ..Titles::default()
        };
        Catalogue::new(snapshot, titles)
    }

    #[test]
    fn an_item_s_id_and_title_are_looked_up_by_index() {
        // Positional ids: titled by their digits when there are titles, untitled without.
        let c = catalogue(IdMap::Positional(3), &[("2", "Two")]);
        assert_eq!(c.item(2), Id::Position(2));
        assert_eq!((c.item_title(2), c.item_title(1)), (Some("Two"), None));
        let c = catalogue(IdMap::Positional(3), &[]);
        assert_eq!(c.item_title(2), None);
        // Named ids borrowed from the map.
        let names = IdMap::named(vec!["a".into(), "b".into(), "c".into()]);
        let c = catalogue(names, &[("b", "Bee"), ("2", "not an id here")]);
        assert_eq!(c.item(1), Id::Name("b"));
        assert_eq!((c.item_title(1), c.item_title(2)), (Some("Bee"), None));
    }
}
