//! The reader of `POST /v1/recommend` and `POST /v1/complete` bodies under a small cap: any
//! bytes give a request or a 400 problem, never a panic; what is read respects the cap and
//! holds no item twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mixrec::http::dto::{CompleteRequest, RecommendRequest};
use mixrec::http::profile::read;

const CAP: usize = 8;

fuzz_target!(|bytes: &[u8]| {
    match read::<RecommendRequest>(bytes, CAP) {
        Ok(r) => {
            assert!(r.ratings.len() <= CAP && r.exclude.len() <= CAP);
            assert!(r.ratings.windows(2).all(|w| w[0].0 < w[1].0));
        }
        Err(e) => assert_eq!(e.status.as_u16(), 400, "{e:?}"),
    }
    match read::<CompleteRequest>(bytes, CAP) {
        Ok(c) => assert!(c.ratings.len() <= CAP && c.items.is_none_or(|i| i.len() <= CAP)),
        Err(e) => assert_eq!(e.status.as_u16(), 400, "{e:?}"),
    }
});
