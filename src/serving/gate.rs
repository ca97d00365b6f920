//! The quality gate, like with like: the candidate and the serving model are scored on the
//! same held-out ratings of the candidate's snapshot. The candidate's predictions are the ones
//! its training made while choosing its configuration (a model fitted without those ratings),
//! so no second training is needed; the serving model answers each held-out user by folding in
//! that user's training ratings, exactly as `POST /v1/complete` would. A held-out rating of an
//! item the serving model does not know is left out of both scores and counted, as are the
//! training ratings of such items left out of the profile folded in.
//!
//! Must not import: the registry, the jobs, web or async types.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::data::{self, Held, RatingScale};

use super::served::ServedModel;

/// The share of the serving model's gain over its baseline a candidate must keep.
const MIN_GAIN_KEPT: f64 = 0.5;

/// What the gate compared, as the job shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    /// The candidate's RMSE on the ratings compared.
    pub candidate_rmse: f64,
    /// The serving model's RMSE on the same ratings.
    pub serving_rmse: f64,
    /// The serving model's version.
    pub serving_version: u64,
    /// Held-out ratings scored by both.
    pub compared: usize,
    /// Held-out ratings of the candidate's snapshot.
    pub heldout: usize,
    /// `compared / heldout`.
    pub share: f64,
    /// Held-out ratings left out: their item is unknown to the serving model.
    pub unknown_items: usize,
    /// The share by which the candidate may be worse (`models.quality_gate`).
    pub allowed: f64,
    /// The share of its baseline's held-out RMSE the candidate removes (`1 − rmse / baseline`,
    /// on its own split), when both are known.
    pub candidate_gain: Option<f64>,
    /// The same for the serving model, on the split it was trained with.
    pub serving_gain: Option<f64>,
    /// Whether the candidate passed.
    pub passed: bool,
    /// Wall-clock seconds the comparison took (the split, the serving model's fold-ins and
    /// both scores); the candidate's predictions come from its training.
    pub seconds: f64,
}

/// Scores `candidate` (whose held-out predictions are `predicted`, in the order of
/// `data::holdout(ratings, holdout, seed).test`) and `serving` on the same held-out ratings;
/// `None` when nothing was held out.
pub fn compare(
    candidate: &ServedModel,
    predicted: &[f64],
    (holdout, seed): (f64, u64),
    serving: &ServedModel,
    allowed: f64,
) -> Option<GateReport> {
    if predicted.is_empty() {
        return None;
    }
    let started = Instant::now();
    let split = data::holdout(candidate.catalogue().ratings(), holdout, seed);
    assert_eq!(
        split.test.len(),
        predicted.len(),
        "one prediction per rating"
    );
    // (n_items of the candidate,): the serving model's index of each item, if it knows it.
    let cat = candidate.catalogue();
    let known: Vec<Option<u32>> = (0..cat.n_items() as u32)
        .map(|l| serving.catalogue().item_index(&cat.item_id(l)))
        .collect();
    let groups = user_groups(&split.test);
    let scales = (candidate.scale(), serving.scale());
    let sums: Vec<Sums> = groups
        .par_iter()
        .map(|&(start, end)| {
            let held = &split.test[start..end];
            let (items, values) = split.train.row(held[0].user as usize);
            user_sums(
                held,
                &predicted[start..end],
                (items, values),
                &known,
                serving,
                scales,
            )
        })
        .collect();
    // Summed in user order: the same input gives the same bits.
    let total = sums.iter().fold(Sums::default(), |a, b| a.add(b));
    let seconds = started.elapsed().as_secs_f64();
    Some(report(
        total,
        split.test.len(),
        (candidate, serving),
        (allowed, seconds),
    ))
}

/// The share of its baseline's held-out RMSE a model removes, when both were measured.
fn gain(model: &ServedModel) -> Option<f64> {
    let info = model.info();
    let baseline = info.selection.as_ref()?.baseline_rmse?;
    Some(1.0 - info.heldout_rmse? / baseline)
}

/// Squared errors of both models and counts, over some held-out ratings.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    candidate: f64,
    serving: f64,
    compared: usize,
    unknown: usize,
}

impl Sums {
    fn add(self, o: &Self) -> Self {
        Self {
            candidate: self.candidate + o.candidate,
            serving: self.serving + o.serving,
            compared: self.compared + o.compared,
            unknown: self.unknown + o.unknown,
        }
    }
}

/// `[start, end)` of each user's run of held-out ratings (the split is grouped by user).
fn user_groups(test: &[Held]) -> Vec<(usize, usize)> {
    let mut groups = Vec::new();
    let mut start = 0;
    for run in test.chunk_by(|a, b| a.user == b.user) {
        groups.push((start, start + run.len()));
        start += run.len();
    }
    groups
}

/// One user's held-out ratings `held`, the candidate's predictions of them, and the user's
/// training ratings (candidate item indices) folded into the serving model.
fn user_sums(
    held: &[Held],
    predicted: &[f64],
    (items, values): (&[u32], &[f32]),
    known: &[Option<u32>],
    serving: &ServedModel,
    (cand_scale, serv_scale): (RatingScale, RatingScale),
) -> Sums {
    // The profile the serving model would be posted: the training ratings of items it knows.
    let profile: Vec<(u32, f64)> = items
        .iter()
        .zip(values)
        .filter_map(|(&l, &x)| Some((known[l as usize]?, f64::from(x))))
        .collect();
    let mut sums = Sums::default();
    let Ok(belief) = serving.predictor().posterior(&profile) else {
        // A profile the serving model refuses cannot be answered: nothing compared.
        sums.unknown = held.len();
        return sums;
    };
    for (h, &p) in held.iter().zip(predicted) {
        let Some(l) = known[h.item as usize] else {
            sums.unknown += 1;
            continue;
        };
        let truth = f64::from(h.rating);
        let served = serv_scale.clip(serving.predictor().predict(&belief, l).rating);
        sums.candidate += (cand_scale.clip(p) - truth).powi(2);
        sums.serving += (served - truth).powi(2);
        sums.compared += 1;
    }
    sums
}

/// The verdict: the candidate passes when it is within `allowed` of the serving model on the
/// ratings compared, and keeps at least half of the serving model's gain over its baseline. The
/// second rule catches a snapshot that lost the users' tastes (ratings permuted across users):
/// on such ratings the serving model does worse than a candidate fitted to them, so the first
/// rule alone lets it through, but the candidate then learns nothing beyond the baseline.
fn report(
    total: Sums,
    heldout: usize,
    (candidate, serving): (&ServedModel, &ServedModel),
    (allowed, seconds): (f64, f64),
) -> GateReport {
    let n = total.compared.max(1) as f64;
    let (candidate_rmse, serving_rmse) = ((total.candidate / n).sqrt(), (total.serving / n).sqrt());
    let (candidate_gain, serving_gain) = (gain(candidate), gain(serving));
    let keeps_structure = match (candidate_gain, serving_gain) {
        (Some(c), Some(s)) if s > 0.0 => c >= s * MIN_GAIN_KEPT,
        _ => true,
    };
    GateReport {
        candidate_rmse,
        serving_rmse,
        serving_version: serving.info().version,
        compared: total.compared,
        heldout,
        share: total.compared as f64 / heldout.max(1) as f64,
        unknown_items: total.unknown,
        allowed,
        candidate_gain,
        serving_gain,
        // Nothing in common: there is nothing to compare, so nothing to refuse on.
        passed: keeps_structure
            && (total.compared == 0 || candidate_rmse <= serving_rmse * (1.0 + allowed)),
        seconds,
    }
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use rand::SeedableRng;
    use rand::seq::SliceRandom;

    use super::*;
    use crate::config::TrainingSettings;
    use crate::data::{Fingerprint, LoadOptions, Loaded, Source};
    use crate::mixture::Progress;
    use crate::serving::train::{quick_settings, train_scored};

    const DEMO: &str = include_str!("../../data/demo-ratings.csv");

    /// The demo catalogue's lines of even (`half` 0) or odd (1) users: two snapshots of one
    /// population (the same planted types), none of whose users they share.
    fn half(half: usize) -> Vec<(String, String)> {
        DEMO.lines()
            .skip(1)
            .filter_map(|l| {
                let (user, rest) = l.split_once(',')?;
                let n: usize = user[1..].parse().ok()?;
                (n % 2 == half).then(|| (user.to_owned(), rest.to_owned()))
            })
            .collect()
    }

    /// `lines` with each item's ratings permuted across the users who rated it: the same
    /// users, items and pairs, each item's ratings the same, and no user's taste left.
    fn shuffled(lines: &[(String, String)], seed: u64) -> Vec<(String, String)> {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
        let split = |r: &str| {
            let (item, value) = r.split_once(',').unwrap();
            (item.to_owned(), value.to_owned())
        };
        let mut by_item: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        for (i, (_, r)) in lines.iter().enumerate() {
            by_item.entry(split(r).0).or_default().push(i);
        }
        let mut out = lines.to_vec();
        for (item, rows) in by_item {
            let mut values: Vec<String> = rows.iter().map(|&i| split(&lines[i].1).1).collect();
            values.shuffle(&mut rng);
            for (&i, v) in rows.iter().zip(values) {
                out[i].1 = format!("{item},{v}");
            }
        }
        out
    }

    fn loaded(lines: &[(String, String)]) -> Loaded {
        let mut text = String::from("user,item,rating\n");
        for (u, r) in lines {
            text.push_str(&format!("{u},{r}\n"));
        }
        Loaded {
            source: Source::Embedded,
            snapshot: crate::data::load_str(&text, LoadOptions::default()).unwrap(),
            titles: Default::default(),
            fingerprint: Fingerprint::sha256(text.as_bytes()),
        }
    }

    fn trained(lines: &[(String, String)], t: &TrainingSettings) -> (ServedModel, Vec<f64>) {
        let mut go = |_: &Progress| ControlFlow::Continue(());
        train_scored(loaded(lines), t, 1, &mut go).unwrap()
    }

    fn settings() -> TrainingSettings {
        TrainingSettings {
            k: crate::config::Auto::Is(6),
            n_init: 2,
            holdout: 0.2,
            ..quick_settings()
        }
    }

    #[test]
    fn another_snapshot_of_the_same_population_passes_and_a_shuffled_one_is_refused() {
        let t = settings();
        let (serving, _) = trained(&half(0), &t);
        let same = half(1);
        let (candidate, heldout) = trained(&same, &t);
        let r = compare(&candidate, &heldout, (t.holdout, t.seed), &serving, 0.05).unwrap();
        eprintln!("same population: {r:?}");
        assert!(r.passed, "{r:?}");
        assert_eq!((r.compared, r.unknown_items), (r.heldout, 0));
        // The candidate's figure on all its held-out ratings is the one its training reported.
        let reported = candidate.info().heldout_rmse.unwrap();
        assert!(
            (r.candidate_rmse - reported).abs() < 1e-12,
            "{r:?} vs {reported}"
        );

        let (noise, heldout) = trained(&shuffled(&same, 3), &t);
        let r = compare(&noise, &heldout, (t.holdout, t.seed), &serving, 0.05).unwrap();
        eprintln!("shuffled: {r:?}");
        // Measured: on permuted ratings the serving model is the worse of the two (its types
        // fit tastes these ratings no longer have), so RMSE alone would let the candidate in...
        assert!(r.candidate_rmse < r.serving_rmse, "{r:?}");
        // ...but it has learnt next to nothing beyond its baseline: refused.
        assert!(
            r.candidate_gain.unwrap() < r.serving_gain.unwrap() * MIN_GAIN_KEPT,
            "{r:?}"
        );
        assert!(!r.passed, "{r:?}");
    }
}
