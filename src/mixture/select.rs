//! Model selection: the Bayesian information criterion.

/// Free parameters of a K-type spherical mixture over d items: K·d means, K variances and
/// K − 1 weights (they sum to one).
pub fn free_parameters(k: usize, d: usize) -> usize {
    k * d + k + (k - 1)
}

/// BIC = LL − p/2 · ln n, with p from [`free_parameters`] and n the number of users.
/// Higher is better.
pub fn bic(log_likelihood: f64, k: usize, d: usize, n_users: usize) -> f64 {
    log_likelihood - free_parameters(k, d) as f64 / 2.0 * (n_users as f64).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bic_matches_the_seed_on_toy_data() {
        // seed-figures.json, toy_data.txt K = 1: LL -1307.2234317600933, BIC -1315.5056231368867
        let b = bic(-1307.2234317600933, 1, 2, 250);
        assert!((b - -1315.5056231368867).abs() < 1e-9, "{b}");
        assert_eq!(free_parameters(3, 2), 6 + 3 + 2);
    }
}
