//! Benchmarks of the engine on the seed's Netflix subset (`../shared/data`, or
//! `MIXREC_SHARED_DATA`): one EM iteration, a whole seed-compatible fit, loading the text
//! matrix, and the per-request work of the service (posterior + top-N for a 20-rating profile).
//!
//! Also loading a 2 M-rating synthetic snapshot (CSV and binary) with its SHA-256 fingerprint,
//! in one pass (`data::load_hashed`, what a snapshot source does) beside the two passes it used
//! to take (load, then hash the file).
//!
//! After the timings, the roofline (`engine/roofline.rs`): the machine's bandwidth and
//! arithmetic peak measured in the same run, and how far each training kernel is from them.
//!
//! `cargo bench --bench engine` (figures in the README); `MIXREC_ROOFLINE_DATA=snapshot` adds
//! that snapshot to the roofline. Without the data set the benchmarks
//! that need it print a message and do nothing.

use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use mixrec::data::Fingerprint;
use sha2::{Digest, Sha256};

use mixrec::data::{self, LoadOptions, Snapshot};
use mixrec::mixture::{self, FitParams, Init, Stepper};

#[path = "engine/roofline.rs"]
mod roofline;

fn main() {
    divan::main();
    if roofline::wanted() {
        let Some(snap) = NETFLIX.as_ref() else { return };
        let synth = data::load(&SYNTH_2M.2, LoadOptions::default()).expect("loads");
        let synth_rows: Vec<usize> = (0..12).map(|i| i * 3331).collect();
        let mut sets = vec![
            ("Netflix subset", &snap.ratings, SEED1_ROWS.to_vec()),
            ("synthetic 2 M", &synth.ratings, synth_rows),
        ];
        // A snapshot of the caller's (the 10 M synthetic of `scripts/scale-bench.sh`, say),
        // started from 12 rows spread over its users.
        let extra = std::env::var_os("MIXREC_ROOFLINE_DATA")
            .map(|p| data::load(Path::new(&p), LoadOptions::default()).expect("loads"));
        if let Some(extra) = &extra {
            let n = extra.ratings.n_users();
            sets.push((
                "MIXREC_ROOFLINE_DATA",
                &extra.ratings,
                (0..12).map(|i| i * n / 12).collect(),
            ));
        }
        roofline::run(&sets);
    }
}

/// Numpy seed 1's rows for K = 12 (seed-figures.json): the README's whole-fit figure.
const SEED1_ROWS: [usize; 12] = [636, 683, 1033, 190, 1083, 283, 817, 314, 537, 664, 239, 135];

fn netflix_path() -> Option<PathBuf> {
    let dir = std::env::var_os("MIXREC_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let path = dir.join("netflix_incomplete.txt");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipped: {} is missing", path.display());
        None
    }
}

static NETFLIX: LazyLock<Option<Snapshot>> = LazyLock::new(|| {
    netflix_path().map(|p| data::load(&p, LoadOptions::default()).expect("loads"))
});

fn seed_params(n_users: usize) -> mixture::ValidParams {
    FitParams::seed_preset(12)
        .init(Init::Rows(SEED1_ROWS.to_vec()))
        .check(n_users)
        .unwrap()
}

/// One EM iteration (E-step + M-step) at K = 12 on 1200 × 1200 with 1.1 M ratings.
#[divan::bench(sample_count = 200)]
fn em_iteration_netflix_k12(bencher: divan::Bencher) {
    let Some(snap) = NETFLIX.as_ref() else { return };
    let params = seed_params(snap.ratings.n_users());
    let start = mixture::rows_as_stored(&snap.ratings, &SEED1_ROWS);
    let mut stepper = Stepper::new(&snap.ratings, &params, start);
    bencher.bench_local(|| divan::black_box(stepper.step()));
}

/// A whole seed-compatible fit at K = 12 from numpy seed 1's rows (27 iterations).
#[divan::bench(sample_count = 20)]
fn fit_seed_netflix_k12(bencher: divan::Bencher) {
    let Some(snap) = NETFLIX.as_ref() else { return };
    let params = seed_params(snap.ratings.n_users());
    bencher.bench(|| {
        mixture::fit(&snap.ratings, &params, &mut |_| ControlFlow::Continue(())).unwrap()
    });
}

/// Parsing the 2.9 MB text matrix.
#[divan::bench(sample_count = 20)]
fn load_netflix_matrix(bencher: divan::Bencher) {
    let Some(path) = netflix_path() else { return };
    bencher.bench(|| data::load(&path, LoadOptions::default()).unwrap());
}

/// A 2 M-rating synthetic snapshot (40,000 users × 4,000 items, 8 types) as CSV (30 MB) and
/// as binary (16 MB), in a temporary directory kept for the run.
static SYNTH_2M: LazyLock<(tempfile::TempDir, PathBuf, PathBuf)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (csv, bin) = (dir.path().join("r2m.csv"), dir.path().join("r2m.bin"));
    let spec = mixrec::synth::SynthSpec {
        users: 40_000,
        items: 4_000,
        ratings: 2_000_000,
        types: 8,
        seed: 3,
    };
    let out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    mixrec::synth::write_snapshot(&spec, mixrec::synth::SynthFormat::Triples, out).unwrap();
    let snap = data::load(&csv, LoadOptions::default()).unwrap();
    let out = std::io::BufWriter::new(std::fs::File::create(&bin).unwrap());
    data::write_binary(out, &snap).unwrap();
    (dir, csv, bin)
});

/// The second pass the fingerprint used to be: SHA-256 of the file in 1 MiB reads.
fn sha256_pass(path: &Path) -> Fingerprint {
    let mut file = std::fs::File::open(path).unwrap();
    let (mut hasher, mut buf) = (Sha256::new(), vec![0u8; 1 << 20]);
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            return Fingerprint::from(hasher);
        }
        hasher.update(&buf[..n]);
    }
}

fn fingerprinted_two_passes(path: &Path) -> (Snapshot, Fingerprint) {
    (
        data::load(path, LoadOptions::default()).unwrap(),
        sha256_pass(path),
    )
}

fn fingerprinted_one_pass(path: &Path) -> (Snapshot, Fingerprint) {
    let guard = data::Guard::NONE;
    let (snap, hasher) = data::load_hashed(path, LoadOptions::default(), guard).unwrap();
    (snap, Fingerprint::from(hasher))
}

/// Loading the 2 M-rating binary snapshot and its fingerprint, as two passes (before).
#[divan::bench(sample_count = 20)]
fn fingerprinted_load_binary_2m_two_passes(bencher: divan::Bencher) {
    let path = &SYNTH_2M.2;
    bencher.bench(|| fingerprinted_two_passes(path));
}

/// The same in one pass, the hash on a second thread (what a snapshot source does now).
#[divan::bench(sample_count = 20)]
fn fingerprinted_load_binary_2m_one_pass(bencher: divan::Bencher) {
    let path = &SYNTH_2M.2;
    assert_eq!(fingerprinted_one_pass(path).1, sha256_pass(path));
    bencher.bench(|| fingerprinted_one_pass(path));
}

/// Loading the 2 M-rating CSV and its fingerprint, as two passes (before).
#[divan::bench(sample_count = 10)]
fn fingerprinted_load_csv_2m_two_passes(bencher: divan::Bencher) {
    let path = &SYNTH_2M.1;
    bencher.bench(|| fingerprinted_two_passes(path));
}

/// The same in one pass.
#[divan::bench(sample_count = 10)]
fn fingerprinted_load_csv_2m_one_pass(bencher: divan::Bencher) {
    let path = &SYNTH_2M.1;
    assert_eq!(fingerprinted_one_pass(path).1, sha256_pass(path));
    bencher.bench(|| fingerprinted_one_pass(path));
}

/// What `POST /v1/recommend` costs the engine with the default model: posterior of a
/// 20-rating profile, then the top 10 of the other 1180 items.
#[divan::bench(sample_count = 1000)]
fn recommend_20_ratings_netflix_k12(bencher: divan::Bencher) {
    let Some(snap) = NETFLIX.as_ref() else { return };
    let params = FitParams::new(12).check(snap.ratings.n_users()).unwrap();
    let go = &mut |_: &mixture::Progress| ControlFlow::Continue(());
    let (_, model) = mixture::train(&snap.ratings, snap.scale, &params, go).unwrap();
    let (items, values) = snap.ratings.row(7);
    let profile: Vec<(u32, f64)> = items
        .iter()
        .zip(values)
        .take(20)
        .map(|(&l, &x)| (l, f64::from(x)))
        .collect();
    let rated: Vec<u32> = profile.iter().map(|p| p.0).collect();
    bencher.bench_local(|| {
        let post = model.posterior(&profile).unwrap();
        divan::black_box(model.recommend(&post, 10, &rated))
    });
}

/// What `POST /v1/onboarding` costs the engine beside it: the same posterior, then the 5 items
/// of highest expected information gain × rating share.
#[divan::bench(sample_count = 1000)]
fn onboarding_20_ratings_netflix_k12(bencher: divan::Bencher) {
    let Some(snap) = NETFLIX.as_ref() else { return };
    let params = FitParams::new(12).check(snap.ratings.n_users()).unwrap();
    let go = &mut |_: &mixture::Progress| ControlFlow::Continue(());
    let (_, model) = mixture::train(&snap.ratings, snap.scale, &params, go).unwrap();
    let model = mixrec::predictor::Predictor::Mixture(model);
    let askable = mixrec::onboard::Askable::new(&snap.ratings, snap.scale);
    let profile = profile_of(snap, 7, 20);
    let rated: Vec<u32> = profile.iter().map(|p| p.0).collect();
    // Prepared once, as a served model is.
    let prepared = model.prepare();
    bencher.bench_local(|| {
        let belief = model.posterior(&profile).unwrap();
        divan::black_box(mixrec::onboard::ask_prepared(
            &model, &prepared, &belief, &profile, &askable, 5, &rated,
        ))
    });
}

/// The low-rank mixture at K = 12, rank 5 (a few EM iterations: enough parameters to time),
/// shared by the two benchmarks below.
static MFA_K12: LazyLock<Option<mixrec::predictor::Predictor>> = LazyLock::new(|| {
    let snap = NETFLIX.as_ref()?;
    let p = mixrec::mfa::MfaParams {
        max_iter: 3,
        n_init: 1,
        ..mixrec::mfa::MfaParams::new(12, 5)
    };
    let go = &mut |_: &mixture::Progress| ControlFlow::Continue(());
    let fit = mixrec::mfa::fit(&snap.ratings, snap.scale, &p, go).unwrap();
    Some(mixrec::predictor::Predictor::Mfa(fit.model))
});

fn profile_of(snap: &Snapshot, user: usize, n: usize) -> Vec<(u32, f64)> {
    let (items, values) = snap.ratings.row(user);
    items
        .iter()
        .zip(values)
        .take(n)
        .map(|(&l, &x)| (l, f64::from(x)))
        .collect()
}

/// Folding a posted 20-rating profile into the low-rank mixture (K = 12, rank 5): the exact
/// E-step, 12 systems of 5 × 5.
#[divan::bench(sample_count = 1000)]
fn mfa_fold_in_20_ratings_netflix_k12(bencher: divan::Bencher) {
    let (Some(snap), Some(model)) = (NETFLIX.as_ref(), MFA_K12.as_ref()) else {
        return;
    };
    let profile = profile_of(snap, 7, 20);
    bencher.bench_local(|| divan::black_box(model.posterior(&profile).unwrap()));
}

/// The same fold-in, then the top 10 of the other 1180 items.
#[divan::bench(sample_count = 1000)]
fn mfa_recommend_20_ratings_netflix_k12(bencher: divan::Bencher) {
    let (Some(snap), Some(model)) = (NETFLIX.as_ref(), MFA_K12.as_ref()) else {
        return;
    };
    let profile = profile_of(snap, 7, 20);
    let rated: Vec<u32> = profile.iter().map(|p| p.0).collect();
    bencher.bench_local(|| {
        let belief = model.posterior(&profile).unwrap();
        divan::black_box(model.recommend(&belief, 10, &rated))
    });
}
