//! One interface over the three model kinds, for whoever answers profiles (the service, `complete`,
//! evaluation): a profile goes in, a [`Belief`] about the user comes out, and predictions and
//! top-N follow from it. Each kind also encodes its own parameters ([`codec`]; `mixture.rs`,
//! `gpl.rs`, `mfa.rs`), so a model store needs to know nothing of what they mean.
//!
//! A new model kind is a variant here, its [`Codec`] in a file of its own, and its training in
//! the one selection path (`src/select.rs`, `fit_one`).
//!
//! Must not import: the service, the store, configuration, web or async types.

pub mod codec;
mod gpl;
mod kind;
mod mfa;
mod mixture;

use std::ops::Deref;

pub use codec::{Arrays, Codec, DecodeError, Encoded, Layout};
pub use kind::ModelKind;

use crate::data::RatingScale;
use crate::mfa::{Latent, Mfa};
use crate::mixture::{Model, Posterior, Prediction, ProfileError, top_n, unskipped};
use crate::plsa::{Folded, Plsa};

/// A trained model of either kind.
#[derive(Debug, Clone)]
pub enum Predictor {
    /// A mixture of user types (EM or k-means).
    Mixture(Model),
    /// Gaussian pLSA.
    Gpl(Plsa),
    /// A mixture of low-rank types.
    Mfa(Mfa),
}

/// What a model concludes about one profile.
#[derive(Debug, Clone, PartialEq)]
pub enum Belief {
    /// The mixture's posterior over types (and the profile's baseline offset).
    Mixture(Posterior),
    /// pLSA's folded-in type weights and the profile's normalisation.
    Gpl(Folded),
    /// The low-rank mixture's posterior: type weights and each type's taste.
    Mfa(Latent),
}

impl Deref for Belief {
    type Target = [f64];

    /// The weight of each type for this profile.
    fn deref(&self) -> &[f64] {
        match self {
            Self::Mixture(p) => &p.weights,
            Self::Gpl(f) => &f.weights,
            Self::Mfa(l) => &l.weights,
        }
    }
}

impl Predictor {
    /// Which kind this is.
    pub fn kind(&self) -> ModelKind {
        match self {
            Self::Mixture(_) => ModelKind::Mixture,
            Self::Gpl(_) => ModelKind::Gpl,
            Self::Mfa(_) => ModelKind::Mfa,
        }
    }

    /// Number of types.
    pub fn k(&self) -> usize {
        match self {
            Self::Mixture(m) => m.k(),
            Self::Gpl(g) => g.k(),
            Self::Mfa(m) => m.k,
        }
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        match self {
            Self::Mixture(m) => m.n_items(),
            Self::Gpl(g) => g.n_items(),
            Self::Mfa(m) => m.n_items(),
        }
    }

    /// The valid ratings.
    pub fn scale(&self) -> RatingScale {
        match self {
            Self::Mixture(m) => m.scale,
            Self::Gpl(g) => g.scale,
            Self::Mfa(m) => m.scale,
        }
    }

    /// Type j's share of the population: the mixture weight, or pLSA's mean P(z|u).
    pub fn type_weight(&self, j: usize) -> f64 {
        match self {
            Self::Mixture(m) => m.mixture.weights[j],
            Self::Gpl(g) => g.type_weights[j],
            Self::Mfa(m) => m.weights[j],
        }
    }

    /// Type j's variance in rating units (pLSA: averaged over items, normalisation undone with
    /// the global spread).
    pub fn type_variance(&self, j: usize) -> f64 {
        match self {
            Self::Mixture(m) => m.mixture.variances[j],
            Self::Gpl(g) => g.global.1 * g.variances.column(j).mean().unwrap_or(0.0),
            Self::Mfa(m) => m.type_variance(j),
        }
    }

    /// Type j's mean rating of item l, on the rating scale, for an average user.
    pub fn type_mean(&self, l: usize, j: usize) -> f64 {
        match self {
            Self::Mixture(m) => m.type_mean(l, j),
            Self::Gpl(g) => g.global.0 + g.global.1.sqrt() * g.means[[l, j]],
            Self::Mfa(m) => m.type_mean(l, j),
        }
    }

    /// The parameters as named arrays (see [`codec`]).
    pub fn encode(&self) -> Encoded {
        match self {
            Self::Mixture(m) => m.encode(),
            Self::Gpl(g) => g.encode(),
            Self::Mfa(m) => m.encode(),
        }
    }

    /// The model `layout` describes, from its arrays (each with its name from the layout);
    /// every name and length is checked, and every value must be finite.
    pub fn decode(layout: &Layout, arrays: Vec<(String, Vec<f64>)>) -> Result<Self, DecodeError> {
        let (k, n_items) = (layout.k, layout.n_items);
        if k == 0 || n_items == 0 {
            return Err(DecodeError::Shape { k, n_items });
        }
        let mut arrays = Arrays::new(arrays);
        let model = match layout.kind {
            ModelKind::Mixture => Self::Mixture(Codec::decode(layout, &mut arrays)?),
            ModelKind::Gpl => Self::Gpl(Codec::decode(layout, &mut arrays)?),
            ModelKind::Mfa => Self::Mfa(Codec::decode(layout, &mut arrays)?),
        };
        arrays.finish()?;
        if !model.is_finite() {
            return Err(DecodeError::NotFinite);
        }
        Ok(model)
    }

    /// Whether every parameter is a finite number.
    pub fn is_finite(&self) -> bool {
        match self {
            Self::Mixture(m) => {
                let x = &m.mixture;
                x.means
                    .iter()
                    .chain(&x.variances)
                    .chain(&x.weights)
                    .all(|v| v.is_finite())
            }
            Self::Gpl(g) => g
                .means
                .iter()
                .chain(&g.variances)
                .chain(&g.type_weights)
                .all(|v| v.is_finite()),
            Self::Mfa(m) => m.is_finite(),
        }
    }

    /// [`Self::posterior`] with what [`Self::prepare`] worked out for this model: the same
    /// belief to the bit.
    pub fn posterior_prepared(
        &self,
        prepared: &Prepared,
        profile: &[(u32, f64)],
    ) -> Result<Belief, ProfileError> {
        match (self, &prepared.table) {
            (Self::Mixture(m), Some(t)) => m.posterior_from(t, profile).map(Belief::Mixture),
            _ => self.posterior(profile),
        }
    }

    /// What the model concludes from a profile of (item, rating) pairs.
    pub fn posterior(&self, profile: &[(u32, f64)]) -> Result<Belief, ProfileError> {
        match self {
            Self::Mixture(m) => m.posterior(profile).map(Belief::Mixture),
            Self::Gpl(g) => {
                for &(l, x) in profile {
                    if l as usize >= g.n_items() {
                        return Err(ProfileError::UnknownItem(l));
                    }
                    if !x.is_finite() {
                        return Err(ProfileError::NotFinite(l));
                    }
                }
                Ok(Belief::Gpl(g.fold_in(profile)))
            }
            Self::Mfa(m) => m.posterior(profile).map(Belief::Mfa),
        }
    }

    /// Prediction and spread of item `l`.
    pub fn predict(&self, belief: &Belief, l: u32) -> Prediction {
        match (self, belief) {
            (Self::Mixture(m), Belief::Mixture(p)) => m.predict(p, l),
            (Self::Gpl(g), Belief::Gpl(f)) => g.predict(f, l),
            (Self::Mfa(m), Belief::Mfa(z)) => m.predict(z, l),
            _ => panic!("a belief of one model kind given to the other"),
        }
    }

    /// Predictions for every item not in `skip`, in item order.
    pub fn complete(&self, belief: &Belief, skip: &[u32]) -> Vec<Prediction> {
        unskipped(self.n_items(), skip)
            .map(|l| self.predict(belief, l))
            .collect()
    }

    /// The `n` best items outside `skip`, best first (ties: lower index first).
    pub fn recommend(&self, belief: &Belief, n: usize, skip: &[u32]) -> Vec<Prediction> {
        match (self, belief) {
            (Self::Mixture(m), Belief::Mixture(p)) => return m.recommend(p, n, skip),
            (Self::Mfa(m), Belief::Mfa(z)) => return m.recommend(z, n, skip),
            _ => {}
        }
        let mut all = self.complete(belief, skip);
        top_n(&mut all, n, |a, b| {
            b.rating.total_cmp(&a.rating).then(a.item.cmp(&b.item))
        });
        all
    }

    /// What serving works out once per model to answer recommendations faster.
    pub fn prepare(&self) -> Prepared {
        Prepared {
            table: match self {
                Self::Mixture(m) => Some(crate::mixture::ScoreTable::new(m)),
                _ => None,
            },
        }
    }

    /// [`Self::recommend`] with what [`Self::prepare`] worked out for this model: the same
    /// answer to the bit.
    pub fn recommend_prepared(
        &self,
        prepared: &Prepared,
        belief: &Belief,
        n: usize,
        skip: &[u32],
    ) -> Vec<Prediction> {
        match (self, belief, &prepared.table) {
            (Self::Mixture(m), Belief::Mixture(p), Some(t)) => m.recommend_from(t, p, n, skip),
            _ => self.recommend(belief, n, skip),
        }
    }

    /// Fills `row` with a user's completed profile: observed ratings as given, the rest predicted.
    pub fn complete_row(
        &self,
        items: &[u32],
        values: &[f32],
        row: &mut [f64],
    ) -> Result<(), ProfileError> {
        let profile: Vec<(u32, f64)> = items
            .iter()
            .zip(values)
            .map(|(&l, &x)| (l, f64::from(x)))
            .collect();
        let belief = self.posterior(&profile)?;
        for (l, r) in row.iter_mut().enumerate() {
            *r = self.predict(&belief, l as u32).rating;
        }
        for &(l, x) in &profile {
            row[l as usize] = x;
        }
        Ok(())
    }
}
/// What [`Predictor::prepare`] works out once per model: for a mixture, its means type-major
/// ([`crate::mixture::ScoreTable`]); nothing for the other kinds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepared {
    table: Option<crate::mixture::ScoreTable>,
}

impl Prepared {
    /// The mixture's type-major means, if the model is a mixture.
    pub fn table(&self) -> Option<&crate::mixture::ScoreTable> {
        self.table.as_ref()
    }
}
