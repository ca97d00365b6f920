//! The roofline: how far each training kernel is from this machine's limits, as printed
//! ratios measured in the same run.
//!
//! The limits are measured first, on every thread of the pool and through the kernels' own
//! dispatch ([`mixrec::simd::limits`]): a STREAM-style triad (`a = b + s·c`, 24 bytes and 2
//! flops an element) at the footprint of the kernel it bounds and at 384 MB (memory), and an
//! unfused multiply-add loop (the operations the kernels run: Rust never fuses them). Then each
//! kernel's median time, the bytes and flops it moves by the model below, and
//! `time / max(bytes / bandwidth, flops / peak)`: 1.0 is at the limit.
//!
//! The model of one EM iteration with stride s (K padded to 4), n users, d items, r ratings:
//!
//! - E-step: per rating a (u32 item, f32 rating) pair read (8 B) and `sq_j += (x − mu_j)²` for
//!   every lane (3 s flops), plus x² (2); per user the posterior row written (8 s B). The
//!   means (8 s d B) are read from cache; the per-user log-sum-exp (O(K) a user) is not counted.
//! - Item pass: per rating a (u32 user, f32 rating) pair of the transposed copy read (8 B) and
//!   `num_j += p_j x; den_j += p_j` (3 s flops); per item two rows written (16 s B). Posterior
//!   rows are gathered from a table of 8 s n bytes.
//!
//! Run with `cargo bench --bench engine -- roofline` (or no filter); skipped for other filters.

use std::time::{Duration, Instant};

use mixrec::data::Ratings;
use mixrec::mixture::{self, FitParams, Init, Stepper};
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

/// One kernel's row: its time, what it moves, and its distance from the bound.
struct Row {
    name: String,
    time: Duration,
    bytes: f64,
    flops: f64,
}

fn print_row(row: &Row, limits: &Limits, cache_bw: f64) {
    let secs = row.time.as_secs_f64();
    let (mem, arith) = (row.bytes / cache_bw, row.flops / limits.peak_flops);
    let (bound, by) = if mem >= arith {
        (mem, "bytes")
    } else {
        (arith, "flops")
    };
    println!(
        "  {:<34} {:>9.3} ms {:>8.1} MB {:>8.1} Mflop {:>7.1} GB/s {:>6.1} Gflop/s {:>7.3} ms {:<5} {:>5.2}",
        row.name,
        secs * 1e3,
        row.bytes / 1e6,
        row.flops / 1e6,
        row.bytes / secs / 1e9,
        row.flops / secs / 1e9,
        bound * 1e3,
        by,
        secs / bound,
    );
}

/// Bytes and flops of the E-step and the item pass by the model in the module docs.
fn model(r: &Ratings, k: usize) -> ((f64, f64), (f64, f64)) {
    let s = k.div_ceil(4) * 4;
    let (n, d, nnz) = (r.n_users() as f64, r.n_items() as f64, r.nnz() as f64);
    let s = s as f64;
    let estep = (8.0 * nnz + 8.0 * s * n + 8.0 * s * d, (3.0 * s + 2.0) * nnz);
    let items = (8.0 * nnz + 16.0 * s * d + 8.0 * s * n, 3.0 * s * nnz);
    (estep, items)
}

/// The median E-step, item pass and whole iteration of `KERNEL_SAMPLES` EM steps.
fn time_steps(ratings: &Ratings, k: usize, rows: &[usize]) -> (Duration, Duration, Duration) {
    let params = FitParams::seed_preset(k)
        .init(Init::Rows(rows.to_vec()))
        .check(ratings.n_users())
        .expect("valid");
    let start = mixture::rows_as_stored(ratings, rows);
    let mut stepper = Stepper::new(ratings, &params, start);
    stepper.step();
    let (mut e, mut m, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..KERNEL_SAMPLES {
        let t = Instant::now();
        std::hint::black_box(stepper.step());
        whole.push(t.elapsed());
        let p = stepper.pass_times();
        e.push(p.estep);
        m.push(p.item_sums);
    }
    (median(e), median(m), median(whole))
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
        let ((eb, ef), (ib, iflop)) = model(ratings, k);
        // The bound uses the bandwidth at the iteration's own footprint: both copies of the
        // ratings, the posteriors, the means and the sums.
        let footprint = (eb + ib) as usize;
        let cache_bw = triad_bandwidth(footprint);
        println!(
            "  {name}: {} users × {} items, {} ratings, K = {k}; triad at its {:.1} MB footprint {:.1} GB/s",
            ratings.n_users(),
            ratings.n_items(),
            ratings.nnz(),
            footprint as f64 / 1e6,
            cache_bw / 1e9,
        );
        println!(
            "  {:<34} {:>12} {:>11} {:>14} {:>12} {:>14} {:>16} {:>5}",
            "kernel (median)", "time", "moves", "does", "attained", "attained", "bound", "ratio"
        );
        let mut whole_by_level = Vec::new();
        for level in Level::ALL
            .into_iter()
            .rev()
            .filter(|&l| l <= simd::detected())
        {
            simd::cap(level);
            let (e, m, whole) = time_steps(ratings, k, rows);
            whole_by_level.push((level, whole));
            let l = level.name();
            for row in [
                Row {
                    name: format!("em iteration [{l}]"),
                    time: whole,
                    bytes: eb + ib,
                    flops: ef + iflop,
                },
                Row {
                    name: format!("  e-step [{l}]"),
                    time: e,
                    bytes: eb,
                    flops: ef,
                },
                Row {
                    name: format!("  item pass [{l}]"),
                    time: m,
                    bytes: ib,
                    flops: iflop,
                },
            ] {
                print_row(&row, &limits, cache_bw);
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
