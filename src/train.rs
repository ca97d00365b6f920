//! Training for the service: load a snapshot (a file or the embedded demo), check the
//! parameters, fit, and package the model with its catalogue and the metadata `GET /v1/model`
//! reports. Blocking and CPU-bound: callers run it off their async workers.
//!
//! No web or async types here.

use std::collections::HashMap;
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::config::TrainingSettings;
#[cfg(test)]
use crate::config::Auto;
use crate::data::{self, DataError, Format, LoadOptions, Snapshot};
use crate::mixture::{self, Algorithm, FitError, FitParams, ParamsError, Progress, top_n};
use crate::plsa::PlsaParams;
#[cfg(test)]
use crate::predictor::ModelKind;
use crate::predictor::Predictor;
use crate::select;
use crate::service::{Catalogue, KSelection, ModelInfo, ServedModel, SnapshotInfo, TypeSummary};

/// The embedded demo snapshot (made by `mixrec synth`, see README-service.md).
pub const DEMO_RATINGS: &str = include_str!("../data/demo-ratings.csv");
/// Titles of the demo snapshot's items.
pub const DEMO_TITLES: &str = include_str!("../data/demo-items.csv");
/// How the embedded snapshot is named in metadata and logs.
pub const DEMO_PATH: &str = "embedded:data/demo-ratings.csv";

/// Characteristic items listed per type.
const TYPE_ITEMS: usize = 5;

/// Where the ratings come from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Source {
    /// The demo catalogue compiled into the binary.
    Embedded,
    /// A snapshot file, with its format and optional titles file.
    File {
        /// Snapshot file.
        path: PathBuf,
        /// Its format.
        format: Format,
        /// Optional `item_id,title` CSV.
        titles: Option<PathBuf>,
    },
}

/// Why a training produced no model.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The snapshot could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The titles file could not be read.
    #[error("{path}:{line}: {reason}")]
    Titles {
        /// The file.
        path: String,
        /// 1-based line (0: the file as a whole).
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// The parameters do not fit the snapshot.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The fit failed or was cancelled.
    #[error(transparent)]
    Fit(#[from] FitError),
    /// The training thread pool could not be started.
    #[error("cannot start the training threads: {0}")]
    Threads(String),
    /// The fit returned parameters that are not all finite numbers.
    #[error("the trained model has non-finite parameters; it was not used")]
    NonFinite,
    /// A type of the trained model holds (almost) no users.
    #[error(
        "type {index} of the trained model is empty (weight {weight:.3e}, {users:.2} users' worth); it was not used"
    )]
    EmptyType {
        /// The type.
        index: usize,
        /// Its weight.
        weight: f64,
        /// Weight × users.
        users: f64,
    },
    /// The snapshot file changed while it was being read.
    #[error("{path}: the file changed while it was being read ({what}); retry once it is complete")]
    Changed {
        /// The file.
        path: String,
        /// What changed.
        what: String,
    },
    /// Every K tried left a type empty.
    #[error(transparent)]
    Select(select::SelectError),
    /// A saved model does not fit the snapshot it names.
    #[error("{0}")]
    Mismatch(String),
}

/// A snapshot read for training: its ratings, titles and the SHA-256 of the file's bytes.
#[derive(Debug)]
pub struct Loaded {
    /// Where it came from.
    pub source: Source,
    /// The ratings and ids.
    pub snapshot: Snapshot,
    /// Display titles by item id.
    pub titles: HashMap<String, String>,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
}

/// The engine parameters these settings ask for.
pub fn params(t: &TrainingSettings) -> FitParams {
    FitParams::new(t.k.value().unwrap_or(1))
        .algorithm(t.algorithm)
        .seed(t.seed)
        .n_init(t.n_init)
        .tol(t.tol)
        .max_iter(t.max_iter)
        .min_variance(t.min_variance)
}

/// Loads `source`, trains with `settings`, and returns the model as version `version`.
/// `on_iter` sees every iteration and may cancel.
pub fn train(
    source: &Source,
    settings: &TrainingSettings,
    version: u64,
    on_iter: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<ServedModel, TrainError> {
    train_loaded(load(source)?, settings, version, on_iter)
}

/// Trains on a loaded snapshot; see [`train`].
pub fn train_loaded(
    loaded: Loaded,
    settings: &TrainingSettings,
    version: u64,
    on_iter: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<ServedModel, TrainError> {
    let Loaded {
        snapshot,
        titles,
        sha256,
        ..
    } = loaded;
    let span = tracing::info_span!("training", version, k = ?settings.k.value());
    let _enter = span.enter();
    let mut log = |p: &Progress| {
        tracing::debug!(
            restart = p.restart,
            iteration = p.iteration,
            objective = p.objective,
            change = p.change,
            seconds = p.seconds,
            remaining = p.remaining,
            "iteration"
        );
        on_iter(p)
    };
    let started = Instant::now();
    let (model, summary) = fit(&snapshot, settings, &mut log)?;
    let seconds = started.elapsed().as_secs_f64();
    check(&model, snapshot.ratings.n_users())?;
    let info = model_info(&snapshot, &summary, &model, version, seconds, sha256);
    log_trained(&info);
    let types = type_summaries(&model);
    let catalogue = Catalogue::new(snapshot, titles);
    Ok(ServedModel::new(model, info, catalogue, types))
}

/// Refuses a model with a non-finite parameter or a type that holds less than half a user.
pub fn check(model: &Predictor, n_users: usize) -> Result<(), TrainError> {
    if !model.is_finite() {
        return Err(TrainError::NonFinite);
    }
    for index in 0..model.k() {
        let weight = model.type_weight(index);
        let users = weight * n_users as f64;
        if users < 0.5 {
            return Err(TrainError::EmptyType {
                index,
                weight,
                users,
            });
        }
    }
    Ok(())
}

/// Whether a saved model may serve with `loaded`: it must be the snapshot the model was trained
/// on (same SHA-256, same number of items), and the model must pass [`check`].
pub fn fits(loaded: &Loaded, info: &ModelInfo, model: &Predictor) -> Result<(), TrainError> {
    if loaded.sha256 != info.snapshot.sha256 {
        return Err(TrainError::Mismatch(format!(
            "model version {} was trained on a snapshot with SHA-256 {}, {} now has {}",
            info.version,
            info.snapshot.sha256,
            source_name(&loaded.source),
            loaded.sha256
        )));
    }
    if model.n_items() != loaded.snapshot.ratings.n_items() {
        return Err(TrainError::Mismatch(format!(
            "model version {} has {} items, the snapshot {}",
            info.version,
            model.n_items(),
            loaded.snapshot.ratings.n_items()
        )));
    }
    check(model, loaded.snapshot.ratings.n_users())
}

/// A saved model back in service with its snapshot (see [`fits`]).
pub fn restore(loaded: Loaded, info: ModelInfo, model: Predictor) -> ServedModel {
    let types = type_summaries(&model);
    let catalogue = Catalogue::new(loaded.snapshot, loaded.titles);
    ServedModel::new(model, info, catalogue, types)
}

/// How `source` is named in metadata, jobs and logs.
pub fn source_name(source: &Source) -> String {
    match source {
        Source::Embedded => DEMO_PATH.to_owned(),
        Source::File { path, .. } => path.display().to_string(),
    }
}

/// What the service's `[training]` settings ask [`select::train`] for: the one settings →
/// parameters conversion.
pub fn spec(settings: &TrainingSettings) -> select::Spec {
    let mut spec = select::Spec::new(settings.model);
    spec.mixture = params(settings);
    spec.plsa = PlsaParams {
        seed: settings.seed,
        max_iter: settings.max_iter,
        ..PlsaParams::new(1)
    };
    spec.k = settings.k.value();
    spec.k_range = (settings.k_range[0], settings.k_range[1]);
    spec.holdout = settings.holdout;
    spec.split_seed = settings.seed;
    spec.prior_strength = settings.prior_strength.value();
    spec.ridge = settings.ridge.value().map(|[item, user]| mixture::Ridge { item, user });
    spec.rank = settings.rank.value();
    spec
}

/// Trains what `settings` ask for through [`select::train`], the path every CLI command takes.
fn fit(
    snapshot: &Snapshot,
    settings: &TrainingSettings,
    log: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<(Predictor, FitSummary), TrainError> {
    let trained = select::train(&snapshot.ratings, snapshot.scale, &spec(settings), log)?;
    let f = &trained.figures;
    let summary = FitSummary {
        log_likelihood: f.log_likelihood,
        cost: f.cost,
        iterations: f.iterations,
        converged: f.converged,
        k_selection: if trained.chosen.k_chosen {
            KSelection::Heldout
        } else {
            KSelection::Configured
        },
        heldout_rmse: trained.chosen.heldout_rmse,
        selection: crate::service::Selection {
            prior_strength: trained.chosen.prior_strength,
            ridge: trained.chosen.ridge,
            rank: (settings.model == crate::predictor::ModelKind::Mfa).then_some(trained.chosen.rank),
            baseline_rmse: trained.chosen.baseline_rmse,
            trials: trained.chosen.trials.len(),
        },
    };
    Ok((trained.predictor, summary))
}

/// What `GET /v1/model` reports about `fit` of `model` on `snapshot`.
fn model_info(
    snapshot: &Snapshot,
    fit: &FitSummary,
    model: &Predictor,
    version: u64,
    seconds: f64,
    sha256: String,
) -> ModelInfo {
    let r = &snapshot.ratings;
    let bic = fit
        .log_likelihood
        .map(|ll| mixture::bic(ll, model.k(), r.n_items(), r.n_users()));
    ModelInfo {
        version,
        trained_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        model: model.kind(),
        algorithm: match model {
            Predictor::Mixture(m) => m.algorithm,
            Predictor::Gpl(_) | Predictor::Mfa(_) => Algorithm::Em,
        },
        baseline: match model {
            Predictor::Mixture(m) => m.baseline.is_some(),
            Predictor::Mfa(_) => true,
            Predictor::Gpl(_) => false,
        },
        k: model.k(),
        k_selection: fit.k_selection,
        heldout_rmse: fit.heldout_rmse,
        selection: Some(fit.selection.clone()),
        n_users: r.n_users(),
        n_items: r.n_items(),
        n_ratings: r.nnz(),
        log_likelihood: fit.log_likelihood,
        cost: fit.cost,
        bic,
        iterations: fit.iterations,
        converged: fit.converged,
        training_seconds: seconds,
        snapshot: SnapshotInfo {
            path: snapshot.path.display().to_string(),
            format: snapshot.format,
            sha256,
        },
    }
}

/// The one info line per training.
fn log_trained(info: &ModelInfo) {
    tracing::info!(
        version = info.version,
        algorithm = %info.algorithm,
        k = info.k,
        n_ratings = info.n_ratings,
        log_likelihood = info.log_likelihood,
        iterations = info.iterations,
        converged = info.converged,
        seconds = info.training_seconds,
        "trained"
    );
}

/// The figures of a fit that outlive its mixture (which moves into the model).
struct FitSummary {
    log_likelihood: Option<f64>,
    cost: Option<f64>,
    iterations: usize,
    converged: bool,
    k_selection: KSelection,
    heldout_rmse: Option<f64>,
    selection: crate::service::Selection,
}

/// Reads `source`: the snapshot, its titles and the SHA-256 of its bytes. A file that changes
/// while it is read (it grows, or is replaced) is an error, not a model of half the data.
pub fn load(source: &Source) -> Result<Loaded, TrainError> {
    match source {
        Source::Embedded => {
            let mut snapshot = data::load_str(DEMO_RATINGS, LoadOptions::default())?;
            snapshot.path = PathBuf::from(DEMO_PATH);
            let titles = parse_titles(DEMO_TITLES, "embedded:data/demo-items.csv")?;
            Ok(Loaded {
                source: source.clone(),
                snapshot,
                titles,
                sha256: hex(&Sha256::digest(DEMO_RATINGS.as_bytes())),
            })
        }
        Source::File {
            path,
            format,
            titles,
        } => {
            let options = LoadOptions {
                format: *format,
                scale: None,
            };
            let before = Stamp::of(path)?;
            // A file still being written often ends in half a line: say it changed rather
            // than report that line.
            let read = data::load(path, options)
                .map_err(TrainError::from)
                .and_then(|s| Ok((s, file_sha256(path)?)));
            if let Some(what) = before.change(&Stamp::of(path)?) {
                return Err(TrainError::Changed {
                    path: path.display().to_string(),
                    what,
                });
            }
            let (snapshot, sha256) = read?;
            let titles = match titles {
                Some(t) => read_titles(t)?,
                None => HashMap::new(),
            };
            Ok(Loaded {
                source: source.clone(),
                snapshot,
                titles,
                sha256,
            })
        }
    }
}

/// What tells one version of a file from the next: size, modification time, and (on Unix)
/// the inode, which a replace-by-rename changes.
#[derive(Debug, PartialEq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Result<Self, TrainError> {
        let meta = std::fs::metadata(path).map_err(|source| DataError::Io {
            path: path.to_owned(),
            source,
        })?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }

    /// What changed between `self` and `later`, if anything.
    fn change(&self, later: &Self) -> Option<String> {
        if self.inode != later.inode {
            Some("it was replaced".into())
        } else if self.len != later.len {
            Some(format!("{} bytes, then {}", self.len, later.len))
        } else if self.modified != later.modified {
            Some("it was written to".into())
        } else {
            None
        }
    }
}

fn file_sha256(path: &Path) -> Result<String, TrainError> {
    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_titles(path: &Path) -> Result<HashMap<String, String>, TrainError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::Titles {
        path: name.clone(),
        line: 0,
        reason: e.to_string(),
    })?;
    parse_titles(&text, &name)
}

/// `item_id,title` lines, header optional; the title is everything after the first comma.
pub fn parse_titles(text: &str, name: &str) -> Result<HashMap<String, String>, TrainError> {
    let mut titles = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || (i == 0 && line.starts_with("item_id,")) {
            continue;
        }
        let Some((id, title)) = line.split_once(',') else {
            return Err(TrainError::Titles {
                path: name.to_owned(),
                line: i + 1,
                reason: "expected item_id,title".into(),
            });
        };
        titles.insert(id.trim().to_owned(), title.trim().to_owned());
    }
    Ok(titles)
}

/// Each type's weight, variance and the items whose mean rises most above the weighted mean of
/// all types (`lift_jl = mean_jl − Σ_i w_i mean_il`, on the rating scale): what sets the type
/// apart.
pub fn type_summaries(model: &Predictor) -> Vec<TypeSummary> {
    let (k, d) = (model.k(), model.n_items());
    // (n_items,): the mean every type would share if types did not matter.
    let overall: Vec<f64> = (0..d)
        .map(|l| {
            (0..k)
                .map(|j| model.type_weight(j) * model.type_mean(l, j))
                .sum()
        })
        .collect();
    (0..k)
        .map(|j| {
            let mut lifts: Vec<(f64, u32)> = (0..d)
                .map(|l| (model.type_mean(l, j) - overall[l], l as u32))
                .collect();
            top_n(&mut lifts, TYPE_ITEMS, |a, b| {
                b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
            });
            TypeSummary {
                weight: model.type_weight(j),
                variance: model.type_variance(j),
                items: lifts
                    .into_iter()
                    .map(|(lift, l)| (l, model.type_mean(l as usize, j), lift))
                    .collect(),
            }
        })
        .collect()
}

/// Small, fast training settings for tests: K = 3, one restart, at most 50 iterations.
#[cfg(test)]
pub(crate) fn quick_settings() -> TrainingSettings {
    TrainingSettings {
        k: Auto::Is(3),
        algorithm: Algorithm::Em,
        seed: 1,
        n_init: 1,
        tol: 1e-6,
        max_iter: 50,
        min_variance: 0.25,
        threads: 0,
        model: ModelKind::Mixture,
        k_range: [1, 16],
        holdout: 0.1,
        prior_strength: Auto::Auto,
        ridge: Auto::Auto,
        rank: Auto::Auto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_demo_trains_with_metadata() {
        let mut iterations = 0;
        let mut count = |_: &Progress| {
            iterations += 1;
            ControlFlow::Continue(())
        };
        let settings = TrainingSettings {
            holdout: 0.0,
            ..quick_settings()
        };
        let served = train(&Source::Embedded, &settings, 7, &mut count).unwrap();
        let info = served.info();
        assert_eq!(info.version, 7);
        assert_eq!(info.heldout_rmse, None);
        assert_eq!(info.snapshot.path, DEMO_PATH);
        assert_eq!(info.snapshot.sha256.len(), 64);
        assert_eq!(info.iterations, iterations);
        assert!(info.log_likelihood.unwrap().is_finite());
        assert_eq!(served.types().len(), 3);
        assert!(served.catalogue().title("m001").is_some());
    }

    #[test]
    fn a_fit_that_loses_a_type_is_retried_with_more_restarts() {
        // K = 6 with one restart from seed 0 leaves a type empty on the demo (weight 2e-6);
        // two restarts do too, four find all six planted types.
        let settings = TrainingSettings {
            k: Auto::Is(6),
            n_init: 1,
            seed: 0,
            max_iter: 500,
            holdout: 0.0,
            ..quick_settings()
        };
        let mut go = |_: &Progress| ControlFlow::Continue(());
        let demo = load(&Source::Embedded).unwrap().snapshot;
        let first = crate::mixture::train(
            &demo.ratings,
            demo.scale,
            &params(&settings).check(2000).unwrap(),
            &mut go,
        )
        .unwrap()
        .1;
        let lost = check(&Predictor::Mixture(first), 2000).unwrap_err();
        assert!(matches!(lost, TrainError::EmptyType { .. }), "{lost}");
        let served = train(&Source::Embedded, &settings, 1, &mut go).unwrap();
        let k = served.info().k;
        assert_eq!(k, 6);
        check(served.predictor(), 2000).unwrap();
    }

    #[test]
    fn k_auto_finds_the_demo_catalogue_planted_types() {
        let mut go = |_: &Progress| ControlFlow::Continue(());
        let settings = TrainingSettings {
            k: Auto::Auto,
            k_range: [1, 10],
            max_iter: 200,
            ..quick_settings()
        };
        let served = train(&Source::Embedded, &settings, 1, &mut go).unwrap();
        let info = served.info();
        assert_eq!(info.k_selection, KSelection::Heldout);
        // `mixrec synth` planted 6 types; held-out error stops improving around there.
        assert!((4..=8).contains(&info.k), "chose K = {}", info.k);
        assert!(info.heldout_rmse.unwrap() < 1.0 && info.baseline);
    }

    #[test]
    fn gaussian_plsa_serves_with_its_validation_rmse() {
        let mut go = |_: &Progress| ControlFlow::Continue(());
        let settings = TrainingSettings {
            model: ModelKind::Gpl,
            k: Auto::Is(4),
            ..quick_settings()
        };
        let served = train(&Source::Embedded, &settings, 1, &mut go).unwrap();
        let info = served.info();
        assert_eq!(
            (info.model, info.k, info.k_selection),
            (ModelKind::Gpl, 4, KSelection::Configured)
        );
        assert!(info.heldout_rmse.unwrap() < 1.2 && info.log_likelihood.is_none());
        let types = served.types();
        assert!((types.iter().map(|t| t.weight).sum::<f64>() - 1.0).abs() < 1e-9);
        let answer = served
            .recommend(&[("m001".into(), 5.0)], 3, 10, &[])
            .unwrap();
        assert_eq!(answer.items.len(), 3);
        assert!((answer.posterior.iter().map(|p| p.1).sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_gaussian_plsa_training_can_be_cancelled_too() {
        let mut seen = 0;
        let mut stop_at_3 = |p: &Progress| {
            seen = p.iteration;
            assert!(p.objective.is_finite() && p.seconds >= 0.0);
            if p.iteration == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let settings = TrainingSettings {
            model: ModelKind::Gpl,
            k: Auto::Is(4),
            ..quick_settings()
        };
        let err = train(&Source::Embedded, &settings, 1, &mut stop_at_3).unwrap_err();
        assert!(matches!(err, TrainError::Fit(FitError::Cancelled)));
        assert_eq!(seen, 3);
    }

    #[test]
    fn a_cancelled_training_is_an_error() {
        let mut stop = |_: &Progress| ControlFlow::Break(());
        let err = train(&Source::Embedded, &quick_settings(), 1, &mut stop).unwrap_err();
        assert!(matches!(err, TrainError::Fit(FitError::Cancelled)));
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let source = Source::File {
            path: "/nonexistent/ratings.csv".into(),
            format: Format::Auto,
            titles: None,
        };
        let mut go = |_: &Progress| ControlFlow::Continue(());
        let err = train(&source, &quick_settings(), 1, &mut go).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/ratings.csv"),
            "{err}"
        );
    }

    #[test]
    fn titles_parse_with_or_without_header() {
        let t = parse_titles("item_id,title\nm1,The Harbor, Part 2\n\nm2,X\n", "t").unwrap();
        assert_eq!(t["m1"], "The Harbor, Part 2");
        assert_eq!(t.len(), 2);
        assert!(parse_titles("m1 no comma\n", "t").is_err());
    }
}

impl From<select::SelectError> for TrainError {
    fn from(e: select::SelectError) -> Self {
        match e {
            select::SelectError::Params(p) => Self::Params(p),
            select::SelectError::Fit(f) => Self::Fit(f),
            other => Self::Select(other),
        }
    }
}
