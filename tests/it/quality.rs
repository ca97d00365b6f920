//! Prediction quality on ratings hidden from training (the honest measure of a recommender),
//! beside the baselines on the same split, on dense and on long-tailed sparse data.

use std::ops::ControlFlow;

use mixrec::data::{self, LoadOptions, Snapshot, Split};
use mixrec::eval::{self, MethodScore};
use mixrec::predictor::ModelKind;
use mixrec::select::{self, Spec};
use mixrec::synth::{SynthSpec, write_snapshot};

use crate::support::shared_data;

fn rmse_of(scores: &[MethodScore], name: &str) -> f64 {
    scores
        .iter()
        .find(|m| m.method == name)
        .unwrap_or_else(|| panic!("no {name} in {scores:?}"))
        .scores
        .rmse
}

/// The default (everything chosen inside training) and the tuned bias baseline on split seed 0.
fn default_and_bias(snap: &Snapshot) -> (f64, f64, Split) {
    let split = data::holdout(&snap.ratings, 0.1, 0);
    let bias = rmse_of(&eval::baselines(&split, snap.scale), "user+item bias");
    let spec = Spec::new(ModelKind::Mixture);
    let (default, _) = eval::model(&split, snap.scale, &spec, "default").unwrap();
    (default.scores.rmse, bias, split)
}

/// The synthetic long tail: 700 users × 9,000 items, 100,000 ratings, 8 planted types.
fn synthetic_long_tail() -> Snapshot {
    let spec = SynthSpec {
        users: 700,
        items: 9000,
        ratings: 100_000,
        types: 8,
        seed: 7,
    };
    let mut csv = Vec::new();
    write_snapshot(&spec, mixrec::synth::SynthFormat::Triples, &mut csv).unwrap();
    data::load_bytes(&csv, LoadOptions::default()).unwrap()
}

#[test]
fn the_default_beats_the_bias_baseline_by_a_tenth_on_a_synthetic_long_tail() {
    let snap = synthetic_long_tail();
    let (default, bias, _) = default_and_bias(&snap);
    // Measured: default 0.8777, tuned bias 0.9908 (ALS 0.8564; README, "Prediction quality").
    assert!(default < 0.99 * bias, "default {default} vs bias {bias}");
    assert!(default < 0.90, "default {default}");
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn the_default_beats_the_bias_baseline_on_netflix_ratings_thinned_to_a_long_tail() {
    let Some(dir) = shared_data() else { return };
    let path = dir.join("netflix_longtail.csv");
    let snap = data::load(&path, LoadOptions::default()).unwrap();
    let (default, bias, _) = default_and_bias(&snap);
    // Measured: default 0.8788, tuned bias 0.8932.
    assert!(default < 0.99 * bias, "default {default} vs bias {bias}");
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn the_default_beats_the_baselines_and_the_seed_on_held_out_netflix_ratings() {
    let Some(dir) = shared_data() else { return };
    let snap = data::load(&dir.join("netflix_incomplete.txt"), LoadOptions::default()).unwrap();
    let (default, bias, split) = default_and_bias(&snap);
    assert_eq!(split.test.len(), 111_177);
    let mut seed = Spec::new(ModelKind::Mixture);
    (seed.mixture, seed.k, seed.prior_strength) = (
        mixrec::mixture::FitParams::seed_preset(12).seed(1),
        Some(12),
        Some(0.0),
    );
    seed.holdout = 0.0;
    let (seed, _) = eval::model(&split, snap.scale, &seed, "seed").unwrap();
    let seed = seed.scores.rmse;
    // Measured: default 0.8113 (K = 16 chosen), seed 0.8732 (numpy's rows of seed 1),
    // tuned bias 0.8698.
    assert!(default <= 0.815, "default RMSE {default}");
    assert!(default < bias - 0.03, "default {default} vs bias {bias}");
    assert!(
        seed > bias,
        "the seed's configuration {seed} should not beat the bias baseline {bias}"
    );
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn the_low_rank_mixture_reaches_matrix_factorisation_on_netflix() {
    let Some(dir) = shared_data() else { return };
    let snap = data::load(&dir.join("netflix_incomplete.txt"), LoadOptions::default()).unwrap();
    let split = data::holdout(&snap.ratings, 0.1, 0);
    // The configuration the search chooses on this split's training ratings (README), fixed
    // here so the test trains once: K = 1, rank 20, λ = 20.
    let mut spec = Spec::new(ModelKind::Mfa);
    (spec.k, spec.rank, spec.prior_strength) = (Some(1), Some(20), Some(20.0));
    spec.ridge = Some(mixrec::mixture::Ridge {
        item: 0.5,
        user: 0.5,
    });
    spec.holdout = 0.0;
    let (mfa, _) = eval::model(&split, snap.scale, &spec, "mfa").unwrap();
    // Measured: 0.7618 (ALS MF, rank and λ tuned: 0.7604; Gaussian pLSA K = 24: 0.7892).
    assert!(
        mfa.scores.rmse <= 0.775,
        "low-rank mixture RMSE {}",
        mfa.scores.rmse
    );
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn the_low_rank_mixture_beats_als_on_the_netflix_long_tail() {
    let Some(dir) = shared_data() else { return };
    let snap = data::load(&dir.join("netflix_longtail.csv"), LoadOptions::default()).unwrap();
    let split = data::holdout(&snap.ratings, 0.1, 0);
    let als = eval::als(&split, snap.scale, 0).scores.rmse;
    let mut spec = Spec::new(ModelKind::Mfa);
    (spec.k, spec.rank) = (Some(1), Some(10));
    let (mfa, _) = eval::model(&split, snap.scale, &spec, "mfa").unwrap();
    // Measured: 0.8711 against ALS 0.8796 and the default mixture 0.8788.
    assert!(
        mfa.scores.rmse < als,
        "low-rank mixture {} vs ALS {als}",
        mfa.scores.rmse
    );
}

#[test]
fn one_type_over_centred_residuals_is_the_baseline() {
    let snap = synthetic_long_tail();
    let split = data::holdout(&snap.ratings, 0.1, 3);
    let ridge = mixrec::mixture::Ridge {
        item: 4.0,
        user: 8.0,
    };
    let biases = mixrec::mixture::Biases::fit(&split.train, ridge);
    for kind in [ModelKind::Mixture, ModelKind::Mfa] {
        let mut spec = Spec::new(kind);
        (spec.k, spec.prior_strength, spec.ridge, spec.rank) =
            (Some(1), Some(20.0), Some(ridge), Some(0));
        spec.holdout = 0.0;
        let model = select::train(&split.train, snap.scale, &spec, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap()
        .predictor;
        let mut worst = 0.0f64;
        for h in split.test.iter().step_by(7) {
            let (items, values) = split.train.row(h.user as usize);
            let profile: Vec<(u32, f64)> = items
                .iter()
                .zip(values)
                .map(|(&l, &x)| (l, f64::from(x)))
                .collect();
            let belief = model.posterior(&profile).unwrap();
            let ours = model.predict(&belief, h.item).rating;
            let base = snap.scale.clip(biases.predict(h.user as usize, h.item));
            worst = worst.max((ours - base).abs());
        }
        // Not bit for bit: the residuals are stored as f32, so their item sums are 0 to ~1e-7.
        assert!(
            worst < 1e-6,
            "{kind}: K = 1 differs from the baseline by {worst}"
        );
    }
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn the_choice_is_reproducible_for_a_seed() {
    let Some(dir) = shared_data() else { return };
    let snap = data::load(&dir.join("netflix_longtail.csv"), LoadOptions::default()).unwrap();
    let choose = |seed: u64| {
        let mut spec = Spec::new(ModelKind::Mixture);
        spec.split_seed = seed;
        select::choose(&snap.ratings, snap.scale, &spec, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap()
    };
    let (a, b) = (choose(5), choose(5));
    assert_eq!(a, b);
    let ridge = a.ridge.unwrap();
    assert!(
        mixrec::mixture::RIDGE_GRID.contains(&ridge.item),
        "{ridge:?}"
    );
    assert!(
        a.trials.iter().any(|t| t.k == 1),
        "K = 1 (the baseline) is always a candidate"
    );
    assert!(a.heldout_rmse.unwrap() <= a.baseline_rmse.unwrap(), "{a:?}");
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn a_profile_with_high_ratings_gets_a_positive_offset() {
    let Some(dir) = shared_data() else { return };
    let snap = data::load(&dir.join("netflix_incomplete.txt"), LoadOptions::default()).unwrap();
    let p = mixrec::mixture::FitParams::new(4)
        .check(snap.ratings.n_users())
        .unwrap();
    let (_, model) = mixrec::mixture::train(&snap.ratings, snap.scale, &p, &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    let global = model.baseline.as_ref().unwrap().global;
    let fives: Vec<(u32, f64)> = (0..30).map(|l| (l, 5.0)).collect();
    let ones: Vec<(u32, f64)> = (0..30).map(|l| (l, 1.0)).collect();
    let (hi, lo) = (
        model.posterior(&fives).unwrap(),
        model.posterior(&ones).unwrap(),
    );
    assert!(
        hi.offset > global + 0.5 && lo.offset < global - 0.5,
        "{} {} {global}",
        hi.offset,
        lo.offset
    );
    let (a, b) = (
        model.predict(&hi, 100).rating,
        model.predict(&lo, 100).rating,
    );
    assert!(
        a > b + 1.0,
        "a generous user's prediction {a} vs a harsh one's {b}"
    );
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn gaussian_plsa_beats_080_on_held_out_netflix_ratings() {
    let Some(dir) = shared_data() else { return };
    let snap = data::load(&dir.join("netflix_incomplete.txt"), LoadOptions::default()).unwrap();
    let split = data::holdout(&snap.ratings, 0.1, 0);
    let mut spec = Spec::new(ModelKind::Gpl);
    (spec.k, spec.holdout) = (Some(12), 0.0);
    let (gpl, _) = eval::model(&split, snap.scale, &spec, "gpl").unwrap();
    // Measured: see the README table.
    assert!(
        gpl.scores.rmse < 0.80,
        "Gaussian pLSA RMSE {}",
        gpl.scores.rmse
    );
}
