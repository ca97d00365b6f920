//! The snapshot reader as `--format matrix`: any bytes load into a snapshot that holds together
//! or fail with a `DataError`; a panic or an abort is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mixrec::data::{Format, LoadOptions, load_bytes};

fuzz_target!(|bytes: &[u8]| {
    let options = LoadOptions {
        format: Format::Matrix,
        scale: None,
    };
    if let Ok(s) = load_bytes(bytes, options) {
        let r = &s.ratings;
        assert!(r.nnz() > 0);
        assert_eq!((s.users.len(), s.items.len()), (r.n_users(), r.n_items()));
        for (_, l, x) in r.iter() {
            assert!((l as usize) < r.n_items() && s.scale.contains(f64::from(x)));
        }
    }
});
