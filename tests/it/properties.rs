//! Property tests: invariants that must hold on any data, not just the seed's.

use std::ops::ControlFlow;

use mixrec::data::{self, Format, LoadOptions, RatingScale, Ratings, write_matrix};
use mixrec::mixture::{self, FitParams, Mixture};
use mixrec::predictor::Predictor;
use ndarray::{Array1, Array2};
use proptest::prelude::*;

/// Small rating matrices: 0 = missing, else whole or half stars.
fn matrices() -> impl Strategy<Value = Vec<Vec<f64>>> {
    (2usize..24, 1usize..7).prop_flat_map(|(n, d)| {
        let cell = prop_oneof![2 => Just(0.0), 5 => (2u8..=10).prop_map(|h| f64::from(h) / 2.0)];
        proptest::collection::vec(proptest::collection::vec(cell, d), n)
    })
}

fn mixtures(d: usize, k: usize) -> impl Strategy<Value = Mixture> {
    (
        proptest::collection::vec(0.5f64..5.5, d * k),
        proptest::collection::vec(0.05f64..4.0, k),
        proptest::collection::vec(0.01f64..1.0, k),
    )
        .prop_map(move |(m, v, w)| {
            let total: f64 = w.iter().sum();
            Mixture {
                means: Array2::from_shape_vec((d, k), m).unwrap(),
                variances: Array1::from(v),
                weights: Array1::from(w.iter().map(|x| x / total).collect::<Vec<_>>()),
            }
        })
}

fn users_with_ratings(r: &Ratings) -> usize {
    (0..r.n_users()).filter(|&u| !r.row(u).0.is_empty()).count()
}

fn go(_: &mixture::Progress) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn posteriors_sum_to_one((rows, m) in matrices().prop_flat_map(|rows| {
        let d = rows[0].len();
        (Just(rows), (1usize..5).prop_flat_map(move |k| mixtures(d, k)))
    })) {
        let r = Ratings::from_dense_rows(&rows);
        let e = mixture::estep(&r, &m);
        for row in e.posteriors.rows() {
            let sum: f64 = row.sum();
            prop_assert!((sum - 1.0).abs() < 1e-12, "row sums to {}", sum);
            prop_assert!(row.iter().all(|p| (0.0..=1.0).contains(p)));
        }
        prop_assert!(e.log_likelihood.is_finite());
    }

    #[test]
    fn em_never_lowers_the_log_likelihood(rows in matrices(), k in 1usize..4, seed in 0u64..1000) {
        let r = Ratings::from_dense_rows(&rows);
        prop_assume!(users_with_ratings(&r) >= k);
        // λ = 0: with a prior the objective is the penalised likelihood, not this one.
        let p = FitParams::new(k).prior_strength(0.0).n_init(1).seed(seed).tol(0.0).max_iter(25);
        let fit = mixture::fit(&r, &p.check(r.n_users()).unwrap(), &mut go).unwrap();
        for w in fit.history.windows(2) {
            prop_assert!(w[1] >= w[0] - 1e-9 * w[0].abs(), "LL fell: {:?}", fit.history);
        }
    }

    #[test]
    fn variances_respect_the_floor(rows in matrices(), k in 1usize..4, floor in 0.01f64..2.0) {
        let r = Ratings::from_dense_rows(&rows);
        prop_assume!(users_with_ratings(&r) >= k);
        let p = FitParams::new(k).min_variance(floor).max_iter(30).check(r.n_users()).unwrap();
        let fit = mixture::fit(&r, &p, &mut go).unwrap();
        prop_assert!(fit.mixture.variances.iter().all(|&v| v >= floor), "{:?}", fit.mixture.variances);
        prop_assert!((fit.mixture.weights.sum() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn completion_keeps_observed_entries(rows in matrices(), k in 1usize..4) {
        let r = Ratings::from_dense_rows(&rows);
        prop_assume!(users_with_ratings(&r) >= k);
        let p = FitParams::new(k).max_iter(20).check(r.n_users()).unwrap();
        let scale = RatingScale { min: 1.0, max: 5.0 };
        let model = Predictor::Mixture(mixture::train(&r, scale, &p, &mut go).unwrap().1);
        let mut row = vec![0.0; r.n_items()];
        for (u, dense) in rows.iter().enumerate() {
            let (items, values) = r.row(u);
            model.complete_row(items, values, &mut row).unwrap();
            for (l, (&got, &given)) in row.iter().zip(dense).enumerate() {
                if given != 0.0 {
                    prop_assert_eq!(got, given, "user {} item {}", u, l);
                } else {
                    prop_assert!(scale.contains(got), "prediction {} outside the scale", got);
                }
            }
        }
    }

    #[test]
    fn matrices_round_trip_through_the_writer(rows in matrices()) {
        let r = Ratings::from_dense_rows(&rows);
        prop_assume!(r.nnz() > 0);
        let mut text = Vec::new();
        write_matrix(&mut text, r.n_users(), r.n_items(), |u, row| row.copy_from_slice(&rows[u])).unwrap();
        let back = data::load_str(std::str::from_utf8(&text).unwrap(), LoadOptions::default()).unwrap();
        prop_assert_eq!(back.format, Format::Matrix);
        prop_assert_eq!(back.ratings, r);
    }

    #[test]
    fn loaders_never_panic(text in "[0-9 .,:\t\nabeEfinx+-]{0,200}") {
        for format in [Format::Auto, Format::Matrix, Format::Triples] {
            let _ = data::load_str(&text, LoadOptions { format, scale: None });
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_bits_on_any_thread_count() {
    let rows: Vec<Vec<f64>> = (0..3000)
        .map(|u| {
            (0..100)
                .map(|l| {
                    if (u * 7 + l * 3) % 5 == 0 {
                        0.0
                    } else {
                        ((u * l + u / 7) % 5 + 1) as f64
                    }
                })
                .collect()
        })
        .collect();
    let r = Ratings::from_dense_rows(&rows);
    let fit_on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let p = FitParams::new(5)
            .seed(11)
            .n_init(2)
            .check(r.n_users())
            .unwrap();
        pool.install(|| mixture::fit(&r, &p, &mut go).unwrap())
    };
    let one = fit_on(1);
    for threads in [2, 3, 8] {
        let other = fit_on(threads);
        assert_eq!(other.history, one.history, "{threads} threads");
        assert_eq!(other.mixture, one.mixture, "{threads} threads");
        assert_eq!(other.posteriors, one.posteriors, "{threads} threads");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Damaged binary snapshots (bytes changed, cut short) are refused, never a panic or a
    /// runaway allocation.
    #[test]
    fn damaged_binary_snapshots_are_refused(cuts in proptest::collection::vec((0usize..400, any::<u8>()), 1..4), keep in 0usize..400) {
        let s = data::load_str("u1,i1,4\nu2,i2,3.5\nu1,i3,1\nu3,i1,2\n", LoadOptions::default()).unwrap();
        let mut bytes = Vec::new();
        data::write_binary(&mut bytes, &s).unwrap();
        for (at, b) in cuts {
            let at = at % bytes.len();
            bytes[at] ^= b.max(1);
        }
        bytes.truncate(keep.max(8).min(bytes.len()));
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &bytes).unwrap();
        let _ = data::load(f.path(), LoadOptions { format: Format::Binary, scale: None });
    }
}
