//! The one row collector of every ratings reader (a triples file's lines, a database's rows):
//! ids interned in order of first appearance, ratings gathered in input order, then put into
//! rows by user with the re-rating policy ([`Duplicates`]) applied to a pair rated twice.
//!
//! Must not import: the readers (they import it), anything above `src/data`.

use super::{IdMap, NameIndex, Problem, Ratings, RatingsBuilder};

/// What a snapshot with a user-item pair rated twice (a re-rating) gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Duplicates {
    /// The snapshot is refused, naming both ratings (an export bug is not silently hidden).
    #[default]
    Error,
    /// The rating with the latest timestamp wins; without timestamps (or on a tie) the one
    /// read last. The ratings replaced are counted.
    Latest,
}

impl Duplicates {
    /// The name used in settings and `/v1/model`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Latest => "latest",
        }
    }
}

/// Interns ids: string to dense index in order of first appearance.
#[derive(Default)]
struct Interner {
    names: Vec<String>,
    index: NameIndex,
}

impl Interner {
    fn intern(&mut self, id: &str, what: &'static str) -> Result<u32, Problem> {
        if id.is_empty() {
            return Err(Problem::EmptyId { what });
        }
        if let Some(i) = self.index.get(&self.names, id) {
            return Ok(i);
        }
        let i = u32::try_from(self.names.len()).map_err(|_| Problem::TooMany(what))?;
        self.names.push(id.to_owned());
        self.index.insert_new(&self.names, i);
        Ok(i)
    }

    fn into_map(self) -> IdMap {
        IdMap::Named {
            names: self.names,
            index: self.index,
        }
    }
}

/// A pair rated twice under [`Duplicates::Error`]: the user, the item, and the 0-based input
/// positions (in [`Collector::push`] order) of its first two ratings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Duplicate {
    pub(super) user: String,
    pub(super) item: String,
    pub(super) first: usize,
    pub(super) second: usize,
}

/// What a collector gives once the input has ended.
pub(super) struct Collected {
    pub(super) ratings: Ratings,
    pub(super) users: IdMap,
    pub(super) items: IdMap,
    /// Ratings replaced by a later re-rating ([`Duplicates::Latest`]).
    pub(super) replaced: usize,
}

/// Ratings gathered in input order before they are put into rows.
pub(super) struct Collector {
    policy: Duplicates,
    users: Interner,
    items: Interner,
    user_of: Vec<u32>,
    item_of: Vec<u32>,
    values: Vec<f32>,
    /// Timestamps (seconds), kept only under [`Duplicates::Latest`] and once one was given
    /// (empty: none so far); a rating without one counts as older than any with one (`-inf`,
    /// inside the collector only).
    stamps: Vec<f64>,
}

impl Collector {
    /// An empty collector applying `policy` to re-ratings.
    pub(super) fn new(policy: Duplicates) -> Self {
        Self {
            policy,
            users: Interner::default(),
            items: Interner::default(),
            user_of: Vec::new(),
            item_of: Vec::new(),
            values: Vec::new(),
            stamps: Vec::new(),
        }
    }

    /// Whether the timestamps matter (so a reader parses them).
    pub(super) fn wants_stamps(&self) -> bool {
        self.policy == Duplicates::Latest
    }

    /// Ratings pushed so far.
    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    /// Adds one rating, already checked against the scale.
    pub(super) fn push(
        &mut self,
        user: &str,
        item: &str,
        value: f64,
        stamp: Option<f64>,
    ) -> Result<(), Problem> {
        let u = self.users.intern(user, "user")?;
        let i = self.items.intern(item, "item")?;
        if self.values.len() == u32::MAX as usize {
            return Err(Problem::TooMany("ratings"));
        }
        self.user_of.push(u);
        self.item_of.push(i);
        self.values.push(value as f32);
        // Kept from the first timestamp on (the ratings before it padded): a snapshot without
        // any costs nothing.
        match stamp {
            Some(t) if self.wants_stamps() => {
                self.stamps.resize(self.values.len() - 1, f64::NEG_INFINITY);
                self.stamps.push(t);
            }
            _ if !self.stamps.is_empty() => self.stamps.push(f64::NEG_INFINITY),
            _ => {}
        }
        Ok(())
    }

    /// The ratings in rows, or the first pair rated twice under [`Duplicates::Error`].
    pub(super) fn finish(self) -> Result<Collected, Duplicate> {
        let (ratings, replaced, users, items) = self.into_rows()?;
        Ok(Collected {
            ratings,
            users: users.into_map(),
            items: items.into_map(),
            replaced,
        })
    }

    /// Counting sort by user, then by (item, input position) within each row; a run of one
    /// item keeps its winner.
    fn into_rows(self) -> Result<(Ratings, usize, Interner, Interner), Duplicate> {
        let (n_users, n_items) = (self.users.names.len(), self.items.names.len());
        let mut counts = vec![0usize; n_users + 1];
        for &u in &self.user_of {
            counts[u as usize + 1] += 1;
        }
        for u in 0..n_users {
            counts[u + 1] += counts[u];
        }
        let mut order = vec![0u32; self.user_of.len()];
        let mut next = counts.clone();
        for (k, &u) in self.user_of.iter().enumerate() {
            order[next[u as usize]] = k as u32;
            next[u as usize] += 1;
        }
        let mut b = RatingsBuilder::with_capacity(n_items, n_users, self.values.len());
        let mut replaced = 0;
        for u in 0..n_users {
            let row = &mut order[counts[u]..counts[u + 1]];
            // Positions ascend within a user already (the counting sort is stable), so sorting
            // by item alone with a stable sort keeps input order inside a run.
            row.sort_by_key(|&k| self.item_of[k as usize]);
            let mut at = 0;
            while at < row.len() {
                let item = self.item_of[row[at] as usize];
                let run = row[at..]
                    .iter()
                    .take_while(|&&k| self.item_of[k as usize] == item)
                    .count();
                let winner = self.winner(&row[at..at + run], u)?;
                replaced += run - 1;
                b.push(item, self.values[winner]);
                at += run;
            }
            b.end_row();
        }
        Ok((b.finish(), replaced, self.users, self.items))
    }

    /// The rating that stands among `run` (input positions of one pair, ascending).
    fn winner(&self, run: &[u32], user: usize) -> Result<usize, Duplicate> {
        if run.len() == 1 {
            return Ok(run[0] as usize);
        }
        match self.policy {
            Duplicates::Error => Err(Duplicate {
                user: self.users.names[user].clone(),
                item: self.items.names[self.item_of[run[0] as usize] as usize].clone(),
                first: run[0] as usize,
                second: run[1] as usize,
            }),
            // The latest stamp; on a tie (or without stamps) the later position.
            Duplicates::Latest => {
                let stamp = |k: usize| self.stamps.get(k).copied().unwrap_or(f64::NEG_INFINITY);
                Ok(run
                    .iter()
                    .map(|&k| k as usize)
                    .reduce(|best, k| match stamp(k) >= stamp(best) {
                        true => k,
                        false => best,
                    })
                    .expect("a run is never empty"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(policy: Duplicates, rows: &[(&str, &str, f64, Option<f64>)]) -> Collector {
        let mut c = Collector::new(policy);
        for &(u, i, x, t) in rows {
            c.push(u, i, x, t).unwrap();
        }
        c
    }

    #[test]
    fn a_re_rating_is_an_error_naming_both_positions_by_default() {
        let rows = [
            ("u1", "m1", 4.0, None),
            ("u2", "m1", 3.0, None),
            ("u1", "m1", 2.0, None),
        ];
        let err = collect(Duplicates::Error, &rows).finish().err().unwrap();
        let want = Duplicate {
            user: "u1".into(),
            item: "m1".into(),
            first: 0,
            second: 2,
        };
        assert_eq!(err, want);
    }

    #[test]
    fn the_latest_timestamp_wins_else_the_last_row() {
        let rows = [
            ("u1", "m1", 4.0, Some(20.0)),
            ("u1", "m1", 2.0, Some(10.0)),
            ("u1", "m2", 1.0, None),
            ("u1", "m2", 5.0, None),
            ("u2", "m1", 3.0, Some(5.0)),
            ("u2", "m1", 1.5, Some(5.0)),
            ("u2", "m1", 2.5, None),
        ];
        let got = collect(Duplicates::Latest, &rows).finish().ok().unwrap();
        // u1: m1 by its timestamp 20 (read first), m2 the last row (no timestamps); u2: m1
        // the later of the tie at 5, the row without a timestamp counting as older.
        assert_eq!(got.ratings.row(0), (&[0u32, 1][..], &[4.0f32, 5.0][..]));
        assert_eq!(got.ratings.row(1), (&[0u32][..], &[1.5f32][..]));
        assert_eq!(got.replaced, 4);
    }

    #[test]
    fn a_first_timestamp_late_in_the_input_still_wins() {
        let rows = [
            ("u1", "m1", 4.0, None),
            ("u1", "m2", 3.0, None),
            ("u1", "m1", 2.0, Some(1.0)),
            ("u1", "m2", 1.0, None),
        ];
        let got = collect(Duplicates::Latest, &rows).finish().ok().unwrap();
        assert_eq!(got.ratings.row(0), (&[0u32, 1][..], &[2.0f32, 1.0][..]));
        assert_eq!(got.replaced, 2);
    }

    #[test]
    fn empty_ids_are_refused() {
        let mut c = Collector::new(Duplicates::Error);
        assert_eq!(
            c.push("", "m1", 1.0, None),
            Err(Problem::EmptyId { what: "user" })
        );
    }
}
