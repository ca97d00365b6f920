//! Regularised, biased matrix factorisation by alternating least squares: the standard a user
//! compares a recommender against.
//!
//! `x_ul ≈ μ + b_u + b_l + p_u · q_l`, with rank-r factors. With the items fixed, each user's
//! `(b_u, p_u)` is a ridge regression on that user's ratings, and the other way round:
//!
//! ```text
//! (Σ_l z_l z_lᵀ + λ n_u I) (b_u, p_u) = Σ_l (x_ul − μ − b_l) z_l,      z_l = (1, q_l)
//! ```
//!
//! The ridge grows with the number of ratings (`λ n_u`, "ALS-WR", Zhou et al. 2008), so one λ
//! suits users and items with few ratings and with many. Rank and λ are chosen on a held-out
//! share of the training ratings ([`tune`]); each user's and item's solve is independent, so
//! the result is the same whatever the number of threads.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;

use crate::data::{Held, RatingScale, Ratings, Split, clipped_rmse, holdout};
use crate::linalg;

/// Alternations (a user pass and an item pass each); held-out RMSE settles within about ten.
pub const ITERATIONS: usize = 15;
/// Ranks [`tune`] tries.
pub const RANK_GRID: [usize; 5] = [1, 2, 5, 10, 20];
/// λ values [`tune`] tries (per rating: the ridge is λ n).
pub const LAMBDA_GRID: [f64; 6] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5];
/// Share of the training ratings [`tune`] holds out.
const TUNE_SHARE: f64 = 0.1;
/// Half-width of the uniform initial item factors.
const INIT_SCALE: f64 = 0.1;

/// ALS settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct AlsParams {
    /// Rank r of the factors.
    pub rank: usize,
    /// Ridge per rating λ.
    pub lambda: f64,
    /// Seed of the initial item factors.
    pub seed: u64,
}

/// A fitted factorisation.
#[derive(Debug, Clone)]
pub struct Als {
    rank: usize,
    global: f64,
    /// (b_u, p_u) per user, rows of r + 1. (n_users · (r + 1))
    users: Vec<f64>,
    /// (b_l, q_l) per item, rows of r + 1. (n_items · (r + 1))
    items: Vec<f64>,
}

impl Als {
    /// Fits `ratings` (users by row) with `params`.
    pub fn fit(ratings: &Ratings, params: AlsParams) -> Self {
        let by_item = ratings.transposed();
        let w = params.rank + 1;
        let global =
            ratings.iter().map(|(_, _, x)| f64::from(x)).sum::<f64>() / ratings.nnz().max(1) as f64;
        let mut rng = Pcg64Mcg::seed_from_u64(params.seed);
        let mut items: Vec<f64> = (0..ratings.n_items() * w)
            .map(|i| {
                if i % w == 0 {
                    0.0
                } else {
                    rng.random_range(-INIT_SCALE..INIT_SCALE)
                }
            })
            .collect();
        let mut users = vec![0.0; ratings.n_users() * w];
        for _ in 0..ITERATIONS {
            half_step(ratings, &items, &mut users, global, params);
            half_step(&by_item, &users, &mut items, global, params);
        }
        Self {
            rank: params.rank,
            global,
            users,
            items,
        }
    }

    /// μ + b_u + b_l + p_u · q_l.
    pub fn predict(&self, u: usize, l: u32) -> f64 {
        let w = self.rank + 1;
        let (pu, ql) = (
            &self.users[u * w..][..w],
            &self.items[l as usize * w..][..w],
        );
        self.global
            + pu[0]
            + ql[0]
            + pu[1..]
                .iter()
                .zip(&ql[1..])
                .map(|(a, b)| a * b)
                .sum::<f64>()
    }

    /// RMSE of the clipped predictions on `test`.
    pub fn rmse(&self, test: &[Held], scale: RatingScale) -> f64 {
        clipped_rmse(test, scale, |u, l| self.predict(u, l))
    }
}

/// Solves every row of `rows` (users, or items over the transposed ratings) given the other
/// side's `fixed` rows: `out` row u = (b_u, p_u).
fn half_step(rows: &Ratings, fixed: &[f64], out: &mut [f64], global: f64, params: AlsParams) {
    let w = params.rank + 1;
    out.par_chunks_mut(w).enumerate().for_each(|(u, x)| {
        let (cols, values) = rows.row(u);
        x.fill(0.0);
        if cols.is_empty() {
            return;
        }
        // A = Σ z zᵀ + λ n I over the row's ratings, with z = (1, q) and the other side's bias
        // taken off the target: rhs = Σ (x − μ − b_other) z. The full square is summed (twice
        // the arithmetic of a triangle, but contiguous rows the compiler vectorises).
        let mut a = vec![0.0; w * w];
        let mut z = vec![0.0; w];
        for (&l, &v) in cols.iter().zip(values) {
            let other = &fixed[l as usize * w..][..w];
            z.copy_from_slice(other);
            z[0] = 1.0;
            let target = f64::from(v) - global - other[0];
            for (i, &zi) in z.iter().enumerate() {
                x[i] += target * zi;
                a[i * w..][..w]
                    .iter_mut()
                    .zip(&z)
                    .for_each(|(r, &zj)| *r += zi * zj);
            }
        }
        let ridge = params.lambda * cols.len() as f64;
        for i in 0..w {
            a[i * w + i] += ridge;
        }
        linalg::cholesky(&mut a, w).expect("a ridge makes the system positive definite");
        linalg::solve(&a, w, x);
    });
}

/// Rank and λ with the lowest RMSE on a held-out share of `train` (predictions clipped to
/// `scale`): up [`RANK_GRID`], each rank with its λ walked over [`LAMBDA_GRID`] from the last
/// rank's (see [`crate::select::walk`]), until two ranks in a row miss the best. Ties within
/// 0.1 % go to the smaller rank and the stronger ridge.
pub fn tune(train: &Ratings, scale: RatingScale, seed: u64) -> AlsParams {
    let inner: Split = holdout(train, TUNE_SHARE, seed);
    let mut scored: Vec<(AlsParams, f64)> = Vec::new();
    let (mut lambda_at, mut misses) = (LAMBDA_GRID.len() / 2, 0);
    for &rank in &RANK_GRID {
        let walked = crate::select::walk(LAMBDA_GRID.len(), lambda_at, |i| {
            let p = AlsParams {
                rank,
                lambda: LAMBDA_GRID[i],
                seed,
            };
            Ok::<_, ()>(Als::fit(&inner.train, p).rmse(&inner.test, scale))
        })
        .expect("scoring does not fail");
        let low = walked.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
        let (i, rmse) = *walked
            .iter()
            .rev()
            .find(|s| s.1 <= low * TIE)
            .expect("scored");
        lambda_at = i;
        let best = scored.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
        misses = if rmse > best * TIE { misses + 1 } else { 0 };
        scored.push((
            AlsParams {
                rank,
                lambda: LAMBDA_GRID[i],
                seed,
            },
            rmse,
        ));
        if misses >= 2 {
            break;
        }
    }
    let best = scored.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    scored.iter().find(|s| s.1 <= best * TIE).expect("scored").0
}

/// Scores within this factor of the best tie.
const TIE: f64 = 1.001;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_rank_one_matrix() {
        // x_ul = 3 + a_u b_l exactly, half the entries observed.
        let a: Vec<f64> = (0..40)
            .map(|u| ((u * 37) % 11) as f64 / 10.0 - 0.5)
            .collect();
        let b: Vec<f64> = (0..30)
            .map(|l| ((l * 53) % 13) as f64 / 6.0 - 1.0)
            .collect();
        let rows: Vec<Vec<f64>> = (0..40)
            .map(|u| {
                (0..30)
                    .map(|l| {
                        if (u + 2 * l) % 3 == 0 {
                            0.0
                        } else {
                            3.0 + a[u] * b[l]
                        }
                    })
                    .collect()
            })
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        let m = Als::fit(
            &r,
            AlsParams {
                rank: 1,
                lambda: 1e-4,
                seed: 1,
            },
        );
        let (mut worst, mut seen) = (0.0f64, 0);
        for (u, au) in a.iter().enumerate() {
            for (l, bl) in b.iter().enumerate() {
                if (u + 2 * l) % 3 == 0 {
                    worst = worst.max((m.predict(u, l as u32) - 3.0 - au * bl).abs());
                    seen += 1;
                }
            }
        }
        assert!(
            seen > 300 && worst < 0.05,
            "worst error {worst} on {seen} unseen entries"
        );
    }
}
