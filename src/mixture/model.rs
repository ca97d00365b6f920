//! A trained model answering for one profile at a time: posterior over types, completion,
//! predictive spread and top-N.
//!
//! Cost per profile: O(ratings in the profile × K) for the posterior and O(d × K) for the
//! predictions; nothing allocated grows with the training set (only with the catalogue d).
//!
//! A model may carry a baseline `μ + b_u + b_l` (see [`super::bias`]); its mixture then describes
//! what the baseline leaves, and a profile's own offset `b_u` is worked out from its ratings.

use std::ops::Deref;

use super::pass::{Terms, argmin, posterior_from_log_joint};
use super::{Algorithm, Mixture};
use crate::data::RatingScale;
use crate::simd::dispatched;

/// The part of a baseline a model keeps: the global mean and the item offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// μ.
    pub global: f64,
    /// b_l. (n_items,)
    pub item: Vec<f64>,
    /// λ_user, the ridge strength a profile's own offset is worked out with.
    pub lambda_user: f64,
    /// Each item's mean residual in training, taken off a profile's residuals before the
    /// posterior (as training did), never added to a prediction (see `Biases::residuals`).
    /// (n_items,)
    pub centre: Vec<f64>,
    /// v_l, each item's residual variance in training (see `Biases::item_var`). (n_items,)
    pub item_var: Vec<f64>,
    /// σ̄², the mean squared residual in training.
    pub noise: f64,
}

impl Baseline {
    /// Fits the baseline to `ratings` with `ridge`; returns it with the centred residuals a
    /// model over it trains on.
    pub fn fit(
        ratings: &crate::data::Ratings,
        ridge: super::Ridge,
    ) -> (Self, crate::data::Ratings) {
        let both = super::bias::Both::new(ratings);
        let biases = super::Biases::fit_both(&both, ridge);
        let (residuals, centre) = biases.residuals_by_user(both);
        (Self::of(biases, centre), residuals)
    }

    /// [`Baseline::fit`], with the residuals by item too (what the mixture's item pass walks:
    /// made from the transpose the fit used, not by a second one).
    pub(crate) fn fit_both(
        ratings: &crate::data::Ratings,
        ridge: super::Ridge,
    ) -> (Self, crate::data::Ratings, crate::data::Ratings) {
        let both = super::bias::Both::new(ratings);
        let biases = super::Biases::fit_both(&both, ridge);
        let (residuals, by_item, centre) = biases.residuals_both(both);
        (Self::of(biases, centre), residuals, by_item)
    }

    /// The baseline of fitted offsets and the residual means they leave.
    fn of(biases: super::Biases, centre: Vec<f64>) -> Self {
        Self {
            global: biases.global,
            item: biases.item,
            lambda_user: biases.ridge.user,
            centre,
            item_var: biases.item_var,
            noise: biases.noise,
        }
    }

    /// μ + b_u for a profile of (item, rating) pairs: b_u by the training's user update,
    /// `Σ w_l (x − μ − b_l) / (λ_user + Σ w_l)` with `w_l = σ̄² / v_l`.
    pub fn offset(&self, profile: &[(u32, f64)]) -> f64 {
        let (mut sum, mut n) = (0.0, 0.0);
        for &(l, x) in profile {
            let w = self.weight(l);
            sum += w * (x - self.global - self.item[l as usize]);
            n += w;
        }
        self.global + sum / (self.lambda_user + n)
    }

    /// w_l = σ̄² / v_l, the weight of a rating of item l in a profile's offset.
    #[inline]
    pub fn weight(&self, l: u32) -> f64 {
        self.noise / self.item_var[l as usize]
    }

    /// s_l = v_l / σ̄²: how much wider item l's residuals are than the average item's, the
    /// factor on every type's variance for that item (the mixture has one variance per type).
    #[inline]
    pub fn var_scale(&self, l: u32) -> f64 {
        self.item_var[l as usize] / self.noise
    }

    /// The residual the types model: `x − offset − b_l − centre_l`.
    #[inline]
    pub fn residual(&self, offset: f64, l: u32, x: f64) -> f64 {
        x - offset - self.item[l as usize] - self.centre[l as usize]
    }
}

/// What a profile tells the model: a posterior over types and the profile's own offset.
#[derive(Debug, Clone, PartialEq)]
pub struct Posterior {
    /// P(type j | profile). (k,)
    pub weights: Vec<f64>,
    /// μ + b_u for the profile; 0 for a model without a baseline.
    pub offset: f64,
}

impl Deref for Posterior {
    type Target = [f64];

    fn deref(&self) -> &[f64] {
        &self.weights
    }
}

/// A predicted rating for one item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Item index.
    pub item: u32,
    /// `Σ_j post_j mu_jl` (clipped to the scale when the model clips).
    pub rating: f64,
    /// Predictive standard deviation `sqrt(Σ_j post_j (var_j + mu_jl²) − pred²)`.
    pub spread: f64,
}

/// An item with its score, as returned by [`Model::recommend`].
pub type ItemScore = Prediction;

/// A profile the model cannot read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    /// An item index past the catalogue.
    #[error("item index {0} is outside the catalogue")]
    UnknownItem(u32),
    /// A rating that is not a finite number.
    #[error("rating of item {0} is not a finite number")]
    NotFinite(u32),
}

/// A mixture ready to answer: the parameters plus how to read them.
#[derive(Debug, Clone)]
pub struct Model {
    /// The parameters.
    pub mixture: Mixture,
    /// EM (posterior by Bayes' rule) or k-means (the nearest mean takes all).
    pub algorithm: Algorithm,
    /// The snapshot's rating scale.
    pub scale: RatingScale,
    /// Whether predictions are clipped into the scale.
    pub clip: bool,
    /// The baseline the mixture's residuals are measured from, if any.
    pub baseline: Option<Baseline>,
}

impl Model {
    /// Number of types.
    pub fn k(&self) -> usize {
        self.mixture.k()
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.mixture.n_items()
    }

    /// The posterior over types for a profile of (item, rating) pairs, and with a baseline
    /// the profile's offset. With a baseline, type j's variance on item l is `s_l σ_j²`
    /// ([`Baseline::var_scale`]): a polarising item's answer is weaker evidence of the type
    /// (the `ln s_l` of the density is the same for every type and cancels).
    pub fn posterior(&self, profile: &[(u32, f64)]) -> Result<Posterior, ProfileError> {
        self.posterior_with(None, profile)
    }

    /// [`Self::posterior`] with the per-type constants of `table` ([`ScoreTable::new`] of this
    /// model) instead of working them out again: 2K logarithms fewer, the same bits.
    pub fn posterior_from(
        &self,
        table: &ScoreTable,
        profile: &[(u32, f64)],
    ) -> Result<Posterior, ProfileError> {
        table.check_of(self);
        self.posterior_with(Some(&table.terms), profile)
    }

    fn posterior_with(
        &self,
        terms: Option<&Terms>,
        profile: &[(u32, f64)],
    ) -> Result<Posterior, ProfileError> {
        for &(l, x) in profile {
            if l as usize >= self.n_items() {
                return Err(ProfileError::UnknownItem(l));
            }
            if !x.is_finite() {
                return Err(ProfileError::NotFinite(l));
            }
        }
        let offset = self.baseline.as_ref().map_or(0.0, |b| b.offset(profile));
        let (k, means) = (
            self.k(),
            self.mixture.means.as_slice().expect("standard layout"),
        );
        let mut a = vec![0.0; k];
        for &(l, x) in profile {
            let (r, inv) = match &self.baseline {
                Some(b) => (b.residual(offset, l, x), 1.0 / b.var_scale(l)),
                None => (x, 1.0),
            };
            for (s, &m) in a.iter_mut().zip(&means[l as usize * k..][..k]) {
                *s += inv * (r - m) * (r - m);
            }
        }
        match self.algorithm {
            Algorithm::Em => {
                match terms {
                    Some(terms) => terms.log_joint(&mut a, profile.len()),
                    None => Terms::new(&self.mixture).log_joint(&mut a, profile.len()),
                }
                posterior_from_log_joint(&mut a);
            }
            Algorithm::Kmeans => {
                let j = argmin(&a);
                a.fill(0.0);
                a[j] = 1.0;
            }
        }
        Ok(Posterior { weights: a, offset })
    }

    /// Type j's mean rating of item l on the rating scale: with a baseline, μ + b_l plus the
    /// type's residual mean (the offset of an average user).
    pub fn type_mean(&self, l: usize, j: usize) -> f64 {
        let base = self.baseline.as_ref().map_or(0.0, |b| b.global + b.item[l]);
        base + self.mixture.means[[l, j]]
    }

    /// b_l, or 0 without a baseline.
    #[inline]
    fn item_offset(&self, l: usize) -> f64 {
        self.baseline.as_ref().map_or(0.0, |b| b.item[l])
    }

    /// Predicted rating of item `l` under posterior `post` (before clipping).
    #[inline]
    fn raw_prediction(&self, post: &Posterior, l: usize) -> f64 {
        let k = self.k();
        let mu = &self.mixture.means.as_slice().expect("standard layout")[l * k..][..k];
        let mixed: f64 = post.iter().zip(mu).map(|(p, m)| p * m).sum();
        post.offset + self.item_offset(l) + mixed
    }

    /// Unclipped predictions of every item, four items at a time: one item's K-term sum is a
    /// chain of dependent additions, and four independent chains keep the adder busy (this loop
    /// was the largest item of a loaded server's profile).
    fn raw_scores(&self, post: &Posterior) -> Vec<f64> {
        let means = self.mixture.means.as_slice().expect("standard layout");
        let mut out = vec![0.0; self.n_items()];
        mixed_scores(means, &post.weights, &mut out);
        for (l, o) in out.iter_mut().enumerate() {
            *o += post.offset + self.item_offset(l);
        }
        out
    }

    /// Prediction and spread of item `l` under posterior `post`.
    pub fn predict(&self, post: &Posterior, l: u32) -> Prediction {
        let k = self.k();
        let mu = &self.mixture.means.as_slice().expect("standard layout")[l as usize * k..][..k];
        let pred = self.raw_prediction(post, l as usize);
        // The spread of the mixture part; the baseline is a constant shift.
        let mean: f64 = (0..k).map(|j| post[j] * mu[j]).sum();
        let scale = self.baseline.as_ref().map_or(1.0, |b| b.var_scale(l));
        let second: f64 = (0..k)
            .map(|j| post[j] * (scale * self.mixture.variances[j] + mu[j] * mu[j]))
            .sum();
        let rating = if self.clip {
            self.scale.clip(pred)
        } else {
            pred
        };
        Prediction {
            item: l,
            rating,
            spread: (second - mean * mean).max(0.0).sqrt(),
        }
    }

    /// The `n` items with the highest predicted rating outside `skip`, best first (ties: lower
    /// item index first). Partial selection: the catalogue is never sorted whole.
    pub fn recommend(&self, post: &Posterior, n: usize, skip: &[u32]) -> Vec<ItemScore> {
        let scores = self.raw_scores(post);
        let scored = unskipped(self.n_items(), skip).map(|l| (scores[l as usize], l));
        best_scores(scored, n)
            .into_iter()
            .map(|(_, l)| self.predict(post, l))
            .collect()
    }

    /// [`Self::recommend`] with `table` ([`ScoreTable::new`] of this model): the same items,
    /// ratings and spreads to the bit, the catalogue scored a block at a time from the
    /// type-major means, with no vector of every item's score.
    pub fn recommend_from(
        &self,
        table: &ScoreTable,
        post: &Posterior,
        n: usize,
        skip: &[u32],
    ) -> Vec<ItemScore> {
        table.check_of(self);
        if n > STREAMED_TOP_N {
            return self.recommend(post, n, skip);
        }
        let (d, mut skip) = (table.d, SkipWalk::new(skip));
        let mut block = [0.0; SCORE_BLOCK];
        let mut best = Best::new(n);
        for start in (0..d).step_by(SCORE_BLOCK) {
            let block = &mut block[..SCORE_BLOCK.min(d - start)];
            let (by_type, offsets) = (&table.by_type[..], &table.item_offset[..]);
            table_scores(
                by_type,
                d,
                &post.weights,
                post.offset,
                offsets,
                start,
                block,
            );
            rank_block(block, start, &mut skip, &mut best);
        }
        best.items
            .into_iter()
            .map(|(_, l)| self.predict(post, l))
            .collect()
    }
}

dispatched! {
    /// Offers the items of `block` (scores of the items from `start` on) outside `skip` to
    /// `best`; blocks come in item order.
    fn rank_block, rank_block_avx2, rank_block_avx512 => rank_block_generic(
        block: &[f64], start: usize, skip: &mut SkipWalk, best: &mut Best
    )
}

/// Most items score below the n-th best so far: a group of [`RANK_GROUP`] is compared with it
/// at once (a vector compare, no branch an item), and only a group holding a score at or above
/// it (or a NaN, which [`Best`] ranks too) is looked at item by item. The floor only rises, so
/// a group below it at its start stays below it. A skipped item is looked up only when it
/// would rank.
#[inline(always)]
fn rank_block_generic(block: &[f64], start: usize, skip: &mut SkipWalk, best: &mut Best) {
    let (groups, tail) = block.as_chunks::<RANK_GROUP>();
    for (g, group) in groups.iter().enumerate() {
        let floor = best.floor;
        if group.iter().fold(true, |below, &s| below & (s < floor)) {
            continue;
        }
        rank_items(group, start + g * RANK_GROUP, skip, best);
    }
    rank_items(tail, start + groups.len() * RANK_GROUP, skip, best);
}

/// The items of `scores` (from item `start` on) one by one.
#[inline(always)]
fn rank_items(scores: &[f64], start: usize, skip: &mut SkipWalk, best: &mut Best) {
    for (i, &score) in scores.iter().enumerate() {
        if score < best.floor {
            continue;
        }
        let l = (start + i) as u32;
        if !skip.holds(l) {
            best.offer((score, l));
        }
    }
}

/// Skipped items asked about in ascending order: a merge walk, a cursor over them sorted that
/// only moves forward, so an item costs a comparison instead of a binary search (a search of a
/// 20-rating profile's skips was a quarter of the recommendation's ranking).
pub(crate) struct SkipWalk {
    sorted: Vec<u32>,
    next: usize,
}

impl SkipWalk {
    fn new(skip: &[u32]) -> Self {
        let mut sorted = skip.to_vec();
        sorted.sort_unstable();
        Self { sorted, next: 0 }
    }

    /// Whether `l` is skipped; `l` must not be below any item asked about before.
    #[inline]
    fn holds(&mut self, l: u32) -> bool {
        while self.sorted.get(self.next).is_some_and(|&s| s < l) {
            self.next += 1;
        }
        self.sorted.get(self.next) == Some(&l)
    }
}

/// Scores [`rank_block_generic`] compares with the floor at once: two AVX-512 vectors.
const RANK_GROUP: usize = 16;

/// Items a block of [`Model::recommend_from`] scores at once (its scores stay in L1).
const SCORE_BLOCK: usize = 256;

/// A mixture's means type-major, `by_type[j · d + l] = m_lj`, and each item's baseline offset:
/// what serving keeps beside a model so that scoring every item reads each type's row straight
/// through (eight items a vector) instead of gathering K strided means an item. Built once per
/// model; [`Model::recommend_from`] checks it belongs to the model's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTable {
    k: usize,
    d: usize,
    by_type: Vec<f64>,
    item_offset: Vec<f64>,
    /// The per-type constants of the posterior's log-density.
    terms: Terms,
}

impl ScoreTable {
    /// Panics unless this table has `model`'s shape (K types, d items).
    fn check_of(&self, model: &Model) {
        assert_eq!(
            (self.k, self.d),
            (model.k(), model.n_items()),
            "a score table of another model"
        );
    }

    /// `model`'s table.
    pub fn new(model: &Model) -> Self {
        let (k, d) = (model.k(), model.n_items());
        let mut by_type = vec![0.0; k * d];
        for (l, row) in model.mixture.means.rows().into_iter().enumerate() {
            for (j, &m) in row.iter().enumerate() {
                by_type[j * d + l] = m;
            }
        }
        Self {
            k,
            d,
            by_type,
            item_offset: (0..d).map(|l| model.item_offset(l)).collect(),
            terms: Terms::new(&model.mixture),
        }
    }
}

impl ScoreTable {
    /// `m1[l] = Σ_j w_j m_lj` and `m2[l] = Σ_j w_j m_lj²` of every item, each sum over the types
    /// in order: onboarding's moments ([`crate::onboard`]), the operations of its item-major
    /// pass, so the same bits.
    pub fn moments(&self, w: &[f64], m1: &mut [f64], m2: &mut [f64]) {
        assert_eq!((w.len(), m1.len(), m2.len()), (self.k, self.d, self.d));
        table_moments(&self.by_type, self.d, w, m1, m2);
    }
}

dispatched! {
    fn table_moments, table_moments_avx2, table_moments_avx512 => table_moments_generic(
        by_type: &[f64], d: usize, w: &[f64], m1: &mut [f64], m2: &mut [f64]
    )
}

/// Sixteen items at a time, two sums each in registers across the types.
#[inline(always)]
fn table_moments_generic(by_type: &[f64], d: usize, w: &[f64], m1: &mut [f64], m2: &mut [f64]) {
    const W: usize = 16;
    let (c1, t1) = m1.as_chunks_mut::<W>();
    let (c2, t2) = m2.as_chunks_mut::<W>();
    let full = c1.len() * W;
    for (c, (a, b)) in c1.iter_mut().zip(c2.iter_mut()).enumerate() {
        let (mut x, mut y) = ([0.0f64; W], [0.0f64; W]);
        for (j, &wj) in w.iter().enumerate() {
            let row = &by_type[j * d + c * W..][..W];
            for i in 0..W {
                x[i] += wj * row[i];
                y[i] += wj * row[i] * row[i];
            }
        }
        (*a, *b) = (x, y);
    }
    for (i, (a, b)) in t1.iter_mut().zip(t2.iter_mut()).enumerate() {
        let l = full + i;
        let (mut x, mut y) = (0.0, 0.0);
        for (j, &wj) in w.iter().enumerate() {
            let m = by_type[j * d + l];
            x += wj * m;
            y += wj * m * m;
        }
        (*a, *b) = (x, y);
    }
}

dispatched! {
    /// `out[i] = Σ_j post_j m_(start+i)j + (offset + b_(start+i))`, each sum over the types in
    /// order from 0: the operations of [`mixed_scores`] and `raw_scores`, so the same bits.
    fn table_scores, table_scores_avx2, table_scores_avx512 => table_scores_generic(
        by_type: &[f64], d: usize, post: &[f64], offset: f64, item_offset: &[f64], start: usize, out: &mut [f64]
    )
}

/// Thirty-two items at a time in four independent chains of eight (one chain's K additions
/// are dependent: one chain alone waits on the adder), each item's sum in a register across
/// the types in order (one store an item).
#[inline(always)]
fn table_scores_generic(
    by_type: &[f64],
    d: usize,
    post: &[f64],
    offset: f64,
    item_offset: &[f64],
    start: usize,
    out: &mut [f64],
) {
    const W: usize = 32;
    let offsets = &item_offset[start..][..out.len()];
    let (chunks, tail) = out.as_chunks_mut::<W>();
    let (offset_chunks, offset_tail) = offsets.as_chunks::<W>();
    let full = chunks.len() * W;
    for (c, (o, b)) in chunks.iter_mut().zip(offset_chunks).enumerate() {
        // Whole rows as arrays and the offsets chunked beside the output: no index is checked
        // inside the loops, so each runs in vector registers (indexing the offsets by
        // `c · W + i` left the last loop scalar, the sums spilled to the stack).
        let mut acc = [0.0f64; W];
        for (j, &p) in post.iter().enumerate() {
            let row: &[f64; W] = by_type[j * d + start + c * W..][..W]
                .try_into()
                .expect("a whole row");
            for i in 0..W {
                acc[i] += p * row[i];
            }
        }
        for i in 0..W {
            o[i] = acc[i] + (offset + b[i]);
        }
    }
    for (i, (o, &b)) in tail.iter_mut().zip(offset_tail).enumerate() {
        let l = start + full + i;
        let mut acc = 0.0;
        for (j, &p) in post.iter().enumerate() {
            acc += p * by_type[j * d + l];
        }
        *o = acc + (offset + b);
    }
}

/// Keeps the `n` first of `items` by `order`, sorted: partial selection, so the rest is never
/// sorted.
pub(crate) fn top_n<T>(items: &mut Vec<T>, n: usize, order: impl Fn(&T, &T) -> std::cmp::Ordering) {
    let n = n.min(items.len());
    if n == 0 {
        items.clear();
        return;
    }
    items.select_nth_unstable_by(n - 1, &order);
    items.truncate(n);
    items.sort_unstable_by(order);
}

dispatched! {
    /// `out[l] = Σ_j post_j mu_lj` for every item (`means` item-major, K = `post.len()`).
    fn mixed_scores, mixed_scores_avx2, mixed_scores_avx512 => mixed_scores_generic(
        means: &[f64], post: &[f64], out: &mut [f64]
    )
}

/// Four items at a time: one item's K-term sum is a chain of dependent additions, and four
/// independent chains keep the adder busy (this loop was the largest item of a loaded server's
/// profile).
#[inline(always)]
fn mixed_scores_generic(means: &[f64], post: &[f64], out: &mut [f64]) {
    const AT_ONCE: usize = 4;
    let k = post.len();
    let full = out.len() / AT_ONCE * AT_ONCE;
    for (c, o) in out[..full].chunks_exact_mut(AT_ONCE).enumerate() {
        let rows = &means[c * AT_ONCE * k..][..AT_ONCE * k];
        let mut acc = [0.0f64; AT_ONCE];
        for (j, &p) in post.iter().enumerate() {
            for (i, a) in acc.iter_mut().enumerate() {
                *a += p * rows[i * k + j];
            }
        }
        o.copy_from_slice(&acc);
    }
    for (l, o) in out.iter_mut().enumerate().skip(full) {
        *o = post
            .iter()
            .zip(&means[l * k..][..k])
            .map(|(p, m)| p * m)
            .sum();
    }
}

/// Item indices `0..d` outside `skip`, ascending (a merge walk over `skip` sorted, not a search
/// per item).
pub(crate) fn unskipped(d: usize, skip: &[u32]) -> impl Iterator<Item = u32> {
    let mut skip = SkipWalk::new(skip);
    (0..d as u32).filter(move |&l| !skip.holds(l))
}

/// Up to this many results are kept in order as the scores stream past; more go through
/// [`top_n`] (a sorted insert costs up to n moves).
const STREAMED_TOP_N: usize = 64;

/// The `n` best (score, item) pairs, best first: the highest score, ties to the lower item (the
/// order [`top_n`] gives). For small `n`, one pass that keeps the n best so far in order: most
/// items cost one comparison with the n-th, and nothing the size of the catalogue is allocated.
pub(crate) fn best_scores(scored: impl Iterator<Item = (f64, u32)>, n: usize) -> Vec<(f64, u32)> {
    let order = |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if n > STREAMED_TOP_N {
        let mut all: Vec<(f64, u32)> = scored.collect();
        top_n(&mut all, n, order);
        return all;
    }
    let mut best = Best::new(n);
    scored.for_each(|c| best.offer(c));
    best.items
}

/// The n best (score, item) pairs offered so far, in order (see [`best_scores`]).
struct Best {
    n: usize,
    items: Vec<(f64, u32)>,
    /// The n-th best score once there are n (−∞ before): a score below it can only rank after
    /// it, so [`Self::offer`] need not be called (NaN and equal scores take the exact order).
    floor: f64,
}

impl Best {
    fn new(n: usize) -> Self {
        Self {
            n,
            items: Vec::with_capacity(n + 1),
            floor: if n == 0 {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            },
        }
    }

    /// Keeps `c` if it ranks among the n best so far: one comparison with the n-th, then an
    /// insertion step from the end (most kept scores land near the end, and the list is at most
    /// [`STREAMED_TOP_N`] long), no search and no shifting copy of the tail.
    #[inline]
    fn offer(&mut self, c: (f64, u32)) {
        let before =
            |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).is_lt();
        let n = self.n;
        if n == 0 || c.0 < self.floor {
            return;
        }
        let items = &mut self.items;
        if items.len() == n {
            if !before(&c, &items[n - 1]) {
                return;
            }
            items.pop();
        }
        items.push(c);
        let mut at = items.len() - 1;
        while at > 0 && before(&c, &items[at - 1]) {
            items[at] = items[at - 1];
            at -= 1;
        }
        items[at] = c;
        if items.len() == n {
            self.floor = items[n - 1].0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    fn every_dispatch_level_scores_the_same_bits() {
        use crate::simd::{Level, detected};
        for (k, d) in [(12, 1181), (5, 7), (16, 3)] {
            let means: Vec<f64> = (0..k * d).map(|t| ((t * 37 % 101) as f64).sin()).collect();
            let post: Vec<f64> = (0..k).map(|j| 1.0 / (j as f64 + 1.7)).collect();
            let mut portable = vec![0.0; d];
            mixed_scores_generic(&means, &post, &mut portable);
            for level in Level::ALL.into_iter().filter(|&l| l <= detected()) {
                let mut out = vec![0.0; d];
                match level {
                    Level::Portable => mixed_scores_generic(&means, &post, &mut out),
                    // SAFETY: only levels up to `detected()` run.
                    Level::Avx2 => unsafe { mixed_scores_avx2(&means, &post, &mut out) },
                    // SAFETY: as above.
                    Level::Avx512 => unsafe { mixed_scores_avx512(&means, &post, &mut out) },
                }
                assert_eq!(out, portable, "k = {k}, {level:?}");
            }
        }
    }

    #[test]
    fn streamed_best_scores_are_those_of_top_n() {
        // Scores with many ties (four values), over 300 items, a few skipped.
        let scores: Vec<f64> = (0..300u32).map(|l| f64::from((l * 37) % 4) / 2.0).collect();
        let skip = [5, 0, 299, 17, 17, 120];
        let kept: Vec<u32> = unskipped(300, &skip).collect();
        assert_eq!(kept.len(), 300 - 5);
        assert!(kept.iter().all(|l| !skip.contains(l)));
        for n in [0, 1, 3, 10, 64, 65, 200, 400] {
            let mut all: Vec<(f64, u32)> = kept.iter().map(|&l| (scores[l as usize], l)).collect();
            top_n(&mut all, n, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let streamed = best_scores(kept.iter().map(|&l| (scores[l as usize], l)), n);
            assert_eq!(streamed, all, "n = {n}");
        }
    }
    #[test]
    fn the_score_table_recommends_what_the_model_does_to_the_bit() {
        // K = 5 over 601 items (two full blocks and a part), with and without a baseline;
        // many tied scores (means on a coarse grid), skips in and across blocks.
        let (k, d) = (5, 601);
        let means = ndarray::Array2::from_shape_fn((d, k), |(l, j)| {
            f64::from(((l * 7 + j * 13) % 9) as u32) / 4.0 - 1.0
        });
        let mut m = Model {
            mixture: Mixture {
                means,
                variances: ndarray::Array1::from_elem(k, 0.4),
                weights: ndarray::Array1::from_elem(k, 1.0 / k as f64),
            },
            algorithm: Algorithm::Em,
            scale: RatingScale { min: 1.0, max: 5.0 },
            clip: true,
            baseline: None,
        };
        let profile: Vec<(u32, f64)> = (0..30)
            .map(|i| (i * 19 % d as u32, 1.0 + f64::from(i % 5)))
            .collect();
        // Unsorted, one item twice (a rated item also excluded).
        let mut skip: Vec<u32> = (0..40)
            .map(|i| i * 37 % 700)
            .filter(|&l| l < d as u32)
            .collect();
        skip.push(skip[7]);
        for with_baseline in [false, true] {
            if with_baseline {
                m.baseline = Some(Baseline {
                    global: 3.6,
                    item: (0..d).map(|l| ((l % 11) as f64 - 5.0) / 10.0).collect(),
                    lambda_user: 4.0,
                    centre: vec![0.0; d],
                    item_var: vec![0.8; d],
                    noise: 0.8,
                });
            }
            let table = ScoreTable::new(&m);
            let post = m.posterior(&profile).unwrap();
            let bits = |p: &Posterior| -> Vec<u64> {
                p.weights
                    .iter()
                    .chain([&p.offset])
                    .map(|v| v.to_bits())
                    .collect()
            };
            assert_eq!(
                bits(&m.posterior_from(&table, &profile).unwrap()),
                bits(&post)
            );
            for n in [1, 10, 64, 65, 700] {
                let (want, got) = (
                    m.recommend(&post, n, &skip),
                    m.recommend_from(&table, &post, n, &skip),
                );
                assert_eq!(want.len(), got.len());
                for (a, b) in want.iter().zip(&got) {
                    assert_eq!(
                        (a.item, a.rating.to_bits(), a.spread.to_bits()),
                        (b.item, b.rating.to_bits(), b.spread.to_bits())
                    );
                }
            }
            // And the scores themselves, every item.
            let mut block = vec![0.0; d];
            table_scores_generic(
                &table.by_type,
                d,
                &post.weights,
                post.offset,
                &table.item_offset,
                0,
                &mut block,
            );
            assert_eq!(block, m.raw_scores(&post));
            // The moments, against each item's sums over the types in order.
            let (mut m1, mut m2) = (vec![0.0; d], vec![0.0; d]);
            table.moments(&post.weights, &mut m1, &mut m2);
            for l in 0..d {
                let (mut x, mut y) = (0.0, 0.0);
                for j in 0..k {
                    let v = m.mixture.means[[l, j]];
                    x += post.weights[j] * v;
                    y += post.weights[j] * v * v;
                }
                assert_eq!(
                    (m1[l].to_bits(), m2[l].to_bits()),
                    (x.to_bits(), y.to_bits())
                );
            }
        }
    }

    use ndarray::array;

    fn two_types() -> Model {
        Model {
            mixture: Mixture {
                // (d, k): item 0 = (1, 5), item 1 = (5, 1), item 2 = (3, 4)
                means: array![[1.0, 5.0], [5.0, 1.0], [3.0, 4.0]],
                variances: array![0.5, 0.5],
                weights: array![0.5, 0.5],
            },
            algorithm: Algorithm::Em,
            scale: RatingScale { min: 1.0, max: 5.0 },
            clip: true,
            baseline: None,
        }
    }

    #[test]
    fn empty_profile_gets_the_prior() {
        let m = two_types();
        let prior = m.posterior(&[]).unwrap();
        assert_eq!(prior.weights, vec![0.5, 0.5]);
        let p = m.predict(&prior, 2);
        assert_eq!(p.rating, 3.5);
        // spread² = 0.5 + ½(9 + 16) − 3.5² = 0.5 + 12.5 − 12.25 = 0.75
        assert!((p.spread - 0.75f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn a_rating_moves_the_posterior_and_recommendations() {
        let m = two_types();
        let post = m.posterior(&[(0, 5.0)]).unwrap();
        // sq = (16, 0), var 0.5: posterior ∝ (e^-16, 1)
        let expect = 1.0 / (1.0 + (-16.0f64).exp());
        assert!((post[1] - expect).abs() < 1e-15);
        let top = m.recommend(&post, 5, &[0]);
        assert_eq!(top.iter().map(|p| p.item).collect::<Vec<_>>(), vec![2, 1]);
        let item1 = m.predict(&post, 1);
        assert!((item1.rating - (post[0] * 5.0 + post[1] * 1.0)).abs() < 1e-12);
    }

    #[test]
    fn batch_scores_match_one_by_one_predictions() {
        // 9 items: two blocks of four and a tail of one.
        let mut m = two_types();
        m.clip = false;
        m.mixture.means = ndarray::Array2::from_shape_fn((9, 2), |(l, j)| {
            1.0 + ((l * 3 + j * 5) % 7) as f64 / 2.0
        });
        m.baseline = Some(Baseline {
            global: 0.5,
            item: (0..9).map(|l| l as f64 / 10.0 - 0.4).collect(),
            lambda_user: 15.0,
            centre: vec![0.0; 9],
            item_var: vec![1.0; 9],
            noise: 1.0,
        });
        let post = m.posterior(&[(0, 4.0), (5, 2.0)]).unwrap();
        let batch = m.raw_scores(&post);
        for l in 0..9u32 {
            assert!((batch[l as usize] - m.predict(&post, l).rating).abs() < 1e-12);
        }
    }

    #[test]
    fn bad_profiles_are_refused() {
        let m = two_types();
        assert_eq!(m.posterior(&[(3, 1.0)]), Err(ProfileError::UnknownItem(3)));
        assert_eq!(
            m.posterior(&[(1, f64::NAN)]),
            Err(ProfileError::NotFinite(1))
        );
    }
}
