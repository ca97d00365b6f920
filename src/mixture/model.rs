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
    /// ratings and spreads to the bit, with no vector of every item's score. The catalogue is
    /// scored a block at a time from the type-major means rounded to `f32` (half the bytes
    /// and twice the items a vector), which only rules items out: the few whose rough score
    /// comes within the rounding's bound of the n-th best are scored again exactly and ranked
    /// ([`Coarse`]). Where the bound cannot be kept (weights or means near `f32`'s range), every
    /// item is scored exactly.
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
        let coarse = table
            .coarse
            .as_ref()
            .and_then(|c| Some((c, c.margin(&post.weights, post.offset)?)));
        let best = match coarse {
            Some((coarse, margin)) => self.best_by_coarse(table, coarse, margin, post, n, skip),
            None => best_exact(table, post, n, skip),
        };
        best.into_iter()
            .map(|(_, l)| self.predict(post, l))
            .collect()
    }

    /// The n best (exact score, item) pairs outside `skip`: the coarse pass collects every
    /// item whose rough score may rank, the exact scores of those decide. (See [`Coarse`] for
    /// why nothing it leaves out can rank.)
    fn best_by_coarse(
        &self,
        table: &ScoreTable,
        coarse: &Coarse,
        margin: f64,
        post: &Posterior,
        n: usize,
        skip: &[u32],
    ) -> Vec<(f64, u32)> {
        let (d, k) = (table.d, self.k());
        let weights: Vec<f32> = post.weights.iter().map(|&w| w as f32).collect();
        let (offset, mut skip) = (post.offset as f32, SkipWalk::new(skip));
        let mut block = [0.0f32; SCORE_BLOCK];
        let mut rough = RoughBest::new(n);
        // Most requests collect a few times n (each new best so far, as a scan finds them).
        let mut found = Vec::with_capacity(8 * n + 32);
        let stride = coarse.stride;
        for start in (0..d).step_by(SCORE_BLOCK) {
            // Whole chunks scored (the padding's too), the catalogue's items ranked.
            let block = &mut block[..SCORE_BLOCK.min(stride - start)];
            let (by_type, offsets) = (&coarse.by_type[..], &coarse.item_offset[..]);
            coarse_scores(by_type, stride, &weights, offset, offsets, start, block);
            let found_at = CollectAt {
                margin: COLLECT_MARGINS * margin,
                start,
            };
            let items = SCORE_BLOCK.min(d - start);
            coarse_rank(&block[..items], found_at, &mut skip, &mut rough, &mut found);
        }
        // The n best rough scores are each within `margin` of their exact ones, so an item
        // whose rough score is more than three margins below the n-th of them is beaten by n
        // items exactly; at most a few more than n are left to score exactly.
        let floor = f64::from(rough.floor()) - KEEP_MARGINS * margin;
        let means = self.mixture.means.as_slice().expect("standard layout");
        let mut best = Best::new(n);
        for &(rough_score, l) in &found {
            if f64::from(rough_score) >= floor {
                let at = l as usize;
                let shift = post.offset + table.item_offset[at];
                best.offer((exact_score(&means[at * k..][..k], &post.weights, shift), l));
            }
        }
        best.items
    }
}

/// The n best (exact score, item) pairs outside `skip`, every item scored exactly: where the
/// coarse pass's bound cannot be kept.
fn best_exact(table: &ScoreTable, post: &Posterior, n: usize, skip: &[u32]) -> Vec<(f64, u32)> {
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
}

/// One item's score as [`table_scores`] works it out, to the bit: the sum over the types in
/// order from 0, then the shift (`offset + b_l`) added.
#[inline]
fn exact_score(means: &[f64], weights: &[f64], shift: f64) -> f64 {
    let mut acc = 0.0;
    for (&w, &m) in weights.iter().zip(means) {
        acc += w * m;
    }
    acc + shift
}

/// Rough scores this many margins below the n-th best rough score so far are not collected
/// (one more than [`KEEP_MARGINS`]: the threshold itself is rounded to `f32`).
const COLLECT_MARGINS: f64 = 4.0;
/// Collected items this many margins below the final n-th best rough score are not scored
/// exactly.
const KEEP_MARGINS: f64 = 3.0;

/// Where [`coarse_rank`]'s block starts, and how far below the n-th best rough score an item
/// is still collected.
#[derive(Clone, Copy)]
struct CollectAt {
    margin: f64,
    start: usize,
}

dispatched! {
    /// Offers the rough scores of `block` outside `skip` to `rough` and collects, into
    /// `found`, every item whose rough score is within `at.margin` of the n-th best so far.
    fn coarse_rank, coarse_rank_avx2, coarse_rank_avx512 => coarse_rank_generic(
        block: &[f32], at: CollectAt, skip: &mut SkipWalk, rough: &mut RoughBest, found: &mut Vec<(f32, u32)>
    )
}

/// As [`rank_block_generic`]: a group of [`COARSE_GROUP`] rough scores is compared with the
/// collecting threshold at once, and only the items that reach it are looked at.
#[inline(always)]
fn coarse_rank_generic(
    block: &[f32],
    at: CollectAt,
    skip: &mut SkipWalk,
    rough: &mut RoughBest,
    found: &mut Vec<(f32, u32)>,
) {
    let (groups, tail) = block.as_chunks::<COARSE_GROUP>();
    for (g, group) in groups.iter().enumerate() {
        let start = at.start + g * COARSE_GROUP;
        collect_reaching(group, CollectAt { start, ..at }, skip, rough, found);
    }
    let start = at.start + groups.len() * COARSE_GROUP;
    collect_reaching(tail, CollectAt { start, ..at }, skip, rough, found);
}

/// The items of `scores` (at most [`COARSE_GROUP`]) that reach the collecting threshold, in
/// order: one bit an item from one comparison of them all (a vector compare into a mask), then
/// each set bit, rechecked as the threshold rises with what is offered.
#[inline(always)]
fn collect_reaching(
    scores: &[f32],
    at: CollectAt,
    skip: &mut SkipWalk,
    rough: &mut RoughBest,
    found: &mut Vec<(f32, u32)>,
) {
    debug_assert!(scores.len() <= COARSE_GROUP);
    let below = collect_floor(rough, at.margin);
    let mut reach = 0u32;
    for (i, &s) in scores.iter().enumerate() {
        reach |= u32::from(s >= below) << i;
    }
    while reach != 0 {
        let i = reach.trailing_zeros() as usize;
        reach &= reach - 1;
        let s = scores[i];
        if s < collect_floor(rough, at.margin) {
            continue;
        }
        let l = (at.start + i) as u32;
        if !skip.holds(l) {
            found.push((s, l));
            rough.offer(s);
        }
    }
}

/// The rough score below which an item is not collected: `margin` below the n-th best rough
/// score so far (−∞ until there are n; +∞ when n is 0), rounded to `f32`.
#[inline(always)]
fn collect_floor(rough: &RoughBest, margin: f64) -> f32 {
    (f64::from(rough.floor()) - margin) as f32
}

/// The n best rough scores so far, best first: all the coarse pass needs of them is the n-th
/// (ties and items do not matter), so plain `f32` comparisons in a small sorted array, where
/// [`Best`] orders by `total_cmp` and item (`perf annotate` put much of the rough ranking on
/// those comparisons when it used `Best`; a scan makes about n (1 + ln(d/n)) offers).
struct RoughBest {
    n: usize,
    len: usize,
    scores: [f32; STREAMED_TOP_N],
}

impl RoughBest {
    fn new(n: usize) -> Self {
        assert!(n <= STREAMED_TOP_N, "streamed only");
        Self {
            n,
            len: 0,
            scores: [0.0; STREAMED_TOP_N],
        }
    }

    /// The n-th best score (−∞ until there are n, +∞ when n is 0: nothing ranks).
    #[inline(always)]
    fn floor(&self) -> f32 {
        match (self.n, self.len == self.n) {
            (0, _) => f32::INFINITY,
            (n, true) => self.scores[n - 1],
            _ => f32::NEG_INFINITY,
        }
    }

    /// Keeps `s` if it beats the n-th best so far (the pass offers only finite scores).
    #[inline]
    fn offer(&mut self, s: f32) {
        if self.n == 0 || (self.len == self.n && s <= self.scores[self.n - 1]) {
            return;
        }
        let mut at = self.len.min(self.n - 1);
        self.len = (self.len + 1).min(self.n);
        while at > 0 && self.scores[at - 1] < s {
            self.scores[at] = self.scores[at - 1];
            at -= 1;
        }
        self.scores[at] = s;
    }
}

/// Rough scores compared with the collecting threshold at once: one AVX-512 vector.
const COARSE_GROUP: usize = 16;

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
    pub(crate) fn new(skip: &[u32]) -> Self {
        let mut sorted = skip.to_vec();
        sorted.sort_unstable();
        Self { sorted, next: 0 }
    }

    /// Whether `l` is skipped; `l` must not be below any item asked about before.
    #[inline]
    pub(crate) fn holds(&mut self, l: u32) -> bool {
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
    /// `by_type` and `item_offset` rounded to `f32`, where their magnitudes allow.
    coarse: Option<Coarse>,
}

/// The score table rounded to `f32`, for a first pass over the catalogue that only rules
/// items out ([`Model::recommend_from`]).
///
/// Why nothing it rules out could rank: with u = 2⁻²⁴ (`f32`'s unit roundoff), weights w_j
/// rounded to `f32`, means m_lj and shifts c_l = offset + b_l likewise, the rough score of
/// item l differs from its exact one by at most
///
///   ε = (K + 6) u (Σ|w_j| max|m| + |offset| + max|b|) · 1.01 + (K + 2)(max|m| + 1) 2⁻¹⁴⁰:
///
/// rounding the inputs costs 2u of each product and u of each shift's two terms, the K − 1
/// additions and K products at most (K − 1)u and Ku of the sum of the products' magnitudes
/// (the classic bound of a dot product), the last addition u of the total, and the exact
/// (`f64`) score's own error is below 0.01 of all that; the last term covers products and
/// sums that fall to `f32`'s subnormals. With T the n-th best rough score at the end: the n
/// items holding the best rough scores score at least T − ε exactly, and an item whose rough
/// score is below T − 3ε scores below T − 2ε exactly, behind those n: it cannot rank. The pass
/// collects every item whose rough score reaches the n-th best *so far* less 4ε (which only
/// rises towards T; the extra ε covers that threshold's own rounding to `f32`), and the exact
/// scores of the collected items within 3ε of T decide, through the same ranking as before.
///
/// Kept only where every mean and offset is finite and at most [`COARSE_LIMIT`]; a request
/// whose weights or offset would take a rough score past it is scored exactly.
///
/// Each type's row is padded with zeros to whole [`COARSE_CHUNK`]s, so the rough scores of
/// the last items come from the vector loop too (a scalar tail of K dependent additions an
/// item was a quarter of the rough pass where the catalogue did not end on a whole chunk).
#[derive(Debug, Clone, PartialEq)]
struct Coarse {
    /// `m_lj` at `j · stride + l`. (K · stride)
    by_type: Vec<f32>,
    /// b_l, then zeros. (stride)
    item_offset: Vec<f32>,
    /// d rounded up to whole chunks.
    stride: usize,
    /// max |m_lj|, max |b_l| of the exact table.
    max_mean: f64,
    max_offset: f64,
}

/// Items [`coarse_scores`] scores at once (four chains of sixteen).
const COARSE_CHUNK: usize = 64;
const _: () = assert!(
    SCORE_BLOCK.is_multiple_of(COARSE_CHUNK),
    "blocks of whole chunks"
);

/// The largest magnitude of a weight, mean, offset or score bound the coarse pass takes:
/// far inside `f32`'s range (3.4e38) even as the sum of many products.
const COARSE_LIMIT: f64 = 1e30;

impl Coarse {
    /// The rounded table, or `None` where a mean or offset is not finite or past
    /// [`COARSE_LIMIT`].
    fn new(by_type: &[f64], item_offset: &[f64]) -> Option<Self> {
        let largest = |v: &[f64]| -> Option<f64> {
            v.iter().try_fold(0.0f64, |m, x| {
                (x.abs() <= COARSE_LIMIT).then(|| m.max(x.abs()))
            })
        };
        let (max_mean, max_offset) = (largest(by_type)?, largest(item_offset)?);
        let d = item_offset.len();
        let stride = d.div_ceil(COARSE_CHUNK) * COARSE_CHUNK;
        let padded = |row: &[f64]| -> Vec<f32> {
            let mut out: Vec<f32> = row.iter().map(|&x| x as f32).collect();
            out.resize(stride, 0.0);
            out
        };
        Some(Self {
            by_type: by_type.chunks_exact(d.max(1)).flat_map(padded).collect(),
            item_offset: padded(item_offset),
            stride,
            max_mean,
            max_offset,
        })
    }

    /// ε of a request with these weights and offset, or `None` where a rough score could
    /// pass [`COARSE_LIMIT`] (or a weight is not finite).
    fn margin(&self, weights: &[f64], offset: f64) -> Option<f64> {
        let weight_sum: f64 = weights.iter().map(|w| w.abs()).sum();
        let shift = offset.abs() + self.max_offset;
        let bound = weight_sum * self.max_mean + shift;
        // Written so that a NaN refuses.
        if !(weight_sum <= COARSE_LIMIT && shift <= COARSE_LIMIT && bound <= COARSE_LIMIT) {
            return None;
        }
        let k = weights.len() as f64;
        let unit = f64::from(f32::EPSILON) / 2.0;
        let subnormal = (k + 2.0) * (self.max_mean + 1.0) * 2f64.powi(-140);
        Some((k + 6.0) * unit * bound * 1.01 + subnormal)
    }
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
        let item_offset: Vec<f64> = (0..d).map(|l| model.item_offset(l)).collect();
        Self {
            k,
            d,
            coarse: Coarse::new(&by_type, &item_offset),
            by_type,
            item_offset,
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

dispatched! {
    /// [`table_scores`] of the table rounded to `f32` ([`Coarse`]).
    fn coarse_scores, coarse_scores_avx2, coarse_scores_avx512 => coarse_scores_generic(
        by_type: &[f32], d: usize, post: &[f32], offset: f32, item_offset: &[f32], start: usize, out: &mut [f32]
    )
}

/// Thirty-two items at a time in four independent chains of eight.
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
    scores_of_table::<f64, 32>(by_type, d, post, offset, item_offset, start, out);
}

/// Sixty-four items at a time in four independent chains of sixteen.
#[inline(always)]
fn coarse_scores_generic(
    by_type: &[f32],
    d: usize,
    post: &[f32],
    offset: f32,
    item_offset: &[f32],
    start: usize,
    out: &mut [f32],
) {
    scores_of_table::<f32, 64>(by_type, d, post, offset, item_offset, start, out);
}

/// The floats a score table holds.
trait Score:
    Copy + Default + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> + std::ops::AddAssign
{
}
impl Score for f32 {}
impl Score for f64 {}

/// `W` items at a time in four independent chains (one chain's K additions are dependent: one
/// chain alone waits on the adder), each item's sum in a register across the types in order
/// (one store an item).
#[inline(always)]
fn scores_of_table<T: Score, const W: usize>(
    by_type: &[T],
    d: usize,
    post: &[T],
    offset: T,
    item_offset: &[T],
    start: usize,
    out: &mut [T],
) {
    let offsets = &item_offset[start..][..out.len()];
    let (chunks, tail) = out.as_chunks_mut::<W>();
    let (offset_chunks, offset_tail) = offsets.as_chunks::<W>();
    let full = chunks.len() * W;
    for (c, (o, b)) in chunks.iter_mut().zip(offset_chunks).enumerate() {
        // Whole rows as arrays and the offsets chunked beside the output: no index is checked
        // inside the loops, so each runs in vector registers (indexing the offsets by
        // `c · W + i` left the last loop scalar, the sums spilled to the stack).
        let mut acc = [T::default(); W];
        for (j, &p) in post.iter().enumerate() {
            let row: &[T; W] = by_type[j * d + start + c * W..][..W]
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
        let mut acc = T::default();
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
        let mut m = em_model(means, 0.4, true, None);
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

    /// `m` with random means (and item offsets where it has a baseline) whose differences
    /// from item to item are far below `f32`'s resolution: in a third of the items the rough
    /// scores tie where exact ones do not, in another they are the same means moved by about
    /// `f32`'s spacing, so rough and exact scores order them differently; the rest are spread.
    fn near_ties(k: usize, d: usize, seed: u64, baseline: bool) -> Model {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
        let base: Vec<f64> = (0..k).map(|_| rng.random::<f64>() * 4.0 - 2.0).collect();
        let means = ndarray::Array2::from_shape_fn((d, k), |(l, j)| match l % 3 {
            0 => base[j] + (l as f64) * 1e-12,
            1 => base[j] + (rng.random::<f64>() - 0.5) * 4e-7,
            _ => rng.random::<f64>() * 6.0 - 3.0,
        });
        em_model(
            means,
            0.7,
            false,
            baseline.then(|| Baseline {
                global: 3.5,
                item: (0..d)
                    .map(|l| if l % 2 == 0 { 0.25 } else { 1e-9 * l as f64 })
                    .collect(),
                lambda_user: 4.0,
                centre: vec![0.0; d],
                item_var: vec![0.9; d],
                noise: 0.9,
            }),
        )
    }

    /// An EM model of `means` (item-major), every type with `variance` and the same weight,
    /// on a 1–5 scale.
    fn em_model(
        means: ndarray::Array2<f64>,
        variance: f64,
        clip: bool,
        baseline: Option<Baseline>,
    ) -> Model {
        let k = means.ncols();
        Model {
            mixture: Mixture {
                means,
                variances: ndarray::Array1::from_elem(k, variance),
                weights: ndarray::Array1::from_elem(k, 1.0 / k as f64),
            },
            algorithm: Algorithm::Em,
            scale: RatingScale { min: 1.0, max: 5.0 },
            clip,
            baseline,
        }
    }

    #[test]
    fn the_rough_first_pass_ranks_exactly_where_rough_scores_tie() {
        for (k, d) in [(1, 40), (3, 15), (12, 1181), (17, 300)] {
            for baseline in [false, true] {
                let m = near_ties(k, d, (k * d) as u64, baseline);
                let table = ScoreTable::new(&m);
                let coarse = table.coarse.as_ref().expect("means in f32's range");
                let profiles: [Vec<(u32, f64)>; 3] = [
                    vec![],
                    vec![(0, 5.0)],
                    (0..d.min(25) as u32)
                        .map(|l| (l, 1.0 + f64::from(l % 5)))
                        .collect(),
                ];
                for profile in &profiles {
                    let post = m.posterior(profile).unwrap();
                    assert!(coarse.margin(&post.weights, post.offset).is_some());
                    let rated: Vec<u32> = profile.iter().map(|&(l, _)| l).collect();
                    let everything: Vec<u32> = (0..d as u32).collect();
                    for skip in [&[][..], &rated[..], &everything[..d - 1], &everything[..]] {
                        for n in [0, 1, 5, 10, 64] {
                            let (want, got) = (
                                m.recommend(&post, n, skip),
                                m.recommend_from(&table, &post, n, skip),
                            );
                            let bits = |v: &[ItemScore]| -> Vec<(u32, u64, u64)> {
                                v.iter()
                                    .map(|p| (p.item, p.rating.to_bits(), p.spread.to_bits()))
                                    .collect()
                            };
                            assert_eq!(bits(&got), bits(&want), "K {k}, d {d}, n {n}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_rough_floor_is_the_nth_best_score_offered() {
        let scores: Vec<f32> = (0..200u32).map(|i| ((i * 37) % 23) as f32 - 11.5).collect();
        for n in [0, 1, 2, 10, 64] {
            let mut rough = RoughBest::new(n);
            for (i, &s) in scores.iter().enumerate() {
                rough.offer(s);
                let mut seen = scores[..=i].to_vec();
                seen.sort_by(|a, b| b.total_cmp(a));
                let want = match n {
                    0 => f32::INFINITY,
                    n if seen.len() >= n => seen[n - 1],
                    _ => f32::NEG_INFINITY,
                };
                assert_eq!(rough.floor(), want, "n = {n}, after {} scores", i + 1);
            }
        }
    }

    #[test]
    fn tables_past_f32s_range_are_scored_exactly() {
        let mut m = near_ties(4, 100, 7, false);
        m.mixture.means[[3, 1]] = 1e200;
        let table = ScoreTable::new(&m);
        assert!(table.coarse.is_none());
        let post = m.posterior(&[(5, 2.0)]).unwrap();
        let items = |v: Vec<ItemScore>| v.iter().map(|p| p.item).collect::<Vec<_>>();
        assert_eq!(
            items(m.recommend_from(&table, &post, 5, &[])),
            items(m.recommend(&post, 5, &[]))
        );
        // A table in range, a request whose weights are not.
        let m = near_ties(4, 100, 7, false);
        let table = ScoreTable::new(&m);
        let post = Posterior {
            weights: vec![1e31, 0.0, 0.0, 0.0],
            offset: 0.0,
        };
        assert_eq!(
            table.coarse.as_ref().unwrap().margin(&post.weights, 0.0),
            None
        );
        assert_eq!(
            items(m.recommend_from(&table, &post, 5, &[])),
            items(m.recommend(&post, 5, &[]))
        );
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
