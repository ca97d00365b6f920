//! Initial mixtures: the seed's (data rows as stored) and the default (k-means++ on observed
//! entries only).

use ndarray::{Array1, Array2};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;

use super::Mixture;
use super::kernels::{Gather, squared_distances};
use crate::data::Ratings;

/// The seed's start: type j's means are data row `rows[j]` as stored, missing entries as 0;
/// its variance is the mean over all n·d entries (zeros included) of `(x − mu_j)²`; weights
/// are uniform.
///
/// The variance needs no dense matrix: with column sums `S_l = Σ_u x_ul`,
/// `Σ_u Σ_l (x_ul − mu_jl)² = Σ x² − 2 Σ_l mu_jl S_l + n Σ_l mu_jl²`.
pub fn rows_as_stored(ratings: &Ratings, rows: &[usize]) -> Mixture {
    rows_as_stored_with(ratings, rows, &ColumnSums::of(ratings))
}

/// [`rows_as_stored`] with the ratings' column sums already made.
pub(crate) fn rows_as_stored_with(ratings: &Ratings, rows: &[usize], sums: &ColumnSums) -> Mixture {
    let (n, d, k) = (ratings.n_users(), ratings.n_items(), rows.len());
    let mut means = Array2::zeros((d, k));
    for (j, &u) in rows.iter().enumerate() {
        let (items, values) = ratings.row(u);
        for (&l, &x) in items.iter().zip(values) {
            means[[l as usize, j]] = f64::from(x);
        }
    }
    let (col_sum, sum_sq) = (&sums.sum, sums.sum_sq);
    let variances = (0..k)
        .map(|j| {
            let mu = means.column(j);
            let cross: f64 = mu.iter().zip(col_sum).map(|(m, s)| m * s).sum();
            let norm: f64 = mu.iter().map(|m| m * m).sum();
            (sum_sq - 2.0 * cross + n as f64 * norm) / (n * d) as f64
        })
        .collect();
    Mixture {
        means,
        variances,
        weights: Array1::from_elem(k, 1.0 / k as f64),
    }
}

/// Per item: sum and count of observed ratings; and Σ x² over all ratings. One serial walk of
/// every rating (Σ x² is one chain of additions, in the ratings' order): a fit makes it once,
/// beside its transpose, for its prior and every restart's start, not once for each.
#[derive(Debug, Clone)]
pub(crate) struct ColumnSums {
    sum: Vec<f64>,
    count: Vec<f64>,
    sum_sq: f64,
    nnz: usize,
}

impl ColumnSums {
    pub(crate) fn of(ratings: &Ratings) -> Self {
        let mut sum = vec![0.0; ratings.n_items()];
        let mut count = vec![0.0; ratings.n_items()];
        let mut sum_sq = 0.0;
        for u in 0..ratings.n_users() {
            let (items, values) = ratings.row(u);
            for (&l, &x) in items.iter().zip(values) {
                let x = f64::from(x);
                sum[l as usize] += x;
                count[l as usize] += 1.0;
                sum_sq += x * x;
            }
        }
        Self {
            sum,
            count,
            sum_sq,
            nnz: ratings.nnz(),
        }
    }

    /// Mean observed rating of each item; the global mean for items nobody rated. (n_items,)
    pub(crate) fn item_means(&self) -> Vec<f64> {
        let global = self.sum.iter().sum::<f64>() / self.nnz.max(1) as f64;
        self.sum
            .iter()
            .zip(&self.count)
            .map(|(&s, &c)| if c > 0.0 { s / c } else { global })
            .collect()
    }
}

/// Mean observed rating of each item; the global mean for items nobody rated. (n_items,)
pub fn item_means(ratings: &Ratings) -> Vec<f64> {
    ColumnSums::of(ratings).item_means()
}

/// k-means++ on observed entries: the first centre is a random user with ratings, each next one
/// a user drawn with probability ∝ D², the mean squared difference over the user's *observed*
/// ratings to the nearest centre so far. A centre is the user's ratings, with the item's mean
/// where the user has none. Variances start at the mean squared residual over all observed
/// ratings (floored at `min_variance`), weights uniform.
pub fn plus_plus(
    ratings: &Ratings,
    k: usize,
    seed: u64,
    min_variance: f64,
    prior: &[f64],
) -> Mixture {
    plus_plus_with(
        ratings,
        k,
        seed,
        min_variance,
        prior,
        &ColumnSums::of(ratings),
    )
}

/// [`plus_plus`] with the ratings' column sums already made.
pub(crate) fn plus_plus_with(
    ratings: &Ratings,
    k: usize,
    seed: u64,
    min_variance: f64,
    prior: &[f64],
    sums: &ColumnSums,
) -> Mixture {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let candidates: Vec<usize> = (0..ratings.n_users())
        .filter(|&u| !ratings.row(u).0.is_empty())
        .collect();
    let d = ratings.n_items();
    let mut means = Array2::zeros((d, k));
    let mut nearest = vec![f64::INFINITY; ratings.n_users()];
    let mut chosen = Vec::with_capacity(k);
    for j in 0..k {
        let u = if j == 0 {
            candidates[rng.random_range(0..candidates.len())]
        } else {
            draw_by_distance(&candidates, &nearest, &chosen, &mut rng)
        };
        chosen.push(u);
        let mut centre = prior.to_vec();
        let (items, values) = ratings.row(u);
        for (&l, &x) in items.iter().zip(values) {
            centre[l as usize] = f64::from(x);
        }
        means.column_mut(j).assign(&Array1::from(centre.clone()));
        update_nearest(ratings, &centre, &mut nearest);
    }
    let variances = observed_residuals(sums, &means).mapv(|v| v.max(min_variance));
    Mixture {
        means,
        variances,
        weights: Array1::from_elem(k, 1.0 / k as f64),
    }
}

/// D²(u) = min(D²(u), mean_l (x_ul − c_l)²) for a new centre `c`.
fn update_nearest(ratings: &Ratings, centre: &[f64], nearest: &mut [f64]) {
    nearest.par_iter_mut().enumerate().for_each(|(u, best)| {
        let (items, values) = ratings.row(u);
        if items.is_empty() {
            *best = 0.0;
            return;
        }
        let mut sq = [0.0];
        squared_distances(items, values, centre, Gather::Near, &mut sq);
        *best = best.min(sq[0] / items.len() as f64);
    });
}

/// A candidate drawn with probability ∝ D²; uniformly among unchosen ones if all D² are 0.
fn draw_by_distance(
    candidates: &[usize],
    nearest: &[f64],
    chosen: &[usize],
    rng: &mut Pcg64Mcg,
) -> usize {
    let total: f64 = candidates.iter().map(|&u| nearest[u]).sum();
    if total > 0.0 {
        let mut r = rng.random::<f64>() * total;
        for &u in candidates {
            r -= nearest[u];
            if r < 0.0 {
                return u;
            }
        }
    }
    let rest: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|u| !chosen.contains(u))
        .collect();
    let pool = if rest.is_empty() { candidates } else { &rest };
    pool[rng.random_range(0..pool.len())]
}

/// Mean over all observed ratings of `(x_ul − mu_jl)²`, per type. (k,)
fn observed_residuals(sums: &ColumnSums, means: &Array2<f64>) -> Array1<f64> {
    let (sum, count, sum_sq) = (&sums.sum, &sums.count, sums.sum_sq);
    let nnz = sums.nnz.max(1) as f64;
    means
        .columns()
        .into_iter()
        .map(|mu| {
            let cross: f64 = mu.iter().zip(sum).map(|(m, s)| m * s).sum();
            let norm: f64 = mu.iter().zip(count).map(|(m, c)| m * m * c).sum();
            ((sum_sq - 2.0 * cross + norm) / nnz).max(0.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_as_stored_matches_the_worked_example() {
        let r = Ratings::from_dense_rows(&[vec![1.0, 0.0], vec![3.0, 4.0]]);
        let m = rows_as_stored(&r, &[1]);
        // entries (1,0,3,4) minus (3,4): (−2)² + (−4)² + 0 + 0 over 4 entries = 5
        assert_eq!(m.variances[0], 5.0);
        assert_eq!(m.means.column(0).to_vec(), vec![3.0, 4.0]);
    }

    #[test]
    fn plus_plus_is_seeded_and_never_reads_missing_as_zero() {
        let rows: Vec<Vec<f64>> = (0..40)
            .map(|u| {
                if u % 2 == 0 {
                    vec![5.0, 0.0, 4.0]
                } else {
                    vec![0.0, 1.0, 2.0]
                }
            })
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        let prior = item_means(&r);
        let a = plus_plus(&r, 2, 7, 0.01, &prior);
        assert_eq!(a, plus_plus(&r, 2, 7, 0.01, &prior));
        assert!(
            a.means.iter().all(|&m| m >= 1.0),
            "no mean starts at a missing 0: {:?}",
            a.means
        );
        // Two distinct profiles: k-means++ picks one of each.
        let firsts: Vec<f64> = a.means.row(2).to_vec();
        assert!(firsts.contains(&4.0) && firsts.contains(&2.0), "{firsts:?}");
    }
}
