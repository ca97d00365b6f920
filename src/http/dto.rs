//! Request and response bodies, and their conversion from the service's answers.
//! No arithmetic here: values are copied, ids looked up, titles attached.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::Format;
use crate::mixture::{Algorithm, Prediction};
use crate::service::{Answer, ServedModel, TypeSummary};

/// Default `n` of a recommendation request.
pub(super) const DEFAULT_N: i64 = 10;

fn default_n() -> i64 {
    DEFAULT_N
}

/// `POST /v1/complete`, read by [`super::profile::ProfileJson`] under the profile cap.
#[derive(Debug)]
pub struct CompleteRequest {
    /// (item id, rating), sorted by id, each id once; may be empty (the prior).
    pub ratings: Vec<(String, f64)>,
    /// Only predict these items (default: every unrated one).
    pub items: Option<Vec<String>>,
}

/// `POST /v1/recommend`, read by [`super::profile::ProfileJson`] under the profile cap.
#[derive(Debug)]
pub struct RecommendRequest {
    /// (item id, rating), sorted by id, each id once; may be empty.
    pub ratings: Vec<(String, f64)>,
    /// How many items (1 to the configured maximum; default 10).
    pub n: i64,
    /// Items never to recommend.
    pub exclude: Vec<String>,
}

/// `?n=` of `GET /v1/users/{user_id}/recommendations`.
#[derive(Debug, Deserialize)]
pub struct NQuery {
    /// How many items.
    #[serde(default = "default_n")]
    pub n: i64,
}

/// `?offset=&limit=` of `GET /v1/items`.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    /// First item (0-based).
    #[serde(default)]
    pub offset: usize,
    /// Page size (default and maximum from the configuration).
    pub limit: Option<usize>,
}

/// Optional overrides of `POST /admin/retrain`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrainRequest {
    /// Number of types, or `"auto"`.
    pub k: Option<crate::config::Auto<usize>>,
    /// Seed.
    pub seed: Option<u64>,
    /// Restarts.
    pub n_init: Option<usize>,
    /// `em` or `kmeans`.
    pub algorithm: Option<Algorithm>,
    /// `mixture` or `gpl`.
    pub model: Option<crate::predictor::ModelKind>,
    /// Snapshot file to train on instead of the configured one.
    pub snapshot: Option<PathBuf>,
    /// Its format.
    pub format: Option<Format>,
    /// Serve the new model even if the quality gate would reject it.
    pub force: Option<bool>,
}

/// One saved model, as `GET /admin/models` lists it.
#[derive(Debug, Serialize)]
pub struct SavedModel {
    /// Version (from the file name).
    pub version: u64,
    /// The file.
    pub file: String,
    /// `valid`, `rolled_back` or `invalid`.
    pub status: &'static str,
    /// Whether it is the model serving now.
    pub serving: bool,
    /// Why it cannot be used (`invalid` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it was saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// What `GET /v1/model` reported for it (valid and rolled-back files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<crate::service::ModelInfo>,
}

/// `GET /admin/models`.
#[derive(Debug, Serialize)]
pub struct SavedModels {
    /// The store directory.
    pub dir: String,
    /// The serving model's version.
    pub serving: Option<u64>,
    /// Files, newest first.
    pub models: Vec<SavedModel>,
}

/// A rated or recommended item.
#[derive(Debug, Serialize)]
pub struct ItemPrediction {
    /// Item id.
    pub item: String,
    /// Display title, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Predicted rating.
    pub rating: f64,
    /// Predictive standard deviation.
    pub spread: f64,
}

/// One entry of the posterior over types.
#[derive(Debug, Serialize)]
pub struct TypeProbability {
    /// Type index.
    #[serde(rename = "type")]
    pub kind: usize,
    /// Posterior probability.
    pub probability: f64,
}

/// Answer of `POST /v1/complete` and the two recommendation routes.
#[derive(Debug, Serialize)]
pub struct PredictionResponse {
    /// The model version that answered.
    pub model_version: u64,
    /// Posterior over types, most likely first.
    pub posterior: Vec<TypeProbability>,
    /// Predictions (`POST /v1/complete`) or the top items, best first.
    pub items: Vec<ItemPrediction>,
}

impl PredictionResponse {
    /// The DTO of `answer` from `model`.
    pub fn new(model: &ServedModel, answer: Answer) -> Self {
        let posterior = answer
            .posterior
            .into_iter()
            .map(|(kind, probability)| TypeProbability { kind, probability })
            .collect();
        Self {
            model_version: model.info().version,
            posterior,
            items: answer.items.iter().map(|p| item(model, p)).collect(),
        }
    }
}

fn item(model: &ServedModel, p: &Prediction) -> ItemPrediction {
    let id = model.catalogue().item_id(p.item);
    ItemPrediction {
        title: model.catalogue().title(&id).map(str::to_owned),
        item: id.into_owned(),
        rating: p.rating,
        spread: p.spread,
    }
}

/// An item of the catalogue.
#[derive(Debug, Serialize)]
pub struct CatalogueItem {
    /// Item id.
    pub id: String,
    /// Display title, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// `GET /v1/items`.
#[derive(Debug, Serialize)]
pub struct ItemsPage {
    /// Items in the catalogue.
    pub total: usize,
    /// First item of this page.
    pub offset: usize,
    /// Page size asked for.
    pub limit: usize,
    /// The page.
    pub items: Vec<CatalogueItem>,
}

impl ItemsPage {
    /// Page `offset..offset + limit` of `model`'s catalogue.
    pub fn new(model: &ServedModel, offset: usize, limit: usize) -> Self {
        let c = model.catalogue();
        let items = c
            .page(offset, limit)
            .map(|l| {
                let id = c.item_id(l);
                let title = c.title(&id).map(str::to_owned);
                CatalogueItem {
                    id: id.into_owned(),
                    title,
                }
            })
            .collect();
        Self {
            total: c.n_items(),
            offset,
            limit,
            items,
        }
    }
}

/// A characteristic item of a type.
#[derive(Debug, Serialize)]
pub struct TypeItem {
    /// Item id.
    pub id: String,
    /// Display title, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The type's mean rating of the item.
    pub mean: f64,
    /// How far that is above the weighted mean over all types.
    pub lift: f64,
}

/// One type of `GET /v1/model/types`.
#[derive(Debug, Serialize)]
pub struct TypeInfo {
    /// Type index.
    #[serde(rename = "type")]
    pub kind: usize,
    /// Share of users.
    pub weight: f64,
    /// Variance.
    pub variance: f64,
    /// Most characteristic items, most characteristic first.
    pub items: Vec<TypeItem>,
}

/// `GET /v1/model/types`.
#[derive(Debug, Serialize)]
pub struct TypesResponse {
    /// The model version.
    pub model_version: u64,
    /// Types in index order.
    pub types: Vec<TypeInfo>,
}

impl TypesResponse {
    /// The DTO of `model`'s type summaries.
    pub fn new(model: &ServedModel) -> Self {
        let types = model
            .types()
            .iter()
            .enumerate()
            .map(|(kind, t)| type_info(model, kind, t))
            .collect();
        Self {
            model_version: model.info().version,
            types,
        }
    }
}

fn type_info(model: &ServedModel, kind: usize, t: &TypeSummary) -> TypeInfo {
    let c = model.catalogue();
    let items = t
        .items
        .iter()
        .map(|&(l, mean, lift)| {
            let id = c.item_id(l);
            TypeItem {
                title: c.title(&id).map(str::to_owned),
                id: id.into_owned(),
                mean,
                lift,
            }
        })
        .collect();
    TypeInfo {
        kind,
        weight: t.weight,
        variance: t.variance,
        items,
    }
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Serialize)]
pub struct Status {
    /// `ok` or `ready`.
    pub status: &'static str,
    /// The serving model's version (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<u64>,
}
