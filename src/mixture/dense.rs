//! A pass over a nearly full rating matrix as dense tiles of eight users or eight items, so
//! one row of means (E-step) or of posteriors (item pass) gathered serves eight ratings.
//!
//! The sparse kernels ([`super::kernels`]) gather a whole row of K means for every rating;
//! on the Netflix subset (77 % filled, K = 12) those rows come from L2 and the loads, not the
//! arithmetic, set the pace. Here the ratings of eight users sit side by side for every item
//! (`NaN` where one did not rate it), so the E-step reads each item's means once for eight
//! users, with the users in the lanes of one 512-bit vector; the item pass has eight items
//! side by side for every user and reads each posterior row once for eight items. Lanes
//! whose rating is missing are left out by a masked add: nothing is added to them, not even
//! a zero. Every user's (item's) sum is therefore the sparse kernel's sum, term by term in the
//! same order, so the same bits (unit tests compare them at every level).
//!
//! A tile costs a slot for every (user, item) pair, rated or not, so tiles pay only where
//! most pairs are rated: [`worth`] asks for half. A scratch comparison on one core of a 2-core
//! Zen 5 (the Netflix subset, K = 12, 50 passes each): the E-step 0.63–0.65 ms in tiles
//! against 0.94–1.04 ms walking rows, the item pass 0.59–0.63 against 0.93–1.02 (minima; the
//! medians 0.64–0.67 against 1.11–1.52). Only the AVX-512 build has the masked adds, so only
//! it takes tiles; the other levels walk rows (`tiles_match_rows_at_every_level` checks the
//! plain build of the tile kernels against the rows all the same).
//!
//! No web or async types here.

use std::ops::Range;

use rayon::prelude::*;

use crate::data::Ratings;
use crate::simd::{self, Level};

/// Users (E-step) or items (item pass) side by side in a tile: one 512-bit vector of `f64`.
pub(crate) const TILE: usize = 8;

/// A tile's row: one rating of each of its users or items, `NaN` where there is none.
pub(crate) type Row = [f32; TILE];

/// Types a kernel keeps in registers at once: 12 sums of eight lanes for the E-step, 24 for
/// the item pass (numerators and denominators), within AVX-512's 32 registers. Wider
/// mixtures walk a tile once a group of types.
const GROUP: usize = 12;

/// Whether passes over `ratings` with `k` types should walk tiles: at least half of all
/// (user, item) pairs rated, and the kernels built for AVX-512 (the level that has masked
/// adds). `scatters` is never true at such a density, but the caller checks it first.
pub(crate) fn worth(ratings: &Ratings) -> bool {
    let slots = (ratings.n_users() as u128) * (ratings.n_items() as u128);
    simd::level() == Level::Avx512 && slots > 0 && 2 * (ratings.nnz() as u128) >= slots
}

/// The ratings as tiles, both ways.
pub(crate) struct Dense {
    n_items: usize,
    /// For each user chunk of the pass in turn, its users eight at a time from the chunk's
    /// first (the last tile of a chunk padded with `NaN` lanes): `n_items` rows a tile, row
    /// l holding the tile's ratings of item l.
    users: Vec<Row>,
    /// Where each user chunk's tiles start in `users`, in rows. (chunks + 1)
    user_starts: Vec<usize>,
    /// The items eight at a time from the first (the last tile padded): `n_users` rows a
    /// tile, row u holding user u's ratings of the tile's items.
    items: Vec<Row>,
    n_users: usize,
}

impl Dense {
    /// The tiles of `ratings`, the users' cut at the pass's `user_chunks` (contiguous, in
    /// order, covering every user), so each chunk's E-step reads tiles of its own users only.
    pub(crate) fn new(ratings: &Ratings, user_chunks: &[Range<usize>]) -> Self {
        let (n, d) = (ratings.n_users(), ratings.n_items());
        let mut user_starts = Vec::with_capacity(user_chunks.len() + 1);
        user_starts.push(0);
        for c in user_chunks {
            let last = *user_starts.last().expect("non-empty");
            user_starts.push(last + c.len().div_ceil(TILE) * d);
        }
        // Zeroed (untouched pages from the allocator); each task marks its own share missing
        // before filling it, so the pages are first touched on every core, not all on this one
        // (filled with `NaN` here, the tiles took 11–23 ms of the seed's set-up).
        let mut users = vec![[0.0; TILE]; *user_starts.last().expect("non-empty")];
        let mut items = vec![[0.0; TILE]; d.div_ceil(TILE) * n];
        rayon::join(
            || {
                let mut rest = users.as_mut_slice();
                let mut parts = Vec::with_capacity(user_chunks.len());
                for (c, w) in user_chunks.iter().zip(user_starts.windows(2)) {
                    let (head, tail) = rest.split_at_mut(w[1] - w[0]);
                    parts.push((c.clone(), head));
                    rest = tail;
                }
                parts.into_par_iter().for_each(|(chunk, tiles)| {
                    tiles.fill([f32::NAN; TILE]);
                    for u in chunk.clone() {
                        let (at, lane) = ((u - chunk.start) / TILE * d, (u - chunk.start) % TILE);
                        let (columns, values) = ratings.row(u);
                        for (&l, &x) in columns.iter().zip(values) {
                            tiles[at + l as usize][lane] = x;
                        }
                    }
                });
            },
            || {
                // Runs of whole tiles, each filled from every user's row by one task.
                let per_task = d.div_ceil(TILE).div_ceil(2 * rayon::current_num_threads());
                if n == 0 || per_task == 0 {
                    return;
                }
                items
                    .par_chunks_mut(per_task * n)
                    .enumerate()
                    .for_each(|(t, tiles)| {
                        tiles.fill([f32::NAN; TILE]);
                        let first = t * per_task * TILE;
                        let end = first + tiles.len() / n * TILE;
                        for u in 0..n {
                            let (columns, values) = ratings.row(u);
                            let from = columns.partition_point(|&l| (l as usize) < first);
                            let to = columns.partition_point(|&l| (l as usize) < end);
                            for (&l, &x) in columns[from..to].iter().zip(&values[from..to]) {
                                let l = l as usize - first;
                                tiles[l / TILE * n + u][l % TILE] = x;
                            }
                        }
                    });
            },
        );
        Self {
            n_items: d,
            users,
            user_starts,
            items,
            n_users: n,
        }
    }

    /// The tiles of user chunk `c`, one after another, `n_items` rows each.
    pub(crate) fn user_tiles(&self, c: usize) -> impl Iterator<Item = &[Row]> {
        self.users[self.user_starts[c]..self.user_starts[c + 1]].chunks_exact(self.n_items)
    }

    /// Item tile `s` (items `8s..8s + 8`): `n_users` rows.
    pub(crate) fn item_tile(&self, s: usize) -> &[Row] {
        &self.items[s * self.n_users..(s + 1) * self.n_users]
    }
}

/// `sq[b][j] = Σ_l (x_bl − mu_lj)²` over the items l that the tile's user b rated, in item
/// order, for every type j < `stride`; `means` is item-major with rows of `stride` (a multiple
/// of 4) and `tile` has a row an item. `sq` is user-major, rows of `stride`.
pub(crate) fn squares(tile: &[Row], means: &[f64], stride: usize, sq: &mut [f64]) {
    debug_assert_eq!(sq.len(), TILE * stride);
    #[cfg(target_arch = "x86_64")]
    if simd::level() == Level::Avx512 {
        #[allow(unsafe_code)]
        // SAFETY: `level` is at most `detected`, which checked the CPU has AVX-512 F and VL,
        // AVX2 and FMA: all that `avx512::squares` requires.
        return unsafe { avx512::squares(tile, means, stride, sq) };
    }
    squares_plain(tile, means, stride, sq);
}

/// `num[b][j] = Σ_u p_uj x_ub`, `den[b][j] = Σ_u p_uj` over the users u that rated the tile's
/// item b, in user order; `posts` is user-major with rows of `stride` and `tile` has a row a
/// user. `num` and `den` are item-major, rows of `stride`.
pub(crate) fn sums(tile: &[Row], posts: &[f64], stride: usize, num: &mut [f64], den: &mut [f64]) {
    debug_assert_eq!((num.len(), den.len()), (TILE * stride, TILE * stride));
    #[cfg(target_arch = "x86_64")]
    if simd::level() == Level::Avx512 {
        #[allow(unsafe_code)]
        // SAFETY: as in `squares`.
        return unsafe { avx512::sums(tile, posts, stride, num, den) };
    }
    sums_plain(tile, posts, stride, num, den);
}

/// [`squares`] a lane at a time: the same operations in the same order, for the other levels
/// and the tests.
fn squares_plain(tile: &[Row], means: &[f64], stride: usize, sq: &mut [f64]) {
    sq.fill(0.0);
    for (xs, mu) in tile.iter().zip(means.chunks_exact(stride)) {
        for (&x, acc) in xs.iter().zip(sq.chunks_exact_mut(stride)) {
            if x.is_nan() {
                continue;
            }
            let x = f64::from(x);
            for (s, &m) in acc.iter_mut().zip(mu) {
                let diff = x - m;
                *s += diff * diff;
            }
        }
    }
}

/// [`sums`] a lane at a time (as [`squares_plain`]).
fn sums_plain(tile: &[Row], posts: &[f64], stride: usize, num: &mut [f64], den: &mut [f64]) {
    num.fill(0.0);
    den.fill(0.0);
    for (xs, p) in tile.iter().zip(posts.chunks_exact(stride)) {
        let rows = num
            .chunks_exact_mut(stride)
            .zip(den.chunks_exact_mut(stride));
        for (&x, (num, den)) in xs.iter().zip(rows) {
            if x.is_nan() {
                continue;
            }
            let x = f64::from(x);
            for j in 0..stride {
                num[j] += p[j] * x;
                den[j] += p[j];
            }
        }
    }
}

/// The AVX-512 kernels: a tile's eight lanes in one vector, a masked add a type and row.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{GROUP, Row, TILE};

    /// A tile row's ratings as eight `f64` lanes, and which lanes hold one (not `NaN`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn lanes(xs: &Row) -> (__m512d, __mmask8) {
        let x = _mm256_setr_ps(xs[0], xs[1], xs[2], xs[3], xs[4], xs[5], xs[6], xs[7]);
        (_mm512_cvtps_pd(x), _mm256_cmp_ps_mask::<_CMP_ORD_Q>(x, x))
    }

    /// The eight lanes of `v` as an array (once a tile and type: no hot path).
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn spill(v: __m512d) -> [f64; TILE] {
        let (l, h) = (
            half(_mm512_castpd512_pd256(v)),
            half(_mm512_extractf64x4_pd::<1>(v)),
        );
        [l[0], l[1], l[2], l[3], h[0], h[1], h[2], h[3]]
    }

    /// The four lanes of `h`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn half(h: __m256d) -> [f64; 4] {
        let (a, b) = (_mm256_castpd256_pd128(h), _mm256_extractf128_pd::<1>(h));
        [
            _mm_cvtsd_f64(a),
            _mm_cvtsd_f64(_mm_unpackhi_pd(a, a)),
            _mm_cvtsd_f64(b),
            _mm_cvtsd_f64(_mm_unpackhi_pd(b, b)),
        ]
    }

    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) fn squares(tile: &[Row], means: &[f64], stride: usize, sq: &mut [f64]) {
        let mut g = 0;
        while g < stride {
            match stride - g {
                4 => squares_group::<4>(tile, means, stride, g, sq),
                8 => squares_group::<8>(tile, means, stride, g, sq),
                _ => squares_group::<GROUP>(tile, means, stride, g, sq),
            }
            g += GROUP;
        }
    }

    /// Types `g..g + G` of [`squares`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn squares_group<const G: usize>(
        tile: &[Row],
        means: &[f64],
        stride: usize,
        g: usize,
        sq: &mut [f64],
    ) {
        let mut acc = [_mm512_setzero_pd(); G];
        for (xs, mu) in tile.iter().zip(means.chunks_exact(stride)) {
            let mu: &[f64; G] = mu[g..g + G].try_into().expect("a group of G");
            let (x, rated) = lanes(xs);
            for j in 0..G {
                let diff = _mm512_sub_pd(x, _mm512_set1_pd(mu[j]));
                acc[j] = _mm512_mask_add_pd(acc[j], rated, acc[j], _mm512_mul_pd(diff, diff));
            }
        }
        for (j, a) in acc.into_iter().enumerate() {
            for (b, v) in spill(a).into_iter().enumerate() {
                sq[b * stride + g + j] = v;
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) fn sums(
        tile: &[Row],
        posts: &[f64],
        stride: usize,
        num: &mut [f64],
        den: &mut [f64],
    ) {
        let mut g = 0;
        while g < stride {
            match stride - g {
                4 => sums_group::<4>(tile, posts, stride, g, num, den),
                8 => sums_group::<8>(tile, posts, stride, g, num, den),
                _ => sums_group::<GROUP>(tile, posts, stride, g, num, den),
            }
            g += GROUP;
        }
    }

    /// Types `g..g + G` of [`sums`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn sums_group<const G: usize>(
        tile: &[Row],
        posts: &[f64],
        stride: usize,
        g: usize,
        num: &mut [f64],
        den: &mut [f64],
    ) {
        let (mut n, mut d) = ([_mm512_setzero_pd(); G], [_mm512_setzero_pd(); G]);
        for (xs, p) in tile.iter().zip(posts.chunks_exact(stride)) {
            let p: &[f64; G] = p[g..g + G].try_into().expect("a group of G");
            let (x, rated) = lanes(xs);
            for j in 0..G {
                let pj = _mm512_set1_pd(p[j]);
                n[j] = _mm512_mask_add_pd(n[j], rated, n[j], _mm512_mul_pd(pj, x));
                d[j] = _mm512_mask_add_pd(d[j], rated, d[j], pj);
            }
        }
        for j in 0..G {
            let (nj, dj) = (spill(n[j]), spill(d[j]));
            for b in 0..TILE {
                num[b * stride + g + j] = nj[b];
                den[b * stride + g + j] = dj[b];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::RatingsBuilder;
    use crate::mixture::kernels::{Gather, column_sums, squared_distances};

    /// `n` users × `d` items, about three in four rated, some users and items with none;
    /// ratings include 0 and negative values (a baseline's residuals), which a tile must
    /// tell from a missing one.
    fn mostly_full(n: usize, d: usize) -> Ratings {
        let mut b = RatingsBuilder::with_capacity(d, n, n * d);
        for u in 0..n {
            for l in 0..d {
                let rated = (u * 7 + l * 13) % 4 != 0 && u % 17 != 5 && l % 19 != 3;
                if rated {
                    b.push(l as u32, ((u * 5 + l * 3) % 11) as f32 / 2.0 - 2.0);
                }
            }
            b.end_row();
        }
        b.finish()
    }

    /// The kernels each level may run: the plain build always, AVX-512 where the CPU has it.
    #[allow(clippy::type_complexity)]
    fn kernels() -> Vec<(
        &'static str,
        fn(&[Row], &[f64], usize, &mut [f64]),
        fn(&[Row], &[f64], usize, &mut [f64], &mut [f64]),
    )> {
        let mut k: Vec<(&str, fn(&[Row], &[f64], usize, &mut [f64]), _)> = vec![(
            "plain",
            squares_plain,
            sums_plain as fn(&_, &_, _, &mut _, &mut _),
        )];
        #[cfg(target_arch = "x86_64")]
        if simd::detected() == Level::Avx512 {
            #[allow(unsafe_code)]
            fn sq(t: &[Row], m: &[f64], s: usize, out: &mut [f64]) {
                // SAFETY: only pushed where the CPU has AVX-512 F and VL (checked above).
                unsafe { avx512::squares(t, m, s, out) }
            }
            #[allow(unsafe_code)]
            fn su(t: &[Row], p: &[f64], s: usize, num: &mut [f64], den: &mut [f64]) {
                // SAFETY: as above.
                unsafe { avx512::sums(t, p, s, num, den) }
            }
            k.push(("avx512", sq, su));
        }
        k
    }

    #[test]
    fn tiles_match_rows_at_every_level() {
        // 61 users in chunks that do not start on a multiple of eight, 45 items (a last tile
        // of five), strides of one to three groups of types and every remainder.
        let (n, d) = (61, 45);
        let r = mostly_full(n, d);
        let chunks = [0..13, 13..14, 14..40, 40..61];
        let dense = Dense::new(&r, &chunks);
        let by_item = r.transposed();
        for stride in [4, 8, 12, 16, 20, 28] {
            let table = |rows: usize| -> Vec<f64> {
                (0..rows * stride)
                    .map(|i| ((i * 37) % 23) as f64 / 5.0 - 1.0)
                    .collect()
            };
            let (means, posts) = (table(d), table(n));
            // What the rows give, user by user and item by item.
            let mut want_sq = vec![vec![0.0; stride]; n];
            for (u, sq) in want_sq.iter_mut().enumerate() {
                let (items, values) = r.row(u);
                squared_distances(items, values, &means, Gather::Near, sq);
            }
            let (mut want_num, mut want_den) =
                (vec![vec![0.0; stride]; d], vec![vec![0.0; stride]; d]);
            for l in 0..d {
                let (users, values) = by_item.row(l);
                column_sums(
                    users,
                    values,
                    &posts,
                    Gather::Near,
                    &mut want_num[l],
                    &mut want_den[l],
                );
            }
            assert!(want_sq.iter().flatten().any(|&s| s > 0.0));
            for (name, sq_kernel, sums_kernel) in kernels() {
                let what = format!("{name}, stride {stride}");
                let mut sq = vec![f64::NAN; TILE * stride];
                for (c, users) in chunks.iter().enumerate() {
                    let mut tiles = 0;
                    for (t, tile) in dense.user_tiles(c).enumerate() {
                        sq_kernel(tile, &means, stride, &mut sq);
                        for (b, got) in sq.chunks_exact(stride).enumerate() {
                            let u = users.start + t * TILE + b;
                            if u < users.end {
                                assert_eq!(bits(got), bits(&want_sq[u]), "{what}, user {u}");
                            }
                        }
                        tiles += 1;
                    }
                    assert_eq!(tiles, users.len().div_ceil(TILE), "{what}");
                }
                let (mut num, mut den) =
                    (vec![f64::NAN; TILE * stride], vec![f64::NAN; TILE * stride]);
                for s in 0..d.div_ceil(TILE) {
                    sums_kernel(dense.item_tile(s), &posts, stride, &mut num, &mut den);
                    for b in 0..TILE.min(d - s * TILE) {
                        let (l, row) = (s * TILE + b, b * stride..(b + 1) * stride);
                        assert_eq!(
                            bits(&num[row.clone()]),
                            bits(&want_num[l]),
                            "{what}, item {l}"
                        );
                        assert_eq!(bits(&den[row]), bits(&want_den[l]), "{what}, item {l}");
                    }
                }
            }
        }
    }

    fn bits(a: &[f64]) -> Vec<u64> {
        a.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn tiles_are_worth_it_where_half_the_pairs_are_rated() {
        let full = mostly_full(40, 30);
        assert!(2 * full.nnz() >= 40 * 30);
        assert_eq!(worth(&full), simd::level() == Level::Avx512);
        // One rating a user: far too sparse.
        let mut b = RatingsBuilder::new(30);
        for u in 0..40 {
            b.push((u % 30) as u32, 1.0);
            b.end_row();
        }
        assert!(!worth(&b.finish()));
        assert!(!worth(&RatingsBuilder::new(30).finish()));
    }
}
