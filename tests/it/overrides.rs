//! The bounds on `POST /admin/retrain` overrides, in-process: a snapshot must be a regular file
//! inside `snapshot.allowed_dirs` (by default the configured snapshot's directory; none for the
//! embedded demo), `n_init` at most 64, `k` at most `training.max_k`. Each refusal is a 400
//! problem naming its limit, and no job starts.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::{Method, StatusCode};
use mixrec::config::Settings;
use mixrec::http::{AppState, router};
use serde_json::{Value, json};

use crate::http::{TOKEN, admin, finished_job, send};
use crate::support::{demo_model, service_settings};

fn app(edit: impl FnOnce(&mut Settings)) -> Router {
    router(AppState::with_model(service_settings(edit), demo_model()).expect("state"))
}

/// `POST /admin/retrain` with `body`: its status and its JSON.
async fn retrain(app: &Router, body: &Value) -> (StatusCode, Value) {
    let req = admin(
        Method::POST,
        "/admin/retrain",
        Some(TOKEN),
        &body.to_string(),
    );
    let r = send(app, req).await;
    (r.status, r.json())
}

/// Asserts a 400 of problem type `kind` whose detail contains `naming`, and that no job
/// started.
async fn refused(app: &Router, body: Value, kind: &str, naming: &str) {
    let (status, problem) = retrain(app, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
    assert_eq!(
        problem["type"],
        format!("urn:mixrec:problem:{kind}"),
        "{body}"
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains(naming),
        "{body}: {detail:?} lacks {naming:?}"
    );
    let job = send(app, admin(Method::GET, "/admin/jobs/1", Some(TOKEN), "")).await;
    assert_eq!(job.status, StatusCode::NOT_FOUND, "{body} started a job");
}

/// A copy of the demo snapshot at `path`.
fn demo_copy(path: &Path) -> PathBuf {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo-ratings.csv");
    std::fs::copy(demo, path).unwrap();
    path.to_owned()
}

#[tokio::test]
async fn k_above_training_max_k_is_refused_naming_the_limit() {
    refused(
        &app(|_| {}),
        json!({"k": 257}),
        "k-out-of-range",
        "training.max_k = 256",
    )
    .await;
    let small = app(|s| (s.training.max_k, s.training.k_range) = (8, [1, 8]));
    refused(
        &small,
        json!({"k": 9}),
        "k-out-of-range",
        "training.max_k = 8",
    )
    .await;
    let (status, job) = retrain(&small, &json!({"k": 8})).await;
    assert_eq!((status, job["k"].clone()), (StatusCode::ACCEPTED, json!(8)));
}

#[tokio::test]
async fn n_init_above_64_is_refused_naming_the_limit() {
    let app = app(|_| {});
    refused(
        &app,
        json!({"n_init": 65}),
        "n-init-out-of-range",
        "limit of 64",
    )
    .await;
    refused(
        &app,
        json!({"n_init": 1000000}),
        "n-init-out-of-range",
        "64",
    )
    .await;
}

#[tokio::test]
async fn with_the_embedded_demo_no_snapshot_override_is_allowed_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = demo_copy(&dir.path().join("ratings.csv"));
    let app = app(|_| {});
    let naming = "snapshot.allowed_dirs is not set";
    refused(
        &app,
        json!({"snapshot": file}),
        "snapshot-not-allowed",
        naming,
    )
    .await;
    refused(
        &app,
        json!({"snapshot": "/dev/zero"}),
        "snapshot-not-allowed",
        naming,
    )
    .await;
}

#[tokio::test]
async fn a_snapshot_override_must_be_a_regular_file_inside_the_allowed_dirs() {
    let (allowed, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let inside = demo_copy(&allowed.path().join("ratings.csv"));
    let outside = demo_copy(&elsewhere.path().join("ratings.csv"));
    let link = allowed.path().join("link.csv");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let fifo = allowed.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let dirs = vec![allowed.path().to_owned()];
    let app = app(|s| s.snapshot.allowed_dirs = Some(dirs));
    let kind = "snapshot-not-allowed";
    let limit = "is outside snapshot.allowed_dirs";
    refused(
        &app,
        json!({"snapshot": "/dev/zero"}),
        kind,
        "is not a regular file",
    )
    .await;
    refused(
        &app,
        json!({"snapshot": fifo}),
        kind,
        "is not a regular file",
    )
    .await;
    refused(
        &app,
        json!({"snapshot": allowed.path()}),
        kind,
        "is not a regular file",
    )
    .await;
    refused(&app, json!({"snapshot": outside}), kind, limit).await;
    refused(&app, json!({"snapshot": link}), kind, limit).await;
    let dotdot = allowed
        .path()
        .join("..")
        .join(elsewhere.path().file_name().unwrap());
    refused(
        &app,
        json!({"snapshot": dotdot.join("ratings.csv")}),
        kind,
        limit,
    )
    .await;
    let missing = allowed.path().join("missing.csv");
    refused(&app, json!({"snapshot": missing}), kind, "missing.csv").await;

    let (status, job) = retrain(&app, &json!({"snapshot": inside, "force": true})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = finished_job(&app, job["id"].as_u64().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["snapshot"], inside.display().to_string());
}

#[tokio::test]
async fn by_default_the_configured_snapshot_directory_is_allowed() {
    let (dir, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let configured = demo_copy(&dir.path().join("configured.csv"));
    let beside = demo_copy(&dir.path().join("beside.csv"));
    let outside = demo_copy(&elsewhere.path().join("ratings.csv"));
    let app = app(|s| s.snapshot.path = Some(configured));
    let limit = format!("outside snapshot.allowed_dirs ({})", dir.path().display());
    refused(
        &app,
        json!({"snapshot": outside}),
        "snapshot-not-allowed",
        &limit,
    )
    .await;
    let (status, job) = retrain(&app, &json!({"snapshot": beside})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
}
