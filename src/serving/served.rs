//! The model in service: a trained [`Predictor`] with the catalogue it was trained on, answering
//! profile queries by *id* (completion, top-N, a known user's top-N, the onboarding questions)
//! and refusing bad ones with a [`QueryError`]. The HTTP layer only converts DTOs to and from these calls.
//!
//! Must not import: the lifecycle (registry, jobs, store), web or async types.

use std::collections::BTreeMap;

use crate::mixture::{Prediction, ProfileError};
use crate::onboard::{self, Question};
use crate::predictor::{Predictor, Prepared};

use super::catalogue::Catalogue;
use super::info::{ModelInfo, TypeSummary};

/// Unknown ids named in an error message, at most.
const NAMED_IDS: usize = 5;
/// Characters of an id quoted in an error message, at most (ids come from requests).
const SHOWN_ID_CHARS: usize = 64;

/// A query the model cannot answer as asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// Item ids not in the catalogue (the first few, and how many in all).
    #[error("{count} unknown item id(s): {}", .ids.join(", "))]
    UnknownItems {
        /// Up to five of them.
        ids: Vec<String>,
        /// All of them.
        count: usize,
    },
    /// A rating outside the model's scale.
    #[error("rating {value} of item {item:?} is outside the scale {min}..={max}")]
    OutOfScale {
        /// The item id.
        item: String,
        /// The rating.
        value: f64,
        /// Scale minimum.
        min: f64,
        /// Scale maximum.
        max: f64,
    },
    /// `n` outside `1..=max`.
    #[error("n must be between 1 and {max}, got {n}")]
    BadN {
        /// Asked.
        n: i64,
        /// The configured maximum.
        max: usize,
    },
    /// A user id not in the snapshot.
    #[error("unknown user id {0:?}")]
    UnknownUser(String),
    /// The engine refused a resolved profile (a bug if it happens: ids were checked).
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

/// Predictions for one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// (type, probability), most likely first.
    pub posterior: Vec<(usize, f64)>,
    /// Item predictions (item order for completion, best first for top-N).
    pub items: Vec<Prediction>,
}

/// The questions for one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Onboarding {
    /// (type, probability), most likely first.
    pub posterior: Vec<(usize, f64)>,
    /// The items worth asking, best first.
    pub questions: Vec<Question>,
}

/// A trained model, its metadata and its catalogue: what the service swaps in whole.
#[derive(Debug, Clone)]
pub struct ServedModel {
    model: Predictor,
    /// What the model's recommendations read faster than the model itself (built once).
    prepared: Prepared,
    info: ModelInfo,
    catalogue: Catalogue,
    types: Vec<TypeSummary>,
    /// The posted-ratings writes its snapshot's read began after (see
    /// `Registry::feedback`); `None`: not read from the configured source.
    feedback_seen: Option<u64>,
}

impl ServedModel {
    /// Bundles a model with what it was trained on.
    pub fn new(
        model: Predictor,
        info: ModelInfo,
        catalogue: Catalogue,
        types: Vec<TypeSummary>,
    ) -> Self {
        Self {
            prepared: model.prepare(),
            model,
            info,
            catalogue,
            types,
            feedback_seen: None,
        }
    }

    /// This model, read from the configured source after `seen` posted-ratings writes.
    pub fn with_feedback_seen(mut self, seen: u64) -> Self {
        self.feedback_seen = Some(seen);
        self
    }

    /// The posted-ratings writes its snapshot holds, if read from the configured source.
    pub fn feedback_seen(&self) -> Option<u64> {
        self.feedback_seen
    }

    /// The trained model.
    pub fn predictor(&self) -> &Predictor {
        &self.model
    }

    /// Metadata.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The valid ratings of a profile; predictions lie inside it too.
    pub fn scale(&self) -> crate::data::RatingScale {
        self.model.scale()
    }

    /// Per-type summaries, type order.
    pub fn types(&self) -> &[TypeSummary] {
        &self.types
    }

    /// Completion of a profile: every unrated item, or just `only`.
    pub fn complete(
        &self,
        ratings: &[(&str, f64)],
        only: Option<&[String]>,
    ) -> Result<Answer, QueryError> {
        let profile = self.resolve(ratings)?;
        let post = self.model.posterior_prepared(&self.prepared, &profile)?;
        let items = match only {
            Some(ids) => self
                .indices(ids.iter().map(String::as_str))?
                .into_iter()
                .map(|l| self.model.predict(&post, l))
                .collect(),
            None => self.model.complete(&post, &rated(&profile)),
        };
        Ok(Answer {
            posterior: ranked(&post),
            items,
        })
    }

    /// The best `n` items outside the profile and `exclude`, best first.
    pub fn recommend(
        &self,
        ratings: &[(&str, f64)],
        n: i64,
        max_n: usize,
        exclude: &[String],
    ) -> Result<Answer, QueryError> {
        let n = check_n(n, max_n)?;
        let profile = self.resolve(ratings)?;
        let mut skip = self.indices(exclude.iter().map(String::as_str))?;
        skip.extend(rated(&profile));
        let post = self.model.posterior_prepared(&self.prepared, &profile)?;
        Ok(Answer {
            items: self
                .model
                .recommend_prepared(&self.prepared, &post, n, &skip),
            posterior: ranked(&post),
        })
    }

    /// The `n` unrated, unexcluded items whose answers are expected to tell the most about the
    /// user's type, weighed by how likely the user knows them ([`crate::onboard`]).
    pub fn onboarding(
        &self,
        ratings: &[(&str, f64)],
        n: i64,
        max_n: usize,
        exclude: &[String],
    ) -> Result<Onboarding, QueryError> {
        let n = check_n(n, max_n)?;
        let profile = self.resolve(ratings)?;
        let mut skip = self.indices(exclude.iter().map(String::as_str))?;
        skip.extend(rated(&profile));
        let belief = self.model.posterior_prepared(&self.prepared, &profile)?;
        let askable = self.catalogue.askable();
        Ok(Onboarding {
            questions: onboard::ask_prepared(
                &self.model,
                &self.prepared,
                &belief,
                &profile,
                askable,
                n,
                &skip,
            ),
            posterior: ranked(&belief),
        })
    }

    /// The best `n` items a snapshot user has not rated.
    pub fn user_recommendations(
        &self,
        user: &str,
        n: i64,
        max_n: usize,
    ) -> Result<Answer, QueryError> {
        self.user_recommendations_with(user, None, n, max_n)
    }

    /// The best `n` items for `user`, from their snapshot ratings with `fresh` (item id →
    /// rating, posted since) folded in: a posted rating replaces the snapshot's, an item this
    /// model does not know is left out, and a user the snapshot lacks is known by `fresh`
    /// alone. No rated item is recommended.
    pub fn user_recommendations_with(
        &self,
        user: &str,
        fresh: Option<&BTreeMap<String, f64>>,
        n: i64,
        max_n: usize,
    ) -> Result<Answer, QueryError> {
        let n = check_n(n, max_n)?;
        let c = &self.catalogue;
        let u = c.user_index(user);
        if u.is_none() && fresh.is_none() {
            return Err(QueryError::UnknownUser(shown_id(user)));
        }
        let mut profile: BTreeMap<u32, f64> = match u {
            Some(u) => {
                let (items, values) = c.user_ratings(u);
                let pairs = items.iter().zip(values);
                pairs.map(|(&l, &x)| (l, f64::from(x))).collect()
            }
            None => BTreeMap::new(),
        };
        for (id, &x) in fresh.into_iter().flatten() {
            if let Some(l) = c.item_index(id) {
                profile.insert(l, x);
            }
        }
        let profile: Vec<(u32, f64)> = profile.into_iter().collect();
        let post = self.model.posterior_prepared(&self.prepared, &profile)?;
        Ok(Answer {
            items: self
                .model
                .recommend_prepared(&self.prepared, &post, n, &rated(&profile)),
            posterior: ranked(&post),
        })
    }

    /// Whether every (item id, rating) is an item of the catalogue rated inside the scale.
    pub fn check_ratings(&self, ratings: &[(String, f64)]) -> Result<(), QueryError> {
        self.resolve(ratings).map(|_| ())
    }

    /// Ids to indices, with every rating checked against the scale.
    fn resolve<S: AsRef<str>>(&self, ratings: &[(S, f64)]) -> Result<Vec<(u32, f64)>, QueryError> {
        let indices = self.indices(ratings.iter().map(|(id, _)| id.as_ref()))?;
        let scale = self.model.scale();
        for (id, x) in ratings {
            if !scale.contains(*x) {
                return Err(QueryError::OutOfScale {
                    item: id.as_ref().to_owned(),
                    value: *x,
                    min: scale.min,
                    max: scale.max,
                });
            }
        }
        Ok(indices
            .into_iter()
            .zip(ratings.iter().map(|r| r.1))
            .collect())
    }

    /// Ids to indices, or the unknown ones.
    fn indices<'a>(&self, ids: impl Iterator<Item = &'a str>) -> Result<Vec<u32>, QueryError> {
        let mut found = Vec::with_capacity(ids.size_hint().0);
        let (mut unknown, mut count) = (Vec::new(), 0);
        for id in ids {
            match self.catalogue.item_index(id) {
                Some(l) => found.push(l),
                None => {
                    count += 1;
                    if unknown.len() < NAMED_IDS {
                        unknown.push(shown_id(id));
                    }
                }
            }
        }
        if count > 0 {
            return Err(QueryError::UnknownItems {
                ids: unknown,
                count,
            });
        }
        Ok(found)
    }
}

/// `id` as error messages quote it: cut to 64 characters, with a `…` when longer.
pub fn shown_id(id: &str) -> String {
    match id.char_indices().nth(SHOWN_ID_CHARS) {
        Some((cut, _)) => format!("{}…", &id[..cut]),
        None => id.to_owned(),
    }
}

fn check_n(n: i64, max: usize) -> Result<usize, QueryError> {
    match usize::try_from(n) {
        Ok(v) if (1..=max).contains(&v) => Ok(v),
        _ => Err(QueryError::BadN { n, max }),
    }
}

fn rated(profile: &[(u32, f64)]) -> Vec<u32> {
    profile.iter().map(|&(l, _)| l).collect()
}

/// (type, probability), most likely first (ties: lower type first).
fn ranked(post: &[f64]) -> Vec<(usize, f64)> {
    let mut v: Vec<(usize, f64)> = post.iter().copied().enumerate().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Source;
    use crate::serving::train::{quick_settings, train};
    use std::ops::ControlFlow;
    use std::sync::OnceLock;

    fn demo() -> &'static ServedModel {
        static MODEL: OnceLock<ServedModel> = OnceLock::new();
        MODEL.get_or_init(|| {
            let mut go = |_: &_| ControlFlow::Continue(());
            train(&Source::Embedded, &quick_settings(), 1, &mut go).unwrap()
        })
    }

    #[test]
    fn completion_skips_rated_items_and_ranks_the_posterior() {
        let m = demo();
        // Rated out of catalogue order: the skipped items are walked sorted.
        let a = m.complete(&[("m002", 1.0), ("m001", 5.0)], None).unwrap();
        assert_eq!(a.items.len(), m.catalogue().n_items() - 2);
        let ids: Vec<_> = a
            .items
            .iter()
            .map(|p| m.catalogue().item_id(p.item))
            .collect();
        assert!(!ids.iter().any(|id| id == "m001" || id == "m002"));
        assert!(a.items.windows(2).all(|w| w[0].item < w[1].item));
        assert!(a.posterior.windows(2).all(|w| w[0].1 >= w[1].1));
        let sum: f64 = a.posterior.iter().map(|p| p.1).sum();
        assert!((sum - 1.0).abs() < 1e-9);
    }

    #[test]
    fn recommend_respects_n_and_exclusions() {
        let m = demo();
        let a = m.recommend(&[], 3, 10, &["m001".into()]).unwrap();
        assert_eq!(a.items.len(), 3);
        assert!(
            a.items
                .iter()
                .all(|p| m.catalogue().item_id(p.item) != "m001")
        );
        assert_eq!(
            m.recommend(&[], 0, 10, &[]),
            Err(QueryError::BadN { n: 0, max: 10 })
        );
        assert!(m.recommend(&[], 11, 10, &[]).is_err());
    }

    #[test]
    fn bad_profiles_name_what_is_wrong() {
        let m = demo();
        let err = m.complete(&[("nope", 3.0), ("m001", 3.0)], None);
        assert!(matches!(
            err,
            Err(QueryError::UnknownItems { count: 1, .. })
        ));
        let err = m.complete(&[("m001", 9.0)], None);
        assert!(matches!(err, Err(QueryError::OutOfScale { .. })));
        let err = m.user_recommendations("nobody", 3, 10);
        assert_eq!(err, Err(QueryError::UnknownUser("nobody".into())));
        let long = format!("{}tail", "é".repeat(SHOWN_ID_CHARS));
        let err = m.user_recommendations(&long, 3, 10);
        let cut = format!("{}…", "é".repeat(SHOWN_ID_CHARS));
        assert_eq!(err, Err(QueryError::UnknownUser(cut)));
        assert_eq!(
            m.user_recommendations("u0001", 3, 10).unwrap().items.len(),
            3
        );
    }
}
