//! The inner loops of training: per-rating sums over the K types of one user (E-step) or one
//! item (M-step), in versions for the common widths whose running sums live in registers.
//!
//! With a runtime width the sums round-trip through memory on every rating, a store-to-load
//! chain that cost more than the arithmetic (perf annotate). No web or async types here.

/// Types are processed in groups of this many, so the inner loops compile to straight-line
/// vector code; K is padded up to a multiple inside a pass (padded types have no weight).
pub(crate) const LANES: usize = 4;

/// `sq[j] = Σ_{l ∈ items} (x_l − mu_jl)²`; returns Σ x_l². `means` is item-major with rows
/// of `sq.len()` entries.
///
/// The common widths get a version whose accumulators live in registers: with a runtime
/// width they round-trip through memory on every rating, a store-to-load chain that cost more
/// than the arithmetic (perf annotate).
#[inline(always)]
pub(crate) fn squared_distances(
    items: &[u32],
    values: &[f32],
    means: &[f64],
    sq: &mut [f64],
) -> f64 {
    match sq.len() {
        4 => squared_distances_fixed::<1>(items, values, means, sq),
        8 => squared_distances_fixed::<2>(items, values, means, sq),
        12 => squared_distances_fixed::<3>(items, values, means, sq),
        16 => squared_distances_fixed::<4>(items, values, means, sq),
        _ => squared_distances_any(items, values, means, sq),
    }
}

#[inline(always)]
fn squared_distances_fixed<const G: usize>(
    items: &[u32],
    values: &[f32],
    means: &[f64],
    sq: &mut [f64],
) -> f64 {
    let width = G * LANES;
    let mut acc = [[0.0f64; LANES]; G];
    let mut xx = 0.0;
    for (&l, &x) in items.iter().zip(values) {
        let x = f64::from(x);
        xx += x * x;
        let mu = &means[l as usize * width..][..width];
        for (g, a) in acc.iter_mut().enumerate() {
            for i in 0..LANES {
                let diff = x - mu[g * LANES + i];
                a[i] += diff * diff;
            }
        }
    }
    for (s, a) in sq.chunks_exact_mut(LANES).zip(&acc) {
        s.copy_from_slice(a);
    }
    xx
}

#[inline(always)]
fn squared_distances_any(items: &[u32], values: &[f32], means: &[f64], sq: &mut [f64]) -> f64 {
    let k = sq.len();
    sq.fill(0.0);
    let mut xx = 0.0;
    for (&l, &x) in items.iter().zip(values) {
        let x = f64::from(x);
        xx += x * x;
        for (s, &m) in sq.iter_mut().zip(&means[l as usize * k..][..k]) {
            let diff = x - m;
            *s += diff * diff;
        }
    }
    xx
}

/// `num[j] = Σ post_uj x_u` and `den[j] = Σ post_uj` over one item's (user, rating) pairs;
/// `posts` rows have `num.len()` entries. Fixed widths keep the sums in registers.
#[inline(always)]
pub(crate) fn column_sums(
    users: &[u32],
    values: &[f32],
    posts: &[f64],
    num: &mut [f64],
    den: &mut [f64],
) {
    match num.len() {
        4 => column_sums_fixed::<1>(users, values, posts, num, den),
        8 => column_sums_fixed::<2>(users, values, posts, num, den),
        12 => column_sums_fixed::<3>(users, values, posts, num, den),
        16 => column_sums_fixed::<4>(users, values, posts, num, den),
        _ => column_sums_any(users, values, posts, num, den),
    }
}

#[inline(always)]
fn column_sums_fixed<const G: usize>(
    users: &[u32],
    values: &[f32],
    posts: &[f64],
    num: &mut [f64],
    den: &mut [f64],
) {
    let width = G * LANES;
    let mut n_acc = [[0.0f64; LANES]; G];
    let mut d_acc = [[0.0f64; LANES]; G];
    for (&u, &x) in users.iter().zip(values) {
        let x = f64::from(x);
        let p = &posts[u as usize * width..][..width];
        for g in 0..G {
            for i in 0..LANES {
                n_acc[g][i] += p[g * LANES + i] * x;
                d_acc[g][i] += p[g * LANES + i];
            }
        }
    }
    for g in 0..G {
        num[g * LANES..][..LANES].copy_from_slice(&n_acc[g]);
        den[g * LANES..][..LANES].copy_from_slice(&d_acc[g]);
    }
}

#[inline(always)]
fn column_sums_any(users: &[u32], values: &[f32], posts: &[f64], num: &mut [f64], den: &mut [f64]) {
    let width = num.len();
    num.fill(0.0);
    den.fill(0.0);
    for (&u, &x) in users.iter().zip(values) {
        let x = f64::from(x);
        let p = &posts[u as usize * width..][..width];
        for j in 0..width {
            num[j] += p[j] * x;
            den[j] += p[j];
        }
    }
}
