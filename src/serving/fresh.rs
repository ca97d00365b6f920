//! The ratings users posted since the serving model's snapshot was read, by user, with a
//! counter of the ratings committed: what the next recommendations fold in at once, until a
//! model trained on a read that began after those writes serves.
//!
//! Must not import: the registry, the lifecycle, web types.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The fresh ratings of each user who posted some, and the write counter.
#[derive(Debug, Default)]
pub(super) struct Fresh {
    users: Mutex<HashMap<String, FreshUser>>,
    /// Ratings committed so far, over every write: each write's number is the count after it.
    seq: AtomicU64,
}

#[derive(Debug, Clone)]
struct FreshUser {
    /// Item id → rating, the latest posted.
    ratings: BTreeMap<String, f64>,
    /// The write that last added to them.
    seq: u64,
}

impl Fresh {
    /// Ratings committed so far: a read that begins now sees all of them.
    pub(super) fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Adds a committed write.
    pub(super) fn add(&self, user: &str, ratings: &[(String, f64)]) {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let n = ratings.len() as u64;
        let seq = self.seq.fetch_add(n, Ordering::SeqCst) + n;
        let entry = users.entry(user.to_owned()).or_insert_with(|| FreshUser {
            ratings: BTreeMap::new(),
            seq,
        });
        entry.seq = seq;
        entry.ratings.extend(ratings.iter().cloned());
    }

    /// Forgets the users whose every fresh rating a read that began once `seen` ratings were
    /// committed holds.
    pub(super) fn prune(&self, seen: u64) {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users.retain(|_, u| u.seq > seen);
    }

    pub(super) fn of(&self, user: &str) -> Option<BTreeMap<String, f64>> {
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users.get(user).map(|u| u.ratings.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ratings_merge_and_go_once_a_later_read_holds_them() {
        let fresh = Fresh::default();
        fresh.add("u1", &[("m1".into(), 4.0), ("m2".into(), 1.0)]);
        let seen = fresh.seq();
        fresh.add("u2", &[("m1".into(), 2.0)]);
        fresh.add("u1", &[("m1".into(), 5.0)]);
        let u1 = fresh.of("u1").unwrap();
        assert_eq!(
            u1.into_iter().collect::<Vec<_>>(),
            [("m1".into(), 5.0), ("m2".into(), 1.0)]
        );
        // A read after the first write only: u1 wrote again since, u2 too.
        fresh.prune(seen);
        assert!(fresh.of("u1").is_some() && fresh.of("u2").is_some());
        fresh.prune(fresh.seq());
        assert!(fresh.of("u1").is_none() && fresh.of("u2").is_none());
    }
}
