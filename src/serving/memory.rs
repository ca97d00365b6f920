//! The memory bound of a training (`training.max_memory`): what a snapshot may take once
//! loaded and trained on, and the automatic default, three quarters of the machine's memory or
//! of the container's limit, whichever is smaller.
//!
//! Must not import: the registry, the jobs, web or async types.

use crate::config::{Auto, TrainingSettings};
use crate::data::Budget;

/// Bytes one rating takes while a snapshot is loaded and trained on: 2 M ratings (40,000
/// users, 4,000 items, `mixrec fit`, K chosen over 1..=16) peaked at 99.8 MB resident, about
/// 50 bytes a rating; rounded up for the ids and the held-out copies of other shapes.
pub const BYTES_PER_RATING: u64 = 64;

/// The share of the machine's (or the container's) memory a training may take by default.
const DEFAULT_SHARE: (u64, u64) = (3, 4);

/// The budget `training` sets.
pub fn budget(training: &TrainingSettings) -> Budget {
    Budget {
        max_bytes: max_memory(training),
        bytes_per_rating: BYTES_PER_RATING,
    }
}

/// `training.max_memory`, with `"auto"` resolved.
pub fn max_memory(training: &TrainingSettings) -> u64 {
    match training.max_memory {
        Auto::Is(bytes) => bytes,
        Auto::Auto => available() / DEFAULT_SHARE.1 * DEFAULT_SHARE.0,
    }
}

/// The smaller of the machine's memory and the container's limit; `u64::MAX` when neither can
/// be read (not Linux).
fn available() -> u64 {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| mem_total(&m));
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|p| cgroup_limit(&std::fs::read_to_string(p).ok()?));
    [machine, cgroup]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u64::MAX)
}

/// `MemTotal:  24576000 kB` of /proc/meminfo, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A cgroup memory limit: `max` (v2) or a huge number (v1, "no limit") is none.
fn cgroup_limit(text: &str) -> Option<u64> {
    let bytes: u64 = text.trim().parse().ok()?;
    // cgroup v1 writes 2^63 rounded down to a page for "no limit".
    (bytes < 1 << 62).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_from_meminfo_and_cgroups() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_576_000 * 1024));
        assert_eq!(cgroup_limit("max\n"), None);
        assert_eq!(cgroup_limit("9223372036854771712\n"), None);
        assert_eq!(cgroup_limit("2147483648\n"), Some(2 << 30));
    }

    #[test]
    fn auto_is_three_quarters_of_what_is_available() {
        let t = crate::serving::train::quick_settings();
        assert_eq!(max_memory(&t), available() / 4 * 3);
        let fixed = TrainingSettings {
            max_memory: Auto::Is(1 << 30),
            ..t
        };
        assert_eq!(budget(&fixed).max_bytes, 1 << 30);
    }
}
