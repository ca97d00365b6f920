//! Onboarding: which unrated items to ask a user about, so that their answers tell the most
//! about which type they are.
//!
//! **The gain.** For a profile (empty for a new user) the model holds a posterior `w` over its
//! K types. Asking item l, the answer is a step s of the scale (whole stars, half stars where
//! the snapshot is on a half grid: [`gain::Steps`]), and type j answers with the probability
//! its Gaussian for l puts on the step's interval (the mass past either end of the scale on the
//! end steps). The expected information gain is the mutual information of type and answer,
//!
//! ```text
//! gain_l = H(w) − Σ_s P(s) H(w | s) = H(P(·)) − Σ_j w_j H(P(· | j)),   w_j | s ∝ w_j P(s | j)
//! ```
//!
//! in nats. What "type j's Gaussian" is depends on the kind ([`kinds`]):
//!
//! - **Mixture** and **low-rank mixture**: `w | s` is the exact Bayes update of the posterior
//!   the model holds, by the density its fold-in multiplies in (the low-rank mixture's with the
//!   type's taste integrated out: `N(m + w·ẑ_j, σ_j² + wᵀ S_j w)`). Conditioning on the answer
//!   also moves ẑ_j, but the gain over *types* needs only the types' likelihoods of it.
//! - **Gaussian pLSA** is an admixture: P(z|u) is fitted by maximum likelihood (fold-in EM),
//!   not a posterior. A few ratings fold in to nearly one type whatever they are (one rating
//!   converges to the vertex of the type that fits it best), so the fold-in's entropy says
//!   nothing about what is still unknown, least of all in the cold start, where this matters:
//!   after one answer every gain would be ~0. For the questions we read pLSA's types as a
//!   mixture instead: the user resembles one type z, a priori with the population's share of
//!   it (mean P(z|u)), and `P(z | profile) ∝ P(z) Π_i N(v_i; μ_iz, σ²_iz)` on the profile's
//!   normalised ratings: pLSA's own Gaussians, combined by Bayes' rule rather than by EM. The
//!   gain is exact Bayes over that posterior; the answers then fold in as pLSA does, and the
//!   reported `posterior` is the fold-in, as in every other answer.
//!
//! **Known items.** An answer only comes if the user knows the item. We take P(known) as the
//! item's rating share in the snapshot (raters / users) and score an item by
//! `gain × P(known)`: the expected gain of *asking*, with "I don't know this one" worth
//! nothing (the models do not model which items a user rates, so that answer moves no
//! posterior). An obscure polariser and a blockbuster that splits the types less compete on
//! what a question is expected to be worth. Ties (a k-means model, whose posterior is always
//! one type, gains nothing anywhere) go to the better-known item, then the lower index.
//!
//! **Speed.** An exact gain costs K (levels − 1) CDFs and K levels logarithms per item; its
//! upper bound ([`gain::gain_bound`]) costs what a prediction does. [`ask`] scores every item by
//! the bound, then works out exact gains from the top of the bound down until no bound left can
//! beat the n-th best exact score: the answer is the exact top n, for tens of exact gains.
//! Both run their exponentials and logarithms eight lanes at a time ([`lanes`]: one pass for an
//! item's K (levels − 1) CDFs, one for its K levels entropy terms, one for every item's bound):
//! libm's one-at-a-time calls were most of the route's own time.
//!
//! No web or async types here; the engine modules are read, never changed.

pub mod gain;
mod kinds;
mod lanes;

use crate::data::{RatingScale, Ratings};
use crate::predictor::{Belief, Predictor, Prepared};
use gain::{Scratch, Steps};
use kinds::View;

/// Exact gains worked out before the first cut, beyond the `n` asked for.
const FIRST_ROUND_EXTRA: usize = 8;
/// Slack on the bound for the rounding of the exact gain (nats).
const BOUND_SLACK: f64 = 1e-9;

/// What the catalogue says about asking: each item's rating share and the scale's steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Askable {
    /// Users who rated item l / users. (n_items,)
    pub known: Vec<f64>,
    /// The answers a user can give.
    pub steps: Steps,
}

impl Askable {
    /// The shares and steps of a ratings snapshot.
    pub fn new(ratings: &Ratings, scale: RatingScale) -> Self {
        let mut count = vec![0u64; ratings.n_items()];
        let (_, items, _) = ratings.parts();
        items.iter().for_each(|&l| count[l as usize] += 1);
        let users = ratings.n_users().max(1) as f64;
        Self {
            known: count.into_iter().map(|c| c as f64 / users).collect(),
            steps: Steps::of(ratings, scale),
        }
    }
}

/// One item worth asking about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Question {
    /// Item index.
    pub item: u32,
    /// Expected information gain about the type, nats.
    pub gain: f64,
    /// P(the user knows the item): its rating share.
    pub known: f64,
    /// `gain × known`, what the questions are ranked by.
    pub score: f64,
}

/// The `n` items outside `skip` with the highest `gain × known`, best first (ties: higher
/// `known`, then lower index). `belief` is `model`'s answer to `profile`; `askable` must
/// describe `model`'s catalogue.
pub fn ask(
    model: &Predictor,
    belief: &Belief,
    profile: &[(u32, f64)],
    askable: &Askable,
    n: usize,
    skip: &[u32],
) -> Vec<Question> {
    ask_prepared(model, &model.prepare(), belief, profile, askable, n, skip)
}

/// [`ask`] with what [`Predictor::prepare`] worked out for `model` (the mixture's means
/// type-major, read straight through for every item's moments): the same questions to the bit.
pub fn ask_prepared(
    model: &Predictor,
    prepared: &Prepared,
    belief: &Belief,
    profile: &[(u32, f64)],
    askable: &Askable,
    n: usize,
    skip: &[u32],
) -> Vec<Question> {
    let mut g = Gains::new(model, prepared, belief, profile, askable);
    let mut bounds: Vec<(f64, u32)> = Vec::with_capacity(model.n_items());
    match g.bounds.take() {
        // The mixture's bounds, worked out for every item in one pass. (One `bound` call an item
        // instead measured 7 % slower through the router: 54.5 against 51 µs.)
        Some(mut all) => {
            for (b, &known) in all.iter_mut().zip(&askable.known) {
                *b *= known;
            }
            return best_n_of(&all, skip, n, |l| g.question(l));
        }
        None => bounds.extend(
            crate::mixture::unskipped(model.n_items(), skip)
                .map(|l| (g.bound(l as usize) * askable.known[l as usize], l)),
        ),
    }
    best_n(bounds, n, |l| g.question(l))
}

/// Every item's question, in item order (for tests and for checking [`ask`]'s pruning).
pub fn ask_all(
    model: &Predictor,
    belief: &Belief,
    profile: &[(u32, f64)],
    askable: &Askable,
) -> Vec<Question> {
    let mut g = Gains::new(model, &model.prepare(), belief, profile, askable);
    (0..model.n_items() as u32).map(|l| g.question(l)).collect()
}

/// The ranking of questions: score, then `known`, then index.
fn order(a: &Question, b: &Question) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then(b.known.total_cmp(&a.known))
        .then(a.item.cmp(&b.item))
}

/// The exact top `n` of `exact` over the items of `bounds` (each with an upper bound of its
/// score): exact scores from the highest bound down, in rounds, until every bound left is at or
/// below the n-th best exact score found.
fn best_n(bounds: Vec<(f64, u32)>, n: usize, exact: impl FnMut(u32) -> Question) -> Vec<Question> {
    rounds(bounds, Vec::new(), n + FIRST_ROUND_EXTRA, n, exact)
}

/// [`best_n`] where every item's bound is at hand (`bounds[l]`, items in `skip` left out):
/// the first round's items are picked in one pass that compares eight bounds at once with the
/// lowest kept so far, and after it only the items whose bound still reaches the cut are
/// collected, again eight at a time. The same questions as [`best_n`], which builds every
/// item's pair and partitions them (together a sixth of a 20-rating onboarding's service
/// call, `perf` of `cargo bench --bench service`).
fn best_n_of(
    bounds: &[f64],
    skip: &[u32],
    n: usize,
    mut exact: impl FnMut(u32) -> Question,
) -> Vec<Question> {
    const GROUP: usize = 8;
    let take = n + FIRST_ROUND_EXTRA;
    // The `take` highest bounds outside `skip`, highest first (by `total_cmp`).
    let mut first: Vec<(f64, u32)> = Vec::with_capacity(take + 1);
    let mut skipped = crate::mixture::SkipWalk::new(skip);
    let mut offer = |b: f64, l: u32, first: &mut Vec<(f64, u32)>| {
        if (first.len() == take && b.total_cmp(&first[take - 1].0).is_le()) || skipped.holds(l) {
            return;
        }
        let at = first.partition_point(|&(c, _)| c.total_cmp(&b).is_ge());
        first.insert(at, (b, l));
        first.truncate(take);
    };
    let (groups, tail) = bounds.as_chunks::<GROUP>();
    for (g, group) in groups.iter().enumerate() {
        // A NaN compares false, so its group is looked at (`total_cmp` ranks it first).
        if first.len() == take {
            let low = first[take - 1].0;
            if group.iter().fold(true, |all, &b| all & (b <= low)) {
                continue;
            }
        }
        for (i, &b) in group.iter().enumerate() {
            offer(b, (g * GROUP + i) as u32, &mut first);
        }
    }
    let full = groups.len() * GROUP;
    for (i, &b) in tail.iter().enumerate() {
        offer(b, (full + i) as u32, &mut first);
    }
    let mut found: Vec<Question> = first.iter().map(|&(_, l)| exact(l)).collect();
    crate::mixture::top_n(&mut found, n, order);
    let Some(cut) = (n > 0 && found.len() == n).then(|| found[n - 1].score) else {
        // Fewer items than asked for: every one was worked out.
        return found;
    };
    // The rest: every other item outside `skip` whose bound could still reach the cut (a
    // bound equal to it could tie and win on `known` or index).
    let mut taken: Vec<u32> = first.iter().map(|&(_, l)| l).collect();
    taken.sort_unstable();
    let (mut taken, mut skipped) = (
        taken.into_iter().peekable(),
        crate::mixture::SkipWalk::new(skip),
    );
    let mut rest = Vec::new();
    // False for a NaN bound, as `best_n`'s `retain` drops it.
    let reaches = |b: f64| b + BOUND_SLACK >= cut;
    let mut keep = |b: f64, l: u32, rest: &mut Vec<(f64, u32)>| {
        if !reaches(b) {
            return;
        }
        while taken.next_if(|&t| t < l).is_some() {}
        if taken.peek() != Some(&l) && !skipped.holds(l) {
            rest.push((b, l));
        }
    };
    for (g, group) in groups.iter().enumerate() {
        if !group.iter().fold(false, |any, &b| any | reaches(b)) {
            continue;
        }
        for (i, &b) in group.iter().enumerate() {
            keep(b, (g * GROUP + i) as u32, &mut rest);
        }
    }
    for (i, &b) in tail.iter().enumerate() {
        keep(b, (full + i) as u32, &mut rest);
    }
    rounds(rest, found, 2 * take, n, exact)
}

/// [`best_n`]'s rounds from `found` (exact questions already worked out, their items not in
/// `bounds`) with `round` items in the next.
fn rounds(
    mut bounds: Vec<(f64, u32)>,
    mut found: Vec<Question>,
    mut round: usize,
    n: usize,
    mut exact: impl FnMut(u32) -> Question,
) -> Vec<Question> {
    while !bounds.is_empty() {
        let take = round.min(bounds.len());
        if take < bounds.len() {
            bounds.select_nth_unstable_by(take - 1, |a, b| b.0.total_cmp(&a.0));
        }
        found.extend(bounds.drain(..take).map(|(_, l)| exact(l)));
        crate::mixture::top_n(&mut found, n, order);
        let Some(cut) = (found.len() == n).then(|| found[n - 1].score) else {
            continue;
        };
        // A bound equal to the cut could still tie it and win on `known` or index: keep it.
        bounds.retain(|&(b, _)| b + BOUND_SLACK >= cut);
        round *= 2;
    }
    found
}

/// The per-request state of the gains: the view of the model, the posterior, buffers.
struct Gains<'a> {
    view: View<'a>,
    w: Vec<f64>,
    askable: &'a Askable,
    /// min(H(w), ln levels): no answer can tell more.
    cap: f64,
    floor: Option<f64>,
    /// The mixture's gain bound of every item (`View::mixture_bounds`); `None` for the other
    /// kinds.
    bounds: Option<Vec<f64>>,
    mean: Vec<f64>,
    var: Vec<f64>,
    sd: Vec<f64>,
    scratch: Scratch,
}

impl<'a> Gains<'a> {
    fn new(
        model: &'a Predictor,
        prepared: &Prepared,
        belief: &'a Belief,
        profile: &[(u32, f64)],
        askable: &'a Askable,
    ) -> Self {
        let view = View::new(model, belief, profile);
        let w: Vec<f64> = view.weights().unwrap_or(belief).to_vec();
        let k = w.len();
        let cap = gain::entropy(&w).min((askable.steps.levels as f64).ln());
        let floor = view
            .floor_is_constant()
            .then(|| view.log_var_floor(&w, &[]));
        let within = match &view {
            View::Mixture { var, .. } => w.iter().zip(var).map(|(w, v)| w * v).sum(),
            _ => 0.0,
        };
        let bounds = match floor {
            Some(floor) if cap > 0.0 => prepared
                .table()
                .and_then(|t| view.mixture_bounds(t, &w, within, floor, cap)),
            _ => None,
        };
        Self {
            view,
            w,
            askable,
            cap,
            floor,
            bounds,
            mean: vec![0.0; k],
            var: vec![0.0; k],
            sd: vec![0.0; k],
            scratch: Scratch::default(),
        }
    }

    /// An upper bound of item l's gain.
    fn bound(&mut self, l: usize) -> f64 {
        if self.cap <= 0.0 {
            return 0.0;
        }
        if let Some(bounds) = &self.bounds {
            return bounds[l];
        }
        self.view.fill(l, true, &mut self.mean, &mut self.var);
        let floor = match self.floor {
            Some(f) => f,
            None => self.view.log_var_floor(&self.w, &self.var),
        };
        gain::gain_bound(&self.w, &self.mean, &self.var, floor, self.cap)
    }

    /// Item l's exact gain, share and score.
    fn question(&mut self, l: u32) -> Question {
        let known = self.askable.known[l as usize];
        let gain = if self.cap <= 0.0 {
            0.0
        } else {
            self.view
                .fill(l as usize, false, &mut self.mean, &mut self.var);
            self.sd
                .iter_mut()
                .zip(&self.var)
                .for_each(|(s, v)| *s = v.sqrt());
            let steps = &self.askable.steps;
            gain::discrete_gain(&self.w, &self.mean, &self.sd, steps, &mut self.scratch)
        };
        Question {
            item: l,
            gain,
            known,
            score: gain * known,
        }
    }
}

#[cfg(test)]
mod tests;
