//! Profile bodies (`POST /v1/complete`, `POST /v1/recommend`, `POST /v1/onboarding`, `POST
//! /v1/users/{user_id}/ratings`) read under
//! `server.max_profile_ratings`.
//!
//! The cap is checked *while* the JSON is read: the entry past the cap stops the parse, so a
//! 1 MB body of ratings is refused after `cap + 1` entries, never turned into a big map first.
//! `ratings` is read as a list of pairs, not a map, so an item rated twice is refused by name
//! (a map would silently keep the last value). Any other fault is the same problem as from
//! every JSON body ([`super::body`]): `malformed-json` or `invalid-body`.
//!
//! Must not import: the serving layer beyond its id helpers; no arithmetic here.

use std::cell::Cell;
use std::fmt;
use std::ops::Range;

use axum::extract::{FromRequest, Request};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::body::{json_body, json_error};
use super::dto::{
    CompleteRequest, DEFAULT_N, DEFAULT_QUESTIONS, FeedbackRequest, OnboardingRequest, Profile,
    RecommendRequest,
};
use super::error::ApiError;
use super::state::AppState;
use crate::serving::shown_id;

/// A profile body, read with the caps of the app's settings.
#[derive(Debug, Clone)]
pub struct ProfileJson<T>(pub T);

/// A request body that carries a profile.
pub trait ProfileBody: Sized {
    /// The fields it may have; any other is refused.
    const FIELDS: &'static [&'static str];
    /// The body from the fields read.
    fn from_fields(fields: Fields) -> Self;
}

/// The fields of a profile body as read; absent ones are `None`.
#[derive(Debug, Default)]
pub struct Fields {
    /// `ratings`: (item id, rating), sorted by id, each id once.
    pub ratings: Option<Profile>,
    /// `items`.
    pub items: Option<Vec<String>>,
    /// `exclude`.
    pub exclude: Option<Vec<String>>,
    /// `n`.
    pub n: Option<i64>,
}

impl ProfileBody for CompleteRequest {
    const FIELDS: &'static [&'static str] = &["ratings", "items"];
    fn from_fields(f: Fields) -> Self {
        Self {
            ratings: f.ratings.unwrap_or_default(),
            items: f.items,
        }
    }
}

impl ProfileBody for RecommendRequest {
    const FIELDS: &'static [&'static str] = &["ratings", "n", "exclude"];
    fn from_fields(f: Fields) -> Self {
        Self {
            ratings: f.ratings.unwrap_or_default(),
            n: f.n.unwrap_or(DEFAULT_N),
            exclude: f.exclude.unwrap_or_default(),
        }
    }
}

impl ProfileBody for FeedbackRequest {
    const FIELDS: &'static [&'static str] = &["ratings"];
    fn from_fields(f: Fields) -> Self {
        Self {
            ratings: f.ratings.unwrap_or_default(),
        }
    }
}

impl ProfileBody for OnboardingRequest {
    const FIELDS: &'static [&'static str] = &["ratings", "n", "exclude"];
    fn from_fields(f: Fields) -> Self {
        Self {
            ratings: f.ratings.unwrap_or_default(),
            n: f.n.unwrap_or(DEFAULT_QUESTIONS),
            exclude: f.exclude.unwrap_or_default(),
        }
    }
}

impl<T: ProfileBody> FromRequest<AppState> for ProfileJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let body = json_body(req, state).await?;
        read(&body, state.server.max_profile_ratings).map(Self)
    }
}

/// Why a well-formed body was refused while it was read.
#[derive(Debug, Clone, PartialEq)]
enum Refusal {
    /// A list or the ratings went past the cap.
    TooMany { field: &'static str, max: usize },
    /// An item rated twice.
    Duplicate(String),
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::TooMany { field, max } => {
                let detail = format!(
                    "`{field}` holds more than {max} entries, the limit \
                     (server.max_profile_ratings)"
                );
                Self::bad_request("profile-too-large", detail)
            }
            Refusal::Duplicate(item) => {
                let detail = format!("item {:?} is rated more than once", shown_id(&item));
                Self::bad_request("duplicate-rating", detail)
            }
        }
    }
}

/// Parses `body` as a `T` with at most `max` entries in each list.
pub fn read<T: ProfileBody>(body: &[u8], max: usize) -> Result<T, ApiError> {
    let refusal = Cell::new(None);
    let caps = Caps {
        max,
        body: body.len(),
        refusal: &refusal,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let read = BodySeed {
        fields: T::FIELDS,
        caps,
    }
    .deserialize(&mut de)
    .and_then(|fields| de.end().map(|()| fields));
    match (read, refusal.take()) {
        (Ok(fields), _) => Ok(T::from_fields(fields)),
        (Err(_), Some(refusal)) => Err(refusal.into()),
        (Err(e), None) => Err(json_error(&e)),
    }
}

/// The cap, the body's length, and where a visitor leaves the reason it stopped the parse.
#[derive(Clone, Copy)]
struct Caps<'a> {
    max: usize,
    /// Bytes of the body: what a profile's buffers are sized from.
    body: usize,
    refusal: &'a Cell<Option<Refusal>>,
}

impl Caps<'_> {
    /// An empty profile whose buffers hold whatever this body's ratings can be without growing
    /// (growing them was eight of a 20-rating recommendation's allocations): its ids take at
    /// most the body's bytes (an escape never decodes to more bytes than it is written in), and
    /// an entry at least [`MIN_ENTRY_BYTES`] of them; both at most [`MAX_RESERVED`].
    fn profile(self) -> Profile {
        let ids = self.body.min(MAX_RESERVED);
        let entries = (self.body / MIN_ENTRY_BYTES)
            .min(self.max)
            .min(MAX_RESERVED);
        Profile {
            ids: String::with_capacity(ids),
            entries: Vec::with_capacity(entries),
        }
    }

    fn refuse<E: de::Error>(self, why: Refusal) -> E {
        let e = E::custom(format!("{why:?}"));
        self.refusal.set(Some(why));
        e
    }

    fn check<E: de::Error>(self, len: usize, field: &'static str) -> Result<(), E> {
        if len < self.max {
            return Ok(());
        }
        let max = self.max;
        Err(self.refuse(Refusal::TooMany { field, max }))
    }
}

/// The shortest rating entry, `"7":5,`.
const MIN_ENTRY_BYTES: usize = 6;
/// Ids' bytes or entries reserved at most before a profile is read: a large body's buffers
/// grow as it is read, not on its word.
const MAX_RESERVED: usize = 1 << 14;

/// The top-level object.
struct BodySeed<'a> {
    fields: &'static [&'static str],
    caps: Caps<'a>,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = Fields;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Fields, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with the fields {}", self.fields.join(", "))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut f = Fields::default();
        let caps = self.caps;
        while let Some(key) = map.next_key_seed(FieldSeed(self.fields))? {
            match key {
                "ratings" => {
                    once(&f.ratings, "ratings")?;
                    f.ratings = Some(map.next_value_seed(RatingsSeed(caps))?);
                }
                "items" => {
                    once(&f.items, "items")?;
                    f.items = Some(map.next_value_seed(IdsSeed(caps, "items"))?);
                }
                "exclude" => {
                    once(&f.exclude, "exclude")?;
                    f.exclude = Some(map.next_value_seed(IdsSeed(caps, "exclude"))?);
                }
                "n" => {
                    once(&f.n, "n")?;
                    f.n = Some(map.next_value()?);
                }
                k => return Err(de::Error::unknown_field(k, self.fields)),
            }
        }
        Ok(f)
    }
}

fn once<T, E: de::Error>(slot: &Option<T>, field: &'static str) -> Result<(), E> {
    match slot {
        Some(_) => Err(E::duplicate_field(field)),
        None => Ok(()),
    }
}

/// A key of the top-level object: one of the body's fields, read without a copy.
struct FieldSeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = &'static str;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldSeed {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of the fields {}", self.0.join(", "))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        match self.0.iter().find(|&&field| field == key) {
            Some(field) => Ok(field),
            None => Err(E::unknown_field(key, self.0)),
        }
    }
}

/// `ratings`: an object of item id → number.
struct RatingsSeed<'a>(Caps<'a>);

impl<'de> DeserializeSeed<'de> for RatingsSeed<'_> {
    type Value = Profile;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RatingsSeed<'_> {
    type Value = Profile;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of item id to rating")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = self.0.profile();
        while let Some(id) = map.next_key_seed(IdSeed(&mut out.ids))? {
            self.0.check(out.entries.len(), "ratings")?;
            out.entries.push((id, map.next_value()?));
        }
        // By id, as the map this replaced: the same profile in any key order gives the same
        // bits. Equal ids are then neighbours.
        let id = |at: &Range<usize>| &out.ids[at.clone()];
        out.entries.sort_unstable_by(|a, b| id(&a.0).cmp(id(&b.0)));
        if let Some(pair) = out.entries.windows(2).find(|w| id(&w[0].0) == id(&w[1].0)) {
            let twice = id(&pair[0].0).to_owned();
            return Err(self.0.refuse(Refusal::Duplicate(twice)));
        }
        Ok(out)
    }
}

/// An item id of `ratings`, appended to the profile's buffer of ids; its place there.
struct IdSeed<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for IdSeed<'_> {
    type Value = Range<usize>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for IdSeed<'_> {
    type Value = Range<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an item id")
    }

    fn visit_str<E: de::Error>(self, id: &str) -> Result<Self::Value, E> {
        let start = self.0.len();
        self.0.push_str(id);
        Ok(start..self.0.len())
    }
}

/// `items` and `exclude`: an array of item ids.
struct IdsSeed<'a>(Caps<'a>, &'static str);

impl<'de> DeserializeSeed<'de> for IdsSeed<'_> {
    type Value = Vec<String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for IdsSeed<'_> {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of item ids")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(id) = seq.next_element::<String>()? {
            self.0.check(out.len(), self.1)?;
            out.push(id);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recommend(body: &str, max: usize) -> Result<RecommendRequest, ApiError> {
        read(body.as_bytes(), max)
    }

    #[test]
    fn ratings_come_sorted_by_id_with_defaults_filled_in() {
        let r = recommend(r#"{"ratings": {"b": 2, "a": 4.5}}"#, 3).unwrap();
        assert_eq!(r.ratings.pairs(), vec![("a", 4.5), ("b", 2.0)]);
        assert_eq!((r.n, r.exclude.len()), (DEFAULT_N, 0));
        let c: CompleteRequest = read(br#"{"items": ["x"]}"#, 3).unwrap();
        assert_eq!(
            (c.ratings.pairs().len(), c.items),
            (0, Some(vec!["x".into()]))
        );
    }

    #[test]
    fn the_entry_past_the_cap_is_refused_naming_the_field() {
        assert_eq!(
            recommend(r#"{"exclude": ["a", "b"]}"#, 2)
                .unwrap()
                .exclude
                .len(),
            2
        );
        let e = recommend(r#"{"exclude": ["a", "b", "c"]}"#, 2).unwrap_err();
        assert_eq!(e.kind, "profile-too-large");
        assert!(e.detail.contains("`exclude`") && e.detail.contains("2 entries"));
        let e = recommend(r#"{"ratings": {"a": 1, "b": 2, "c": 3}}"#, 2).unwrap_err();
        assert!(e.detail.contains("`ratings`"), "{}", e.detail);
    }

    #[test]
    fn a_profile_is_read_into_buffers_sized_once_and_never_past_the_caps() {
        // Escaped ids decode to fewer bytes than they are written in: the body's length holds
        // them, so the buffers never grow.
        let body = r#"{"ratings": {"\u00e9t\u00e9": 5, "\ud83c\udfac": 4, "a": 3}, "n": 2}"#;
        let r = recommend(body, 10).unwrap();
        assert_eq!(
            r.ratings.pairs(),
            vec![("a", 3.0), ("été", 5.0), ("🎬", 4.0)]
        );
        // What was reserved and no more: the body's bytes, and the cap's 10 entries (fewer
        // than its length allows).
        assert_eq!(r.ratings.ids.capacity(), body.len());
        assert_eq!(r.ratings.entries.capacity(), 10);
        // A body's word reserves no more than the cap's entries and MAX_RESERVED bytes.
        let refusal = Cell::new(None);
        let huge = Caps {
            max: 100,
            body: 1 << 30,
            refusal: &refusal,
        }
        .profile();
        assert_eq!(
            (huge.ids.capacity(), huge.entries.capacity()),
            (MAX_RESERVED, 100)
        );
    }

    #[test]
    fn an_item_rated_twice_is_named() {
        let e = recommend(r#"{"ratings": {"z": 1, "m7": 2, "m7": 2}}"#, 9).unwrap_err();
        assert_eq!(
            (e.kind, e.detail.as_str()),
            ("duplicate-rating", r#"item "m7" is rated more than once"#)
        );
    }

    #[test]
    fn other_faults_are_malformed_json_or_invalid_body() {
        let kind = |body: &str| recommend(body, 9).unwrap_err().kind;
        assert_eq!(kind(r#"{"n": 3"#), "malformed-json");
        assert_eq!(kind(r#"{"n": 3} x"#), "malformed-json");
        assert_eq!(kind(r#"{"n": 3, "n": 4}"#), "invalid-body");
        assert_eq!(kind(r#"{"items": []}"#), "invalid-body");
        assert_eq!(kind(r#"[{}, 3, []]"#), "invalid-body");
        assert_eq!(kind(r#"{"ratings": {"a": "5"}}"#), "invalid-body");
    }
}
