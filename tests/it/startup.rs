//! Start-up that fails says so: with no saved model and a first training that fails, `mixrec
//! serve` exits 1 with the reason on standard error; and a readiness probe answered 503 while
//! the first model trains is logged at debug, not as an error.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{Server, get};

/// Far longer than a start-up that fails takes (milliseconds): only there so a process that
/// never exits fails the test instead of hanging it.
const HANG: Duration = Duration::from_secs(60);

#[test]
fn serve_with_a_missing_snapshot_exits_1_naming_it() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mixrec"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "/no/such/file",
        ])
        .env("MIXREC__MODELS__DIR", "")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + HANG;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap(); // by pid
            panic!("still running after {HANG:?}: a live process that is never ready");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("mixrec: no model to serve") && last.contains("/no/such/file"),
        "{stderr}"
    );
}

#[test]
fn a_readiness_probe_before_the_first_model_is_logged_at_debug() {
    // A first training that never ends on its own (no tolerance, no cap worth the name).
    let server = Server::start(
        &[],
        &[
            ("MIXREC__TRAINING__TOL", "0"),
            ("MIXREC__TRAINING__MAX_ITER", "100000000"),
            ("MIXREC__TRAINING__HOLDOUT", "0"),
            ("RUST_LOG", "info,mixrec::http=debug"),
        ],
    );
    get(&server.addr, "/readyz").assert_problem(503, "not-ready");
    get(&server.addr, "/v1/model").assert_problem(503, "not-ready");
    server.signal("INT");
    let (status, log) = server.exit();
    assert_eq!(status.code(), Some(0), "{log}");
    let answers: Vec<&str> = log.lines().filter(|l| l.contains("status=503")).collect();
    assert_eq!(answers.len(), 2, "{log}");
    assert!(answers.iter().all(|l| l.contains("DEBUG")), "{log}");
    assert!(!log.contains(" ERROR "), "{log}");
}
