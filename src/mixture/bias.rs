//! Baseline predictors: global mean plus regularised user and item offsets.
//!
//! `x_ul ≈ μ + b_u + b_l`, fitted by alternating ridge updates (Koren's baseline estimates):
//!
//! ```text
//! b_l = Σ_{u rated l} (x_ul − μ − b_u) / (λ_item + n_l)
//! b_u = Σ_{l rated by u} w_l (x_ul − μ − b_l) / (λ_user + Σ_{l rated by u} w_l)
//! ```
//!
//! The same user update answers a posted profile: a new user's offset from their ratings.
//!
//! **Precision weights.** `w_l = σ̄² / v_l`, v_l item l's residual variance
//! `(Σ_l r² + κ σ̄²) / (n_l + κ)` (κ = [`VARIANCE_PRIOR`] pseudo-ratings at σ̄², the mean squared
//! residual over all ratings), worked out after a first round of sweeps and held for a second.
//! On the Netflix subset the most popular items are polarising (residual variance 1.9–2.4
//! against 0.76 over all ratings): unweighted, one answer on such an item is read as the user's
//! generosity, and a short profile's offset (what a new user's predictions mostly rest on) is
//! thrown by it. Weighted, an answer counts for what the item's spread says it can tell. The
//! mixture reads the same v_l (see `Baseline::var_scale`).
//!
//! The ridge strengths depend on the data: on the seed's 77 %-dense subset an item has about 900
//! ratings and any λ below 50 is the same, while on a long-tailed catalogue half the items have
//! a handful and λ decides what they are worth. So [`Ridge::tune`] chooses them on held-out
//! ratings (a coordinate search over a log grid, each fit warm-started from the last: a few
//! milliseconds a fit on a million ratings).
//!
//! λ_user is the exception: a held-out share of *ratings* cannot tell its values apart where
//! users keep hundreds of ratings each (on the Netflix subset, about 830: any λ_user below 50
//! moves an offset by under 6 %), yet it is what decides a *new* user's offset, worked out
//! from their first few answers. So it is tuned where it matters: every training user with
//! held-out ratings is folded in again from short profiles ([`SHORT_PROFILES`] of their own
//! training ratings, in a seeded order), the item offsets held, and λ_user is the value of
//! [`RIDGE_GRID`] whose offsets predict their held-out ratings best ([`Biases::fold_in_user`]).
//! One λ serves every length: under the Gaussian model behind the update (`b_u ~ N(0, τ²)`,
//! noise σ²) the best strength is σ²/τ² whatever the profile's length.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64Mcg;

use crate::data::{Held, RatingScale, Ratings, Split, clipped_rmse};

/// Alternating sweeps from zero; the offsets settle to 1e-4 within a handful on rating data.
const SWEEPS: usize = 10;
/// Sweeps of a fit warm-started from a neighbouring λ's offsets.
const WARM_SWEEPS: usize = 4;
/// The λ values [`Ridge::tune`] tries for each of the two strengths.
pub const RIDGE_GRID: [f64; 10] = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// The profile lengths λ_user is tuned on: a new user's first answers.
pub const SHORT_PROFILES: [usize; 5] = [1, 2, 3, 5, 10];
/// Rounds of the coordinate search (item strength, then user strength, per round).
const TUNE_ROUNDS: usize = 3;
/// Pseudo-ratings at the global residual variance that an item's own variance is shrunk with.
pub const VARIANCE_PRIOR: f64 = 5.0;

/// Ridge strengths of the item and user offsets, in pseudo-ratings at the global mean.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ridge {
    /// λ_item.
    pub item: f64,
    /// λ_user.
    pub user: f64,
}

impl Default for Ridge {
    /// λ_item = 10, λ_user = 15: the constants chosen on the seed's dense subset, kept for
    /// explicit configurations; the default model tunes them.
    fn default() -> Self {
        Self {
            item: 10.0,
            user: 15.0,
        }
    }
}

impl Ridge {
    /// λ_item with the lowest RMSE on `split.test` (predictions clipped to `scale`), searched
    /// one coordinate at a time over [`RIDGE_GRID`] from [`Ridge::default`]; then λ_user by
    /// [`Biases::fold_in_user`] (see the module docs); and the RMSE on `split.test` of the two.
    /// Deterministic: ties keep the earlier value.
    pub fn tune(split: &Split, scale: RatingScale) -> (Self, f64) {
        let train = Both::new(&split.train);
        let (mut best, mut fitted, mut rmse) = Self::search(split, &train, scale);
        let user = fitted.fold_in_user(split, scale);
        if user != best.user {
            best.user = user;
            fitted = fitted.refit(&train, best);
            rmse = fitted.rmse(&split.test, scale);
        }
        (best, rmse)
    }

    /// The coordinate search on the held-out ratings alone: the strengths, their fit and RMSE.
    fn search(split: &Split, train: &Both<'_>, scale: RatingScale) -> (Self, Biases, f64) {
        let mut best = Self::default();
        let mut fitted = Biases::fit_both(train, best);
        let mut best_rmse = fitted.rmse(&split.test, scale);
        for _ in 0..TUNE_ROUNDS {
            let before = best;
            for coordinate in [0, 1] {
                for &lambda in &RIDGE_GRID {
                    let mut ridge = best;
                    *if coordinate == 0 {
                        &mut ridge.item
                    } else {
                        &mut ridge.user
                    } = lambda;
                    if ridge == best {
                        continue;
                    }
                    let b = fitted.refit(train, ridge);
                    let rmse = b.rmse(&split.test, scale);
                    if rmse < best_rmse {
                        (best, best_rmse, fitted) = (ridge, rmse, b);
                    }
                }
            }
            if best == before {
                break;
            }
        }
        (best, fitted, best_rmse)
    }
}

/// Fitted offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Biases {
    /// μ, the mean of all ratings.
    pub global: f64,
    /// b_l per item. (n_items,)
    pub item: Vec<f64>,
    /// b_u per training user. (n_users,)
    pub user: Vec<f64>,
    /// The strengths they were fitted with.
    pub ridge: Ridge,
    /// v_l, each item's residual variance, shrunk toward `noise` by [`VARIANCE_PRIOR`]
    /// pseudo-ratings. (n_items,)
    pub item_var: Vec<f64>,
    /// σ̄², the mean squared residual over all ratings.
    pub noise: f64,
}

/// Ratings by user and the same ratings by item (each item's raters ascending). The item
/// updates walk items, every item on its own and in parallel: each item's sum runs over its
/// raters in the order a walk over users meets them, so the bits are those of that walk (which
/// is how they were summed before, on one core: at 100 M ratings a fit's item updates took 3 s
/// of its 10 s set-up).
pub(crate) struct Both<'r> {
    by_user: &'r Ratings,
    by_item: Ratings,
}

impl<'r> Both<'r> {
    /// `ratings` and their transpose.
    pub(crate) fn new(by_user: &'r Ratings) -> Self {
        Self {
            by_user,
            by_item: by_user.transposed(),
        }
    }
}

/// `f(l, users, values)` for every item l, in parallel, collected in item order.
fn per_item<T: Send>(
    by_item: &Ratings,
    f: impl Fn(usize, &[u32], &[f32]) -> T + Sync + Send,
) -> Vec<T> {
    use rayon::prelude::*;
    (0..by_item.n_users())
        .into_par_iter()
        .with_min_len(64)
        .map(|l| {
            let (users, values) = by_item.row(l);
            f(l, users, values)
        })
        .collect()
}

impl Biases {
    /// Fits μ, b_u and b_l to `ratings` with strengths `ridge`.
    pub fn fit(ratings: &Ratings, ridge: Ridge) -> Self {
        Self::fit_both(&Both::new(ratings), ridge)
    }

    /// [`Biases::fit`] on ratings already transposed.
    pub(crate) fn fit_both(ratings: &Both<'_>, ridge: Ridge) -> Self {
        let by_user = ratings.by_user;
        let global =
            by_user.iter().map(|(_, _, x)| f64::from(x)).sum::<f64>() / by_user.nnz().max(1) as f64;
        let b = Self {
            global,
            item: vec![0.0; by_user.n_items()],
            user: vec![0.0; by_user.n_users()],
            ridge,
            item_var: vec![1.0; by_user.n_items()],
            noise: 1.0,
        };
        b.sweep(ratings, SWEEPS)
    }

    /// Fits again with other strengths, starting from these offsets.
    fn refit(&self, ratings: &Both<'_>, ridge: Ridge) -> Self {
        Self {
            ridge,
            ..self.clone()
        }
        .sweep(ratings, WARM_SWEEPS)
    }

    /// `sweeps` sweeps with the item variances held, then the variances of what they leave,
    /// then `sweeps` more: the variances kept are those the final offsets were weighted by.
    fn sweep(self, ratings: &Both<'_>, sweeps: usize) -> Self {
        let mut b = self.sweep_held(ratings, sweeps);
        b.update_variances(&ratings.by_item);
        b.sweep_held(ratings, sweeps)
    }

    fn sweep_held(mut self, ratings: &Both<'_>, sweeps: usize) -> Self {
        use rayon::prelude::*;
        let by_user = ratings.by_user;
        let mut next = Vec::with_capacity(self.user.len());
        // The variances are held: each item's weight is worked out once, not once a rating
        // (the same division, so the same bits).
        let weights: Vec<f64> = (0..by_user.n_items() as u32)
            .map(|l| self.weight(l))
            .collect();
        for _ in 0..sweeps {
            self.update_items(&ratings.by_item);
            // Each user's offset from their own row and the item offsets alone: in parallel,
            // the same bits.
            (0..by_user.n_users())
                .into_par_iter()
                .map(|u| {
                    let (items, values) = by_user.row(u);
                    let values = values.iter().map(|&x| f64::from(x));
                    self.offset_weighted(items, values, |l| weights[l as usize])
                })
                .collect_into_vec(&mut next);
            std::mem::swap(&mut self.user, &mut next);
        }
        self
    }

    fn update_items(&mut self, by_item: &Ratings) {
        let (global, user, lambda) = (self.global, &self.user, self.ridge.item);
        self.item = per_item(by_item, |_, users, values| {
            let mut sum = 0.0;
            for (&u, &x) in users.iter().zip(values) {
                sum += f64::from(x) - global - user[u as usize];
            }
            sum / (lambda + users.len() as f64)
        });
    }

    /// v_l and σ̄² from the residuals `x − μ − b_u − b_l` of these offsets:
    /// `σ̄² = mean r²`, `v_l = (Σ_l r² + κ σ̄²) / (n_l + κ)`, κ = [`VARIANCE_PRIOR`].
    fn update_variances(&mut self, by_item: &Ratings) {
        let (sq, count): (Vec<f64>, Vec<f64>) = per_item(by_item, |l, users, values| {
            let mut sq = 0.0;
            for (&u, &x) in users.iter().zip(values) {
                let r = f64::from(x) - self.predict(u as usize, l as u32);
                sq += r * r;
            }
            (sq, users.len() as f64)
        })
        .into_iter()
        .unzip();
        let total: f64 = count.iter().sum();
        if total == 0.0 {
            return;
        }
        let noise = (sq.iter().sum::<f64>() / total).max(1e-12);
        self.noise = noise;
        for ((v, s), n) in self.item_var.iter_mut().zip(sq).zip(count) {
            *v = ((s + VARIANCE_PRIOR * noise) / (n + VARIANCE_PRIOR)).max(1e-12);
        }
    }

    /// w_l = σ̄² / v_l, the weight of an answer on item l in a user's offset.
    #[inline]
    pub fn weight(&self, l: u32) -> f64 {
        self.noise / self.item_var[l as usize]
    }

    /// The offset of a user who rated `items` with `values`:
    /// `b_u = Σ w_l (x − μ − b_l) / (λ_user + Σ w_l)`.
    pub fn user_offset(&self, items: &[u32], values: impl Iterator<Item = f64>) -> f64 {
        self.offset_weighted(items, values, |l| self.weight(l))
    }

    /// [`Biases::user_offset`] with item l's weight `weight(l)`.
    #[inline(always)]
    fn offset_weighted(
        &self,
        items: &[u32],
        values: impl Iterator<Item = f64>,
        weight: impl Fn(u32) -> f64,
    ) -> f64 {
        let (mut sum, mut n) = (0.0, 0.0);
        for (&l, x) in items.iter().zip(values) {
            let w = weight(l);
            sum += w * (x - self.global - self.item[l as usize]);
            n += w;
        }
        sum / (self.ridge.user + n)
    }

    /// The λ_user of [`RIDGE_GRID`] that predicts new users best from a few ratings: each
    /// training user with ratings in `split.test` is folded in from the first `n` of their
    /// training ratings in a seeded order, for each `n` of [`SHORT_PROFILES`] they have, with
    /// these item offsets, and scored on their held-out ratings (clipped to `scale`). Ties keep
    /// the smaller λ; with nothing to score, these offsets' own λ_user.
    pub fn fold_in_user(&self, split: &Split, scale: RatingScale) -> f64 {
        let mut sse = [0.0; RIDGE_GRID.len()];
        let mut scored = 0usize;
        let mut residuals: Vec<(f64, f64)> = Vec::new();
        for held in split.test.chunk_by(|a, b| a.user == b.user) {
            let u = held[0].user;
            let (items, values) = split.train.row(u as usize);
            residuals.clear();
            residuals.extend(items.iter().zip(values).map(|(&l, &x)| {
                let w = self.weight(l);
                (w * (f64::from(x) - self.global - self.item[l as usize]), w)
            }));
            residuals.shuffle(&mut Pcg64Mcg::seed_from_u64(u64::from(u)));
            for &n in SHORT_PROFILES.iter().filter(|&&n| n <= residuals.len()) {
                let sum: f64 = residuals[..n].iter().map(|r| r.0).sum();
                let weight: f64 = residuals[..n].iter().map(|r| r.1).sum();
                for (e, lambda) in sse.iter_mut().zip(RIDGE_GRID) {
                    let b = self.global + sum / (lambda + weight);
                    *e += held
                        .iter()
                        .map(|h| {
                            let d =
                                scale.clip(b + self.item[h.item as usize]) - f64::from(h.rating);
                            d * d
                        })
                        .sum::<f64>();
                }
                scored += held.len();
            }
        }
        if scored == 0 {
            return self.ridge.user;
        }
        let best = (0..sse.len()).fold(0, |b, g| if sse[g] < sse[b] { g } else { b });
        RIDGE_GRID[best]
    }

    /// μ + b_u + b_l for training user `u`.
    pub fn predict(&self, u: usize, l: u32) -> f64 {
        self.global + self.user[u] + self.item[l as usize]
    }

    /// RMSE of the clipped predictions on `test`.
    pub fn rmse(&self, test: &[Held], scale: RatingScale) -> f64 {
        clipped_rmse(test, scale, |u, l| self.predict(u, l))
    }

    /// What a mixture over residuals is trained on: the ratings minus their baseline, each
    /// item's residuals centred on zero.
    ///
    /// Centring leaves the item effect to the baseline, whose ridge decided how much of it an
    /// item's few ratings can carry: what the types model is how users *differ* on an item,
    /// and with one type (no differences) the model is the baseline exactly. Without it, an
    /// item's leftover mean residual (for an item with two ratings, most of those two ratings'
    /// offset) would come back through the types' means.
    pub fn residuals(&self, ratings: &Ratings) -> Ratings {
        self.residuals_by_user(Both::new(ratings)).0
    }

    /// [`Biases::residuals`] by user and by item (the item-major copy made from the
    /// transpose's own values, in place: the same arrays as a transpose of the residuals), and
    /// each item's mean residual that was taken off (see [`Biases::residual_means`]).
    pub(crate) fn residuals_both(&self, ratings: Both<'_>) -> (Ratings, Ratings, Vec<f64>) {
        let centre = self.residual_means(&ratings.by_item);
        let by_user = self.user_residuals(ratings.by_user, &centre);
        let by_item = ratings
            .by_item
            .map_values_in_place(|l, u, x| self.residual(&centre, u as usize, l as u32, x));
        (by_user, by_item, centre)
    }

    /// [`Self::residuals_both`] without the residuals by item, for a model that walks users
    /// only: the transpose is read for the residual means, then dropped before the residuals
    /// are made (at 100 M ratings, 800 MB that need not live beside them).
    pub(crate) fn residuals_by_user(&self, ratings: Both<'_>) -> (Ratings, Vec<f64>) {
        let centre = self.residual_means(&ratings.by_item);
        drop(ratings.by_item);
        (self.user_residuals(ratings.by_user, &centre), centre)
    }

    /// The residuals by user, sharing the ratings' index.
    fn user_residuals(&self, by_user: &Ratings, centre: &[f64]) -> Ratings {
        by_user.map_values(|u, l, x| self.residual(centre, u, l, x))
    }

    /// `x − μ − b_u − b_l − centre_l`, in f32 as the ratings are stored.
    #[inline]
    fn residual(&self, centre: &[f64], u: usize, l: u32, x: f32) -> f32 {
        (f64::from(x) - self.predict(u, l) - centre[l as usize]) as f32
    }

    /// Mean residual `x − μ − b_u − b_l` of each item (0 for items without ratings), from the
    /// ratings by item. (n_items,)
    fn residual_means(&self, by_item: &Ratings) -> Vec<f64> {
        per_item(by_item, |l, users, values| {
            let mut sum = 0.0;
            for (&u, &x) in users.iter().zip(values) {
                sum += f64::from(x) - self.predict(u as usize, l as u32);
            }
            if users.is_empty() {
                0.0
            } else {
                sum / users.len() as f64
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_generous_users_and_good_items() {
        // Users 0-9 rate everything one star above users 10-19; item 0 is one star above item 1.
        let rows: Vec<Vec<f64>> = (0..20)
            .map(|u| {
                let base = if u < 10 { 4.0 } else { 3.0 };
                vec![base, base - 1.0]
            })
            .collect();
        let b = Biases::fit(&Ratings::from_dense_rows(&rows), Ridge::default());
        assert_eq!(b.global, 3.0);
        assert!(b.user[0] > 0.0 && b.user[15] < 0.0 && (b.user[0] + b.user[15]).abs() < 1e-9);
        assert!(b.item[0] > 0.0 && (b.item[0] + b.item[1]).abs() < 1e-9);
        let r = b.residuals(&Ratings::from_dense_rows(&rows));
        assert!(r.iter().all(|(_, _, x)| x.abs() < 1.0));
    }

    #[test]
    fn a_polarising_item_tells_the_offset_less() {
        // Item 0 splits the users (1 or 5), item 1 is rated 3 ± 0.5 by everyone.
        let rows: Vec<Vec<f64>> = (0..40)
            .map(|u| {
                let split = if u % 2 == 0 { 1.0 } else { 5.0 };
                vec![split, 3.0 + if u % 4 < 2 { 0.5 } else { -0.5 }, 3.0]
            })
            .collect();
        let b = Biases::fit(&Ratings::from_dense_rows(&rows), Ridge::default());
        assert!(b.item_var[0] > 4.0 * b.item_var[1], "{:?}", b.item_var);
        assert!(b.weight(0) < 1.0 && b.weight(1) > 1.0);
        // The same deviation from the item's mean moves the offset less on the polariser.
        let on = |l: u32| b.user_offset(&[l], [b.global + b.item[l as usize] + 1.0].into_iter());
        assert!(on(0) > 0.0 && on(0) < on(1) / 4.0, "{} {}", on(0), on(1));
    }

    #[test]
    fn a_profile_folds_in_to_its_training_offset() {
        // The identity K = 1 rests on: a posted profile's offset is the training user's.
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
        let rows: Vec<Vec<f64>> = (0..60)
            .map(|_| {
                (0..25)
                    .map(|l| {
                        let seen = rng.random::<f64>() < 0.5;
                        let spread = 0.2 + (l % 5) as f64 * 0.5;
                        let x = 3.0 + rng.random_range(-spread..spread);
                        if seen { x.round().clamp(1.0, 5.0) } else { 0.0 }
                    })
                    .collect()
            })
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        let ridge = Ridge {
            item: 4.0,
            user: 8.0,
        };
        let biases = Biases::fit(&r, ridge);
        let (baseline, _) = super::super::Baseline::fit(&r, ridge);
        assert_eq!(baseline.item_var, biases.item_var);
        assert!(
            biases
                .item_var
                .iter()
                .any(|&v| (v - biases.noise).abs() > 0.1)
        );
        for u in 0..r.n_users() {
            let (items, values) = r.row(u);
            let profile: Vec<(u32, f64)> = items
                .iter()
                .zip(values)
                .map(|(&l, &x)| (l, f64::from(x)))
                .collect();
            let folded = baseline.offset(&profile) - baseline.global;
            assert!((folded - biases.user[u]).abs() < 1e-12, "user {u}");
        }
    }

    #[test]
    fn residuals_by_item_are_the_transpose_of_residuals_by_user() {
        let rows: Vec<Vec<f64>> = (0..500)
            .map(|u| {
                (0..30)
                    .map(|l| {
                        if (u * 7 + l * 3) % 5 < 2 {
                            0.0
                        } else {
                            1.0 + ((u + l) % 5) as f64
                        }
                    })
                    .collect()
            })
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        let b = Biases::fit(&r, Ridge::default());
        let (by_user, by_item, centre) = b.residuals_both(Both::new(&r));
        assert_eq!(by_item, by_user.transposed());
        assert_eq!(by_user, b.residuals(&r));
        assert!(centre.iter().any(|&c| c != 0.0));
        // The residuals by user alone are the same bits.
        assert_eq!(
            b.residuals_by_user(Both::new(&r)),
            (by_user.clone(), centre.clone())
        );
        let ridge = Ridge::default();
        let (alone, residuals) = super::super::Baseline::fit(&r, ridge);
        let (with_items, same, _) = super::super::Baseline::fit_both(&r, ridge);
        assert_eq!((alone, residuals), (with_items, same));
        // The sweeps by item give the bits of the walk over users they replaced.
        let mut sum = vec![0.0; r.n_items()];
        for (u, l, x) in r.iter() {
            sum[l as usize] += f64::from(x) - b.predict(u, l);
        }
        let counts = r.transposed();
        for (l, s) in sum.iter().enumerate() {
            assert_eq!(centre[l], s / counts.row(l).0.len() as f64, "item {l}");
        }
    }

    #[test]
    fn residuals_are_centred_per_item() {
        let rows: Vec<Vec<f64>> = (0..30)
            .map(|u| vec![1.0 + (u % 5) as f64, if u % 3 == 0 { 5.0 } else { 0.0 }])
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        let b = Biases::fit(&r, Ridge::default());
        let res = b.residuals(&r).transposed();
        for l in 0..2 {
            let sum: f64 = res.row(l).1.iter().map(|&x| f64::from(x)).sum();
            assert!(sum.abs() < 1e-5, "item {l}: {sum}");
        }
    }

    #[test]
    fn tuning_shrinks_offsets_that_carry_no_signal_and_keeps_those_that_do() {
        use rand::{RngExt, SeedableRng};
        // 300 users a whole star apart (±0.5), 60 items all truly average, noise ±1, each
        // entry observed with probability 0.3: item offsets are pure noise, users' are not.
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
        let rows: Vec<Vec<f64>> = (0..300)
            .map(|u| {
                let offset = if u % 2 == 0 { 0.5 } else { -0.5 };
                (0..60)
                    .map(|_| {
                        let seen = rng.random::<f64>() < 0.3;
                        let noise: f64 = rng.random_range(-1.0..1.0);
                        if seen {
                            (3.0 + offset + noise).clamp(1.0, 5.0)
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        let split = crate::data::holdout(&r, 0.2, 3);
        let scale = RatingScale { min: 1.0, max: 5.0 };
        let (ridge, rmse) = Ridge::tune(&split, scale);
        assert_eq!(Ridge::tune(&split, scale), (ridge, rmse), "deterministic");
        let default = Biases::fit(&split.train, Ridge::default()).rmse(&split.test, scale);
        assert!(rmse <= default, "{rmse} > {default}");
        assert!(ridge.item >= 64.0 && ridge.user <= 8.0, "{ridge:?}");
    }

    #[test]
    fn the_user_ridge_is_tuned_on_short_profiles_near_noise_over_spread() {
        use rand::{RngExt, SeedableRng};
        // 400 users with offsets ±0.5 (τ² = 0.25) rating all 200 items with noise of variance
        // 1/3 · 1.5² = 0.75: the best shrinkage of a short profile is σ²/τ² = 3, while on
        // whole profiles (200 ratings) every λ_user of the grid predicts about the same.
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(5);
        let rows: Vec<Vec<f64>> = (0..400)
            .map(|u| {
                let offset = if u % 2 == 0 { 0.5 } else { -0.5 };
                (0..200)
                    .map(|_| 3.0 + offset + rng.random_range(-1.5..1.5))
                    .collect()
            })
            .collect();
        let split = crate::data::holdout(&Ratings::from_dense_rows(&rows), 0.1, 1);
        let scale = RatingScale {
            min: -10.0,
            max: 10.0,
        };
        let fitted = Biases::fit(&split.train, Ridge::default());
        let lambda = fitted.fold_in_user(&split, scale);
        assert!((2.0..=4.0).contains(&lambda), "{lambda}");
        let (ridge, _) = Ridge::tune(&split, scale);
        assert!((2.0..=4.0).contains(&ridge.user), "{ridge:?}");
    }
}
