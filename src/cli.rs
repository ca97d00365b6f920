//! The command line: `serve` (the default), `synth`, `healthcheck`, `fit`, `complete`.
//!
//! Each subcommand turns its flags into library calls; errors go back to `main` as
//! `anyhow::Error` and print with their whole chain.

use std::ffi::OsString;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::data::{self, Format, LoadOptions, RatingScale, Ratings, Snapshot};
use crate::eval;
use crate::mixture::{self, Algorithm, Fit, FitParams, Init, Model, Progress};
pub use crate::predictor::ModelKind;
use crate::predictor::Predictor;

/// Collaborative filtering with Gaussian mixtures.
#[derive(Debug, Parser)]
#[command(name = "mixrec", version, about)]
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
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
    },
    /// Train a mixture on a snapshot and print it.
    Fit(FitArgs),
    /// Train, then write the snapshot's matrix with every missing entry predicted.
    Complete {
        /// Training flags.
        #[command(flatten)]
        fit: FitArgs,
        /// Where to write the completed matrix.
        #[arg(long)]
        out: PathBuf,
    },
    /// Hide a share of the ratings, train on the rest, and score the hidden ones against
    /// simple baselines on the same split.
    Eval(EvalArgs),
    /// Rewrite a snapshot in another format (binary loads far faster than text).
    Convert {
        /// The snapshot to read.
        #[command(flatten)]
        data: DataArgs,
        /// Where to write.
        #[arg(long)]
        out: PathBuf,
        /// The format to write: `binary`, `triples` (CSV) or `matrix` (positional ids only).
        #[arg(long)]
        to: Format,
    },
}

/// Flags of `eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Training flags.
    #[command(flatten)]
    pub fit: FitArgs,
    /// Share of the observed ratings hidden from training.
    #[arg(long, default_value_t = 0.1)]
    pub holdout: f64,
    /// Seed of the split (independent of `--seed`, which seeds training).
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// k-fold cross-validation instead of one split: mean ± standard deviation over folds.
    #[arg(long)]
    pub folds: Option<usize>,
}

/// Which snapshot to read.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// The ratings snapshot.
    #[arg(long)]
    pub data: PathBuf,
    /// Snapshot format.
    #[arg(long, default_value = "auto")]
    pub format: Format,
    /// Valid ratings as MIN:MAX (default: the observed range); ratings outside are an error.
    #[arg(long)]
    pub scale: Option<RatingScale>,
}

/// `--k`: a number of types or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KArg {
    /// This many types.
    Fixed(usize),
    /// Chosen over `--k-range`.
    Auto,
}

impl std::str::FromStr for KArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            _ => s
                .parse()
                .map(Self::Fixed)
                .map_err(|_| format!("expected a number or `auto`, got {s:?}")),
        }
    }
}

/// `--k-range MIN:MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KRange(pub usize, pub usize);

impl std::str::FromStr for KRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = s
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        match parsed {
            Some((lo, hi)) if 1 <= lo && lo <= hi => Ok(Self(lo, hi)),
            _ => Err(format!("expected MIN:MAX with 1 ≤ MIN ≤ MAX, got {s:?}")),
        }
    }
}

/// `--select`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SelectBy {
    /// Lowest held-out RMSE.
    Heldout,
    /// Highest BIC.
    Bic,
}

/// An on/off flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Training flags shared by `fit`, `complete` and `eval`.
#[derive(Debug, Clone, Args)]
pub struct FitArgs {
    /// Snapshot.
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of user types K, or `auto`: try each K of `--k-range` on a held-out split and
    /// keep the best by `--select`.
    #[arg(long)]
    pub k: KArg,
    /// The range `--k auto` tries, as MIN:MAX.
    #[arg(long, default_value = "1:16")]
    pub k_range: KRange,
    /// What `--k auto` minimises: held-out RMSE (`heldout`) or −BIC (`bic`).
    #[arg(long, default_value = "heldout")]
    pub select: SelectBy,
    /// The model kind: a mixture of user types, or Hofmann's Gaussian pLSA (`gpl`).
    #[arg(long, default_value = "mixture")]
    pub model: ModelKind,
    /// `em` or `kmeans` (mixture only).
    #[arg(long, default_value = "em")]
    pub algorithm: Algorithm,
    /// `seed`: the seed-compatible configuration (rows as stored, numpy's choice of rows).
    #[arg(long, value_parser = ["seed"])]
    pub preset: Option<String>,
    /// Data rows (0-based) to take as the initial means, as the seed does: `3,17,...`.
    #[arg(long, value_delimiter = ',')]
    pub init_rows: Option<Vec<usize>>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Restarts (k-means++ initialisation only); the best log-likelihood wins.
    #[arg(long)]
    pub n_init: Option<usize>,
    /// Floor of every variance.
    #[arg(long)]
    pub min_variance: Option<f64>,
    /// Stopping tolerance (EM: relative log-likelihood change; k-means: cost change); 0 runs
    /// exactly --max-iter iterations.
    #[arg(long)]
    pub tol: Option<f64>,
    /// Iteration cap.
    #[arg(long)]
    pub max_iter: Option<usize>,
    /// Pull of each mean toward its item's mean (λ); 0 turns it off.
    #[arg(long)]
    pub prior_strength: Option<f64>,
    /// Model what a global + user + item baseline leaves (`on`/`off`; default: the preset's).
    #[arg(long)]
    pub baseline: Option<Switch>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Log every iteration on standard error.
    #[arg(long, short)]
    pub verbose: bool,
}

impl FitArgs {
    /// The Gaussian pLSA parameters these flags ask for, with `k` types.
    pub fn plsa_params(&self, k: usize) -> crate::plsa::PlsaParams {
        let mut p = crate::plsa::PlsaParams::new(k);
        p.seed = self.seed;
        if let Some(n) = self.max_iter {
            p.max_iter = n;
        }
        if let Some(v) = self.min_variance {
            p.min_variance = v;
        }
        if let Some(s) = self.prior_strength {
            p.alpha = s;
        }
        p
    }

    /// The training parameters these flags ask for, with `k` types.
    pub fn params(&self, k: usize) -> FitParams {
        let mut p = match self.preset.as_deref() {
            Some("seed") => FitParams::seed_preset(k),
            _ => FitParams::new(k),
        };
        p = p.algorithm(self.algorithm).seed(self.seed);
        if let Some(rows) = &self.init_rows {
            p = p.init(Init::Rows(rows.clone()));
        }
        if let Some(n) = self.n_init {
            p = p.n_init(n);
        }
        if let Some(v) = self.min_variance {
            p = p.min_variance(v);
        }
        if let Some(t) = self.tol {
            p = p.tol(t);
        }
        if let Some(n) = self.max_iter {
            p = p.max_iter(n);
        }
        if let Some(s) = self.prior_strength {
            p = p.prior_strength(s);
        }
        if let Some(b) = self.baseline {
            p = p.baseline(b == Switch::On);
        }
        p
    }
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
        Some(Command::Complete { fit, out }) => complete(&fit, &out),
        Some(Command::Eval(args)) => crate::cli_eval::run(&args),
        Some(Command::Convert { data, out, to }) => convert(&data, &out, to),
    }
}

/// Loads the snapshot the flags name.
pub fn load(args: &DataArgs) -> anyhow::Result<Snapshot> {
    let options = LoadOptions {
        format: args.format,
        scale: args.scale,
    };
    Ok(data::load(&args.data, options)?)
}

/// The K the flags ask for: as given, or chosen on a held-out 10 % of `ratings` (seed 0);
/// with the curve it was chosen from.
pub fn resolve_k(
    args: &FitArgs,
    ratings: &Ratings,
    scale: RatingScale,
) -> anyhow::Result<(usize, Option<KSelection>)> {
    let KArg::Fixed(k) = args.k else {
        let split = data::holdout(ratings, 0.1, 0);
        let ks: Vec<usize> = (args.k_range.0..=args.k_range.1).collect();
        let n = split.train.n_users();
        let curve = eval::k_curve(&split, scale, &ks, |k| args.params(k).check(n))?;
        let criterion = match args.select {
            SelectBy::Heldout => eval::Criterion::Heldout,
            SelectBy::Bic => eval::Criterion::Bic,
        };
        let k = eval::pick(&curve, criterion).context("no K could be fitted")?;
        if !args.json {
            eprintln!("   K  held-out RMSE   log-likelihood             BIC");
            for p in &curve {
                let (ll, bic) = (
                    p.log_likelihood.unwrap_or(f64::NAN),
                    p.bic.unwrap_or(f64::NAN),
                );
                let mark = if p.k == k { "  <- chosen" } else { "" };
                eprintln!(
                    "{:>4}  {:>13.4}  {ll:>15.3}  {bic:>14.3}{mark}",
                    p.k, p.heldout_rmse
                );
            }
        }
        return Ok((k, Some(KSelection { criterion, curve })));
    };
    Ok((k, None))
}

/// How `--k auto` chose K.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KSelection {
    /// What was minimised.
    pub criterion: eval::Criterion,
    /// One point per K tried.
    pub curve: Vec<eval::KPoint>,
}

/// Trains on `snapshot`; returns the fit, the model, the training seconds and how K was chosen.
fn train(
    args: &FitArgs,
    snapshot: &Snapshot,
) -> anyhow::Result<(Fit, Model, f64, Option<KSelection>)> {
    let (k, selection) = resolve_k(args, &snapshot.ratings, snapshot.scale)?;
    let params = args.params(k).check(snapshot.ratings.n_users())?;
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
    let trained = mixture::train(&snapshot.ratings, snapshot.scale, &params, &mut log);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let (fit, model) = trained.context("training failed")?;
    Ok((fit, model, started.elapsed().as_secs_f64(), selection))
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
    let snapshot = load(&args.data)?;
    if args.model == ModelKind::Gpl {
        return fit_gpl(args, &snapshot);
    }
    let (fit, _, seconds, selection) = train(args, &snapshot)?;
    let mut report = FitReport::new(&snapshot, &fit, seconds);
    report.k_selection = selection;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        report.write_summary(&mut out)?;
    }
    Ok(())
}

/// `fit --model gpl`: Gaussian pLSA, reported with its validation curve.
fn fit_gpl(args: &FitArgs, snapshot: &Snapshot) -> anyhow::Result<()> {
    let KArg::Fixed(k) = args.k else {
        bail!("--k auto is for mixtures; give Gaussian pLSA a K")
    };
    let started = Instant::now();
    let fit = crate::plsa::fit(&snapshot.ratings, snapshot.scale, &args.plsa_params(k));
    let seconds = started.elapsed().as_secs_f64();
    let r = &snapshot.ratings;
    let report = serde_json::json!({
        "model": ModelKind::Gpl, "k": k, "n_users": r.n_users(), "n_items": r.n_items(), "n_ratings": r.nnz(),
        "iterations": fit.iterations, "best_iteration": fit.best_iteration,
        "validation_rmse": fit.validation_rmse, "training_seconds": seconds,
        "means": fit.model.means.t().outer_iter().map(|row| row.to_vec()).collect::<Vec<_>>(),
    });
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{report}")?;
    } else {
        let best = fit.validation_rmse[fit.best_iteration - 1];
        writeln!(
            out,
            "{} users × {} items, {} ratings; Gaussian pLSA with K = {k}",
            r.n_users(),
            r.n_items(),
            r.nnz()
        )?;
        writeln!(
            out,
            "{} iterations in {seconds:.3} s; kept iteration {} (validation RMSE {best:.4})",
            fit.iterations, fit.best_iteration
        )?;
    }
    Ok(())
}

fn complete(args: &FitArgs, out: &std::path::Path) -> anyhow::Result<()> {
    let snapshot = load(&args.data)?;
    if snapshot.format != Format::Matrix {
        bail!(
            "{}: complete writes a matrix and needs a matrix snapshot; for triples, ask the \
             service (`POST /v1/complete`)",
            snapshot.path.display()
        );
    }
    let model = match (args.model, args.k) {
        (ModelKind::Gpl, KArg::Fixed(k)) => Predictor::Gpl(
            crate::plsa::fit(&snapshot.ratings, snapshot.scale, &args.plsa_params(k)).model,
        ),
        (ModelKind::Gpl, KArg::Auto) => bail!("--k auto is for mixtures; give Gaussian pLSA a K"),
        (ModelKind::Mixture, _) => Predictor::Mixture(train(args, &snapshot)?.1),
    };
    let file = File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let ratings = &snapshot.ratings;
    data::write_matrix(file, ratings.n_users(), ratings.n_items(), |u, row| {
        let (items, values) = ratings.row(u);
        model
            .complete_row(items, values, row)
            .expect("snapshot items are in the model");
    })
    .with_context(|| format!("cannot write {}", out.display()))?;
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
        Format::Auto => bail!("--to needs a format: binary, triples or matrix"),
    };
    written.with_context(|| format!("cannot write {}", out.display()))
}

/// What `fit --json` prints.
#[derive(Debug, serde::Serialize)]
pub struct FitReport {
    /// K.
    pub k: usize,
    /// em or kmeans.
    pub algorithm: Algorithm,
    /// Users in the snapshot.
    pub n_users: usize,
    /// Items in the snapshot.
    pub n_items: usize,
    /// Observed ratings.
    pub n_ratings: usize,
    /// Iterations of the best run.
    pub iterations: usize,
    /// Whether the stopping rule fired.
    pub converged: bool,
    /// EM: log-likelihood at the last E-step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_likelihood: Option<f64>,
    /// k-means: cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// EM: BIC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bic: Option<f64>,
    /// Type weights. [K]
    pub weights: Vec<f64>,
    /// Type variances. [K]
    pub variances: Vec<f64>,
    /// Type means, items in snapshot order. [K][d]
    pub means: Vec<Vec<f64>>,
    /// Objective per iteration of the best run.
    pub history: Vec<f64>,
    /// Which restart won.
    pub best_init: usize,
    /// Wall-clock seconds of training (loading excluded).
    pub training_seconds: f64,
    /// With `--k auto`: the curve K was chosen from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k_selection: Option<KSelection>,
}

impl FitReport {
    /// The report of `fit` on `snapshot`.
    pub fn new(snapshot: &Snapshot, fit: &Fit, seconds: f64) -> Self {
        let r = &snapshot.ratings;
        let m = &fit.mixture;
        Self {
            k: m.k(),
            algorithm: fit.algorithm,
            n_users: r.n_users(),
            n_items: r.n_items(),
            n_ratings: r.nnz(),
            iterations: fit.iterations,
            converged: fit.converged,
            log_likelihood: fit.log_likelihood,
            cost: fit.cost,
            bic: fit
                .log_likelihood
                .map(|ll| mixture::bic(ll, m.k(), r.n_items(), r.n_users())),
            weights: m.weights.to_vec(),
            variances: m.variances.to_vec(),
            means: m.means_by_type(),
            history: fit.history.clone(),
            best_init: fit.best_init,
            training_seconds: seconds,
            k_selection: None,
        }
    }

    fn write_summary(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{} users × {} items, {} ratings; {} with K = {}",
            self.n_users, self.n_items, self.n_ratings, self.algorithm, self.k
        )?;
        let state = if self.converged {
            "converged"
        } else {
            "stopped at --max-iter"
        };
        writeln!(
            out,
            "{} iterations ({state}) in {:.3} s",
            self.iterations, self.training_seconds
        )?;
        if let (Some(ll), Some(bic)) = (self.log_likelihood, self.bic) {
            writeln!(out, "log-likelihood {ll:.6}   BIC {bic:.6}")?;
        }
        if let Some(cost) = self.cost {
            writeln!(out, "cost {cost:.6}")?;
        }
        writeln!(out, "type  weight    variance")?;
        for j in 0..self.k {
            writeln!(
                out,
                "{j:>4}  {:.6}  {:.6}",
                self.weights[j], self.variances[j]
            )?;
        }
        Ok(())
    }
}
