//! The command line: `serve` (the default), `synth`, `healthcheck`, `fit`, `complete`,
//! `recommend`, `eval`, `convert`.
//!
//! Each subcommand turns its flags into library calls; errors go back to `main` as
//! `anyhow::Error` and print with their whole chain. The training commands all train through
//! [`crate::select::train`], as the service does. The files below this one import only
//! [`args`] (and the library), never this file.

pub mod args;
mod batch;
mod coldstart;
mod eval;
mod report;

use std::ffi::OsString;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::data::{self, Format, LoadOptions, Snapshot};
use crate::mixture::Progress;
use crate::select::{self, Trained};
pub use args::{DataArgs, EvalArgs, FitArgs, KArg, KRange, ModelKind, SelectBy, Switch};
pub use report::FitReport;

const EXAMPLES: &str = "\
Examples:
  mixrec                                         serve the embedded demo on http://127.0.0.1:8080
  mixrec serve --data ratings.csv --listen 0.0.0.0:8080
  mixrec fit --data ratings.csv                  train (K, λ and the ridge chosen on held-out ratings)
  mixrec eval --data ratings.csv                 held-out RMSE beside the baselines
  mixrec recommend --data ratings.csv --out recs.csv --n 10
  mixrec complete --data ratings.csv --pairs pairs.csv --out predictions.csv
  mixrec synth --users 700 --items 9000 --ratings 100000 --types 8 --seed 7 --out longtail.csv";

/// Collaborative filtering with Gaussian mixtures.
#[derive(Debug, Parser)]
#[command(name = "mixrec", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do; none serves with the defaults.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train on the snapshot and serve the HTTP API (the default).
    Serve(crate::config::ServeArgs),
    /// Write a synthetic snapshot with planted user types (and a titles file).
    Synth(crate::synth::SynthArgs),
    /// Exit 0 when the service at --addr answers `GET /healthz` with 200 (for containers).
    Healthcheck {
        /// Address of the service.
        #[arg(long, default_value = "127.0.0.1:8080", value_parser = crate::config::resolve_addr)]
        addr: std::net::SocketAddr,
    },
    /// Train a model on a snapshot and print it.
    Fit(FitArgs),
    /// Train, then predict: a matrix snapshot's every missing entry (`--out`, matrix format),
    /// or the ratings of the `user,item` pairs in `--pairs` (`--out`, `user,item,rating,spread`).
    Complete {
        /// Training flags.
        #[command(flatten)]
        fit: FitArgs,
        /// A CSV of `user,item` pairs to predict (header optional).
        #[arg(long)]
        pairs: Option<PathBuf>,
        /// Where to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Train, then write every user's top `--n` unrated items as `user,item,rank,rating,spread`.
    Recommend {
        /// Training flags.
        #[command(flatten)]
        fit: FitArgs,
        /// Items per user.
        #[arg(long, default_value_t = 10)]
        n: usize,
        /// Where to write the CSV.
        #[arg(long)]
        out: PathBuf,
    },
    /// Hide a share of the ratings, train on the rest, and score the hidden ones against the
    /// baselines (means, user+item bias, ALS matrix factorisation) on the same split.
    Eval(EvalArgs),
    /// Rewrite a snapshot in another format (binary loads far faster than text).
    Convert {
        /// The snapshot to read.
        #[command(flatten)]
        data: DataArgs,
        /// Where to write.
        #[arg(long)]
        out: PathBuf,
        /// The format to write: `binary`, `triples` (CSV), `parquet` or `matrix` (positional
        /// ids only).
        #[arg(long)]
        to: Format,
    },
}

/// Runs the command line `args` (program name first).
pub fn run<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::parse_from(args).command {
        None => crate::http::run(&crate::config::ServeArgs::default()),
        Some(Command::Serve(args)) => crate::http::run(&args),
        Some(Command::Synth(args)) => synth(&args),
        Some(Command::Healthcheck { addr }) => crate::http::healthcheck(addr),
        Some(Command::Fit(args)) => fit(&args),
        Some(Command::Complete { fit, pairs, out }) => {
            let (snapshot, trained) = load_and_train(&fit)?;
            match pairs {
                Some(pairs) => batch::pairs(&snapshot, &trained.predictor, &pairs, &out),
                None => batch::matrix(&snapshot, &trained.predictor, &out),
            }
        }
        Some(Command::Recommend { fit, n, out }) => {
            if n == 0 {
                bail!("--n must be at least 1");
            }
            let (snapshot, trained) = load_and_train(&fit)?;
            batch::recommend(&snapshot, &trained.predictor, n, &out)
        }
        Some(Command::Eval(args)) => match args.cold_start {
            Some(n) => coldstart::run(&args, &load(&args.fit.data)?, n),
            None => eval::run(&args, &load(&args.fit.data)?),
        },
        Some(Command::Convert { data, out, to }) => convert(&data, &out, to),
    }
}

/// Loads the snapshot the flags name.
pub fn load(args: &DataArgs) -> anyhow::Result<Snapshot> {
    let options = LoadOptions {
        format: args.format,
        scale: args.scale,
        columns: args.columns.clone(),
        ..Default::default()
    };
    Ok(data::load(&args.data, options)?)
}

/// Loads the snapshot and trains on it; returns the training seconds too.
fn load_and_train(args: &FitArgs) -> anyhow::Result<(Snapshot, Trained)> {
    let mut snapshot = load(&args.data)?;
    let (trained, _) = train(args, &mut snapshot)?;
    Ok((snapshot, trained))
}

/// Trains on `snapshot` as the flags ask; returns the model and the training seconds. The
/// ratings leave the snapshot while the search runs on its split and come back, the same
/// (`select::train_owned`: a large snapshot's peak memory is lower by a copy of the ratings).
fn train(args: &FitArgs, snapshot: &mut Snapshot) -> anyhow::Result<(Trained, f64)> {
    let verbose = args.verbose;
    // A progress line redrawn in place on a terminal; a log line per iteration with -v.
    let bar =
        (!verbose && std::io::stderr().is_terminal()).then(indicatif::ProgressBar::new_spinner);
    let mut log = |p: &Progress| {
        let line = progress_line(p);
        if verbose {
            eprintln!("{line}");
        }
        if let Some(bar) = &bar {
            bar.set_message(line);
            bar.tick();
        }
        ControlFlow::Continue(())
    };
    let started = Instant::now();
    let ratings = std::mem::take(&mut snapshot.ratings);
    let (trained, ratings) = select::train_owned(ratings, snapshot.scale, &args.spec(), &mut log);
    snapshot.ratings = ratings;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let trained = trained.context("training failed")?;
    if !args.json && trained.chosen.heldout_rmse.is_some() {
        eprintln!("chose {}", eval::describe(&trained.chosen));
    }
    Ok((trained, started.elapsed().as_secs_f64()))
}

fn synth(args: &crate::synth::SynthArgs) -> anyhow::Result<()> {
    let spec = args.spec();
    spec.check()?;
    let create = |p: &std::path::Path| {
        File::create(p).with_context(|| format!("cannot create {}", p.display()))
    };
    crate::synth::write_snapshot(&spec, args.format, create(&args.out)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if let Some(titles) = &args.titles {
        crate::synth::write_titles(spec.items, spec.seed, create(titles)?)
            .with_context(|| format!("cannot write {}", titles.display()))?;
    }
    Ok(())
}

fn fit(args: &FitArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut snapshot = load(&args.data)?;
    let load_seconds = started.elapsed().as_secs_f64();
    if args.verbose {
        eprintln!(
            "loaded {} ratings in {load_seconds:.3} s",
            snapshot.ratings.nnz()
        );
    }
    let (trained, seconds) = train(args, &mut snapshot)?;
    let report = FitReport::new(&snapshot, &trained, load_seconds, seconds);
    // One write for the whole report, not one a line (stdout is line-buffered).
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        report.write_summary(&mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// One iteration as a line: objective, change, seconds and the estimated time left.
fn progress_line(p: &Progress) -> String {
    let eta = p
        .remaining
        .map_or_else(|| "?".into(), |n| format!("{:.1} s", n as f64 * p.seconds));
    format!(
        "restart {} iteration {:>4}  objective {:.6}  change {:.3e}  {:.3} s  ETA {eta}",
        p.restart, p.iteration, p.objective, p.change, p.seconds
    )
}

/// `mixrec convert`: reads a snapshot and writes it in format `to`.
fn convert(args: &DataArgs, out: &std::path::Path, to: Format) -> anyhow::Result<()> {
    let snapshot = load(args)?;
    let file = File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let positional = matches!(snapshot.users, data::IdMap::Positional(_))
        && matches!(snapshot.items, data::IdMap::Positional(_));
    let written = match to {
        Format::Binary => data::write_binary(file, &snapshot),
        Format::Triples => data::write_triples(file, &snapshot),
        Format::Parquet => data::write_parquet(file, &snapshot),
        Format::Matrix if positional => {
            let r = &snapshot.ratings;
            data::write_matrix(file, r.n_users(), r.n_items(), |u, row| {
                let (items, values) = r.row(u);
                items
                    .iter()
                    .zip(values)
                    .for_each(|(&l, &x)| row[l as usize] = f64::from(x));
            })
        }
        Format::Matrix => bail!(
            "a matrix names users and items by position: {} has named ids",
            snapshot.path.display()
        ),
        Format::Auto => bail!("--to needs a format: binary, triples, parquet or matrix"),
    };
    written.with_context(|| format!("cannot write {}", out.display()))
}

/// The message `mixrec: …` prints for `error`: its chain of causes, each cause left out when
/// the message before it already ends with it (an I/O error's text is often both the
/// outer error's message and its source: `x.csv: No such file or directory (os error 2)`).
pub fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
