//! Training the mixture of low-rank types by EM (MAP: ridge priors on the means and loadings).
//!
//! - Start: the spherical mixture of the same K (its means, variances and weights), loadings
//!   small and seeded, so EM grows each type's directions from the residual spread it finds.
//! - E-step: [`Mfa::infer`] per user (users in parallel): γ_uj, ẑ_uj and S_uj.
//! - M-step, item by item over the transposed ratings (items in parallel): for each type the
//!   (r + 1)-vector θ_jl = (m_jl, w_jl) solves the ridge system
//!
//! ```text
//! (Σ_u γ_uj E[z̃ z̃ᵀ] + λ I) θ_jl = Σ_u γ_uj r_ul E[z̃],    z̃ = (1, z), E[z̃ z̃ᵀ] = [[1, ẑᵀ], [ẑ, S + ẑ ẑᵀ]]
//! ```
//!
//!   (λ pseudo-users at the baseline's prediction and at no taste), the noise
//!   `σ_j² = Σ_u γ_uj Σ_l E[(r_ul − θ_jl · z̃)²] / Σ_u γ_uj n_u` follows from the same sums,
//!   floored, and `π_j = mean_u γ_uj`.
//! - Users whose γ_uj is below [`GAMMA_SKIP`] are left out of type j's sums (most users belong
//!   to one or two types: the M-step then costs little more than one type's).
//!
//! Each user's and each item's work is independent and sums run in a fixed order, so the result
//! is the same for any number of threads.

use std::ops::ControlFlow;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;

use super::{Mfa, Scratch};
use crate::data::{RatingScale, Ratings};
use crate::linalg;
use crate::mixture::{self, Baseline, FitError, FitParams, Progress, Ridge};
use crate::simd::dispatched;

/// A type's posterior below this leaves the user out of its M-step sums.
pub const GAMMA_SKIP: f64 = 1e-8;
/// Half-width of the uniform initial loadings, times the type's standard deviation.
const INIT_LOADING: f64 = 0.1;

/// Training parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct MfaParams {
    /// Types K.
    pub k: usize,
    /// Rank r of each type's variation.
    pub rank: usize,
    /// λ: the ridge on each (m_jl, w_jl), in pseudo-users.
    pub prior_strength: f64,
    /// The baseline's ridge strengths.
    pub ridge: Ridge,
    /// Floor of σ_j².
    pub min_variance: f64,
    /// Relative log-likelihood change that stops EM.
    pub tol: f64,
    /// Iteration cap.
    pub max_iter: usize,
    /// Restarts of the spherical mixture the start comes from.
    pub n_init: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl MfaParams {
    /// Defaults for K types of rank r: λ = 10, the default ridge, σ² ≥ 0.05, tol 1e-5, at most
    /// 200 iterations, 2 restarts of the starting mixture, seed 0.
    pub fn new(k: usize, rank: usize) -> Self {
        Self {
            k,
            rank,
            prior_strength: 10.0,
            ridge: Ridge::default(),
            min_variance: 0.05,
            tol: 1e-5,
            max_iter: 200,
            n_init: 2,
            seed: 0,
        }
    }
}

/// A trained model and how training went.
#[derive(Debug, Clone)]
pub struct MfaFit {
    /// The model.
    pub model: Mfa,
    /// EM iterations.
    pub iterations: usize,
    /// Whether the stopping rule fired before the cap.
    pub converged: bool,
    /// Log-likelihood of the residuals after each E-step.
    pub history: Vec<f64>,
}

/// The E-step's output for every user.
struct Posteriors {
    /// (n_users · k)
    gamma: Vec<f64>,
    /// (n_users · k · r)
    tastes: Vec<f64>,
    /// E[z zᵀ] = S + ẑ ẑᵀ, full. (n_users · k · r²)
    second: Vec<f64>,
    /// Σ_u γ_uj, Σ_u γ_uj n_u, Σ_u γ_uj Σ_l r_ul². (k each)
    weight: Vec<f64>,
    count: Vec<f64>,
    log_likelihood: f64,
}

/// Trains on `ratings`, calling `on_iter` after each iteration (it may cancel).
pub fn fit(
    ratings: &Ratings,
    scale: RatingScale,
    p: &MfaParams,
    on_iter: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<MfaFit, FitError> {
    let (baseline, residuals) = Baseline::fit(ratings, p.ridge);
    let mut model = start(&residuals, baseline, scale, p, on_iter)?;
    let by_item = residuals.transposed();
    let mut history: Vec<f64> = Vec::new();
    let mut converged = false;
    while history.len() < p.max_iter {
        let started = std::time::Instant::now();
        let post = estep(&model, &residuals);
        mstep(&mut model, &by_item, &post, p, residuals.n_users());
        let ll = post.log_likelihood;
        if !ll.is_finite() {
            let iteration = history.len() + 1;
            return Err(FitError::NonFinite {
                what: "log-likelihood",
                iteration,
            });
        }
        let change = history.last().map_or(f64::NAN, |&old| ll - old);
        history.push(ll);
        let progress = Progress {
            restart: 0,
            iteration: history.len(),
            objective: ll,
            change,
            seconds: started.elapsed().as_secs_f64(),
            remaining: None,
        };
        if on_iter(&progress).is_break() {
            return Err(FitError::Cancelled);
        }
        if history.len() > 2 && change.abs() <= p.tol * ll.abs() {
            converged = true;
            break;
        }
    }
    Ok(MfaFit {
        model,
        iterations: history.len(),
        converged,
        history,
    })
}

/// The spherical mixture of the same K on the residuals, with small seeded loadings.
fn start(
    residuals: &Ratings,
    baseline: Baseline,
    scale: RatingScale,
    p: &MfaParams,
    on_iter: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Mfa, FitError> {
    let params = FitParams::new(p.k)
        .seed(p.seed)
        .n_init(p.n_init)
        .prior_strength(p.prior_strength)
        .min_variance(p.min_variance)
        .check(residuals.n_users())
        .map_err(|e| FitError::Invalid(e.to_string()))?;
    let mix = mixture::fit(residuals, &params, on_iter)?.mixture;
    let (k, r, d) = (p.k, p.rank, residuals.n_items());
    let mut rng = Pcg64Mcg::seed_from_u64(p.seed ^ 0x6d66_615f_7374_6172);
    let mut theta = vec![0.0; d * k * (r + 1)];
    for l in 0..d {
        for j in 0..k {
            let row = &mut theta[(l * k + j) * (r + 1)..][..r + 1];
            row[0] = mix.means[[l, j]];
            let a = INIT_LOADING * mix.variances[j].sqrt();
            row[1..]
                .iter_mut()
                .for_each(|w| *w = rng.random_range(-a..a));
        }
    }
    Ok(Mfa {
        k,
        rank: r,
        theta,
        noise: mix.variances.to_vec(),
        weights: mix.weights.to_vec(),
        baseline,
        scale,
    })
}

/// [`Mfa::infer`] for every user, and the per-type sums.
fn estep(model: &Mfa, residuals: &Ratings) -> Posteriors {
    let (k, r, n) = (model.k, model.rank, residuals.n_users());
    let mut gamma = vec![0.0; n * k];
    // Rows of at least one number per type, so a rank of 0 still has one chunk per user.
    let mut tastes = vec![0.0; n * k * r.max(1)];
    let mut second = vec![0.0; n * k * (r * r).max(1)];
    let lls: Vec<f64> = gamma
        .par_chunks_mut(k)
        .zip(tastes.par_chunks_mut(k * r.max(1)))
        .zip(second.par_chunks_mut(k * (r * r).max(1)))
        .enumerate()
        .map_init(
            || Scratch::new(k, r),
            |s, (u, ((g, z), m2))| {
                let (items, values) = residuals.row(u);
                let pairs: Vec<(u32, f64)> = items
                    .iter()
                    .zip(values)
                    .map(|(&l, &x)| (l, f64::from(x)))
                    .collect();
                let ll = model.infer(&pairs, s, g, z, m2);
                // E[z zᵀ] = S + ẑ ẑᵀ
                for j in 0..k {
                    let (zj, mj) = (&z[j * r..][..r], &mut m2[j * r * r..][..r * r]);
                    for a in 0..r {
                        for b in 0..r {
                            mj[a * r + b] += zj[a] * zj[b];
                        }
                    }
                }
                ll
            },
        )
        .collect();
    let (mut weight, mut count) = (vec![0.0; k], vec![0.0; k]);
    for u in 0..n {
        let m = residuals.row(u).0.len() as f64;
        for j in 0..k {
            weight[j] += gamma[u * k + j];
            count[j] += gamma[u * k + j] * m;
        }
    }
    Posteriors {
        gamma,
        tastes,
        second,
        weight,
        count,
        log_likelihood: lls.iter().sum(),
    }
}

/// New θ for every item and type, then σ² and π from the same sums.
fn mstep(model: &mut Mfa, by_item: &Ratings, post: &Posteriors, p: &MfaParams, n_users: usize) {
    let (k, r) = (model.k, model.rank);
    let w = r + 1;
    // Per item: new θ rows and the per-type squared error Σ γ E[(r − θ·z̃)²].
    let sse_by_item: Vec<Vec<f64>> = model
        .theta
        .par_chunks_mut(k * w)
        .enumerate()
        .map(|(l, rows)| item_step(l, rows, by_item, post, k, r, p.prior_strength))
        .collect();
    for j in 0..k {
        let sse: f64 = sse_by_item.iter().map(|s| s[j]).sum();
        model.noise[j] = if post.count[j] > 0.0 {
            (sse / post.count[j]).max(p.min_variance)
        } else {
            model.noise[j]
        };
        model.weights[j] = post.weight[j] / n_users as f64;
    }
}

dispatched! {
    /// Item `l`'s ridge systems, one per type; writes the new θ rows and returns each type's
    /// squared error with them.
    fn item_step, item_step_avx2, item_step_avx512 => item_step_generic(
        l: usize, rows: &mut [f64], by_item: &Ratings, post: &Posteriors, k: usize, r: usize, lambda: f64
    ) -> Vec<f64>
}

#[inline(always)]
fn item_step_generic(
    l: usize,
    rows: &mut [f64],
    by_item: &Ratings,
    post: &Posteriors,
    k: usize,
    r: usize,
    lambda: f64,
) -> Vec<f64> {
    let w = r + 1;
    let (users, values) = by_item.row(l);
    let mut sse = vec![0.0; k];
    let mut a = vec![0.0; w * w];
    let mut b = vec![0.0; w];
    let (zs, ss) = (r.max(1), (r * r).max(1));
    for j in 0..k {
        a.fill(0.0);
        b.fill(0.0);
        let mut c = 0.0;
        for (&u, &x) in users.iter().zip(values) {
            let (u, x) = (u as usize, f64::from(x));
            let g = post.gamma[u * k + j];
            if g < GAMMA_SKIP {
                continue;
            }
            let z = &post.tastes[(u * k + j) * zs..][..r];
            let m2 = &post.second[(u * k + j) * ss..][..r * r];
            a[0] += g;
            b[0] += g * x;
            c += g * x * x;
            b[1..]
                .iter_mut()
                .zip(z)
                .for_each(|(b, &zi)| *b += g * x * zi);
            // A = Σ γ [[1, ẑᵀ], [ẑ, E[z zᵀ]]]: column 0, then the E[z zᵀ] block by full rows.
            for i in 0..r {
                a[(i + 1) * w] += g * z[i];
                let row = &mut a[(i + 1) * w + 1..][..r];
                row.iter_mut()
                    .zip(&m2[i * r..][..r])
                    .for_each(|(v, &m)| *v += g * m);
            }
        }
        let theta = &mut rows[j * w..][..w];
        if a[0] == 0.0 {
            theta.fill(0.0);
            continue;
        }
        let raw = a.clone();
        for i in 0..w {
            a[i * w + i] += lambda;
        }
        theta.copy_from_slice(&b);
        linalg::cholesky(&mut a, w).expect("a ridge makes the system positive definite");
        linalg::solve(&a, w, theta);
        // Σ γ E[(x − θ·z̃)²] = c − 2 θ·b + θᵀ A θ (A unregularised; its lower triangle)
        let mut quad = 0.0;
        for i in 0..w {
            quad += theta[i] * raw[i * w + i] * theta[i];
            for jj in 0..i {
                quad += 2.0 * theta[i] * raw[i * w + jj] * theta[jj];
            }
        }
        let tb: f64 = theta.iter().zip(&b).map(|(t, v)| t * v).sum();
        sse[j] = (c - 2.0 * tb + quad).max(0.0);
    }
    sse
}
