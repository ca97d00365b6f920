//! `mixrec eval`: held-out scores of the model the flags ask for beside the baselines on the
//! same split, as a table or JSON.
//!
//! Imports only [`super::args`] of the CLI.

use std::io::Write;

use anyhow::{Context, bail};

use super::args::{EvalArgs, FitArgs};
use crate::data::{self, Snapshot, Split};
use crate::eval::{self, MethodScore};
use crate::select::{Chosen, Trained};

/// One method's figures over all splits.
#[derive(Debug, serde::Serialize)]
struct Summary {
    method: String,
    rmse: f64,
    rmse_sd: f64,
    mae: f64,
    mae_sd: f64,
    seconds: f64,
    /// What was chosen inside training on each split (ALS: rank and λ), when anything was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<String>,
}

/// Runs `mixrec eval` on the loaded `snapshot`.
pub fn run(args: &EvalArgs, snapshot: &Snapshot) -> anyhow::Result<()> {
    if !(args.holdout > 0.0 && args.holdout < 1.0) {
        bail!("--holdout must be between 0 and 1, got {}", args.holdout);
    }
    let splits: Vec<Split> = match args.folds {
        Some(f) if f < 2 => bail!("--folds must be at least 2"),
        Some(f) => data::k_fold(&snapshot.ratings, f, args.split_seed),
        None => vec![data::holdout(
            &snapshot.ratings,
            args.holdout,
            args.split_seed,
        )],
    };
    let mut per_split: Vec<Vec<MethodScore>> = Vec::new();
    let mut choices = Vec::new();
    for split in &splits {
        let mut scores = eval::baselines(split, snapshot.scale);
        if !args.no_als {
            scores.push(eval::als(split, snapshot.scale, args.fit.seed));
        }
        let (mut score, trained) =
            eval::model(split, snapshot.scale, &args.fit.spec(), &name(&args.fit))
                .context("training failed")?;
        score.detail = describe(&trained.chosen);
        scores.push(score);
        choices.push(trained.chosen.clone());
        per_split.push(scores);
        note_choice(&args.fit, &trained);
    }
    let summaries = summarise(&per_split);
    let mut out = std::io::stdout().lock();
    if args.fit.json {
        let report = serde_json::json!({
            "splits": splits.len(),
            "test_ratings": splits.iter().map(|s| s.test.len()).sum::<usize>(),
            "methods": summaries,
            "chosen": choices,
        });
        writeln!(out, "{report}")?;
        return Ok(());
    }
    let hidden: usize = splits.iter().map(|s| s.test.len()).sum();
    writeln!(out, "{} split(s), {hidden} held-out ratings", splits.len())?;
    let width = summaries
        .iter()
        .map(|s| s.method.chars().count())
        .max()
        .unwrap_or(6);
    writeln!(
        out,
        "{:<width$} {:>16} {:>16} {:>10}",
        "method", "RMSE", "MAE", "train s"
    )?;
    for s in &summaries {
        let (rmse, mae) = (pm(s.rmse, s.rmse_sd), pm(s.mae, s.mae_sd));
        writeln!(
            out,
            "{:<width$} {rmse:>16} {mae:>16} {:>10.3}",
            s.method, s.seconds
        )?;
    }
    for (i, split) in per_split.iter().enumerate() {
        for m in split.iter().filter(|m| !m.detail.is_empty()) {
            writeln!(out, "split {i}, {}: {}", m.method, m.detail)?;
        }
    }
    Ok(())
}

/// The model row's name: the kind, and what was fixed.
fn name(args: &FitArgs) -> String {
    let kind = match (args.model, args.seed_preset()) {
        (_, true) => "seed configuration".to_owned(),
        (kind, false) => kind.to_string(),
    };
    match args.k {
        Some(super::args::KArg::Fixed(k)) => format!("{kind} (K = {k})"),
        _ => kind,
    }
}

/// What the selection chose, in one line.
pub fn describe(c: &Chosen) -> String {
    let mut s = format!(
        "K = {}{}, λ = {}",
        c.k,
        if c.k_chosen { " (chosen)" } else { "" },
        c.prior_strength
    );
    if c.rank > 0 {
        s += &format!(", rank {}", c.rank);
    }
    if let Some(r) = c.ridge {
        s += &format!(", ridge {}:{}", r.item, r.user);
    }
    if let (Some(m), Some(b)) = (c.heldout_rmse, c.baseline_rmse) {
        s += &format!("; inner held-out RMSE {m:.4} (baseline {b:.4})");
    }
    s
}

/// With `-v`, the selection's trials on standard error.
fn note_choice(args: &FitArgs, trained: &Trained) {
    if !args.verbose {
        return;
    }
    for t in &trained.chosen.trials {
        eprintln!(
            "trial K = {:>3}  λ = {:>6}  held-out RMSE {:.4}",
            t.k, t.prior_strength, t.heldout_rmse
        );
    }
}

fn pm(mean: f64, sd: f64) -> String {
    if sd > 0.0 {
        format!("{mean:.4} ± {sd:.4}")
    } else {
        format!("{mean:.4}")
    }
}

/// Mean and (sample) standard deviation of each method over the splits.
fn summarise(per_split: &[Vec<MethodScore>]) -> Vec<Summary> {
    let n = per_split.len() as f64;
    let stats = |xs: Vec<f64>| {
        let mean = xs.iter().sum::<f64>() / n;
        let var = if n > 1.0 {
            xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        (mean, var.sqrt())
    };
    (0..per_split[0].len())
        .map(|m| {
            let col =
                |f: fn(&MethodScore) -> f64| per_split.iter().map(|s| f(&s[m])).collect::<Vec<_>>();
            let (rmse, rmse_sd) = stats(col(|s| s.scores.rmse));
            let (mae, mae_sd) = stats(col(|s| s.scores.mae));
            let (seconds, _) = stats(col(|s| s.seconds));
            Summary {
                method: per_split[0][m].method.clone(),
                rmse,
                rmse_sd,
                mae,
                mae_sd,
                seconds,
                details: per_split
                    .iter()
                    .map(|s| s[m].detail.clone())
                    .filter(|d| !d.is_empty())
                    .collect(),
            }
        })
        .collect()
}
