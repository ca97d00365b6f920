//! The PostgreSQL source against a real server the test starts (`pg.rs`): a table reads as the
//! same ratings as the CSV of its rows, fingerprinted by its rows; a re-rating under both
//! policies; a refused connection, a wrong password, a query with the wrong column types and
//! a NULL rating are each one clear line, at start-up (`mixrec serve` exits 1) and in a
//! retrain job (the old model keeps serving). The password never shows.
//!
//! Without PostgreSQL the tests skip and say so, unless `MIXREC_REQUIRE_POSTGRES=1`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mixrec::data::{Duplicates, Format, PostgresError, Source, SourceError, split_password};

use crate::pg::{PASSWORD, Postgres, free_port};
use crate::process::{Server, connect, get, get_with_token, poll, read_reply};

const TOKEN: &str = "database-token";
const TABLE: &str = "CREATE TABLE ratings (user_id text, item_id int4, rating numeric(3,1), \
                     rated_at timestamptz)";

/// A catalogue as CSV rows `user,item,rating,time`: 120 users, 25 items, half stars, with
/// holes; the rating and the time follow from the indices, so each test knows every value.
fn rows() -> String {
    let mut csv = String::new();
    for u in 0..120 {
        for i in 0..25 {
            if (u * 7 + i * 3) % 4 == 0 {
                continue;
            }
            let rating = f64::from(1 + (u * 3 + i * 5) % 9) / 2.0;
            let day = 1 + (u + i) % 28;
            csv.push_str(&format!(
                "u{u},{},{rating},2024-02-{day:02} 12:00:00+00\n",
                100 + i
            ));
        }
    }
    csv
}

/// The source of `query` on `pg`, the password taken from the URL as the settings do.
fn source(pg: &Postgres, query: &str, duplicates: Duplicates) -> Source {
    let (url, password) = split_password(&pg.url());
    Source::Postgres {
        url,
        query: query.into(),
        duplicates,
        titles: None,
        password,
    }
}

#[test]
fn a_table_reads_as_the_csv_of_its_rows_fingerprinted_by_them() {
    let Some(pg) = Postgres::start() else { return };
    pg.execute(TABLE);
    let csv = rows();
    pg.copy_csv("ratings", &csv);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ratings.csv");
    std::fs::write(&file, &csv).unwrap();
    let from_file = Source::File {
        path: file,
        format: Format::Triples,
        titles: None,
        duplicates: Duplicates::Error,
        columns: Default::default(),
    }
    .load()
    .unwrap();

    let query = "SELECT user_id, item_id, rating FROM ratings";
    let db = source(&pg, query, Duplicates::Latest);
    let loaded = db.load().unwrap();
    // Another encoding of every column: int8 ids, float8 ratings, a date as the fourth.
    let cast = "SELECT user_id::varchar, item_id::int8, rating::float8, rated_at::date \
                FROM ratings";
    let recast = source(&pg, cast, Duplicates::Error).load().unwrap();

    let want = &from_file.snapshot;
    for got in [&loaded.snapshot, &recast.snapshot] {
        assert_eq!(got.ratings, want.ratings);
        assert_eq!(got.users, want.users);
        assert_eq!(got.items, want.items);
        assert_eq!(got.scale, want.scale);
        assert_eq!(got.replaced, 0);
    }
    assert_eq!(db.name(), pg.url_without_password());
    assert!(!format!("{db:?}").contains(PASSWORD));
    assert_eq!(loaded.fingerprint.as_str().len(), 64);
    assert_eq!(db.load().unwrap().fingerprint, loaded.fingerprint);
    assert_ne!(recast.fingerprint, loaded.fingerprint);

    pg.execute("UPDATE ratings SET rating = 5 WHERE user_id = 'u1' AND item_id = 101");
    let changed = db.load().unwrap();
    assert_ne!(changed.fingerprint, loaded.fingerprint);
    let s = &changed.snapshot;
    let (u, l) = (s.users.index("u1").unwrap(), s.items.index("101").unwrap());
    assert_eq!(s.ratings.get(u, l as u32), Some(5.0));
}

#[test]
fn a_re_rating_keeps_the_latest_or_is_refused_naming_both_rows() {
    let Some(pg) = Postgres::start() else { return };
    pg.execute(TABLE);
    // u1 rates 7 twice: the later row carries the earlier time.
    let csv = "u1,7,2.5,2024-03-02 00:00:00+00\nu2,7,4,2024-03-01 00:00:00+00\n\
               u1,7,4.5,2024-03-01 00:00:00+00\nu2,8,1,\n";
    pg.copy_csv("ratings", csv);
    let value = |s: &Source| {
        let loaded = s.load().unwrap();
        let snap = loaded.snapshot;
        let (u, l) = (
            snap.users.index("u1").unwrap(),
            snap.items.index("7").unwrap(),
        );
        (snap.ratings.get(u, l as u32).unwrap(), snap.replaced)
    };
    let with_time = "SELECT user_id, item_id, rating, rated_at FROM ratings";
    let without = "SELECT user_id, item_id, rating FROM ratings";
    assert_eq!(value(&source(&pg, with_time, Duplicates::Latest)), (2.5, 1));
    assert_eq!(value(&source(&pg, without, Duplicates::Latest)), (4.5, 1));
    let err = source(&pg, with_time, Duplicates::Error)
        .load()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            SourceError::Postgres(PostgresError::Duplicate { row: 3, first_row: 1, user, item })
                if user == "u1" && item == "7"
        ),
        "{err}"
    );
}

/// `mixrec serve` on `url` and `query`: waits for its exit and returns its status and stderr.
fn serve_fails(url: &str, query: &str) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mixrec"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("MIXREC__MODELS__DIR", "")
        .env("MIXREC__SNAPSHOT__POSTGRES", url)
        .env("MIXREC__SNAPSHOT__QUERY", query)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap(); // by pid
            panic!("mixrec serve still running on a failing source");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

/// The four failures: (what, URL, query, what the message says).
fn failures(pg: &Postgres) -> Vec<(&'static str, String, &'static str, &'static str)> {
    let refused = format!(
        "postgres://mixrec:{PASSWORD}@127.0.0.1:{}/postgres",
        free_port()
    );
    let wrong_pw = pg.url().replace(PASSWORD, "not-the-password");
    let ok = "SELECT user_id, item_id, rating FROM ratings";
    vec![
        ("refused", refused, ok, "Connection refused"),
        ("password", wrong_pw, ok, "password authentication failed"),
        (
            "types",
            pg.url(),
            "SELECT user_id, item_id, rating::text FROM ratings",
            "column 3 (rating) is of type text; expected int2, int4, int8, float4, float8 or numeric",
        ),
        (
            "null",
            pg.url(),
            "SELECT user_id, item_id, NULLIF(rating, 3.5) FROM ratings",
            "rating is NULL",
        ),
    ]
}

#[test]
fn each_failing_source_stops_the_start_up_with_one_clear_line() {
    let Some(pg) = Postgres::start() else { return };
    pg.execute(TABLE);
    pg.copy_csv("ratings", &rows());
    // The first row rated 3.5, 1-based, in the order the rows were written.
    let null_row = rows()
        .lines()
        .position(|l| l.split(',').nth(2) == Some("3.5"))
        .unwrap()
        + 1;
    for (what, url, query, says) in failures(&pg) {
        let (code, stderr) = serve_fails(&url, query);
        assert_eq!(code, Some(1), "{what}: {stderr}");
        let last = stderr.lines().last().unwrap_or("");
        assert!(
            last.starts_with("mixrec: no model to serve"),
            "{what}: {stderr}"
        );
        assert!(last.contains("postgres: "), "{what}: {last}");
        assert!(last.contains(says), "{what}: {last}");
        assert!(
            !stderr.contains(PASSWORD),
            "{what}: the password shows: {stderr}"
        );
        if what == "null" {
            assert!(
                last.contains(&format!("row {null_row}: rating is NULL")),
                "{last}"
            );
        }
    }
}

/// `POST /admin/retrain`; the job as it ended.
fn retrain_ends(addr: &str) -> serde_json::Value {
    let mut s = connect(addr);
    write!(
        s,
        "POST /admin/retrain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    )
    .unwrap();
    let r = read_reply(&mut s);
    assert_eq!(r.status, 202, "{:?}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_u64().unwrap();
    poll(|| {
        let j = get_with_token(addr, &format!("/admin/jobs/{id}"), TOKEN).json();
        (j["state"] != "running" && j["state"] != "queued").then_some(j)
    })
}

#[test]
fn a_failing_retrain_leaves_the_model_serving_and_says_why() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    pg.execute(TABLE);
    let csv = rows();
    pg.copy_csv("ratings", &csv);
    // One re-rating per tenth user, counted in /v1/model.
    let again: String = csv.lines().step_by(10).map(|l| format!("{l}\n")).collect();
    pg.copy_csv("ratings", &again);
    let url = pg.url();
    let env = [
        ("MIXREC__SNAPSHOT__POSTGRES", url.as_str()),
        ("MIXREC_ADMIN_TOKEN", TOKEN),
        ("MIXREC__TRAINING__K", "2"),
        ("MIXREC__TRAINING__HOLDOUT", "0"),
        ("MIXREC__TRAINING__MAX_ITER", "20"),
    ];
    let server = Server::start(&[], &env);
    server.wait_ready();
    let model = get(&server.addr, "/v1/model").json();
    assert_eq!(model["version"], 1);
    assert_eq!(model["snapshot"]["path"], pg.url_without_password());
    assert_eq!(model["snapshot"]["duplicates"], "latest");
    assert_eq!(model["snapshot"]["replaced"], again.lines().count());
    assert_eq!(model["n_ratings"], csv.lines().count());

    let steps: [(&str, &str, &str); 3] = [
        (
            "INSERT INTO ratings VALUES ('u1', 100, NULL, NULL)",
            "rating is NULL",
            "DELETE FROM ratings WHERE rating IS NULL",
        ),
        (
            "ALTER TABLE ratings ALTER rating TYPE text",
            "column 3 (rating) is of type text",
            "ALTER TABLE ratings ALTER rating TYPE numeric(3,1) USING rating::numeric",
        ),
        (
            "ALTER ROLE mixrec PASSWORD 'changed-pw'",
            "password authentication failed",
            "ALTER ROLE mixrec PASSWORD 'it-pw-4f9c'",
        ),
    ];
    for (break_it, says, mend) in steps {
        pg.execute(break_it);
        let job = retrain_ends(&server.addr);
        assert_eq!(job["state"], "failed", "{break_it}: {job}");
        let error = job["error"].as_str().unwrap();
        assert!(error.contains(says), "{break_it}: {error}");
        assert!(!error.contains(PASSWORD), "{error}");
        assert_eq!(get(&server.addr, "/v1/model").json()["version"], 1);
        mend_with(&pg, break_it, mend);
    }
    pg.stop();
    let job = retrain_ends(&server.addr);
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("Connection refused"), "{error}");
    assert_eq!(get(&server.addr, "/v1/model").json()["version"], 1);
    pg.resume();
    let job = retrain_ends(&server.addr);
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(get(&server.addr, "/v1/model").json()["version"], 2);
}

/// Runs `mend`; after a password change the test logs in with the changed one.
fn mend_with(pg: &Postgres, broke: &str, mend: &str) {
    if !broke.contains("PASSWORD") {
        return pg.execute(mend);
    }
    let url = pg.url().replace(PASSWORD, "changed-pw");
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client.batch_execute(mend).unwrap();
}

#[test]
fn sigterm_during_a_slow_query_is_not_held_hostage() {
    let Some(pg) = Postgres::start() else { return };
    pg.execute(TABLE);
    pg.copy_csv("ratings", &rows());
    // The server sends nothing for a minute: only a cancelled query ends sooner.
    let slow = "SELECT user_id, item_id, rating FROM ratings, pg_sleep(60)";
    let url = pg.url();
    let env = [
        ("MIXREC__SNAPSHOT__POSTGRES", url.as_str()),
        ("MIXREC__SNAPSHOT__QUERY", slow),
        ("MIXREC__SERVER__SHUTDOWN_DELAY_MS", "0"),
    ];
    let server = Server::start(&[], &env);
    // The start-up job is reading: the query is running on the server.
    poll(|| {
        let mut c = pg.client();
        let q = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%pg_sleep%'";
        (c.query_one(q, &[]).unwrap().get::<_, i64>(0) > 0).then_some(())
    });
    let sent = Instant::now();
    server.signal("TERM");
    let (_, log) = server.exit();
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(20), "{took:?}: {log}");
    // And the server no longer runs it.
    let mut c = pg.client();
    let q = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%pg_sleep%'";
    let running: i64 = poll(|| {
        let n: i64 = c.query_one(q, &[]).unwrap().get(0);
        (n == 0).then_some(n)
    });
    assert_eq!(running, 0);
}

const FEEDBACK_TOKEN: &str = "feedback-token";

/// `POST path` with a JSON `body` and, if given, a bearer token.
fn post(addr: &str, path: &str, token: Option<&str>, body: &str) -> crate::process::Reply {
    let mut s = connect(addr);
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_reply(&mut s)
}

/// `{"ratings": {...}}` of `pairs`.
fn ratings_body(pairs: &[(String, f64)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(i, x)| (i.clone(), (*x).into()))
        .collect();
    serde_json::json!({ "ratings": map }).to_string()
}

/// The recommended item ids for `user`.
fn recommended(addr: &str, user: &str) -> Vec<String> {
    let r = get(addr, &format!("/v1/users/{user}/recommendations?n=10"));
    assert_eq!(
        r.status,
        200,
        "{user}: {}",
        String::from_utf8_lossy(&r.body)
    );
    let items = r.json()["items"].as_array().unwrap().clone();
    items
        .iter()
        .map(|i| i["item"].as_str().unwrap().to_owned())
        .collect()
}

/// 1 M ratings in two tastes: 10 000 users, each rating 50 of the 100 `a` items and 50 of the
/// 100 `b` items; even users like `a` (4 or 5) and dislike `b` (1 or 2), odd users the other
/// way round.
const TWO_TASTES: &str = "
    CREATE TABLE ratings (user_id text, item_id text, rating real, PRIMARY KEY (user_id, item_id));
    INSERT INTO ratings
    SELECT 'u' || u,
           g || lpad(((CASE g WHEN 'a' THEN u * 7 ELSE u * 11 END + 3 * j) % 100)::text, 3, '0'),
           CASE WHEN (g = 'a') = (u % 2 = 0) THEN 4 + (u + j) % 2 ELSE 1 + (u * j) % 2 END
    FROM generate_series(0, 9999) u, generate_series(0, 49) j, (VALUES ('a'), ('b')) t(g);
";

#[test]
fn feedback_reaches_the_next_recommendations_and_the_table_survives_kill_9() {
    let Some(pg) = Postgres::start() else { return };
    pg.execute(TWO_TASTES);
    let mut c = pg.client();
    let count: i64 = c
        .query_one("SELECT count(*) FROM ratings", &[])
        .unwrap()
        .get(0);
    assert_eq!(count, 1_000_000);
    let url = pg.url();
    let env = [
        ("MIXREC__SNAPSHOT__POSTGRES", url.as_str()),
        ("MIXREC__FEEDBACK__ENABLED", "true"),
        ("MIXREC__FEEDBACK__TOKEN", FEEDBACK_TOKEN),
        ("MIXREC_ADMIN_TOKEN", TOKEN),
        ("MIXREC__TRAINING__K", "2"),
        ("MIXREC__TRAINING__HOLDOUT", "0"),
        ("MIXREC__TRAINING__MAX_ITER", "30"),
    ];
    let server = Server::start(&[], &env);
    server.wait_ready();
    let addr = server.addr.clone();
    assert_eq!(get(&addr, "/v1/model").json()["n_ratings"], 1_000_000);
    let taste = |items: &[String]| -> Option<char> {
        let first = items.first()?.chars().next()?;
        items.iter().all(|i| i.starts_with(first)).then_some(first)
    };
    // The data separates, and the model sees it: each taste is recommended its own items.
    assert_eq!(taste(&recommended(&addr, "u0")), Some('a'));
    assert_eq!(taste(&recommended(&addr, "u1")), Some('b'));

    // A new user who loves five `a` items and hates five `b` items.
    let loves: Vec<(String, f64)> = (0..5)
        .map(|i| (format!("a{i:03}"), 5.0))
        .chain((0..5).map(|i| (format!("b{i:03}"), 1.0)))
        .collect();
    let path = "/v1/users/newbie/ratings";
    get(&addr, "/v1/users/newbie/recommendations").assert_problem(404, "unknown-user");
    post(&addr, path, None, &ratings_body(&loves)).assert_problem(401, "unauthorized");
    let unknown = [("a000".to_owned(), 5.0), ("zzz".to_owned(), 3.0)];
    let r = post(&addr, path, Some(FEEDBACK_TOKEN), &ratings_body(&unknown));
    r.assert_problem(400, "unknown-items");
    assert!(r.json()["detail"].as_str().unwrap().contains("zzz"));
    let stored = |c: &mut postgres::Client, user: &str| -> Vec<(String, f32)> {
        let q = "SELECT item_id, rating FROM ratings WHERE user_id = $1 ORDER BY item_id";
        let rows = c.query(q, &[&user]).unwrap();
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    assert!(
        stored(&mut c, "newbie").is_empty(),
        "nothing is written on a 400"
    );

    let r = post(&addr, path, Some(FEEDBACK_TOKEN), &ratings_body(&loves));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["written"], 10);
    assert_eq!(r.json()["known"], false);
    let recs = recommended(&addr, "newbie");
    assert_eq!(taste(&recs), Some('a'), "{recs:?}");
    assert!(
        recs.iter().all(|i| !loves.iter().any(|(l, _)| l == i)),
        "{recs:?}"
    );

    // A `b` user turns: every rating they have is upserted the other way round.
    let turned: Vec<(String, f64)> = stored(&mut c, "u1")
        .into_iter()
        .map(|(i, _)| {
            let x = if i.starts_with('a') { 5.0 } else { 1.0 };
            (i, x)
        })
        .collect();
    assert_eq!(turned.len(), 100);
    let r = post(
        &addr,
        "/v1/users/u1/ratings",
        Some(FEEDBACK_TOKEN),
        &ratings_body(&turned),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(taste(&recommended(&addr, "u1")), Some('a'));

    // A retrain reads them back from the table: the new model knows the new user.
    let job = retrain_ends(&addr);
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(get(&addr, "/v1/model").json()["n_ratings"], 1_000_010);
    assert_eq!(taste(&recommended(&addr, "newbie")), Some('a'));
    assert_eq!(taste(&recommended(&addr, "u1")), Some('a'));

    // SIGKILL right after a 200: the ratings are in the table all the same.
    let last = [("b010".to_owned(), 4.5), ("a010".to_owned(), 2.0)];
    let r = post(
        &addr,
        "/v1/users/late/ratings",
        Some(FEEDBACK_TOKEN),
        &ratings_body(&last),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    server.signal("KILL");
    let (status, _) = server.exit();
    assert_eq!(status.code(), None, "killed by a signal");
    let want = vec![("a010".to_owned(), 2.0f32), ("b010".to_owned(), 4.5)];
    assert_eq!(stored(&mut pg.client(), "late"), want);
}

#[test]
fn feedback_with_a_file_source_is_a_read_only_conflict() {
    let server = Server::start(&[], &[("MIXREC__TRAINING__K", "2")]);
    server.wait_ready();
    let body = ratings_body(&[("m001".to_owned(), 4.0)]);
    let r = post(&server.addr, "/v1/users/u0001/ratings", None, &body);
    r.assert_problem(409, "read-only-source");
}

#[test]
fn a_scheduled_retrain_waits_for_enough_posted_ratings() {
    let Some(pg) = Postgres::start() else { return };
    pg.execute(
        "CREATE TABLE ratings (user_id text, item_id int4, rating numeric(3,1), \
         rated_at timestamptz, PRIMARY KEY (user_id, item_id))",
    );
    pg.copy_csv("ratings", &rows());
    let url = pg.url();
    let env = [
        ("MIXREC__SNAPSHOT__POSTGRES", url.as_str()),
        ("MIXREC__FEEDBACK__ENABLED", "true"),
        (
            "MIXREC__FEEDBACK__COLUMNS",
            "[\"user_id\", \"item_id\", \"rating\", \"rated_at\"]",
        ),
        ("MIXREC__TRAINING__K", "2"),
        ("MIXREC__TRAINING__RETRAIN_INTERVAL", "1s"),
        ("MIXREC__TRAINING__RETRAIN_MIN_NEW_RATINGS", "3"),
        ("MIXREC_ADMIN_TOKEN", TOKEN),
        // On 3 000 ratings the serving model, scored on held-out ratings it was trained on,
        // is 15 % ahead of any retrain (see the report): not what this test is about.
        ("MIXREC__MODELS__QUALITY_GATE", "1"),
    ];
    let server = Server::start(&[], &env);
    server.wait_ready();
    let version = || {
        get(&server.addr, "/v1/model").json()["version"]
            .as_u64()
            .unwrap()
    };
    // Three ticks with nothing posted: nothing trains.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(version(), 1);
    let two = [("100".to_owned(), 4.5), ("101".to_owned(), 4.0)];
    let r = post(
        &server.addr,
        "/v1/users/fresh/ratings",
        None,
        &ratings_body(&two),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(version(), 1, "two of three ratings");
    let one = [("102".to_owned(), 1.0)];
    let r = post(
        &server.addr,
        "/v1/users/fresh/ratings",
        None,
        &ratings_body(&one),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Job 1 was the start-up: the first scheduled retrain is job 2.
    let job = poll(|| {
        let j = get_with_token(&server.addr, "/admin/jobs/2", TOKEN);
        let j = (j.status == 200).then(|| j.json())?;
        (j["state"] != "running" && j["state"] != "queued").then_some(j)
    });
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(version(), 2);
    let model = get(&server.addr, "/v1/model").json();
    assert_eq!(model["n_ratings"], rows().lines().count() + 3);
    // The timestamp column is set by the write.
    let mut c = pg.client();
    let stamped: i64 = c
        .query_one(
            "SELECT count(rated_at) FROM ratings WHERE user_id = 'fresh'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(stamped, 3);
    // The schedule goes on, and with nothing new posted it starts nothing more.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(version(), 2);
}
