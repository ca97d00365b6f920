//! Sparse ratings in compressed rows: one row per user, (item index, rating) pairs sorted by item.
//!
//! 8 bytes a rating (`u32` item + `f32` rating) plus 8 bytes a user for the row offsets. Ratings
//! on the usual scales (halves and whole stars) are exact in `f32`; everything computed from them
//! is `f64`.
//!
//! Must not import: anything above `src/data`; the snapshot formats.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

/// Ratings of `n_users` users over `n_items` items, stored by user.
///
/// The index (offsets and items) is shared, never written after it is made: a copy with
/// other values ([`Ratings::map_values`], the residuals a baseline leaves) holds the same
/// index, not a copy of it (400 MB of the 800 MB a copy of 100 M ratings would take), and a
/// clone copies the values alone.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ratings {
    /// Row `u` is `items[offsets[u]..offsets[u + 1]]`; `offsets.len() == n_users + 1`.
    offsets: Arc<Vec<u64>>,
    /// Item index of each rating, ascending within a row.
    items: Arc<Vec<u32>>,
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
            offsets: Arc::new(offsets),
            items: Arc::new(items),
            values,
            n_items,
        }
    }

    /// Whether `other` holds this very index (not merely an equal one).
    #[cfg(test)]
    pub(crate) fn shares_index(&self, other: &Ratings) -> bool {
        Arc::ptr_eq(&self.offsets, &other.offsets) && Arc::ptr_eq(&self.items, &other.items)
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
    /// A counting sort, O(ratings), staged through cache. Each core fills its own run of
    /// columns (a contiguous stretch of the output). It walks the rows a chunk at a time: the
    /// chunk's ratings in its columns are counted and sorted by column into a scratch buffer
    /// that stays in cache, then each column's stretch is copied out whole. Writing every
    /// rating straight to its column scatters the writes over thousands of pages (at 100 M
    /// ratings each column's end is 22 kB from the next): that transpose, in blocks of 683
    /// columns, took 1.5–1.9 s at 100 M ratings, this one 0.7–0.85 s (`docs/speed.md`). Where a
    /// core's run has few columns ([`DIRECT_COLUMNS`], the seed's 1,200 items) their ends fit
    /// in L2 and the ratings go straight to them, unstaged. The same arrays whatever the thread
    /// count.
    pub fn transposed(&self) -> Ratings {
        self.transposed_in(TRANSPOSE_CHUNK_RATINGS, DIRECT_COLUMNS)
    }

    /// [`Ratings::transposed`] with rows cut into chunks of about `chunk_ratings` (at least
    /// [`TRANSPOSE_RATINGS_PER_COLUMN`] a column, so copying out is a small share), and a
    /// core's run of at most `direct_columns` columns written straight to the output.
    fn transposed_in(&self, chunk_ratings: u64, direct_columns: usize) -> Ratings {
        let d = self.n_items;
        let offsets = column_offsets(&self.items, d);
        let mut users = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        let chunks = self.row_chunks(chunk_ratings.max(TRANSPOSE_RATINGS_PER_COLUMN * d as u64));
        let runs = column_runs(&offsets, &mut users, &mut values);
        runs.into_par_iter().for_each(|(columns, users, values)| {
            let mut stage = Stage::new(columns, &offsets);
            if stage.columns.len() <= direct_columns {
                return stage.scatter(self, users, values);
            }
            stage.stage();
            for rows in &chunks {
                stage.chunk(self, rows.clone(), users, values);
            }
        });
        Ratings::from_parts(offsets, users, values, self.n_users())
    }

    /// Ranges of rows of about `ratings` ratings each (at least one row), fixed by the data.
    fn row_chunks(&self, ratings: u64) -> Vec<Range<usize>> {
        let n = self.n_users();
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < n {
            let from = self.offsets[start];
            let end =
                (self.offsets.partition_point(|&o| o <= from + ratings) - 1).clamp(start + 1, n);
            chunks.push(start..end);
            start = end;
        }
        chunks
    }

    /// A copy with every value `f(row, column, value)` (for ratings by user: user, item,
    /// rating) over the same index (shared, not copied), runs of rows in parallel: the new
    /// values' pages are first touched on every core, not by one memcpy. Each value is worked
    /// out on its own, so the result does not depend on the thread count.
    pub fn map_values(&self, f: impl Fn(usize, u32, f32) -> f32 + Sync) -> Ratings {
        let mut values = vec![0f32; self.nnz()];
        self.runs(&mut values)
            .into_par_iter()
            .for_each(|(rows, out)| {
                out.copy_from_slice(&self.values[self.span(&rows)]);
                self.map_run(rows, out, &f);
            });
        Ratings {
            offsets: Arc::clone(&self.offsets),
            items: Arc::clone(&self.items),
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
        let mut rest = values;
        let mut runs = Vec::new();
        for rows in self.row_chunks(MAP_RUN_RATINGS) {
            let (head, tail) = rest.split_at_mut(self.span(&rows).len());
            runs.push((rows, head));
            rest = tail;
        }
        runs
    }
}

/// One core's share of a transpose: a run of columns, and the scratch buffers that stage
/// each chunk of rows' ratings in those columns.
struct Stage {
    columns: Range<usize>,
    /// Where each column of the run is up to in the run's stretch of the output.
    next: Vec<usize>,
    /// Where each column's ratings of the current chunk start in the scratch buffers, the
    /// total last. (columns + 1, once staged)
    start: Vec<usize>,
    /// Where each column of the current chunk is up to in the scratch buffers. (columns, once
    /// staged)
    at: Vec<usize>,
    /// Each row's ratings in the run's columns, for the current chunk.
    spans: Vec<Range<usize>>,
    users: Vec<u32>,
    values: Vec<f32>,
}

impl Stage {
    fn new(columns: Range<usize>, offsets: &[u64]) -> Self {
        let base = offsets[columns.start];
        Self {
            next: offsets[columns.clone()]
                .iter()
                .map(|&o| (o - base) as usize)
                .collect(),
            // Sized by `stage` where the run is staged; a scattered run never uses them.
            start: Vec::new(),
            at: Vec::new(),
            columns,
            spans: Vec::new(),
            users: Vec::new(),
            values: Vec::new(),
        }
    }

    /// The per-column bookkeeping of a staged run ([`Stage::chunk`]).
    fn stage(&mut self) {
        self.start = vec![0; self.columns.len() + 1];
        self.at = vec![0; self.columns.len()];
    }

    /// Where `row` (a row's sorted items, of `d` columns) holds the run's columns: a binary
    /// search for each end, but for an end that is the row's own (the first run starts at
    /// column 0, the last ends at `d`). The searches' probes are the row's first touches: they
    /// took a quarter of the seed's transpose's samples (perf annotate).
    fn span(&self, row: &[u32], d: usize) -> (usize, usize) {
        let Range { start, end } = self.columns;
        let a = if start == 0 {
            0
        } else {
            row.partition_point(|&l| (l as usize) < start)
        };
        let b = if end == d {
            row.len()
        } else {
            a + row[a..].partition_point(|&l| (l as usize) < end)
        };
        (a, b)
    }

    /// Every row's ratings in the run's columns written straight to where each column is up
    /// to: where the run has few columns, their open ends fit in L2 and the staging (scratch
    /// buffers as large as a chunk, faulted in fresh) would only add a copy.
    fn scatter(&mut self, by_row: &Ratings, users: &mut [u32], values: &mut [f32]) {
        let first = self.columns.start;
        for u in 0..by_row.n_users() {
            let (row, xs) = by_row.row(u);
            let (a, b) = self.span(row, by_row.n_items);
            for (&l, &x) in row[a..b].iter().zip(&xs[a..b]) {
                let at = &mut self.next[l as usize - first];
                users[*at] = u as u32;
                values[*at] = x;
                *at += 1;
            }
        }
    }

    /// The ratings of `rows` in the run's columns, sorted into the scratch buffers by
    /// column (rows in order within a column), then each column's share copied to where
    /// the column is up to in `users` and `values` (the run's stretch of the output).
    fn chunk(
        &mut self,
        by_row: &Ratings,
        rows: Range<usize>,
        users: &mut [u32],
        values: &mut [f32],
    ) {
        let first = self.columns.start;
        self.spans.clear();
        self.start.fill(0);
        for u in rows.clone() {
            let row = by_row.row(u).0;
            let (a, b) = self.span(row, by_row.n_items);
            row[a..b]
                .iter()
                .for_each(|&l| self.start[l as usize - first + 1] += 1);
            self.spans.push(a..b);
        }
        for c in 1..self.start.len() {
            self.start[c] += self.start[c - 1];
        }
        let total = self.start[self.columns.len()];
        self.users.resize(total, 0);
        self.values.resize(total, 0.0);
        self.at.copy_from_slice(&self.start[..self.columns.len()]);
        for (u, span) in rows.zip(&self.spans) {
            let (row, xs) = by_row.row(u);
            for (&l, &x) in row[span.clone()].iter().zip(&xs[span.clone()]) {
                let at = &mut self.at[l as usize - first];
                self.users[*at] = u as u32;
                self.values[*at] = x;
                *at += 1;
            }
        }
        for (c, next) in self.next.iter_mut().enumerate() {
            let from = self.start[c]..self.start[c + 1];
            let to = *next..*next + from.len();
            *next = to.end;
            users[to.clone()].copy_from_slice(&self.users[from.clone()]);
            values[to].copy_from_slice(&self.values[from]);
        }
    }
}

/// Each column's first position in the transpose of ratings with these `items` (of `d`
/// columns), and the total last: a count in parallel (integer sums, the same in any order),
/// then a prefix sum. (d + 1,)
fn column_offsets(items: &[u32], d: usize) -> Vec<u64> {
    let counts = items
        .par_chunks(1 << 20)
        .fold(
            || vec![0u64; d],
            |mut counts, part| {
                part.iter().for_each(|&l| counts[l as usize] += 1);
                counts
            },
        )
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            a
        })
        .unwrap_or_else(|| vec![0; d]);
    let mut offsets = Vec::with_capacity(d + 1);
    offsets.push(0u64);
    for c in counts {
        offsets.push(offsets.last().expect("non-empty") + c);
    }
    offsets
}

/// Ratings a parallel task of [`Ratings::map_values`] covers, about.
const MAP_RUN_RATINGS: u64 = 1 << 16;

/// Rows a chunk of [`Ratings::transposed`] covers, in ratings, about: a core's share of a
/// chunk (its columns' ratings, 8 bytes each: 2 MB on two cores) stays in the last-level
/// cache. Measured at 100 M ratings: 2^21 was slower (0.97–1.15 s against 0.71–0.78 s).
const TRANSPOSE_CHUNK_RATINGS: u64 = 1 << 19;
/// Ratings a chunk holds at least for each column, where columns are many: copying a
/// column's share out costs about what staging a few ratings does.
const TRANSPOSE_RATINGS_PER_COLUMN: u64 = 4;
/// Columns a core's run of a transpose has at most to be written without staging: two
/// arrays' open cache lines for 2,048 columns are 256 kB, a quarter of a Zen 4 or Skylake-SP
/// core's L2 (the seed's Netflix subset has 1,200 columns, 600 a core; the catalogue 17,770).
const DIRECT_COLUMNS: usize = 2048;

/// One run of columns of a transpose (a core's share) and its stretches of the output.
type ColumnRun<'a> = (Range<usize>, &'a mut [u32], &'a mut [f32]);

/// The columns cut into one run a thread, balanced by ratings, and the output arrays cut at
/// the runs' offsets.
fn column_runs<'a>(
    offsets: &[u64],
    users: &'a mut [u32],
    values: &'a mut [f32],
) -> Vec<ColumnRun<'a>> {
    let (mut rest_u, mut rest_v) = (users, values);
    let mut runs = Vec::new();
    for columns in balanced_cuts(offsets, rayon::current_num_threads()) {
        let len = (offsets[columns.end] - offsets[columns.start]) as usize;
        let (u_head, u_tail) = rest_u.split_at_mut(len);
        let (v_head, v_tail) = rest_v.split_at_mut(len);
        runs.push((columns, u_head, v_head));
        (rest_u, rest_v) = (u_tail, v_tail);
    }
    runs
}

/// The rows of compressed rows with these `offsets` (rows + 1) cut into at most `pieces`
/// contiguous, non-empty ranges of about equal entries (one range, maybe empty, when there
/// are no rows). Fixed by the offsets and `pieces` alone.
pub(crate) fn balanced_cuts(offsets: &[u64], pieces: usize) -> Vec<Range<usize>> {
    let n = offsets.len() - 1;
    let total = offsets[n];
    let want = pieces.clamp(1, n.max(1)) as u64;
    let mut cuts = vec![0];
    for r in 1..want {
        let at = offsets.partition_point(|&o| o < total * r / want).min(n);
        if at > *cuts.last().expect("non-empty") {
            cuts.push(at);
        }
    }
    cuts.push(n);
    cuts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Builds [`Ratings`] row by row.
#[derive(Debug)]
pub struct RatingsBuilder {
    offsets: Vec<u64>,
    items: Vec<u32>,
    values: Vec<f32>,
    n_items: usize,
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
            offsets,
            items: Vec::with_capacity(nnz),
            values: Vec::with_capacity(nnz),
            n_items,
        }
    }

    /// Appends one rating to the current row. Items must come in ascending order within a row
    /// and be below `n_items` (checked in debug builds; loaders check before calling).
    #[inline]
    pub fn push(&mut self, item: u32, value: f32) {
        debug_assert!((item as usize) < self.n_items);
        debug_assert!(
            self.items.len() as u64 == *self.offsets.last().unwrap_or(&0)
                || self.items.last().is_none_or(|&last| last < item)
        );
        self.items.push(item);
        self.values.push(value);
    }

    /// Ends the current row (a row may be empty: a user without ratings).
    pub fn end_row(&mut self) {
        self.offsets.push(self.items.len() as u64);
    }

    /// Rows ended so far.
    pub fn n_rows(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The finished ratings.
    pub fn finish(mut self) -> Ratings {
        self.items.shrink_to_fit();
        self.values.shrink_to_fit();
        Ratings::from_parts(self.offsets, self.items, self.values, self.n_items)
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
        assert!(mapped.shares_index(&r) && in_place.shares_index(&r));
        assert!(!r.transposed().transposed().shares_index(&r));
        assert_eq!(r.transposed().transposed(), r);
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
        let mut want: Vec<(u32, usize, f32)> = r.iter().map(|(u, l, x)| (l, u, x)).collect();
        want.sort_by_key(|&(l, u, _)| (l, u));
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            // Straight to the output; staged in one chunk of rows, then in chunks of about 97
            // ratings (about five rows each).
            for (chunk, direct) in [
                (TRANSPOSE_CHUNK_RATINGS, DIRECT_COLUMNS),
                (TRANSPOSE_CHUNK_RATINGS, 0),
                (97, 0),
            ] {
                assert_eq!(r.row_chunks(chunk).len() > 50, chunk == 97);
                let t = pool.install(|| r.transposed_in(chunk, direct));
                assert_eq!((t.n_users(), t.n_items(), t.nnz()), (500, 300, r.nnz()));
                let got: Vec<(u32, usize, f32)> = t
                    .iter()
                    .map(|(l, u, x)| (l as u32, u as usize, x))
                    .collect();
                assert_eq!(got, want, "{threads} threads, chunks of {chunk}");
            }
        }
    }

    #[test]
    fn column_runs_cover_every_column_once() {
        for (offsets, threads) in [
            (vec![0u64, 5, 5, 9, 20], 3),
            (vec![0, 0, 0], 2),
            (vec![0], 2),
            (vec![0, 7], 4),
        ] {
            let nnz = *offsets.last().unwrap() as usize;
            let (mut users, mut values) = (vec![0u32; nnz], vec![0f32; nnz]);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let runs = pool.install(|| column_runs(&offsets, &mut users, &mut values));
            let d = offsets.len() - 1;
            assert_eq!(runs.first().unwrap().0.start, 0);
            assert_eq!(runs.last().unwrap().0.end, d);
            assert!(runs.windows(2).all(|w| w[0].0.end == w[1].0.start));
            assert!(runs.len() <= threads.max(1));
            for (columns, users, values) in &runs {
                let len = (offsets[columns.end] - offsets[columns.start]) as usize;
                assert_eq!((users.len(), values.len()), (len, len), "{offsets:?}");
            }
        }
    }
}
