//! Mid-sized allocations on transparent huge pages: [`HugePages`], the binary's global
//! allocator, gives every allocation of [`LARGE`] bytes up to [`HUGE_UNTIL`] its own anonymous
//! mapping, a whole number of 2 MiB pages long and advised `MADV_HUGEPAGE`; the rest goes to
//! the system allocator as before.
//!
//! Why: a fresh 4 kB page costs a fault when it is first touched, about 2 µs on the VMs this
//! service was measured on. A fit of the seed's Netflix subset touches some 21 MB that way
//! (the snapshot's text, the parsed ratings, their transpose): about 6,100 faults, 15 ms of its
//! 125 ms of CPU. On huge pages it takes 570, and the whole fit ran 1.13× faster (20
//! alternated pairs of processes; 1.12× with 4 s idle before each run). numpy, which the seed
//! fit is compared with, puts its large arrays on huge pages too.
//!
//! Why not the largest: on the same VM a huge page the host has not backed lately (memory the
//! guest handed back, or never touched) took about 4 ms to fault in, four times the cost of
//! its 512 small pages, against 0.2 ms for one freed moments before (a scratch program touching
//! fresh mappings, Python's `mmap`). A few huge pages a process takes come warm, many do not:
//! with every block of 2 MiB or more on huge pages the 100 M set's binary load went from
//! 0.45–0.49 s to 1.05–1.28 s, and with blocks up to 64 MiB the 10 M set's (two 40 MB arrays)
//! from 0.048–0.077 s to 0.125–0.147 s (`scripts/scale-bench.sh`, alternated). Blocks of
//! [`HUGE_UNTIL`] and more stay on small pages: both loads as before, and the seed fit's
//! arrays (3–6 MB) on huge pages.
//!
//! A mapping's length is rounded up to whole huge pages, which is also what lets the kernel
//! place it on a huge-page boundary; untouched tail pages cost address space, not memory.
//! Growing a block within the band moves its pages (`mremap`), it never copies them. Where
//! huge pages are off (`/sys/kernel/mm/transparent_hugepage/enabled` is `never`, or the
//! process runs under `prctl(PR_SET_THP_DISABLE)`), the advice is ignored and the mappings get
//! small pages, as any allocation would.
//!
//! The crate's second kind of `unsafe` (the first: the kernels' dispatch, `simd`): an
//! allocator is `unsafe` by its trait. Off Linux everything goes to the system allocator.
//!
//! No model, web or async types here.

// The whole module is the allocator: every `unsafe` in it is a system call on a mapping of its
// own or a call into the system allocator, each with its reason beside it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations from this size on get their own huge-page mapping: one huge page.
pub const LARGE: usize = 1 << 21;

/// Allocations of this size and more go to the system allocator (see the module).
pub const HUGE_UNTIL: usize = 16 << 20;

/// The size of a transparent huge page on x86-64 and most of aarch64.
const HUGE_PAGE: usize = 1 << 21;

/// Huge-page mappings for mid-sized allocations, the system allocator for the rest (see the
/// module's documentation). `main.rs` installs it:
/// `#[global_allocator] static ALLOCATOR: HugePages = HugePages;`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HugePages;

/// Whether `layout` gets its own mapping: in the band, and aligned no more strictly than a
/// page (which a mapping's start always is).
fn is_large(layout: &Layout) -> bool {
    cfg!(target_os = "linux")
        && (LARGE..HUGE_UNTIL).contains(&layout.size())
        && layout.align() <= 4096
}

/// The mapping's length for an allocation of `size` bytes.
fn mapped(size: usize) -> usize {
    size.next_multiple_of(HUGE_PAGE)
}

// SAFETY (the trait's contract): every pointer returned is null or valid for the layout asked
// (a mapping is page-aligned, `is_large` admits no stricter alignment, and it is at least
// `size` long); `dealloc` and `realloc` receive only pointers this allocator returned with the
// same layout, so `is_large` of that layout tells which of the two made it.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            map(layout.size())
        } else {
            // SAFETY: the caller's layout, as the trait asks.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            // A fresh anonymous mapping reads as zeros.
            map(layout.size())
        } else {
            // SAFETY: the caller's layout, as the trait asks.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(&layout) {
            // SAFETY: `ptr` is a mapping `map` made for this size.
            unsafe { unmap(ptr, layout.size()) }
        } else {
            // SAFETY: `ptr` came from `System` with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the trait guarantees `new_size`, rounded up to the alignment, fits an isize.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (is_large(&layout), is_large(&new)) {
            // SAFETY: `ptr` came from `System` with `layout`; the caller's new size.
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            // SAFETY: `ptr` is a mapping `map` made for `layout.size()`.
            (true, true) => unsafe { remap(ptr, layout.size(), new_size) },
            _ => {
                // Across the line: a new block of the other kind, the bytes both hold copied.
                // SAFETY: a non-zero layout (one side is in the band, the other non-zero as
                // the trait requires).
                let moved = unsafe { self.alloc(new) };
                if !moved.is_null() {
                    // SAFETY: both blocks hold at least the smaller size and do not overlap
                    // (`moved` is fresh); `ptr` is freed once, with its own layout.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                moved
            }
        }
    }
}

/// A fresh mapping for `size` bytes (null when the kernel refuses one), advised to use huge
/// pages.
#[cfg(target_os = "linux")]
fn map(size: usize) -> *mut u8 {
    use rustix::mm::{Advice, MapFlags, ProtFlags, madvise, mmap_anonymous};
    let len = mapped(size);
    // SAFETY: a new private anonymous mapping at an address the kernel picks: it touches no
    // memory the program already holds.
    let Ok(at) = (unsafe {
        mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
    }) else {
        return std::ptr::null_mut();
    };
    // SAFETY: advice on the mapping just made, which changes no byte of it. Refused (huge
    // pages off), the mapping keeps small pages.
    let _ = unsafe { madvise(at, len, Advice::LinuxHugepage) };
    at.cast()
}

/// The mapping at `ptr` made for `size` bytes, unmapped.
///
/// # Safety
/// `ptr` came from [`map`] (or [`remap`]) with `size`, and is not used after.
#[cfg(target_os = "linux")]
unsafe fn unmap(ptr: *mut u8, size: usize) {
    // SAFETY: the caller's mapping, whole. A failure (impossible for a whole mapping of ours)
    // would only leak it.
    let _ = unsafe { rustix::mm::munmap(ptr.cast(), mapped(size)) };
}

/// The mapping at `ptr` (made for `old` bytes) grown or shrunk to hold `new` bytes, moved by
/// the kernel where it cannot grow in place: its pages change address, not contents. Null,
/// with the old mapping intact, when the kernel refuses.
///
/// # Safety
/// `ptr` came from [`map`] (or [`remap`]) with `old`; on success it is not used after.
#[cfg(target_os = "linux")]
unsafe fn remap(ptr: *mut u8, old: usize, new: usize) -> *mut u8 {
    use rustix::mm::{MremapFlags, mremap};
    if mapped(old) == mapped(new) {
        return ptr;
    }
    // SAFETY: the caller's mapping, whole; the kernel keeps its advice with it.
    match unsafe { mremap(ptr.cast(), mapped(old), mapped(new), MremapFlags::MAYMOVE) } {
        Ok(at) => at.cast(),
        Err(_) => std::ptr::null_mut(),
    }
}

#[cfg(not(target_os = "linux"))]
fn map(_size: usize) -> *mut u8 {
    unreachable!("no large path off Linux")
}

#[cfg(not(target_os = "linux"))]
unsafe fn unmap(_ptr: *mut u8, _size: usize) {
    unreachable!("no large path off Linux")
}

#[cfg(not(target_os = "linux"))]
unsafe fn remap(_ptr: *mut u8, _old: usize, _new: usize) -> *mut u8 {
    unreachable!("no large path off Linux")
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The `VmFlags` line of the mapping that holds `at`, from `/proc/self/smaps`.
    fn vm_flags(at: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("procfs");
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((a, b)) = range.split_once('-')
                && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                inside = (a..b).contains(&at);
                continue;
            }
            if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return flags.trim().to_owned();
            }
        }
        panic!("no mapping holds {at:#x}");
    }

    #[test]
    fn large_blocks_are_advised_mappings_that_keep_their_bytes_across_every_resize() {
        let a = HugePages;
        let small = Layout::from_size_align(LARGE - 8, 8).unwrap();
        let large = Layout::from_size_align(LARGE + 12_345, 8).unwrap();
        // SAFETY: each block is written within its size and freed once with its layout.
        unsafe {
            let zeroed = a.alloc_zeroed(large);
            assert!(!zeroed.is_null());
            assert!(
                std::slice::from_raw_parts(zeroed, large.size())
                    .iter()
                    .all(|&b| b == 0)
            );
            // Advised, where the kernel has huge pages at all (the flag is set even when
            // they are switched off).
            let thp = std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists();
            let flags = vm_flags(zeroed as usize);
            assert!(!thp || flags.split(' ').any(|f| f == "hg"), "{flags}");
            a.dealloc(zeroed, large);

            // small → large → larger → past the band → large → small: the bytes written
            // first survive each move.
            let p = a.alloc(small);
            let fill = |p: *mut u8, n: usize| {
                (0..n).for_each(|i| *p.add(i) = (i % 251) as u8);
            };
            let check = |p: *const u8, n: usize| (0..n).all(|i| *p.add(i) == (i % 251) as u8);
            fill(p, small.size());
            let p = a.realloc(p, small, large.size());
            assert!(check(p, small.size()));
            fill(p, large.size());
            let bigger = 5 * LARGE + 7;
            let p = a.realloc(p, large, bigger);
            assert!(check(p, large.size()));
            fill(p, bigger);
            let flags = vm_flags(p as usize + bigger - 1);
            assert!(!thp || flags.split(' ').any(|f| f == "hg"), "{flags}");
            let past = HUGE_UNTIL + 3;
            let p = a.realloc(p, Layout::from_size_align(bigger, 8).unwrap(), past);
            assert!(check(p, bigger));
            let p = a.realloc(p, Layout::from_size_align(past, 8).unwrap(), large.size());
            assert!(check(p, large.size()));
            let p = a.realloc(p, large, 100);
            assert!(check(p, 100));
            a.dealloc(p, Layout::from_size_align(100, 8).unwrap());

            // A stricter alignment than a page stays with the system allocator, and holds.
            let odd = Layout::from_size_align(LARGE, 1 << 16).unwrap();
            let q = a.alloc(odd);
            assert_eq!(q as usize % (1 << 16), 0);
            a.dealloc(q, odd);
        }
    }
}
