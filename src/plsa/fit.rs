//! Training Gaussian pLSA: normalisation, EM passes, early stopping on a validation share.

use std::f64::consts::PI;

use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;

use std::ops::ControlFlow;

use super::{Plsa, normalisation};
use crate::data::{self, Held, RatingScale, Ratings, RatingsBuilder};
use crate::mixture::{FitError, Progress};

/// A validation RMSE must beat the best so far by this share to count as progress for
/// `patience` (the best parameters are kept either way): the last 0.1 % took as many
/// iterations as the first 2 %.
const IMPROVEMENT: f64 = 3e-5;

/// Mixed into the seed for the validation split, so it is not the initialisation's stream.
const VALIDATION_STREAM: u64 = 0x5eed_f01d_0000_0001;

/// Training parameters of Gaussian pLSA.
#[derive(Debug, Clone, PartialEq)]
pub struct PlsaParams {
    /// Latent types K.
    pub k: usize,
    /// Pseudo-ratings pulling each user's normalisation toward the global one (paper: 5).
    pub q: f64,
    /// Pseudo-ratings pulling each item's type moments toward the item's own.
    pub alpha: f64,
    /// Floor of σ²_yz, in normalised units.
    pub min_variance: f64,
    /// Iteration cap.
    pub max_iter: usize,
    /// Share of the training ratings held out for early stopping.
    pub validation: f64,
    /// Iterations without a better validation RMSE before stopping.
    pub patience: usize,
    /// Iterations always run before early stopping may end training.
    pub min_iter: usize,
    /// Seed of the initialisation and of the validation split.
    pub seed: u64,
}

impl PlsaParams {
    /// Defaults for `k` types: q = 5, α = 4, σ² ≥ 0.05, 10 to 300 iterations, 5 % validation,
    /// patience 5, seed 0. On the Netflix subset's 10 % splits (seeds 0, 1, 3), K = 24 with α = 4
    /// held out 0.789–0.796; α = 3 was worse at K = 16, and 10 to 30 worse at K = 12.
    pub fn new(k: usize) -> Self {
        Self {
            k: k.max(1),
            q: 5.0,
            alpha: 4.0,
            min_variance: 0.05,
            max_iter: 300,
            validation: 0.05,
            patience: 5,
            min_iter: 10,
            seed: 0,
        }
    }
}

/// A trained model and how training went.
#[derive(Debug, Clone)]
pub struct PlsaFit {
    /// The parameters of the best iteration.
    pub model: Plsa,
    /// Iterations run.
    pub iterations: usize,
    /// The iteration kept (1-based).
    pub best_iteration: usize,
    /// Validation RMSE after each iteration.
    pub validation_rmse: Vec<f64>,
}

/// Per-item constants of the Gaussian log-densities, item-major (n_items · k).
#[derive(Debug, Clone)]
pub(crate) struct ItemTerms {
    mu: Vec<f64>,
    /// −½ ln(2π σ²)
    log_norm: Vec<f64>,
    /// 1 / (2σ²)
    inv_2var: Vec<f64>,
}

impl ItemTerms {
    pub(crate) fn new(means: &Array2<f64>, variances: &Array2<f64>) -> Self {
        Self {
            mu: means.iter().copied().collect(),
            log_norm: variances
                .iter()
                .map(|v| -0.5 * (2.0 * PI * v).ln())
                .collect(),
            inv_2var: variances.iter().map(|v| 0.5 / v).collect(),
        }
    }
}

/// `out[z] = Q(z | u, y, v)` from the user's log-weights `ln P(z|u)` and item `l`'s terms;
/// returns ln Σ_z P(z|u) N(v; μ_lz, σ²_lz).
#[inline]
pub(crate) fn responsibilities(
    log_w: &[f64],
    t: &ItemTerms,
    l: u32,
    v: f64,
    out: &mut [f64],
) -> f64 {
    let k = log_w.len();
    let at = l as usize * k;
    let mut max = f64::NEG_INFINITY;
    for z in 0..k {
        let d = v - t.mu[at + z];
        let a = log_w[z] + t.log_norm[at + z] - d * d * t.inv_2var[at + z];
        out[z] = a;
        max = max.max(a);
    }
    let mut sum = 0.0;
    for a in out.iter_mut() {
        *a = (*a - max).exp();
        sum += *a;
    }
    out.iter_mut().for_each(|a| *a /= sum);
    max + sum.ln()
}

/// Trains Gaussian pLSA on `ratings`.
pub fn fit(ratings: &Ratings, scale: RatingScale, p: &PlsaParams) -> PlsaFit {
    fit_with(ratings, scale, p, &mut |_| ControlFlow::Continue(())).expect("never cancelled")
}

/// [`fit`], reporting each iteration (objective: the log-likelihood of the normalised training
/// ratings) to `on_iter`, which may cancel.
pub fn fit_with(
    ratings: &Ratings,
    scale: RatingScale,
    p: &PlsaParams,
    on_iter: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<PlsaFit, FitError> {
    // As for mixtures: more types than users cannot be fitted, and the (users × K) weights
    // of an absurd K (a retrain asking for 10⁹) must be refused, not allocated.
    let users = (0..ratings.n_users())
        .filter(|&u| !ratings.row(u).0.is_empty())
        .count();
    if users < p.k {
        return Err(FitError::TooFewUsers { k: p.k, users });
    }
    let split = data::holdout(ratings, p.validation, p.seed ^ VALIDATION_STREAM);
    let train = &split.train;
    let values = || train.iter().map(|(_, _, x)| f64::from(x));
    let n = train.nnz().max(1) as f64;
    let mean = values().sum::<f64>() / n;
    let global = (
        mean,
        values().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n,
    );
    let norms: Vec<(f64, f64)> = (0..train.n_users())
        .map(|u| normalisation(train.row(u).1.iter().map(|&x| f64::from(x)), global, p.q))
        .collect();
    let normalised = normalise(train, &norms);
    let by_item = normalised.transposed();
    let prior = item_moments(&by_item);
    let (mut weights, mut means, mut variances) = initial(&normalised, &prior, p);
    let mut best = (
        f64::INFINITY,
        0,
        means.clone(),
        variances.clone(),
        Vec::new(),
    );
    let mut history = Vec::new();
    let mut progress_at = 0;
    let mut last_ll = f64::NAN;
    while history.len() < p.max_iter {
        let started = std::time::Instant::now();
        let terms = ItemTerms::new(&means, &variances);
        let log_w: Vec<f64> = weights.iter().map(|w| w.ln()).collect();
        let (next_weights, ll) = user_pass(&normalised, &log_w, &terms, p.k);
        (means, variances) = item_pass(&by_item, &log_w, &terms, &prior, p);
        weights = next_weights;
        let rmse = validation_rmse(
            &split.test,
            &norms,
            &weights,
            &ItemTerms::new(&means, &variances),
            scale,
        );
        history.push(rmse);
        let iteration = history.len();
        let change = ll - last_ll;
        last_ll = ll;
        let seconds = started.elapsed().as_secs_f64();
        let progress = Progress {
            restart: 0,
            iteration,
            objective: ll,
            change,
            seconds,
            remaining: None,
        };
        if on_iter(&progress).is_break() {
            return Err(FitError::Cancelled);
        }
        if rmse < best.0 * (1.0 - IMPROVEMENT) {
            progress_at = history.len();
        }
        if rmse < best.0 {
            best = (
                rmse,
                history.len(),
                means.clone(),
                variances.clone(),
                type_shares(&weights, p.k),
            );
        }
        if history.len() >= p.min_iter && history.len() - progress_at >= p.patience {
            break;
        }
    }
    let (_, best_iteration, means, variances, type_weights) = best;
    Ok(PlsaFit {
        model: Plsa::from_parts(means, variances, global, p.q, scale, type_weights),
        iterations: history.len(),
        best_iteration,
        validation_rmse: history,
    })
}

/// The mean of P(z|u) over users: how much of the population each type accounts for. (k,)
fn type_shares(weights: &[f64], k: usize) -> Vec<f64> {
    let n = (weights.len() / k).max(1) as f64;
    let mut shares = vec![0.0; k];
    for row in weights.chunks_exact(k) {
        shares.iter_mut().zip(row).for_each(|(s, w)| *s += w / n);
    }
    shares
}

fn normalise(train: &Ratings, norms: &[(f64, f64)]) -> Ratings {
    let mut b = RatingsBuilder::with_capacity(train.n_items(), train.n_users(), train.nnz());
    for (u, &(m, s)) in norms.iter().enumerate() {
        let (items, values) = train.row(u);
        for (&l, &x) in items.iter().zip(values) {
            b.push(l, ((f64::from(x) - m) / s) as f32);
        }
        b.end_row();
    }
    b.finish()
}

/// Each item's mean and variance of normalised ratings, shrunk toward (0, 1) by one pseudo-rating.
fn item_moments(by_item: &Ratings) -> Vec<(f64, f64)> {
    (0..by_item.n_users())
        .map(|l| {
            normalisation(
                by_item.row(l).1.iter().map(|&x| f64::from(x)),
                (0.0, 1.0),
                1.0,
            )
        })
        .map(|(m, s)| (m, s * s))
        .collect()
}

fn initial(
    normalised: &Ratings,
    prior: &[(f64, f64)],
    p: &PlsaParams,
) -> (Vec<f64>, Array2<f64>, Array2<f64>) {
    let mut rng = Pcg64Mcg::seed_from_u64(p.seed);
    let k = p.k;
    let mut weights = vec![0.0; normalised.n_users() * k];
    for row in weights.chunks_exact_mut(k) {
        // Dirichlet(1) draws (normalised exponentials): uneven enough that the types part ways
        // in a few iterations; a near-uniform start sat on a plateau that fooled early stopping.
        row.iter_mut()
            .for_each(|w| *w = -(1.0 - rng.random::<f64>()).ln());
        let sum: f64 = row.iter().sum();
        row.iter_mut().for_each(|w| *w /= sum);
    }
    let d = prior.len();
    let means = Array2::from_shape_fn((d, k), |(l, _)| {
        prior[l].0 + 2.0 * (rng.random::<f64>() - 0.5)
    });
    let variances = Array2::from_shape_fn((d, k), |(l, _)| prior[l].1.max(p.min_variance));
    (weights, means, variances)
}

/// New P(z|u) for every user, from the current parameters.
/// New P(z|u) for every user from the current parameters (given as ln P(z|u)), and the
/// log-likelihood of the normalised training ratings under the current parameters.
fn user_pass(
    normalised: &Ratings,
    weights: &[f64],
    terms: &ItemTerms,
    k: usize,
) -> (Vec<f64>, f64) {
    let mut next = vec![0.0; weights.len()];
    let mut ll = vec![0.0; normalised.n_users()];
    next.par_chunks_mut(k)
        .zip(weights.par_chunks(k))
        .zip(ll.par_iter_mut())
        .enumerate()
        .for_each(|(u, ((out, w), ll))| {
            let (items, values) = normalised.row(u);
            if items.is_empty() {
                out.iter_mut().zip(w).for_each(|(o, lw)| *o = lw.exp());
                return;
            }
            let mut q = vec![0.0; k];
            for (&l, &v) in items.iter().zip(values) {
                *ll += responsibilities(w, terms, l, f64::from(v), &mut q);
                out.iter_mut().zip(&q).for_each(|(o, r)| *o += r);
            }
            let n = items.len() as f64;
            out.iter_mut().for_each(|o| *o /= n);
        });
    // Summed in user order: the same bits for any thread count.
    (next, ll.iter().sum())
}

/// New μ_yz and σ²_yz for every item: Q-weighted moments shrunk toward the item's own.
fn item_pass(
    by_item: &Ratings,
    log_w: &[f64],
    terms: &ItemTerms,
    prior: &[(f64, f64)],
    p: &PlsaParams,
) -> (Array2<f64>, Array2<f64>) {
    let k = p.k;
    let d = by_item.n_users();
    let mut means = Array2::zeros((d, k));
    let mut variances = Array2::zeros((d, k));
    let rows = means.as_slice_mut().expect("standard").par_chunks_mut(k);
    rows.zip(
        variances
            .as_slice_mut()
            .expect("standard")
            .par_chunks_mut(k),
    )
    .enumerate()
    .for_each(|(l, (mu, var))| {
        let (users, values) = by_item.row(l);
        let (mut den, mut num, mut sq) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
        let mut q = vec![0.0; k];
        for (&u, &v) in users.iter().zip(values) {
            let v = f64::from(v);
            responsibilities(&log_w[u as usize * k..][..k], terms, l as u32, v, &mut q);
            for z in 0..k {
                den[z] += q[z];
                num[z] += q[z] * v;
                sq[z] += q[z] * v * v;
            }
        }
        let (m, s2) = prior[l];
        for z in 0..k {
            let total = den[z] + p.alpha;
            mu[z] = (num[z] + p.alpha * m) / total;
            // Σ q (v − μ)² = sq − 2μ num + μ² den, plus the prior's α (s² + (m − μ)²)
            let spread = sq[z] - 2.0 * mu[z] * num[z] + mu[z] * mu[z] * den[z];
            var[z] = ((spread.max(0.0) + p.alpha * (s2 + (m - mu[z]).powi(2))) / total)
                .max(p.min_variance);
        }
    });
    (means, variances)
}

/// RMSE of the held-out ratings (clipped predictions), users normalised as in training.
fn validation_rmse(
    test: &[Held],
    norms: &[(f64, f64)],
    weights: &[f64],
    terms: &ItemTerms,
    scale: RatingScale,
) -> f64 {
    let k = weights.len() / norms.len().max(1);
    let sq: f64 = test
        .iter()
        .map(|h| {
            let w = &weights[h.user as usize * k..][..k];
            let mu = &terms.mu[h.item as usize * k..][..k];
            let (m, s) = norms[h.user as usize];
            let pred = scale.clip(m + s * w.iter().zip(mu).map(|(a, b)| a * b).sum::<f64>());
            (pred - f64::from(h.rating)).powi(2)
        })
        .sum();
    (sq / test.len().max(1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_camps() -> Ratings {
        // Half the users love items 0-4 and hate 5-9; the other half the reverse.
        let rows: Vec<Vec<f64>> = (0..60)
            .map(|u| {
                (0..10)
                    .map(|l| if (u % 2 == 0) == (l < 5) { 5.0 } else { 1.0 })
                    .collect()
            })
            .collect();
        Ratings::from_dense_rows(&rows)
    }

    #[test]
    fn responsibilities_are_a_distribution() {
        let means = Array2::from_shape_vec((1, 2), vec![-1.0, 1.0]).unwrap();
        let vars = Array2::from_elem((1, 2), 0.5);
        let t = ItemTerms::new(&means, &vars);
        let mut q = [0.0; 2];
        let ll = responsibilities(&[0.5f64.ln(), 0.5f64.ln()], &t, 0, 1.0, &mut q);
        assert!((q[0] + q[1] - 1.0).abs() < 1e-15 && q[1] > 0.98);
        // ln(½ N(1; −1, ½) + ½ N(1; 1, ½))
        let n = |d: f64| (-d * d).exp() / PI.sqrt();
        assert!((ll - (0.5 * n(2.0) + 0.5 * n(0.0)).ln()).abs() < 1e-12);
    }

    #[test]
    fn more_types_than_users_is_refused_before_any_allocation() {
        let scale = RatingScale { min: 1.0, max: 5.0 };
        let mut go = |_: &Progress| ControlFlow::Continue(());
        for k in [61, 1 << 40] {
            let err = fit_with(&two_camps(), scale, &PlsaParams::new(k), &mut go).unwrap_err();
            assert!(
                matches!(err, FitError::TooFewUsers { users: 60, .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn learns_two_camps_and_folds_a_new_user_in() {
        let scale = RatingScale { min: 1.0, max: 5.0 };
        let f = fit(
            &two_camps(),
            scale,
            &PlsaParams {
                alpha: 1.0,
                ..PlsaParams::new(2)
            },
        );
        assert!(
            f.best_iteration >= 1 && f.validation_rmse[f.best_iteration - 1] < 1.0,
            "{:?}",
            f.validation_rmse
        );
        let lover = f.model.fold_in(&[(0, 5.0), (1, 5.0), (7, 1.0)]);
        assert!((lover.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let (liked, hated) = (
            f.model.predict(&lover, 3).rating,
            f.model.predict(&lover, 8).rating,
        );
        assert!(liked > 4.0 && hated < 2.0, "liked {liked}, hated {hated}");
        let nobody = f.model.fold_in(&[]);
        assert_eq!(nobody.weights, vec![0.5, 0.5]);
    }
}
