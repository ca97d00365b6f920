//! Bounds that hold whatever a job is doing, on the real binary: after SIGTERM the process ends
//! within `shutdown_delay_ms + drain_timeout_ms` plus a second, serving until then, while a
//! retrain reads a snapshot that never ends (a FIFO fed forever) or trains on 2 M ratings, and
//! no partial model file is left behind.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::process::{Reply, Server, connect, get, get_with_token, poll, read_reply};

const TOKEN: &str = "bounded-admin-token-41d9";
const DELAY_MS: u64 = 300;
const DRAIN_MS: u64 = 300;
/// What the issue allows past the delay and the drain.
const SLACK: Duration = Duration::from_secs(1);

/// The bound on the time from SIGTERM to exit.
fn bound() -> Duration {
    Duration::from_millis(DELAY_MS + DRAIN_MS) + SLACK
}

fn env(extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("MIXREC__TRAINING__K", "3".to_owned()),
        ("MIXREC__TRAINING__N_INIT", "1".to_owned()),
        ("MIXREC__TRAINING__HOLDOUT", "0".to_owned()),
        ("MIXREC__SERVER__SHUTDOWN_DELAY_MS", DELAY_MS.to_string()),
        ("MIXREC__SERVER__DRAIN_TIMEOUT_MS", DRAIN_MS.to_string()),
        ("MIXREC_ADMIN_TOKEN", TOKEN.to_owned()),
    ];
    env.extend_from_slice(extra);
    env
}

fn start(args: &[&str], env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(args, &env)
}

/// `POST /admin/retrain` with `body`; returns the job id of the 202.
fn retrain(addr: &str, body: &str) -> u64 {
    let mut s = connect(addr);
    write!(
        s,
        "POST /admin/retrain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let r = read_reply(&mut s);
    assert_eq!(r.status, 202, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_u64().unwrap()
}

fn job(addr: &str, id: u64) -> serde_json::Value {
    get_with_token(addr, &format!("/admin/jobs/{id}"), TOKEN).json()
}

/// `triples` lines of a small catalogue: 200 users × 20 items.
fn small_csv() -> String {
    let mut text = String::from("user,item,rating\n");
    for u in 0..200 {
        for i in 0..20 {
            let r = 1 + (u * 7 + i * 3) % 5;
            text.push_str(&format!("u{u},m{i},{r}\n"));
        }
    }
    text
}

/// Sends SIGTERM, checks the service answers through the delay, and returns how long the
/// process took to exit, with its status and log.
fn terminate(server: Server) -> (Duration, std::process::ExitStatus, String) {
    let sent = Instant::now();
    server.signal("TERM");
    // Still serving during the delay.
    std::thread::sleep(Duration::from_millis(DELAY_MS / 3));
    let model = get(&server.addr, "/v1/model");
    assert_eq!(model.status, 200, "serving during the shutdown delay");
    let (status, log) = server.exit();
    let took = sent.elapsed();
    eprintln!("SIGTERM to exit: {took:?} (bound {:?})", bound());
    (took, status, log)
}

#[test]
fn sigterm_while_a_retrain_reads_a_fifo_fed_forever_exits_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratings.csv");
    std::fs::write(&path, small_csv()).unwrap();
    let server = start(&["--data", path.to_str().unwrap()], &env(&[]));
    server.wait_ready();

    // The configured snapshot becomes a FIFO that a writer feeds without end.
    std::fs::remove_file(&path).unwrap();
    let made = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
    let fed = Arc::new(AtomicU64::new(0));
    let feeder = {
        let (path, fed) = (path.clone(), fed.clone());
        std::thread::spawn(move || feed_forever(&path, &fed))
    };
    let id = retrain(&server.addr, "{}");
    // Running, and reading: several MiB have gone into the FIFO.
    poll(|| (fed.load(Ordering::Relaxed) > 4 << 20).then_some(()));
    assert_eq!(job(&server.addr, id)["state"], "running");
    assert_eq!(get(&server.addr, "/v1/model").status, 200);

    let (took, status, log) = terminate(server);

    assert_eq!(status.code(), Some(0), "{log}");
    assert!(took < bound(), "exit took {took:?}, bound {:?}", bound());
    assert!(log.contains("job cancelled"), "{log}");
    // The writer sees the reader go away and stops.
    feeder.join().unwrap();
}

/// Writes `triples` lines into the FIFO at `path` until its reader is gone.
fn feed_forever(path: &Path, fed: &AtomicU64) {
    // Opening blocks until the server opens the FIFO to read it.
    let mut fifo = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    fifo.write_all(b"user,item,rating\n").unwrap();
    for n in 0u64.. {
        let line = format!("u{},m{},{}\n", n / 50, n % 50, 1 + n % 5);
        match fifo.write_all(line.as_bytes()) {
            Ok(()) => fed.fetch_add(line.len() as u64, Ordering::Relaxed),
            Err(e) if e.kind() == ErrorKind::BrokenPipe => return,
            Err(e) => panic!("writing the FIFO: {e}"),
        };
    }
}

/// Whether `python3` is here; panics when it is not and `MIXREC_REQUIRE_PYTHON=1`.
fn python_available() -> bool {
    let found = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    let required = std::env::var("MIXREC_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "MIXREC_REQUIRE_PYTHON=1 but python3 is missing (apt-get install python3)"
    );
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let line = format!("skipped {test}: python3 not installed (apt-get install python3)\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    false
}

/// Python's `http.client` writes a whole request, 5 MB body and all, before it reads a byte:
/// what it prints is the status, the content type and the problem type it then read. With
/// `chunked` as its second argument the body goes in 64 KiB chunks with no `Content-Length`.
const PYTHON_POST: &str = r#"
import http.client, json, sys
host, port = sys.argv[1].rsplit(":", 1)
body = b'{"ratings": {"m001": 5}, "pad": "' + b"x" * (5 * 1000 * 1000) + b'"}'
if sys.argv[2:] == ["chunked"]:
    body = [body[i:i + 65536] for i in range(0, len(body), 65536)]
c = http.client.HTTPConnection(host, int(port), timeout=60)
c.request("POST", "/v1/complete", body=body, headers={"Content-Type": "application/json"})
r = c.getresponse()
print(r.status, r.getheader("Content-Type"), json.loads(r.read())["type"])
"#;

#[test]
fn pythons_http_client_posting_5_mb_reads_a_413_problem() {
    if !python_available() {
        return;
    }
    let server = start(&[], &env(&[]));
    server.wait_ready();

    for framing in ["content-length", "chunked"] {
        let out = Command::new("python3")
            .args(["-c", PYTHON_POST, &server.addr, framing])
            .output()
            .unwrap();

        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{framing}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.trim(),
            "413 application/problem+json urn:mixrec:problem:body-too-large",
            "{framing}"
        );
    }
    // The connections were read to their end, not cut: the service still answers, and a
    // chunked body under the limit is still handed to the route whole.
    assert_eq!(get(&server.addr, "/healthz").status, 200);
    let mut s = connect(&server.addr);
    let body = r#"{"ratings": {"m001": 5}}"#;
    let (a, b) = body.split_at(10);
    write!(
        s,
        "POST /v1/complete HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    )
    .unwrap();
    let reply = read_reply(&mut s);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let items = reply.json()["items"].as_array().unwrap().clone();
    assert!(!items.is_empty());
    assert!(items.iter().all(|i| i["item"] != "m001"), "{items:?}");
}

/// `mixrec synth`: 2 M ratings of 40,000 users over 4,000 items (30 MB of CSV) at `path`.
fn two_million(path: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_mixrec"))
        .args([
            "synth",
            "--users",
            "40000",
            "--items",
            "4000",
            "--ratings",
            "2000000",
        ])
        .args([
            "--types",
            "8",
            "--seed",
            "3",
            "--out",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether a job, as polled, has reached a phase.
type Reached = fn(&serde_json::Value) -> bool;

/// The files of `dir` whose names say they are temporary (a save cut short).
fn temporary_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn sigterm_in_each_phase_of_a_2m_rating_retrain_exits_within_the_bound_leaving_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let (small, big) = (dir.path().join("small.csv"), dir.path().join("big.csv"));
    std::fs::write(&small, small_csv()).unwrap();
    two_million(&big);
    let models = dir.path().join("models");
    let body = format!(r#"{{"snapshot": "{}", "force": true}}"#, big.display());
    // Loading: a moment after the job starts; training: once it reports an iteration.
    let phases: [(&str, Reached); 2] = [
        ("loading", |j| {
            j["state"] == "running" && j["iteration"] == 0
        }),
        ("training", |j| {
            j["iteration"].as_u64().is_some_and(|i| i >= 1)
        }),
    ];
    for (phase, reached) in phases {
        let extra = [("MIXREC__MODELS__DIR", models.display().to_string())];
        let server = start(&["--data", small.to_str().unwrap()], &env(&extra));
        server.wait_ready();
        let id = retrain(&server.addr, &body);
        poll(|| reached(&job(&server.addr, id)).then_some(()));

        let (took, status, log) = terminate(server);

        assert_eq!(status.code(), Some(0), "{phase}: {log}");
        assert!(
            took < bound(),
            "{phase}: exit took {took:?}, bound {:?}",
            bound()
        );
        assert!(log.contains("job cancelled"), "{phase}: {log}");
        assert_eq!(temporary_files(&models), Vec::<String>::new(), "{phase}");
    }
}

/// The peak resident memory of process `pid` (`VmHWM` of /proc/<pid>/status), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[test]
fn a_snapshot_larger_than_max_memory_is_refused_with_the_figures_before_it_is_read() {
    let limit: u64 = 50_000_000;
    let dir = tempfile::tempdir().unwrap();
    let (small, big) = (dir.path().join("small.csv"), dir.path().join("big.csv"));
    std::fs::write(&small, small_csv()).unwrap();
    two_million(&big);
    let extra = [("MIXREC__TRAINING__MAX_MEMORY", limit.to_string())];
    let server = start(&["--data", small.to_str().unwrap()], &env(&extra));
    server.wait_ready();
    let before = peak_rss(server.pid());

    let body = format!(r#"{{"snapshot": "{}", "force": true}}"#, big.display());
    let id = retrain(&server.addr, &body);
    let ended = poll(|| {
        let j = job(&server.addr, id);
        (j["state"] != "running" && j["state"] != "queued").then_some(j)
    });

    assert_eq!(ended["state"], "failed", "{ended}");
    let error = ended["error"].as_str().unwrap();
    assert!(
        error.contains("refused before it was read whole"),
        "{error}"
    );
    assert!(
        error.contains(&format!("above the limit of {limit} bytes")),
        "{error}"
    );
    // 2 M ratings at 64 bytes each, estimated from the first lines: within a few per cent.
    let estimate: f64 = error
        .split("would take about ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((estimate / 128e6 - 1.0).abs() < 0.05, "{error}");
    // The process grew by far less than the limit, and the old model serves.
    let grown = peak_rss(server.pid()).saturating_sub(before);
    eprintln!("refused: {error}; peak RSS grew by {grown} bytes");
    assert!(grown < limit, "peak RSS grew by {grown} bytes");
    assert_eq!(get(&server.addr, "/v1/model").json()["version"], 1);
}

/// Whether this process may open `wanted` more files, raising its soft limit to the hard one
/// if need be; says so and skips when even that is too low, unless
/// `MIXREC_REQUIRE_FILE_LIMIT=1` (CI), which makes it a failure.
fn file_limit_allows(wanted: u64) -> bool {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (limit.current, limit.maximum)
        && soft < hard
    {
        limit.current = Some(hard);
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let now = getrlimit(Resource::Nofile).current;
    if now.is_none_or(|now| now >= wanted) {
        return true;
    }
    let why = format!("the open-file limit is {now:?}, below the {wanted} this test needs");
    let required = std::env::var("MIXREC_REQUIRE_FILE_LIMIT").is_ok_and(|v| v == "1");
    assert!(!required, "MIXREC_REQUIRE_FILE_LIMIT=1 but {why}");
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = std::io::stderr().write_all(format!("skipped {test}: {why}\n").as_bytes());
    false
}

/// `GET path` on an open keep-alive connection.
fn get_on(s: &mut TcpStream, path: &str) -> Reply {
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    read_reply(s)
}

/// The value of the series `name{listener="public"}` in a `/metrics` text.
fn public_series(metrics: &str, name: &str) -> Option<u64> {
    let prefix = format!("{name}{{listener=\"public\"}} ");
    let line = metrics.lines().find(|l| l.starts_with(&prefix))?;
    line[prefix.len()..]
        .trim()
        .parse::<f64>()
        .ok()
        .map(|v| v as u64)
}

#[test]
fn past_max_connections_new_connections_close_at_once_and_open_ones_keep_answering() {
    const MAX: u64 = 1000;
    const IDLE: u64 = 5000;
    /// Keep-alive connections opened before the flood, which must keep being answered.
    const BUSY: u64 = 8;
    if !file_limit_allows(IDLE + BUSY + 256) {
        return;
    }
    let server = start(
        &[],
        &env(&[
            ("MIXREC__SERVER__MAX_CONNECTIONS", MAX.to_string()),
            // Idle connections stay for the whole test instead of timing out.
            (
                "MIXREC__SERVER__HEADER_READ_TIMEOUT_MS",
                "120000".to_owned(),
            ),
        ]),
    );
    server.wait_ready();
    let addr = server.addr.as_str();
    let mut busy: Vec<TcpStream> = (0..BUSY).map(|_| connect(addr)).collect();
    for s in &mut busy {
        assert_eq!(get_on(s, "/healthz").status, 200);
    }

    // 5,000 connections that send nothing: the server keeps the first MAX - BUSY of them.
    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| TcpStream::connect(addr).unwrap_or_else(|e| panic!("idle connection {i}: {e}")))
        .collect();
    let kept = MAX - BUSY;
    let refused = IDLE - kept;
    let metrics = poll(|| {
        let text = String::from_utf8(get_on(&mut busy[0], "/metrics").body).unwrap();
        let seen = public_series(&text, "mixrec_connections_refused_total");
        (seen == Some(refused)).then_some(text)
    });
    assert_eq!(
        public_series(&metrics, "mixrec_connections_open"),
        Some(MAX),
        "{metrics}"
    );
    // The refused ones were closed without an answer; the kept ones are open and silent.
    let mut closed = 0;
    for s in &mut idle {
        s.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        match s.read(&mut byte) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => closed += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("an idle connection read {other:?}"),
        }
    }
    assert_eq!(closed, refused);

    // The connections open before the flood answer every route as before.
    for s in &mut busy {
        let model = get_on(s, "/v1/model");
        assert_eq!(model.status, 200);
        assert_eq!(model.json()["k"], 3);
    }
    // Once the idle ones go, new connections are served again.
    drop(idle);
    poll(|| (get(addr, "/healthz").status == 200).then_some(()));
    let (_, log) = {
        drop(busy);
        server.signal("TERM");
        server.exit()
    };
    // One warning for the episode, not one per refused connection.
    let warnings = log.matches("closing new connections at once").count();
    assert_eq!(warnings, 1, "{log}");
}
