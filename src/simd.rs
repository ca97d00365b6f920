//! Run-time dispatch of numeric kernels to the widest vector unit the CPU has: [`dispatched!`]
//! compiles a kernel three times, for AVX-512 (F + VL), for AVX2 + FMA and as built (portable
//! x86-64: SSE2), and calls the widest build the CPU can run after a check.
//!
//! Every build compiles the same IEEE operations in the same order (Rust never fuses or
//! reorders float arithmetic, with or without the `fma` feature): a wider unit runs more of the
//! independent lanes (the K types' sums) at once, never a different sum. So the bits do not
//! depend on the CPU or on the level chosen; unit tests check it per kernel and level.
//!
//! [`cap`] limits the level for the whole process (the benchmarks time each level in one run;
//! `MIXREC_SIMD=avx2` or `portable` does the same for a user who wants to compare). This is
//! the crate's one kind of `unsafe`.
//!
//! No model, web or async types here.

pub(crate) mod math;

use std::sync::atomic::{AtomicU8, Ordering};

/// A build of the kernels, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// As compiled for the target (x86-64: SSE2).
    Portable = 0,
    /// AVX2 and FMA (256-bit).
    Avx2 = 1,
    /// AVX-512 F and VL (512-bit), with AVX2 and FMA.
    Avx512 = 2,
}

impl Level {
    /// Every level, narrowest first.
    pub const ALL: [Level; 3] = [Level::Portable, Level::Avx2, Level::Avx512];

    /// `portable`, `avx2` or `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => Level::Portable,
            1 => Level::Avx2,
            _ => Level::Avx512,
        }
    }
}

/// The widest level this CPU runs.
pub fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        if avx2
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return Level::Avx512;
        }
        if avx2 {
            return Level::Avx2;
        }
    }
    Level::Portable
}

/// Unset: read `MIXREC_SIMD` on first use.
const UNSET: u8 = u8::MAX;
static CAP: AtomicU8 = AtomicU8::new(UNSET);

/// The level the kernels run at: [`detected`], at most the [`cap`] (or `MIXREC_SIMD`).
pub fn level() -> Level {
    let mut cap = CAP.load(Ordering::Relaxed);
    if cap == UNSET {
        cap = match std::env::var("MIXREC_SIMD").as_deref() {
            Ok("portable") => Level::Portable as u8,
            Ok("avx2") => Level::Avx2 as u8,
            _ => Level::Avx512 as u8,
        };
        CAP.store(cap, Ordering::Relaxed);
    }
    detected().min(Level::from_u8(cap))
}

/// Runs the kernels at most at `level` from now on, in the whole process (the benchmarks
/// compare levels in one run). Results are the same bits at every level; only time changes.
pub fn cap(level: Level) {
    CAP.store(level as u8, Ordering::Relaxed);
}

/// Defines `$name`, which runs `$generic` compiled for AVX-512 (`$avx512`), for AVX2 and FMA
/// (`$avx2`) or as built, the widest [`level`] allows. Every build compiles the same IEEE
/// operations in the same order, so the bits do not depend on the level; unit tests check it.
/// (AVX2 took 28 % off a mixture EM iteration on an AMD EPYC; AVX-512's share is measured by
/// `cargo bench --bench engine -- roofline`.)
macro_rules! dispatched {
    ($(#[$m:meta])* fn $name:ident, $avx2:ident, $avx512:ident => $generic:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx2($($arg: $ty),*) $(-> $ret)? {
            $generic($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        fn $avx512($($arg: $ty),*) $(-> $ret)? {
            $generic($($arg),*)
        }

        $(#[$m])*
        #[allow(unsafe_code)]
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            match $crate::simd::level() {
                // SAFETY: `level` is at most `detected`, which checked the CPU has AVX-512 F
                // and VL, AVX2 and FMA: all that `$avx512` requires.
                $crate::simd::Level::Avx512 => return unsafe { $avx512($($arg),*) },
                // SAFETY: as above, AVX2 and FMA: all that `$avx2` requires.
                $crate::simd::Level::Avx2 => return unsafe { $avx2($($arg),*) },
                $crate::simd::Level::Portable => {}
            }
            $generic($($arg),*)
        }
    };
}

pub(crate) use dispatched;

/// The machine's own limits, for the roofline of `benches/engine.rs`: a STREAM-style triad
/// (bandwidth at a given footprint), a read of a table (the rows a kernel gathers) and a
/// multiply-add loop (arithmetic peak), all run at [`level`] through the same dispatch as the
/// kernels and on every thread of rayon's pool.
pub mod limits {
    use rayon::prelude::*;

    /// Independent accumulators of the peak loop: 64 lanes are 8 registers at 512 bits, 16 at
    /// 256 (all of AVX2's), enough chains to cover a multiply and an add of 3–4 cycles each at
    /// two of each per cycle.
    const LANES: usize = 64;

    /// `a[i] = b[i] + s · c[i]` on every thread, each on its own contiguous share: 2 flops and
    /// 24 bytes (STREAM's count: two reads, one write) per element.
    pub fn triad(a: &mut [f64], b: &[f64], c: &[f64], s: f64) {
        let share = a.len().div_ceil(rayon::current_num_threads()).max(1);
        a.par_chunks_mut(share)
            .zip(b.par_chunks(share))
            .zip(c.par_chunks(share))
            .for_each(|((a, b), c)| triad_share(a, b, c, s));
    }

    super::dispatched! {
        fn triad_share, triad_avx2, triad_avx512 => triad_generic(a: &mut [f64], b: &[f64], c: &[f64], s: f64)
    }

    #[inline(always)]
    fn triad_generic(a: &mut [f64], b: &[f64], c: &[f64], s: f64) {
        for ((a, &b), &c) in a.iter_mut().zip(b).zip(c) {
            *a = b + s * c;
        }
    }

    /// Sums each of `tables` `reps` times, each table on its own thread (one a core: a
    /// kernel's table is read from every core's own cache); returns the bytes read and a sum
    /// to keep the work alive. The read side of a kernel that gathers rows from a table of
    /// that size in ascending order, which is as close to a streaming read as a gather gets.
    pub fn read(tables: &[Vec<f64>], reps: usize) -> (f64, f64) {
        let sum = tables
            .par_iter()
            .map(|t| (0..reps).map(|_| read_share(t)).sum::<f64>())
            .sum();
        let bytes = tables.iter().map(|t| t.len() * 8).sum::<usize>() * reps;
        (bytes as f64, sum)
    }

    super::dispatched! {
        fn read_share, read_avx2, read_avx512 => read_generic(a: &[f64]) -> f64
    }

    #[inline(always)]
    fn read_generic(a: &[f64]) -> f64 {
        let mut acc = [0.0f64; LANES];
        let (chunks, tail) = a.as_chunks::<LANES>();
        for c in chunks {
            for (s, &x) in acc.iter_mut().zip(c) {
                *s += x;
            }
        }
        acc.iter().sum::<f64>() + tail.iter().sum::<f64>()
    }

    /// `rounds` of `acc = acc · m + x` (a multiply and an add, unfused, as the kernels run
    /// them) on [`LANES`] accumulators on every thread; returns the flops done and a sum to
    /// keep the work alive.
    pub fn multiply_add(rounds: usize) -> (f64, f64) {
        let threads = rayon::current_num_threads();
        let sum = (0..threads)
            .into_par_iter()
            .map(|t| peak_share(rounds, 1.0 + t as f64 * 1e-9))
            .sum();
        ((rounds * LANES * 2 * threads) as f64, sum)
    }

    super::dispatched! {
        fn peak_share, peak_avx2, peak_avx512 => peak_generic(rounds: usize, seed: f64) -> f64
    }

    #[inline(always)]
    fn peak_generic(rounds: usize, seed: f64) -> f64 {
        let mut acc = [0.0f64; LANES];
        for (i, a) in acc.iter_mut().enumerate() {
            *a = seed + i as f64 * 1e-3;
        }
        // m < 1 and x small keep the values finite and normal for any number of rounds.
        let (m, x) = (std::hint::black_box(0.999_999), std::hint::black_box(1e-6));
        for _ in 0..rounds {
            for a in acc.iter_mut() {
                *a = *a * m + x;
            }
        }
        acc.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_never_exceeds_the_cpu_and_names_round_trip() {
        assert!(level() <= detected());
        let names: Vec<_> = Level::ALL.iter().map(|l| l.name()).collect();
        assert_eq!(names, ["portable", "avx2", "avx512"]);
        assert!(Level::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_triad_and_the_peak_loop_compute_what_they_count() {
        let (b, c) = (vec![1.0; 1000], vec![2.0; 1000]);
        let mut a = vec![0.0; 1000];
        limits::triad(&mut a, &b, &c, 0.5);
        assert!(a.iter().all(|&x| x == 2.0));
        let tables = vec![vec![0.5; 1000]; 2];
        assert_eq!(limits::read(&tables, 3), (48_000.0, 3000.0));
        let (flops, sum) = limits::multiply_add(10);
        assert_eq!(flops, (10 * 64 * 2 * rayon::current_num_threads()) as f64);
        assert!(sum.is_finite() && sum > 0.0);
    }
}
