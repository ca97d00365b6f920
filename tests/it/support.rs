//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The folder of the seed's data sets, or `None` (with a message) when it is absent and not
/// required. Panics when `MIXREC_REQUIRE_SHARED_DATA=1` and the folder is missing.
pub fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("MIXREC_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.join("netflix_incomplete.txt").is_file() {
        return Some(dir);
    }
    let required = std::env::var("MIXREC_REQUIRE_SHARED_DATA").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "MIXREC_REQUIRE_SHARED_DATA=1 but {} holds no data sets",
        dir.display()
    );
    // Straight to stderr: the harness captures `eprintln!`, and a skip must be visible.
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let line = format!(
        "skipped {test}: the seed's data sets are not at {} (set MIXREC_SHARED_DATA)\n",
        dir.display()
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    None
}

/// The reference figures, `../shared/reference/seed-figures.json` beside the data folder.
pub fn seed_figures(data: &std::path::Path) -> serde_json::Value {
    let path = data.join("../reference/seed-figures.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("seed-figures.json is JSON")
}

/// `|a − b| ≤ rel · |b|`, with a message naming what was compared.
#[track_caller]
pub fn assert_rel(what: &str, a: f64, b: f64, rel: f64) {
    let err = (a - b).abs() / b.abs().max(f64::MIN_POSITIVE);
    assert!(
        err <= rel,
        "{what}: got {a}, expected {b} (relative error {err:.3e} > {rel:e})"
    );
}

/// Settings for in-process service tests: the shipped defaults, an admin token, and `edit`.
pub fn service_settings(
    edit: impl FnOnce(&mut mixrec::config::Settings),
) -> mixrec::config::Settings {
    use figment::Figment;
    use figment::providers::{Format, Toml};
    let figment = Figment::from(Toml::string(mixrec::config::DEFAULT_TOML))
        .merge(("server.admin_token", "test-token"));
    let mut s = mixrec::config::Settings::from_figment(figment, &Default::default())
        .expect("shipped defaults load");
    // Quick trainings: tests check plumbing, not model quality.
    s.training.k = mixrec::config::Auto::Is(3);
    s.training.n_init = 1;
    s.training.max_iter = 50;
    // No model files from in-process tests unless a test asks for a store.
    s.models.dir = None;
    edit(&mut s);
    s
}

/// The demo model trained once per test binary (k = 3), shared by the in-process tests.
pub fn demo_model() -> mixrec::serving::ServedModel {
    static MODEL: std::sync::OnceLock<mixrec::serving::ServedModel> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            let training = service_settings(|_| {}).training;
            let mut go = |_: &mixrec::mixture::Progress| std::ops::ControlFlow::Continue(());
            mixrec::serving::train(&mixrec::data::Source::Embedded, &training, 1, &mut go)
                .expect("the demo trains")
        })
        .clone()
}

/// The real `mixrec` binary run with `args`, as a user would; its output, whatever the status.
pub fn mixrec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mixrec"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// [`mixrec`], which must succeed (its stderr is the message otherwise).
pub fn mixrec_ok(args: &[&str]) -> Output {
    let out = mixrec(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
