//! The real `mixrec` binary, run as a user would.

use std::process::Command;

use clap::CommandFactory;
use serde_json::Value;

use crate::support::{assert_rel, mixrec, shared_data};

fn fit_json(args: &[&str]) -> Value {
    let out = mixrec(&[&["fit", "--json"], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// Runs `mixrec complete --data DATA ARGS… --out <temp>` and returns what it wrote.
fn complete(data: &std::path::Path, args: &[&str]) -> String {
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mixrec"))
        .args(["complete", "--data"])
        .arg(data)
        .args(args)
        .arg("--out")
        .arg(out_file.path())
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(out_file.path()).unwrap()
}

#[test]
fn the_command_line_is_consistent() {
    mixrec::cli::Cli::command().debug_assert();
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn fit_json_has_the_documented_fields() {
    let Some(dir) = shared_data() else { return };
    let toy = dir.join("toy_data.txt");
    let v = fit_json(&[
        "--data",
        toy.to_str().unwrap(),
        "--k",
        "3",
        "--preset",
        "seed",
        "--seed",
        "0",
    ]);
    for key in [
        "k",
        "algorithm",
        "n_users",
        "n_items",
        "n_ratings",
        "iterations",
        "converged",
        "log_likelihood",
        "bic",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(
        (
            v["k"].as_u64(),
            v["n_users"].as_u64(),
            v["n_items"].as_u64()
        ),
        (Some(3), Some(250), Some(2))
    );
    assert_eq!(v["means"].as_array().unwrap().len(), 3);
    assert_eq!(v["means"][0].as_array().unwrap().len(), 2);
    // seed-figures.json: toy K = 3, numpy seed 0.
    assert_rel(
        "LL",
        v["log_likelihood"].as_f64().unwrap(),
        -1138.8908996872672,
        1e-6,
    );
    assert_rel("BIC", v["bic"].as_f64().unwrap(), -1169.2589347355095, 1e-6);

    let km = fit_json(&[
        "--data",
        toy.to_str().unwrap(),
        "--k",
        "4",
        "--preset",
        "seed",
        "--init-rows",
        "33,213,39,6",
        "--algorithm",
        "kmeans",
    ]);
    assert!(km.get("log_likelihood").is_none() && km.get("bic").is_none());
    assert_rel(
        "k-means cost",
        km["cost"].as_f64().unwrap(),
        1035.499826539466,
        1e-6,
    );
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn tol_zero_runs_exactly_max_iter() {
    let Some(dir) = shared_data() else { return };
    let toy = dir.join("toy_data.txt");
    let v = fit_json(&[
        "--data",
        toy.to_str().unwrap(),
        "--k",
        "2",
        "--tol",
        "0",
        "--max-iter",
        "7",
    ]);
    assert_eq!(
        (v["iterations"].as_u64(), v["converged"].as_bool()),
        (Some(7), Some(false))
    );
    assert_eq!(v["history"].as_array().unwrap().len(), 7);
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn complete_writes_the_seed_completion() {
    let Some(dir) = shared_data() else { return };
    let data = dir.join("test_incomplete.txt");
    let written = complete(&data, &["--k", "4", "--preset", "seed", "--seed", "0"]);
    let rows: Vec<Vec<f64>> = written
        .lines()
        .map(|l| l.split(' ').map(|t| t.parse().unwrap()).collect())
        .collect();
    assert_eq!((rows.len(), rows[0].len()), (20, 5));
    // test_solutions.txt, X_pred: observed entries as given, missing ones predicted.
    assert_eq!(rows[0][..3], [2.0, 5.0, 3.0]);
    assert!((rows[0][3] - 3.94554203).abs() < 1e-8 && (rows[0][4] - 1.53247395).abs() < 1e-8);
    assert!((rows[18][4] - 2.3116484).abs() < 1e-7);
}

#[test]
fn bad_input_fails_with_file_and_line() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, b"1 2 3\n4 five 6\n").unwrap();
    let out = mixrec(&["fit", "--data", f.path().to_str().unwrap(), "--k", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:2: field 2 (\"five\") is not a number",
            f.path().display()
        )),
        "{err}"
    );
    let too_many = mixrec(&["fit", "--data", f.path().to_str().unwrap(), "--k", "0"]);
    assert_eq!(too_many.status.code(), Some(1));
}

#[test]
fn a_missing_file_is_named_once_and_usage_errors_exit_2() {
    let out = mixrec(&["fit", "--data", "/nonexistent/ratings.csv"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.contains("/nonexistent/ratings.csv"), "{err}");
    let usage = mixrec(&["fit", "--data"]);
    assert_eq!(usage.status.code(), Some(2));
    let unknown = mixrec(&["fit", "--no-such-flag"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn complete_refuses_triples() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, b"a,x,1\nb,y,2\n").unwrap();
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let out = mixrec(&[
        "complete",
        "--data",
        f.path().to_str().unwrap(),
        "--k",
        "1",
        "--out",
        out_file.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a matrix snapshot"));
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn k_auto_draws_the_curve_and_bic_picks_three_toy_clusters() {
    let Some(dir) = shared_data() else { return };
    let toy = dir.join("toy_data.txt");
    let args = [
        "--data",
        toy.to_str().unwrap(),
        "--k",
        "auto",
        "--k-range",
        "1:4",
        "--select",
        "bic",
        "--preset",
        "seed",
    ];
    let v = fit_json(&args);
    assert_eq!(v["k"].as_u64(), Some(3), "{}", v["chosen"]);
    assert_eq!(v["chosen"]["k_chosen"], true);
    let curve = v["chosen"]["trials"].as_array().unwrap();
    assert_eq!(
        curve
            .iter()
            .map(|p| p["k"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(
        curve
            .iter()
            .all(|p| p["heldout_rmse"].as_f64().unwrap().is_finite())
    );
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn eval_scores_every_method_on_the_same_split() {
    let Some(dir) = shared_data() else { return };
    let netflix = dir.join("netflix_incomplete.txt");
    let out = mixrec(&[
        "eval",
        "--data",
        netflix.to_str().unwrap(),
        "--k",
        "8",
        "--no-als",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["test_ratings"].as_u64(), Some(111_177));
    let rmse = |name: &str| {
        let methods = v["methods"].as_array().unwrap();
        methods.iter().find(|m| m["method"] == name).unwrap()["rmse"]
            .as_f64()
            .unwrap()
    };
    assert!(rmse("mixture (K = 8)") < rmse("user+item bias"));
    assert!(rmse("user+item bias") < rmse("item mean") && rmse("item mean") < rmse("global mean"));
    let bad = mixrec(&[
        "eval",
        "--data",
        netflix.to_str().unwrap(),
        "--k",
        "8",
        "--holdout",
        "1.5",
    ]);
    assert_eq!(bad.status.code(), Some(1));
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn complete_with_gaussian_plsa_keeps_observed_entries() {
    let Some(dir) = shared_data() else { return };
    let data = dir.join("test_incomplete.txt");
    let written = complete(&data, &["--k", "2", "--model", "gpl"]);
    let given = std::fs::read_to_string(&data).unwrap();
    for (w, g) in written.lines().zip(given.lines()) {
        for (a, b) in w.split(' ').zip(g.split(' ')) {
            let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
            assert!(
                if b == 0.0 {
                    (1.0..=5.0).contains(&a)
                } else {
                    a == b
                },
                "{a} vs {b}"
            );
        }
    }
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn convert_to_binary_and_back_keeps_every_rating() {
    let Some(dir) = shared_data() else { return };
    let netflix = dir.join("netflix_incomplete.txt");
    let work = tempfile::tempdir().unwrap();
    let (bin, csv) = (work.path().join("n.bin"), work.path().join("n.csv"));
    let run = |args: &[&str]| {
        let out = mixrec(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "convert",
        "--data",
        netflix.to_str().unwrap(),
        "--out",
        bin.to_str().unwrap(),
        "--to",
        "binary",
    ]);
    run(&[
        "convert",
        "--data",
        bin.to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
        "--to",
        "triples",
    ]);
    let load =
        |p: &std::path::Path| mixrec::data::load(p, mixrec::data::LoadOptions::default()).unwrap();
    let (text, binary, triples) = (load(&netflix), load(&bin), load(&csv));
    assert_eq!(binary.format, mixrec::data::Format::Binary);
    assert_eq!((&binary.ratings, binary.scale), (&text.ratings, text.scale));
    assert_eq!(
        crate::loaders::by_id(&triples),
        crate::loaders::by_id(&text)
    );
    // The same fit from either form, to the bit.
    let fit = |p: &std::path::Path| {
        fit_json(&["--data", p.to_str().unwrap(), "--k", "3", "--max-iter", "5"])["log_likelihood"]
            .clone()
    };
    assert_eq!(fit(&bin), fit(&netflix));
}

/// Writes `text` to a file in `dir` and returns its path as a string.
fn file_in(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn recommend_writes_every_users_top_items_best_first_and_unrated() {
    let Some(dir) = shared_data() else { return };
    let data = dir.join("netflix_longtail.csv");
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("recs.csv");
    let run = mixrec(&[
        "recommend",
        "--data",
        data.to_str().unwrap(),
        "--n",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let snap = mixrec::data::load(&data, mixrec::data::LoadOptions::default()).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("user,item,rank,rating,spread"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 5 * snap.ratings.n_users());
    for user in rows.chunks(5) {
        let u = snap.users.index(user[0][0]).expect("a snapshot user");
        let rated = snap.ratings.row(u).0;
        let mut last = f64::INFINITY;
        for (rank, row) in user.iter().enumerate() {
            assert_eq!(row[0], user[0][0]);
            assert_eq!(row[2], (rank + 1).to_string());
            let l = snap.items.index(row[1]).unwrap() as u32;
            assert!(
                !rated.contains(&l),
                "user {} already rated {}",
                row[0],
                row[1]
            );
            let rating: f64 = row[3].parse().unwrap();
            assert!(rating <= last && (1.0..=5.0).contains(&rating), "{row:?}");
            last = rating;
            assert!(row[4].parse::<f64>().unwrap() > 0.0);
        }
    }
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn complete_predicts_given_pairs_and_names_the_line_of_an_unknown_item() {
    let Some(dir) = shared_data() else { return };
    let data = dir.join("netflix_longtail.csv");
    let work = tempfile::tempdir().unwrap();
    let pairs = file_in(&work, "pairs.csv", "user,item\nu7,m1\nu7,m2\nnewcomer,m1\n");
    let out = work.path().join("p.csv");
    let args = |pairs: &str| {
        mixrec(&[
            "complete",
            "--data",
            data.to_str().unwrap(),
            "--k",
            "2",
            "--pairs",
            pairs,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let run = args(&pairs);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(text.lines().next(), Some("user,item,rating,spread"));
    assert_eq!(
        rows.iter().map(|r| (r[0], r[1])).collect::<Vec<_>>(),
        vec![("u7", "m1"), ("u7", "m2"), ("newcomer", "m1")]
    );
    // A newcomer is answered from no ratings: the prior, not user u7's answer.
    assert_ne!(rows[0][2], rows[2][2]);
    assert!(
        rows.iter()
            .all(|r| (1.0..=5.0).contains(&r[2].parse::<f64>().unwrap()))
    );
    let bad = file_in(&work, "bad.csv", "u7,m1\nu7,no-such-item\n");
    let run = args(&bad);
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains(&format!("{bad}:2: item \"no-such-item\"")),
        "{err}"
    );
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[test]
fn complete_needs_no_k_and_eval_shows_the_matrix_factorisation_row() {
    let Some(dir) = shared_data() else { return };
    let data = dir.join("test_incomplete.txt");
    let written = complete(&data, &[]);
    assert_eq!(written.lines().count(), 20);
    let longtail = dir.join("netflix_longtail.csv");
    let out = mixrec(&["eval", "--data", longtail.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let methods = v["methods"].as_array().unwrap();
    let als = methods
        .iter()
        .find(|m| m["method"] == "ALS MF")
        .expect("an ALS row");
    assert!(
        als["details"][0].as_str().unwrap().starts_with("rank "),
        "{als}"
    );
    let chosen = &v["chosen"][0];
    assert!(
        chosen["ridge"]["item"].as_f64().is_some() && chosen["k_chosen"] == true,
        "{chosen}"
    );
}
