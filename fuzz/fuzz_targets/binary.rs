//! The snapshot reader as `--format binary`: any bytes load into a snapshot that holds together
//! or fail with a `DataError`; a panic or an abort is a finding. Each input is also tried with
//! its last four bytes replaced by the right CRC-32, so mutations get past the checksum to the
//! header, id maps and the invariant checks behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mixrec::data::{Format, LoadOptions, load_bytes};

fn check(bytes: &[u8]) {
    let options = LoadOptions {
        format: Format::Binary,
        scale: None,
    };
    if let Ok(s) = load_bytes(bytes, options) {
        let r = &s.ratings;
        assert!(r.nnz() > 0, "a binary snapshot without ratings loaded");
        assert_eq!((s.users.len(), s.items.len()), (r.n_users(), r.n_items()));
        for (_, l, x) in r.iter() {
            assert!((l as usize) < r.n_items() && s.scale.contains(f64::from(x)));
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    check(bytes);
    if let Some(body) = bytes.len().checked_sub(4).map(|n| &bytes[..n]) {
        let sealed = [body, &crc32fast::hash(body).to_le_bytes()].concat();
        check(&sealed);
    }
});
