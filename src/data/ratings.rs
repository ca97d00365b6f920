//! Sparse ratings in compressed rows: one row per user, (item index, rating) pairs sorted by item.
//!
//! 8 bytes a rating (`u32` item + `f32` rating) plus 8 bytes a user for the row offsets. Ratings
//! on the usual scales (halves and whole stars) are exact in `f32`; everything computed from them
//! is `f64`.
//!
//! Must not import: anything above `src/data`; the snapshot formats.

use std::ops::Range;

use rayon::prelude::*;

/// Ratings of `n_users` users over `n_items` items, stored by user.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ratings {
    /// Row `u` is `items[offsets[u]..offsets[u + 1]]`; `offsets.len() == n_users + 1`.
    offsets: Vec<u64>,
    /// Item index of each rating, ascending within a row.
    items: Vec<u32>,
    /// The rating itself.
    values: Vec<f32>,
    n_items: usize,
}

impl Ratings {
    /// Ratings from their parts: `offsets` (n_users + 1, from 0, non-decreasing, ending at the
    /// number of ratings), item indices ascending within each row and below `n_items`.
    pub(crate) fn from_parts(
        offsets: Vec<u64>,
        items: Vec<u32>,
        values: Vec<f32>,
        n_items: usize,
    ) -> Self {
        debug_assert_eq!(offsets.first(), Some(&0));
        debug_assert_eq!(offsets.last().copied(), Some(items.len() as u64));
        debug_assert_eq!(items.len(), values.len());
        debug_assert!(items.iter().all(|&l| (l as usize) < n_items));
        Self {
            offsets,
            items,
            values,
            n_items,
        }
    }

    /// The raw arrays: row offsets, item indices, ratings.
    pub fn parts(&self) -> (&[u64], &[u32], &[f32]) {
        (&self.offsets, &self.items, &self.values)
    }

    /// Number of users (rows), including users with no ratings.
    pub fn n_users(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Number of items (columns), including items nobody rated.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Number of observed ratings.
    pub fn nnz(&self) -> usize {
        self.items.len()
    }

    /// The ratings of user `u`: item indices (ascending) and ratings.
    #[inline]
    pub fn row(&self, u: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.offsets[u] as usize, self.offsets[u + 1] as usize);
        (&self.items[a..b], &self.values[a..b])
    }

    /// Row offsets (`n_users + 1` of them): lets callers cut the users into balanced chunks.
    pub fn offsets(&self) -> &[u64] {
        &self.offsets
    }

    /// Iterates over all ratings as `(user, item, rating)`.
    pub fn iter(&self) -> impl Iterator<Item = (usize, u32, f32)> + '_ {
        (0..self.n_users()).flat_map(move |u| {
            let (items, values) = self.row(u);
            items.iter().zip(values).map(move |(&i, &v)| (u, i, v))
        })
    }

    /// The value of one entry, if observed (binary search in the row).
    pub fn get(&self, u: usize, item: u32) -> Option<f32> {
        let (items, values) = self.row(u);
        items.binary_search(&item).ok().map(|p| values[p])
    }

    /// Smallest and largest rating, or `None` without ratings.
    pub fn value_range(&self) -> Option<(f32, f32)> {
        let mut it = self.values.iter().copied();
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
    }

    /// The coarsest grid every rating lies on: `1.0` when all are whole numbers, `0.5` when all
    /// are whole or half, `None` otherwise and without ratings. What an entry form offers
    /// (stars, half stars); a profile may still hold any rating inside the scale.
    pub fn step(&self) -> Option<f64> {
        if self.values.is_empty() {
            return None;
        }
        // Halves and whole numbers are exact in f32, so `fract` tests them exactly.
        [1.0f32, 0.5]
            .into_iter()
            .find(|&s| self.values.iter().all(|&v| (v / s).fract() == 0.0))
            .map(f64::from)
    }

    /// The transpose: row l lists the users who rated item l (ascending) and their ratings.
    /// A counting sort, O(ratings), in blocks of columns: a block's write positions stay in
    /// cache (one block's 2 × 64 write streams at a time, not every item's 2 × 1,200 on the
    /// Netflix subset), and each core fills its own run of blocks, carrying every user's place
    /// in their row from one block to the next. The same arrays whatever the thread count.
    pub fn transposed(&self) -> Ratings {
        let (n, d) = (self.n_users(), self.n_items);
        let mut offsets = vec![0u64; d + 1];
        for &l in &self.items {
            offsets[l as usize + 1] += 1;
        }
        for l in 0..d {
            offsets[l + 1] += offsets[l];
        }
        let mut users = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        let blocks = transpose_blocks(n, d, self.nnz());
        let runs = column_runs(&blocks, &offsets, &mut users, &mut values);
        runs.into_par_iter().for_each(|run| {
            let first = run.first().map_or(0, |(r, _, _)| r.start);
            let mut cursor: Vec<usize> = (0..n)
                .map(|u| self.row(u).0.partition_point(|&l| (l as usize) < first))
                .collect();
            for (items, us, vs) in run {
                self.fill_columns(items, &offsets, &mut cursor, us, vs);
            }
        });
        Ratings {
            offsets,
            items: users,
            values,
            n_items: n,
        }
    }

    /// A copy with every value `f(row, column, value)` (for ratings by user: user, item,
    /// rating), runs of rows in parallel: the copy's pages are first touched on every core,
    /// not by one memcpy. Each value is worked out on its own, so the result does not depend
    /// on the thread count.
    pub fn map_values(&self, f: impl Fn(usize, u32, f32) -> f32 + Sync) -> Ratings {
        let mut items = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        let runs = self.runs(&mut values);
        let mut items_rest = items.as_mut_slice();
        let mut jobs = Vec::with_capacity(runs.len());
        for (rows, out) in runs {
            let (head, tail) = items_rest.split_at_mut(out.len());
            jobs.push((rows, head, out));
            items_rest = tail;
        }
        jobs.into_par_iter()
            .for_each(|(rows, items_out, values_out)| {
                let span = self.span(&rows);
                items_out.copy_from_slice(&self.items[span.clone()]);
                values_out.copy_from_slice(&self.values[span]);
                self.map_run(rows, values_out, &f);
            });
        Ratings {
            offsets: self.offsets.clone(),
            items,
            values,
            n_items: self.n_items,
        }
    }

    /// [`Ratings::map_values`] in place.
    pub fn map_values_in_place(mut self, f: impl Fn(usize, u32, f32) -> f32 + Sync) -> Ratings {
        let mut values = std::mem::take(&mut self.values);
        let runs = self.runs(&mut values);
        runs.into_par_iter()
            .for_each(|(rows, values)| self.map_run(rows, values, &f));
        self.values = values;
        self
    }

    /// Positions of the ratings of `rows` in the arrays.
    fn span(&self, rows: &Range<usize>) -> Range<usize> {
        self.offsets[rows.start] as usize..self.offsets[rows.end] as usize
    }

    /// `values` (the ratings of `rows`, any values) each replaced by `f(row, column, value)`.
    fn map_run(&self, rows: Range<usize>, values: &mut [f32], f: impl Fn(usize, u32, f32) -> f32) {
        let base = self.offsets[rows.start] as usize;
        for r in rows {
            let span = self.span(&(r..r + 1));
            let items = &self.items[span.clone()];
            for (x, &c) in values[span.start - base..span.end - base]
                .iter_mut()
                .zip(items)
            {
                *x = f(r, c, *x);
            }
        }
    }

    /// `values` (one per rating) cut into runs of whole rows of about [`MAP_RUN_RATINGS`]
    /// ratings, with their rows.
    fn runs<'v>(&self, values: &'v mut [f32]) -> Vec<(Range<usize>, &'v mut [f32])> {
        let n = self.n_users();
        let mut runs = Vec::new();
        let mut rest = values;
        let mut start = 0;
        while start < n {
            let from = self.offsets[start];
            let end = (self
                .offsets
                .partition_point(|&o| o <= from + MAP_RUN_RATINGS)
                - 1)
            .clamp(start + 1, n);
            let (head, tail) = rest.split_at_mut((self.offsets[end] - from) as usize);
            runs.push((start..end, head));
            (rest, start) = (tail, end);
        }
        runs
    }

    /// Columns `items` of the transpose into `users` and `values`, which start at column
    /// `items.start`'s offset; `cursor[u]` is where user u's ratings of these columns start,
    /// and is left where they end.
    fn fill_columns(
        &self,
        items: Range<usize>,
        offsets: &[u64],
        cursor: &mut [usize],
        users: &mut [u32],
        values: &mut [f32],
    ) {
        let base = offsets[items.start];
        let mut next: Vec<usize> = offsets[items.clone()]
            .iter()
            .map(|&o| (o - base) as usize)
            .collect();
        for (u, from) in cursor.iter_mut().enumerate() {
            let (row, xs) = self.row(u);
            for (&l, &x) in row[*from..].iter().zip(&xs[*from..]) {
                let Some(at) = next.get_mut((l as usize).wrapping_sub(items.start)) else {
                    break;
                };
                users[*at] = u as u32;
                values[*at] = x;
                *at += 1;
                *from += 1;
            }
        }
    }
}

/// Ratings a parallel task of [`Ratings::map_values`] covers, about.
const MAP_RUN_RATINGS: u64 = 1 << 16;

/// Items per block of [`Ratings::transposed`] aim at this many write streams' worth of cache
/// lines...
const TRANSPOSE_BLOCK_ITEMS: usize = 64;
/// ...but every block costs each user a binary search: at least this many ratings a search.
const TRANSPOSE_RATINGS_PER_SEARCH: usize = 8;

/// The item blocks of a transpose of `nnz` ratings of `n` users over `d` items: small enough
/// that a block's columns stay in cache, few enough that the users' searches stay below one
/// in [`TRANSPOSE_RATINGS_PER_SEARCH`] ratings. Fixed by the shape alone.
fn transpose_blocks(n: usize, d: usize, nnz: usize) -> Vec<Range<usize>> {
    let most = (nnz / (TRANSPOSE_RATINGS_PER_SEARCH * n.max(1))).max(1);
    let count = d.div_ceil(TRANSPOSE_BLOCK_ITEMS).clamp(1, most);
    let size = d.div_ceil(count).max(1);
    (0..d).step_by(size).map(|a| a..(a + size).min(d)).collect()
}

/// One block of columns of a transpose and its stretches of the output arrays.
type ColumnBlock<'a> = (Range<usize>, &'a mut [u32], &'a mut [f32]);

/// The output arrays cut at the blocks' column offsets, the blocks grouped into one run a
/// thread: a thread walks its run in order, and each user's place in their row carries from
/// one block to the next.
fn column_runs<'a>(
    blocks: &[Range<usize>],
    offsets: &[u64],
    users: &'a mut [u32],
    values: &'a mut [f32],
) -> Vec<Vec<ColumnBlock<'a>>> {
    let per_run = blocks.len().div_ceil(rayon::current_num_threads()).max(1);
    let (mut rest_u, mut rest_v) = (users, values);
    let mut runs = Vec::new();
    for run in blocks.chunks(per_run) {
        let mut slices = Vec::with_capacity(run.len());
        for r in run {
            let len = (offsets[r.end] - offsets[r.start]) as usize;
            let (u_head, u_tail) = rest_u.split_at_mut(len);
            let (v_head, v_tail) = rest_v.split_at_mut(len);
            slices.push((r.clone(), u_head, v_head));
            (rest_u, rest_v) = (u_tail, v_tail);
        }
        runs.push(slices);
    }
    runs
}

/// Builds [`Ratings`] row by row.
#[derive(Debug)]
pub struct RatingsBuilder {
    ratings: Ratings,
}

impl RatingsBuilder {
    /// A builder for rows over `n_items` items.
    pub fn new(n_items: usize) -> Self {
        Self::with_capacity(n_items, 0, 0)
    }

    /// A builder with room reserved for `users` rows and `nnz` ratings.
    pub fn with_capacity(n_items: usize, users: usize, nnz: usize) -> Self {
        let mut offsets = Vec::with_capacity(users + 1);
        offsets.push(0);
        Self {
            ratings: Ratings {
                offsets,
                items: Vec::with_capacity(nnz),
                values: Vec::with_capacity(nnz),
                n_items,
            },
        }
    }

    /// Appends one rating to the current row. Items must come in ascending order within a row
    /// and be below `n_items` (checked in debug builds; loaders check before calling).
    #[inline]
    pub fn push(&mut self, item: u32, value: f32) {
        debug_assert!((item as usize) < self.ratings.n_items);
        debug_assert!(
            self.ratings.items.len() as u64 == *self.ratings.offsets.last().unwrap_or(&0)
                || self.ratings.items.last().is_none_or(|&last| last < item)
        );
        self.ratings.items.push(item);
        self.ratings.values.push(value);
    }

    /// Ends the current row (a row may be empty: a user without ratings).
    pub fn end_row(&mut self) {
        self.ratings.offsets.push(self.ratings.items.len() as u64);
    }

    /// Rows ended so far.
    pub fn n_rows(&self) -> usize {
        self.ratings.offsets.len() - 1
    }

    /// The finished ratings.
    pub fn finish(mut self) -> Ratings {
        self.ratings.items.shrink_to_fit();
        self.ratings.values.shrink_to_fit();
        self.ratings
    }
}

impl Ratings {
    /// Ratings from dense rows where `0` means missing (tests and small examples).
    pub fn from_dense_rows(rows: &[Vec<f64>]) -> Self {
        let d = rows.first().map_or(0, Vec::len);
        let mut b = RatingsBuilder::new(d);
        for row in rows {
            assert_eq!(row.len(), d, "ragged rows");
            for (l, &x) in row.iter().enumerate() {
                if x != 0.0 {
                    b.push(l as u32, x as f32);
                }
            }
            b.end_row();
        }
        b.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_values_sees_every_rating_with_its_row_and_column() {
        // Rows of 0 to 2,999 ratings: runs of rows cut across the 64 K mark.
        let rows: Vec<Vec<f64>> = (0..120)
            .map(|u| {
                (0..3000)
                    .map(|l| {
                        if l < u * 25 {
                            1.0 + (l % 4) as f64
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        let f = |u: usize, l: u32, x: f32| x * 10.0 + u as f32 * 1000.0 + l as f32 / 4.0;
        let mapped = r.map_values(f);
        let in_place = r.clone().map_values_in_place(f);
        assert_eq!(mapped, in_place);
        assert_eq!(mapped.parts().0, r.parts().0);
        assert_eq!(mapped.parts().1, r.parts().1);
        for (u, l, x) in r.iter() {
            assert_eq!(
                mapped.get(u, l),
                Some(x * 10.0 + u as f32 * 1000.0 + l as f32 / 4.0)
            );
        }
    }

    #[test]
    fn rows_keep_items_and_values() {
        let r = Ratings::from_dense_rows(&[
            vec![1.0, 0.0, 3.0],
            vec![0.0, 0.0, 0.0],
            vec![0.0, 5.0, 0.0],
        ]);
        assert_eq!((r.n_users(), r.n_items(), r.nnz()), (3, 3, 3));
        assert_eq!(r.row(0), (&[0u32, 2][..], &[1.0f32, 3.0][..]));
        assert_eq!(r.row(1), (&[][..], &[][..]));
        assert_eq!(r.get(2, 1), Some(5.0));
        assert_eq!(r.get(2, 0), None);
        assert_eq!(r.value_range(), Some((1.0, 5.0)));
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![(0, 0, 1.0), (0, 2, 3.0), (2, 1, 5.0)]
        );
    }

    #[test]
    fn the_step_is_the_coarsest_grid_of_whole_or_half_ratings() {
        let step = |rows: &[Vec<f64>]| Ratings::from_dense_rows(rows).step();
        assert_eq!(step(&[vec![1.0, 5.0], vec![3.0, 0.0]]), Some(1.0));
        assert_eq!(step(&[vec![1.0, 4.5], vec![3.0, 0.0]]), Some(0.5));
        assert_eq!(step(&[vec![1.0, 4.25]]), None);
        assert_eq!(step(&[vec![0.0, 0.0]]), None);
    }

    #[test]
    fn the_transpose_is_the_ratings_by_item_on_any_thread_count() {
        // 300 users × 500 items, about one cell in five rated: several blocks of columns.
        let rows: Vec<Vec<f64>> = (0..300)
            .map(|u| {
                (0..500)
                    .map(|l| {
                        let h = (u * 7919 + l * 104_729) % 97;
                        if h < 20 { (h % 5 + 1) as f64 } else { 0.0 }
                    })
                    .collect()
            })
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        assert!(transpose_blocks(r.n_users(), r.n_items(), r.nnz()).len() > 2);
        let mut want: Vec<(u32, usize, f32)> = r.iter().map(|(u, l, x)| (l, u, x)).collect();
        want.sort_by_key(|&(l, u, _)| (l, u));
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let t = pool.install(|| r.transposed());
            assert_eq!((t.n_users(), t.n_items(), t.nnz()), (500, 300, r.nnz()));
            let got: Vec<(u32, usize, f32)> = t
                .iter()
                .map(|(l, u, x)| (l as u32, u as usize, x))
                .collect();
            assert_eq!(got, want, "{threads} threads");
        }
    }

    #[test]
    fn transpose_blocks_cover_every_item_once() {
        for (n, d, nnz) in [
            (1200, 1200, 1_111_768),
            (480_189, 17_770, 100_480_507),
            (3, 0, 0),
            (1, 5, 5),
        ] {
            let b = transpose_blocks(n, d, nnz);
            assert_eq!(b.first().map_or(0, |r| r.start), 0);
            assert_eq!(b.last().map_or(0, |r| r.end), d);
            assert!(
                b.windows(2)
                    .all(|w| w[0].end == w[1].start && !w[1].is_empty())
            );
            // At least eight ratings for each user's search in each block.
            assert!(b.len() <= (nnz / (8 * n.max(1))).max(1), "{n} {d} {nnz}");
        }
    }
}
