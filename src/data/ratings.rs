//! Sparse ratings in compressed rows: one row per user, (item index, rating) pairs sorted by item.
//!
//! 8 bytes a rating (`u32` item + `f32` rating) plus 8 bytes a user for the row offsets. Ratings
//! on the usual scales (halves and whole stars) are exact in `f32`; everything computed from them
//! is `f64`.
//!
//! Must not import: anything above `src/data`; the snapshot formats.

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
    /// A counting sort, O(ratings).
    pub fn transposed(&self) -> Ratings {
        let mut offsets = vec![0u64; self.n_items + 1];
        for &l in &self.items {
            offsets[l as usize + 1] += 1;
        }
        for l in 0..self.n_items {
            offsets[l + 1] += offsets[l];
        }
        let mut next: Vec<u64> = offsets[..self.n_items].to_vec();
        let mut users = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        for u in 0..self.n_users() {
            let (items, xs) = self.row(u);
            for (&l, &x) in items.iter().zip(xs) {
                let at = next[l as usize] as usize;
                users[at] = u as u32;
                values[at] = x;
                next[l as usize] += 1;
            }
        }
        Ratings {
            offsets,
            items: users,
            values,
            n_items: self.n_users(),
        }
    }
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
}
