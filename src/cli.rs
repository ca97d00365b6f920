//! The command line: `serve` (the default), `synth`, `healthcheck`, `fit`, `complete`.
//!
//! Each subcommand turns its flags into library calls; errors go back to `main` as
//! `anyhow::Error` and print with their whole chain.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::data::{self, Format, LoadOptions, RatingScale, Snapshot};
use crate::mixture::{self, Algorithm, Fit, FitParams, Init, Model, Progress};

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

/// Training flags shared by `fit`, `complete` and `eval`.
#[derive(Debug, Clone, Args)]
pub struct FitArgs {
    /// Snapshot.
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of user types K.
    #[arg(long)]
    pub k: usize,
    /// `em` or `kmeans`.
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
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Log every iteration on standard error.
    #[arg(long, short)]
    pub verbose: bool,
}

impl FitArgs {
    /// The training parameters these flags ask for.
    pub fn params(&self) -> FitParams {
        let mut p = match self.preset.as_deref() {
            Some("seed") => FitParams::seed_preset(self.k),
            _ => FitParams::new(self.k),
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

/// Loads and trains; returns the snapshot, the fit, the model and the training seconds.
fn train(args: &FitArgs) -> anyhow::Result<(Snapshot, Fit, Model, f64)> {
    let snapshot = load(&args.data)?;
    let params = args.params().check(snapshot.ratings.n_users())?;
    let verbose = args.verbose;
    let mut log = |p: &Progress| {
        if verbose {
            eprintln!(
                "restart {} iteration {:>4}  objective {:.6}  change {:.3e}",
                p.restart, p.iteration, p.objective, p.change
            );
        }
        ControlFlow::Continue(())
    };
    let started = Instant::now();
    let fit = mixture::fit(&snapshot.ratings, &params, &mut log).context("training failed")?;
    let seconds = started.elapsed().as_secs_f64();
    let model = Model {
        mixture: fit.mixture.clone(),
        algorithm: fit.algorithm,
        scale: snapshot.scale,
        clip: params.clip_predictions(),
    };
    Ok((snapshot, fit, model, seconds))
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
    let (snapshot, fit, _, seconds) = train(args)?;
    let report = FitReport::new(&snapshot, &fit, seconds);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        report.write_summary(&mut out)?;
    }
    Ok(())
}

fn complete(args: &FitArgs, out: &std::path::Path) -> anyhow::Result<()> {
    let (snapshot, _, model, _) = train(args)?;
    if snapshot.format != Format::Matrix {
        bail!(
            "{}: complete writes a matrix and needs a matrix snapshot; for triples, ask the \
             service (`POST /v1/complete`)",
            snapshot.path.display()
        );
    }
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
