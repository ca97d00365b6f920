//! The roofline: how far each training kernel is from this machine's limits, as printed
//! ratios measured in the same run.
//!
//! The limits are measured first, on every thread of the pool and through the kernels' own
//! dispatch ([`mixrec::simd::limits`]): a STREAM-style triad (`a = b + s·c`, 24 bytes and 2
//! flops an element) at the footprint of the kernel it bounds and at 384 MB (memory), a read
//! of a table the size of the one a kernel gathers rows from (each core its own copy), and an
//! unfused multiply-add loop (the operations the kernels run: Rust never fuses them). Then each
//! kernel's median time, the bytes and flops it moves by the model below, and
//! `time / max(memory, flops / peak)`: 1.0 is at the limit, where memory is the streamed bytes
//! over the triad's bandwidth plus the gathered rows over the table read's.
//!
//! The model of one EM iteration with stride s (K padded to 4), n users, d items, r ratings:
//!
//! - E-step: per rating a (u32 item, f32 rating) pair read (8 B) and `sq_j += (x − mu_j)²` for
//!   every lane (3 s flops), plus x² (2); per user the posterior row written (8 s B). Per rating
//!   the item's row of means is gathered (8 s B) from a table of 8 s d bytes; the per-user
//!   posterior (O(K) a user) is not counted.
//! - Item pass: per rating a (u32 user, f32 rating) pair of the transposed copy read (8 B) and
//!   `num_j += p_j x; den_j += p_j` (3 s flops); per item two rows written (16 s B). Per rating
//!   the user's posterior row is gathered (8 s B) from a table of 8 s n bytes.
//!
//! Where the pass walks dense tiles instead (`mixture::dense`: a nearly full matrix at
//! AVX-512, the Netflix subset among them), with t user tiles and t' item tiles of eight:
//!
//! - E-step: per tile row (a tile's eight ratings of one item: 8 B where the ratings are whole
//!   numbers 0–127 and a tile holds bytes, else 32 B) the item's row of means
//!   gathered once (8 s B) and `sq_j += (x − mu_j)²` on all eight lanes (3 s flops a lane: the
//!   unrated lanes are computed and masked out); per user the posterior row written (8 s B).
//! - Item pass: per tile row (one user's ratings of the tile's eight items) the user's
//!   posterior row gathered once and `num_j += p_j x; den_j += p_j` on all eight lanes (3 s
//!   flops a lane); per item two rows written (16 s B).
//!
//! The gathered rows are most of the traffic (96 of 104 bytes a rating at K = 12) and they come
//! from the table's own level of the hierarchy (L2 for the Netflix subset's 115 KB tables), not
//! from registers: a model without them puts the bound at the arithmetic, which the kernels
//! cannot reach while every rating's row is a fresh load. The `vs flops` column keeps the
//! arithmetic-only ratio for comparison.
//!
//! Run with `cargo bench --bench engine -- roofline` (or no filter); skipped for other filters.

use std::time::{Duration, Instant};

use mixrec::data::Ratings;
use mixrec::mixture::{self, FitParams, Init, PassTimes, Stepper};
use mixrec::simd::{self, Level, limits};

/// Samples of each kernel (the median is reported) and of each limit (the best is: STREAM's
/// convention, a limit is what the machine *can* do).
const KERNEL_SAMPLES: usize = 40;
const LIMIT_SAMPLES: usize = 20;
/// The triad's footprint for "memory": far past any cache here.
const MEMORY_BYTES: usize = 384 << 20;

/// Whether the command line asks for the roofline: no filter, or a filter it matches.
pub fn wanted() -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| "roofline".contains(f.as_str()))
}

struct Limits {
    peak_flops: f64,
    memory_bw: f64,
}

/// Best triad bandwidth (bytes/s) over arrays of `bytes` in all.
fn triad_bandwidth(bytes: usize) -> f64 {
    let n = (bytes / 24).max(1024);
    let (b, c) = (vec![1.0f64; n], vec![2.0f64; n]);
    let mut a = vec![0.0f64; n];
    let reps = (MEMORY_BYTES / (24 * n)).clamp(1, 64);
    let best = best_of(LIMIT_SAMPLES, || {
        for _ in 0..reps {
            limits::triad(&mut a, &b, &c, 0.5);
        }
        std::hint::black_box(&a);
    });
    (24 * n * reps) as f64 / best.as_secs_f64()
}

/// Best read bandwidth (bytes/s, all threads) of a table of `bytes`, each thread its own copy.
fn read_bandwidth(bytes: usize) -> f64 {
    let tables = vec![vec![1.0f64; (bytes / 8).max(1024)]; rayon::current_num_threads()];
    let reps = (MEMORY_BYTES / (8 * tables[0].len())).clamp(1, 256);
    let mut read = 0.0;
    let best = best_of(LIMIT_SAMPLES, || {
        let (b, sum) = limits::read(&tables, reps);
        read = b;
        std::hint::black_box(sum);
    });
    read / best.as_secs_f64()
}

fn peak_flops() -> f64 {
    let rounds = 2_000_000;
    let mut flops = 0.0;
    let best = best_of(LIMIT_SAMPLES, || {
        let (f, sum) = limits::multiply_add(rounds);
        flops = f;
        std::hint::black_box(sum);
    });
    flops / best.as_secs_f64()
}

fn best_of(samples: usize, mut f: impl FnMut()) -> Duration {
    f();
    (0..samples)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .expect("samples")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One kernel's row: its time, what it moves and does, and its distance from the bound.
struct Row {
    name: String,
    time: Duration,
    cost: Cost,
}

fn print_row(row: &Row, peak_flops: f64) {
    let secs = row.time.as_secs_f64();
    let (mem, arith) = (row.cost.memory_seconds, row.cost.flops / peak_flops);
    let (bound, by) = if mem >= arith {
        (mem, "bytes")
    } else {
        (arith, "flops")
    };
    println!(
        "  {:<30} {:>9.3} ms {:>8.1} MB {:>7.1} Mflop {:>7.1} GB/s {:>6.1} Gflop/s {:>7.3} ms {:<5} {:>5.2} {:>8.2}",
        row.name,
        secs * 1e3,
        row.cost.bytes / 1e6,
        row.cost.flops / 1e6,
        row.cost.bytes / secs / 1e9,
        row.cost.flops / secs / 1e9,
        bound * 1e3,
        by,
        secs / bound,
        secs / arith,
    );
}

/// What a kernel moves and does by the model in the module docs, and the time its bytes take
/// at the bandwidths measured for them.
#[derive(Clone, Copy)]
struct Cost {
    /// Streamed and gathered bytes.
    bytes: f64,
    /// Streamed bytes over the triad's bandwidth plus gathered rows over the table read's.
    memory_seconds: f64,
    flops: f64,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            bytes: self.bytes + o.bytes,
            memory_seconds: self.memory_seconds + o.memory_seconds,
            flops: self.flops + o.flops,
        }
    }
}

/// Streamed bytes, gathered bytes, the gathered table's size and flops of the E-step and the
/// item pass by the model in the module docs.
fn model(r: &Ratings, k: usize) -> ([f64; 4], [f64; 4]) {
    let s = k.div_ceil(4) * 4;
    let (n, d, nnz) = (r.n_users() as f64, r.n_items() as f64, r.nnz() as f64);
    let s = s as f64;
    let estep = [
        8.0 * nnz + 8.0 * s * n,
        8.0 * s * nnz,
        8.0 * s * d,
        (3.0 * s + 2.0) * nnz,
    ];
    let items = [
        8.0 * nnz + 16.0 * s * d,
        8.0 * s * nnz,
        8.0 * s * n,
        3.0 * s * nnz,
    ];
    (estep, items)
}

/// [`model`] for a pass over dense tiles of `cell` bytes a pair (see the module docs).
fn model_tiled(r: &Ratings, k: usize, cell: usize) -> ([f64; 4], [f64; 4]) {
    let s = (k.div_ceil(4) * 4) as f64;
    let (n, d) = (r.n_users(), r.n_items());
    // User tiles start afresh at every chunk of users; eight a tile is the floor.
    let user_rows = (n.div_ceil(8) * d) as f64;
    let item_rows = (d.div_ceil(8) * n) as f64;
    let row = (8 * cell) as f64;
    let (n, d) = (n as f64, d as f64);
    let estep = [
        row * user_rows + 8.0 * s * n,
        8.0 * s * user_rows,
        8.0 * s * d,
        3.0 * s * 8.0 * user_rows,
    ];
    let items = [
        row * item_rows + 16.0 * s * d,
        8.0 * s * item_rows,
        8.0 * s * n,
        3.0 * s * 8.0 * item_rows,
    ];
    (estep, items)
}

/// A kernel's [`Cost`] from its model, with the streamed bytes at `stream_bw` and the gathered
/// rows at the read bandwidth of their table.
fn cost([stream, rows, table, flops]: [f64; 4], stream_bw: f64) -> (Cost, f64) {
    let table_bw = read_bandwidth(table as usize);
    let cost = Cost {
        bytes: stream + rows,
        memory_seconds: stream / stream_bw + rows / table_bw,
        flops,
    };
    (cost, table_bw)
}

/// The median E-step, item pass and whole iteration of `KERNEL_SAMPLES` EM steps, and how the
/// pass took its item sums.
fn time_steps(
    ratings: &Ratings,
    k: usize,
    rows: &[usize],
) -> (Duration, Duration, Duration, PassTimes) {
    let params = FitParams::seed_preset(k)
        .init(Init::Rows(rows.to_vec()))
        .check(ratings.n_users())
        .expect("valid");
    let start = mixture::rows_as_stored(ratings, rows);
    let mut stepper = Stepper::new(ratings, &params, start);
    stepper.step();
    let (mut e, mut m, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    let how = stepper.pass_times();
    for _ in 0..KERNEL_SAMPLES {
        let t = Instant::now();
        std::hint::black_box(stepper.step());
        whole.push(t.elapsed());
        let p = stepper.pass_times();
        e.push(p.estep);
        m.push(p.item_sums);
    }
    (median(e), median(m), median(whole), how)
}

/// Prints the limits, then each level's rows for each data set.
pub fn run(sets: &[(&str, &Ratings, Vec<usize>)]) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let threads = rayon::current_num_threads();
    println!(
        "\nroofline: {cpu}, {threads} threads, widest level {}",
        simd::detected().name()
    );
    let limits = Limits {
        peak_flops: peak_flops(),
        memory_bw: triad_bandwidth(MEMORY_BYTES),
    };
    println!(
        "  limits (best of {LIMIT_SAMPLES}): multiply-add {:.1} Gflop/s; triad at {} MB {:.1} GB/s",
        limits.peak_flops / 1e9,
        MEMORY_BYTES >> 20,
        limits.memory_bw / 1e9
    );
    for (name, ratings, rows) in sets {
        let k = rows.len();
        let (e_model, i_model) = model(ratings, k);
        // The streamed bytes use the bandwidth at the iteration's own footprint: both copies
        // of the ratings, the posteriors, the means and the sums.
        let footprint = (e_model[0] + e_model[2] + i_model[0] + i_model[2]) as usize;
        let cache_bw = triad_bandwidth(footprint);
        let (e_cost, means_bw) = cost(e_model, cache_bw);
        let (i_cost, posts_bw) = cost(i_model, cache_bw);
        println!(
            "  {name}: {} users × {} items, {} ratings, K = {k}; triad at its {:.1} MB footprint {:.1} GB/s",
            ratings.n_users(),
            ratings.n_items(),
            ratings.nnz(),
            footprint as f64 / 1e6,
            cache_bw / 1e9,
        );
        println!(
            "  rows gathered: means from {:.0} KB at {:.1} GB/s, posteriors from {:.0} KB at {:.1} GB/s (table reads, every core)",
            e_model[2] / 1e3,
            means_bw / 1e9,
            i_model[2] / 1e3,
            posts_bw / 1e9,
        );
        println!(
            "  {:<30} {:>12} {:>11} {:>13} {:>12} {:>14} {:>16} {:>5} {:>8}",
            "kernel (median)",
            "time",
            "moves",
            "does",
            "attained",
            "attained",
            "bound",
            "ratio",
            "vs flops"
        );
        let mut whole_by_level = Vec::new();
        for level in Level::ALL
            .into_iter()
            .rev()
            .filter(|&l| l <= simd::detected())
        {
            simd::cap(level);
            let (e, m, whole, how) = time_steps(ratings, k, rows);
            whole_by_level.push((level, whole));
            let l = level.name();
            let (e_cost, i_cost) = if let Some(cell) = how.tile_bytes {
                let (e_tiles, i_tiles) = model_tiled(ratings, k, cell);
                println!(
                    "  (at {l} this pass walks dense tiles, `mixture::dense`: {:.1} MB of tile rows \
                     and {:.1} MB of rows gathered, against {:.1} and {:.1} MB walking rows)",
                    (e_tiles[0] + i_tiles[0]) / 1e6,
                    (e_tiles[1] + i_tiles[1]) / 1e6,
                    (e_model[0] + i_model[0]) / 1e6,
                    (e_model[1] + i_model[1]) / 1e6,
                );
                (cost(e_tiles, cache_bw).0, cost(i_tiles, cache_bw).0)
            } else {
                (e_cost, i_cost)
            };
            if how.scattered && level == simd::detected() {
                println!(
                    "  (this pass scatters its item sums from the E-step, `mixture::pass::scatters`: \
                     its e-step row holds them and its item-pass row only adds up the slots; the \
                     bounds are the walking pass's model, so read the iteration's row)"
                );
            }
            for row in [
                Row {
                    name: format!("em iteration [{l}]"),
                    time: whole,
                    cost: e_cost + i_cost,
                },
                Row {
                    name: format!("  e-step [{l}]"),
                    time: e,
                    cost: e_cost,
                },
                Row {
                    name: format!("  item pass [{l}]"),
                    time: m,
                    cost: i_cost,
                },
            ] {
                print_row(&row, limits.peak_flops);
            }
        }
        simd::cap(Level::Avx512);
        let (_, widest) = whole_by_level[0];
        let ratios: Vec<String> = whole_by_level
            .iter()
            .map(|(l, t)| format!("{} {:.2}", l.name(), t.as_secs_f64() / widest.as_secs_f64()))
            .collect();
        println!(
            "  iteration time relative to the widest level: {}",
            ratios.join(", ")
        );
    }
}
