//! The snapshot reader as `--format binary` (see `common.rs` for what is checked). Each input
//! is also tried with its last four bytes replaced by the right CRC-32, so mutations get past
//! the checksum to the header, id maps and the invariant checks behind it.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use mixrec::data::Format;

fuzz_target!(|bytes: &[u8]| {
    common::load_and_check(bytes, Format::Binary);
    if let Some(body) = bytes.len().checked_sub(4).map(|n| &bytes[..n]) {
        let sealed = [body, &crc32fast::hash(body).to_le_bytes()].concat();
        common::load_and_check(&sealed, Format::Binary);
    }
});
