//! The demo page and the widget in a real browser: Debian's Chromium, driven through its
//! ChromeDriver (WebDriver, with fantoccini) against the live binary on a free loopback port.
//!
//! - a new visitor gets recommendations at once (for no ratings) and the onboarding questions,
//!   the API's own for what the page holds; "don't know" drops a question, an answer moves
//!   both lists, and once the posterior is sure of one type the questions give way;
//! - the recommendations are best first, the same ones the API gives for the ratings the page
//!   shows; rating a recommended item (a click, then a key) changes them and excludes it; the
//!   page fits a phone's width; the browser logs no error;
//! - the widget renders the API's top N on a page of another origin that `server.cors_origins`
//!   allows, and is refused by the browser's CORS check on one it does not.
//!
//! Screenshots go to `target/tmp/browser/`. Without `/usr/bin/chromium` and
//! `/usr/bin/chromedriver` the test skips and says so, unless `MIXREC_REQUIRE_BROWSER=1` (CI),
//! which turns their absence into a failure. Every process it starts is killed on drop, also
//! when an assertion fails half-way.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::process::Server;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Deadline of each wait in the browser: only there so a broken page fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);
/// The profile the third-party pages embed.
const WIDGET_RATINGS: &str = r#"{"m001": 5, "m017": 2}"#;
const WIDGET_N: usize = 3;

/// Whether the browser is here; panics when it is not and `MIXREC_REQUIRE_BROWSER=1`.
fn browser_available() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).is_file())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var("MIXREC_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "MIXREC_REQUIRE_BROWSER=1 but {} missing (apt-get install chromium chromium-driver)",
        missing.join(" and ")
    );
    // Straight to stderr: the harness captures `eprintln!`, and a skip must be visible.
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let line = format!(
        "skipped {test}: {} not installed (apt-get install chromium chromium-driver)\n",
        missing.join(" and ")
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    false
}

/// ChromeDriver in a process group of its own, so that dropping it kills the Chromium it
/// started as well (by that group's id, which is ChromeDriver's pid).
struct Driver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
    reader: Option<JoinHandle<()>>,
}

impl Driver {
    fn start() -> Self {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining its output so it never blocks on a full pipe.
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.split("started successfully on port ").nth(1) {
                    let _ = tx.send(port.trim_end_matches('.').to_owned());
                }
            }
        });
        let port = rx
            .recv_timeout(PATIENCE)
            .expect("chromedriver says its port");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile: tempfile::tempdir().unwrap(),
            reader: Some(reader),
        }
    }

    /// A session in a fresh headless Chromium with its own empty profile, told not to reach
    /// for the network by itself.
    async fn session(&self) -> Client {
        let profile = format!("--user-data-dir={}", self.profile.path().display());
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", profile,
                    "--window-size=1280,1900", "--hide-scrollbars",
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let http = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(http)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a WebDriver session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let killed = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !killed {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// A tiny web server on its own loopback port: the "third-party" site. Answers every request
/// with one page; stops on drop.
struct Site {
    origin: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Site {
    fn bind() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        (listener, origin)
    }

    fn serve(listener: TcpListener, origin: String, page: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(s) = stream {
                    answer(s, &page);
                }
            }
        });
        Self {
            origin,
            stop,
            thread: Some(thread),
        }
    }
}

/// Reads a request head and answers with `page` (HTML), closing the connection.
fn answer(mut s: TcpStream, page: &str) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.origin.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A shop's page with the README's snippet pointing at `mixrec`.
fn shop_page(mixrec: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>A shop</title>\
         </head><body><h1>A shop on another origin</h1><p>You may also like:</p>\
         <div id=\"recs\" data-mixrec-endpoint=\"{mixrec}\" data-mixrec-ratings='{WIDGET_RATINGS}' \
         data-mixrec-n=\"{WIDGET_N}\">(recommendations)</div>\
         <script src=\"{mixrec}/widget.js\" defer></script></body></html>"
    )
}

/// ChromeDriver's browser console since the last call (`goog:loggingPrefs`).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({ "type": "browser" }).to_string();
        (axum::http::Method::POST, Some(body))
    }
}

/// The console messages since the last call, as text.
async fn console(c: &Client) -> Vec<String> {
    let entries = c.issue_cmd(BrowserLog).await.expect("the browser log");
    entries
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| format!("{} {}", e["level"], e["message"]))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `script` until it returns something other than `null`/`false`; returns that.
async fn until(c: &Client, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let v = c.execute(script, vec![]).await.expect("the script runs");
        if !(v.is_null() || v == json!(false)) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The probability of the likeliest type at which the page stops asking (`SURE` in demo.js).
const SURE: f64 = 0.9;

/// What the demo page shows, read in one script once no update is in flight.
const PAGE_STATE: &str = r#"
const recs = document.getElementById('recs');
if (recs.getAttribute('aria-busy') !== 'false') return null;
if (document.getElementById('start-body').getAttribute('aria-busy') === 'true') return null;
const ratings = {};
for (const row of document.querySelectorAll('#mine [data-rated]')) {
  ratings[row.dataset.rated] = Number(row.querySelector('input:checked, input[type=range]').value);
}
return {
  recs: [...recs.querySelectorAll('[data-item]')].map((e) => e.dataset.item),
  predicted: [...recs.querySelectorAll('[data-item] .pred b')].map((e) => Number(e.textContent)),
  spreads: [...recs.querySelectorAll('[data-item] .spread .band')].length,
  ratings,
  types: [...document.querySelectorAll('#why [data-type]')].map((e) => Number(e.dataset.type)),
  model: document.getElementById('model').textContent,
  status: document.getElementById('status').textContent,
  questions: [...document.querySelectorAll('#questions [data-question]')].map((e) => e.dataset.question),
  sure: document.getElementById('sure') ? document.getElementById('sure').textContent : null,
};
"#;

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect()
}

/// The JSON answer of `POST url` with `body`.
async fn post_json(http: &reqwest::Client, url: String, body: Value) -> Value {
    let reply = http.post(url).json(&body).send().await.unwrap();
    reply.json().await.unwrap()
}

/// The ids of an answer's `items`, in order.
fn item_ids(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap().to_owned())
        .collect()
}

/// The API's own top `n` for `ratings`, as ids.
async fn api_top(http: &reqwest::Client, base: &str, ratings: &Value, n: usize) -> Vec<String> {
    let body = json!({ "ratings": ratings, "n": n });
    item_ids(&post_json(http, format!("{base}/v1/recommend"), body).await)
}

/// The API's own onboarding questions for `ratings` (default n), as ids, and its posterior's
/// top probability.
async fn api_questions(
    http: &reqwest::Client,
    base: &str,
    ratings: &Value,
    exclude: &[String],
) -> (Vec<String>, f64) {
    let body = json!({ "ratings": ratings, "exclude": exclude });
    let answer = post_json(http, format!("{base}/v1/onboarding"), body).await;
    (
        item_ids(&answer),
        answer["posterior"][0]["probability"].as_f64().unwrap(),
    )
}

/// The whole star the model expects for `item` from `ratings`: how the likeliest user answers.
async fn expected_star(http: &reqwest::Client, base: &str, ratings: &Value, item: &str) -> i64 {
    let body = json!({ "ratings": ratings, "items": [item] });
    let answer = post_json(http, format!("{base}/v1/complete"), body).await;
    (answer["items"][0]["rating"].as_f64().unwrap().round() as i64).clamp(1, 5)
}

/// Waits for the page to settle with `ratings` and `unknown` not among its questions.
async fn settled(c: &Client, what: &str, ratings: &Value, unknown: &[String]) -> Value {
    let script = format!(
        "const s = (() => {{ {PAGE_STATE} }})(); const want = {ratings}; const gone = {unknown};          if (!s || JSON.stringify(Object.keys(s.ratings).sort()) !== JSON.stringify(Object.keys(want).sort())) return null;          if (Object.keys(want).some((k) => s.ratings[k] !== want[k])) return null;          return s.questions.some((q) => gone.includes(q) || q in want) ? null : s;",
        unknown = json!(unknown),
    );
    until(c, what, &script).await
}

async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, c.screenshot().await.expect("a screenshot")).unwrap();
    path
}

#[tokio::test]
async fn the_demo_page_and_the_widget_work_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    let started = Instant::now();
    // The two third-party sites first: the allowed one's origin goes into the server's config.
    let (allowed_listener, allowed_origin) = Site::bind();
    let (refused_listener, refused_origin) = Site::bind();
    let cors = format!("[\"{allowed_origin}\"]");
    let server = Server::start(&[], &[("MIXREC__SERVER__CORS_ORIGINS", &cors)]);
    server.wait_ready();
    let base = format!("http://{}", server.addr);
    let _allowed = Site::serve(allowed_listener, allowed_origin.clone(), shop_page(&base));
    let _refused = Site::serve(refused_listener, refused_origin.clone(), shop_page(&base));
    let driver = Driver::start();
    let c = driver.session().await;
    let http = reqwest::Client::new();

    onboarding(&c, &http, &base).await;
    demo_page(&c, &http, &base).await;
    widget(&c, &http, &base, &allowed_origin, &refused_origin).await;

    c.close().await.expect("the session closes");
    let line = format!("browser test took {:.1?}\n", started.elapsed());
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A new visitor: the questions, "don't know", answers, and the switch to recommendations.
async fn onboarding(c: &Client, http: &reqwest::Client, base: &str) {
    c.goto(&format!("{base}/")).await.unwrap();
    let first = until(c, "questions on load", PAGE_STATE).await;
    screenshot(c, "demo-questions.png").await;
    // No ratings: the recommendations and the questions are the API's for an empty profile.
    let none = json!({});
    assert!(first["ratings"].as_object().unwrap().is_empty(), "{first}");
    assert_eq!(ids(&first["recs"]), api_top(http, base, &none, 10).await);
    let asked = ids(&first["questions"]);
    assert_eq!(asked.len(), 5, "{first}");
    assert_eq!(asked, api_questions(http, base, &none, &[]).await.0);

    // "Don't know" the first question: it goes, and the rest are the API's without it.
    let unknown = vec![asked[0].clone()];
    let button = format!("#questions [data-question=\"{}\"] .unknown", asked[0]);
    c.find(Locator::Css(&button))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let s = settled(c, "questions after don't know", &none, &unknown).await;
    assert_eq!(
        ids(&s["questions"]),
        api_questions(http, base, &none, &unknown).await.0
    );

    // Answer the first question each time as the likeliest user would, by clicking its star,
    // until the page is sure (at most ten answers): every list is the API's for the answers.
    let mut ratings = serde_json::Map::new();
    let mut s = s;
    for answers in 1..=10 {
        let q = ids(&s["questions"])[0].clone();
        let star = expected_star(http, base, &Value::Object(ratings.clone()), &q).await;
        let label = format!("#questions [data-question=\"{q}\"] .stars label:nth-of-type({star})");
        c.find(Locator::Css(&label))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        ratings.insert(q, json!(star));
        let want = Value::Object(ratings.clone());
        s = settled(
            c,
            &format!("the page after {answers} answers"),
            &want,
            &unknown,
        )
        .await;
        assert_eq!(ids(&s["recs"]), api_top(http, base, &want, 10).await);
        let (questions, top) = api_questions(http, base, &want, &unknown).await;
        if top >= SURE {
            assert!(s["questions"].as_array().unwrap().is_empty(), "{s}");
            assert!(s["sure"].as_str().unwrap().contains("likely"), "{s}");
            break;
        }
        assert_eq!(ids(&s["questions"]), questions, "after {answers} answers");
        assert!(s["sure"].is_null(), "{s}");
    }
    assert!(
        s["sure"].is_string(),
        "not sure of a type after ten answers: {s}"
    );
    screenshot(c, "demo-sure.png").await;

    // Starting over asks again, from nothing.
    c.find(Locator::Id("clear"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let again = settled(c, "questions after starting over", &none, &[]).await;
    assert_eq!(ids(&again["questions"]), asked);
}

async fn demo_page(c: &Client, http: &reqwest::Client, base: &str) {
    c.goto(&format!("{base}/")).await.unwrap();
    let first = until(c, "recommendations on load", PAGE_STATE).await;
    screenshot(c, "demo.png").await;

    // The page's list is the API's answer for the ratings it shows.
    let recs = ids(&first["recs"]);
    let starter = first["ratings"].as_object().unwrap().clone();
    assert_eq!(recs.len(), 10, "{first}");
    assert_eq!(recs, api_top(http, base, &first["ratings"], 10).await);
    assert!(recs.iter().all(|id| !starter.contains_key(id)), "{first}");
    // Best first, each with its spread; the posterior and the model figures are there.
    let predicted: Vec<f64> = first["predicted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(predicted.windows(2).all(|w| w[0] >= w[1]), "{predicted:?}");
    assert!(predicted.iter().all(|x| (1.0..=5.0).contains(x)));
    assert_eq!(first["spreads"], 10);
    assert!(!first["types"].as_array().unwrap().is_empty(), "{first}");
    let shown = first["model"].as_str().unwrap();
    let info: Value = http
        .get(format!("{base}/v1/model"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rmse = info["heldout_rmse"]
        .as_f64()
        .expect("the demo holds ratings out");
    for figure in [
        format!("Version{}", info["version"]),
        format!("Types (K){}", info["k"]),
        format!("Held-out RMSE{rmse:.3}"),
        "Scale1 to 5 in steps of 1".to_owned(),
    ] {
        assert!(shown.contains(&figure), "{figure:?} not in {shown:?}");
    }

    // A click on the first (lowest) star of the top recommendation rates it 1.
    let top = recs[0].clone();
    let star = format!("#recs [data-item=\"{top}\"] .stars label");
    c.find(Locator::Css(&star))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let script = format!(
        "const s = (() => {{ {PAGE_STATE} }})(); \
         return s && !s.recs.includes('{top}') && s.ratings['{top}'] === 1 ? s : null;"
    );
    let rated = until(c, "recommendations after a click", &script).await;
    let after = ids(&rated["recs"]);
    assert_ne!(after, recs);
    assert_eq!(after, api_top(http, base, &rated["ratings"], 10).await);
    assert_eq!(
        rated["ratings"].as_object().unwrap().len(),
        starter.len() + 1
    );

    // The keyboard: focus followed the item to "Your ratings"; the right arrow makes it 2.
    let focused = c.active_element().await.unwrap();
    assert_eq!(
        focused.attr("type").await.unwrap().as_deref(),
        Some("radio")
    );
    focused
        .send_keys(&char::from(fantoccini::key::Key::Right).to_string())
        .await
        .unwrap();
    let script = format!(
        "const s = (() => {{ {PAGE_STATE} }})(); return s && s.ratings['{top}'] === 2 ? s : null;"
    );
    let keyed = until(c, "recommendations after a key", &script).await;
    assert_eq!(
        ids(&keyed["recs"]),
        api_top(http, base, &keyed["ratings"], 10).await
    );
    screenshot(c, "demo-rated.png").await;

    // Search narrows the catalogue to matching titles.
    let search = c.find(Locator::Id("search")).await.unwrap();
    search.send_keys("no such title at all").await.unwrap();
    until(
        c,
        "an empty search",
        "return document.querySelectorAll('#catalogue li').length === 0 \
         && document.getElementById('cat-count').textContent.startsWith('0 matches')",
    )
    .await;

    // A phone's width: one column, nothing wider than the screen.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{base}/")).await.unwrap();
    until(c, "recommendations on a phone", PAGE_STATE).await;
    let overflow = c
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "wider than the phone by {overflow}px"
    );
    screenshot(c, "demo-phone.png").await;
    c.set_window_size(1280, 1900).await.unwrap();

    // No script error, no policy violation, no failed request on the way.
    let log = console(c).await;
    assert!(log.iter().all(|l| !l.contains("SEVERE")), "{log:#?}");
}

async fn widget(
    c: &Client,
    http: &reqwest::Client,
    base: &str,
    allowed_origin: &str,
    refused_origin: &str,
) {
    let state = "const d = document.getElementById('recs'); \
                 const s = d.getAttribute('data-mixrec-state'); \
                 return s === 'ready' || s === 'error' ? { state: s, error: d.getAttribute('data-mixrec-error'), \
                   items: [...d.querySelectorAll('[data-item]')].map((e) => e.dataset.item) } : null;";
    let ratings: Value = serde_json::from_str(WIDGET_RATINGS).unwrap();

    c.goto(&format!("{allowed_origin}/")).await.unwrap();
    let allowed = until(c, "the widget on an allowed origin", state).await;
    screenshot(c, "widget-allowed.png").await;
    assert_eq!(allowed["state"], "ready", "{allowed}");
    assert_eq!(
        ids(&allowed["items"]),
        api_top(http, base, &ratings, WIDGET_N).await
    );
    let log = console(c).await;
    assert!(log.iter().all(|l| !l.contains("SEVERE")), "{log:#?}");

    c.goto(&format!("{refused_origin}/")).await.unwrap();
    let refused = until(c, "the widget on a refused origin", state).await;
    screenshot(c, "widget-refused.png").await;
    assert_eq!(refused["state"], "error", "{refused}");
    assert!(ids(&refused["items"]).is_empty());
    assert!(
        refused["error"].as_str().unwrap().contains("cors_origins"),
        "{refused}"
    );
    // The browser says why: the preflight of the JSON POST got no Access-Control-Allow-Origin.
    let log = console(c).await;
    assert!(
        log.iter()
            .any(|l| l.contains("blocked by CORS policy") && l.contains(refused_origin)),
        "{log:#?}"
    );
}
