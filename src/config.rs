//! Typed service settings, layered: the compiled-in `config/default.toml`, then a `--config`
//! file, then `MIXREC__SECTION__KEY` environment variables (and `MIXREC_ADMIN_TOKEN`), then the
//! command-line flags of `mixrec serve`. Validated once at start-up.
//!
//! No web or async types: the HTTP layer turns these plain values into its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format as _, Toml};
use serde::{Deserialize, Serialize};

use crate::data::{Columns, Duplicates, Format, Source};
use crate::mixture::{Algorithm, FitParams, Ridge};
use crate::plsa::PlsaParams;
use crate::predictor::ModelKind;
use crate::select::Spec;

mod validate;

/// The shipped defaults, every setting with a comment.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Environment variable that may hold the admin token (beside `MIXREC__SERVER__ADMIN_TOKEN`).
pub const ADMIN_TOKEN_ENV: &str = "MIXREC_ADMIN_TOKEN";

/// All settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Listening, limits, CORS, admin.
    pub server: ServerSettings,
    /// Which snapshot to train on.
    pub snapshot: SnapshotSettings,
    /// Training parameters.
    pub training: TrainingSettings,
    /// Where trained models are kept, and what a new one must beat.
    pub models: ModelsSettings,
    /// Ratings posted by users, written to the database source.
    pub feedback: FeedbackSettings,
}

/// `[feedback]`: `POST /v1/users/{user_id}/ratings`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackSettings {
    /// Whether posted ratings are written (only with `snapshot.postgres`; otherwise the route
    /// answers 409 `read-only-source`).
    pub enabled: bool,
    /// A bearer token the route requires; `None`: none.
    #[serde(default)]
    pub token: Option<Secret>,
    /// The table written to (`name` or `schema.name`).
    pub table: String,
    /// Its user, item and rating columns, and optionally a timestamp column set to the time
    /// of the write.
    pub columns: Vec<String>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on (`host:port`; a name such as `localhost` is resolved).
    #[serde(deserialize_with = "de_addr")]
    pub listen: SocketAddr,
    /// A second address that alone serves the `/admin/*` routes; `None` serves them on `listen`.
    #[serde(default, deserialize_with = "de_opt_addr")]
    pub admin_listen: Option<SocketAddr>,
    /// Origins allowed by CORS (`scheme://host[:port]`).
    pub cors_origins: Vec<String>,
    /// Largest request body in bytes.
    pub body_limit_bytes: usize,
    /// Request timeout in milliseconds.
    pub request_timeout_ms: u64,
    /// Time a client has to send a whole request head, in milliseconds; also how long an idle
    /// keep-alive connection stays open.
    pub header_read_timeout_ms: u64,
    /// Requests handled at once over every listener; more are answered 503 at once.
    pub max_concurrent_requests: u32,
    /// Connections open at once on each listener; past it a new connection is closed at once
    /// (and counted), and the open ones are unaffected.
    pub max_connections: u32,
    /// After SIGTERM, how long `/readyz` answers 503 while requests are still served, in
    /// milliseconds (not after ctrl-c).
    pub shutdown_delay_ms: u64,
    /// After the listeners close, how long in-flight requests may take before their
    /// connections are dropped, in milliseconds.
    pub drain_timeout_ms: u64,
    /// Largest `n` of a recommendation request.
    pub max_n: usize,
    /// Most entries a posted profile may hold: `ratings`, `items` and `exclude` each.
    pub max_profile_ratings: usize,
    /// Default page size of `GET /v1/items`.
    pub items_page: usize,
    /// Largest page size of `GET /v1/items`.
    pub items_page_max: usize,
    /// Bearer token of the admin routes; `None` disables them.
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// What this process does with models: trains for itself (`standalone`), trains and
    /// publishes (`trainer`), or serves what the trainer published (`replica`).
    #[serde(default)]
    pub role: Role,
}

/// `server.role`: who trains, and who serves what the trainer published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Trains at start-up and on `/admin/retrain`, serves its own models (one process).
    #[default]
    Standalone,
    /// As `standalone`, and every model it serves is published to `models.url` for replicas.
    Trainer,
    /// Never trains: serves the model the trainer published at `models.url`, checking for a
    /// newer one every `models.poll_interval_ms`.
    Replica,
}

impl Role {
    /// The name used in settings and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Standalone => "standalone",
            Self::Trainer => "trainer",
            Self::Replica => "replica",
        }
    }
}

/// `[snapshot]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSettings {
    /// Snapshot file; `None` is the embedded demo catalogue.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Snapshot format.
    pub format: Format,
    /// Optional `item_id,title` CSV.
    #[serde(default)]
    pub titles: Option<PathBuf>,
    /// Directories a retrain's `snapshot` override may name a file in; `None`: the configured
    /// snapshot's directory (none for the embedded demo).
    #[serde(default)]
    pub allowed_dirs: Option<Vec<PathBuf>>,
    /// A PostgreSQL connection URL to read the ratings from instead of a file
    /// (`postgres://user[:password]@host:port/db`; without a password, `PGPASSWORD`).
    #[serde(default)]
    pub postgres: Option<Secret>,
    /// The query giving `user_id, item_id, rating[, timestamp]` (with `postgres`).
    #[serde(default = "default_query")]
    pub query: String,
    /// What a user-item pair rated twice gives; `None`: `error` for files, `latest` for a
    /// database.
    #[serde(default)]
    pub duplicates: Option<Duplicates>,
    /// The user, item, rating and optional timestamp columns of a Parquet snapshot.
    #[serde(default)]
    pub columns: Columns,
}

fn default_query() -> String {
    "SELECT user_id, item_id, rating FROM ratings".into()
}

impl SnapshotSettings {
    /// Where the configured ratings come from: the one place that decides it.
    pub fn source(&self) -> Source {
        if let Some(Secret(url)) = &self.postgres {
            let (url, password) = crate::data::split_password(url);
            return Source::Postgres {
                url,
                query: self.query.clone(),
                duplicates: self.duplicates.unwrap_or(Duplicates::Latest),
                titles: self.titles.clone(),
                password,
            };
        }
        match &self.path {
            None => Source::Embedded,
            Some(path) => Source::File {
                path: path.clone(),
                format: self.format,
                titles: self.titles.clone(),
                duplicates: self.file_duplicates(),
                columns: self.columns.clone(),
            },
        }
    }

    /// What a re-rating in a snapshot file gives: `duplicates`, by default an error.
    pub fn file_duplicates(&self) -> Duplicates {
        self.duplicates.unwrap_or(Duplicates::Error)
    }

    /// The directories a retrain's snapshot override may name a file in: `allowed_dirs`, or by
    /// default the configured snapshot's directory. The embedded demo has none, so with it and
    /// no `allowed_dirs` every override is refused: a file the service may read is something
    /// an operator grants, never a default that reaches the whole disk.
    pub fn allowed_dirs(&self) -> Vec<PathBuf> {
        if let Some(dirs) = &self.allowed_dirs {
            return dirs.clone();
        }
        let parent = self.path.as_deref().and_then(Path::parent);
        match parent {
            Some(p) if p.as_os_str().is_empty() => vec![PathBuf::from(".")],
            Some(p) => vec![p.to_owned()],
            None => Vec::new(),
        }
    }
}

/// `[training]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSettings {
    /// Number of types K, or `"auto"`: chosen over `k_range` on held-out ratings.
    #[serde(default)]
    pub k: Auto<usize>,
    /// Bytes a training may take, snapshot included, or `"auto"`: three quarters of the
    /// machine's memory or of the container's limit (cgroups), whichever is smaller. A snapshot
    /// that would take more is refused before it is read whole.
    #[serde(default)]
    pub max_memory: Auto<u64>,
    /// EM or k-means.
    pub algorithm: Algorithm,
    /// Seed.
    pub seed: u64,
    /// Restarts.
    pub n_init: usize,
    /// Relative log-likelihood tolerance.
    pub tol: f64,
    /// Iteration cap.
    pub max_iter: usize,
    /// Variance floor.
    pub min_variance: f64,
    /// Training threads; 0 = one per core.
    pub threads: usize,
    /// The largest K a training may use (`k`, `k_range` and a retrain's override). Not saved
    /// with a model: it bounds requests, it does not shape the model.
    #[serde(default = "default_max_k", skip_serializing)]
    pub max_k: usize,
    /// `mixture`, `mfa` (the low-rank mixture) or `gpl` (Gaussian pLSA).
    #[serde(default)]
    pub model: ModelKind,
    /// The Ks an automatic K is chosen from, `[min, max]`.
    #[serde(default = "default_k_range")]
    pub k_range: [usize; 2],
    /// Share of the ratings held out to choose what is `"auto"` and to measure the model's
    /// RMSE before it trains on all of them; 0 chooses and measures nothing.
    #[serde(default = "default_holdout")]
    pub holdout: f64,
    /// Pull λ of each type mean toward the baseline (pLSA: α); `"auto"` chooses it.
    #[serde(default)]
    pub prior_strength: Auto<f64>,
    /// The baseline's ridge strengths `[item, user]`; `"auto"` chooses them.
    #[serde(default)]
    pub ridge: Auto<[f64; 2]>,
    /// Rank r of each type's variation (model `mfa`); `"auto"` chooses it.
    #[serde(default)]
    pub rank: Auto<usize>,
    /// How often a retrain from the configured source starts on its own (`"1h"`); `None`:
    /// never. Not saved with a model: it schedules trainings, it does not shape them.
    #[serde(default, deserialize_with = "de_opt_duration", skip_serializing)]
    pub retrain_interval: Option<std::time::Duration>,
    /// Ratings posted (`POST /v1/users/{user_id}/ratings`) since the serving model's snapshot
    /// was read that a scheduled retrain waits for; 0: it retrains every interval.
    #[serde(default, skip_serializing)]
    pub retrain_min_new_ratings: u64,
}

fn de_opt_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::time::Duration>, D::Error> {
    Option::<String>::deserialize(d)?
        .filter(|text| !text.is_empty())
        .map(|text| {
            humantime::parse_duration(&text)
                .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration ({e})")))
        })
        .transpose()
}

/// A setting that is a value, or `"auto"`: chosen on held-out ratings inside training.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Auto<T> {
    /// Chosen inside training.
    #[default]
    Auto,
    /// This value.
    Is(T),
}

impl<T: Copy> Auto<T> {
    /// The value, or `None` for `"auto"`.
    pub fn value(&self) -> Option<T> {
        match self {
            Self::Auto => None,
            Self::Is(v) => Some(*v),
        }
    }
}

impl<T: Serialize> Serialize for Auto<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => s.serialize_str("auto"),
            Self::Is(v) => v.serialize(s),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Auto<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr<T> {
            Word(String),
            Value(T),
        }
        match Repr::<T>::deserialize(d)? {
            Repr::Value(v) => Ok(Self::Is(v)),
            Repr::Word(w) if w == "auto" => Ok(Self::Auto),
            Repr::Word(w) => Err(serde::de::Error::custom(format!(
                "expected \"auto\" or a value, got {w:?}"
            ))),
        }
    }
}

fn default_holdout() -> f64 {
    0.1
}

fn default_max_k() -> usize {
    256
}

/// Restarts a retrain may ask for, at most: each is a whole fit.
pub const MAX_N_INIT: usize = 64;

impl TrainingSettings {
    /// Whether a model trained with `other` is the model these settings would train: every
    /// setting but the thread count (results are the same on any number of threads), the
    /// bounds on K and memory, and the schedule.
    pub fn same_model(&self, other: &Self) -> bool {
        *self
            == Self {
                threads: self.threads,
                max_k: self.max_k,
                max_memory: self.max_memory,
                retrain_interval: self.retrain_interval,
                retrain_min_new_ratings: self.retrain_min_new_ratings,
                ..other.clone()
            }
    }

    /// What these settings ask [`crate::select::train`] for: the one conversion from settings
    /// to engine parameters (checked by the engine against the snapshot). `"auto"` leaves a
    /// setting to the choice; K, λ, the ridge and the rank of the parameters below are the
    /// choice's.
    pub fn spec(&self) -> Spec {
        let mut spec = Spec::new(self.model);
        spec.mixture = self.fit_params();
        spec.plsa = self.plsa_params();
        spec.k = self.k.value();
        spec.k_range = (self.k_range[0], self.k_range[1]);
        spec.prior_strength = self.prior_strength.value();
        spec.ridge = self.ridge.value().map(|[item, user]| Ridge { item, user });
        spec.rank = self.rank.value();
        spec.holdout = self.holdout;
        spec.split_seed = self.seed;
        spec
    }

    /// The mixture parameters these settings ask for (K: as configured, else 1 until chosen).
    pub fn fit_params(&self) -> FitParams {
        FitParams::new(self.k.value().unwrap_or(1))
            .algorithm(self.algorithm)
            .seed(self.seed)
            .n_init(self.n_init)
            .tol(self.tol)
            .max_iter(self.max_iter)
            .min_variance(self.min_variance)
    }

    /// The Gaussian pLSA parameters these settings ask for (`seed`, `max_iter` apply).
    fn plsa_params(&self) -> PlsaParams {
        let mut p = PlsaParams::new(self.k.value().unwrap_or(1));
        (p.seed, p.max_iter) = (self.seed, self.max_iter);
        p
    }
}

/// `[models]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsSettings {
    /// Directory of saved models; `None` (or empty) saves nothing.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// An object store for the models instead of `dir`: `s3://bucket/prefix`. Credentials,
    /// region and endpoint come from the standard `AWS_*` variables.
    #[serde(default)]
    pub url: Option<String>,
    /// How often a replica checks the store for a newer published model, in milliseconds.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Serve the newest saved model that matches the snapshot and training settings at
    /// start-up instead of training.
    pub load_on_start: bool,
    /// Model files kept.
    pub keep: usize,
    /// A retrain whose held-out RMSE is more than this share above the serving model's is
    /// rejected.
    pub quality_gate: f64,
}

impl ModelsSettings {
    /// The store directory, if saving is on (and no object store is configured: `url` wins).
    pub fn store_dir(&self) -> Option<&Path> {
        if self.store_url().is_some() {
            return None;
        }
        self.dir.as_deref().filter(|d| !d.as_os_str().is_empty())
    }

    /// The object store URL, if one is configured.
    pub fn store_url(&self) -> Option<&str> {
        self.url.as_deref().filter(|u| !u.is_empty())
    }
}

fn default_poll_interval_ms() -> u64 {
    10_000
}

fn default_k_range() -> [usize; 2] {
    let (lo, hi) = crate::select::DEFAULT_K_RANGE;
    [lo, hi]
}

/// A string that never shows in `Debug` output (and so never in logs).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Command-line flags of `mixrec serve`: the last layer.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// A TOML file of settings over the defaults (see config/default.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The ratings snapshot (default: config, else the embedded demo catalogue).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Snapshot format: auto, matrix, triples, binary or parquet.
    #[arg(long)]
    pub format: Option<Format>,
    /// Address to listen on, e.g. 127.0.0.1:8080 or localhost:8080.
    #[arg(long, value_parser = resolve_addr)]
    pub listen: Option<SocketAddr>,
    /// standalone, trainer or replica (see `server.role`).
    #[arg(long, value_enum)]
    pub role: Option<Role>,
}

/// Settings that could not be read or make no sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or variable could not be parsed into the settings.
    #[error("cannot read the settings: {0}")]
    Read(#[from] Box<figment::Error>),
    /// A value is outside what the service can run with.
    #[error("invalid setting {key}: {reason}")]
    Invalid {
        /// `section.key`.
        key: &'static str,
        /// What is wrong and what would do.
        reason: String,
    },
}

/// The layers below the command line: defaults, `file`, then the process environment.
pub fn figment(file: Option<&Path>) -> Figment {
    let mut f = Figment::from(Toml::string(DEFAULT_TOML));
    if let Some(file) = file {
        // `Toml::file` quietly skips a missing file; an explicit --config must exist.
        f = f.merge(Toml::file_exact(file));
    }
    let f = f.merge(Env::prefixed("MIXREC__").split("__"));
    match std::env::var(ADMIN_TOKEN_ENV) {
        Ok(token) => f.merge(("server.admin_token", token)),
        Err(_) => f,
    }
}

impl Settings {
    /// Reads every layer, applies `args`, and validates.
    pub fn load(args: &ServeArgs) -> Result<Self, ConfigError> {
        Self::from_figment(figment(args.config.as_deref()), args)
    }

    /// Extracts from `figment`, applies `args`, and validates.
    pub fn from_figment(figment: Figment, args: &ServeArgs) -> Result<Self, ConfigError> {
        let mut s: Settings = figment.extract().map_err(Box::new)?;
        if let Some(path) = &args.data {
            s.snapshot.path = Some(path.clone());
        }
        if let Some(format) = args.format {
            s.snapshot.format = format;
        }
        if let Some(listen) = args.listen {
            s.server.listen = listen;
        }
        if let Some(role) = args.role {
            s.server.role = role;
        }
        s.validate()?;
        Ok(s)
    }
}

/// Parses `host:port` into an address: an IP address as it is, a name (`localhost`) resolved
/// through the system's resolver to its first IPv4 address, else its first address.
pub fn resolve_addr(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("`{text}` is not HOST:PORT with a host that resolves ({e})"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("`{text}` resolves to no address"))
}

fn de_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    resolve_addr(&text).map_err(serde::de::Error::custom)
}

fn de_opt_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|text| resolve_addr(&text).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    // figment's `Jail` closures must return its (large) error type: not ours to shrink.
    #![allow(clippy::result_large_err)]

    use super::*;
    use figment::Jail;

    fn defaults() -> Settings {
        let f = Figment::from(Toml::string(DEFAULT_TOML));
        Settings::from_figment(f, &ServeArgs::default()).expect("shipped defaults load")
    }

    #[test]
    fn shipped_defaults_load_and_validate() {
        let s = defaults();
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.server.body_limit_bytes, 1 << 20);
        assert_eq!(s.server.max_profile_ratings, 2000);
        assert_eq!(s.server.admin_token, None);
        assert_eq!(s.server.admin_listen, None);
        assert_eq!(s.server.header_read_timeout_ms, 10_000);
        assert_eq!(s.server.max_concurrent_requests, 256);
        assert_eq!(s.server.max_connections, 4096);
        assert_eq!(s.server.shutdown_delay_ms, 5_000);
        assert_eq!(s.snapshot.path, None);
        assert_eq!(s.snapshot.source(), Source::Embedded);
        assert!(s.snapshot.allowed_dirs().is_empty());
        assert_eq!(s.training.algorithm, Algorithm::Em);
        assert_eq!(s.training.max_k, 256);
    }

    #[test]
    fn file_then_env_then_flags_win_in_that_order() {
        Jail::expect_with(|jail| {
            jail.create_file("over.toml", "[training]\nk = 3\nseed = 9\n")?;
            jail.set_env("MIXREC__TRAINING__K", "5");
            jail.set_env("MIXREC__SERVER__CORS_ORIGINS", "[\"https://a.example\"]");
            jail.set_env(ADMIN_TOKEN_ENV, "s3cret");
            let args = ServeArgs {
                config: Some("over.toml".into()),
                listen: Some("127.0.0.1:9999".parse().unwrap()),
                ..ServeArgs::default()
            };
            let s = Settings::load(&args).map_err(|e| e.to_string())?;
            assert_eq!((s.training.k, s.training.seed), (Auto::Is(5), 9));
            assert_eq!(s.server.listen.port(), 9999);
            assert_eq!(s.server.cors_origins, vec!["https://a.example".to_string()]);
            assert_eq!(s.server.admin_token, Some(Secret("s3cret".into())));
            Ok(())
        });
    }

    #[test]
    fn parquet_columns_come_from_the_file_or_the_environment_and_reach_the_source() {
        assert_eq!(defaults().snapshot.columns, Columns::default());
        Jail::expect_with(|jail| {
            jail.set_env("MIXREC__SNAPSHOT__PATH", "r.parquet");
            jail.set_env("MIXREC__SNAPSHOT__COLUMNS", "[\"u\", \"i\", \"r\"]");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let want: Columns = "u,i,r".parse().unwrap();
            let Source::File { columns, .. } = s.snapshot.source() else {
                panic!("a file source")
            };
            assert_eq!(columns, want);
            jail.set_env("MIXREC__SNAPSHOT__COLUMNS", "[\"u\", \"i\"]");
            let err = Settings::load(&ServeArgs::default())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("SNAPSHOT.COLUMNS") && err.contains("three or four"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        Jail::expect_with(|jail| {
            jail.set_env("MIXREC__TRAINING__MIN_VARIANCE", "0");
            let err = Settings::load(&ServeArgs::default()).unwrap_err();
            assert!(err.to_string().contains("training.min_variance"), "{err}");
            jail.set_env("MIXREC__TRAINING__MIN_VARIANCE", "0.25");
            jail.set_env("MIXREC__SERVER__CORS_ORIGINS", "[\"shop.example/\"]");
            let err = Settings::load(&ServeArgs::default()).unwrap_err();
            assert!(err.to_string().contains("cors_origins"), "{err}");
            jail.set_env("MIXREC__SERVER__CORS_ORIGINS", "[]");
            jail.set_env("MIXREC__SERVER__MAX_CONCURRENT_REQUESTS", "0");
            let err = Settings::load(&ServeArgs::default()).unwrap_err();
            assert!(err.to_string().contains("max_concurrent_requests"), "{err}");
            jail.set_env("MIXREC__SERVER__MAX_CONCURRENT_REQUESTS", "8");
            jail.set_env("MIXREC__SERVER__MAX_CONNECTIONS", "0");
            let err = Settings::load(&ServeArgs::default()).unwrap_err();
            assert!(err.to_string().contains("server.max_connections"), "{err}");
            jail.set_env("MIXREC__SERVER__MAX_CONNECTIONS", "16");
            jail.set_env("MIXREC__SERVER__ADMIN_LISTEN", "127.0.0.1:8080");
            let err = Settings::load(&ServeArgs::default()).unwrap_err();
            assert!(err.to_string().contains("server.admin_listen"), "{err}");
            jail.set_env("MIXREC__SERVER__ADMIN_LISTEN", "127.0.0.1:9090");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            assert_eq!(
                s.server.admin_listen,
                Some("127.0.0.1:9090".parse().unwrap())
            );
            jail.set_env("MIXREC__SERVER__MAX_PROFILE_RATINGS", "0");
            let err = Settings::load(&ServeArgs::default()).unwrap_err();
            assert!(err.to_string().contains("max_profile_ratings"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_database_source_takes_its_password_apart_and_excludes_a_file() {
        Jail::expect_with(|jail| {
            jail.set_env(
                "MIXREC__SNAPSHOT__POSTGRES",
                "postgres://u:hunter2@db:5433/r",
            );
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let source = s.snapshot.source();
            assert_eq!(source.name(), "postgres://u@db:5433/r");
            assert_eq!(source.duplicates(), Duplicates::Latest);
            assert!(!format!("{s:?}{source:?}").contains("hunter2"));
            let file = ServeArgs {
                data: Some("ratings.csv".into()),
                ..ServeArgs::default()
            };
            let err = Settings::load(&file).unwrap_err().to_string();
            assert!(
                err.contains("snapshot.postgres") && err.contains("choose one"),
                "{err}"
            );
            jail.set_env("MIXREC__SNAPSHOT__POSTGRES", "mysql://u@db/r");
            let err = Settings::load(&ServeArgs::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("snapshot.postgres"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_retrain_schedule_is_a_duration_of_a_second_or_more_and_not_the_models() {
        Jail::expect_with(|jail| {
            assert_eq!(defaults().training.retrain_interval, None);
            jail.set_env("MIXREC__TRAINING__RETRAIN_INTERVAL", "1h 30m");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let every = s.training.retrain_interval;
            assert_eq!(every, Some(std::time::Duration::from_secs(5400)));
            assert!(s.training.same_model(&defaults().training));
            jail.set_env("MIXREC__TRAINING__RETRAIN_INTERVAL", "500ms");
            let err = Settings::load(&ServeArgs::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("training.retrain_interval"), "{err}");
            jail.set_env("MIXREC__TRAINING__RETRAIN_INTERVAL", "soon");
            assert!(Settings::load(&ServeArgs::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn listen_addresses_may_name_localhost() {
        Jail::expect_with(|jail| {
            jail.set_env("MIXREC__SERVER__LISTEN", "localhost:8181");
            jail.set_env("MIXREC__SERVER__ADMIN_LISTEN", "localhost:8282");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            assert_eq!(s.server.listen, "127.0.0.1:8181".parse().unwrap());
            assert_eq!(
                s.server.admin_listen,
                Some("127.0.0.1:8282".parse().unwrap())
            );
            let flags = ServeArgs {
                listen: Some(resolve_addr("localhost:8383")?),
                ..ServeArgs::default()
            };
            let s = Settings::load(&flags).map_err(|e| e.to_string())?;
            assert_eq!(s.server.listen, "127.0.0.1:8383".parse().unwrap());
            jail.set_env("MIXREC__SERVER__LISTEN", "localhost:http-alt");
            let err = Settings::load(&ServeArgs::default())
                .unwrap_err()
                .to_string();
            assert!(err.to_lowercase().contains("server.listen"), "{err}");
            assert!(err.contains("localhost:http-alt"), "{err}");
            Ok(())
        });
        assert_eq!(resolve_addr("[::1]:80"), Ok("[::1]:80".parse().unwrap()));
        assert!(resolve_addr("localhost").is_err());
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        Jail::expect_with(|jail| {
            jail.set_env("MIXREC__SERVER__LISTN", "127.0.0.1:1");
            assert!(Settings::load(&ServeArgs::default()).is_err());
            Ok(())
        });
        let args = ServeArgs {
            config: Some("/nonexistent/mixrec.toml".into()),
            ..ServeArgs::default()
        };
        assert!(Settings::load(&args).is_err());
    }

    #[test]
    fn snapshot_overrides_default_to_the_configured_snapshot_directory() {
        let mut s = defaults().snapshot;
        s.path = Some("/data/ratings.csv".into());
        assert_eq!(s.allowed_dirs(), [PathBuf::from("/data")]);
        s.path = Some("ratings.csv".into());
        assert_eq!(s.allowed_dirs(), [PathBuf::from(".")]);
        s.allowed_dirs = Some(vec!["/a".into(), "/b".into()]);
        assert_eq!(s.allowed_dirs(), [PathBuf::from("/a"), PathBuf::from("/b")]);
    }

    #[test]
    fn k_and_n_init_are_bounded_in_the_configuration_too() {
        let t = defaults().training;
        let k = TrainingSettings {
            k: Auto::Is(257),
            ..t.clone()
        }
        .validate()
        .unwrap_err();
        assert!(k.to_string().contains("training.max_k (256)"), "{k}");
        let range = TrainingSettings {
            k_range: [1, 300],
            ..t.clone()
        };
        assert!(
            range
                .validate()
                .unwrap_err()
                .to_string()
                .contains("k_range")
        );
        let n = TrainingSettings {
            n_init: 65,
            ..t.clone()
        }
        .validate()
        .unwrap_err();
        assert!(n.to_string().contains("at most 64"), "{n}");
        let small = TrainingSettings {
            max_k: 4,
            k: Auto::Is(4),
            k_range: [1, 4],
            ..t
        };
        small.validate().unwrap();
    }

    #[test]
    fn the_token_never_prints() {
        let s = format!("{:?}", Secret("hunter2".into()));
        assert!(!s.contains("hunter2"));
    }
}
