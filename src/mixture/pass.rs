//! One pass over the ratings: the E-step, fused with the sufficient statistics of the M-step.
//!
//! For each user the pass computes, per type j, the squared distance over the user's observed
//! ratings `sq_j = Σ_{l ∈ C_u} (x_ul − mu_jl)²`, turns it into a posterior (EM) or a hard
//! assignment (k-means), and adds the user into the statistics the M-step needs:
//!
//! ```text
//! numer[l, j] = Σ_u post_uj x_ul        denom[l, j] = Σ_u post_uj δ_ul
//! weight[j]   = Σ_u post_uj             count[j]    = Σ_u post_uj |C_u|
//! sq_norm[j]  = Σ_u post_uj Σ_l x_ul²
//! ```
//!
//! so one iteration reads the ratings once. The variance needs the *new* means, and it follows
//! from these sums without a second pass:
//! `Σ_u post_uj Σ_l (x_ul − mu_jl)² = sq_norm_j − 2 Σ_l mu_jl numer_lj + Σ_l mu_jl² denom_lj`.
//!
//! Users are cut into chunks by rating count. The cut depends on the data only, each chunk sums
//! in user order, and chunks are combined in chunk order: the same bits for any thread count.

use std::f64::consts::PI;
use std::ops::Range;

use ndarray::Array2;
use rayon::prelude::*;

use super::Mixture;
use crate::data::Ratings;

/// Ratings per chunk the cut aims at; more chunks than threads keeps both cores busy.
const CHUNK_RATINGS: usize = 1 << 16;
/// Upper bound on chunks, so per-chunk statistics (2·d·K numbers each) stay small.
const MAX_CHUNKS: usize = 64;
/// Block of statistics summed by one task when chunks are combined.
const REDUCE_BLOCK: usize = 1 << 12;

/// Soft (EM posterior) or hard (k-means nearest mean) assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Assign {
    Soft,
    Hard,
}

/// Sufficient statistics of one pass; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    /// Σ_u post_uj x_ul, item-major. (n_items · k)
    pub numer: Vec<f64>,
    /// Σ_u post_uj over users who rated l, item-major. (n_items · k)
    pub denom: Vec<f64>,
    /// Σ_u post_uj. (k)
    pub weight: Vec<f64>,
    /// Σ_u post_uj |C_u|. (k)
    pub count: Vec<f64>,
    /// Σ_u post_uj Σ_l x_ul². (k)
    pub sq_norm: Vec<f64>,
    /// Log-likelihood (soft) or assignment cost with the old means (hard).
    pub objective: f64,
}

impl Stats {
    fn zeros(d: usize, k: usize) -> Self {
        Self {
            numer: vec![0.0; d * k],
            denom: vec![0.0; d * k],
            weight: vec![0.0; k],
            count: vec![0.0; k],
            sq_norm: vec![0.0; k],
            objective: 0.0,
        }
    }
}

/// The result of an E-step alone: posteriors and log-likelihood.
#[derive(Debug, Clone)]
pub struct Estep {
    /// Posterior of each type for each user. (n_users, k)
    pub posteriors: Array2<f64>,
    /// Σ_u log p(x_u).
    pub log_likelihood: f64,
}

/// The E-step on its own (the step-by-step view; training uses the fused pass).
pub fn estep(ratings: &Ratings, mixture: &Mixture) -> Estep {
    let mut posteriors = Array2::zeros((ratings.n_users(), mixture.k()));
    let stats = pass(
        ratings,
        mixture,
        Assign::Soft,
        posteriors.as_slice_mut().expect("standard layout"),
    );
    Estep {
        posteriors,
        log_likelihood: stats.objective,
    }
}

/// Per-type constants of the Gaussian log-density, hoisted out of the user loop.
pub(crate) struct Terms {
    /// ln p_j
    pub log_weight: Vec<f64>,
    /// ½ ln(2π var_j), paid once per observed rating
    pub half_log_2pi_var: Vec<f64>,
    /// 1 / (2 var_j)
    pub inv_2var: Vec<f64>,
}

impl Terms {
    pub fn new(m: &Mixture) -> Self {
        Self {
            log_weight: m.weights.iter().map(|p| p.ln()).collect(),
            half_log_2pi_var: m
                .variances
                .iter()
                .map(|v| 0.5 * (2.0 * PI * v).ln())
                .collect(),
            inv_2var: m.variances.iter().map(|v| 0.5 / v).collect(),
        }
    }

    /// ln p_j + Σ_l ln N(x_l; mu_jl, var_j) from `sq_j` and the number of ratings, in place.
    #[inline]
    pub fn log_joint(&self, sq: &mut [f64], n_rated: usize) {
        let n = n_rated as f64;
        for (j, s) in sq.iter_mut().enumerate() {
            *s = self.log_weight[j] - n * self.half_log_2pi_var[j] - *s * self.inv_2var[j];
        }
    }
}

/// log-sum-exp: ln Σ e^a_j = m + ln Σ e^(a_j − m), m = max a_j.
#[inline]
pub(crate) fn log_sum_exp(a: &[f64]) -> f64 {
    let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + a.iter().map(|&x| (x - m).exp()).sum::<f64>().ln()
}

/// `sq[j] = Σ_{l ∈ items} (x_l − mu_jl)²`; returns Σ x_l². `means` is item-major (d · k).
#[inline]
pub(crate) fn squared_distances(
    items: &[u32],
    values: &[f32],
    means: &[f64],
    sq: &mut [f64],
) -> f64 {
    let k = sq.len();
    sq.fill(0.0);
    let mut xx = 0.0;
    for (&l, &x) in items.iter().zip(values) {
        let x = f64::from(x);
        xx += x * x;
        let mu = &means[l as usize * k..][..k];
        for (s, &m) in sq.iter_mut().zip(mu) {
            let diff = x - m;
            *s += diff * diff;
        }
    }
    xx
}

/// Index of the smallest entry; the first on ties (numpy's `argmin`).
#[inline]
pub(crate) fn argmin(a: &[f64]) -> usize {
    let mut best = 0;
    for (j, &x) in a.iter().enumerate().skip(1) {
        if x < a[best] {
            best = j;
        }
    }
    best
}

/// The user ranges of the chunks: balanced by ratings, fixed by the data alone.
fn chunks(ratings: &Ratings) -> Vec<Range<usize>> {
    let n = ratings.n_users();
    let want = ratings
        .nnz()
        .div_ceil(CHUNK_RATINGS)
        .clamp(1, MAX_CHUNKS)
        .min(n.max(1));
    let offsets = ratings.offsets();
    let total = ratings.nnz() as u64;
    let mut cuts = vec![0];
    for c in 1..want {
        let target = total * c as u64 / want as u64;
        let at = offsets.partition_point(|&o| o < target).min(n);
        if at > *cuts.last().expect("non-empty") {
            cuts.push(at);
        }
    }
    cuts.push(n);
    cuts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// One fused pass: writes the posteriors (user-major, n_users · k) and returns the statistics.
pub(crate) fn pass(
    ratings: &Ratings,
    mixture: &Mixture,
    assign: Assign,
    posts: &mut [f64],
) -> Stats {
    let (d, k) = (mixture.n_items(), mixture.k());
    assert_eq!(
        ratings.n_items(),
        d,
        "mixture and ratings disagree on the number of items"
    );
    assert_eq!(posts.len(), ratings.n_users() * k);
    let means = mixture.means.as_slice().expect("standard layout");
    let terms = Terms::new(mixture);
    let ranges = chunks(ratings);
    let mut slices = Vec::with_capacity(ranges.len());
    let mut rest = posts;
    for r in &ranges {
        let (head, tail) = rest.split_at_mut(r.len() * k);
        slices.push(head);
        rest = tail;
    }
    let parts: Vec<Stats> = ranges
        .into_par_iter()
        .zip(slices)
        .map(|(users, posts)| chunk_pass(ratings, users, means, &terms, assign, posts))
        .collect();
    combine(parts, d, k)
}

fn chunk_pass(
    ratings: &Ratings,
    users: Range<usize>,
    means: &[f64],
    terms: &Terms,
    assign: Assign,
    posts: &mut [f64],
) -> Stats {
    let k = terms.log_weight.len();
    let mut st = Stats::zeros(means.len() / k, k);
    let mut sq = vec![0.0; k];
    for (u, post) in users.zip(posts.chunks_exact_mut(k)) {
        let (items, values) = ratings.row(u);
        let xx = squared_distances(items, values, means, &mut sq);
        match assign {
            Assign::Soft => {
                terms.log_joint(&mut sq, items.len());
                let lse = log_sum_exp(&sq);
                st.objective += lse;
                for (p, &a) in post.iter_mut().zip(&sq) {
                    *p = (a - lse).exp();
                }
                accumulate_soft(&mut st, items, values, post, xx);
            }
            Assign::Hard => {
                let j = argmin(&sq);
                st.objective += sq[j];
                post.fill(0.0);
                post[j] = 1.0;
                accumulate_hard(&mut st, items, values, j, k, xx);
            }
        }
    }
    st
}

#[inline]
fn accumulate_soft(st: &mut Stats, items: &[u32], values: &[f32], post: &[f64], xx: f64) {
    let k = post.len();
    let n = items.len() as f64;
    for j in 0..k {
        st.weight[j] += post[j];
        st.count[j] += post[j] * n;
        st.sq_norm[j] += post[j] * xx;
    }
    for (&l, &x) in items.iter().zip(values) {
        let x = f64::from(x);
        let at = l as usize * k;
        let num = &mut st.numer[at..][..k];
        for (s, &p) in num.iter_mut().zip(post) {
            *s += p * x;
        }
        let den = &mut st.denom[at..][..k];
        for (s, &p) in den.iter_mut().zip(post) {
            *s += p;
        }
    }
}

#[inline]
fn accumulate_hard(st: &mut Stats, items: &[u32], values: &[f32], j: usize, k: usize, xx: f64) {
    st.weight[j] += 1.0;
    st.count[j] += items.len() as f64;
    st.sq_norm[j] += xx;
    for (&l, &x) in items.iter().zip(values) {
        let at = l as usize * k + j;
        st.numer[at] += f64::from(x);
        st.denom[at] += 1.0;
    }
}

/// Sums the chunk statistics in chunk order (in parallel over blocks of entries).
fn combine(mut parts: Vec<Stats>, d: usize, k: usize) -> Stats {
    if parts.len() == 1 {
        return parts.pop().expect("one part");
    }
    let mut total = Stats::zeros(d, k);
    let sum_into = |out: &mut Vec<f64>, pick: fn(&Stats) -> &Vec<f64>| {
        out.par_chunks_mut(REDUCE_BLOCK)
            .enumerate()
            .for_each(|(b, block)| {
                for part in &parts {
                    let src = &pick(part)[b * REDUCE_BLOCK..][..block.len()];
                    block.iter_mut().zip(src).for_each(|(o, &x)| *o += x);
                }
            });
    };
    sum_into(&mut total.numer, |s| &s.numer);
    sum_into(&mut total.denom, |s| &s.denom);
    for part in &parts {
        for j in 0..k {
            total.weight[j] += part.weight[j];
            total.count[j] += part.count[j];
            total.sq_norm[j] += part.sq_norm[j];
        }
        total.objective += part.objective;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn estep_on_a_hand_computed_case() {
        // Two users, two items, one type each centred on a user: user 0 rated (1, _),
        // user 1 rated (_, 3). K = 2, means item-major, variance 1, equal weights.
        let r = Ratings::from_dense_rows(&[vec![1.0, 0.0], vec![0.0, 3.0]]);
        let m = Mixture {
            means: array![[1.0, 2.0], [4.0, 3.0]], // (d, k): type 0 = (1, 4), type 1 = (2, 3)
            variances: array![1.0, 1.0],
            weights: array![0.5, 0.5],
        };
        let e = estep(&r, &m);
        // user 0: sq = (0, 1) → posterior ∝ (1, e^-1/2)
        let p0 = 1.0 / (1.0 + (-0.5f64).exp());
        assert!((e.posteriors[[0, 0]] - p0).abs() < 1e-15);
        // user 1: sq = (1, 0) → the mirror image
        assert!((e.posteriors[[1, 1]] - p0).abs() < 1e-15);
        // LL per user: ln(0.5 N(0) + 0.5 N(1)) with N(s) = e^{-s/2}/√(2π)
        let per_user = (0.5 * (1.0 + (-0.5f64).exp()) / (2.0 * PI).sqrt()).ln();
        assert!((e.log_likelihood - 2.0 * per_user).abs() < 1e-12);
    }

    #[test]
    fn chunks_cover_every_user_once() {
        let rows: Vec<Vec<f64>> = (0..1000).map(|u| vec![(u % 5 + 1) as f64; 200]).collect();
        let r = Ratings::from_dense_rows(&rows);
        let c = chunks(&r);
        assert!(c.len() > 1);
        assert_eq!(c.first().unwrap().start, 0);
        assert_eq!(c.last().unwrap().end, 1000);
        assert!(
            c.windows(2)
                .all(|w| w[0].end == w[1].start && !w[1].is_empty())
        );
    }

    #[test]
    fn log_sum_exp_survives_huge_magnitudes() {
        assert!((log_sum_exp(&[-1000.0, -1000.0]) - (-1000.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(log_sum_exp(&[f64::NEG_INFINITY, 0.0]), 0.0);
    }
}
