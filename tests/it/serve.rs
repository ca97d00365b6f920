//! The real binary over a real socket: start on a free port with the Netflix subset, wait for
//! readiness, complete a profile, retrain through the admin route, see the new version, then
//! SIGTERM and a clean exit.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{PATIENCE, Server};
use crate::support::shared_data;

const TOKEN: &str = "serve-test-token";

/// Starts `mixrec serve` on 127.0.0.1:0 with `data`, a quick training, and no shutdown delay.
fn start(data: &std::path::Path) -> (Server, String) {
    let data = data.to_str().expect("a UTF-8 path");
    let server = Server::start(
        &["--data", data],
        &[
            ("MIXREC_ADMIN_TOKEN", TOKEN),
            ("MIXREC__TRAINING__K", "4"),
            ("MIXREC__TRAINING__N_INIT", "1"),
            ("MIXREC__TRAINING__MAX_ITER", "15"),
            ("MIXREC__SERVER__SHUTDOWN_DELAY_MS", "0"),
        ],
    );
    let addr = server.addr.clone();
    (server, addr)
}

async fn poll_until(what: &str, mut f: impl AsyncFnMut() -> Option<Value>) -> Value {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within {PATIENCE:?}");
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[tokio::test]
async fn the_binary_serves_retrains_and_stops_cleanly_on_sigterm() {
    let Some(dir) = shared_data() else { return };
    let (server, addr) = start(&dir.join("netflix_incomplete.txt"));
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();

    poll_until("readiness", async || {
        let r = http.get(format!("{base}/readyz")).send().await.ok()?;
        r.status().is_success().then_some(Value::Null)
    })
    .await;

    // The container health check is the binary itself.
    let check = Command::new(env!("CARGO_BIN_EXE_mixrec"))
        .args(["healthcheck", "--addr", &addr])
        .status()
        .unwrap();
    assert!(check.success(), "mixrec healthcheck: {check}");
    // … also by name, as the README writes it.
    let port = addr.rsplit(':').next().unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_mixrec"))
        .args(["healthcheck", "--addr", &format!("localhost:{port}")])
        .status()
        .unwrap();
    assert!(
        check.success(),
        "mixrec healthcheck --addr localhost: {check}"
    );

    let profile = json!({"ratings": {"0": 5, "1": 3, "7": 1}, "items": ["2", "3"]});
    let r = http
        .post(format!("{base}/v1/complete"))
        .json(&profile)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert_eq!(v["model_version"], 1);

    let r = http
        .post(format!("{base}/admin/retrain"))
        .bearer_auth(TOKEN)
        .json(&json!({"seed": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    let job = poll_until("the retrain", async || {
        let r = http
            .get(format!("{base}/admin/jobs/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .ok()?;
        let job: Value = r.json().await.ok()?;
        (job["state"] == "succeeded" || job["state"] == "failed").then_some(job)
    })
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let model: Value = http
        .get(format!("{base}/v1/model"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(model["version"], 2);
    assert_eq!(
        (model["n_users"].clone(), model["n_items"].clone()),
        (json!(1200), json!(1200))
    );

    server.signal("TERM");
    let (status, log) = server.exit();
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM: {status}\n{log}"
    );
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    // Bind then drop a listener: its port is (almost certainly) closed right after.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let status = Command::new(env!("CARGO_BIN_EXE_mixrec"))
        .args(["healthcheck", "--addr", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
}

#[test]
fn every_metric_of_the_demo_binary_has_a_help_line() {
    let server = Server::start(&[], &[("MIXREC__SERVER__SHUTDOWN_DELAY_MS", "0")]);
    server.wait_ready();
    // One request of each kind so the HTTP series exist too.
    assert_eq!(crate::process::get(&server.addr, "/v1/model").status, 200);
    let text = String::from_utf8(crate::process::get(&server.addr, "/metrics").body).unwrap();
    let named = |prefix: &str| -> Vec<String> {
        let mut v: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix(prefix)?.split(' ').next())
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    };
    // A replica's failed polls are recorded only by replicas (tests/it/replicas.rs reads them).
    let mut listed: Vec<String> = mixrec::http::METRICS
        .iter()
        .map(|m| m.1.to_owned())
        .filter(|m| m != "mixrec_model_poll_failures_total")
        .collect();
    listed.sort();
    // The start-up training recorded the job, model and training series: all seven are here.
    assert_eq!(named("# TYPE "), listed, "{text}");
    assert_eq!(named("# HELP "), listed, "{text}");
    assert!(
        text.contains("# HELP mixrec_http_shed_total Requests answered 503 overloaded"),
        "{text}"
    );
}

#[test]
fn a_movielens_titles_file_keeps_quoted_commas_and_its_genres() {
    let dir = tempfile::tempdir().unwrap();
    let ratings = dir.path().join("ratings.csv");
    let mut text = String::from("userId,movieId,rating\n");
    for u in 0..60 {
        for m in [1, 11, 12] {
            text.push_str(&format!("{u},{m},{}\n", 1 + (u + m) % 5));
        }
    }
    std::fs::write(&ratings, text).unwrap();
    let movies = dir.path().join("movies.csv");
    std::fs::write(
        &movies,
        "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n\
         11,\"American President, The (1995)\",Comedy|Drama|Romance\n12,Dracula (1995),\n",
    )
    .unwrap();
    let titles = movies.display().to_string();
    let server = Server::start(
        &["--data", ratings.to_str().unwrap()],
        &[
            ("MIXREC__SNAPSHOT__TITLES", titles.as_str()),
            ("MIXREC__TRAINING__K", "1"),
        ],
    );
    server.wait_ready();
    let page = crate::process::get(&server.addr, "/v1/items").json();
    let item = |id: &str| -> Value {
        let items = page["items"].as_array().unwrap();
        items.iter().find(|i| i["id"] == id).unwrap().clone()
    };
    assert_eq!(item("11")["title"], "American President, The (1995)");
    assert_eq!(
        item("11")["attributes"],
        json!({ "genres": "Comedy|Drama|Romance" })
    );
    assert_eq!(item("1")["attributes"]["genres"], "Adventure|Animation");
    assert_eq!(item("12")["title"], "Dracula (1995)");
    assert!(item("12").get("attributes").is_none(), "{page}");
}
