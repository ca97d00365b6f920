//! Ratings a user posts: checked against the serving model first (nothing is written for an
//! unknown item or a rating off the scale), upserted into the database source in one
//! transaction on a blocking thread, then kept as that user's *fresh* ratings so the next
//! recommendations fold them in at once (a new user becomes known). Fresh ratings are dropped
//! once a model trained on a read that began after their write serves: they are in its
//! snapshot then.
//!
//! Must not import: web types.

use crate::data::{Source, Target, UpsertError};

use super::registry::Registry;
use super::served::{Answer, QueryError, ServedModel, shown_id};

/// Characters a user id may have at most.
const MAX_USER_ID: usize = 256;

/// Why posted ratings were not written.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    /// The ratings source takes no writes (a file, the demo), or feedback is off.
    #[error("{0}")]
    ReadOnly(String),
    /// No model serves yet to check the ratings against.
    #[error("no model is serving yet")]
    NotReady,
    /// The user id is empty or too long.
    #[error("the user id must have 1 to {MAX_USER_ID} characters")]
    BadUser,
    /// No ratings in the body.
    #[error("`ratings` holds no rating")]
    Empty,
    /// An unknown item or a rating outside the scale: nothing was written.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The database refused or could not take the write (nothing was written).
    #[error("the ratings could not be written: {0}")]
    Write(#[from] UpsertError),
    /// The writing thread panicked.
    #[error("the writing thread failed: {0}")]
    Lost(String),
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The user.
    pub user: String,
    /// Ratings upserted.
    pub ratings: usize,
    /// Whether the serving model's snapshot knew the user before.
    pub known: bool,
}

impl Registry {
    /// `ratings` (item id, rating) of `user`: checked against the serving model, then written
    /// to the database source in one transaction; once this returns `Ok` they are committed and
    /// [`Registry::user_recommendations`] folds them in.
    pub async fn feedback(
        &self,
        user: &str,
        ratings: Vec<(String, f64)>,
    ) -> Result<Written, FeedbackError> {
        let source = self.writable_source()?;
        let model = self.current().ok_or(FeedbackError::NotReady)?;
        if user.is_empty() || user.chars().count() > MAX_USER_ID {
            return Err(FeedbackError::BadUser);
        }
        if ratings.is_empty() {
            return Err(FeedbackError::Empty);
        }
        model.check_ratings(&ratings)?;
        let f = &self.policy().feedback;
        let target = Target {
            table: f.table.clone(),
            columns: f.columns.clone(),
        };
        let (who, rows) = (user.to_owned(), ratings.clone());
        let span = tracing::Span::current();
        let write = move || span.in_scope(|| source.upsert(&target, &who, &rows));
        match tokio::task::spawn_blocking(write).await {
            Ok(written) => written?,
            Err(join) => return Err(FeedbackError::Lost(join.to_string())),
        }
        self.fresh().add(user, &ratings);
        tracing::info!(user = %shown_id(user), ratings = ratings.len(), "feedback written");
        Ok(Written {
            user: user.to_owned(),
            ratings: ratings.len(),
            known: model.catalogue().user_index(user).is_some(),
        })
    }

    /// The configured source when it takes writes and feedback is on.
    fn writable_source(&self) -> Result<Source, FeedbackError> {
        let source = self.configured_source();
        if !matches!(source, Source::Postgres { .. }) {
            let why = "the ratings source is a file: feedback needs snapshot.postgres";
            return Err(FeedbackError::ReadOnly(why.into()));
        }
        if !self.policy().feedback.enabled {
            let why = "feedback is off (feedback.enabled = false)";
            return Err(FeedbackError::ReadOnly(why.into()));
        }
        Ok(source)
    }

    /// The best `n` items for `user` from `model`: their snapshot ratings with the fresh ones
    /// they posted folded in (the posted rating wins), none of them recommended.
    pub fn user_recommendations(
        &self,
        model: &ServedModel,
        user: &str,
        n: i64,
        max_n: usize,
    ) -> Result<Answer, QueryError> {
        let fresh = self.fresh().of(user);
        model.user_recommendations_with(user, fresh.as_ref(), n, max_n)
    }
}
