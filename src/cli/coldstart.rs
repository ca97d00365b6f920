//! `mixrec eval --cold-start N`: the cold-start simulation of [`crate::eval::coldstart`], as a
//! table (RMSE per strategy and number of answers, then the questions it took) or JSON.
//!
//! Imports only [`super::args`] of the CLI.

use std::io::Write;

use anyhow::{Context, bail};

use super::args::EvalArgs;
use crate::data::Snapshot;
use crate::eval::coldstart::{self, ColdStart, ColdStartParams};

/// Runs the simulation on `snapshot` with up to `answers` answers a user.
pub fn run(args: &EvalArgs, snapshot: &Snapshot, answers: usize) -> anyhow::Result<()> {
    if answers == 0 {
        bail!("--cold-start must be at least 1");
    }
    if !(args.holdout > 0.0 && args.holdout < 1.0) {
        bail!("--holdout must be between 0 and 1, got {}", args.holdout);
    }
    if args.folds.is_some() {
        bail!("--cold-start holds out users once: --folds does not apply");
    }
    let p = ColdStartParams {
        answers,
        user_share: args.holdout,
        seed: args.split_seed,
    };
    let (cs, trained) = coldstart::run(&snapshot.ratings, snapshot.scale, &args.fit.spec(), &p)
        .context("training failed")?;
    let mut out = std::io::stdout().lock();
    if args.fit.json {
        let report = serde_json::json!({ "cold_start": cs, "chosen": trained.chosen });
        writeln!(out, "{report}")?;
        return Ok(());
    }
    let c = &trained.chosen;
    writeln!(
        out,
        "{} held-out users ({} trained on), {} ratings scored; {} with K = {}, λ = {}{}",
        cs.test_users,
        cs.train_users,
        cs.scored_ratings,
        trained.predictor.kind(),
        c.k,
        c.prior_strength,
        if c.rank > 0 {
            format!(", rank {}", c.rank)
        } else {
            String::new()
        }
    )?;
    table(&mut out, &cs)?;
    Ok(())
}

/// RMSE rows, then the mean questions asked for each number of answers.
fn table(out: &mut impl Write, cs: &ColdStart) -> std::io::Result<()> {
    let head: String = cs.checkpoints.iter().map(|c| format!("{c:>9}")).collect();
    writeln!(out, "RMSE after answers {head}")?;
    for curve in &cs.curves {
        let row: String = curve.rmse.iter().map(|r| format!("{r:>9.4}")).collect();
        writeln!(out, "  {:<16} {row}", name(curve.strategy))?;
    }
    writeln!(out, "questions asked    {head}")?;
    for curve in &cs.curves {
        let row: String = curve
            .questions
            .iter()
            .map(|q| format!("{q:>9.1}"))
            .collect();
        writeln!(out, "  {:<16} {row}", name(curve.strategy))?;
    }
    Ok(())
}

fn name(s: coldstart::Strategy) -> &'static str {
    match s {
        coldstart::Strategy::Popular => "popular",
        coldstart::Strategy::Random => "random",
        coldstart::Strategy::Informative => "informative",
    }
}
