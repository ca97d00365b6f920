//! One iteration's pass over the ratings: the E-step, then the sufficient statistics of the
//! M-step.
//!
//! The E-step walks users: for each, per type j, the squared distance over the user's observed
//! ratings `sq_j = Σ_{l ∈ C_u} (x_ul − mu_jl)²` becomes a posterior (EM) or a hard assignment
//! (k-means), and the per-type sums of the user are added up:
//!
//! ```text
//! weight[j]  = Σ_u post_uj      count[j] = Σ_u post_uj |C_u|      sq_norm[j] = Σ_u post_uj Σ_l x_ul²
//! ```
//!
//! The statistics of the means then walk *items*, over a transposed copy of the ratings:
//!
//! ```text
//! numer[l, j] = Σ_{u rated l} post_uj x_ul        denom[l, j] = Σ_{u rated l} post_uj
//! ```
//!
//! Walking items keeps the 2·K running sums of one item in registers; walking users instead
//! scatters 2·K stores per rating into memory, and stores were the bottleneck (perf annotate).
//! The variance needs the *new* means, and follows from these sums without another pass:
//! `Σ_u post_uj Σ_l (x_ul − mu_jl)² = sq_norm_j − 2 Σ_l mu_jl numer_lj + Σ_l mu_jl² denom_lj`.
//!
//! Where the posterior table is past the last-level cache and the catalogue is small beside
//! the ratings (100 M ratings, 17,770 items), gathering its rows costs more than storing: each
//! user then adds `post_u x_ul` and `post_u` into its slot's own table of item sums right after
//! its E-step, and the slots' tables are added up at the end ([`scatters`]); no transposed
//! copy is made.
//!
//! Where at least half of all (user, item) pairs are rated (the Netflix subset: 77 %), both
//! halves walk dense tiles of eight users or eight items instead ([`super::dense`]): one row
//! of means or posteriors read for eight ratings, the same terms added in the same order, so
//! the same bits.
//!
//! Determinism: users are cut into chunks by rating count, fixed by the data alone; each chunk
//! sums in user order and chunks combine in chunk order. Each item's sums run over its users in
//! ascending order on one thread; scattering, over each slot's users in ascending order, and
//! the slots (a fixed number of runs of chunks) add up in slot order. So any thread count gives
//! the same bits.

use std::borrow::Cow;
use std::f64::consts::PI;
use std::ops::Range;
use std::time::{Duration, Instant};

use ndarray::Array2;
use rayon::prelude::*;

use super::Mixture;
use super::dense::{self, Dense, TILE};
use super::kernels::{Gather, LANES, column_sums, scatter_sums, squared_distances, sum_of_squares};
use crate::data::{Ratings, balanced_cuts};
use crate::simd::{dispatched, math};

/// Ratings per chunk the cut aims at; more chunks than threads keeps both cores busy.
const CHUNK_RATINGS: usize = 1 << 16;
/// Upper bound on chunks.
const MAX_CHUNKS: usize = 256;
/// Posterior tables larger than this (past a server's last-level cache: 46 MB at 480,000
/// users and K = 12) are gathered from in blocks by the item pass...
const POSTS_BLOCKED_FROM: usize = 16 << 20;
/// ...of this many bytes of rows: each item's raters within one block, then the next block,
/// so the rows an item pass gathers come from cache, not memory.
const POSTS_BLOCK_BYTES: usize = 4 << 20;
/// Runs of user chunks whose item sums are added up apart where a pass scatters (see
/// [`scatters`]): a constant, so the order of every sum depends on the data alone.
const SLOTS: usize = 8;

/// Whether a pass over `ratings` with `k` types takes the item sums from the users' side, each
/// user adding its posterior into its slot's table of item sums right after its E-step, rather
/// than walking a transposed copy of the ratings and gathering posterior rows. It does where
/// the posterior table is past [`POSTS_BLOCKED_FROM`] (the gathers would come from memory)
/// and the [`SLOTS`] tables take at most half the bytes of the copy they replace (a catalogue
/// of a few tens of thousands of items, not millions).
///
/// Measured on a 2-core Zen 4 (AVX-512, 32 MiB L3), `fit -v`'s iteration times of a scratch
/// build that took either way on a switch, one or two runs each way: at 100 M ratings (480,189
/// users × 17,770 items, K = 12: a 46 MB table) 0.42–0.57 s an iteration scattering against
/// 0.72–0.77 s gathering; at 10 M (a 4.6 MB table) 53–88 ms against 27–33 ms, and on the
/// Netflix subset 106–124 against 65–83 ms for the seed's 27 iterations: where the table sits in cache, the gathers are cheaper than a
/// scatter's stores, hence the choice by size. Without the copy a fit also holds 8 bytes a
/// rating less.
pub(crate) fn scatters(ratings: &Ratings, k: usize) -> bool {
    let stride = padded(k);
    ratings.n_users() * stride * size_of::<f64>() > POSTS_BLOCKED_FROM
        && SLOTS * ratings.n_items() * 2 * stride * size_of::<f64>()
            <= ratings.nnz() * (size_of::<u32>() + size_of::<f32>()) / 2
}

/// K rounded up to a multiple of [`LANES`]: the stride of every per-item row in a pass.
pub(crate) fn padded(k: usize) -> usize {
    k.div_ceil(LANES) * LANES
}

/// Soft (EM posterior) or hard (k-means nearest mean) assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Assign {
    Soft,
    Hard,
}

/// Sufficient statistics of one pass; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    /// Row length of `numer` and `denom`: K padded to a multiple of [`LANES`].
    pub stride: usize,
    /// Σ_u post_uj x_ul, item-major. (n_items · stride)
    pub numer: Vec<f64>,
    /// Σ_u post_uj over users who rated l, item-major. (n_items · stride)
    pub denom: Vec<f64>,
    /// Per-type sums of the E-step.
    pub users: UserSums,
}

/// The per-type sums of the E-step, and its objective.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserSums {
    /// Σ_u post_uj. (k)
    pub weight: Vec<f64>,
    /// Σ_u post_uj |C_u|. (k)
    pub count: Vec<f64>,
    /// Σ_u post_uj Σ_l x_ul². (k)
    pub sq_norm: Vec<f64>,
    /// Log-likelihood (soft) or assignment cost with the old means (hard).
    pub objective: f64,
}

impl UserSums {
    fn zeros(k: usize) -> Self {
        Self {
            weight: vec![0.0; k],
            count: vec![0.0; k],
            sq_norm: vec![0.0; k],
            objective: 0.0,
        }
    }

    /// Adds `other` after `self` (the order is part of the result's bits).
    fn add(&mut self, other: &Self) {
        let pairs = [
            (&mut self.weight, &other.weight),
            (&mut self.count, &other.count),
            (&mut self.sq_norm, &other.sq_norm),
        ];
        for (a, b) in pairs {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        self.objective += other.objective;
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

/// The E-step on its own (the step-by-step view; training runs it inside [`Pass`]).
pub fn estep(ratings: &Ratings, mixture: &Mixture) -> Estep {
    let mut pass = Pass::new(ratings, mixture.k());
    let log_likelihood = pass.run(mixture, Assign::Soft).users.objective;
    Estep {
        posteriors: pass.posteriors(),
        log_likelihood,
    }
}

/// Per-type constants of the Gaussian log-density, hoisted out of the user loop.
#[derive(Debug, Clone, PartialEq)]
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
    #[inline(always)]
    pub fn log_joint(&self, sq: &mut [f64], n_rated: usize) {
        let n = n_rated as f64;
        for (j, s) in sq.iter_mut().enumerate() {
            *s = self.log_weight[j] - n * self.half_log_2pi_var[j] - *s * self.inv_2var[j];
        }
    }
}

/// log-sum-exp: ln Σ e^a_j = m + ln Σ e^(a_j − m), m = max a_j.
#[inline(always)]
pub(crate) fn log_sum_exp(a: &[f64]) -> f64 {
    let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + a.iter().map(|&x| exp_or_zero(x - m)).sum::<f64>().ln()
}

/// Below this, e^x is 0 in f64 (the smallest subnormal is e^−744.4; e^x rounds to 0 below
/// −745.13).
const EXP_UNDERFLOW: f64 = -746.0;

/// `x.exp()`, with the 0 of an underflow returned at once: the same bits, without libm's slow
/// underflow path, which on dense data most types take for most users (a user with 900
/// ratings is hundreds of nats more likely under one type than under the others). Libm's exp,
/// for [`log_sum_exp`] (the low-rank mixture's and onboarding's posteriors); the E-step's own
/// is `simd::math::exp_flushed`, eight lanes at a time.
#[inline(always)]
pub(crate) fn exp_or_zero(x: f64) -> f64 {
    if x < EXP_UNDERFLOW { 0.0 } else { x.exp() }
}

/// The posterior of one user from the log joints `a_j = ln p_j + ln p(x | j)`, in place, with
/// one exponential a type, eight lanes at a time (the E-step's and a served profile's alike):
///
/// ```text
/// e_j = e^(a_j − m), m = max a        post_j = e_j / Σ e        ln p(x) = m + ln Σ e
/// ```
///
/// Returns ln p(x); `a` is left holding the posterior. (An e_j below e^−708 is 0: beside the
/// largest, which is 1, it changes neither the sum nor any posterior that is not itself below
/// 1e−307.) Taking e^(a_j − ln p(x)) again, as log-sum-exp written out would, costs a second
/// exponential a type, which on sparse data was as much as the user's ratings' share.
#[inline(always)]
pub(crate) fn posterior_from_log_joint(a: &mut [f64]) -> f64 {
    let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        a.fill(f64::NAN);
        return m;
    }
    a.iter_mut().for_each(|v| *v -= m);
    math::each(a, 0.0, math::exp_flushed);
    let sum: f64 = a.iter().sum();
    a.iter_mut().for_each(|e| *e /= sum);
    m + sum.ln()
}

/// Index of the smallest entry; the first on ties (numpy's `argmin`).
#[inline(always)]
pub(crate) fn argmin(a: &[f64]) -> usize {
    let mut best = 0;
    for (j, &x) in a.iter().enumerate().skip(1) {
        if x < a[best] {
            best = j;
        }
    }
    best
}

/// Ranges of rows cut into chunks balanced by entries; the cut depends on the data alone.
fn chunks(rows: &Ratings) -> Vec<Range<usize>> {
    let want = rows.nnz().div_ceil(CHUNK_RATINGS).clamp(1, MAX_CHUNKS);
    balanced_cuts(rows.offsets(), want)
}

/// The buffers of a training run's passes, kept across iterations so an iteration allocates
/// nothing but a few K-vectors.
pub(crate) struct Pass<'r> {
    ratings: &'r Ratings,
    /// The same ratings by item: row l lists (user, rating) of item l. `None` where the item
    /// sums come from the users' side ([`scatters`]) or from `tiles`.
    by_item: Option<Cow<'r, Ratings>>,
    /// The ratings as dense tiles, where most pairs are rated ([`dense::worth`]): both halves
    /// of the pass walk these instead of rows.
    tiles: Option<Dense>,
    /// With no `by_item`: runs of `user_chunks` (indices), each summing its users' share of
    /// every item into its own table of `sums`.
    slots: Vec<Range<usize>>,
    /// The slots' item sums: per item a row of `numer` then a row of `denom`. (slots · n_items
    /// · 2 · stride)
    sums: Vec<Vec<f64>>,
    /// Each user's Σ x² (the data's: worked out once, not every E-step). (n_users,)
    sq_norms: Vec<f64>,
    user_chunks: Vec<Range<usize>>,
    item_chunks: Vec<Range<usize>>,
    k: usize,
    /// Posteriors, user-major, rows padded to the stride with zeros. (n_users · stride)
    posts: Vec<f64>,
    /// The means, item-major, rows padded to the stride. (n_items · stride)
    means: Vec<f64>,
    stats: Stats,
    /// How long the last pass's E-step and item sums took.
    times: PassTimes,
}

/// Where a pass takes its item sums from.
pub(crate) enum ItemSide<'r> {
    /// The ratings by item, walked row by row: row l lists (user, rating) of item l.
    Rows(Cow<'r, Ratings>),
    /// Dense tiles of the ratings ([`dense::worth`]; the E-step walks tiles too).
    Tiles,
    /// The users' side: each E-step adds its posterior into its slot's table ([`scatters`]).
    Scattered,
}

/// Wall time of one pass's two halves (for the benchmarks' roofline; nothing depends on it).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PassTimes {
    /// The E-step over users (posteriors and the per-type sums).
    pub estep: Duration,
    /// The item pass (`numer`, `denom`); where the pass scatters, adding up the slots' tables.
    pub item_sums: Duration,
    /// Whether the item sums were scattered by the E-step (see `scatters`) rather than walked.
    pub scattered: bool,
    /// Where both halves walked dense tiles ([`super::dense`]) rather than rows, the bytes a
    /// tile cell takes (1 for whole ratings 0–127, 4 for others); `None` where they did not.
    pub tile_bytes: Option<usize>,
}

impl<'r> Pass<'r> {
    /// Buffers for passes over `ratings` with `k` types.
    pub fn new(ratings: &'r Ratings, k: usize) -> Self {
        Self::with_transposed(ratings, None, k)
    }

    /// [`Pass::new`] with the transpose perhaps already made (`by_item`:
    /// `ratings.transposed()`): used where the pass walks items, dropped where it
    /// [`scatters`] or walks dense tiles ([`dense::worth`]), made here where it is needed and
    /// not given.
    pub fn with_transposed(
        ratings: &'r Ratings,
        by_item: Option<Cow<'r, Ratings>>,
        k: usize,
    ) -> Self {
        let side = if scatters(ratings, k) {
            ItemSide::Scattered
        } else if dense::worth(ratings) {
            ItemSide::Tiles
        } else {
            ItemSide::Rows(by_item.unwrap_or_else(|| Cow::Owned(ratings.transposed())))
        };
        Self::build(ratings, side, k)
    }

    /// The buffers for taking the item sums from `side`.
    fn build(ratings: &'r Ratings, side: ItemSide<'r>, k: usize) -> Self {
        let (n, d, stride) = (ratings.n_users(), ratings.n_items(), padded(k));
        let user_chunks = chunks(ratings);
        let (mut by_item, mut tiles) = (None, None);
        let (item_chunks, slots, sums) = match side {
            ItemSide::Rows(rows) => {
                debug_assert_eq!((rows.n_users(), rows.nnz()), (d, ratings.nnz()));
                let item_chunks = chunks(&rows);
                by_item = Some(rows);
                (item_chunks, Vec::new(), Vec::new())
            }
            ItemSide::Tiles => {
                tiles = Some(Dense::new(ratings, &user_chunks));
                // Four runs of whole tiles a thread (the item sums do not depend on the cut).
                let per = d
                    .div_ceil(TILE)
                    .div_ceil(4 * rayon::current_num_threads())
                    .max(1)
                    * TILE;
                let item_chunks = (0..d).step_by(per).map(|l| l..(l + per).min(d)).collect();
                (item_chunks, Vec::new(), Vec::new())
            }
            ItemSide::Scattered => {
                // Consecutive runs of the chunks, as even in chunks as the count allows.
                let n_slots = SLOTS.min(user_chunks.len());
                let slots: Vec<Range<usize>> = (0..n_slots)
                    .map(|s| s * user_chunks.len() / n_slots..(s + 1) * user_chunks.len() / n_slots)
                    .collect();
                let sums = vec![vec![0.0; d * 2 * stride]; n_slots];
                (Vec::new(), slots, sums)
            }
        };
        Self {
            ratings,
            // Each user's on its own, so the same bits on any thread count.
            sq_norms: (0..n)
                .into_par_iter()
                .with_min_len(256)
                .map(|u| sum_of_squares(ratings.row(u).1))
                .collect(),
            user_chunks,
            item_chunks,
            slots,
            sums,
            by_item,
            tiles,
            k,
            posts: vec![0.0; n * stride],
            means: vec![0.0; d * stride],
            stats: Stats {
                stride,
                numer: vec![0.0; d * stride],
                denom: vec![0.0; d * stride],
                users: UserSums::zeros(k),
            },
            times: PassTimes::default(),
        }
    }

    /// One pass with `mixture`: the E-step, then the statistics of the M-step.
    pub fn run(&mut self, mixture: &Mixture, assign: Assign) -> &Stats {
        assert_eq!(
            self.ratings.n_items(),
            mixture.n_items(),
            "mixture and ratings disagree on d"
        );
        assert_eq!(self.k, mixture.k(), "workspace built for another k");
        pad_means(mixture, &mut self.means);
        let start = Instant::now();
        self.stats.users = self.estep(&Terms::new(mixture), assign);
        let estep = start.elapsed();
        self.item_sums();
        self.times = PassTimes {
            estep,
            item_sums: start.elapsed() - estep,
            scattered: self.by_item.is_none() && self.tiles.is_none(),
            tile_bytes: self.tiles.as_ref().map(Dense::cell_bytes),
        };
        &self.stats
    }

    /// The last pass's times.
    pub fn times(&self) -> PassTimes {
        self.times
    }

    /// Number of users.
    pub fn n_users(&self) -> usize {
        self.ratings.n_users()
    }

    /// The posteriors of the last pass. (n_users, k)
    pub fn posteriors(&self) -> Array2<f64> {
        let stride = padded(self.k);
        Array2::from_shape_fn((self.ratings.n_users(), self.k), |(u, j)| {
            self.posts[u * stride + j]
        })
    }

    /// The E-step over user chunks in parallel; returns the per-type sums in chunk order.
    fn estep(&mut self, terms: &Terms, assign: Assign) -> UserSums {
        let stride = padded(self.k);
        let mut slices = Vec::with_capacity(self.user_chunks.len());
        let mut rest = self.posts.as_mut_slice();
        for r in &self.user_chunks {
            let (head, tail) = rest.split_at_mut(r.len() * stride);
            slices.push(head);
            rest = tail;
        }
        let (ratings, sq_norms) = (self.ratings, &self.sq_norms[..]);
        let step = Step {
            means: &self.means,
            terms,
            assign,
        };
        let chunk = |users: &Range<usize>, posts: &mut [f64], acc: Option<&mut [f64]>| {
            let norms = &sq_norms[users.clone()];
            estep_chunk(ratings, users.clone(), norms, step, posts, acc)
        };
        let parts: Vec<UserSums> = if let Some(tiles) = &self.tiles {
            self.user_chunks
                .par_iter()
                .zip(slices)
                .enumerate()
                .map(|(c, (users, posts))| {
                    let norms = &sq_norms[users.clone()];
                    estep_tiles(tiles, c, ratings, users.clone(), norms, step, posts)
                })
                .collect()
        } else if self.by_item.is_some() {
            self.user_chunks
                .par_iter()
                .zip(slices)
                .map(|(users, posts)| chunk(users, posts, None))
                .collect()
        } else {
            let mut slices = slices.into_iter();
            let work: Vec<_> = self
                .slots
                .iter()
                .map(|s| (s.clone(), slices.by_ref().take(s.len()).collect::<Vec<_>>()))
                .collect();
            let user_chunks = &self.user_chunks;
            let per_slot: Vec<Vec<UserSums>> = work
                .into_par_iter()
                .zip(self.sums.par_iter_mut())
                .map(|((s, posts), acc)| {
                    acc.fill(0.0);
                    user_chunks[s]
                        .iter()
                        .zip(posts)
                        .map(|(users, posts)| chunk(users, posts, Some(&mut acc[..])))
                        .collect()
                })
                .collect();
            per_slot.into_iter().flatten().collect()
        };
        let mut total = parts[0].clone();
        parts[1..].iter().for_each(|p| total.add(p));
        total
    }

    /// `numer` and `denom` item by item, item chunks in parallel.
    fn item_sums(&mut self) {
        let stride = self.stats.stride;
        if self.tiles.is_some() {
            return self.tile_sums();
        }
        let Some(by_item) = &self.by_item else {
            return self.add_slots();
        };
        let posts = &self.posts;
        let block_users = if posts.len() * 8 > POSTS_BLOCKED_FROM {
            (POSTS_BLOCK_BYTES / (8 * stride)).max(1)
        } else {
            usize::MAX
        };
        let mut slices = Vec::with_capacity(self.item_chunks.len());
        let (mut numer, mut denom) = (
            self.stats.numer.as_mut_slice(),
            self.stats.denom.as_mut_slice(),
        );
        for r in &self.item_chunks {
            let (n_head, n_tail) = numer.split_at_mut(r.len() * stride);
            let (d_head, d_tail) = denom.split_at_mut(r.len() * stride);
            slices.push((n_head, d_head));
            (numer, denom) = (n_tail, d_tail);
        }
        self.item_chunks
            .par_iter()
            .zip(slices)
            .for_each(|(items, (numer, denom))| {
                item_chunk(by_item, items.clone(), posts, block_users, numer, denom);
            });
    }

    /// `numer` and `denom` from the item tiles, runs of tiles in parallel.
    fn tile_sums(&mut self) {
        let stride = self.stats.stride;
        let tiles = self.tiles.as_ref().expect("a tiled pass");
        let posts = &self.posts;
        let (mut numer, mut denom) = (&mut self.stats.numer[..], &mut self.stats.denom[..]);
        let mut runs = Vec::with_capacity(self.item_chunks.len());
        for r in &self.item_chunks {
            let (n_head, n_tail) = numer.split_at_mut(r.len() * stride);
            let (d_head, d_tail) = denom.split_at_mut(r.len() * stride);
            runs.push((r.start / TILE, n_head, d_head));
            (numer, denom) = (n_tail, d_tail);
        }
        runs.into_par_iter().for_each(|(first, numer, denom)| {
            let (mut num, mut den) = (vec![0.0; TILE * stride], vec![0.0; TILE * stride]);
            let rows = numer
                .chunks_mut(TILE * stride)
                .zip(denom.chunks_mut(TILE * stride));
            for (s, (numer, denom)) in (first..).zip(rows) {
                dense::sums(tiles.item_tile(s), posts, stride, &mut num, &mut den);
                numer.copy_from_slice(&num[..numer.len()]);
                denom.copy_from_slice(&den[..denom.len()]);
            }
        });
    }

    /// `numer` and `denom` from the slots' tables, added in slot order, items in parallel.
    fn add_slots(&mut self) {
        const ITEMS: usize = 512;
        let stride = self.stats.stride;
        let sums = &self.sums;
        self.stats
            .numer
            .par_chunks_mut(ITEMS * stride)
            .zip(self.stats.denom.par_chunks_mut(ITEMS * stride))
            .enumerate()
            .for_each(|(b, (numer, denom))| {
                let first = b * ITEMS;
                let rows = numer
                    .chunks_exact_mut(stride)
                    .zip(denom.chunks_exact_mut(stride));
                for (i, (num, den)) in rows.enumerate() {
                    let at = 2 * (first + i) * stride;
                    num.copy_from_slice(&sums[0][at..at + stride]);
                    den.copy_from_slice(&sums[0][at + stride..at + 2 * stride]);
                    for s in &sums[1..] {
                        num.iter_mut().zip(&s[at..]).for_each(|(a, b)| *a += b);
                        den.iter_mut()
                            .zip(&s[at + stride..])
                            .for_each(|(a, b)| *a += b);
                    }
                }
            });
    }
}

/// Copies the means item-major into rows of [`padded`]`(k)` entries (padding stays 0).
fn pad_means(mixture: &Mixture, out: &mut [f64]) {
    let (k, stride) = (mixture.k(), padded(mixture.k()));
    let means = mixture.means.as_standard_layout();
    let means = means.as_slice().expect("a standard layout");
    for (row, src) in out.chunks_exact_mut(stride).zip(means.chunks_exact(k)) {
        row[..k].copy_from_slice(src);
    }
}

/// What every user's E-step reads besides its ratings.
#[derive(Clone, Copy)]
struct Step<'a> {
    /// The means, item-major, rows padded to the stride.
    means: &'a [f64],
    terms: &'a Terms,
    assign: Assign,
}

dispatched! {
    /// The E-step of one chunk of users; `posts` are their padded posterior rows. With `acc`,
    /// each user's posterior is also added into that table of item sums ([`scatters`]).
    fn estep_chunk, estep_chunk_avx2, estep_chunk_avx512 => estep_chunk_generic(
        ratings: &Ratings, users: Range<usize>, sq_norms: &[f64], step: Step<'_>, posts: &mut [f64], acc: Option<&mut [f64]>
    ) -> UserSums
}

dispatched! {
    /// `numer` and `denom` rows of one chunk of items.
    fn item_chunk, item_chunk_avx2, item_chunk_avx512 => item_chunk_generic(
        by_item: &Ratings, items: Range<usize>, posts: &[f64], block_users: usize, numer: &mut [f64], denom: &mut [f64]
    )
}

/// The item pass over one chunk of items. Each item's raters are summed in ascending order;
/// where `block_users` is below the number of users, the users are walked block by block
/// (every item's raters within the block, then the next block), so the posterior rows
/// gathered stay in cache. The same order of additions, so the same bits, either way.
#[inline(always)]
fn item_chunk_generic(
    by_item: &Ratings,
    items: Range<usize>,
    posts: &[f64],
    block_users: usize,
    numer: &mut [f64],
    denom: &mut [f64],
) {
    let stride = numer.len() / items.len().max(1);
    numer.fill(0.0);
    denom.fill(0.0);
    let n_users = posts.len() / stride.max(1);
    let gather = Gather::of(posts.len());
    if n_users <= block_users {
        let rows = numer
            .chunks_exact_mut(stride)
            .zip(denom.chunks_exact_mut(stride));
        for (l, (num, den)) in items.zip(rows) {
            let (users, values) = by_item.row(l);
            column_sums(users, values, posts, gather, num, den);
        }
        return;
    }
    // Where each item's raters are up to: the first in the current block.
    let mut at = vec![0usize; items.len()];
    for end in (block_users..n_users + block_users).step_by(block_users) {
        let rows = numer
            .chunks_exact_mut(stride)
            .zip(denom.chunks_exact_mut(stride));
        for ((l, (num, den)), at) in items.clone().zip(rows).zip(&mut at) {
            let (users, values) = by_item.row(l);
            let (users, values) = (&users[*at..], &values[*at..]);
            let n = users.partition_point(|&u| (u as usize) < end);
            column_sums(&users[..n], &values[..n], posts, gather, num, den);
            *at += n;
        }
    }
}

#[inline(always)]
fn estep_chunk_generic(
    ratings: &Ratings,
    users: Range<usize>,
    sq_norms: &[f64],
    step: Step<'_>,
    posts: &mut [f64],
    mut acc: Option<&mut [f64]>,
) -> UserSums {
    let Step {
        means,
        terms,
        assign,
    } = step;
    let k = terms.log_weight.len();
    let stride = padded(k);
    let mut sums = UserSums::zeros(k);
    let mut sq = vec![0.0; stride];
    let gather = Gather::of(means.len());
    for ((u, row), &xx) in users.zip(posts.chunks_exact_mut(stride)).zip(sq_norms) {
        let (items, values) = ratings.row(u);
        squared_distances(items, values, means, gather, &mut sq);
        settle(&mut sq[..k], items.len(), xx, terms, assign, row, &mut sums);
        if let Some(acc) = acc.as_deref_mut() {
            scatter_sums(items, values, row, acc);
        }
    }
    sums
}

dispatched! {
    /// The E-step of user chunk `c` from its dense tiles ([`Dense`]); otherwise as
    /// [`estep_chunk`] (never scattering).
    fn estep_tiles, estep_tiles_avx2, estep_tiles_avx512 => estep_tiles_generic(
        tiles: &Dense, c: usize, ratings: &Ratings, users: Range<usize>, sq_norms: &[f64], step: Step<'_>, posts: &mut [f64]
    ) -> UserSums
}

#[inline(always)]
fn estep_tiles_generic(
    tiles: &Dense,
    c: usize,
    ratings: &Ratings,
    users: Range<usize>,
    sq_norms: &[f64],
    step: Step<'_>,
    posts: &mut [f64],
) -> UserSums {
    let Step {
        means,
        terms,
        assign,
    } = step;
    let k = terms.log_weight.len();
    let stride = padded(k);
    let mut sums = UserSums::zeros(k);
    let mut sq = vec![0.0; TILE * stride];
    let mut rows = users.zip(posts.chunks_exact_mut(stride)).zip(sq_norms);
    for tile in tiles.user_tiles(c) {
        dense::squares(tile, means, stride, &mut sq);
        for (sq, ((u, row), &xx)) in sq.chunks_exact_mut(stride).zip(rows.by_ref()) {
            let rated = ratings.row(u).0.len();
            settle(&mut sq[..k], rated, xx, terms, assign, row, &mut sums);
        }
    }
    sums
}

/// The rest of one user's E-step once `sq` (its K squared distances) is known: the posterior
/// (or the nearest type) into `row`, and the user's share of the per-type sums.
#[inline(always)]
fn settle(
    sq: &mut [f64],
    rated: usize,
    xx: f64,
    terms: &Terms,
    assign: Assign,
    row: &mut [f64],
    sums: &mut UserSums,
) {
    let k = sq.len();
    let post = &mut row[..k];
    match assign {
        Assign::Soft => {
            terms.log_joint(sq, rated);
            sums.objective += posterior_from_log_joint(sq);
        }
        Assign::Hard => {
            let j = argmin(sq);
            sums.objective += sq[j];
            sq.fill(0.0);
            sq[j] = 1.0;
        }
    }
    // The posterior is stored to its row in the loop that adds it up, read where it was
    // worked out: a copy's stores, read back at once by wider loads, cannot be forwarded and
    // stall the loads until they reach the cache (and a copy of its own is a call to memcpy).
    let n = rated as f64;
    for (j, (&p, to)) in sq.iter().zip(post.iter_mut()).enumerate() {
        *to = p;
        sums.weight[j] += p;
        sums.count[j] += p * n;
        sums.sq_norm[j] += p * xx;
    }
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
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    fn every_dispatch_level_and_user_blocking_compute_the_same_bits() {
        use crate::simd::{Level, detected};
        let rows: Vec<Vec<f64>> = (0..300)
            .map(|u| {
                (0..40)
                    .map(|l| ((u * 31 + l * 17) % 11) as f64 / 2.0)
                    .collect()
            })
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        let by_item = r.transposed();
        // K = 10 and 12 take the register-resident kernels (10 padded to 12), 20 the
        // runtime-width ones.
        for k in [10, 12, 20] {
            let stride = padded(k);
            let m = Mixture {
                means: Array2::from_shape_fn((40, k), |(l, j)| {
                    1.0 + ((l * 7 + j * 3) % 9) as f64 / 2.0
                }),
                variances: ndarray::Array1::from_shape_fn(k, |j| 0.3 + j as f64 / 7.0),
                weights: ndarray::Array1::from_elem(k, 1.0 / k as f64),
            };
            let mut means = vec![0.0; 40 * stride];
            pad_means(&m, &mut means);
            let terms = Terms::new(&m);
            let step = Step {
                means: &means,
                terms: &terms,
                assign: Assign::Soft,
            };
            let norms: Vec<f64> = (0..300).map(|u| sum_of_squares(r.row(u).1)).collect();
            // `block` 0: no item pass; the E-step scatters the item sums instead.
            let run = |level: Level, block: usize| {
                let mut posts = vec![0.0; 300 * stride];
                let mut table = vec![0.0; 40 * 2 * stride];
                let scatter = (block == 0).then_some(&mut table[..]);
                let (mut numer, mut denom) = (vec![0.0; 40 * stride], vec![0.0; 40 * stride]);
                let sums = match level {
                    Level::Portable => {
                        let s = estep_chunk_generic(&r, 0..300, &norms, step, &mut posts, scatter);
                        if block > 0 {
                            item_chunk_generic(
                                &by_item,
                                0..40,
                                &posts,
                                block,
                                &mut numer,
                                &mut denom,
                            );
                        }
                        s
                    }
                    // SAFETY: only levels up to `detected()` run (the filter below).
                    Level::Avx2 => unsafe {
                        let s = estep_chunk_avx2(&r, 0..300, &norms, step, &mut posts, scatter);
                        if block > 0 {
                            item_chunk_avx2(&by_item, 0..40, &posts, block, &mut numer, &mut denom);
                        }
                        s
                    },
                    // SAFETY: as above.
                    Level::Avx512 => unsafe {
                        let s = estep_chunk_avx512(&r, 0..300, &norms, step, &mut posts, scatter);
                        if block > 0 {
                            item_chunk_avx512(
                                &by_item,
                                0..40,
                                &posts,
                                block,
                                &mut numer,
                                &mut denom,
                            );
                        }
                        s
                    },
                };
                if block == 0 {
                    // One slot: each item's sums over its users in ascending order, as the
                    // item pass adds them.
                    for (l, pair) in table.chunks_exact(2 * stride).enumerate() {
                        numer[l * stride..][..stride].copy_from_slice(&pair[..stride]);
                        denom[l * stride..][..stride].copy_from_slice(&pair[stride..]);
                    }
                }
                (sums, posts, numer, denom)
            };
            // All 300 users in one block, then blocks of 7 users (the last one short), then
            // scattered.
            let portable = run(Level::Portable, usize::MAX);
            assert!(portable.0.objective.is_finite() && portable.2.iter().any(|&x| x != 0.0));
            for level in Level::ALL.into_iter().filter(|&l| l <= detected()) {
                for block in [usize::MAX, 7, 0] {
                    assert_eq!(run(level, block), portable, "k = {k}, {level:?}, {block}");
                }
            }
        }
    }

    #[test]
    fn scattered_item_sums_match_the_walked_ones_on_any_thread_count() {
        // 600 users × 300 items, 0–300 ratings a user: several chunks, so several slots.
        let rows: Vec<Vec<f64>> = (0..600)
            .map(|u| {
                (0..300)
                    .map(|l| {
                        let rated = (u * 7 + l * 13) % 600 < u;
                        if rated { (1 + (u + l) % 5) as f64 } else { 0.0 }
                    })
                    .collect()
            })
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        let k = 12;
        let m = Mixture {
            means: Array2::from_shape_fn((300, k), |(l, j)| {
                1.0 + ((l * 7 + j * 3) % 9) as f64 / 2.0
            }),
            variances: ndarray::Array1::from_shape_fn(k, |j| 0.5 + j as f64 / 7.0),
            weights: ndarray::Array1::from_elem(k, 1.0 / k as f64),
        };
        let run = |threads: usize, by_item: Option<Cow<'_, Ratings>>, assign: Assign| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let side = by_item.map_or(ItemSide::Scattered, ItemSide::Rows);
                let mut pass = Pass::build(&r, side, k);
                (pass.run(&m, assign).clone(), pass.slots.len())
            })
        };
        for assign in [Assign::Soft, Assign::Hard] {
            let (walked, no_slots) = run(2, Some(Cow::Owned(r.transposed())), assign);
            let (scattered, slots) = run(2, None, assign);
            assert_eq!((no_slots, slots), (0, SLOTS.min(chunks(&r).len())));
            assert!(slots > 1, "{slots} slots");
            // The E-step is the same; the item sums add the same terms in another order.
            assert_eq!(scattered.users, walked.users);
            for (a, b) in [
                (&scattered.numer, &walked.numer),
                (&scattered.denom, &walked.denom),
            ] {
                assert!(b.iter().any(|&x| x != 0.0));
                for (x, y) in a.iter().zip(b.iter()) {
                    assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{x} against {y}");
                }
            }
            // The slots are fixed by the data: one thread or two, the same bits.
            let (one_thread, _) = run(1, None, assign);
            assert_eq!(
                (&one_thread.numer, &one_thread.denom),
                (&scattered.numer, &scattered.denom)
            );
        }
    }

    #[test]
    fn a_tiled_pass_gives_the_bits_of_a_walked_one() {
        // 3,000 users × 90 items, three in four rated: four user chunks, cut where the
        // ratings balance, not on tiles of eight.
        let rows: Vec<Vec<f64>> = (0..3000)
            .map(|u| {
                (0..90)
                    .map(|l| {
                        let rated = (u * 7 + l * 13 + u / 9) % 4 != 0 && u % 101 != 7;
                        if rated {
                            (1 + (u * 3 + l) % 5) as f64
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        for k in [3, 12, 14] {
            let m = Mixture {
                means: Array2::from_shape_fn((90, k), |(l, j)| {
                    1.0 + ((l * 7 + j * 3) % 9) as f64 / 2.0
                }),
                variances: ndarray::Array1::from_shape_fn(k, |j| 0.5 + j as f64 / 7.0),
                weights: ndarray::Array1::from_elem(k, 1.0 / k as f64),
            };
            for assign in [Assign::Soft, Assign::Hard] {
                let mut tiled = Pass::build(&r, ItemSide::Tiles, k);
                let mut walked = Pass::build(&r, ItemSide::Rows(Cow::Owned(r.transposed())), k);
                assert!(tiled.user_chunks.len() > 2);
                assert!(tiled.user_chunks.iter().any(|c| c.start % TILE != 0));
                assert!(tiled.item_chunks.len() > 1);
                let (a, b) = (
                    tiled.run(&m, assign).clone(),
                    walked.run(&m, assign).clone(),
                );
                let what = format!("K = {k}, {assign:?}");
                assert_eq!(a.users, b.users, "{what}");
                assert_eq!((&a.numer, &a.denom), (&b.numer, &b.denom), "{what}");
                assert!(a.numer.iter().any(|&x| x != 0.0), "{what}");
                assert_eq!(tiled.posts, walked.posts, "{what}");
                // Ratings 1–5: tiles of bytes.
                assert_eq!(tiled.times().tile_bytes, Some(1));
                assert!(!tiled.times().scattered);
                assert_eq!(walked.times().tile_bytes, None);
            }
        }
    }

    #[test]
    fn a_pass_scatters_where_the_posterior_table_is_past_the_cache_and_the_catalogue_small() {
        // `per_user` ratings a user, spread over the catalogue: `scatters` reads the shape.
        let shape = |users: usize, items: usize, per_user: usize| {
            let step = items / per_user;
            let mut b = crate::data::RatingsBuilder::with_capacity(items, users, users * per_user);
            for u in 0..users {
                (0..per_user).for_each(|i| b.push((i * step + u % step) as u32, 1.0));
                b.end_row();
            }
            b.finish()
        };
        // 200,000 users at K = 12: a 19 MB table; 17,770 items, 50 ratings a user.
        assert!(scatters(&shape(200_000, 17_770, 50), 12));
        // The same at K = 4 (6.4 MB): the table is in cache.
        assert!(!scatters(&shape(200_000, 17_770, 50), 4));
        // A catalogue of 400,000 items at 2 ratings a user: the slots' tables would outweigh
        // the transpose.
        assert!(!scatters(&shape(200_000, 400_000, 2), 12));
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
    fn exp_or_zero_is_exp() {
        for x in [
            -1e308, -800.0, -746.0, -745.2, -745.0, -744.5, -700.0, -1.0, 0.0, 3.0,
        ] {
            assert_eq!(exp_or_zero(x).to_bits(), x.exp().to_bits(), "{x}");
        }
        assert_eq!(exp_or_zero(f64::NEG_INFINITY), 0.0);
        assert!(exp_or_zero(f64::NAN).is_nan());
    }

    #[test]
    fn the_posterior_normalises_one_exponential_a_type_and_flushes_subnormal_terms() {
        // a − max = (0, −1, −720, −2000): e^−720 is below e^−708, so 0, not a subnormal.
        let mut post = [-5.0, -6.0, -725.0, -2005.0];
        let ll = posterior_from_log_joint(&mut post);
        let z = 1.0 + (-1.0f64).exp();
        assert!((ll - (-5.0 + z.ln())).abs() < 1e-14);
        assert!((post[0] - 1.0 / z).abs() < 1e-15 && (post[1] - (-1.0f64).exp() / z).abs() < 1e-15);
        assert_eq!((post[2], post[3]), (0.0, 0.0));
        assert!((log_sum_exp(&[-5.0, -6.0, -725.0, -2005.0]) - ll).abs() < 1e-14);
        let mut none = [f64::NEG_INFINITY; 2];
        assert_eq!(posterior_from_log_joint(&mut none), f64::NEG_INFINITY);
        assert!(none.iter().all(|p| p.is_nan()));
    }

    #[test]
    fn log_sum_exp_survives_huge_magnitudes() {
        assert!((log_sum_exp(&[-1000.0, -1000.0]) - (-1000.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(log_sum_exp(&[f64::NEG_INFINITY, 0.0]), 0.0);
    }
}
