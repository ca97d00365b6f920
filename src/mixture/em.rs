//! Training: the EM and k-means loops over the fused pass, restarts, and the M-step.
//!
//! k-means is the same loop with hard assignments: distances and means over observed ratings
//! only, the centroids as means, each cluster's spread per observed rating as its variance and
//! the cluster shares as weights. With complete data (the seed's toy set) this is exactly the
//! seed's k-means.

use std::borrow::Cow;
use std::ops::ControlFlow;

use super::pass::{Assign, Pass, PassTimes, Stats};
use super::{Algorithm, Fit, Init, Mixture, ValidParams, init, numpy};
use crate::data::Ratings;
use crate::simd::dispatched;

/// Reported after every iteration; return `ControlFlow::Break` to cancel the training.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Restart (0-based).
    pub restart: usize,
    /// Iteration within the restart (1-based).
    pub iteration: usize,
    /// Log-likelihood (EM) or cost (k-means) of this iteration.
    pub objective: f64,
    /// Change from the previous iteration (`NaN` on the first).
    pub change: f64,
    /// Wall-clock seconds of this iteration.
    pub seconds: f64,
    /// Iterations still to go, estimated from how fast the changes shrink (geometrically, as
    /// EM's do near convergence) and capped by `max_iter`; `None` until two changes are known.
    pub remaining: Option<usize>,
}

impl Progress {
    /// Estimated seconds left in this restart: `remaining` iterations at this one's pace.
    pub fn eta_seconds(&self) -> Option<f64> {
        self.remaining.map(|n| n as f64 * self.seconds)
    }
}

/// Iterations until a change shrinking by `ratio` per iteration from `change` falls to
/// `threshold`: `ceil(ln(threshold / change) / ln ratio)`.
fn iterations_left(change: f64, previous: f64, threshold: f64) -> Option<usize> {
    let (change, previous) = (change.abs(), previous.abs());
    let ratio = change / previous;
    let usable = ratio > 0.0 && ratio < 1.0 && threshold.is_finite() && threshold > 0.0;
    if !usable {
        return None;
    }
    if change <= threshold {
        return Some(0);
    }
    Some(((threshold / change).ln() / ratio.ln()).ceil() as usize)
}

/// Why a training did not produce a mixture.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// The progress callback asked to stop.
    #[error("training was cancelled")]
    Cancelled,
    /// More types than users with ratings.
    #[error("k = {k} needs at least {k} users with ratings, the snapshot has {users}")]
    TooFewUsers {
        /// K.
        k: usize,
        /// Users with at least one rating.
        users: usize,
    },
    /// The objective became NaN or infinite (it should not: report it).
    #[error("the {what} became non-finite at iteration {iteration}")]
    NonFinite {
        /// Log-likelihood or cost.
        what: &'static str,
        /// Where.
        iteration: usize,
    },
    /// The data and the parameters disagree.
    #[error("{0}")]
    Invalid(String),
}

/// Trains a mixture on `ratings` with `params`, calling `on_iter` after each iteration.
pub fn fit(
    ratings: &Ratings,
    params: &ValidParams,
    on_iter: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Fit, FitError> {
    enough_users(ratings, params)?;
    fit_checked(ratings, None, params, on_iter)
}

/// At least K users with a rating, or the error that says so: checked before any work (the
/// transpose of 100 M ratings is a second).
fn enough_users(ratings: &Ratings, params: &ValidParams) -> Result<(), FitError> {
    let users = (0..ratings.n_users())
        .filter(|&u| !ratings.row(u).0.is_empty())
        .count();
    if users < params.k() {
        return Err(FitError::TooFewUsers {
            k: params.k(),
            users,
        });
    }
    Ok(())
}

/// [`fit`] with the ratings by item perhaps already made (`by_item`: `ratings.transposed()`;
/// see [`Pass::with_transposed`]).
pub(crate) fn fit_transposed<'r>(
    ratings: &'r Ratings,
    by_item: Option<Cow<'r, Ratings>>,
    params: &ValidParams,
    on_iter: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Fit, FitError> {
    enough_users(ratings, params)?;
    fit_checked(ratings, by_item, params, on_iter)
}

/// [`fit_transposed`] once [`enough_users`] has passed.
fn fit_checked<'r>(
    ratings: &'r Ratings,
    by_item: Option<Cow<'r, Ratings>>,
    params: &ValidParams,
    on_iter: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Fit, FitError> {
    let mut best: Option<Fit> = None;
    // One pass's buffers for every restart: the item-major copy of the ratings (a transpose
    // of every rating) and the posterior table are the same for each, and at 100 M ratings
    // the copy alone took a quarter of a fit of four one-iteration restarts. The column sums
    // (one serial walk) are made beside it by a pool thread; the pass is built on this
    // thread, whose allocator arena it has always come from (built on a pool thread's
    // instead, the 10 M fit's peak RSS grew from 239 to 253 MB).
    let mut sums = None;
    let mut pass = rayon::in_place_scope(|scope| {
        scope.spawn(|_| sums = Some(init::ColumnSums::of(ratings)));
        Pass::with_transposed(ratings, by_item, params.k())
    });
    let sums = sums.expect("the scope waits for its task");
    let prior = shrink_target(ratings, params, Some(&sums));
    for restart in 0..params.n_init() {
        let start = initial(ratings, params, restart, &prior, &sums)?;
        let fit;
        (fit, pass) = run(pass, params, start, &prior, restart, on_iter)?;
        if best.as_ref().is_none_or(|b| better(&fit, b)) {
            best = Some(fit);
        }
    }
    Ok(best.expect("n_init ≥ 1"))
}

/// What each item's type means shrink toward: over a baseline's centred residuals, zero (what
/// the baseline predicts); over raw ratings, the item's observed mean, from the fit's column
/// sums where it has them. (n_items,)
fn shrink_target(
    ratings: &Ratings,
    params: &ValidParams,
    sums: Option<&init::ColumnSums>,
) -> Vec<f64> {
    match sums {
        _ if params.baseline() => vec![0.0; ratings.n_items()],
        Some(sums) => sums.item_means(),
        None => init::item_means(ratings),
    }
}

/// Higher log-likelihood, or lower cost for k-means.
fn better(a: &Fit, b: &Fit) -> bool {
    match (a.log_likelihood, b.log_likelihood) {
        (Some(x), Some(y)) => x > y,
        _ => a.cost < b.cost,
    }
}

fn initial(
    ratings: &Ratings,
    params: &ValidParams,
    restart: usize,
    prior: &[f64],
    sums: &init::ColumnSums,
) -> Result<Mixture, FitError> {
    let k = params.k();
    Ok(match params.init() {
        Init::Rows(rows) => init::rows_as_stored_with(ratings, rows, sums),
        Init::NumpyRows => {
            let seed = u32::try_from(params.seed()).map_err(|_| {
                FitError::Invalid("numpy seeds are 32-bit: use --seed below 2^32".into())
            })?;
            let rows = numpy::legacy_choice_without_replacement(seed, ratings.n_users(), k);
            init::rows_as_stored_with(ratings, &rows, sums)
        }
        Init::PlusPlus => {
            // Restart r draws from its own stream: seed + r·φ (a large odd constant).
            let seed = params
                .seed()
                .wrapping_add((restart as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            init::plus_plus_with(ratings, k, seed, params.min_variance(), prior, sums)
        }
    })
}

/// Iterations one at a time: an E-step, then an M-step. `fit` runs these to convergence;
/// benchmarks and step-by-step checks drive them directly.
pub struct Stepper<'r> {
    pass: Pass<'r>,
    prior: Vec<f64>,
    params: ValidParams,
    assign: Assign,
    mixture: Mixture,
}

impl<'r> Stepper<'r> {
    /// Starts from `mixture` on `ratings`.
    pub fn new(ratings: &'r Ratings, params: &ValidParams, mixture: Mixture) -> Self {
        Self::with_prior(
            ratings,
            params,
            mixture,
            shrink_target(ratings, params, None),
        )
    }

    fn with_prior(
        ratings: &'r Ratings,
        params: &ValidParams,
        mixture: Mixture,
        prior: Vec<f64>,
    ) -> Self {
        Self::with_pass(Pass::new(ratings, params.k()), params, mixture, prior)
    }

    /// Starts from `mixture` with the buffers of an earlier run (every pass overwrites all
    /// it reads, so nothing of that run carries over).
    fn with_pass(pass: Pass<'r>, params: &ValidParams, mixture: Mixture, prior: Vec<f64>) -> Self {
        let assign = match params.algorithm() {
            Algorithm::Em => Assign::Soft,
            Algorithm::Kmeans => Assign::Hard,
        };
        Self {
            pass,
            prior,
            params: params.clone(),
            assign,
            mixture,
        }
    }

    /// How long the last step's E-step and item pass took (the rest of a step, the M-step's
    /// update from the sums, is O(K·d)).
    pub fn pass_times(&self) -> PassTimes {
        self.pass.times()
    }

    /// One E-step and one M-step; returns the objective: the E-step's log-likelihood (EM) or
    /// the cost with the new means (k-means).
    pub fn step(&mut self) -> f64 {
        let n_users = self.pass.n_users();
        let stats = self.pass.run(&self.mixture, self.assign);
        let cost = m_step(
            stats,
            &mut self.mixture,
            &self.prior,
            &self.params,
            self.assign,
            n_users,
        );
        match self.assign {
            Assign::Soft => stats.users.objective,
            Assign::Hard => cost,
        }
    }

    /// The mixture after the last M-step.
    pub fn mixture(&self) -> &Mixture {
        &self.mixture
    }
}

/// One EM or k-means run from `mixture`, with the seed's loop shape: E-step, M-step, then the
/// stopping test on the E-step objectives, so the returned mixture follows the last E-step.
/// Runs on `pass`'s buffers and hands them back with the fit.
fn run<'r>(
    pass: Pass<'r>,
    params: &ValidParams,
    mixture: Mixture,
    prior: &[f64],
    restart: usize,
    on_iter: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<(Fit, Pass<'r>), FitError> {
    let (algorithm, tol) = (params.algorithm(), params.tol());
    let mut stepper = Stepper::with_pass(pass, params, mixture, prior.to_vec());
    let what = match algorithm {
        Algorithm::Em => "log-likelihood",
        Algorithm::Kmeans => "cost",
    };
    let mut history: Vec<f64> = Vec::new();
    let mut converged = false;
    let mut last_change = f64::NAN;
    while history.len() < params.max_iter() {
        let started = std::time::Instant::now();
        let objective = stepper.step();
        let seconds = started.elapsed().as_secs_f64();
        if !objective.is_finite() {
            let iteration = history.len() + 1;
            return Err(FitError::NonFinite { what, iteration });
        }
        let change = history.last().map_or(f64::NAN, |&old| objective - old);
        history.push(objective);
        let iteration = history.len();
        let threshold = match stepper.assign {
            Assign::Soft => tol * objective.abs(),
            Assign::Hard => tol,
        };
        let cap = params.max_iter() - iteration;
        let remaining = iterations_left(change, last_change, threshold).map(|n| n.min(cap));
        last_change = change;
        if on_iter(&Progress {
            restart,
            iteration,
            objective,
            change,
            seconds,
            remaining,
        })
        .is_break()
        {
            return Err(FitError::Cancelled);
        }
        if tol > 0.0 && iteration > 1 && stopped(stepper.assign, change, objective, tol) {
            converged = true;
            break;
        }
    }
    let last = *history.last().expect("max_iter ≥ 1");
    let is_em = algorithm == Algorithm::Em;
    let fit = Fit {
        posteriors: stepper.pass.posteriors(),
        mixture: stepper.mixture,
        algorithm,
        log_likelihood: is_em.then_some(last),
        cost: (!is_em).then_some(last),
        iterations: history.len(),
        converged,
        history,
        best_init: restart,
    };
    Ok((fit, stepper.pass))
}

/// EM: `new − old ≤ tol·|new|`; k-means: the cost fell by at most `tol`.
fn stopped(assign: Assign, change: f64, objective: f64, tol: f64) -> bool {
    match assign {
        Assign::Soft => change <= tol * objective.abs(),
        Assign::Hard => -change <= tol,
    }
}

/// The M-step from a pass's statistics, into `mixture` in place; returns the sum of squared
/// residuals with the new means (the k-means cost).
///
/// - weights `p_j = Σ_u post_uj / n`
/// - means `mu_jl = (numer_lj + λ m_l) / (denom_lj + λ)` where `denom_lj ≥ min_mean_weight`
///   and the divisor is positive; elsewhere the old mean stays (the seed's rule, with λ = 0 and
///   a minimum weight of 1)
/// - variances `var_j = sse_j / count_j`, floored at `min_variance` (EM only: k-means returns
///   its clusters' raw spread, as the seed does)
pub(crate) fn m_step(
    st: &Stats,
    mixture: &mut Mixture,
    prior: &[f64],
    params: &ValidParams,
    assign: Assign,
    n_users: usize,
) -> f64 {
    let (lambda, min_w) = (params.prior_strength(), params.min_mean_weight());
    // In place: a new array a step was an allocation and a copy of the old means (1.7 MB at
    // 17,770 items and K = 12).
    if !mixture.means.is_standard_layout() {
        mixture.means = mixture.means.as_standard_layout().into_owned();
    }
    let mu = mixture.means.as_slice_mut().expect("a standard layout");
    // sse_j = Σ_u post_uj Σ_l (x − mu_jl)² = sq_norm_j − 2 Σ_l mu numer + Σ_l mu² denom
    let mut sse = st.users.sq_norm.clone();
    means_and_sse(mu, st, prior, (lambda, min_w), &mut sse);
    let cost = sse.iter().map(|s| s.max(0.0)).sum();
    let floor = if assign == Assign::Soft {
        params.min_variance()
    } else {
        0.0
    };
    for (j, var) in mixture.variances.iter_mut().enumerate() {
        if st.users.count[j] > 0.0 {
            *var = (sse[j] / st.users.count[j]).max(0.0);
        }
        *var = var.max(floor);
    }
    for (p, &w) in mixture.weights.iter_mut().zip(&st.users.weight) {
        *p = w / n_users as f64;
    }
    cost
}

dispatched! {
    /// The M-step's item loops: each mean from its item's sums (where its weight is at least
    /// `min_w`; else it keeps the old value in `mu`), then `sse_j += Σ_l mu_jl (mu_jl
    /// denom_lj − 2 numer_lj)` over the items in order.
    fn means_and_sse, means_and_sse_avx2, means_and_sse_avx512 => means_and_sse_generic(
        mu: &mut [f64], st: &Stats, prior: &[f64], shrink: (f64, f64), sse: &mut [f64]
    )
}

/// Item by item, the K types side by side: every mean on its own and every `sse_j` a sum over
/// the items in order, so vector lanes over the types give the bits of one entry at a time. The
/// division is made for every entry and kept where the weight allows (no branch a lane).
#[inline(always)]
fn means_and_sse_generic(
    mu: &mut [f64],
    st: &Stats,
    prior: &[f64],
    (lambda, min_w): (f64, f64),
    sse: &mut [f64],
) {
    let (k, d, stride) = (sse.len(), prior.len(), st.stride);
    if k == 0 {
        return;
    }
    let rows = || {
        let (numer, denom) = (&st.numer[..d * stride], &st.denom[..d * stride]);
        numer
            .chunks_exact(stride)
            .zip(denom.chunks_exact(stride))
            .map(|(num, den)| (&num[..k], &den[..k]))
    };
    for ((m, (num, den)), &target) in mu.chunks_exact_mut(k).zip(rows()).zip(prior) {
        for ((m, &n), &w) in m.iter_mut().zip(num).zip(den) {
            let new = (n + lambda * target) / (w + lambda);
            *m = if w >= min_w && w + lambda > 0.0 {
                new
            } else {
                *m
            };
        }
    }
    for (m, (num, den)) in mu.chunks_exact(k).zip(rows()) {
        for (((s, &m), &n), &w) in sse.iter_mut().zip(m).zip(num).zip(den) {
            *s += m * (m * w - 2.0 * n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixture::pass::{UserSums, padded};

    #[test]
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    fn the_m_steps_item_loops_give_the_bits_of_one_entry_at_a_time_on_every_level() {
        use crate::simd::{Level, detected};
        let d = 37;
        // K = 12 fills its padded rows; 1, 5 and 16 take other widths and tails.
        for k in [1, 5, 12, 16] {
            let stride = padded(k);
            let entry = |i: usize, m: usize| ((i * 7 + m) % 23) as f64 / 3.0 - 1.0;
            let st = Stats {
                stride,
                numer: (0..d * stride).map(|i| entry(i, 5) * 4.0).collect(),
                // Some weights under the minimum of 1, some at 0: those means keep their value.
                denom: (0..d * stride)
                    .map(|i| (entry(i, 2) + 1.0).max(0.0))
                    .collect(),
                users: UserSums {
                    weight: vec![0.0; k],
                    count: vec![0.0; k],
                    sq_norm: (0..k).map(|j| 50.0 + j as f64).collect(),
                    objective: 0.0,
                },
            };
            let prior: Vec<f64> = (0..d).map(|l| 3.0 + entry(l, 1)).collect();
            let old: Vec<f64> = (0..d * k).map(|i| entry(i, 3) + 3.0).collect();
            for shrink in [(0.0, 1.0), (2.5, 0.5)] {
                // The loop as it was, one entry at a time.
                let (lambda, min_w) = shrink;
                let mut want = old.clone();
                for l in 0..d {
                    for j in 0..k {
                        let (at, w) = (l * stride + j, st.denom[l * stride + j]);
                        if w >= min_w && w + lambda > 0.0 {
                            want[l * k + j] = (st.numer[at] + lambda * prior[l]) / (w + lambda);
                        }
                    }
                }
                let mut want_sse = st.users.sq_norm.clone();
                for l in 0..d {
                    for j in 0..k {
                        let (at, m) = (l * stride + j, want[l * k + j]);
                        want_sse[j] += m * (m * st.denom[at] - 2.0 * st.numer[at]);
                    }
                }
                assert!(
                    want.iter().zip(&old).any(|(a, b)| a == b),
                    "some means kept"
                );
                assert!(
                    want.iter().zip(&old).any(|(a, b)| a != b),
                    "some means moved"
                );
                for level in Level::ALL.into_iter().filter(|&l| l <= detected()) {
                    let (mut mu, mut sse) = (old.clone(), st.users.sq_norm.clone());
                    match level {
                        Level::Portable => {
                            means_and_sse_generic(&mut mu, &st, &prior, shrink, &mut sse)
                        }
                        // SAFETY: only levels up to `detected()` run.
                        Level::Avx2 => unsafe {
                            means_and_sse_avx2(&mut mu, &st, &prior, shrink, &mut sse)
                        },
                        // SAFETY: as above.
                        Level::Avx512 => unsafe {
                            means_and_sse_avx512(&mut mu, &st, &prior, shrink, &mut sse)
                        },
                    }
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&mu),
                        bits(&want),
                        "means, k = {k}, {level:?}, {shrink:?}"
                    );
                    assert_eq!(bits(&sse), bits(&want_sse), "sse, k = {k}, {level:?}");
                }
            }
        }
    }

    #[test]
    fn remaining_iterations_follow_a_geometric_decay() {
        // Changes 100, 10 (ratio 0.1) reach 0.01 in three more iterations: 1, 0.1, 0.01.
        assert_eq!(iterations_left(10.0, 100.0, 0.01), Some(3));
        assert_eq!(iterations_left(0.001, 0.01, 0.01), Some(0));
        assert_eq!(iterations_left(10.0, f64::NAN, 0.01), None);
        assert_eq!(
            iterations_left(10.0, 5.0, 0.01),
            None,
            "growing changes give no estimate"
        );
    }
}
