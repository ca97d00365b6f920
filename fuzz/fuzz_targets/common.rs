//! What every snapshot target checks: any bytes load into a snapshot that holds together or
//! fail with a `DataError`; a panic or an abort is a finding.

use mixrec::data::{Format, LoadOptions, load_bytes};

/// Loads `bytes` as `format` and checks what loaded.
pub fn load_and_check(bytes: &[u8], format: Format) {
    let options = LoadOptions {
        format,
        scale: None,
        ..Default::default()
    };
    if let Ok(s) = load_bytes(bytes, options) {
        let r = &s.ratings;
        assert!(r.nnz() > 0, "a snapshot without ratings loaded");
        assert_eq!((s.users.len(), s.items.len()), (r.n_users(), r.n_items()));
        for (_, l, x) in r.iter() {
            assert!((l as usize) < r.n_items() && s.scale.contains(f64::from(x)));
        }
    }
}
