//! Held-out splits: hide a seeded share of the observed ratings from training so predictions
//! can be scored on ratings the model never saw.
//!
//! Every user and every item keeps at least one training rating (a rating that would take a
//! user's or an item's last one stays in training), so every hidden rating has something to be
//! predicted from.
//!
//! Must not import: anything above `src/data`; the snapshot formats.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64Mcg;

use super::{RatingScale, Ratings, RatingsBuilder};

/// One hidden rating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Held {
    /// User index.
    pub user: u32,
    /// Item index.
    pub item: u32,
    /// The rating.
    pub rating: f32,
}

/// RMSE of `predict(user, item)` on `test`, each prediction clipped into `scale` first (0 for an
/// empty test): how the baselines score themselves while they tune (the models' full scores,
/// with MAE, are `crate::score`'s).
pub fn clipped_rmse(test: &[Held], scale: RatingScale, predict: impl Fn(usize, u32) -> f64) -> f64 {
    let sq: f64 = test
        .iter()
        .map(|h| {
            let e = scale.clip(predict(h.user as usize, h.item)) - f64::from(h.rating);
            e * e
        })
        .sum();
    (sq / test.len().max(1) as f64).sqrt()
}

/// Training ratings and the ratings hidden from them.
#[derive(Debug, Clone)]
pub struct Split {
    /// What the model may see.
    pub train: Ratings,
    /// What it is scored on, in (user, item) order.
    pub test: Vec<Held>,
}

/// Hides about `share` of the ratings, chosen by `seed`.
pub fn holdout(ratings: &Ratings, share: f64, seed: u64) -> Split {
    let order = shuffled(ratings, seed);
    let target = (ratings.nnz() as f64 * share.clamp(0.0, 1.0)).round() as usize;
    let mut fold = vec![false; ratings.nnz()];
    hide(ratings, &order, target, &mut fold);
    // The order is a word a rating (800 MB at 100 M): gone before the shares are built.
    drop(order);
    build(ratings, &fold)
}

impl Split {
    /// The ratings this split was made from, the same arrays: each user's training row and
    /// hidden ratings merged back by item (a search can let the ratings go while it runs on
    /// the split, and have them back for the final fit).
    pub fn rejoin(self) -> Ratings {
        let Split { train, test } = self;
        let mut all = RatingsBuilder::with_capacity(
            train.n_items(),
            train.n_users(),
            train.nnz() + test.len(),
        );
        let mut hidden = test.iter().peekable();
        for u in 0..train.n_users() {
            let (items, values) = train.row(u);
            for (&l, &x) in items.iter().zip(values) {
                while let Some(h) = hidden.next_if(|h| h.user as usize == u && h.item < l) {
                    all.push(h.item, h.rating);
                }
                all.push(l, x);
            }
            while let Some(h) = hidden.next_if(|h| h.user as usize == u) {
                all.push(h.item, h.rating);
            }
            all.end_row();
        }
        all.finish()
    }
}

/// `folds` disjoint splits: fold f hides the f-th slice of one seeded order of the ratings
/// (less any rating that would be a user's or item's last in training).
pub fn k_fold(ratings: &Ratings, folds: usize, seed: u64) -> Vec<Split> {
    let order = shuffled(ratings, seed);
    let folds = folds.max(2);
    (0..folds)
        .map(|f| {
            let slice = &order[order.len() * f / folds..order.len() * (f + 1) / folds];
            let mut fold = vec![false; ratings.nnz()];
            hide(ratings, slice, slice.len(), &mut fold);
            build(ratings, &fold)
        })
        .collect()
}

/// All rating positions (index into the rows' storage), in a seeded random order.
fn shuffled(ratings: &Ratings, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..ratings.nnz()).collect();
    order.shuffle(&mut Pcg64Mcg::seed_from_u64(seed));
    order
}

/// Marks up to `target` positions of `candidates` as hidden, keeping one training rating per
/// user and per item.
fn hide(ratings: &Ratings, candidates: &[usize], target: usize, hidden: &mut [bool]) {
    let offsets = ratings.offsets();
    let user_of = |pos: usize| offsets.partition_point(|&o| o as usize <= pos) - 1;
    let mut user_left: Vec<usize> = (0..ratings.n_users())
        .map(|u| ratings.row(u).0.len())
        .collect();
    let mut item_left = vec![0usize; ratings.n_items()];
    for (_, l, _) in ratings.iter() {
        item_left[l as usize] += 1;
    }
    let mut count = 0;
    for &pos in candidates {
        if count == target {
            break;
        }
        let u = user_of(pos);
        let (items, _) = ratings.row(u);
        let l = items[pos - offsets[u] as usize] as usize;
        if user_left[u] > 1 && item_left[l] > 1 {
            user_left[u] -= 1;
            item_left[l] -= 1;
            hidden[pos] = true;
            count += 1;
        }
    }
}

fn build(ratings: &Ratings, hidden: &[bool]) -> Split {
    let mut train =
        RatingsBuilder::with_capacity(ratings.n_items(), ratings.n_users(), ratings.nnz());
    let mut test = Vec::new();
    let mut pos = 0;
    for u in 0..ratings.n_users() {
        let (items, values) = ratings.row(u);
        for (&l, &x) in items.iter().zip(values) {
            if hidden[pos] {
                test.push(Held {
                    user: u as u32,
                    item: l,
                    rating: x,
                });
            } else {
                train.push(l, x);
            }
            pos += 1;
        }
        train.end_row();
    }
    Split {
        train: train.finish(),
        test,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Ratings {
        let rows: Vec<Vec<f64>> = (0..50)
            .map(|u| {
                (0..20)
                    .map(|l| {
                        if (u + l) % 3 == 0 {
                            0.0
                        } else {
                            ((u * l) % 5 + 1) as f64
                        }
                    })
                    .collect()
            })
            .collect();
        Ratings::from_dense_rows(&rows)
    }

    #[test]
    fn a_split_rejoins_into_the_ratings_it_came_from() {
        let r = grid();
        for (share, seed) in [(0.1, 1), (0.5, 2), (0.0, 3), (1.0, 4)] {
            let split = holdout(&r, share, seed);
            assert_eq!(split.train.nnz() + split.test.len(), r.nnz());
            assert_eq!(split.rejoin(), r, "share {share}, seed {seed}");
        }
        for split in k_fold(&r, 3, 5) {
            assert!(!split.test.is_empty());
            assert_eq!(split.rejoin(), r);
        }
    }

    #[test]
    fn holdout_hides_the_share_and_keeps_everyone_trainable() {
        let r = grid();
        let s = holdout(&r, 0.1, 3);
        assert_eq!(s.test.len() + s.train.nnz(), r.nnz());
        assert_eq!(s.test.len(), (r.nnz() as f64 * 0.1).round() as usize);
        assert!((0..r.n_users()).all(|u| !s.train.row(u).0.is_empty()));
        for h in &s.test {
            assert_eq!(r.get(h.user as usize, h.item), Some(h.rating));
            assert_eq!(s.train.get(h.user as usize, h.item), None);
        }
        assert_eq!(holdout(&r, 0.1, 3).test, s.test, "seeded");
        assert_ne!(holdout(&r, 0.1, 4).test, s.test);
    }

    #[test]
    fn folds_are_disjoint() {
        let r = grid();
        let folds = k_fold(&r, 5, 1);
        let mut seen = std::collections::HashSet::new();
        for f in &folds {
            for h in &f.test {
                assert!(seen.insert((h.user, h.item)), "a rating in two folds");
            }
        }
        assert!(seen.len() > r.nnz() * 9 / 10);
    }

    #[test]
    fn a_lone_rating_stays_in_training() {
        let r = Ratings::from_dense_rows(&[vec![5.0, 0.0], vec![3.0, 4.0]]);
        let s = holdout(&r, 1.0, 0);
        assert!(s.train.row(0).0 == [0] && s.train.nnz() >= 2);
    }
}
