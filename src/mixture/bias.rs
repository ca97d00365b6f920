//! Baseline predictors: global mean plus regularised user and item offsets.
//!
//! `x_ul ≈ μ + b_u + b_l`, fitted by alternating ridge updates (Koren's baseline estimates):
//!
//! ```text
//! b_l = Σ_{u rated l} (x_ul − μ − b_u) / (λ_item + n_l)
//! b_u = Σ_{l rated by u} (x_ul − μ − b_l) / (λ_user + n_u)
//! ```
//!
//! The same user update answers a posted profile: a new user's offset from their ratings.

use crate::data::{Ratings, RatingsBuilder};

/// Ridge strength of the item offsets.
pub const LAMBDA_ITEM: f64 = 10.0;
/// Ridge strength of the user offsets.
pub const LAMBDA_USER: f64 = 15.0;
/// Alternating sweeps; the offsets settle to 1e-4 within a handful on rating data.
const SWEEPS: usize = 10;

/// Fitted offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Biases {
    /// μ, the mean of all ratings.
    pub global: f64,
    /// b_l per item. (n_items,)
    pub item: Vec<f64>,
    /// b_u per training user. (n_users,)
    pub user: Vec<f64>,
}

impl Biases {
    /// Fits μ, b_u and b_l to `ratings`.
    pub fn fit(ratings: &Ratings) -> Self {
        let global =
            ratings.iter().map(|(_, _, x)| f64::from(x)).sum::<f64>() / ratings.nnz().max(1) as f64;
        let mut b = Self {
            global,
            item: vec![0.0; ratings.n_items()],
            user: vec![0.0; ratings.n_users()],
        };
        for _ in 0..SWEEPS {
            b.update_items(ratings);
            for u in 0..ratings.n_users() {
                let (items, values) = ratings.row(u);
                b.user[u] = b.user_offset(items, values.iter().map(|&x| f64::from(x)));
            }
        }
        b
    }

    fn update_items(&mut self, ratings: &Ratings) {
        let mut sum = vec![0.0; self.item.len()];
        let mut count = vec![0.0; self.item.len()];
        for (u, l, x) in ratings.iter() {
            sum[l as usize] += f64::from(x) - self.global - self.user[u];
            count[l as usize] += 1.0;
        }
        for ((b, s), n) in self.item.iter_mut().zip(sum).zip(count) {
            *b = s / (LAMBDA_ITEM + n);
        }
    }

    /// The offset of a user who rated `items` with `values`.
    pub fn user_offset(&self, items: &[u32], values: impl Iterator<Item = f64>) -> f64 {
        let (mut sum, mut n) = (0.0, 0.0);
        for (&l, x) in items.iter().zip(values) {
            sum += x - self.global - self.item[l as usize];
            n += 1.0;
        }
        sum / (LAMBDA_USER + n)
    }

    /// μ + b_u + b_l for training user `u`.
    pub fn predict(&self, u: usize, l: u32) -> f64 {
        self.global + self.user[u] + self.item[l as usize]
    }

    /// The ratings minus their baseline: what a mixture over residuals is trained on.
    pub fn residuals(&self, ratings: &Ratings) -> Ratings {
        let mut b =
            RatingsBuilder::with_capacity(ratings.n_items(), ratings.n_users(), ratings.nnz());
        for u in 0..ratings.n_users() {
            let (items, values) = ratings.row(u);
            for (&l, &x) in items.iter().zip(values) {
                b.push(l, (f64::from(x) - self.predict(u, l)) as f32);
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
    fn offsets_follow_generous_users_and_good_items() {
        // Users 0-9 rate everything one star above users 10-19; item 0 is one star above item 1.
        let rows: Vec<Vec<f64>> = (0..20)
            .map(|u| {
                let base = if u < 10 { 4.0 } else { 3.0 };
                vec![base, base - 1.0]
            })
            .collect();
        let b = Biases::fit(&Ratings::from_dense_rows(&rows));
        assert_eq!(b.global, 3.0);
        assert!(b.user[0] > 0.0 && b.user[15] < 0.0 && (b.user[0] + b.user[15]).abs() < 1e-9);
        assert!(b.item[0] > 0.0 && (b.item[0] + b.item[1]).abs() < 1e-9);
        let r = b.residuals(&Ratings::from_dense_rows(&rows));
        assert!(r.iter().all(|(_, _, x)| x.abs() < 1.0));
    }
}
