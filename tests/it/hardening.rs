//! The real binary under hostile or unlucky traffic, over real sockets: more concurrent
//! requests than the limit. Every server trains the embedded demo catalogue (no data sets
//! needed).

use std::io::Write;

use crate::process::{Server, get, get_with_token, post_in_flight, read_reply};

const TOKEN: &str = "hardening-admin-token-7c1e";
const RECOMMEND: &str = r#"{"ratings": {"m001": 5, "m017": 2}, "n": 3}"#;
const COMPLETE: &str = r#"{"ratings": {"m001": 5}, "items": ["m003"]}"#;
/// Long enough never to fire during a test: the tests end waits themselves.
const NEVER_MS: &str = "600000";

/// Starts the binary on the demo catalogue with a quick training and `env` over the defaults.
fn demo(env: &[(&str, &str)]) -> Server {
    let quick = [
        ("MIXREC__TRAINING__K", "3"),
        ("MIXREC__TRAINING__N_INIT", "1"),
        ("MIXREC_ADMIN_TOKEN", TOKEN),
    ];
    Server::start(&[], &[&quick[..], env].concat())
}

#[test]
fn beyond_the_limit_requests_are_shed_at_once_on_every_connection_and_route() {
    let server = demo(&[
        ("MIXREC__SERVER__MAX_CONCURRENT_REQUESTS", "2"),
        ("MIXREC__SERVER__REQUEST_TIMEOUT_MS", NEVER_MS),
    ]);
    server.wait_ready();

    // Two requests in flight, on two connections and two routes: both permits are held.
    let mut recommend = post_in_flight(&server.addr, "/v1/recommend", RECOMMEND);
    let mut complete = post_in_flight(&server.addr, "/v1/complete", COMPLETE);

    // A third connection and route, and an admin route: answered 503 at once.
    let shed = get(&server.addr, "/v1/items");
    shed.assert_problem(503, "overloaded");
    assert_eq!(shed.header("retry-after"), Some("1"));
    get_with_token(&server.addr, "/admin/jobs/1", TOKEN).assert_problem(503, "overloaded");
    // Probes and metrics are never shed.
    assert_eq!(get(&server.addr, "/healthz").status, 200);
    assert_eq!(get(&server.addr, "/readyz").status, 200);
    let metrics = String::from_utf8(get(&server.addr, "/metrics").body).unwrap();
    assert!(
        metrics.lines().any(|l| l == "mixrec_http_shed_total 2"),
        "{metrics}"
    );

    // The held requests finish normally and give their permits back.
    recommend.write_all(RECOMMEND.as_bytes()).unwrap();
    let r = read_reply(&mut recommend);
    assert_eq!(
        (r.status, r.json()["items"].as_array().unwrap().len()),
        (200, 3)
    );
    complete.write_all(COMPLETE.as_bytes()).unwrap();
    assert_eq!(read_reply(&mut complete).status, 200);
    assert_eq!(get(&server.addr, "/v1/items").status, 200);
}
