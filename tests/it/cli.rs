//! The real `mixrec` binary, run as a user would.

use std::process::{Command, Output};

use clap::CommandFactory;
use serde_json::Value;

use crate::support::{assert_rel, shared_data};

fn mixrec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mixrec"))
        .args(args)
        .output()
        .expect("the binary runs")
}

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
    assert_eq!(v["k"].as_u64(), Some(3), "{}", v["k_selection"]);
    let curve = v["k_selection"]["curve"].as_array().unwrap();
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
    assert!(rmse("mixture") < rmse("user+item bias"));
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
