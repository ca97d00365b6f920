//! Synthetic ratings snapshots with planted user types: the embedded demo catalogue, tests and
//! benchmarks at scale.
//!
//! The generative story (every draw from one seeded PCG stream, so a seed gives the same bytes):
//! - each item has a popularity from a Zipf-like law `w ∝ 1 / (rank + 1)^0.8` over a random
//!   ranking, and a bias `b_l ~ N(0, 0.4²)`;
//! - each of the K types has a taste for each item `t_jl ~ N(0, 0.9²)` and a weight
//!   `∝ 1 / sqrt(j + 1)`;
//! - each user has a type, a bias `b_u ~ N(0, 0.35²)` and a number of ratings drawn from a
//!   log-normal share of the total (at least 1, at most the catalogue);
//! - a rating is `round(clamp(3.6 + b_l + b_u + t_jl + e, 1, 5))` with noise `e ~ N(0, 0.6²)`.
//!
//! Output streams user by user: memory is O(K·d + n), never O(n·d). No web or async types here.

use std::io::{self, Write};

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// Mean rating before biases and tastes.
const GLOBAL_MEAN: f64 = 3.6;
/// Zipf exponent of item popularity (below 1: a long tail that still gets rated).
const ZIPF_EXPONENT: f64 = 0.8;

/// Snapshot text format written by [`write_snapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SynthFormat {
    /// `user,item,rating` CSV with a header.
    #[default]
    Triples,
    /// The seed's dense matrix (one row per user, 0 = missing).
    Matrix,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    /// Number of users n.
    pub users: usize,
    /// Number of items d.
    pub items: usize,
    /// Total ratings R (n ≤ R ≤ n·d).
    pub ratings: usize,
    /// Planted user types K.
    pub types: usize,
    /// Seed of every draw.
    pub seed: u64,
}

/// Why a spec cannot be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SynthError {
    /// Zero users, items or types.
    #[error("users, items and types must all be at least 1")]
    Empty,
    /// Fewer ratings than users, or more than the full matrix.
    #[error("ratings must lie between users ({min}) and users × items ({max}), got {got}")]
    Ratings {
        /// n.
        min: usize,
        /// n·d.
        max: usize,
        /// R.
        got: usize,
    },
}

impl SynthSpec {
    /// Checks the sizes before anything is written.
    pub fn check(&self) -> Result<(), SynthError> {
        if self.users == 0 || self.items == 0 || self.types == 0 {
            return Err(SynthError::Empty);
        }
        let max = self.users.saturating_mul(self.items);
        if self.ratings < self.users || self.ratings > max {
            let (min, got) = (self.users, self.ratings);
            return Err(SynthError::Ratings { min, max, got });
        }
        Ok(())
    }
}

/// The id of item `l` among `d`: `m` and a zero-padded number (`m007`).
pub fn item_id(l: usize, d: usize) -> String {
    format!("m{:0w$}", l + 1, w = digits(d))
}

/// The id of user `u` among `n`: `u` and a zero-padded number.
pub fn user_id(u: usize, n: usize) -> String {
    format!("u{:0w$}", u + 1, w = digits(n))
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// A standard normal draw (Box–Muller; one of the pair is dropped for simplicity).
fn normal(rng: &mut Pcg64Mcg) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln stays finite
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The planted structure: everything but the users.
struct World {
    /// Popularity weight of each item. (d,)
    popularity: Vec<f64>,
    /// Cumulative popularity, for inverse-CDF draws. (d,)
    cdf: Vec<f64>,
    /// Item biases. (d,)
    item_bias: Vec<f64>,
    /// Type tastes, type-major. (k, d)
    taste: Vec<f64>,
    /// Cumulative type weights. (k,)
    type_cdf: Vec<f64>,
}

impl World {
    fn new(spec: &SynthSpec, rng: &mut Pcg64Mcg) -> Self {
        let d = spec.items;
        let mut rank: Vec<usize> = (0..d).collect();
        for i in (1..d).rev() {
            rank.swap(i, rng.random_range(0..=i)); // Fisher–Yates
        }
        let popularity: Vec<f64> = rank
            .iter()
            .map(|&r| 1.0 / ((r + 1) as f64).powf(ZIPF_EXPONENT))
            .collect();
        let item_bias = (0..d).map(|_| 0.4 * normal(rng)).collect();
        let taste = (0..spec.types * d).map(|_| 0.9 * normal(rng)).collect();
        let type_weights: Vec<f64> = (0..spec.types)
            .map(|j| 1.0 / ((j + 1) as f64).sqrt())
            .collect();
        Self {
            cdf: cumulative(&popularity),
            popularity,
            item_bias,
            taste,
            type_cdf: cumulative(&type_weights),
        }
    }

    fn d(&self) -> usize {
        self.popularity.len()
    }

    /// `count` distinct items drawn by popularity, ascending.
    fn draw_items(&self, count: usize, rng: &mut Pcg64Mcg) -> Vec<usize> {
        let mut chosen = if count * 8 <= self.d() {
            self.draw_by_rejection(count, rng)
        } else {
            self.draw_by_keys(count, rng)
        };
        chosen.sort_unstable();
        chosen
    }

    /// Inverse-CDF draws, repeats thrown back: cheap while `count` is a small share of d.
    fn draw_by_rejection(&self, count: usize, rng: &mut Pcg64Mcg) -> Vec<usize> {
        let mut chosen = Vec::with_capacity(count);
        while chosen.len() < count {
            let l = pick(&self.cdf, rng);
            if !chosen.contains(&l) {
                chosen.push(l);
            }
        }
        chosen
    }

    /// Weighted sampling without replacement (Efraimidis–Spirakis with exponential keys
    /// `E / w`, smallest first): O(d) for the heavy raters that rejection would make slow.
    fn draw_by_keys(&self, count: usize, rng: &mut Pcg64Mcg) -> Vec<usize> {
        let mut keys: Vec<(f64, usize)> = self
            .popularity
            .iter()
            .enumerate()
            .map(|(l, w)| (-(1.0 - rng.random::<f64>()).ln() / w, l))
            .collect();
        keys.select_nth_unstable_by(count - 1, |a, b| a.0.total_cmp(&b.0));
        keys[..count].iter().map(|&(_, l)| l).collect()
    }

    /// One rating of item `l` by a user of type `j` with bias `b_u`, on the 1–5 scale.
    fn rate(&self, j: usize, l: usize, b_u: f64, rng: &mut Pcg64Mcg) -> u8 {
        let x = GLOBAL_MEAN + self.item_bias[l] + b_u + self.taste[j * self.d() + l];
        (x + 0.6 * normal(rng)).clamp(1.0, 5.0).round() as u8
    }
}

fn cumulative(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect()
}

/// Index of the first cumulative weight above a uniform draw.
fn pick(cdf: &[f64], rng: &mut Pcg64Mcg) -> usize {
    let r: f64 = rng.random();
    cdf.partition_point(|&c| c <= r).min(cdf.len() - 1)
}

/// Ratings per user: log-normal shares of R, each in 1..=d, summing to exactly R.
fn rating_counts(spec: &SynthSpec, rng: &mut Pcg64Mcg) -> Vec<usize> {
    let shares: Vec<f64> = (0..spec.users).map(|_| (0.8 * normal(rng)).exp()).collect();
    let total: f64 = shares.iter().sum();
    let mut counts: Vec<usize> = shares
        .iter()
        .map(|s| ((s / total * spec.ratings as f64) as usize).clamp(1, spec.items))
        .collect();
    // Rounding and clamping leave the sum off by a little: walk the users adding or removing
    // one rating each where there is room, until it is exact (check() makes R reachable).
    let mut sum: usize = counts.iter().sum();
    let mut u = 0;
    while sum != spec.ratings {
        let c = &mut counts[u % spec.users];
        if sum < spec.ratings && *c < spec.items {
            *c += 1;
            sum += 1;
        } else if sum > spec.ratings && *c > 1 {
            *c -= 1;
            sum -= 1;
        }
        u += 1;
    }
    counts
}

/// Writes a synthetic snapshot of `spec` to `out` in `format`.
pub fn write_snapshot<W: Write>(spec: &SynthSpec, format: SynthFormat, out: W) -> io::Result<()> {
    spec.check().map_err(io::Error::other)?;
    let mut rng = Pcg64Mcg::seed_from_u64(spec.seed);
    let world = World::new(spec, &mut rng);
    let counts = rating_counts(spec, &mut rng);
    let mut out = io::BufWriter::with_capacity(1 << 20, out);
    if format == SynthFormat::Triples {
        writeln!(out, "user,item,rating")?;
    }
    let mut row = vec![0u8; spec.items];
    for (u, &count) in counts.iter().enumerate() {
        let j = pick(&world.type_cdf, &mut rng);
        let b_u = 0.35 * normal(&mut rng);
        row.fill(0);
        for l in world.draw_items(count, &mut rng) {
            row[l] = world.rate(j, l, b_u, &mut rng);
        }
        write_user(&mut out, format, u, spec, &row)?;
    }
    out.flush()
}

fn write_user(
    out: &mut impl Write,
    format: SynthFormat,
    u: usize,
    spec: &SynthSpec,
    row: &[u8],
) -> io::Result<()> {
    match format {
        SynthFormat::Triples => {
            let user = user_id(u, spec.users);
            for (l, &x) in row.iter().enumerate().filter(|(_, x)| **x > 0) {
                writeln!(out, "{user},{},{x}", item_id(l, spec.items))?;
            }
        }
        SynthFormat::Matrix => {
            for (l, x) in row.iter().enumerate() {
                let sep = if l + 1 == row.len() { "\n" } else { " " };
                write!(out, "{x}{sep}")?;
            }
        }
    }
    Ok(())
}

const ADJECTIVES: &[&str] = &[
    "Silent",
    "Crimson",
    "Last",
    "Hidden",
    "Golden",
    "Broken",
    "Midnight",
    "Distant",
    "Wild",
    "Frozen",
    "Electric",
    "Quiet",
    "Burning",
    "Lonely",
    "Secret",
    "Endless",
    "Paper",
    "Iron",
    "Velvet",
    "Hollow",
    "Restless",
    "Bright",
    "Lost",
    "Northern",
    "Copper",
    "Savage",
    "Gentle",
    "Glass",
    "Forgotten",
    "Scarlet",
];
const NOUNS: &[&str] = &[
    "Harbor",
    "Garden",
    "Kingdom",
    "Detective",
    "River",
    "Summer",
    "Machine",
    "Orchard",
    "Signal",
    "Tide",
    "Lighthouse",
    "Circus",
    "Empire",
    "Stranger",
    "Voyage",
    "Witness",
    "Canyon",
    "Parade",
    "Heist",
    "Island",
    "Carnival",
    "Frontier",
    "Monsoon",
    "Archive",
    "Comet",
    "Ballroom",
    "Desert",
    "Engine",
    "Forest",
    "Mirror",
];
const PLACES: &[&str] = &[
    "Avalon",
    "Marseille",
    "the North",
    "Lagos",
    "Kyoto",
    "Route 9",
    "Santa Fe",
    "the Moon",
    "Old Town",
    "Valparaíso",
    "Harlem",
    "the Delta",
];

/// A made-up title: a few patterns over the word lists, with a year so titles rarely repeat.
fn title(rng: &mut Pcg64Mcg) -> String {
    let word = |list: &[&'static str], rng: &mut Pcg64Mcg| list[rng.random_range(0..list.len())];
    let (adj, noun) = (word(ADJECTIVES, rng), word(NOUNS, rng));
    let name = match rng.random_range(0..4) {
        0 => format!("The {adj} {noun}"),
        1 => format!("{noun} of {}", word(PLACES, rng)),
        2 => format!("{adj} {noun}s"),
        _ => format!("{noun} in {}", word(PLACES, rng)),
    };
    format!("{name} ({})", rng.random_range(1950..2026))
}

/// Writes `item_id,title` CSV (with a header) for the `items` ids of a synthetic snapshot.
/// Titles come from their own stream (seed + 1), so they do not depend on the ratings drawn.
pub fn write_titles<W: Write>(items: usize, seed: u64, out: W) -> io::Result<()> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed.wrapping_add(1));
    let mut out = io::BufWriter::new(out);
    writeln!(out, "item_id,title")?;
    for l in 0..items {
        writeln!(out, "{},{}", item_id(l, items), title(&mut rng))?;
    }
    out.flush()
}

/// Flags of `mixrec synth`.
#[derive(Debug, Clone, clap::Args)]
pub struct SynthArgs {
    /// Number of users.
    #[arg(long)]
    pub users: usize,
    /// Number of items.
    #[arg(long)]
    pub items: usize,
    /// Total number of ratings.
    #[arg(long)]
    pub ratings: usize,
    /// Planted user types.
    #[arg(long)]
    pub types: usize,
    /// Seed of every draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the snapshot.
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Snapshot format.
    #[arg(long, value_enum, default_value = "triples")]
    pub format: SynthFormat,
    /// Also write `item_id,title` CSV here.
    #[arg(long)]
    pub titles: Option<std::path::PathBuf>,
}

impl SynthArgs {
    /// The spec these flags describe.
    pub fn spec(&self) -> SynthSpec {
        SynthSpec {
            users: self.users,
            items: self.items,
            ratings: self.ratings,
            types: self.types,
            seed: self.seed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{self, Format, LoadOptions};

    fn spec() -> SynthSpec {
        SynthSpec {
            users: 50,
            items: 40,
            ratings: 600,
            types: 3,
            seed: 7,
        }
    }

    fn generate(spec: &SynthSpec, format: SynthFormat) -> String {
        let mut out = Vec::new();
        write_snapshot(spec, format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn triples_load_with_the_asked_shape_and_scale() {
        let text = generate(&spec(), SynthFormat::Triples);
        let snap = data::load_str(&text, LoadOptions::default()).unwrap();
        assert_eq!(snap.format, Format::Triples);
        assert_eq!(snap.ratings.nnz(), 600);
        assert_eq!(snap.users.len(), 50);
        let (lo, hi) = snap.ratings.value_range().unwrap();
        assert!(lo >= 1.0 && hi <= 5.0);
        assert!(snap.ratings.iter().all(|(_, _, x)| x.fract() == 0.0));
    }

    #[test]
    fn a_seed_gives_the_same_bytes_and_another_seed_does_not() {
        let a = generate(&spec(), SynthFormat::Triples);
        assert_eq!(a, generate(&spec(), SynthFormat::Triples));
        let other = SynthSpec { seed: 8, ..spec() };
        assert_ne!(a, generate(&other, SynthFormat::Triples));
    }

    #[test]
    fn matrix_and_triples_hold_the_same_ratings() {
        let m = generate(&spec(), SynthFormat::Matrix);
        let snap = data::load_str(&m, LoadOptions::default()).unwrap();
        assert_eq!(snap.format, Format::Matrix);
        assert_eq!((snap.ratings.n_users(), snap.ratings.n_items()), (50, 40));
        assert_eq!(snap.ratings.nnz(), 600);
    }

    #[test]
    fn heavy_raters_and_the_full_matrix_are_reachable() {
        let full = SynthSpec {
            ratings: 50 * 40,
            ..spec()
        };
        let snap = data::load_str(
            &generate(&full, SynthFormat::Triples),
            LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(snap.ratings.nnz(), 2000);
    }

    #[test]
    fn impossible_sizes_are_refused() {
        assert_eq!(
            SynthSpec { types: 0, ..spec() }.check(),
            Err(SynthError::Empty)
        );
        let too_many = SynthSpec {
            ratings: 2001,
            ..spec()
        };
        assert!(matches!(too_many.check(), Err(SynthError::Ratings { .. })));
    }

    #[test]
    fn titles_have_one_line_per_item_and_no_commas() {
        let mut out = Vec::new();
        write_titles(40, 7, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 41);
        assert!(lines[1].starts_with("m01,"));
        assert!(lines[1..].iter().all(|l| l.matches(',').count() == 1));
    }
}
