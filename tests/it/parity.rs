//! Parity with the seed: every figure of `../shared/reference/seed-figures.json` and the worked
//! example of `../shared/data/test_solutions.txt`, reproduced by the seed-compatible
//! configuration. The reference numbers come from the seed's numpy implementation.

use std::path::Path;

use mixrec::data::{self, LoadOptions, Ratings, Snapshot};
use mixrec::mixture::{
    self, Algorithm, Fit, FitParams, Init, Model, legacy_choice_without_replacement,
};
use mixrec::predictor::Predictor;
use serde_json::Value;

use crate::support::{assert_rel, seed_figures, shared_data};

fn load(dir: &Path, name: &str) -> Snapshot {
    data::load(&dir.join(name), LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn seed_fit(ratings: &Ratings, rows: &[usize], algorithm: Algorithm) -> Fit {
    let params = FitParams::seed_preset(rows.len())
        .init(Init::Rows(rows.to_vec()))
        .algorithm(algorithm)
        .check(ratings.n_users())
        .unwrap();
    mixture::fit(ratings, &params, &mut |_| {
        std::ops::ControlFlow::Continue(())
    })
    .unwrap()
}

fn rows_of(case: &Value) -> Vec<usize> {
    case["init_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap() as usize)
        .collect()
}

fn cases<'a>(figures: &'a Value, data: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    figures["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(move |c| c["data"] == data)
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn numpy_row_choice_reproduces_every_init_rows() {
    let Some(dir) = shared_data() else { return };
    let figures = seed_figures(&dir);
    let users = |name: &str| load(&dir, name).ratings.n_users();
    let n_of = [
        ("toy_data.txt", users("toy_data.txt")),
        ("netflix_incomplete.txt", users("netflix_incomplete.txt")),
        ("test_incomplete.txt", users("test_incomplete.txt")),
    ];
    let mut checked = 0;
    for case in figures["cases"].as_array().unwrap() {
        let n = n_of
            .iter()
            .find(|(name, _)| case["data"] == *name)
            .unwrap()
            .1;
        let rows = rows_of(case);
        let seed = case["numpy_seed"].as_u64().unwrap() as u32;
        assert_eq!(
            legacy_choice_without_replacement(seed, n, rows.len()),
            rows,
            "{case}"
        );
        checked += 1;
    }
    assert_eq!(checked, 31);
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn toy_data_kmeans_costs_and_em_log_likelihoods() {
    let Some(dir) = shared_data() else { return };
    let figures = seed_figures(&dir);
    let toy = load(&dir, "toy_data.txt");
    let (n, d) = (toy.ratings.n_users(), toy.ratings.n_items());
    for case in cases(&figures, "toy_data.txt") {
        let rows = rows_of(case);
        let km = seed_fit(&toy.ratings, &rows, Algorithm::Kmeans);
        assert_rel(
            &format!("k-means cost {case}"),
            km.cost.unwrap(),
            case["kmeans_cost"].as_f64().unwrap(),
            1e-6,
        );
        let em = seed_fit(&toy.ratings, &rows, Algorithm::Em);
        let ll = em.log_likelihood.unwrap();
        assert_rel(
            &format!("EM LL {case}"),
            ll,
            case["em_log_likelihood"].as_f64().unwrap(),
            1e-6,
        );
        let bic = mixture::bic(ll, rows.len(), d, n);
        assert_rel(
            &format!("BIC {case}"),
            bic,
            case["em_bic"].as_f64().unwrap(),
            1e-6,
        );
    }
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn bic_picks_three_types_on_toy_data() {
    let Some(dir) = shared_data() else { return };
    let toy = load(&dir, "toy_data.txt");
    let (n, d) = (toy.ratings.n_users(), toy.ratings.n_items());
    let best_bic = |k: usize| {
        (0..5)
            .map(|seed| {
                let rows = legacy_choice_without_replacement(seed, n, k);
                let ll = seed_fit(&toy.ratings, &rows, Algorithm::Em)
                    .log_likelihood
                    .unwrap();
                mixture::bic(ll, k, d, n)
            })
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let curve: Vec<f64> = (1..=4).map(best_bic).collect();
    let best = (0..4)
        .max_by(|&a, &b| curve[a].total_cmp(&curve[b]))
        .unwrap()
        + 1;
    assert_eq!(best, 3, "BIC curve {curve:?}");
    assert_rel("best BIC", curve[2], -1169.2589347355095, 1e-6);
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn netflix_subset_log_likelihoods_and_iterations() {
    let Some(dir) = shared_data() else { return };
    let figures = seed_figures(&dir);
    let netflix = load(&dir, "netflix_incomplete.txt");
    let mut checked = 0;
    for case in cases(&figures, "netflix_incomplete.txt") {
        let fit = seed_fit(&netflix.ratings, &rows_of(case), Algorithm::Em);
        let expected = case["em_log_likelihood"].as_f64().unwrap();
        assert_rel(
            &format!("LL {case}"),
            fit.log_likelihood.unwrap(),
            expected,
            1e-6,
        );
        let iterations = case["em_iterations"].as_i64().unwrap();
        assert!(
            (fit.iterations as i64 - iterations).abs() <= 1,
            "iterations {} for {case}",
            fit.iterations
        );
        assert!(fit.converged);
        checked += 1;
    }
    assert_eq!(checked, 10);
}

/// Root mean squared difference between a completion and a dense reference, over all n × d
/// entries (a missing reference entry counts as 0, as the seed's whole-matrix figure does).
fn whole_matrix_rmse(model: &Predictor, observed: &Ratings, gold: &Ratings) -> f64 {
    let d = observed.n_items();
    let (mut row, mut sum) = (vec![0.0; d], 0.0);
    for u in 0..observed.n_users() {
        let (items, values) = observed.row(u);
        model.complete_row(items, values, &mut row).unwrap();
        let mut want = vec![0.0; d];
        let (gi, gv) = gold.row(u);
        gi.iter()
            .zip(gv)
            .for_each(|(&l, &x)| want[l as usize] = f64::from(x));
        sum += row
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>();
    }
    (sum / (observed.n_users() * d) as f64).sqrt()
}

fn seed_model(fit: &Fit, snapshot: &Snapshot) -> Predictor {
    Predictor::Mixture(Model {
        mixture: fit.mixture.clone(),
        algorithm: fit.algorithm,
        scale: snapshot.scale,
        clip: false,
        baseline: None,
    })
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn netflix_completion_matches_the_seed_rmse() {
    let Some(dir) = shared_data() else { return };
    let figures = seed_figures(&dir);
    let case = cases(&figures, "netflix_incomplete.txt")
        .find(|c| c.get("rmse_vs_netflix_complete_full_matrix").is_some())
        .unwrap();
    let netflix = load(&dir, "netflix_incomplete.txt");
    let gold = load(&dir, "netflix_complete.txt");
    let fit = seed_fit(&netflix.ratings, &rows_of(case), Algorithm::Em);
    let rmse = whole_matrix_rmse(&seed_model(&fit, &netflix), &netflix.ratings, &gold.ratings);
    assert_rel(
        "netflix RMSE",
        rmse,
        case["rmse_vs_netflix_complete_full_matrix"]
            .as_f64()
            .unwrap(),
        1e-6,
    );
    assert_rel("netflix RMSE (README figure)", rmse, 0.4804908, 1e-6);
}

/// The numbers of one section of `test_solutions.txt` (numpy's printout), in order.
fn section(text: &str, after: &str, label: &str) -> Vec<f64> {
    let start = text.find(after).unwrap_or_else(|| panic!("no {after:?}"));
    let rest = &text[start..];
    let at = rest
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} after {after:?}"))
        + label.len();
    let body = &rest[at..];
    let end = if body.trim_start().starts_with('[') {
        // A bracketed array: up to the bracket that closes the first one.
        let open = body.find('[').unwrap();
        let mut depth = 0;
        let mut close = open;
        for (i, c) in body[open..].char_indices() {
            depth += match c {
                '[' => 1,
                ']' => -1,
                _ => 0,
            };
            if depth == 0 {
                close = open + i;
                break;
            }
        }
        close
    } else {
        body.find('\n').unwrap_or(body.len())
    };
    body[..end]
        .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<f64>()
                .unwrap_or_else(|_| panic!("{t:?} in {label}"))
        })
        .collect()
}

/// The printout has 8 significant digits.
#[track_caller]
fn assert_printed(what: &str, got: &[f64], printed: &[f64]) {
    assert_eq!(got.len(), printed.len(), "{what}: length");
    for (i, (&a, &b)) in got.iter().zip(printed).enumerate() {
        assert!(
            (a - b).abs() <= 1e-8 * b.abs().max(1.0) + 1e-9,
            "{what}[{i}]: got {a}, printed {b}"
        );
    }
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn worked_example_step_by_step() {
    let Some(dir) = shared_data() else { return };
    let text = std::fs::read_to_string(dir.join("test_solutions.txt")).unwrap();
    let snap = load(&dir, "test_incomplete.txt");
    let r = &snap.ratings;
    let rows = legacy_choice_without_replacement(0, r.n_users(), 4);
    assert_eq!(rows, vec![18, 1, 19, 8]);

    // The start: rows as stored, variance over all n·d entries, uniform weights.
    let start = mixture::rows_as_stored(r, &rows);
    let by_type = |m: &mixture::Mixture| m.means_by_type().concat();
    assert_printed(
        "initial Mu",
        &by_type(&start),
        &section(&text, "Input:", "Mu:"),
    );
    let var: Vec<f64> = start
        .variances
        .iter()
        .map(|v| (v * 100.0).round() / 100.0)
        .collect();
    assert_eq!(var, section(&text, "Input:", "Var:"));

    // First E-step.
    let e = mixture::estep(r, &start);
    assert_printed(
        "first posteriors",
        e.posteriors.as_slice().unwrap(),
        &section(&text, "After first E-step", "post:"),
    );
    assert_rel(
        "first LL",
        e.log_likelihood,
        section(&text, "After first E-step", "LL:")[0],
        1e-12,
    );

    // First M-step: a one-iteration fit is E then M.
    let one = FitParams::seed_preset(4)
        .init(Init::Rows(rows.clone()))
        .max_iter(1)
        .tol(0.0)
        .check(20)
        .unwrap();
    let m1 = mixture::fit(r, &one, &mut |_| std::ops::ControlFlow::Continue(()))
        .unwrap()
        .mixture;
    let after_m = "After first M-step";
    assert_printed("M-step Mu", &by_type(&m1), &section(&text, after_m, "Mu:"));
    assert_printed(
        "M-step Var",
        m1.variances.as_slice().unwrap(),
        &section(&text, after_m, "Var:"),
    );
    assert_printed(
        "M-step P",
        m1.weights.as_slice().unwrap(),
        &section(&text, after_m, "P:"),
    );

    // A full run.
    let fit = seed_fit(r, &rows, Algorithm::Em);
    let run = "After a run";
    assert_printed(
        "final Mu",
        &by_type(&fit.mixture),
        &section(&text, run, "Mu:"),
    );
    assert_printed(
        "final Var",
        fit.mixture.variances.as_slice().unwrap(),
        &section(&text, run, "Var:"),
    );
    assert_printed(
        "final P",
        fit.mixture.weights.as_slice().unwrap(),
        &section(&text, run, "P:"),
    );
    assert_printed(
        "final posteriors",
        fit.posteriors.as_slice().unwrap(),
        &section(&text, run, "post:"),
    );
    assert_rel(
        "final LL",
        fit.log_likelihood.unwrap(),
        section(&text, run, "LL:")[0],
        1e-12,
    );

    // Completion and its RMSE against the complete matrix.
    let model = seed_model(&fit, &snap);
    let mut completed = Vec::new();
    let mut row = vec![0.0; r.n_items()];
    for u in 0..r.n_users() {
        let (items, values) = r.row(u);
        model.complete_row(items, values, &mut row).unwrap();
        completed.extend_from_slice(&row);
    }
    assert_printed("X_pred", &completed, &section(&text, run, "X_pred:"));
    let gold = load(&dir, "test_complete.txt");
    let rmse = whole_matrix_rmse(&model, r, &gold.ratings);
    assert_rel("RMSE", rmse, 0.3152301205749674, 1e-9);
}
