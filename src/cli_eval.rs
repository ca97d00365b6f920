//! `mixrec eval`: held-out scores of the mixture and the baselines, as a table or JSON.

use std::io::Write;

use anyhow::{Context, bail};

use crate::cli::{EvalArgs, KArg, ModelKind, load};
use crate::data::{self, Split};
use crate::eval::{self, MethodScore};

/// One method's figures over all splits.
#[derive(Debug, serde::Serialize)]
struct Summary {
    method: String,
    rmse: f64,
    rmse_sd: f64,
    mae: f64,
    mae_sd: f64,
    seconds: f64,
}

/// Runs `mixrec eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    if !(args.holdout > 0.0 && args.holdout < 1.0) {
        bail!("--holdout must be between 0 and 1, got {}", args.holdout);
    }
    let snapshot = load(&args.fit.data)?;
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
    for split in &splits {
        let mut scores = eval::baselines(split, snapshot.scale);
        if let (ModelKind::Gpl, KArg::Fixed(k)) = (args.fit.model, args.fit.k) {
            scores.push(eval::gpl(split, snapshot.scale, &args.fit.plsa_params(k)));
        } else {
            // `--k auto` chooses on a split of the training ratings: the test ratings stay unseen.
            let (k, _) = crate::cli::resolve_k(&args.fit, &split.train, snapshot.scale)?;
            let params = args.fit.params(k).check(split.train.n_users())?;
            scores.push(eval::mixture(split, snapshot.scale, &params).context("training failed")?);
        }
        per_split.push(scores);
    }
    let summaries = summarise(&per_split);
    let mut out = std::io::stdout().lock();
    if args.fit.json {
        let report = serde_json::json!({
            "splits": splits.len(),
            "test_ratings": splits.iter().map(|s| s.test.len()).sum::<usize>(),
            "methods": summaries,
        });
        writeln!(out, "{report}")?;
    } else {
        let hidden: usize = splits.iter().map(|s| s.test.len()).sum();
        writeln!(out, "{} split(s), {hidden} held-out ratings", splits.len())?;
        writeln!(
            out,
            "{:<16} {:>16} {:>16} {:>10}",
            "method", "RMSE", "MAE", "train s"
        )?;
        for s in &summaries {
            let (rmse, mae) = (pm(s.rmse, s.rmse_sd), pm(s.mae, s.mae_sd));
            writeln!(
                out,
                "{:<16} {rmse:>16} {mae:>16} {:>10.3}",
                s.method, s.seconds
            )?;
        }
    }
    Ok(())
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
            }
        })
        .collect()
}
