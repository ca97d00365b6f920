//! Faults during a retrain, and the model store through the admin routes, in-process: every
//! failure leaves the serving model serving; saved models come back after a "restart" (a new
//! state over the same directory), a damaged one is skipped, a rollback goes back one version.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::{Method, StatusCode};
use mixrec::config::Settings;
use mixrec::http::{AppState, router};
use mixrec::serving::Task;
use serde_json::{Value, json};

use crate::http::{TOKEN, admin, finished_job, get, send};
use crate::support::{demo_model, service_settings};

fn serving(edit: impl FnOnce(&mut Settings)) -> Router {
    router(AppState::with_model(service_settings(edit), demo_model()).expect("state"))
}

async fn retrain(app: &Router, body: Value) -> Value {
    let r = send(
        app,
        admin(
            Method::POST,
            "/admin/retrain",
            Some(TOKEN),
            &body.to_string(),
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    finished_job(app, r.json()["id"].as_u64().unwrap()).await
}

async fn version(app: &Router) -> u64 {
    get(app, "/v1/model").await.json()["version"]
        .as_u64()
        .unwrap()
}

/// A retrain on `snapshot` fails with an error containing `expected`; version 1 keeps serving
/// and still answers. The snapshot is the configured one: a retrain override must name a
/// regular file (see `tests/it/overrides.rs`), and a configured snapshot can go missing.
async fn fails_on(snapshot: &Path, expected: &str) {
    let app = serving(|s| s.snapshot.path = Some(snapshot.to_owned()));
    let job = retrain(&app, json!({})).await;
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains(expected), "{error:?} lacks {expected:?}");
    assert_eq!(version(&app).await, 1);
    let r = send(
        &app,
        axum::http::Request::post("/v1/recommend")
            .header("content-type", "application/json")
            .body(r#"{"ratings": {"m001": 5}, "n": 3}"#.into())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_missing_snapshot_fails_the_job_not_the_service() {
    fails_on(
        Path::new("/nonexistent/ratings.csv"),
        "/nonexistent/ratings.csv",
    )
    .await;
}

#[tokio::test]
async fn an_unreadable_snapshot_fails_the_job_not_the_service() {
    // A directory where the file should be: unreadable whoever runs the test (root included).
    let dir = tempfile::tempdir().unwrap();
    fails_on(dir.path(), &dir.path().display().to_string()).await;
}

#[tokio::test]
async fn a_corrupt_snapshot_fails_the_job_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratings.csv");
    std::fs::write(&path, "user_id,item_id,rating\nu1,m1,5\nu2,m2,five\n").unwrap();
    fails_on(&path, &format!("{}:3", path.display())).await;
    fails_on_override(&path, &format!("{}:3", path.display())).await;
}

/// As [`fails_on`], with `snapshot` as a retrain override in an allowed directory.
async fn fails_on_override(snapshot: &Path, expected: &str) {
    let dir = snapshot.parent().unwrap().to_owned();
    let app = serving(|s| s.snapshot.allowed_dirs = Some(vec![dir]));
    let job = retrain(&app, json!({"snapshot": snapshot})).await;
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains(expected), "{error:?} lacks {expected:?}");
    assert_eq!(version(&app).await, 1);
}

#[tokio::test]
async fn a_snapshot_that_grows_while_read_fails_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratings.csv");
    let mut text = String::from("user_id,item_id,rating\n");
    for u in 0..20_000 {
        text.push_str(&format!("u{u},m{},{}\n", u % 50, 1 + u % 5));
    }
    std::fs::write(&path, text).unwrap();
    // A writer still appending ratings while the job reads the file.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            let mut u = 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                writeln!(file, "u{u},m1,3").unwrap();
                u += 1;
            }
        })
    };
    fails_on_override(&path, "changed while it was being read").await;
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[tokio::test]
async fn a_running_retrain_can_be_cancelled_between_iterations() {
    // tol 0 and a huge cap: the retrain would run for minutes unless cancelled.
    let app = serving(|s| {
        s.training.tol = 0.0;
        s.training.max_iter = 10_000_000;
        s.training.holdout = 0.0;
    });
    let r = send(&app, admin(Method::POST, "/admin/retrain", Some(TOKEN), "")).await;
    let id = r.json()["id"].as_u64().unwrap();
    let uri = format!("/admin/jobs/{id}");
    // Wait until it is iterating, so the cancel lands mid-fit.
    for _ in 0..6000 {
        let job = send(&app, admin(Method::GET, &uri, Some(TOKEN), ""))
            .await
            .json();
        if job["iteration"].as_u64().unwrap() > 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let r = send(&app, admin(Method::DELETE, &uri, Some(TOKEN), "")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let job = finished_job(&app, id).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    assert!(job["iteration"].as_u64().unwrap() > 5);
    assert_eq!(version(&app).await, 1);
    // Ended jobs cannot be cancelled; unknown ones are not found.
    let r = send(&app, admin(Method::DELETE, &uri, Some(TOKEN), "")).await;
    assert!(r.problem(StatusCode::CONFLICT).contains("cancelled"));
    let r = send(
        &app,
        admin(Method::DELETE, "/admin/jobs/99", Some(TOKEN), ""),
    )
    .await;
    r.problem(StatusCode::NOT_FOUND);
    let r = send(&app, admin(Method::DELETE, &uri, None, "")).await;
    r.problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_quality_gate_keeps_a_clearly_worse_model_out_unless_forced() {
    let app = serving(|_| {});
    let served = get(&app, "/v1/model").await.json();
    let before = served["heldout_rmse"].as_f64().unwrap();
    // One type cannot tell the demo's six planted tastes apart.
    let job = retrain(&app, json!({"k": 1})).await;
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.starts_with("quality gate: on the same"), "{error}");
    // Both scored on the same held-out ratings, every one of them (one snapshot).
    let gate = &job["gate"];
    assert_eq!(gate["passed"], false, "{job}");
    assert_eq!(gate["compared"], gate["heldout"], "{job}");
    assert_eq!(
        (gate["share"].as_f64(), gate["unknown_items"].as_u64()),
        (Some(1.0), Some(0))
    );
    let (new, old) = (
        gate["candidate_rmse"].as_f64().unwrap(),
        gate["serving_rmse"].as_f64().unwrap(),
    );
    assert!(new > old * 1.05, "{job}");
    assert!(
        error.contains(&format!("{new:.4}")) && error.contains(&format!("{old:.4}")),
        "{error}"
    );
    assert_eq!(version(&app).await, 1);
    let job = retrain(&app, json!({"k": 1, "force": true})).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let now = get(&app, "/v1/model").await.json();
    assert_eq!(
        (now["version"].clone(), now["k"].clone()),
        (json!(2), json!(1))
    );
    assert!(now["heldout_rmse"].as_f64().unwrap() > before * 1.05);
}

/// A state over the store in `dir` that has run its start-up job, like `mixrec serve`.
async fn started(dir: &Path, edit: impl FnOnce(&mut Settings)) -> (Router, Value) {
    let settings = service_settings(|s| {
        s.models.dir = Some(dir.to_owned());
        edit(s);
    });
    let state = AppState::new(settings).expect("the store opens");
    let started = state
        .registry
        .start(Task::Startup)
        .expect("no job is running");
    let app = router(state);
    let job = finished_job(&app, started.job.id).await;
    (app, job)
}

async fn saved(app: &Router) -> Value {
    let r = send(app, admin(Method::GET, "/admin/models", Some(TOKEN), "")).await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()
}

fn statuses(models: &Value) -> Vec<(u64, String)> {
    models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["version"].as_u64().unwrap(),
                m["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn models_are_saved_served_again_after_a_restart_and_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let (app, job) = started(dir.path(), |_| {}).await;
    assert_eq!(
        (job["kind"].clone(), job["state"].clone()),
        (json!("startup"), json!("succeeded"))
    );
    assert!(job["message"].is_null(), "trained, not restored: {job}");
    assert!(dir.path().join("model-00000001.mixrec").is_file());

    let job = retrain(&app, json!({"seed": 7})).await;
    assert_eq!(job["model_version"], 2, "{job}");
    let models = saved(&app).await;
    assert_eq!(
        statuses(&models),
        [(2, "valid".into()), (1, "valid".into())]
    );
    assert_eq!(models["serving"], 2);
    assert_eq!(
        models["models"][0]["info"]["snapshot"]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    // A restart serves the newest saved model for the same snapshot and settings (version 2
    // was trained with seed 7, the configured seed is 1: it does not match).
    drop(app);
    let (app, job) = started(dir.path(), |_| {}).await;
    assert_eq!(
        job["message"], "served version 1 from the model store",
        "{job}"
    );
    assert_eq!(version(&app).await, 1);
    let (app, job) = started(dir.path(), |s| s.training.seed = 7).await;
    assert_eq!(
        job["message"], "served version 2 from the model store",
        "{job}"
    );

    // Rollback: 2 → 1 (from disk: this state never had version 1 in memory).
    let r = send(
        &app,
        admin(Method::POST, "/admin/rollback", Some(TOKEN), ""),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let job = finished_job(&app, r.json()["id"].as_u64().unwrap()).await;
    assert_eq!(
        job["message"], "rolled back from version 2 to version 1",
        "{job}"
    );
    assert_eq!(version(&app).await, 1);
    let models = saved(&app).await;
    assert_eq!(
        statuses(&models),
        [(2, "rolled_back".into()), (1, "valid".into())]
    );
    assert!(
        dir.path()
            .join("model-00000002.mixrec.rolled-back")
            .is_file()
    );
    // Nothing older than 1 to go back to.
    let r = send(
        &app,
        admin(Method::POST, "/admin/rollback", Some(TOKEN), ""),
    )
    .await;
    let job = finished_job(&app, r.json()["id"].as_u64().unwrap()).await;
    assert_eq!(job["state"], "failed");
    assert!(
        job["error"].as_str().unwrap().contains("no earlier model"),
        "{job}"
    );
    assert_eq!(version(&app).await, 1);

    // The next model takes a version above every file's, rolled-back ones included.
    let job = retrain(&app, json!({"seed": 7})).await;
    assert_eq!(job["model_version"], 3, "{job}");
    // In memory, the replaced model is the rollback target.
    let r = send(
        &app,
        admin(Method::POST, "/admin/rollback", Some(TOKEN), ""),
    )
    .await;
    let job = finished_job(&app, r.json()["id"].as_u64().unwrap()).await;
    assert_eq!(
        job["message"], "rolled back from version 3 to version 1",
        "{job}"
    );
}

#[tokio::test]
async fn a_damaged_saved_model_is_skipped_at_start_up_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = started(dir.path(), |_| {}).await;
    drop(app);
    let file = dir.path().join("model-00000001.mixrec");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    // Start-up trains instead, as version 2: no file is ever overwritten.
    let (app, job) = started(dir.path(), |_| {}).await;
    assert_eq!(
        (job["state"].clone(), job["model_version"].clone()),
        (json!("succeeded"), json!(2))
    );
    assert!(job["message"].is_null(), "{job}");
    let models = saved(&app).await;
    assert_eq!(
        statuses(&models),
        [(2, "valid".into()), (1, "invalid".into())]
    );
    let reason = models["models"][1]["error"].as_str().unwrap();
    assert!(reason.contains("checksum mismatch"), "{reason}");
}

#[tokio::test]
async fn without_a_store_the_admin_models_route_says_so() {
    let app = serving(|_| {});
    let r = send(&app, admin(Method::GET, "/admin/models", Some(TOKEN), "")).await;
    assert!(r.problem(StatusCode::CONFLICT).contains("models.dir"));
}
