//! A pass over a nearly full rating matrix as dense tiles of eight users or eight items, so
//! one row of means (E-step) or of posteriors (item pass) gathered serves eight ratings.
//!
//! The sparse kernels ([`super::kernels`]) gather a whole row of K means for every rating;
//! on the Netflix subset (77 % filled, K = 12) those rows come from L2 and the loads, not the
//! arithmetic, set the pace. Here the ratings of eight users sit side by side for every item
//! (marked where one did not rate it), so the E-step reads each item's means once for eight
//! users, with the users in the lanes of one 512-bit vector; the item pass has eight items
//! side by side for every user and reads each posterior row once for eight items. Lanes
//! whose rating is missing are left out by a masked add: nothing is added to them, not even
//! a zero. Every user's (item's) sum is therefore the sparse kernel's sum, term by term in the
//! same order, so the same bits (unit tests compare them at every level).
//!
//! Whole ratings from 0 to 127 (stars, scores out of ten or a hundred: the seed's 1–5) are kept
//! as a byte a pair, the rating with its top bit set, 0 where unrated; any others as `f32`,
//! `NaN` where unrated. Bytes take a quarter of the memory, so a quarter of the fresh pages a
//! fit faults in to build them (the Netflix subset's two layouts: 2.9 MB against 11.5 MB as
//! `f32`).
//!
//! A tile costs a slot for every (user, item) pair, rated or not, so tiles pay only where
//! most pairs are rated: [`worth`] asks for half. A scratch comparison on one core of a 2-core
//! Zen 5 (the Netflix subset, K = 12, 50 passes each): the E-step 0.63–0.65 ms in tiles
//! against 0.94–1.04 ms walking rows, the item pass 0.59–0.63 against 0.93–1.01 (minima; the
//! medians 0.64–0.67 against 1.11–1.55). Only the AVX-512 build has the masked adds, so only
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

/// Types a kernel keeps in registers at once: 12 sums of eight lanes for the E-step, 24 for
/// the item pass (numerators and denominators), within AVX-512's 32 registers. Wider
/// mixtures walk a tile once a group of types.
const GROUP: usize = 12;

/// How a tile stores one rating or its absence.
pub(crate) trait Cell: Copy + Send + Sync + 'static {
    /// Where a pair is unrated.
    const MISSING: Self;
    /// The cell whose bytes are all zero: what memory from the allocator's zeroed pages holds.
    const ZERO: Self;
    /// Whether [`Cell::ZERO`] reads as unrated, so zeroed memory needs no marking.
    const ZEROED_IS_MISSING: bool;
    /// The stored form of a rating.
    fn encode(x: f32) -> Self;
    /// A row's ratings, `NaN` where unrated (compiled into each kernel, at its level).
    fn decode(row: &[Self; TILE]) -> [f32; TILE];
    /// A row of bytes as one little-endian word, which the AVX-512 kernels widen as
    /// integers; `None` for other cells.
    fn word(row: &[Self; TILE]) -> Option<u64>;
}

/// Ratings as they are.
impl Cell for f32 {
    const MISSING: Self = f32::NAN;
    const ZERO: Self = 0.0;
    const ZEROED_IS_MISSING: bool = false;
    fn encode(x: f32) -> Self {
        x
    }
    #[inline(always)]
    fn decode(row: &[Self; TILE]) -> [f32; TILE] {
        *row
    }
    #[inline(always)]
    fn word(_: &[Self; TILE]) -> Option<u64> {
        None
    }
}

/// Whole ratings 0–127 (see [`bytes_hold`]) with the top bit set, 0 where unrated. (The top
/// bit, not the rating plus one: tested as a sign, LLVM keeps the AVX-512 kernels' masked adds;
/// a test against zero it turned into an add and a blend, a third slower.)
impl Cell for u8 {
    const MISSING: Self = 0;
    const ZERO: Self = 0;
    const ZEROED_IS_MISSING: bool = true;
    fn encode(x: f32) -> Self {
        x as u8 | 0x80
    }
    #[inline(always)]
    fn decode(row: &[Self; TILE]) -> [f32; TILE] {
        row.map(|c| {
            if c == Self::MISSING {
                f32::NAN
            } else {
                f32::from(c & 0x7f)
            }
        })
    }
    #[inline(always)]
    fn word(row: &[Self; TILE]) -> Option<u64> {
        Some(u64::from_le_bytes(*row))
    }
}

/// Whether every rating is a whole number from 0 to 127, so a byte holds it beside a flag.
fn bytes_hold(values: &[f32]) -> bool {
    // Blocks checked whole (no early exit inside a block, so the check runs in vectors), in
    // parallel: a first version stopping at the first other rating took 1.1–2.2 ms of the
    // seed's set-up.
    values.par_chunks(1 << 14).all(|block| {
        block.iter().fold(true, |all, &x| {
            all & ((0.0..128.0).contains(&x) && f32::from(x as u8) == x)
        })
    })
}

/// Whether passes over `ratings` should walk tiles: at least half of all (user, item) pairs
/// rated, and the kernels built for AVX-512 (the level that has masked adds). The caller asks
/// `scatters` first: where the posterior table is past the cache a pass scatters, dense or
/// not (tiles against scattering on such a matrix were not measured).
pub(crate) fn worth(ratings: &Ratings) -> bool {
    let slots = (ratings.n_users() as u128) * (ratings.n_items() as u128);
    simd::level() == Level::Avx512 && slots > 0 && 2 * (ratings.nnz() as u128) >= slots
}

/// The ratings as tiles, both ways, as bytes where they hold them.
pub(crate) enum Dense {
    /// Whole ratings 0–127.
    Bytes(Tiles<u8>),
    /// Any others.
    Floats(Tiles<f32>),
}

/// One tile's rows, in either form.
#[derive(Clone, Copy)]
pub(crate) enum Tile<'a> {
    /// See [`Dense::Bytes`].
    Bytes(&'a [[u8; TILE]]),
    /// See [`Dense::Floats`].
    Floats(&'a [[f32; TILE]]),
}

impl Dense {
    /// The tiles of `ratings`, the users' cut at the pass's `user_chunks` (contiguous, in
    /// order, covering every user), so each chunk's E-step reads tiles of its own users only.
    pub(crate) fn new(ratings: &Ratings, user_chunks: &[Range<usize>]) -> Self {
        if bytes_hold(ratings.parts().2) {
            Dense::Bytes(Tiles::new(ratings, user_chunks))
        } else {
            Dense::Floats(Tiles::new(ratings, user_chunks))
        }
    }

    /// The tiles of user chunk `c`, one after another, `n_items` rows each.
    pub(crate) fn user_tiles(&self, c: usize) -> Box<dyn Iterator<Item = Tile<'_>> + '_> {
        match self {
            Dense::Bytes(t) => Box::new(t.user_tiles(c).map(Tile::Bytes)),
            Dense::Floats(t) => Box::new(t.user_tiles(c).map(Tile::Floats)),
        }
    }

    /// The bytes a cell takes: 1 for whole ratings 0–127, 4 for others.
    pub(crate) fn cell_bytes(&self) -> usize {
        match self {
            Dense::Bytes(_) => size_of::<u8>(),
            Dense::Floats(_) => size_of::<f32>(),
        }
    }

    /// Item tile `s` (items `8s..8s + 8`): `n_users` rows.
    pub(crate) fn item_tile(&self, s: usize) -> Tile<'_> {
        match self {
            Dense::Bytes(t) => Tile::Bytes(t.item_tile(s)),
            Dense::Floats(t) => Tile::Floats(t.item_tile(s)),
        }
    }
}

/// The ratings as tiles of one [`Cell`] form.
pub(crate) struct Tiles<C> {
    n_items: usize,
    /// For each user chunk of the pass in turn, its users eight at a time from the chunk's
    /// first (the last tile of a chunk padded with missing lanes): `n_items` rows a tile, row
    /// l holding the tile's ratings of item l.
    users: Vec<[C; TILE]>,
    /// Where each user chunk's tiles start in `users`, in rows. (chunks + 1)
    user_starts: Vec<usize>,
    /// The items eight at a time from the first (the last tile padded): `n_users` rows a
    /// tile, row u holding user u's ratings of the tile's items.
    items: Vec<[C; TILE]>,
    n_users: usize,
}

impl<C: Cell> Tiles<C> {
    fn new(ratings: &Ratings, user_chunks: &[Range<usize>]) -> Self {
        let (n, d) = (ratings.n_users(), ratings.n_items());
        let mut user_starts = Vec::with_capacity(user_chunks.len() + 1);
        user_starts.push(0);
        for c in user_chunks {
            let last = *user_starts.last().expect("non-empty");
            user_starts.push(last + c.len().div_ceil(TILE) * d);
        }
        // Allocated zeroed (pages the allocator has not touched): bytes read as unrated as
        // they are; for floats each task marks its own share missing before filling it. Either
        // way the pages are first touched on every core, not all on this one.
        let mut users = zeroed(*user_starts.last().expect("non-empty"));
        let mut items = zeroed(d.div_ceil(TILE) * n);
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
                    if !C::ZEROED_IS_MISSING {
                        tiles.fill([C::MISSING; TILE]);
                    }
                    for u in chunk.clone() {
                        let (at, lane) = ((u - chunk.start) / TILE * d, (u - chunk.start) % TILE);
                        let (columns, values) = ratings.row(u);
                        for (&l, &x) in columns.iter().zip(values) {
                            tiles[at + l as usize][lane] = C::encode(x);
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
                        if !C::ZEROED_IS_MISSING {
                            tiles.fill([C::MISSING; TILE]);
                        }
                        let first = t * per_task * TILE;
                        let end = first + tiles.len() / n * TILE;
                        for u in 0..n {
                            let (columns, values) = ratings.row(u);
                            let from = columns.partition_point(|&l| (l as usize) < first);
                            let to = columns.partition_point(|&l| (l as usize) < end);
                            for (&l, &x) in columns[from..to].iter().zip(&values[from..to]) {
                                let l = l as usize - first;
                                tiles[l / TILE * n + u][l % TILE] = C::encode(x);
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

    fn user_tiles(&self, c: usize) -> std::slice::ChunksExact<'_, [C; TILE]> {
        self.users[self.user_starts[c]..self.user_starts[c + 1]].chunks_exact(self.n_items)
    }

    fn item_tile(&self, s: usize) -> &[[C; TILE]] {
        &self.items[s * self.n_users..(s + 1) * self.n_users]
    }
}

/// `len` rows of zero bytes, from the allocator's zeroed memory (`vec!` of an all-zero value
/// asks for it).
fn zeroed<C: Cell>(len: usize) -> Vec<[C; TILE]> {
    vec![[C::ZERO; TILE]; len]
}

/// `sq[b][j] = Σ_l (x_bl − mu_lj)²` over the items l that the tile's user b rated, in item
/// order, for every type j < `stride`; `means` is item-major with rows of `stride` (a multiple
/// of 4) and `tile` has a row an item. `sq` is user-major, rows of `stride`.
pub(crate) fn squares(tile: Tile<'_>, means: &[f64], stride: usize, sq: &mut [f64]) {
    match tile {
        Tile::Bytes(t) => squares_of(t, means, stride, sq),
        Tile::Floats(t) => squares_of(t, means, stride, sq),
    }
}

/// `num[b][j] = Σ_u p_uj x_ub`, `den[b][j] = Σ_u p_uj` over the users u that rated the tile's
/// item b, in user order; `posts` is user-major with rows of `stride` and `tile` has a row a
/// user. `num` and `den` are item-major, rows of `stride`.
pub(crate) fn sums(tile: Tile<'_>, posts: &[f64], stride: usize, num: &mut [f64], den: &mut [f64]) {
    match tile {
        Tile::Bytes(t) => sums_of(t, posts, stride, num, den),
        Tile::Floats(t) => sums_of(t, posts, stride, num, den),
    }
}

/// [`squares`] at the widest level the kernels may run at.
fn squares_of<C: Cell>(tile: &[[C; TILE]], means: &[f64], stride: usize, sq: &mut [f64]) {
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

/// [`sums`] at the widest level the kernels may run at.
fn sums_of<C: Cell>(
    tile: &[[C; TILE]],
    posts: &[f64],
    stride: usize,
    num: &mut [f64],
    den: &mut [f64],
) {
    debug_assert_eq!((num.len(), den.len()), (TILE * stride, TILE * stride));
    #[cfg(target_arch = "x86_64")]
    if simd::level() == Level::Avx512 {
        #[allow(unsafe_code)]
        // SAFETY: as in `squares_of`.
        return unsafe { avx512::sums(tile, posts, stride, num, den) };
    }
    sums_plain(tile, posts, stride, num, den);
}

/// [`squares`] a lane at a time: the same operations in the same order, for the other levels
/// and the tests.
fn squares_plain<C: Cell>(tile: &[[C; TILE]], means: &[f64], stride: usize, sq: &mut [f64]) {
    sq.fill(0.0);
    for (row, mu) in tile.iter().zip(means.chunks_exact(stride)) {
        for (&x, acc) in C::decode(row).iter().zip(sq.chunks_exact_mut(stride)) {
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
fn sums_plain<C: Cell>(
    tile: &[[C; TILE]],
    posts: &[f64],
    stride: usize,
    num: &mut [f64],
    den: &mut [f64],
) {
    num.fill(0.0);
    den.fill(0.0);
    for (row, p) in tile.iter().zip(posts.chunks_exact(stride)) {
        let rows = num
            .chunks_exact_mut(stride)
            .zip(den.chunks_exact_mut(stride));
        for (&x, (num, den)) in C::decode(row).iter().zip(rows) {
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

    use super::{Cell, GROUP, TILE};

    /// A tile row's ratings as eight `f64` lanes, and which lanes hold one (not `NaN`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn lanes<C: Cell>(row: &[C; TILE]) -> (__m512d, __mmask8) {
        if let Some(word) = C::word(row) {
            // Eight bytes widened with their sign (the flag) to 32-bit integers; the rating is
            // the low seven bits. A missing lane (0) is computed and masked out like any other.
            let codes = _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(word as i64));
            let rated = _mm256_cmplt_epi32_mask(codes, _mm256_setzero_si256());
            let x = _mm256_and_si256(codes, _mm256_set1_epi32(0x7f));
            return (_mm512_cvtepi32_pd(x), rated);
        }
        let xs = C::decode(row);
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
    pub(super) fn squares<C: Cell>(
        tile: &[[C; TILE]],
        means: &[f64],
        stride: usize,
        sq: &mut [f64],
    ) {
        let mut g = 0;
        while g < stride {
            match stride - g {
                4 => squares_group::<C, 4>(tile, means, stride, g, sq),
                8 => squares_group::<C, 8>(tile, means, stride, g, sq),
                _ => squares_group::<C, GROUP>(tile, means, stride, g, sq),
            }
            g += GROUP;
        }
    }

    /// Types `g..g + G` of [`squares`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn squares_group<C: Cell, const G: usize>(
        tile: &[[C; TILE]],
        means: &[f64],
        stride: usize,
        g: usize,
        sq: &mut [f64],
    ) {
        let mut acc = [_mm512_setzero_pd(); G];
        for (row, mu) in tile.iter().zip(means.chunks_exact(stride)) {
            let mu: &[f64; G] = mu[g..g + G].try_into().expect("a group of G");
            let (x, rated) = lanes(row);
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
    pub(super) fn sums<C: Cell>(
        tile: &[[C; TILE]],
        posts: &[f64],
        stride: usize,
        num: &mut [f64],
        den: &mut [f64],
    ) {
        let mut g = 0;
        while g < stride {
            match stride - g {
                4 => sums_group::<C, 4>(tile, posts, stride, g, num, den),
                8 => sums_group::<C, 8>(tile, posts, stride, g, num, den),
                _ => sums_group::<C, GROUP>(tile, posts, stride, g, num, den),
            }
            g += GROUP;
        }
    }

    /// Types `g..g + G` of [`sums`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn sums_group<C: Cell, const G: usize>(
        tile: &[[C; TILE]],
        posts: &[f64],
        stride: usize,
        g: usize,
        num: &mut [f64],
        den: &mut [f64],
    ) {
        let (mut n, mut d) = ([_mm512_setzero_pd(); G], [_mm512_setzero_pd(); G]);
        for (row, p) in tile.iter().zip(posts.chunks_exact(stride)) {
            let p: &[f64; G] = p[g..g + G].try_into().expect("a group of G");
            let (x, rated) = lanes(row);
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

    /// `n` users × `d` items, about three in four rated, some users and items with none, the
    /// ratings `value(u, l)`.
    fn mostly_full(n: usize, d: usize, value: impl Fn(usize, usize) -> f32) -> Ratings {
        let mut b = RatingsBuilder::with_capacity(d, n, n * d);
        for u in 0..n {
            for l in 0..d {
                let rated = (u * 7 + l * 13) % 4 != 0 && u % 17 != 5 && l % 19 != 3;
                if rated {
                    b.push(l as u32, value(u, l));
                }
            }
            b.end_row();
        }
        b.finish()
    }

    /// Ratings 0 to 127 (bytes hold them; 0 must not read as missing).
    fn whole(u: usize, l: usize) -> f32 {
        ((u * 5 + l * 3) % 17 * 7 + (u + l) % 3) as f32
    }

    /// Halves, zero and negative values (a baseline's residuals): `f32` tiles.
    fn residual(u: usize, l: usize) -> f32 {
        ((u * 5 + l * 3) % 11) as f32 / 2.0 - 2.0
    }

    /// Runs `check` on the plain kernels and, where the CPU has AVX-512, on those.
    fn at_every_level(mut check: impl FnMut(&str, bool)) {
        check("plain", false);
        #[cfg(target_arch = "x86_64")]
        if simd::detected() == Level::Avx512 {
            check("avx512", true);
        }
    }

    #[allow(unsafe_code)]
    fn squares_at<C: Cell>(wide: bool, t: &[[C; TILE]], m: &[f64], s: usize, out: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if wide {
            // SAFETY: `wide` only where the CPU has AVX-512 F and VL (`at_every_level`).
            return unsafe { avx512::squares(t, m, s, out) };
        }
        squares_plain(t, m, s, out)
    }

    #[allow(unsafe_code)]
    fn sums_at<C: Cell>(
        wide: bool,
        t: &[[C; TILE]],
        p: &[f64],
        s: usize,
        num: &mut [f64],
        den: &mut [f64],
    ) {
        #[cfg(target_arch = "x86_64")]
        if wide {
            // SAFETY: as above.
            return unsafe { avx512::sums(t, p, s, num, den) };
        }
        sums_plain(t, p, s, num, den)
    }

    #[test]
    fn tiles_match_rows_at_every_level() {
        // 61 users in chunks that do not start on a multiple of eight, 45 items (a last tile
        // of five), strides of one to three groups of types and every remainder; tiles of
        // bytes and of floats.
        let (n, d) = (61, 45);
        let chunks = [0..13, 13..14, 14..40, 40..61];
        let (bytes, floats) = (mostly_full(n, d, whole), mostly_full(n, d, residual));
        assert!(matches!(Dense::new(&bytes, &chunks), Dense::Bytes(_)));
        assert!(matches!(Dense::new(&floats, &chunks), Dense::Floats(_)));
        check_tiles(&Tiles::<u8>::new(&bytes, &chunks), &bytes, &chunks);
        check_tiles(&Tiles::<f32>::new(&floats, &chunks), &floats, &chunks);
    }

    fn check_tiles<C: Cell>(tiles: &Tiles<C>, r: &Ratings, chunks: &[Range<usize>]) {
        let (n, d) = (r.n_users(), r.n_items());
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
            at_every_level(|name, wide| {
                let what = format!("{name}, stride {stride}");
                let mut sq = vec![f64::NAN; TILE * stride];
                for (c, users) in chunks.iter().enumerate() {
                    let mut count = 0;
                    for (t, tile) in tiles.user_tiles(c).enumerate() {
                        squares_at(wide, tile, &means, stride, &mut sq);
                        for (b, got) in sq.chunks_exact(stride).enumerate() {
                            let u = users.start + t * TILE + b;
                            if u < users.end {
                                assert_eq!(bits(got), bits(&want_sq[u]), "{what}, user {u}");
                            }
                        }
                        count += 1;
                    }
                    assert_eq!(count, users.len().div_ceil(TILE), "{what}");
                }
                let (mut num, mut den) =
                    (vec![f64::NAN; TILE * stride], vec![f64::NAN; TILE * stride]);
                for s in 0..d.div_ceil(TILE) {
                    sums_at(wide, tiles.item_tile(s), &posts, stride, &mut num, &mut den);
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
            });
        }
    }

    fn bits(a: &[f64]) -> Vec<u64> {
        a.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn bytes_hold_whole_ratings_from_0_to_127_only() {
        assert!(bytes_hold(&[0.0, 1.0, 5.0, 127.0]));
        for other in [128.0, 2.5, -1.0, f32::INFINITY, f32::NAN, 0.1] {
            assert!(!bytes_hold(&[1.0, other]), "{other}");
        }
        let row = [0x80, 0xff, 0, 0x83, 0, 0x81, 0x82, 0x87];
        let decoded = u8::decode(&row);
        assert_eq!(decoded[..2], [0.0, 127.0]);
        assert!(decoded[2].is_nan() && decoded[4].is_nan());
        assert_eq!((u8::encode(0.0), u8::encode(127.0)), (0x80, 0xff));
    }

    #[test]
    fn tiles_are_worth_it_where_half_the_pairs_are_rated() {
        let full = mostly_full(40, 30, whole);
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
