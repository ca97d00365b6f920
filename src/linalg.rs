//! Small dense symmetric positive-definite systems, the inner step of ALS and of the low-rank
//! mixture: a Cholesky factorisation in place, solves and the log-determinant.
//!
//! Matrices are row-major `n × n` slices; only the lower triangle is read. Sizes are a rank plus
//! one or two (at most a few dozen), so plain loops beat any library call's overhead.
//!
//! No web, async or model types here.

/// Why a factorisation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the matrix is not positive definite (pivot {0})")]
pub struct NotPositiveDefinite(pub usize);

/// Factorises `a = L Lᵀ` in place: the lower triangle of `a` becomes L (the upper triangle is
/// left as it was).
pub fn cholesky(a: &mut [f64], n: usize) -> Result<(), NotPositiveDefinite> {
    debug_assert_eq!(a.len(), n * n);
    for j in 0..n {
        // L_jj = sqrt(a_jj − Σ_{k<j} L_jk²)
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if !(d > 0.0 && d.is_finite()) {
            return Err(NotPositiveDefinite(j));
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        // L_ij = (a_ij − Σ_{k<j} L_ik L_jk) / L_jj
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    Ok(())
}

/// Solves `L Lᵀ x = b` in place, `l` as [`cholesky`] leaves it.
pub fn solve(l: &[f64], n: usize, b: &mut [f64]) {
    // forward: L y = b
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
    // backward: Lᵀ x = y
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// ln det(L Lᵀ) = 2 Σ ln L_ii.
pub fn log_det(l: &[f64], n: usize) -> f64 {
    2.0 * (0..n).map(|i| l[i * n + i].ln()).sum::<f64>()
}

/// The inverse `(L Lᵀ)⁻¹` into `out` (row-major, full), column by column.
pub fn inverse(l: &[f64], n: usize, out: &mut [f64]) {
    let mut col = vec![0.0; n];
    for j in 0..n {
        col.fill(0.0);
        col[j] = 1.0;
        solve(l, n, &mut col);
        for i in 0..n {
            out[i * n + j] = col[i];
        }
    }
}

/// The diagonal of `(L Lᵀ)⁻¹` into `out` (n), `l` as [`cholesky`] leaves it: column i of L⁻¹
/// by forward substitution (zero above row i), and `[(L Lᵀ)⁻¹]_ii = Σ_k (L⁻¹)_ki²` since
/// `(L Lᵀ)⁻¹ = L⁻ᵀ L⁻¹`. About n³/6 multiply-adds, a sixth of [`inverse`]'s.
pub fn inverse_diagonal(l: &[f64], n: usize, out: &mut [f64]) {
    out.fill(0.0);
    let mut col = vec![0.0; n];
    for (i, o) in out.iter_mut().enumerate() {
        // L y = e_i: y_k = 0 for k < i
        for k in i..n {
            let mut s = if k == i { 1.0 } else { 0.0 };
            for m in i..k {
                s -= l[k * n + m] * col[m];
            }
            col[k] = s / l[k * n + k];
            *o += col[k] * col[k];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_hand_computed_system() {
        // A = [[4, 2], [2, 3]], b = (2, 1): x = (0.5, 0), det 8.
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        cholesky(&mut a, 2).unwrap();
        let mut b = vec![2.0, 1.0];
        solve(&a, 2, &mut b);
        assert!((b[0] - 0.5).abs() < 1e-15 && b[1].abs() < 1e-15, "{b:?}");
        assert!((log_det(&a, 2) - 8f64.ln()).abs() < 1e-15);
        let mut inv = vec![0.0; 4];
        inverse(&a, 2, &mut inv);
        // A⁻¹ = [[3, −2], [−2, 4]] / 8
        let want = [0.375, -0.25, -0.25, 0.5];
        assert!(
            inv.iter().zip(want).all(|(x, w)| (x - w).abs() < 1e-15),
            "{inv:?}"
        );
        let mut diag = vec![0.0; 2];
        inverse_diagonal(&a, 2, &mut diag);
        assert!(
            (diag[0] - 0.375).abs() < 1e-15 && (diag[1] - 0.5).abs() < 1e-15,
            "{diag:?}"
        );
    }

    #[test]
    fn refuses_an_indefinite_matrix() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert_eq!(cholesky(&mut a, 2), Err(NotPositiveDefinite(1)));
    }
}
