use super::*;
use crate::data::{LoadOptions, Snapshot};
use crate::mixture::Ridge;
use crate::predictor::ModelKind;
use crate::synth::{SynthFormat, SynthSpec, write_snapshot};

/// 400 users × 120 items, 40 ratings each, 4 planted types.
fn planted() -> Snapshot {
    let spec = SynthSpec {
        users: 400,
        items: 120,
        ratings: 16_000,
        types: 4,
        seed: 3,
    };
    let mut bytes = Vec::new();
    write_snapshot(&spec, SynthFormat::Triples, &mut bytes).unwrap();
    crate::data::load_bytes(&bytes, LoadOptions::default()).unwrap()
}

/// K = 4 fixed, nothing chosen: a fast fit.
fn fixed_spec() -> Spec {
    let mut spec = Spec::new(ModelKind::Mixture);
    spec.k = Some(4);
    spec.prior_strength = Some(20.0);
    spec.ridge = Some(Ridge::default());
    spec.holdout = 0.0;
    spec
}

#[test]
fn checkpoints_are_the_fixed_ones_up_to_n() {
    assert_eq!(checkpoints(10), vec![0, 1, 3, 5, 10]);
    assert_eq!(checkpoints(5), vec![0, 1, 3, 5]);
    assert_eq!(checkpoints(2), vec![0, 1, 2]);
}

#[test]
fn users_are_held_out_whole() {
    let snap = planted();
    let (train, test) = split_users(&snap.ratings, 0.25, 9);
    assert_eq!(test.len(), 100);
    assert_eq!(train.n_users(), 300);
    let held: usize = test.iter().map(|&u| snap.ratings.row(u).0.len()).sum();
    assert_eq!(train.nnz() + held, snap.ratings.nnz());
    assert!(test.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn an_interview_skips_what_the_user_does_not_know() {
    let snap = planted();
    let go = &mut |_: &_| std::ops::ControlFlow::Continue(());
    let trained = select::train(&snap.ratings, snap.scale, &fixed_spec(), go).unwrap();
    let askable = Askable::new(&snap.ratings, snap.scale);
    let ctx = Context {
        model: &trained.predictor,
        prepared: trained.predictor.prepare(),
        askable: &askable,
        // Popularity order: item 119 first, then down.
        popular: (0..120).rev().collect(),
        answers: 2,
        seed: 0,
    };
    let (items, values) = (&[3u32, 100, 118][..], &[4.0f32, 2.0, 5.0][..]);
    let it = interview(&ctx, Strategy::Popular, (items, values), 0);
    // Asked 119 (unknown), 118 (5), 117, 116 … 101 (unknown), 100 (2): 20 questions.
    assert_eq!(it.answers, vec![(118, 5.0), (100, 2.0)]);
    assert_eq!(it.asked, vec![2, 20]);
    for s in STRATEGIES {
        let it = interview(&ctx, s, (items, values), 0);
        assert_eq!(it.answers.len(), 2, "{s:?}");
        assert!(
            it.answers
                .iter()
                .all(|a| rating_of((items, values), a.0) == Some(a.1))
        );
    }
}

#[test]
fn informative_questions_beat_popular_and_random_ones_on_planted_types() {
    let snap = planted();
    let p = ColdStartParams {
        answers: 8,
        user_share: 0.25,
        seed: 5,
    };
    let (cs, _) = run(&snap.ratings, snap.scale, &fixed_spec(), &p).unwrap();
    assert_eq!(cs.checkpoints, vec![0, 1, 3, 5, 8]);
    assert_eq!((cs.test_users, cs.train_users), (100, 300));
    let [popular, random, informative] = &cs.curves[..] else {
        panic!("three curves")
    };
    // No answers yet: the prior for everybody, the same ratings scored.
    assert_eq!(popular.rmse[0], informative.rmse[0]);
    assert_eq!(random.rmse[0], informative.rmse[0]);
    let at5 = |c: &Curve| c.rmse[3];
    assert!(
        at5(informative) < at5(popular) && at5(informative) < at5(random),
        "{cs:?}"
    );
    assert!(informative.rmse[4] < informative.rmse[0] - 0.05, "{cs:?}");
    // Every answer costs at least one question.
    assert!(cs.curves.iter().all(|c| c.questions[4] >= 8.0));
}
