//! The information one answer carries about a user's type: the rating scale's steps, the
//! normal CDF, the discretised mutual information between type and answer, and a cheap upper
//! bound of it that lets [`super::ask`] skip most items.
//!
//! Pure arithmetic on slices: no model, web or async types here.

use super::lanes;
use crate::data::{RatingScale, Ratings};

/// Levels of a discretised scale, at most: a scale with more steps (0..100 in whole points) is
/// cut into [`EVEN_BINS`] even bins instead, since the cost of a gain grows with the levels.
pub const MAX_LEVELS: usize = 11;
/// Bins of a scale whose ratings sit on no half or whole grid (or on too fine a one).
pub const EVEN_BINS: usize = 10;
/// How close a rating must be to a grid point to count as on it (ratings are `f32`).
const GRID_TOLERANCE: f64 = 1e-4;
/// Types lighter than this are left out of a gain: they change it by less than
/// `w ln(1/w)` ≈ 2e-11 nats, and a sharp posterior has most of its K types down there.
pub const NEGLIGIBLE_WEIGHT: f64 = 1e-12;

/// The answers a user can give, as the cuts between neighbouring levels: answer s means a
/// rating in `(cuts[s − 1], cuts[s]]`, the first and last open-ended (the mass beyond the scale
/// goes to its end steps).
#[derive(Debug, Clone, PartialEq)]
pub struct Steps {
    /// The step between levels.
    pub step: f64,
    /// Number of levels (answers).
    pub levels: usize,
    /// The `levels − 1` cuts, ascending: midpoints between levels.
    pub cuts: Vec<f64>,
}

impl Steps {
    /// The steps of `ratings` on `scale`: whole stars if every rating is `min + whole`, else
    /// half stars if every one is `min + k/2`, else even bins.
    pub fn of(ratings: &Ratings, scale: RatingScale) -> Self {
        let (_, _, values) = ratings.parts();
        let on = |step: f64| {
            values.iter().all(|&x| {
                let k = (f64::from(x) - scale.min) / step;
                (k - k.round()).abs() < GRID_TOLERANCE
            })
        };
        [1.0, 0.5]
            .into_iter()
            .find(|&s| on(s))
            .and_then(|s| Self::grid(scale, s))
            .unwrap_or_else(|| Self::even(scale, EVEN_BINS))
    }

    /// Levels `min, min + step, ...` up to `max`, or `None` past [`MAX_LEVELS`] or below two.
    pub fn grid(scale: RatingScale, step: f64) -> Option<Self> {
        let intervals = ((scale.max - scale.min) / step + GRID_TOLERANCE).floor() as usize;
        if intervals == 0 || intervals + 1 > MAX_LEVELS {
            return None;
        }
        let cuts = (0..intervals)
            .map(|s| scale.min + (s as f64 + 0.5) * step)
            .collect();
        Some(Self {
            step,
            levels: intervals + 1,
            cuts,
        })
    }

    /// `bins` equal bins over the scale.
    pub fn even(scale: RatingScale, bins: usize) -> Self {
        let step = (scale.max - scale.min) / bins as f64;
        let cuts = (1..bins).map(|s| scale.min + s as f64 * step).collect();
        Self {
            step,
            levels: bins,
            cuts,
        }
    }
}

/// The standard normal CDF (see [`super::lanes`], which works out a whole item's at once).
pub fn phi(x: f64) -> f64 {
    lanes::phi_one(x)
}

/// `−Σ p ln p` of `p` (zeros contribute nothing).
#[inline]
pub fn entropy(p: &[f64]) -> f64 {
    -p.iter()
        .filter(|&&x| x > 0.0)
        .map(|&x| x * x.ln())
        .sum::<f64>()
}

/// Reused buffers of [`discrete_gain`].
#[derive(Debug, Default)]
pub struct Scratch {
    /// The types heavier than [`NEGLIGIBLE_WEIGHT`].
    live: Vec<usize>,
    /// Φ at every cut, one row of `levels − 1` a live type.
    cdf: Vec<f64>,
    /// P(answer | j), one row of `levels` a live type, then P(answer); then `p ln p` of each.
    p: Vec<f64>,
}

/// I(type; answer) in nats for one item: types weighted `w`, type j's rating
/// `N(mean[j], sd[j]²)`, the answer its step on `steps`.
///
/// ```text
/// P(s | j) = Φ((c_s − μ_j)/σ_j) − Φ((c_{s−1} − μ_j)/σ_j)      (c_0 = −∞, c_S = +∞)
/// I = H(posterior) − E_s H(posterior after s) = H(Σ_j w_j P(·|j)) − Σ_j w_j H(P(·|j))
/// ```
///
/// The second line is Bayes' rule, `w'_j ∝ w_j P(s | j)`, averaged over the answers: the
/// `ln w_j` terms cancel. Types below [`NEGLIGIBLE_WEIGHT`] are left out. Every Φ and every
/// logarithm of the item is worked out in one vector pass ([`super::lanes`]).
pub fn discrete_gain(w: &[f64], mean: &[f64], sd: &[f64], steps: &Steps, s: &mut Scratch) -> f64 {
    let levels = steps.levels;
    s.live.clear();
    s.live
        .extend((0..w.len()).filter(|&j| w[j] >= NEGLIGIBLE_WEIGHT));
    let total: f64 = s.live.iter().map(|&j| w[j]).sum();
    if levels < 2 || total <= 0.0 {
        return 0.0;
    }
    s.cdf.clear();
    for &j in &s.live {
        s.cdf
            .extend(steps.cuts.iter().map(|c| (c - mean[j]) / sd[j]));
    }
    lanes::phi_each(&mut s.cdf);
    s.p.clear();
    for row in s.cdf.chunks_exact(levels - 1) {
        let mut below = 0.0;
        for &at in row {
            s.p.push((at - below).max(0.0));
            below = at;
        }
        s.p.push((1.0 - below).max(0.0));
    }
    // P(answer) of the renormalised mixture (the weights kept sum to `total` ≤ 1).
    let types = s.p.len();
    s.p.resize(types + levels, 0.0);
    let (given, mix) = s.p.split_at_mut(types);
    for (&j, row) in s.live.iter().zip(given.chunks_exact(levels)) {
        mix.iter_mut().zip(row).for_each(|(m, p)| *m += w[j] * p);
    }
    mix.iter_mut().for_each(|m| *m /= total);
    lanes::x_ln_x_each(&mut s.p);
    let (given, mix) = s.p.split_at(types);
    let within: f64 = s
        .live
        .iter()
        .zip(given.chunks_exact(levels))
        .map(|(&j, row)| w[j] * -row.iter().sum::<f64>())
        .sum();
    (-mix.iter().sum::<f64>() - within / total).max(0.0)
}

/// An upper bound of [`discrete_gain`] from the first two moments alone, O(K) and one `ln`:
///
/// ```text
/// I(type; step) ≤ I(type; rating) = h(rating) − Σ_j w_j h(N(μ_j, v_j))
///               ≤ ½ ln(2πe V) − ½ Σ_j w_j ln(2πe v_j) = ½ (ln V − Σ_j w_j ln v_j)
/// ```
///
/// (data processing, then the normal's maximum entropy for the mixture's variance
/// `V = Σ_j w_j (v_j + μ_j²) − (Σ_j w_j μ_j)²`); also at most `cap` (the posterior's entropy,
/// and the entropy of the levels). `log_var_floor` must not exceed `Σ_j w_j ln v_j`.
pub fn gain_bound(w: &[f64], mean: &[f64], var: &[f64], log_var_floor: f64, cap: f64) -> f64 {
    let (mut m1, mut m2) = (0.0, 0.0);
    for j in 0..w.len() {
        m1 += w[j] * mean[j];
        m2 += w[j] * (var[j] + mean[j] * mean[j]);
    }
    let mut bound = [m2 - m1 * m1];
    bounds_of_spreads(&mut bound, &[m2], log_var_floor, cap);
    bound[0]
}

/// The bounds of [`gain_bound`] of many items at once: `spread[l]` is item l's mixture
/// variance m2 − m1² on entry (all types' variances sharing the floor `log_var_floor`), its
/// bound on exit; `m2[l]` the second moment it was computed from.
pub fn bounds_of_spreads(spread: &mut [f64], m2: &[f64], log_var_floor: f64, cap: f64) {
    // Rounding in m2 − m1² is relative to m2: widen by that much so the bound stays a bound.
    spread
        .iter_mut()
        .zip(m2)
        .for_each(|(v, m2)| *v = v.max(f64::MIN_POSITIVE) + 4.0 * f64::EPSILON * m2.abs());
    lanes::ln_each(spread);
    spread
        .iter_mut()
        .for_each(|b| *b = (0.5 * (*b - log_var_floor)).clamp(0.0, cap));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::RatingsBuilder;

    const STARS: RatingScale = RatingScale { min: 1.0, max: 5.0 };

    fn ratings(values: &[f32]) -> Ratings {
        let mut b = RatingsBuilder::new(values.len());
        for (l, &x) in values.iter().enumerate() {
            b.push(l as u32, x);
        }
        b.end_row();
        b.finish()
    }

    #[test]
    fn steps_follow_the_snapshots_grid() {
        let whole = Steps::of(&ratings(&[1.0, 3.0, 5.0]), STARS);
        assert_eq!((whole.step, whole.levels), (1.0, 5));
        assert_eq!(whole.cuts, vec![1.5, 2.5, 3.5, 4.5]);
        let half = Steps::of(&ratings(&[1.0, 3.5, 5.0]), STARS);
        assert_eq!((half.step, half.levels), (0.5, 9));
        assert_eq!(half.cuts[0], 1.25);
        // Three decimals: no grid, ten even bins of 0.4.
        let odd = Steps::of(&ratings(&[1.234, 5.0]), STARS);
        assert_eq!(odd.levels, 10);
        assert!((odd.cuts[0] - 1.4).abs() < 1e-12);
        // 0..100 in whole points: 101 levels would be too many.
        let wide = RatingScale {
            min: 0.0,
            max: 100.0,
        };
        assert_eq!(Steps::of(&ratings(&[0.0, 7.0]), wide).levels, EVEN_BINS);
    }

    #[test]
    fn phi_matches_tabulated_values() {
        // Φ(0) = ½, Φ(0.5) = 0.691462461, Φ(−1.96) = 0.024997895 (standard tables).
        assert!((phi(0.0) - 0.5).abs() < 1e-7);
        assert!((phi(0.5) - 0.691_462_461).abs() < 1e-7);
        assert!((phi(-1.96) - 0.024_997_895).abs() < 1e-8);
        assert!(phi(-40.0) >= 0.0 && phi(40.0) <= 1.0);
    }

    #[test]
    fn two_types_split_by_a_cut_give_half_a_bit() {
        // Levels 1, 2, 3. Type 0 sits on the cut 1.5, type 1 on 2.5, both nearly exact:
        // P(·|0) = (½, ½, 0), P(·|1) = (0, ½, ½), P(·) = (¼, ½, ¼).
        // I = H(¼, ½, ¼) − ln 2 = 1.5 ln 2 − ln 2 = ½ ln 2.
        let steps = Steps::grid(RatingScale { min: 1.0, max: 3.0 }, 1.0).unwrap();
        let g = discrete_gain(
            &[0.5, 0.5],
            &[1.5, 2.5],
            &[1e-4, 1e-4],
            &steps,
            &mut Scratch::default(),
        );
        assert!((g - 0.5 * 2f64.ln()).abs() < 1e-6, "{g}");
    }

    #[test]
    fn equal_types_tell_nothing_and_separate_ones_tell_the_entropy() {
        let steps = Steps::grid(STARS, 1.0).unwrap();
        let s = &mut Scratch::default();
        let w = [0.3, 0.7];
        assert!(discrete_gain(&w, &[3.0, 3.0], &[0.8, 0.8], &steps, s).abs() < 1e-12);
        let all = discrete_gain(&w, &[1.0, 5.0], &[0.05, 0.05], &steps, s);
        assert!((all - entropy(&w)).abs() < 1e-6, "{all}");
    }

    #[test]
    fn the_bound_is_above_the_gain() {
        let steps = Steps::grid(STARS, 1.0).unwrap();
        let s = &mut Scratch::default();
        let w = [0.2, 0.5, 0.3];
        let var: [f64; 3] = [0.6, 0.9, 0.4];
        let floor: f64 = w.iter().zip(&var).map(|(w, v)| w * v.ln()).sum();
        for shift in [0.0, 0.3, 0.8, 1.5, 3.0] {
            let mean = [3.0 - shift, 3.0, 3.0 + shift / 2.0];
            let sd: Vec<f64> = var.iter().map(|v| v.sqrt()).collect();
            let g = discrete_gain(&w, &mean, &sd, &steps, s);
            let b = gain_bound(&w, &mean, &var, floor, entropy(&w));
            assert!(
                g <= b + 1e-9 && g >= 0.0,
                "shift {shift}: gain {g} bound {b}"
            );
        }
    }
}
