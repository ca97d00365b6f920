//! The inner loops of training: per-rating sums over the K types of one user (E-step) or one
//! item (M-step), in versions for the common widths whose running sums live in registers.
//!
//! With a runtime width the sums round-trip through memory on every rating, a store-to-load
//! chain that cost more than the arithmetic (perf annotate). No web or async types here.

/// Types are processed in groups of this many, so the inner loops compile to straight-line
/// vector code; K is padded up to a multiple inside a pass (padded types have no weight).
pub(crate) const LANES: usize = 4;

/// `Σ x_l²` of one user's ratings, in their order (what the E-step's per-type sums need; the
/// data's, so worked out once per pass's buffers, not every iteration).
pub(crate) fn sum_of_squares(values: &[f32]) -> f64 {
    values
        .iter()
        .fold(0.0, |xx, &x| xx + f64::from(x) * f64::from(x))
}

/// `sq[j] = Σ_{l ∈ items} (x_l − mu_jl)²`. `means` is item-major with rows of `sq.len()`
/// entries.
#[inline(always)]
pub(crate) fn squared_distances(items: &[u32], values: &[f32], means: &[f64], sq: &mut [f64]) {
    match sq.len() {
        4 => squared_distances_fixed::<4>(items, values, means, sq),
        8 => squared_distances_fixed::<8>(items, values, means, sq),
        12 => squared_distances_fixed::<12>(items, values, means, sq),
        16 => squared_distances_fixed::<16>(items, values, means, sq),
        _ => squared_distances_any(items, values, means, sq),
    }
}

/// One rating's share of [`squared_distances`].
#[inline(always)]
fn add_squares<const W: usize>(acc: &mut [f64; W], mu: &[f64; W], x: f32) {
    let x = f64::from(x);
    for j in 0..W {
        let diff = x - mu[j];
        acc[j] += diff * diff;
    }
}

/// `W` types at once: the means as rows of `[f64; W]` (one bounds check a rating, and whole
/// rows the vectoriser lays out in registers).
#[inline(always)]
fn squared_distances_fixed<const W: usize>(
    items: &[u32],
    values: &[f32],
    means: &[f64],
    sq: &mut [f64],
) {
    let (rows, _) = means.as_chunks::<W>();
    let mut acc = [0.0f64; W];
    for (&l, &x) in items.iter().zip(values) {
        add_squares(&mut acc, &rows[l as usize], x);
    }
    sq.copy_from_slice(&acc);
}

#[inline(always)]
fn squared_distances_any(items: &[u32], values: &[f32], means: &[f64], sq: &mut [f64]) {
    let k = sq.len();
    sq.fill(0.0);
    for (&l, &x) in items.iter().zip(values) {
        let x = f64::from(x);
        for (s, &m) in sq.iter_mut().zip(&means[l as usize * k..][..k]) {
            let diff = x - m;
            *s += diff * diff;
        }
    }
}

/// `num[j] += Σ post_uj x_u` and `den[j] += Σ post_uj` over (a run of) one item's (user,
/// rating) pairs, in their order; `posts` rows have `num.len()` entries. Adding to what the
/// rows hold lets the item pass sum an item's raters block by block in the same order, so to
/// the same bits, as in one go. Fixed widths keep the sums in registers.
#[inline(always)]
pub(crate) fn column_sums(
    users: &[u32],
    values: &[f32],
    posts: &[f64],
    num: &mut [f64],
    den: &mut [f64],
) {
    match num.len() {
        4 => column_sums_fixed::<4>(users, values, posts, num, den),
        8 => column_sums_fixed::<8>(users, values, posts, num, den),
        12 => column_sums_fixed::<12>(users, values, posts, num, den),
        16 => column_sums_fixed::<16>(users, values, posts, num, den),
        _ => column_sums_any(users, values, posts, num, den),
    }
}

/// One rating's share of [`column_sums`].
#[inline(always)]
fn add_column<const W: usize>(num: &mut [f64; W], den: &mut [f64; W], p: &[f64; W], x: f32) {
    let x = f64::from(x);
    for j in 0..W {
        num[j] += p[j] * x;
        den[j] += p[j];
    }
}

/// `W` types at once, the posterior rows as `[f64; W]` (as in [`squared_distances_fixed`]).
#[inline(always)]
fn column_sums_fixed<const W: usize>(
    users: &[u32],
    values: &[f32],
    posts: &[f64],
    num: &mut [f64],
    den: &mut [f64],
) {
    let (rows, _) = posts.as_chunks::<W>();
    let (mut n_acc, mut d_acc) = ([0.0f64; W], [0.0f64; W]);
    n_acc.copy_from_slice(num);
    d_acc.copy_from_slice(den);
    for (&u, &x) in users.iter().zip(values) {
        add_column(&mut n_acc, &mut d_acc, &rows[u as usize], x);
    }
    num.copy_from_slice(&n_acc);
    den.copy_from_slice(&d_acc);
}

#[inline(always)]
fn column_sums_any(users: &[u32], values: &[f32], posts: &[f64], num: &mut [f64], den: &mut [f64]) {
    let width = num.len();
    for (&u, &x) in users.iter().zip(values) {
        let x = f64::from(x);
        let p = &posts[u as usize * width..][..width];
        for j in 0..width {
            num[j] += p[j] * x;
            den[j] += p[j];
        }
    }
}
