//! The snapshot reader as `--format triples` (see `common.rs` for what is checked).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use mixrec::data::Format;

fuzz_target!(|bytes: &[u8]| common::load_and_check(bytes, Format::Triples));
