//! Tells the tests whether the seed's data sets are here: with them, `cfg(mixrec_shared_data)`
//! is set and the tests that read them run; without them those tests are reported as ignored
//! (`needs ../shared/data`) instead of passing without checking anything. CI sets
//! `MIXREC_REQUIRE_SHARED_DATA=1`, which sets the flag whatever is on disk, so a missing data
//! set fails the tests rather than skipping them. Reads only the file system; fetches nothing.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(mixrec_shared_data)");
    println!("cargo::rerun-if-env-changed=MIXREC_SHARED_DATA");
    println!("cargo::rerun-if-env-changed=MIXREC_REQUIRE_SHARED_DATA");
    println!("cargo::rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dir = std::env::var_os("MIXREC_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../shared/data"));
    // Watch the nearest folder that exists, so data that arrives later is noticed.
    if let Some(watched) = dir.ancestors().find(|p| p.is_dir()) {
        println!("cargo::rerun-if-changed={}", watched.display());
    }
    let required = std::env::var("MIXREC_REQUIRE_SHARED_DATA").is_ok_and(|v| v == "1");
    if required || dir.join("netflix_incomplete.txt").is_file() {
        println!("cargo::rustc-cfg=mixrec_shared_data");
    }
}
