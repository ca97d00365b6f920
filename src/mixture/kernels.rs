//! The inner loops of training: per-rating sums over the K types of one user (E-step) or one
//! item (M-step), in versions for the common widths whose running sums live in registers.
//!
//! With a runtime width the sums round-trip through memory on every rating, a store-to-load
//! chain that cost more than the arithmetic (perf annotate).
//!
//! Every rating gathers one row of a table (the item's means, the user's posteriors). Where the
//! table is past a core's L2 ([`Gather::Far`]) the fixed-width loops ask for the row
//! [`AHEAD`] ratings on as they go (a prefetch: no value changes, so neither do the bits).
//! Measured on a 2-core Zen 4, both ways alternating in one process: an iteration on the 10 M
//! synthetic snapshot 0.84–0.87 of the time without (fastest of 40), on the 100 M one 0.86;
//! 8 ahead did as well as 16, 32 less. On the Netflix subset, whose 115 KB tables sit in L2, a
//! build that asked ahead everywhere made the iteration 1.16–1.45× slower (two runs of
//! `cargo bench --bench engine -- roofline` alternated with the build before), hence the choice
//! by size.
//!
//! No web or async types here.

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

/// How far ahead a gathering loop asks for a row, in ratings.
const AHEAD: usize = 16;
/// Tables larger than this are [`Gather::Far`]: a core's L2 on the machines measured (Zen 4,
/// 1 MiB).
const FAR_FROM_BYTES: usize = 1 << 20;

/// Where the rows a loop gathers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gather {
    /// A table that fits a core's L2: plain loads.
    Near,
    /// A larger one: each row asked for [`AHEAD`] ratings before it is read.
    Far,
}

impl Gather {
    /// The kind of gather from a table of `len` f64s.
    pub(crate) fn of(len: usize) -> Self {
        if len * size_of::<f64>() > FAR_FROM_BYTES {
            Gather::Far
        } else {
            Gather::Near
        }
    }
}

/// A hint that the row at `rows[i]` is read soon. No effect on any value, and no access: an
/// index past the end asks for nothing that is read.
#[inline(always)]
fn prefetch<T>(rows: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let at = rows.as_ptr().wrapping_add(i).cast::<i8>();
        // SAFETY: SSE is in x86-64's baseline; a prefetch never faults, whatever the address,
        // and reads nothing the program sees.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(at)
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (rows, i);
}

/// The indices `A` on from each of the first `len − A` of `idx` (none when `A` is 0): what a
/// loop prefetches as it goes; the last `A` run without.
#[inline(always)]
fn ahead_of<const A: usize>(idx: &[u32]) -> &[u32] {
    if A > 0 {
        idx.get(A..).unwrap_or(&[])
    } else {
        &[]
    }
}

/// `sq[j] = Σ_{l ∈ items} (x_l − mu_jl)²`. `means` is item-major with rows of `sq.len()`
/// entries.
#[inline(always)]
pub(crate) fn squared_distances(
    items: &[u32],
    values: &[f32],
    means: &[f64],
    gather: Gather,
    sq: &mut [f64],
) {
    match (sq.len(), gather) {
        (4, Gather::Near) => squared_distances_fixed::<4, 0>(items, values, means, sq),
        (8, Gather::Near) => squared_distances_fixed::<8, 0>(items, values, means, sq),
        (12, Gather::Near) => squared_distances_fixed::<12, 0>(items, values, means, sq),
        (16, Gather::Near) => squared_distances_fixed::<16, 0>(items, values, means, sq),
        (4, Gather::Far) => squared_distances_fixed::<4, AHEAD>(items, values, means, sq),
        (8, Gather::Far) => squared_distances_fixed::<8, AHEAD>(items, values, means, sq),
        (12, Gather::Far) => squared_distances_fixed::<12, AHEAD>(items, values, means, sq),
        (16, Gather::Far) => squared_distances_fixed::<16, AHEAD>(items, values, means, sq),
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
/// rows the vectoriser lays out in registers); with `A > 0`, each row asked for `A` ratings
/// ahead.
#[inline(always)]
fn squared_distances_fixed<const W: usize, const A: usize>(
    items: &[u32],
    values: &[f32],
    means: &[f64],
    sq: &mut [f64],
) {
    let (rows, _) = means.as_chunks::<W>();
    let mut acc = [0.0f64; W];
    let ahead = ahead_of::<A>(items);
    let n = ahead.len();
    for ((&l, &x), &next) in items.iter().zip(values).zip(ahead) {
        prefetch(rows, next as usize);
        add_squares(&mut acc, &rows[l as usize], x);
    }
    for (&l, &x) in items[n..].iter().zip(&values[n..]) {
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
    gather: Gather,
    num: &mut [f64],
    den: &mut [f64],
) {
    match (num.len(), gather) {
        (4, Gather::Near) => column_sums_fixed::<4, 0>(users, values, posts, num, den),
        (8, Gather::Near) => column_sums_fixed::<8, 0>(users, values, posts, num, den),
        (12, Gather::Near) => column_sums_fixed::<12, 0>(users, values, posts, num, den),
        (16, Gather::Near) => column_sums_fixed::<16, 0>(users, values, posts, num, den),
        (4, Gather::Far) => column_sums_fixed::<4, AHEAD>(users, values, posts, num, den),
        (8, Gather::Far) => column_sums_fixed::<8, AHEAD>(users, values, posts, num, den),
        (12, Gather::Far) => column_sums_fixed::<12, AHEAD>(users, values, posts, num, den),
        (16, Gather::Far) => column_sums_fixed::<16, AHEAD>(users, values, posts, num, den),
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
fn column_sums_fixed<const W: usize, const A: usize>(
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
    let ahead = ahead_of::<A>(users);
    let n = ahead.len();
    for ((&u, &x), &next) in users.iter().zip(values).zip(ahead) {
        prefetch(rows, next as usize);
        add_column(&mut n_acc, &mut d_acc, &rows[u as usize], x);
    }
    for (&u, &x) in users[n..].iter().zip(&values[n..]) {
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

/// `acc[2l][j] += post_j x_l` and `acc[2l + 1][j] += post_j` for each of one user's (item,
/// rating) pairs: the item sums of [`column_sums`] from the user's side, into a table whose
/// item rows of `post.len()` sums come in pairs (the `num` row, then the `den` row), so one
/// rating's two rows share their cache lines. Fixed widths keep the posterior in registers.
#[inline(always)]
pub(crate) fn scatter_sums(items: &[u32], values: &[f32], post: &[f64], acc: &mut [f64]) {
    match (post.len(), Gather::of(acc.len())) {
        (4, Gather::Near) => scatter_sums_fixed::<4, 0>(items, values, post, acc),
        (8, Gather::Near) => scatter_sums_fixed::<8, 0>(items, values, post, acc),
        (12, Gather::Near) => scatter_sums_fixed::<12, 0>(items, values, post, acc),
        (16, Gather::Near) => scatter_sums_fixed::<16, 0>(items, values, post, acc),
        (4, Gather::Far) => scatter_sums_fixed::<4, AHEAD>(items, values, post, acc),
        (8, Gather::Far) => scatter_sums_fixed::<8, AHEAD>(items, values, post, acc),
        (12, Gather::Far) => scatter_sums_fixed::<12, AHEAD>(items, values, post, acc),
        (16, Gather::Far) => scatter_sums_fixed::<16, AHEAD>(items, values, post, acc),
        _ => scatter_sums_any(items, values, post, acc),
    }
}

/// One rating's share of [`scatter_sums`].
#[inline(always)]
fn add_scattered<const W: usize>(rows: &mut [[f64; W]], l: u32, p: &[f64; W], x: f32) {
    let x = f64::from(x);
    let (num, den) = rows[2 * l as usize..][..2].split_at_mut(1);
    let (num, den) = (&mut num[0], &mut den[0]);
    for j in 0..W {
        num[j] += p[j] * x;
        den[j] += p[j];
    }
}

/// `W` types at once, the posterior in registers; with `A > 0`, each item's pair of rows asked
/// for `A` ratings ahead.
#[inline(always)]
fn scatter_sums_fixed<const W: usize, const A: usize>(
    items: &[u32],
    values: &[f32],
    post: &[f64],
    acc: &mut [f64],
) {
    let p: &[f64; W] = post.try_into().expect("a row of W");
    let (rows, _) = acc.as_chunks_mut::<W>();
    let ahead = ahead_of::<A>(items);
    let n = ahead.len();
    for ((&l, &x), &next) in items.iter().zip(values).zip(ahead) {
        prefetch(rows, 2 * next as usize);
        add_scattered(rows, l, p, x);
    }
    for (&l, &x) in items[n..].iter().zip(&values[n..]) {
        add_scattered(rows, l, p, x);
    }
}

#[inline(always)]
fn scatter_sums_any(items: &[u32], values: &[f32], post: &[f64], acc: &mut [f64]) {
    let w = post.len();
    for (&l, &x) in items.iter().zip(values) {
        let x = f64::from(x);
        let (num, den) = acc[2 * l as usize * w..][..2 * w].split_at_mut(w);
        for j in 0..w {
            num[j] += post[j] * x;
            den[j] += post[j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_for_rows_ahead_changes_no_bit() {
        let d = 50;
        // Runs shorter than, as long as and longer than AHEAD, with indices to the table's end.
        for len in [0, 3, AHEAD - 1, AHEAD, AHEAD + 1, 3 * AHEAD + 5] {
            let idx: Vec<u32> = (0..len).map(|i| ((i * 37 + 11) % d) as u32).collect();
            let values: Vec<f32> = (0..len).map(|i| (i % 9) as f32 * 0.5 - 1.0).collect();
            for w in [4, 8, 12, 16] {
                let table: Vec<f64> = (0..d * w).map(|i| ((i * 13) % 17) as f64 / 7.0).collect();
                let mut near = vec![0.0; w];
                let mut far = vec![0.0; w];
                squared_distances(&idx, &values, &table, Gather::Near, &mut near);
                squared_distances(&idx, &values, &table, Gather::Far, &mut far);
                assert_eq!(near, far, "squared distances, len {len}, width {w}");
                assert!(len == 0 || near.iter().any(|&s| s > 0.0));
                let (mut num_n, mut den_n) = (vec![0.5; w], vec![0.25; w]);
                let (mut num_f, mut den_f) = (num_n.clone(), den_n.clone());
                column_sums(&idx, &values, &table, Gather::Near, &mut num_n, &mut den_n);
                column_sums(&idx, &values, &table, Gather::Far, &mut num_f, &mut den_f);
                assert_eq!(
                    (num_n, den_n),
                    (num_f, den_f),
                    "column sums, len {len}, width {w}"
                );
                // The scatter, its item rows asked for ahead or not (distinct items, as a
                // user's are).
                let items: Vec<u32> = (0..len.min(d))
                    .map(|i| ((i * 37 + 11) % d) as u32)
                    .collect();
                let post = &table[..w];
                let (mut near, mut far) = (vec![0.25; d * 2 * w], vec![0.25; d * 2 * w]);
                let v = &values[..items.len()];
                match w {
                    4 => {
                        scatter_sums_fixed::<4, 0>(&items, v, post, &mut near);
                        scatter_sums_fixed::<4, AHEAD>(&items, v, post, &mut far);
                    }
                    8 => {
                        scatter_sums_fixed::<8, 0>(&items, v, post, &mut near);
                        scatter_sums_fixed::<8, AHEAD>(&items, v, post, &mut far);
                    }
                    12 => {
                        scatter_sums_fixed::<12, 0>(&items, v, post, &mut near);
                        scatter_sums_fixed::<12, AHEAD>(&items, v, post, &mut far);
                    }
                    _ => {
                        scatter_sums_fixed::<16, 0>(&items, v, post, &mut near);
                        scatter_sums_fixed::<16, AHEAD>(&items, v, post, &mut far);
                    }
                }
                assert_eq!(near, far, "scattered sums, len {len}, width {w}");
                let mut any = vec![0.25; d * 2 * w];
                scatter_sums_any(&items, v, post, &mut any);
                assert_eq!(
                    near, any,
                    "scattered sums at a runtime width, len {len}, width {w}"
                );
            }
        }
        assert_eq!(Gather::of(1000), Gather::Near);
        assert_eq!(Gather::of(FAR_FROM_BYTES / 8 + 1), Gather::Far);
    }
}
