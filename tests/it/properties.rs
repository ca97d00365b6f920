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
        for format in FORMATS {
            if let Ok(s) = data::load_str(&text, LoadOptions { format, scale: None, ..Default::default() }) {
                consistent(&s)?;
            }
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

/// Every format a snapshot can be read as.
const FORMATS: [Format; 4] = [
    Format::Auto,
    Format::Matrix,
    Format::Triples,
    Format::Binary,
];

/// What every loaded snapshot must satisfy, whatever bytes it came from.
fn consistent(s: &data::Snapshot) -> Result<(), TestCaseError> {
    let r = &s.ratings;
    prop_assert!(r.nnz() > 0, "an empty snapshot loaded");
    prop_assert_eq!(s.users.len(), r.n_users());
    prop_assert_eq!(s.items.len(), r.n_items());
    prop_assert!(s.format != Format::Auto);
    let offsets = r.offsets();
    prop_assert_eq!(offsets.len(), r.n_users() + 1);
    for (_, l, x) in r.iter() {
        prop_assert!((l as usize) < r.n_items());
        prop_assert!(
            s.scale.contains(f64::from(x)),
            "{} outside {:?}",
            x,
            s.scale
        );
    }
    Ok(())
}

/// One change to a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR the byte at (position mod length) with a non-zero mask.
    Flip(usize, u8),
    /// Insert a byte at (position mod length + 1): the end included.
    Insert(usize, u8),
    /// Remove the byte at (position mod length).
    Remove(usize),
    /// Keep only the first (position mod length) bytes.
    Cut(usize),
    /// Add a byte at the end (a file with something after its checksum).
    Append(u8),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(at, b)| Mutation::Flip(at, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        1 => any::<usize>().prop_map(Mutation::Cut),
        1 => any::<u8>().prop_map(Mutation::Append),
    ];
    proptest::collection::vec(one, 1..5)
}

fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Flip(at, b) if !bytes.is_empty() => bytes[at % len] ^= b,
            Mutation::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), b),
            Mutation::Remove(at) if !bytes.is_empty() => {
                bytes.remove(at % len);
            }
            Mutation::Cut(at) => bytes.truncate(at % len),
            Mutation::Append(b) => bytes.push(b),
            _ => {}
        }
    }
}

/// A valid snapshot of `rows` in each encoding: triples, matrix and binary.
fn encodings(rows: &[Vec<f64>]) -> Vec<(Format, Vec<u8>)> {
    let r = Ratings::from_dense_rows(rows);
    let mut matrix = Vec::new();
    write_matrix(&mut matrix, r.n_users(), r.n_items(), |u, row| {
        row.copy_from_slice(&rows[u])
    })
    .unwrap();
    let snapshot = data::load_str(
        std::str::from_utf8(&matrix).unwrap(),
        LoadOptions::default(),
    )
    .unwrap();
    let (mut triples, mut binary) = (Vec::new(), Vec::new());
    data::write_triples(&mut triples, &snapshot).unwrap();
    data::write_binary(&mut binary, &snapshot).unwrap();
    vec![
        (Format::Matrix, matrix),
        (Format::Triples, triples),
        (Format::Binary, binary),
    ]
}

proptest! {
    // The default: 256 cases, or PROPTEST_CASES for a longer hunt.
    #![proptest_config(ProptestConfig::default())]

    /// Any bytes at all, as any format, through the same reader a file goes through: a
    /// snapshot that holds together or a `DataError`, never a panic or a runaway allocation.
    #[test]
    fn arbitrary_bytes_load_or_fail_cleanly(
        magic in any::<bool>(),
        junk in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let bytes = if magic { [data::MAGIC.as_slice(), &junk].concat() } else { junk };
        for format in FORMATS {
            if let Ok(s) = data::load_bytes(&bytes, LoadOptions { format, scale: None, ..Default::default() }) {
                consistent(&s)?;
            }
        }
    }

    /// Valid snapshots with bytes changed, inserted, removed or cut off. Text may still be a
    /// valid snapshot; a changed binary snapshot never is (its CRC-32 sees the change).
    #[test]
    fn mutated_snapshots_load_or_fail_cleanly(rows in matrices(), mutations in mutations()) {
        prop_assume!(Ratings::from_dense_rows(&rows).nnz() > 0);
        for (encoding, valid) in encodings(&rows) {
            let mut bytes = valid.clone();
            mutate(&mut bytes, &mutations);
            for format in [Format::Auto, encoding] {
                let loaded = data::load_bytes(&bytes, LoadOptions { format, scale: None, ..Default::default() });
                if let Ok(s) = &loaded {
                    consistent(s)?;
                }
                if format == Format::Binary && bytes != valid {
                    prop_assert!(loaded.is_err(), "a changed binary snapshot loaded: {:?}", mutations);
                }
            }
        }
    }
}
