//! Validation of the settings: every value the type system does not check, each refusal
//! naming its key. Run once at start-up, and on a retrain's overrides.
//!
//! Must not import: anything but the settings.

use super::{ConfigError, MAX_N_INIT, Role, Secret, ServerSettings, Settings, TrainingSettings};

impl Settings {
    /// Checks every value the type system does not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.validate_snapshot()?;
        self.validate_feedback()?;
        self.training.validate()?;
        let m = &self.models;
        positive("models.keep", m.keep as u64)?;
        if !(m.quality_gate.is_finite() && m.quality_gate >= 0.0) {
            return Err(invalid(
                "models.quality_gate",
                "must be a finite number ≥ 0",
            ));
        }
        self.validate_roles()
    }

    /// One source at a time; a database URL that the client can use, and a query.
    fn validate_snapshot(&self) -> Result<(), ConfigError> {
        let s = &self.snapshot;
        let Some(Secret(url)) = &s.postgres else {
            return Ok(());
        };
        if s.path.is_some() {
            let why = "is set with snapshot.path (or --data): choose one source";
            return Err(invalid("snapshot.postgres", why));
        }
        crate::data::check_postgres_url(url).map_err(|why| invalid("snapshot.postgres", why))?;
        if s.query.trim().is_empty() {
            return Err(invalid("snapshot.query", "must be a query"));
        }
        Ok(())
    }

    /// Names that go into SQL as quoted identifiers, and a token without spaces.
    fn validate_feedback(&self) -> Result<(), ConfigError> {
        let f = &self.feedback;
        let identifier = |name: &str| {
            let mut chars = name.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if f.table.split('.').count() > 2 || !f.table.split('.').all(identifier) {
            let why = "must be a table name or schema.name (letters, digits, _)";
            return Err(invalid("feedback.table", why));
        }
        if !(3..=4).contains(&f.columns.len()) || !f.columns.iter().all(|c| identifier(c)) {
            let why = "must name the user, item and rating columns and optionally a timestamp \
                       column (letters, digits, _)";
            return Err(invalid("feedback.columns", why));
        }
        if let Some(Secret(token)) = &f.token
            && (token.is_empty() || token.contains(char::is_whitespace))
        {
            let why = "must be non-empty without spaces (unset it for no token)";
            return Err(invalid("feedback.token", why));
        }
        if f.enabled && self.snapshot.postgres.is_none() {
            let why = "writes to the database source: set snapshot.postgres too";
            return Err(invalid("feedback.enabled", why));
        }
        Ok(())
    }

    /// A trainer and a replica share models through an object store; a replica polls it.
    fn validate_roles(&self) -> Result<(), ConfigError> {
        let m = &self.models;
        if let Some(url) = m.store_url() {
            let bucket = url.strip_prefix("s3://").map(|r| r.split('/').next());
            if !matches!(bucket, Some(Some(b)) if !b.is_empty()) {
                let why = format!("{url:?} is not an object store URL like s3://bucket/prefix");
                return Err(invalid("models.url", why));
            }
        }
        let role = self.server.role;
        if role != Role::Standalone && m.store_url().is_none() {
            let why = format!(
                "server.role = \"{}\" shares models through an object store: set models.url \
                 (s3://bucket/prefix)",
                role.name()
            );
            return Err(invalid("models.url", why));
        }
        if role == Role::Replica {
            positive("models.poll_interval_ms", m.poll_interval_ms)?;
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
        self.validate_origins()?;
        positive("server.body_limit_bytes", self.body_limit_bytes as u64)?;
        positive("server.request_timeout_ms", self.request_timeout_ms)?;
        positive("server.header_read_timeout_ms", self.header_read_timeout_ms)?;
        positive(
            "server.max_concurrent_requests",
            self.max_concurrent_requests.into(),
        )?;
        positive("server.max_connections", self.max_connections.into())?;
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

impl ServerSettings {
    /// Each CORS origin is `scheme://host[:port]`.
    fn validate_origins(&self) -> Result<(), ConfigError> {
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
        self.validate_k()?;
        positive("training.n_init", self.n_init as u64)?;
        if self.n_init > MAX_N_INIT {
            let why = format!("must be at most {MAX_N_INIT}");
            return Err(invalid("training.n_init", why));
        }
        positive("training.max_iter", self.max_iter as u64)?;
        if self
            .retrain_interval
            .is_some_and(|every| every < std::time::Duration::from_secs(1))
        {
            let why = "must be at least 1s (unset it for no scheduled retrains)";
            return Err(invalid("training.retrain_interval", why));
        }
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
            let why = "must be \"auto\" or a finite number ≥ 0";
            return Err(invalid("training.prior_strength", why));
        }
        if let Some(r) = self.ridge.value()
            && !r.iter().all(|x| x.is_finite() && *x >= 0.0)
        {
            let why = "must be \"auto\" or [item, user], two finite numbers ≥ 0";
            return Err(invalid("training.ridge", why));
        }
        Ok(())
    }

    /// `k` and `k_range` inside `1..=max_k`.
    fn validate_k(&self) -> Result<(), ConfigError> {
        positive("training.max_k", self.max_k as u64)?;
        if let Some(k) = self.k.value() {
            positive("training.k", k as u64)?;
            if k > self.max_k {
                let why = format!("must be at most training.max_k ({})", self.max_k);
                return Err(invalid("training.k", why));
            }
        }
        let [lo, hi] = self.k_range;
        if lo == 0 || lo > hi || hi > self.max_k {
            let why = format!(
                "must be [min, max] with 1 ≤ min ≤ max ≤ training.max_k ({})",
                self.max_k
            );
            return Err(invalid("training.k_range", why));
        }
        Ok(())
    }
}
