//! Cold start, simulated: new users from held-out users, interviewed by a questioning strategy,
//! scored after each number of answers.
//!
//! - **Users, not ratings, are split**: a seeded share of the users is held out whole; the model
//!   trains (choosing what the spec leaves open, as the service does) on the others, and the
//!   item shares of [`crate::onboard::Askable`] come from those others too.
//! - **An interview**: the strategy asks one item at a time from the whole catalogue, ranked by
//!   its own score. A user who rated the item answers with that rating; one who did not says "I
//!   don't know", which the strategy is told (the item is never asked again) but which counts as
//!   no answer and moves no posterior. This is what a person in front of the page does, so a
//!   strategy pays for asking about items nobody knows, as it would there; asking only among the
//!   user's rated items would tell every strategy which items the user knows for free.
//! - **Strategies**: `popular` asks in order of rating count; `random` in a seeded random order
//!   per user; `informative` asks [`crate::onboard::ask`]'s best item, recomputed after every
//!   answer (after an "I don't know" its ranking is unchanged, so it walks on down it).
//! - **Scoring**: after 0, 1, 3, 5 and N answers, the user's profile is the answers so far and
//!   every rating of the user that *no* strategy asked is predicted from it, as the service
//!   answers a posted profile. The same ratings for every strategy and every number of
//!   answers: curves that differ only by what was asked. RMSE and MAE are over all those
//!   ratings of all held-out users.
//!
//! No web or async types here.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;

use crate::data::{RatingScale, Ratings, RatingsBuilder};
use crate::onboard::{self, Askable};
use crate::predictor::{Predictor, Prepared};
use crate::select::{self, SelectError, Spec, Trained};

/// The numbers of answers a curve is scored at, besides N.
const CHECKPOINTS: [usize; 4] = [0, 1, 3, 5];
/// Questions the informative strategy ranks at once; it re-ranks after each answer anyway.
const BATCH: usize = 32;

/// What to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColdStartParams {
    /// N, the most answers a user gives.
    pub answers: usize,
    /// Share of the users held out as new users.
    pub user_share: f64,
    /// Seed of the user split and of the random strategy.
    pub seed: u64,
}

/// A questioning strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The items with the most ratings first.
    Popular,
    /// A seeded random order.
    Random,
    /// The highest expected information gain × rating share ([`onboard::ask`]).
    Informative,
}

/// The strategies, in table order.
pub const STRATEGIES: [Strategy; 3] = [Strategy::Popular, Strategy::Random, Strategy::Informative];

/// One strategy's scores at each checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Curve {
    /// The strategy.
    pub strategy: Strategy,
    /// RMSE after each checkpoint's answers.
    pub rmse: Vec<f64>,
    /// MAE after each checkpoint's answers.
    pub mae: Vec<f64>,
    /// Mean questions asked to get that many answers (all those asked, for a user who ran out).
    pub questions: Vec<f64>,
}

/// The simulation's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ColdStart {
    /// Numbers of answers scored at.
    pub checkpoints: Vec<usize>,
    /// Users held out.
    pub test_users: usize,
    /// Users trained on.
    pub train_users: usize,
    /// Ratings scored at each checkpoint.
    pub scored_ratings: usize,
    /// One curve per strategy, in [`STRATEGIES`] order.
    pub curves: Vec<Curve>,
}

/// One user's interview by one strategy: the answers, and the questions asked by each answer.
#[derive(Debug, Clone, Default, PartialEq)]
struct Interview {
    answers: Vec<(u32, f64)>,
    /// `asked[i]`: questions asked up to and including answer i.
    asked: Vec<usize>,
    /// Questions asked in all.
    total: usize,
}

/// Sums of one (strategy, checkpoint) cell.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Cell {
    sq: f64,
    abs: f64,
    n: usize,
    questions: f64,
}

/// What every interview reads.
struct Context<'a> {
    model: &'a Predictor,
    /// The model's tables for asking (built once, as serving does).
    prepared: Prepared,
    askable: &'a Askable,
    popular: Vec<u32>,
    answers: usize,
    seed: u64,
}

/// Trains on the users outside a seeded share, then interviews each held-out user with each
/// strategy (see the module docs).
pub fn run(
    ratings: &Ratings,
    scale: RatingScale,
    spec: &Spec,
    p: &ColdStartParams,
) -> Result<(ColdStart, Trained), SelectError> {
    let (train, test) = split_users(ratings, p.user_share, p.seed);
    let go = &mut |_: &_| std::ops::ControlFlow::Continue(());
    let trained = select::train(&train, scale, spec, go)?;
    let askable = Askable::new(&train, scale);
    let mut popular: Vec<u32> = (0..ratings.n_items() as u32).collect();
    popular.sort_by(|&a, &b| {
        let share = |l: u32| askable.known[l as usize];
        share(b).total_cmp(&share(a)).then(a.cmp(&b))
    });
    let ctx = Context {
        model: &trained.predictor,
        prepared: trained.predictor.prepare(),
        askable: &askable,
        popular,
        answers: p.answers,
        seed: p.seed,
    };
    let checkpoints = checkpoints(p.answers);
    let per_user: Vec<(Vec<Cell>, usize)> = test
        .par_iter()
        .map(|&u| user_cells(&ctx, ratings.row(u), u, &checkpoints))
        .collect();
    let result = ColdStart {
        curves: curves(&per_user, &checkpoints),
        scored_ratings: per_user.iter().map(|c| c.1).sum(),
        checkpoints,
        test_users: test.len(),
        train_users: train.n_users(),
    };
    Ok((result, trained))
}

/// 0, 1, 3, 5 and `n`, those up to `n`, ascending, each once.
pub fn checkpoints(n: usize) -> Vec<usize> {
    let mut c: Vec<usize> = CHECKPOINTS.iter().copied().filter(|&c| c <= n).collect();
    c.push(n);
    c.dedup();
    c
}

/// The ratings of the users outside a seeded `share`, and the held-out users (ascending).
fn split_users(ratings: &Ratings, share: f64, seed: u64) -> (Ratings, Vec<usize>) {
    let mut users: Vec<usize> = (0..ratings.n_users()).collect();
    users.shuffle(&mut Pcg64Mcg::seed_from_u64(seed));
    let held = (ratings.n_users() as f64 * share.clamp(0.0, 1.0)).round() as usize;
    let mut test = users[..held.min(users.len())].to_vec();
    test.sort_unstable();
    let mut b = RatingsBuilder::new(ratings.n_items());
    for u in (0..ratings.n_users()).filter(|u| test.binary_search(u).is_err()) {
        let (items, values) = ratings.row(u);
        items.iter().zip(values).for_each(|(&l, &x)| b.push(l, x));
        b.end_row();
    }
    (b.finish(), test)
}

/// One user's cells, strategy-major (checkpoints within), and the ratings scored.
fn user_cells(
    ctx: &Context<'_>,
    row: (&[u32], &[f32]),
    u: usize,
    checkpoints: &[usize],
) -> (Vec<Cell>, usize) {
    let interviews: Vec<Interview> = STRATEGIES
        .iter()
        .map(|&s| interview(ctx, s, row, u))
        .collect();
    let mut asked: Vec<u32> = interviews
        .iter()
        .flat_map(|i| i.answers.iter().map(|a| a.0))
        .collect();
    asked.sort_unstable();
    let scored: Vec<(u32, f64)> = row
        .0
        .iter()
        .zip(row.1)
        .filter(|(l, _)| asked.binary_search(l).is_err())
        .map(|(&l, &x)| (l, f64::from(x)))
        .collect();
    let cells = interviews
        .iter()
        .flat_map(|i| checkpoints.iter().map(|&c| cell(ctx.model, i, c, &scored)))
        .collect();
    (cells, scored.len())
}

/// The errors on `scored` after the first `c` answers of `i`.
fn cell(model: &Predictor, i: &Interview, c: usize, scored: &[(u32, f64)]) -> Cell {
    let given = &i.answers[..c.min(i.answers.len())];
    let belief = model.posterior(given).expect("answers are catalogue items");
    let scale = model.scale();
    let mut out = Cell {
        questions: match c {
            0 => 0.0,
            _ => i.asked.get(c - 1).copied().unwrap_or(i.total) as f64,
        },
        n: scored.len(),
        ..Cell::default()
    };
    for &(l, x) in scored {
        let err = scale.clip(model.predict(&belief, l).rating) - x;
        out.sq += err * err;
        out.abs += err.abs();
    }
    out
}

/// The user's rating of `l`, if any.
fn rating_of(row: (&[u32], &[f32]), l: u32) -> Option<f64> {
    row.0.binary_search(&l).ok().map(|i| f64::from(row.1[i]))
}

/// Interviews user `u` (ratings `row`) with `strategy` until N answers or nothing left to ask.
fn interview(ctx: &Context<'_>, strategy: Strategy, row: (&[u32], &[f32]), u: usize) -> Interview {
    let mut it = Interview::default();
    let mut hear = |it: &mut Interview, l: u32| {
        it.total += 1;
        if let Some(x) = rating_of(row, l) {
            it.answers.push((l, x));
            it.asked.push(it.total);
        }
        it.answers.len() == ctx.answers
    };
    match strategy {
        Strategy::Popular => {
            let _ = ctx.popular.iter().any(|&l| hear(&mut it, l));
        }
        Strategy::Random => {
            let mut order: Vec<u32> = (0..ctx.popular.len() as u32).collect();
            let seed = ctx.seed ^ (u as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            order.shuffle(&mut Pcg64Mcg::seed_from_u64(seed));
            let _ = order.iter().any(|&l| hear(&mut it, l));
        }
        Strategy::Informative => informative(ctx, &mut it, &mut hear),
    }
    it
}

/// The informative interview: the best question of [`onboard::ask`], re-ranked after every
/// answer; unknown items are excluded from then on.
fn informative(
    ctx: &Context<'_>,
    it: &mut Interview,
    hear: &mut impl FnMut(&mut Interview, u32) -> bool,
) {
    let mut skip: Vec<u32> = Vec::new();
    while it.answers.len() < ctx.answers {
        let belief = ctx
            .model
            .posterior(&it.answers)
            .expect("answers are catalogue items");
        let batch = onboard::ask_prepared(
            ctx.model,
            &ctx.prepared,
            &belief,
            &it.answers,
            ctx.askable,
            BATCH,
            &skip,
        );
        if batch.is_empty() {
            return;
        }
        let before = it.answers.len();
        for q in batch {
            skip.push(q.item);
            if hear(it, q.item) || it.answers.len() > before {
                break;
            }
        }
    }
}

/// Per strategy and checkpoint: RMSE, MAE and mean questions over the users' cells.
fn curves(per_user: &[(Vec<Cell>, usize)], checkpoints: &[usize]) -> Vec<Curve> {
    let users = per_user.len().max(1) as f64;
    STRATEGIES
        .iter()
        .enumerate()
        .map(|(s, &strategy)| {
            let cells: Vec<Cell> = (0..checkpoints.len())
                .map(|c| {
                    per_user.iter().fold(Cell::default(), |a, (cells, _)| {
                        let b = cells[s * checkpoints.len() + c];
                        Cell {
                            sq: a.sq + b.sq,
                            abs: a.abs + b.abs,
                            n: a.n + b.n,
                            questions: a.questions + b.questions,
                        }
                    })
                })
                .collect();
            let n = |c: &Cell| c.n.max(1) as f64;
            Curve {
                strategy,
                rmse: cells.iter().map(|c| (c.sq / n(c)).sqrt()).collect(),
                mae: cells.iter().map(|c| c.abs / n(c)).collect(),
                questions: cells.iter().map(|c| c.questions / users).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
