//! Request and response bodies, and their conversion from the service's answers.
//! No arithmetic here: values are copied, ids looked up, titles attached. (`/admin/retrain`'s
//! body is the lifecycle's own [`crate::serving::Overrides`]; `GET /v1/model` answers with
//! [`crate::serving::ModelInfo`]; a job is [`crate::serving::Job`].)
//!
//! Must not import: the routes, the state.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::extract::{JsonOut, WriteJson};
use crate::data::Id;
use crate::mixture::Prediction;
use crate::serving::store::Entry;
use crate::serving::{Answer, ModelInfo, Onboarding, ServedModel, TypeSummary};

/// Default `n` of a recommendation request.
pub(super) const DEFAULT_N: i64 = 10;
/// Default `n` of `POST /v1/onboarding`: a handful of questions, few enough to answer at once.
pub(super) const DEFAULT_QUESTIONS: i64 = 5;

fn default_n() -> i64 {
    DEFAULT_N
}

/// A profile's (item id, rating) pairs as read: sorted by id, each id once. The ids share one
/// buffer: one allocation for the profile, not one an id (a 20-rating profile's ids were 20 of
/// a recommendation's allocations).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// Every id, one after the other (written by [`super::profile`]'s reader).
    pub(super) ids: String,
    /// Each rating's place in `ids` and its value, sorted by id.
    pub(super) entries: Vec<(Range<usize>, f64)>,
}

impl Profile {
    /// (item id, rating), sorted by id.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, f64)> {
        self.entries
            .iter()
            .map(|(id, x)| (&self.ids[id.clone()], *x))
    }

    /// (item id, rating), sorted by id, as the service's calls take them.
    pub fn pairs(&self) -> Vec<(&str, f64)> {
        self.iter().collect()
    }

    /// (item id, rating) as owned strings (for the feedback writer, which keeps them).
    pub fn into_pairs(self) -> Vec<(String, f64)> {
        self.iter().map(|(id, x)| (id.to_owned(), x)).collect()
    }
}

/// `POST /v1/complete`, read by [`super::profile::ProfileJson`] under the profile cap.
#[derive(Debug)]
pub struct CompleteRequest {
    /// (item id, rating), sorted by id, each id once; may be empty (the prior).
    pub ratings: Profile,
    /// Only predict these items (default: every unrated one).
    pub items: Option<Vec<String>>,
}

/// `POST /v1/recommend`, read by [`super::profile::ProfileJson`] under the profile cap.
#[derive(Debug)]
pub struct RecommendRequest {
    /// (item id, rating), sorted by id, each id once; may be empty.
    pub ratings: Profile,
    /// How many items (1 to the configured maximum; default 10).
    pub n: i64,
    /// Items never to recommend.
    pub exclude: Vec<String>,
}

/// `POST /v1/users/{user_id}/ratings`, read under the profile cap like [`RecommendRequest`].
#[derive(Debug)]
pub struct FeedbackRequest {
    /// (item id, rating), sorted by id, each id once.
    pub ratings: Profile,
}

/// What `POST /v1/users/{user_id}/ratings` answers once the ratings are committed.
#[derive(Debug, Serialize)]
pub struct FeedbackResponse {
    /// The user.
    pub user_id: String,
    /// Ratings written.
    pub written: usize,
    /// Whether the serving model's snapshot knew the user before.
    pub known: bool,
}

impl From<crate::serving::Written> for FeedbackResponse {
    fn from(w: crate::serving::Written) -> Self {
        Self {
            user_id: w.user,
            written: w.ratings,
            known: w.known,
        }
    }
}

/// `POST /v1/onboarding`, read under the profile cap like [`RecommendRequest`].
#[derive(Debug)]
pub struct OnboardingRequest {
    /// (item id, rating), sorted by id, each id once; may be empty (a new user).
    pub ratings: Profile,
    /// How many questions (1 to the configured maximum; default 5).
    pub n: i64,
    /// Items never to ask about (say, those the user said they do not know).
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
    pub info: Option<ModelInfo>,
}

impl SavedModel {
    /// The listing of store entry `e`, when version `serving` serves.
    pub fn new(e: Entry, serving: Option<u64>) -> Self {
        let (status, created, info, error) = match e.manifest {
            Ok(m) => {
                let status = if e.rolled_back {
                    "rolled_back"
                } else {
                    "valid"
                };
                (status, Some(m.created), Some(m.info), None)
            }
            Err(fault) => ("invalid", None, None, Some(fault.to_string())),
        };
        Self {
            version: e.version,
            file: e.location,
            serving: serving == Some(e.version) && status == "valid",
            status,
            error,
            created,
            info,
        }
    }
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

/// `GET /v1/model`: the model's metadata and the scale of its ratings.
#[derive(Debug, Serialize)]
pub struct ModelResponse {
    /// What the model records about itself (also listed by `GET /admin/models`).
    #[serde(flatten)]
    pub info: ModelInfo,
    /// The valid ratings, for clients that build a rating form.
    pub scale: Scale,
}

/// The rating scale as `GET /v1/model` reports it.
#[derive(Debug, Serialize)]
pub struct Scale {
    /// Smallest valid rating.
    pub min: f64,
    /// Largest valid rating.
    pub max: f64,
    /// 1 when the snapshot's ratings are whole numbers, 0.5 when halves, `null` otherwise.
    pub step: Option<f64>,
}

impl ModelResponse {
    /// The DTO of `model`'s metadata and scale.
    pub fn new(model: &ServedModel) -> Self {
        let scale = model.scale();
        Self {
            info: model.info().clone(),
            scale: Scale {
                min: scale.min,
                max: scale.max,
                step: model.catalogue().step(),
            },
        }
    }
}

/// A rated or recommended item, its id and title borrowed from the model that answered (a
/// recommendation's ten ids were ten of its allocations; a completion's, one an item).
#[derive(Debug, Serialize)]
pub struct ItemPrediction<'a> {
    /// Item id.
    #[serde(serialize_with = "id")]
    pub item: Id<'a>,
    /// Display title, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<&'a str>,
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
pub struct PredictionResponse<'a> {
    /// The model version that answered.
    pub model_version: u64,
    /// Posterior over types, most likely first.
    pub posterior: Vec<TypeProbability>,
    /// Predictions (`POST /v1/complete`) or the top items, best first.
    pub items: Vec<ItemPrediction<'a>>,
}

impl<'a> PredictionResponse<'a> {
    /// The DTO of `answer` from `model`.
    pub fn new(model: &'a ServedModel, answer: Answer) -> Self {
        Self {
            model_version: model.info().version,
            posterior: posterior(answer.posterior),
            items: answer.items.iter().map(|p| item(model, p)).collect(),
        }
    }
}

impl WriteJson for PredictionResponse<'_> {
    fn write_json(&self, out: &mut JsonOut<'_>) {
        out.raw("{\"model_version\":");
        out.u64(self.model_version);
        out.raw(",\"posterior\":[");
        for (i, t) in self.posterior.iter().enumerate() {
            out.raw(if i == 0 { "{\"type\":" } else { ",{\"type\":" });
            out.u64(t.kind as u64);
            out.raw(",\"probability\":");
            out.f64(t.probability);
            out.raw("}");
        }
        out.raw("],\"items\":[");
        for (i, p) in self.items.iter().enumerate() {
            out.raw(if i == 0 { "{\"item\":" } else { ",{\"item\":" });
            write_id(&p.item, out);
            if let Some(title) = p.title {
                out.raw(",\"title\":");
                out.str(title);
            }
            out.raw(",\"rating\":");
            out.f64(p.rating);
            out.raw(",\"spread\":");
            out.f64(p.spread);
            out.raw("}");
        }
        out.raw("]}");
    }
}

/// An id as [`id`] writes it: a name quoted and escaped, a position as its digits in quotes.
fn write_id(id: &Id<'_>, out: &mut JsonOut<'_>) {
    match id {
        Id::Name(name) => out.str(name),
        Id::Position(i) => {
            out.raw("\"");
            out.u64(*i as u64);
            out.raw("\"");
        }
    }
}

/// The posterior's DTO, in the order given (most likely first).
fn posterior(types: Vec<(usize, f64)>) -> Vec<TypeProbability> {
    types
        .into_iter()
        .map(|(kind, probability)| TypeProbability { kind, probability })
        .collect()
}

/// Writes an id: a name as it is, a position as its digits, with no string made for it.
fn id<S: serde::Serializer>(id: &Id<'_>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Id::Name(name) => s.serialize_str(name),
        Id::Position(_) => s.collect_str(id),
    }
}

fn item<'a>(model: &'a ServedModel, p: &Prediction) -> ItemPrediction<'a> {
    let c = model.catalogue();
    ItemPrediction {
        item: c.item(p.item),
        title: c.item_title(p.item),
        rating: p.rating,
        spread: p.spread,
    }
}

/// One item worth asking a user about.
#[derive(Debug, Serialize)]
pub struct QuestionItem<'a> {
    /// Item id.
    #[serde(serialize_with = "id")]
    pub item: Id<'a>,
    /// Display title, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<&'a str>,
    /// Expected information gain of an answer about the user's type, in nats.
    pub gain: f64,
    /// How likely the user knows the item: its share of the snapshot's users.
    pub known: f64,
    /// `gain × known`, the ranking.
    pub score: f64,
}

/// Answer of `POST /v1/onboarding`.
#[derive(Debug, Serialize)]
pub struct OnboardingResponse<'a> {
    /// The model version that answered.
    pub model_version: u64,
    /// Posterior over types, most likely first (as `POST /v1/recommend` reports it).
    pub posterior: Vec<TypeProbability>,
    /// The questions, best first.
    pub items: Vec<QuestionItem<'a>>,
}

impl<'a> OnboardingResponse<'a> {
    /// The DTO of `answer` from `model`.
    pub fn new(model: &'a ServedModel, answer: Onboarding) -> Self {
        let c = model.catalogue();
        let items = answer
            .questions
            .iter()
            .map(|q| QuestionItem {
                item: c.item(q.item),
                title: c.item_title(q.item),
                gain: q.gain,
                known: q.known,
                score: q.score,
            })
            .collect();
        Self {
            model_version: model.info().version,
            posterior: posterior(answer.posterior),
            items,
        }
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
    /// The titles file's other columns (e.g. `genres`), when it has any for this item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<std::collections::BTreeMap<String, String>>,
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
                let attributes = c.attributes(&id).cloned();
                CatalogueItem {
                    id: id.into_owned(),
                    title,
                    attributes,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn written(value: &impl WriteJson) -> String {
        let mut bytes = Vec::new();
        value.write_json(&mut JsonOut(&mut bytes));
        String::from_utf8(bytes).expect("UTF-8")
    }

    #[test]
    fn a_written_prediction_answer_is_what_serde_writes() {
        // Names that need escaping (quotes, backslashes, control characters, non-ASCII),
        // positions, titles and none, and floats of every kind serde_json writes differently.
        let names = [
            "plain",
            "with \"quotes\" and \\",
            "tab\tnew\nline\u{1}",
            "Amélie ✓",
            "",
        ];
        let floats = [
            4.642196516486773,
            -0.0,
            0.0,
            1e-300,
            3.905041280255294e-6,
            1e22,
            -123456.75,
            f64::NAN,
            f64::INFINITY,
            f64::MIN_POSITIVE / 4.0,
        ];
        for n_items in [0, 1, 7] {
            for n_types in [0, 1, 12] {
                let answer = PredictionResponse {
                    model_version: 18_446_744_073_709_551_615 - n_items as u64,
                    posterior: (0..n_types)
                        .map(|j| TypeProbability {
                            kind: j * 3,
                            probability: floats[j % floats.len()],
                        })
                        .collect(),
                    items: (0..n_items)
                        .map(|i| ItemPrediction {
                            item: if i % 2 == 0 {
                                Id::Name(names[i % names.len()])
                            } else {
                                Id::Position(i * 1_000_003)
                            },
                            title: (i % 3 != 0).then_some(names[(i + 1) % names.len()]),
                            rating: floats[i % floats.len()],
                            spread: floats[(i + 3) % floats.len()],
                        })
                        .collect(),
                };
                let serde = serde_json::to_string(&answer).expect("serialises");
                assert_eq!(written(&answer), serde, "{n_items} items, {n_types} types");
            }
        }
    }
}
