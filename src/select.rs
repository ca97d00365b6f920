//! Model selection inside training: the one path from a snapshot's ratings and a [`Spec`] to a
//! trained model, shared by the service and every CLI command.
//!
//! What the spec leaves open (K, the prior strength λ of the type means, the baseline's ridge
//! strengths) is chosen on a held-out share of the ratings it is given: the baseline first (a
//! coordinate search, milliseconds a fit), then λ at a starting K, then K at that λ, then λ
//! again at the chosen K. Every candidate is fitted on the rest and scored on the held-out
//! share exactly as a posted profile is answered ([`crate::score::score_model`]). The chosen
//! values then train on *all* the ratings, and the held-out RMSE of the chosen configuration is
//! what the model reports.
//!
//! Ties: the smallest K (and then the strongest λ) within [`HELDOUT_TIE`] of the
//! best RMSE wins: past a point the curve is flat to the split's noise, and a smaller, smoother
//! model is cheaper and steadier. K = 1 over centred residuals is the baseline itself, so a
//! search that includes it never does worse than the baseline on its own split.
//!
//! No web or async types here.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use crate::data::{self, RatingScale, Ratings, Split};
use crate::mfa::{self, MfaParams};
use crate::mixture::{self, Fit, FitError, FitParams, ParamsError, Progress, Ridge};
use crate::plsa::{self, PlsaParams};
use crate::predictor::{ModelKind, Predictor};
use crate::score;

/// The prior strengths λ the search tries for the mixture's type means (pseudo-users at the
/// baseline's prediction).
pub const PRIOR_GRID: [f64; 11] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0,
];
/// The Ks an automatic K is chosen from by default. 32, not 16: on the dense Netflix subset
/// the held-out curve still falls at K = 16 (chosen at the top of 1..=16 in every split), and
/// with 32 two of three splits choose 24 and 32 (test RMSE over split seeds 0, 1, 2: mean
/// 0.8152 → 0.8137); the sparse sets stop at K ≤ 12 either way (the same models, bit for bit).
pub const DEFAULT_K_RANGE: (usize, usize) = (1, 32);
/// Where the search starts: λ, and K (clamped into the range).
const START_PRIOR: f64 = 20.0;
const START_PRIOR_MFA: f64 = 10.0;
/// K the search starts at (the low-rank mixture starts at K = 1, matrix factorisation, and
/// grows types only where they pay).
const START_K: usize = 8;
/// The rank the low-rank mixture starts from, and the ranks it tries.
const START_RANK: usize = 5;
/// Ranks the search tries for the low-rank mixture.
pub const RANK_GRID: [usize; 6] = [1, 2, 5, 10, 20, 40];
/// Restarts of each trial fit, at most: ranking configurations needs less than the final fit.
const TRIAL_RESTARTS: usize = 2;
/// The K search stops once this many larger candidates in a row miss the best by more than
/// the tie band: the curve has turned.
const K_PATIENCE: usize = 2;
/// Restarts a final fit may grow to when its best restart leaves a type empty.
pub const MAX_RESTARTS: usize = 16;
/// A type holding less than this many users' worth of posterior weight is empty.
pub const EMPTY_TYPE_USERS: f64 = 0.5;

/// What to train and which of its settings to choose.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The model kind.
    pub kind: ModelKind,
    /// The mixture's parameters (its K, λ and ridge are overridden by the choice).
    pub mixture: FitParams,
    /// Gaussian pLSA's parameters (its K and α are overridden by the choice).
    pub plsa: PlsaParams,
    /// K, or `None` to choose it over `k_range`.
    pub k: Option<usize>,
    /// The Ks a choice may take, inclusive.
    pub k_range: (usize, usize),
    /// λ (pLSA: α), or `None` to choose it (mixtures) or keep pLSA's default.
    pub prior_strength: Option<f64>,
    /// The baseline's ridge strengths, or `None` to tune them (models with a baseline).
    pub ridge: Option<Ridge>,
    /// The low-rank mixture's rank r, or `None` to choose it from [`RANK_GRID`].
    pub rank: Option<usize>,
    /// How K is chosen: held-out RMSE, or BIC (mixtures trained by EM).
    pub criterion: Criterion,
    /// Share of the ratings held out to choose and to measure; 0 chooses nothing (open
    /// settings take their defaults: K = 8, λ = 20, the default ridge) and measures nothing.
    pub holdout: f64,
    /// Seed of the held-out split.
    pub split_seed: u64,
}

impl Spec {
    /// Everything open for `kind`: K over 1..=16, λ and the ridge chosen on a held-out 10 %
    /// (split seed 0), the engine's defaults for the rest.
    pub fn new(kind: ModelKind) -> Self {
        Self {
            kind,
            mixture: FitParams::new(1),
            plsa: PlsaParams::new(1),
            k: None,
            k_range: DEFAULT_K_RANGE,
            prior_strength: None,
            ridge: None,
            rank: None,
            criterion: Criterion::Heldout,
            holdout: 0.1,
            split_seed: 0,
        }
    }

    /// Whether anything is left to choose.
    pub fn chooses(&self) -> bool {
        self.k.is_none()
            || self.free_prior()
            || (self.uses_baseline() && self.ridge.is_none())
            || (self.kind == ModelKind::Mfa && self.rank.is_none())
    }

    /// Whether the model measures residuals from a baseline.
    fn uses_baseline(&self) -> bool {
        match self.kind {
            ModelKind::Mixture => self
                .mixture
                .clone()
                .check(usize::MAX)
                .map(|p| p.baseline())
                .unwrap_or(false),
            ModelKind::Mfa => true,
            ModelKind::Gpl => false,
        }
    }

    /// Whether λ is chosen (pLSA keeps its α unless given).
    fn free_prior(&self) -> bool {
        self.kind != ModelKind::Gpl && self.prior_strength.is_none()
    }

    /// Restarts asked for.
    fn n_init(&self) -> usize {
        self.mixture
            .clone()
            .check(usize::MAX)
            .map_or(1, |p| p.n_init())
    }
}

/// One configuration: what a trial or the final fit trains with.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Config {
    k: usize,
    lambda: f64,
    rank: usize,
    ridge: Option<Ridge>,
}

/// One configuration scored on the held-out share.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Trial {
    /// K.
    pub k: usize,
    /// λ (pLSA: α).
    pub prior_strength: f64,
    /// Rank r (the low-rank mixture; 0 otherwise).
    pub rank: usize,
    /// RMSE on the held-out ratings.
    pub heldout_rmse: f64,
    /// Log-likelihood of the fit (EM mixtures).
    pub log_likelihood: Option<f64>,
    /// Its BIC (EM mixtures).
    pub bic: Option<f64>,
}

/// What was chosen, and from what.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Chosen {
    /// K.
    pub k: usize,
    /// Whether K was chosen (else it was given).
    pub k_chosen: bool,
    /// λ (pLSA: α).
    pub prior_strength: f64,
    /// The baseline's ridge strengths (models with a baseline).
    pub ridge: Option<Ridge>,
    /// Rank r (the low-rank mixture; 0 otherwise).
    pub rank: usize,
    /// The held-out RMSE of the chosen configuration (`None` when nothing was held out).
    pub heldout_rmse: Option<f64>,
    /// The held-out RMSE of the baseline alone on the same split.
    pub baseline_rmse: Option<f64>,
    /// Every configuration tried, in the order tried.
    pub trials: Vec<Trial>,
    /// The chosen configuration's prediction of every held-out rating, in the order of the
    /// split's `test` (`data::holdout(ratings, holdout, split_seed)`): what lets a quality gate
    /// score another model on exactly these ratings without training this one again. Empty
    /// when nothing was held out.
    #[serde(skip)]
    pub heldout_predictions: Vec<f64>,
}

/// The figures of the final fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// EM: log-likelihood at the last E-step.
    pub log_likelihood: Option<f64>,
    /// k-means: cost.
    pub cost: Option<f64>,
    /// Iterations of the best restart.
    pub iterations: usize,
    /// Whether the stopping rule fired.
    pub converged: bool,
    /// Restarts of the final fit (more than asked when a type came out empty).
    pub n_init: usize,
}

/// A trained model with how it was chosen.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The model.
    pub predictor: Predictor,
    /// The choice.
    pub chosen: Chosen,
    /// The final fit's figures.
    pub figures: Figures,
    /// The final mixture fit (mixtures only), for callers that print it whole.
    pub fit: Option<Fit>,
}

/// Why no model came out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectError {
    /// Bad parameters.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// A fit failed or was cancelled.
    #[error(transparent)]
    Fit(#[from] FitError),
    /// Every K tried left a type empty, even with more restarts.
    #[error(
        "type {index} of the trained model is empty (weight {weight:.3e}, {users:.2} users' worth), \
         also with {restarts} restarts and at every smaller K tried; use a smaller K"
    )]
    EmptyType {
        /// The type.
        index: usize,
        /// Its weight.
        weight: f64,
        /// Weight × users.
        users: f64,
        /// Restarts of the last attempt.
        restarts: usize,
    },
}

/// The progress callback: sees every iteration of every fit, may cancel.
pub type OnIter<'a> = &'a mut dyn FnMut(&Progress) -> ControlFlow<()>;

/// Chooses what `spec` leaves open on a held-out share of `ratings`, then trains on all of them.
pub fn train(
    ratings: &Ratings,
    scale: RatingScale,
    spec: &Spec,
    on_iter: OnIter<'_>,
) -> Result<Trained, SelectError> {
    let chosen = choose(ratings, scale, spec, on_iter)?;
    final_fit(ratings, scale, spec, chosen, on_iter)
}

/// [`train`] on ratings it may let go of: while the choice runs on the held-out split (which
/// holds every rating, in two parts), the ratings themselves are dropped, then rejoined from
/// the split, the same arrays, for the final fit. At 100 M ratings that is 800 MB less
/// during the search. The same outcome as [`train`]; the ratings come back with it.
pub fn train_owned(
    ratings: Ratings,
    scale: RatingScale,
    spec: &Spec,
    on_iter: OnIter<'_>,
) -> (Result<Trained, SelectError>, Ratings) {
    if spec.holdout <= 0.0 {
        let trained = train(&ratings, scale, spec, on_iter);
        return (trained, ratings);
    }
    let split = data::holdout(&ratings, spec.holdout, spec.split_seed);
    drop(ratings);
    let chosen = choose_on(&split, scale, spec, on_iter);
    let ratings = split.rejoin();
    let trained = chosen.and_then(|c| final_fit(&ratings, scale, spec, c, on_iter));
    (trained, ratings)
}

/// The choice alone (see the module docs).
pub fn choose(
    ratings: &Ratings,
    scale: RatingScale,
    spec: &Spec,
    on_iter: OnIter<'_>,
) -> Result<Chosen, SelectError> {
    if spec.holdout <= 0.0 {
        return Ok(start(spec).1);
    }
    let split = data::holdout(ratings, spec.holdout, spec.split_seed);
    choose_on(&split, scale, spec, on_iter)
}

/// Where the choice starts: the configuration the search starts from, and the choice made
/// when nothing is held out (that configuration as it is).
fn start(spec: &Spec) -> (Config, Chosen) {
    let default_prior = match spec.kind {
        ModelKind::Mixture => START_PRIOR,
        ModelKind::Mfa => START_PRIOR_MFA,
        ModelKind::Gpl => spec.plsa.alpha,
    };
    let start = Config {
        k: spec.k.unwrap_or(
            match spec.kind {
                ModelKind::Mfa => 1,
                _ => START_K,
            }
            .clamp(spec.k_range.0, spec.k_range.1),
        ),
        lambda: spec.prior_strength.unwrap_or(default_prior),
        rank: match spec.kind {
            ModelKind::Mfa => spec.rank.unwrap_or(START_RANK),
            _ => 0,
        },
        ridge: spec.uses_baseline().then(|| spec.ridge.unwrap_or_default()),
    };
    let chosen = Chosen {
        k: start.k,
        k_chosen: false,
        prior_strength: start.lambda,
        ridge: start.ridge,
        rank: start.rank,
        heldout_rmse: None,
        baseline_rmse: None,
        trials: Vec::new(),
        heldout_predictions: Vec::new(),
    };
    (start, chosen)
}

/// The choice on a held-out `split`.
fn choose_on(
    split: &data::Split,
    scale: RatingScale,
    spec: &Spec,
    on_iter: OnIter<'_>,
) -> Result<Chosen, SelectError> {
    let (start, _) = start(spec);
    let (ridge, baseline_rmse) = match (spec.uses_baseline(), spec.ridge) {
        (false, _) => (None, None),
        (true, Some(r)) => {
            let b = mixture::Biases::fit(&split.train, r);
            (Some(r), Some(b.rmse(&split.test, scale)))
        }
        (true, None) => {
            let (r, rmse) = Ridge::tune(split, scale);
            (Some(r), Some(rmse))
        }
    };
    let mut search = Search {
        split,
        scale,
        spec,
        on_iter,
        trials: BTreeMap::new(),
        order: Vec::new(),
        predictions: BTreeMap::new(),
        residuals: mixture::Residuals::new(),
    };
    let best = search.run(Config { ridge, ..start })?;
    let heldout_predictions = match search.predictions.remove(&key(&best)) {
        Some(Kept::Ratings(r)) => r,
        Some(Kept::Model(m)) => score::predicted_ratings(split, &m),
        None => Vec::new(),
    };
    let t = search.trials[&key(&best)].clone();
    Ok(Chosen {
        k: best.k,
        k_chosen: spec.k.is_none(),
        prior_strength: best.lambda,
        ridge,
        rank: best.rank,
        heldout_rmse: Some(t.heldout_rmse),
        baseline_rmse,
        trials: search.order,
        heldout_predictions,
    })
}

/// The candidates for K in `range`: every K up to 4, then steps of about half again
/// (6, 8, 12, 16, 24, 32, ...), and the range's end.
pub fn k_candidates(range: (usize, usize)) -> Vec<usize> {
    let (lo, hi) = (range.0.max(1), range.1.max(range.0.max(1)));
    let mut ladder = vec![1, 2, 3, 4];
    let mut p = 4;
    while p < hi {
        ladder.extend([p * 3 / 2, p * 2]);
        p *= 2;
    }
    let mut ks: Vec<usize> = std::iter::once(lo)
        .chain(ladder.into_iter().filter(|&k| k > lo && k < hi))
        .chain(std::iter::once(hi))
        .collect();
    ks.dedup();
    ks
}

/// A walk down a valley: scores grid point `start` and its neighbours, then keeps stepping
/// toward the lower neighbour while the score falls. Returns every (index, score) it scored,
/// ascending by index. On a grid whose scores have one minimum (held-out error against a
/// regularisation strength, typically) it finds it with a few scores instead of all.
pub fn walk<E>(
    len: usize,
    start: usize,
    mut score: impl FnMut(usize) -> Result<f64, E>,
) -> Result<Vec<(usize, f64)>, E> {
    let mut seen: BTreeMap<usize, f64> = BTreeMap::new();
    let mut at = start.min(len.saturating_sub(1));
    seen.insert(at, score(at)?);
    loop {
        let mut next = None;
        for n in [at.checked_sub(1), (at + 1 < len).then_some(at + 1)]
            .into_iter()
            .flatten()
        {
            let v = match seen.get(&n) {
                Some(&v) => v,
                None => {
                    let v = score(n)?;
                    seen.insert(n, v);
                    v
                }
            };
            if v < seen[&at] && next.is_none_or(|(_, b)| v < b) {
                next = Some((n, v));
            }
        }
        match next {
            Some((n, _)) => at = n,
            None => return Ok(seen.into_iter().collect()),
        }
    }
}

fn key(c: &Config) -> (usize, u64, usize) {
    (c.k, c.lambda.to_bits(), c.rank)
}

/// A fitted model with its figures.
struct Fitted {
    predictor: Predictor,
    figures: Figures,
    fit: Option<Fit>,
    /// pLSA's own validation RMSE.
    validation_rmse: Option<f64>,
}

/// Trains configuration `c` on `ratings` with `n_init` restarts; a mixture over a baseline
/// takes it and its residuals from `residuals` (always given the same `ratings`).
fn fit_one(
    ratings: &Ratings,
    scale: RatingScale,
    spec: &Spec,
    c: Config,
    n_init: usize,
    residuals: &mut mixture::Residuals,
    on_iter: OnIter<'_>,
) -> Result<Fitted, SelectError> {
    let n = ratings.n_users();
    Ok(match spec.kind {
        ModelKind::Mixture => {
            let mut p = spec.mixture.clone().k(c.k).prior_strength(c.lambda);
            if let Some(r) = c.ridge {
                p = p.ridge(r);
            }
            let params = p.check(n)?.with_n_init(n_init);
            let (fit, model) = mixture::train_with(ratings, scale, &params, residuals, on_iter)?;
            let figures = Figures {
                log_likelihood: fit.log_likelihood,
                cost: fit.cost,
                iterations: fit.iterations,
                converged: fit.converged,
                n_init: params.n_init(),
            };
            Fitted {
                predictor: Predictor::Mixture(model),
                figures,
                fit: Some(fit),
                validation_rmse: None,
            }
        }
        ModelKind::Mfa => {
            let base = spec.mixture.clone().check(n)?;
            let p = MfaParams {
                prior_strength: c.lambda,
                ridge: c.ridge.unwrap_or_default(),
                n_init,
                seed: base.seed(),
                max_iter: base.max_iter().min(MfaParams::new(1, 1).max_iter),
                ..MfaParams::new(c.k, c.rank)
            };
            if c.k > n {
                return Err(FitError::TooFewUsers { k: c.k, users: n }.into());
            }
            let fit = mfa::fit(ratings, scale, &p, on_iter)?;
            let figures = Figures {
                log_likelihood: fit.history.last().copied(),
                cost: None,
                iterations: fit.iterations,
                converged: fit.converged,
                n_init,
            };
            Fitted {
                predictor: Predictor::Mfa(fit.model),
                figures,
                fit: None,
                validation_rmse: None,
            }
        }
        ModelKind::Gpl => {
            let p = PlsaParams {
                k: c.k,
                alpha: c.lambda,
                ..spec.plsa.clone()
            };
            let fit = plsa::fit_with(ratings, scale, &p, on_iter)?;
            let figures = Figures {
                log_likelihood: None,
                cost: None,
                iterations: fit.iterations,
                converged: fit.iterations < p.max_iter,
                n_init: 1,
            };
            Fitted {
                validation_rmse: Some(fit.validation_rmse[fit.best_iteration - 1]),
                predictor: Predictor::Gpl(fit.model),
                figures,
                fit: None,
            }
        }
    })
}

/// What a trial keeps for its held-out predictions: the predicted ratings, or the model that
/// makes them again (the same bits: a prediction is a function of the model and the split
/// alone), whichever takes less memory. At 100 M ratings the ratings are 80 MB a trial and a
/// mixture at K = 12 a few MB; over a catalogue of a million items a model can be the larger.
enum Kept {
    Ratings(Vec<f64>),
    Model(Box<Predictor>),
}

impl Kept {
    fn smaller(ratings: Vec<f64>, model: Predictor) -> Self {
        // Its parameters, and as much again for what is derived from them (the score table).
        let params: usize = model.encode().layout.arrays.iter().map(|a| a.1).sum();
        if 2 * params < ratings.len() {
            Self::Model(Box::new(model))
        } else {
            Self::Ratings(ratings)
        }
    }
}

/// The coordinate search's state: every trial so far, memoised.
struct Search<'a, 's> {
    split: &'a Split,
    scale: RatingScale,
    spec: &'a Spec,
    on_iter: OnIter<'s>,
    trials: BTreeMap<(usize, u64, usize), Trial>,
    order: Vec<Trial>,
    /// What each trial keeps of its held-out predictions until the choice is made; the
    /// chosen one's are returned.
    predictions: BTreeMap<(usize, u64, usize), Kept>,
    /// The training share's baseline and residuals, shared by every trial (one ridge).
    residuals: mixture::Residuals,
}

impl Search<'_, '_> {
    /// λ at the start (the low-rank mixture: the rank at the start λ first, then λ), then K,
    /// then λ again if K moved.
    fn run(&mut self, start: Config) -> Result<Config, SelectError> {
        let mut c = start;
        if self.spec.kind == ModelKind::Mfa && self.spec.rank.is_none() {
            c.rank = self.best_rank(c)?;
        }
        if self.spec.free_prior() {
            c.lambda = self.best_lambda(c)?;
        }
        if self.spec.k.is_none() {
            c.k = self.best_k(c)?;
        }
        if self.spec.free_prior() && c.k != start.k {
            c.lambda = self.best_lambda(c)?;
        }
        self.trial(c)?;
        Ok(c)
    }

    /// λ by a walk over [`PRIOR_GRID`] from the current λ (see [`walk`]); within the tie band,
    /// the strongest pull (the smoothest model) wins.
    fn best_lambda(&mut self, c: Config) -> Result<f64, SelectError> {
        let start = PRIOR_GRID
            .iter()
            .position(|&l| l >= c.lambda)
            .unwrap_or(PRIOR_GRID.len() - 1);
        let scored = walk(PRIOR_GRID.len(), start, |i| {
            Ok::<_, SelectError>(
                self.trial(Config {
                    lambda: PRIOR_GRID[i],
                    ..c
                })?
                .heldout_rmse,
            )
        })?;
        let best = scored.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
        let i = scored
            .iter()
            .filter(|s| s.1 <= best * (1.0 + HELDOUT_TIE))
            .map(|s| s.0)
            .max()
            .expect("a non-empty walk");
        Ok(PRIOR_GRID[i])
    }

    /// The rank up [`RANK_GRID`] at the current λ, until two ranks in a row miss the best; the
    /// smallest rank within the tie band wins. λ is walked afterwards, at the chosen rank: it
    /// pulls only the type means (each loading direction learns its own prior, see
    /// [`crate::mfa`]), so the best λ hardly moves with the rank (the synthetic long tail, K = 1,
    /// split seed 0: at each rank from 1 to 40 the λ the walk tried, 2 to 80, span at most 0.0021
    /// of inner held-out RMSE), and walking it at every rank cost four times the trials.
    fn best_rank(&mut self, c: Config) -> Result<usize, SelectError> {
        let mut scored: Vec<(usize, f64)> = Vec::new();
        let mut misses = 0;
        for &rank in &RANK_GRID {
            let rmse = self.trial(Config { rank, ..c })?.heldout_rmse;
            let best = scored.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
            misses = if rmse > best * (1.0 + HELDOUT_TIE) {
                misses + 1
            } else {
                0
            };
            scored.push((rank, rmse));
            if misses >= K_PATIENCE {
                break;
            }
        }
        let best = scored.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
        Ok(scored
            .iter()
            .find(|s| s.1 <= best * (1.0 + HELDOUT_TIE))
            .expect("at least one rank")
            .0)
    }

    fn best_k(&mut self, c: Config) -> Result<usize, SelectError> {
        let mut curve: Vec<Trial> = Vec::new();
        let mut misses = 0;
        for k in k_candidates(self.spec.k_range) {
            let t = self.trial(Config { k, ..c })?;
            let best = curve
                .iter()
                .map(|t| t.heldout_rmse)
                .fold(f64::INFINITY, f64::min);
            misses = if t.heldout_rmse > best * (1.0 + HELDOUT_TIE) {
                misses + 1
            } else {
                0
            };
            curve.push(t);
            if misses >= K_PATIENCE && self.spec.criterion == Criterion::Heldout {
                break;
            }
        }
        let points: Vec<KPoint> = curve
            .iter()
            .map(|t| KPoint {
                k: t.k,
                log_likelihood: t.log_likelihood,
                bic: t.bic,
                heldout_rmse: t.heldout_rmse,
            })
            .collect();
        Ok(pick(&points, self.spec.criterion).expect("at least one K"))
    }

    fn trial(&mut self, c: Config) -> Result<Trial, SelectError> {
        if let Some(t) = self.trials.get(&key(&c)) {
            return Ok(t.clone());
        }
        let train = &self.split.train;
        let n_init = self.spec.n_init().min(TRIAL_RESTARTS);
        let f = fit_one(
            train,
            self.scale,
            self.spec,
            c,
            n_init,
            &mut self.residuals,
            self.on_iter,
        )?;
        let predicted = score::predicted_ratings(self.split, &f.predictor);
        let mut next = predicted.iter();
        let heldout_rmse = score::score(&self.split.test, f.predictor.scale(), |_| {
            *next.next().expect("one prediction per rating")
        })
        .rmse;
        self.predictions
            .insert(key(&c), Kept::smaller(predicted, f.predictor));
        let (n, d) = (train.n_users(), train.n_items());
        let ll = f
            .figures
            .log_likelihood
            .filter(|_| self.spec.kind == ModelKind::Mixture);
        let t = Trial {
            k: c.k,
            prior_strength: c.lambda,
            rank: c.rank,
            heldout_rmse,
            log_likelihood: ll,
            bic: ll.map(|ll| mixture::bic(ll, c.k, d, n)),
        };
        tracing::debug!(
            k = c.k,
            lambda = c.lambda,
            rank = c.rank,
            heldout_rmse,
            "selection trial"
        );
        self.trials.insert(key(&c), t.clone());
        self.order.push(t.clone());
        Ok(t)
    }
}

/// The final model on all the ratings. A fit that leaves a type empty found a poor local
/// optimum for K types: twice the restarts (the same ones plus new ones) usually find a better
/// one, up to [`MAX_RESTARTS`]; past that the next smaller K tried (or, with K given, K − 1)
/// takes its place, and the choice records it.
fn final_fit(
    ratings: &Ratings,
    scale: RatingScale,
    spec: &Spec,
    mut chosen: Chosen,
    on_iter: OnIter<'_>,
) -> Result<Trained, SelectError> {
    let n = ratings.n_users();
    let restartable = spec.kind != ModelKind::Gpl
        && spec
            .mixture
            .clone()
            .check(usize::MAX)
            .is_ok_and(|p| p.restartable());
    let mut n_init = spec.n_init();
    // More restarts, or a smaller K, over the same baseline.
    let mut residuals = mixture::Residuals::new();
    loop {
        let c = Config {
            k: chosen.k,
            lambda: chosen.prior_strength,
            rank: chosen.rank,
            ridge: chosen.ridge,
        };
        let f = fit_one(ratings, scale, spec, c, n_init, &mut residuals, on_iter)?;
        let empty = (spec.kind != ModelKind::Gpl)
            .then(|| empty_type(&f.predictor, n))
            .flatten();
        let Some((index, weight)) = empty else {
            // pLSA always holds a validation share out: report it when nothing else was.
            chosen.heldout_rmse = chosen.heldout_rmse.or(f.validation_rmse);
            return Ok(Trained {
                predictor: f.predictor,
                chosen,
                figures: f.figures,
                fit: f.fit,
            });
        };
        if restartable && n_init < MAX_RESTARTS {
            n_init = (n_init * 2).min(MAX_RESTARTS);
            tracing::info!(
                n_init,
                index,
                weight,
                "a type came out empty: more restarts"
            );
            continue;
        }
        let smaller = chosen
            .trials
            .iter()
            .map(|t| t.k)
            .filter(|&k| k < chosen.k)
            .max()
            .or((chosen.k > 1).then(|| chosen.k - 1));
        let Some(k) = smaller else {
            return Err(SelectError::EmptyType {
                index,
                weight,
                users: weight * n as f64,
                restarts: n_init,
            });
        };
        tracing::info!(k, "a type came out empty at every restart: a smaller K");
        chosen.k = k;
        chosen.heldout_rmse = chosen
            .trials
            .iter()
            .find(|t| t.k == k && t.prior_strength == chosen.prior_strength)
            .map_or(chosen.heldout_rmse, |t| Some(t.heldout_rmse));
        n_init = spec.n_init();
    }
}

/// The first type holding less than [`EMPTY_TYPE_USERS`] users' worth of weight, and its weight.
pub fn empty_type(model: &Predictor, n_users: usize) -> Option<(usize, f64)> {
    (0..model.k())
        .map(|j| (j, model.type_weight(j)))
        .find(|&(_, w)| w * (n_users as f64) < EMPTY_TYPE_USERS)
}

/// One point of a K-selection curve.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KPoint {
    /// Number of types.
    pub k: usize,
    /// Log-likelihood of the training ratings (EM only).
    pub log_likelihood: Option<f64>,
    /// BIC of that fit (EM only).
    pub bic: Option<f64>,
    /// RMSE on the held-out ratings.
    pub heldout_rmse: f64,
}

/// How `--k auto` picks K from the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    /// Highest BIC.
    Bic,
    /// Lowest held-out RMSE.
    Heldout,
}

/// Held-out RMSEs within this relative distance of the best count as a tie, and the smallest
/// K among them wins: past a dozen types the curve is flat to the split's noise, and a smaller
/// model is cheaper and steadier.
pub const HELDOUT_TIE: f64 = 1e-3;

/// The K the criterion prefers: the highest BIC, or the smallest K whose held-out RMSE is
/// within [`HELDOUT_TIE`] of the lowest.
pub fn pick(curve: &[KPoint], criterion: Criterion) -> Option<usize> {
    match criterion {
        Criterion::Bic => {
            let bic = |p: &KPoint| p.bic.unwrap_or(f64::NEG_INFINITY);
            curve
                .iter()
                .max_by(|a, b| bic(a).total_cmp(&bic(b)).then(b.k.cmp(&a.k)))
                .map(|p| p.k)
        }
        Criterion::Heldout => {
            let best = curve
                .iter()
                .map(|p| p.heldout_rmse)
                .fold(f64::INFINITY, f64::min);
            let near = curve
                .iter()
                .filter(|p| p.heldout_rmse <= best * (1.0 + HELDOUT_TIE));
            near.map(|p| p.k).min()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trial_keeps_the_smaller_of_its_predictions_and_its_model_and_either_answers_alike() {
        // 400 users × 30 items in two tastes, three cells in four rated.
        let rows: Vec<Vec<f64>> = (0..400)
            .map(|u| {
                (0..30)
                    .map(|l| match (u * 7 + l * 3) % 4 {
                        0 => 0.0,
                        h => (1 + (u % 2) * 2 + (l + h) % 3) as f64,
                    })
                    .collect()
            })
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        let split = crate::data::holdout(&r, 0.2, 0);
        let scale = RatingScale { min: 1.0, max: 5.0 };
        let spec = Spec {
            k: Some(2),
            prior_strength: Some(10.0),
            ridge: Some(Ridge::default()),
            holdout: 0.0,
            ..Spec::new(ModelKind::Mixture)
        };
        let model = train(&split.train, scale, &spec, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap()
        .predictor;
        let predicted = score::predicted_ratings(&split, &model);
        assert!(predicted.len() > 1000);
        // Many held-out ratings, a small model: the model is kept, and answers the same bits.
        match Kept::smaller(predicted.clone(), model.clone()) {
            Kept::Model(m) => assert_eq!(score::predicted_ratings(&split, &m), predicted),
            Kept::Ratings(_) => panic!("a model of 2 types over 30 items is the smaller"),
        }
        // A few: they are kept as they are.
        let few = predicted[..10].to_vec();
        assert!(matches!(Kept::smaller(few.clone(), model), Kept::Ratings(r) if r == few));
    }

    #[test]
    fn training_on_owned_ratings_chooses_and_trains_the_same_and_gives_them_back() {
        let rows: Vec<Vec<f64>> = (0..300)
            .map(|u| {
                (0..24)
                    .map(|l| match (u * 5 + l * 3) % 4 {
                        0 => 0.0,
                        h => (1 + (u % 3) + (l + h) % 3) as f64,
                    })
                    .collect()
            })
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        let scale = RatingScale { min: 1.0, max: 5.0 };
        // A search over K and λ on a held-out share, then the final fit; and none held out.
        for holdout in [0.1, 0.0] {
            let spec = Spec {
                k_range: (1, 4),
                holdout,
                ..Spec::new(ModelKind::Mixture)
            };
            let go = &mut |_: &Progress| ControlFlow::Continue(());
            let borrowed = train(&r, scale, &spec, go).unwrap();
            let (owned, back) = train_owned(r.clone(), scale, &spec, go);
            let owned = owned.unwrap();
            assert_eq!(back, r);
            assert_eq!(
                format!("{owned:?}"),
                format!("{borrowed:?}"),
                "holdout {holdout}"
            );
            assert_eq!(owned.chosen.heldout_rmse.is_some(), holdout > 0.0);
        }
    }

    #[test]
    fn pick_prefers_the_smallest_k_within_the_tie_band() {
        let point = |k, rmse, bic| KPoint {
            k,
            log_likelihood: None,
            bic: Some(bic),
            heldout_rmse: rmse,
        };
        let curve = [
            point(2, 0.84, -10.0),
            point(4, 0.8149, -12.0),
            point(8, 0.8142, -20.0),
        ];
        assert_eq!(pick(&curve, Criterion::Heldout), Some(4));
        assert_eq!(pick(&curve, Criterion::Bic), Some(2));
        assert_eq!(pick(&[], Criterion::Heldout), None);
    }

    #[test]
    fn a_walk_finds_the_valley_without_scoring_everything() {
        let curve = [9.0, 7.0, 5.0, 4.0, 4.5, 6.0, 8.0, 9.0];
        let mut calls = 0;
        let seen = walk(curve.len(), 6, |i| {
            calls += 1;
            Ok::<_, ()>(curve[i])
        })
        .unwrap();
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 6, 7]
        );
        assert_eq!(calls, 6);
        let at_edge = walk(3, 0, |i| Ok::<_, ()>([1.0, 2.0, 3.0][i])).unwrap();
        assert_eq!(at_edge, vec![(0, 1.0), (1, 2.0)]);
    }

    #[test]
    fn k_candidates_thin_out_as_k_grows() {
        assert_eq!(k_candidates((1, 16)), vec![1, 2, 3, 4, 6, 8, 12, 16]);
        assert_eq!(
            k_candidates((1, 40)),
            vec![1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 40]
        );
        assert_eq!(k_candidates((5, 10)), vec![5, 6, 8, 10]);
        assert_eq!(k_candidates((3, 3)), vec![3]);
    }
}
