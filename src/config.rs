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

use crate::data::Format;
use crate::mixture::Algorithm;
use crate::predictor::ModelKind;

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
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// A second address that alone serves the `/admin/*` routes; `None` serves them on `listen`.
    #[serde(default)]
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
}

/// `[training]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSettings {
    /// Number of types K, or `"auto"`: chosen over `k_range` on held-out ratings.
    #[serde(default)]
    pub k: Auto<usize>,
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

impl TrainingSettings {
    /// Whether a model trained with `other` is the model these settings would train: every
    /// setting but the thread count (results are the same on any number of threads).
    pub fn same_model(&self, other: &Self) -> bool {
        *self
            == Self {
                threads: self.threads,
                ..other.clone()
            }
    }
}

/// `[models]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsSettings {
    /// Directory of saved models; `None` (or empty) saves nothing.
    #[serde(default)]
    pub dir: Option<PathBuf>,
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
    /// The store directory, if saving is on.
    pub fn store_dir(&self) -> Option<&Path> {
        self.dir.as_deref().filter(|d| !d.as_os_str().is_empty())
    }
}

fn default_k_range() -> [usize; 2] {
    [1, 16]
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
    /// Snapshot format: auto, matrix or triples.
    #[arg(long)]
    pub format: Option<Format>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
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
        s.validate()?;
        Ok(s)
    }

    /// Checks every value the type system does not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.training.validate()?;
        let m = &self.models;
        positive("models.keep", m.keep as u64)?;
        if !(m.quality_gate.is_finite() && m.quality_gate >= 0.0) {
            return Err(invalid(
                "models.quality_gate",
                "must be a finite number ≥ 0",
            ));
        }
        Ok(())
    }
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    let reason = reason.into();
    ConfigError::Invalid { key, reason }
}

impl ServerSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        for origin in &self.cors_origins {
            let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/')
                && origin.is_ascii()
                && !origin.contains(char::is_whitespace);
            if !ok {
                let why = format!("{origin:?} is not an origin like https://shop.example");
                return Err(invalid("server.cors_origins", why));
            }
        }
        positive("server.body_limit_bytes", self.body_limit_bytes as u64)?;
        positive("server.request_timeout_ms", self.request_timeout_ms)?;
        positive("server.header_read_timeout_ms", self.header_read_timeout_ms)?;
        positive(
            "server.max_concurrent_requests",
            self.max_concurrent_requests.into(),
        )?;
        positive("server.drain_timeout_ms", self.drain_timeout_ms)?;
        if self.admin_listen == Some(self.listen) && self.listen.port() != 0 {
            let why = "must differ from server.listen (unset it to serve admin routes there)";
            return Err(invalid("server.admin_listen", why));
        }
        positive("server.max_n", self.max_n as u64)?;
        positive(
            "server.max_profile_ratings",
            self.max_profile_ratings as u64,
        )?;
        positive("server.items_page", self.items_page as u64)?;
        if self.items_page_max < self.items_page {
            let why = "must be at least server.items_page";
            return Err(invalid("server.items_page_max", why));
        }
        if let Some(Secret(token)) = &self.admin_token
            && (token.is_empty() || token.contains(char::is_whitespace))
        {
            let why = "must be non-empty without spaces (unset it to disable admin routes)";
            return Err(invalid("server.admin_token", why));
        }
        Ok(())
    }
}

fn positive(key: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(invalid(key, "must be at least 1"));
    }
    Ok(())
}

impl TrainingSettings {
    /// Checks the training values (also used for retrain overrides).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(k) = self.k.value() {
            positive("training.k", k as u64)?;
        }
        let [lo, hi] = self.k_range;
        if lo == 0 || lo > hi {
            return Err(invalid(
                "training.k_range",
                "must be [min, max] with 1 ≤ min ≤ max",
            ));
        }
        positive("training.n_init", self.n_init as u64)?;
        positive("training.max_iter", self.max_iter as u64)?;
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(invalid("training.tol", "must be a finite number ≥ 0"));
        }
        if !(self.min_variance.is_finite() && self.min_variance > 0.0) {
            return Err(invalid(
                "training.min_variance",
                "must be a finite number > 0",
            ));
        }
        if !(0.0..0.5).contains(&self.holdout) {
            return Err(invalid("training.holdout", "must be in [0, 0.5)"));
        }
        if let Some(l) = self.prior_strength.value()
            && !(l.is_finite() && l >= 0.0)
        {
            return Err(invalid("training.prior_strength", "must be \"auto\" or a finite number ≥ 0"));
        }
        if let Some(r) = self.ridge.value()
            && !r.iter().all(|x| x.is_finite() && *x >= 0.0)
        {
            return Err(invalid("training.ridge", "must be \"auto\" or [item, user], two finite numbers ≥ 0"));
        }
        Ok(())
    }
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
        assert_eq!(s.server.shutdown_delay_ms, 5_000);
        assert_eq!(s.snapshot.path, None);
        assert_eq!(s.training.algorithm, Algorithm::Em);
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
    fn the_token_never_prints() {
        let s = format!("{:?}", Secret("hunter2".into()));
        assert!(!s.contains("hunter2"));
    }
}
