//! Prediction quality on ratings hidden from training (the honest measure of a recommender).

use mixrec::data::{self, LoadOptions};
use mixrec::eval;
use mixrec::mixture::FitParams;

use crate::support::shared_data;

#[test]
fn the_default_beats_the_baselines_and_the_seed_on_held_out_netflix_ratings() {
    let Some(dir) = shared_data() else { return };
    let snap = data::load(&dir.join("netflix_incomplete.txt"), LoadOptions::default()).unwrap();
    let split = data::holdout(&snap.ratings, 0.1, 0);
    assert_eq!(split.test.len(), 111_177);
    let base = eval::baselines(&split, snap.scale);
    let bias = base
        .iter()
        .find(|m| m.method == "user+item bias")
        .unwrap()
        .scores
        .rmse;
    let n = split.train.n_users();
    let default = eval::mixture(&split, snap.scale, &FitParams::new(12).check(n).unwrap()).unwrap();
    let seed = eval::mixture(
        &split,
        snap.scale,
        &FitParams::seed_preset(12).seed(1).check(n).unwrap(),
    )
    .unwrap();
    let (default, seed) = (default.scores.rmse, seed.scores.rmse);
    // Measured: default 0.8149, seed 0.8732 (numpy's rows of seed 1), bias 0.8699.
    assert!(default < 0.83, "default RMSE {default}");
    assert!(default < bias - 0.03, "default {default} vs bias {bias}");
    assert!(
        seed > bias,
        "the seed's configuration {seed} should not beat the bias baseline {bias}"
    );
}

#[test]
fn a_profile_with_high_ratings_gets_a_positive_offset() {
    let Some(dir) = shared_data() else { return };
    let snap = data::load(&dir.join("netflix_incomplete.txt"), LoadOptions::default()).unwrap();
    let p = FitParams::new(4).check(snap.ratings.n_users()).unwrap();
    let (_, model) = mixrec::mixture::train(&snap.ratings, snap.scale, &p, &mut |_| {
        std::ops::ControlFlow::Continue(())
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

#[test]
fn gaussian_plsa_beats_080_on_held_out_netflix_ratings() {
    let Some(dir) = shared_data() else { return };
    let snap = data::load(&dir.join("netflix_incomplete.txt"), LoadOptions::default()).unwrap();
    let split = data::holdout(&snap.ratings, 0.1, 0);
    let gpl = eval::gpl(&split, snap.scale, &mixrec::plsa::PlsaParams::new(12));
    // Measured: see the README table (the mixture default: 0.8149, user+item bias: 0.8699).
    assert!(
        gpl.scores.rmse < 0.80,
        "Gaussian pLSA RMSE {}",
        gpl.scores.rmse
    );
}
