//! The model store: every trained model saved as one file in a directory, written atomically
//! (temporary file, fsync, rename, fsync of the directory) and checked on the way back in, so a
//! crash at any point leaves the old file set or the new one, never a torn model.
//!
//! A file `model-00000007.mixrec` holds:
//!
//! ```text
//! mixrec-model 1\n                      format line
//! {"version":7,...}\n                   the manifest: one line of JSON
//! <payload>                             the parameters: little-endian f64 arrays, in the
//!                                       order and lengths the manifest's layout lists
//! sha256 <64 hex digits>\n              over every byte before this line
//! ```
//!
//! The catalogue (ids, titles, the users' ratings) is not stored: it is the snapshot, which the
//! manifest names by path and SHA-256. A model comes back into service only with the very
//! snapshot it was trained on. A model rolled back from is renamed `*.rolled-back`: kept for
//! inspection, never loaded again.
//!
//! One process writes a store at a time. No web or async types here.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::TrainingSettings;
use crate::data::RatingScale;
use crate::mfa::Mfa;
use crate::mixture::{Algorithm, Baseline, Mixture, Model};
use crate::plsa::Plsa;
use crate::predictor::{ModelKind, Predictor};
use crate::service::ModelInfo;
use crate::train::{Source, hex};

/// The first line of every model file.
const FORMAT_LINE: &[u8] = b"mixrec-model 1\n";
/// File name suffix of a model.
const SUFFIX: &str = ".mixrec";
/// Suffix added to a model that was rolled back from.
const ROLLED_BACK: &str = ".rolled-back";
/// Suffix of a file being written (hidden, and never read as a model).
const TEMP: &str = ".tmp";
/// `sha256 ` + 64 hex digits + `\n`.
const TRAILER_LEN: usize = 7 + 64 + 1;

/// What a model file says about its model: enough to list it and to decide whether it may
/// serve, without the parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The model's version.
    pub version: u64,
    /// When the file was written (RFC 3339, UTC).
    pub created: String,
    /// Where the snapshot came from: the model serves again only with it.
    pub source: Source,
    /// The training settings it was trained with.
    pub training: TrainingSettings,
    /// What `GET /v1/model` reports: snapshot SHA-256, K, training figures.
    pub info: ModelInfo,
    /// How the payload is laid out.
    pub layout: Layout,
}

/// The shape of the stored parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// Mixture or Gaussian pLSA.
    pub kind: ModelKind,
    /// EM or k-means (mixtures).
    pub algorithm: Algorithm,
    /// Whether predictions are clipped into the scale (mixtures).
    pub clip: bool,
    /// Number of types.
    pub k: usize,
    /// Number of items.
    pub n_items: usize,
    /// The payload's arrays in order: (name, number of f64 values).
    pub arrays: Vec<(String, usize)>,
}

/// A model file that cannot be written or used, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct StoreError {
    /// The file or directory.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

impl StoreError {
    fn new(path: &Path, reason: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    fn io(path: &Path, what: &str, e: &std::io::Error) -> Self {
        Self::new(path, format!("cannot {what}: {e}"))
    }
}

/// One file of the store, as listed.
#[derive(Debug)]
pub struct Entry {
    /// Version from the file name.
    pub version: u64,
    /// The file.
    pub path: PathBuf,
    /// Whether it was rolled back from.
    pub rolled_back: bool,
    /// Its manifest, or why the file cannot be used (bad checksum, torn, unreadable).
    pub manifest: Result<Manifest, String>,
}

/// A directory of model files.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    keep: usize,
}

impl Store {
    /// Opens (creating it if needed) the store in `dir`, keeping the newest `keep` files, and
    /// removes the temporary files an interrupted save left behind.
    pub fn open(dir: &Path, keep: usize) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, "create the directory", &e))?;
        let store = Self {
            dir: dir.to_owned(),
            keep: keep.max(1),
        };
        for entry in store.read_dir()? {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".model-") && name.ends_with(TEMP) {
                let path = entry.path();
                match fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::warn!(file = %path.display(), "removed an unfinished model file")
                    }
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "cannot remove an unfinished model file")
                    }
                }
            }
        }
        Ok(store)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read_dir(&self) -> Result<Vec<fs::DirEntry>, StoreError> {
        let io = |e: std::io::Error| StoreError::io(&self.dir, "list the directory", &e);
        fs::read_dir(&self.dir)
            .map_err(io)?
            .map(|e| e.map_err(io))
            .collect()
    }

    /// Every model file, newest version first, each checked in full.
    pub fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        let mut entries: Vec<Entry> = self
            .files()?
            .into_iter()
            .map(|(version, path, rolled_back)| Entry {
                manifest: read(&path).map(|(m, _)| m).map_err(|e| e.reason),
                version,
                path,
                rolled_back,
            })
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.version));
        Ok(entries)
    }

    /// The versions a model may be served from (not rolled back), newest first, by file name
    /// only: each is checked when it is loaded.
    pub fn candidates(&self) -> Result<Vec<u64>, StoreError> {
        let mut versions: Vec<u64> = self
            .files()?
            .into_iter()
            .filter(|f| !f.2)
            .map(|f| f.0)
            .collect();
        versions.sort_by_key(|&v| std::cmp::Reverse(v));
        Ok(versions)
    }

    /// (version, path, rolled back) of every model file, by name only.
    fn files(&self) -> Result<Vec<(u64, PathBuf, bool)>, StoreError> {
        let mut files = Vec::new();
        for entry in self.read_dir()? {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let (stem, rolled_back) = match name.strip_suffix(ROLLED_BACK) {
                Some(stem) => (stem, true),
                None => (name, false),
            };
            let version = stem
                .strip_prefix("model-")
                .and_then(|s| s.strip_suffix(SUFFIX))
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(version) = version {
                files.push((version, entry.path(), rolled_back));
            }
        }
        Ok(files)
    }

    /// The highest version any file in the store carries (valid or not), 0 for none: a new
    /// model takes a higher one, so no file is ever overwritten.
    pub fn newest_version(&self) -> Result<u64, StoreError> {
        Ok(self.files()?.iter().map(|f| f.0).max().unwrap_or(0))
    }

    /// The path of version `version`'s file (not rolled back).
    pub fn path(&self, version: u64) -> PathBuf {
        self.dir.join(format!("model-{version:08}{SUFFIX}"))
    }

    /// Writes `model`, trained on `source` with `training`, as version `info.version`: all or
    /// nothing. On failure (a full disk, say) the temporary file is removed and every other
    /// file is as it was.
    pub fn save(
        &self,
        source: &Source,
        training: &TrainingSettings,
        info: &ModelInfo,
        model: &Predictor,
    ) -> Result<PathBuf, StoreError> {
        let path = self.path(info.version);
        if path.exists() {
            return Err(StoreError::new(&path, "a model with this version exists"));
        }
        let (layout, arrays) = parameters(model);
        let manifest = Manifest {
            version: info.version,
            created: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            source: source.clone(),
            training: training.clone(),
            info: info.clone(),
            layout,
        };
        let bytes = encode(&manifest, &arrays).map_err(|e| StoreError::new(&path, e))?;
        let name = path.file_name().expect("a file name").to_string_lossy();
        let tmp = self.dir.join(format!(".{name}{TEMP}"));
        let written = write_synced(&tmp, &bytes)
            .and_then(|()| {
                fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, "rename into place", &e))
            })
            .and_then(|()| sync_dir(&self.dir));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(path)
    }

    /// Reads and checks version `version`.
    pub fn load(&self, version: u64) -> Result<(Manifest, Predictor), StoreError> {
        read(&self.path(version))
    }

    /// Marks version `version` as rolled back from: renamed, so it is never loaded again.
    pub fn mark_rolled_back(&self, version: u64) -> Result<(), StoreError> {
        let from = self.path(version);
        let mut to = from.clone().into_os_string();
        to.push(ROLLED_BACK);
        fs::rename(&from, &to).map_err(|e| StoreError::io(&from, "mark as rolled back", &e))?;
        sync_dir(&self.dir)
    }

    /// Deletes all but the newest `keep` files, sparing the versions in `protect`.
    pub fn prune(&self, protect: &[u64]) -> Result<Vec<PathBuf>, StoreError> {
        let mut files = self.files()?;
        files.sort_by_key(|f| std::cmp::Reverse(f.0));
        let mut removed = Vec::new();
        for (version, path, _) in files.into_iter().skip(self.keep) {
            if protect.contains(&version) {
                continue;
            }
            fs::remove_file(&path).map_err(|e| StoreError::io(&path, "delete", &e))?;
            removed.push(path);
        }
        Ok(removed)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    // A leftover from a save that died before its rename: not a model, safe to replace.
    let _ = fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| StoreError::io(path, "create", &e))?;
    file.write_all(bytes)
        .map_err(|e| StoreError::io(path, "write", &e))?;
    file.sync_all()
        .map_err(|e| StoreError::io(path, "flush to disk", &e))
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, "flush the directory", &e))
}

/// Reads and checks a model file: format line, manifest, exact length, checksum, parameters.
pub fn read(path: &Path) -> Result<(Manifest, Predictor), StoreError> {
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, "read", &e))?;
    decode(&bytes).map_err(|reason| StoreError::new(path, reason))
}

fn encode(manifest: &Manifest, arrays: &[Vec<f64>]) -> Result<Vec<u8>, String> {
    let mut out = FORMAT_LINE.to_vec();
    serde_json::to_writer(&mut out, manifest).map_err(|e| e.to_string())?;
    out.push(b'\n');
    for values in arrays {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let digest = hex(&Sha256::digest(&out));
    out.extend_from_slice(format!("sha256 {digest}\n").as_bytes());
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<(Manifest, Predictor), String> {
    let rest = bytes
        .strip_prefix(FORMAT_LINE)
        .ok_or("not a mixrec model file (or a newer format)")?;
    if bytes.len() < FORMAT_LINE.len() + TRAILER_LEN {
        return Err(format!("cut short ({} bytes)", bytes.len()));
    }
    let (body, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let expected = trailer
        .strip_prefix(b"sha256 ")
        .and_then(|t| t.strip_suffix(b"\n"))
        .ok_or("no checksum line at the end: the file is cut short or damaged")?;
    if hex(&Sha256::digest(body)).as_bytes() != expected {
        return Err("checksum mismatch: the file is damaged or was cut short".into());
    }
    let line_end = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no manifest line")?;
    let manifest: Manifest = serde_json::from_slice(&rest[..line_end])
        .map_err(|e| format!("unreadable manifest: {e}"))?;
    let payload = &body[FORMAT_LINE.len() + line_end + 1..];
    let values: usize = manifest.layout.arrays.iter().map(|a| a.1).sum();
    if payload.len() != values * 8 {
        return Err(format!(
            "the payload has {} bytes where the manifest lists {} values",
            payload.len(),
            values
        ));
    }
    let mut arrays = Vec::with_capacity(manifest.layout.arrays.len());
    let mut at = 0;
    for (name, len) in &manifest.layout.arrays {
        let values: Vec<f64> = payload[at..at + len * 8]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        at += len * 8;
        arrays.push((name.as_str(), values));
    }
    let model = rebuild(&manifest.layout, arrays)?;
    if !model.is_finite() {
        return Err("the parameters are not all finite numbers".into());
    }
    Ok((manifest, model))
}

/// The layout of `model` and its arrays, in payload order.
fn parameters(model: &Predictor) -> (Layout, Vec<Vec<f64>>) {
    let mut arrays: Vec<(&str, Vec<f64>)> = Vec::new();
    let (kind, algorithm, clip) = match model {
        Predictor::Mixture(m) => {
            let x = &m.mixture;
            arrays.push(("scale", vec![m.scale.min, m.scale.max]));
            arrays.push(("weights", x.weights.to_vec()));
            arrays.push(("variances", x.variances.to_vec()));
            arrays.push(("means", x.means.iter().copied().collect()));
            if let Some(b) = &m.baseline {
                arrays.push(("baseline_global", vec![b.global]));
                arrays.push(("baseline_item", b.item.clone()));
                arrays.push(("baseline_lambda_user", vec![b.lambda_user]));
                arrays.push(("baseline_centre", b.centre.clone()));
            }
            (ModelKind::Mixture, m.algorithm, m.clip)
        }
        Predictor::Gpl(g) => {
            arrays.push(("scale", vec![g.scale.min, g.scale.max]));
            arrays.push(("global", vec![g.global.0, g.global.1]));
            arrays.push(("q", vec![g.q]));
            arrays.push(("type_weights", g.type_weights.clone()));
            arrays.push(("means", g.means.iter().copied().collect()));
            arrays.push(("variances", g.variances.iter().copied().collect()));
            (ModelKind::Gpl, Algorithm::Em, true)
        }
        Predictor::Mfa(m) => {
            arrays.push(("scale", vec![m.scale.min, m.scale.max]));
            arrays.push(("weights", m.weights.clone()));
            arrays.push(("noise", m.noise.clone()));
            arrays.push(("rank", vec![m.rank as f64]));
            arrays.push(("theta", m.theta.clone()));
            let b = &m.baseline;
            arrays.push(("baseline_global", vec![b.global]));
            arrays.push(("baseline_item", b.item.clone()));
            arrays.push(("baseline_lambda_user", vec![b.lambda_user]));
            arrays.push(("baseline_centre", b.centre.clone()));
            (ModelKind::Mfa, Algorithm::Em, true)
        }
    };
    let layout = Layout {
        kind,
        algorithm,
        clip,
        k: model.k(),
        n_items: model.n_items(),
        arrays: arrays
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.len()))
            .collect(),
    };
    (layout, arrays.into_iter().map(|a| a.1).collect())
}

/// The model `layout` describes, from its arrays; every length is checked.
fn rebuild(layout: &Layout, arrays: Vec<(&str, Vec<f64>)>) -> Result<Predictor, String> {
    let (k, d) = (layout.k, layout.n_items);
    if k == 0 || d == 0 {
        return Err(format!("a model of K = {k} types over {d} items"));
    }
    let mut arrays = arrays.into_iter();
    let mut take = |name: &str, len: usize| -> Result<Vec<f64>, String> {
        match arrays.next() {
            Some((n, v)) if n == name && v.len() == len => Ok(v),
            Some((n, v)) => Err(format!(
                "expected array {name} of {len} values, found {n} of {}",
                v.len()
            )),
            None => Err(format!("array {name} is missing")),
        }
    };
    let scale = take("scale", 2)?;
    let scale = RatingScale {
        min: scale[0],
        max: scale[1],
    };
    if !(scale.min.is_finite() && scale.max.is_finite() && scale.min < scale.max) {
        return Err("an invalid rating scale".into());
    }
    let table = |v: Vec<f64>| Array2::from_shape_vec((d, k), v).map_err(|e| e.to_string());
    let model = match layout.kind {
        ModelKind::Mixture => {
            let weights = Array1::from(take("weights", k)?);
            let variances = Array1::from(take("variances", k)?);
            let means = table(take("means", d * k)?)?;
            let has_baseline = layout.arrays.iter().any(|a| a.0 == "baseline_global");
            let baseline = if has_baseline {
                let global = take("baseline_global", 1)?[0];
                let item = take("baseline_item", d)?;
                // Files from before the ridge was tuned used λ_user = 15.
                let tuned = layout.arrays.iter().any(|a| a.0 == "baseline_lambda_user");
                let (lambda_user, centre) = if tuned {
                    (
                        take("baseline_lambda_user", 1)?[0],
                        take("baseline_centre", d)?,
                    )
                } else {
                    (15.0, vec![0.0; d])
                };
                Some(Baseline {
                    global,
                    item,
                    lambda_user,
                    centre,
                })
            } else {
                None
            };
            Predictor::Mixture(Model {
                mixture: Mixture {
                    means,
                    variances,
                    weights,
                },
                algorithm: layout.algorithm,
                scale,
                clip: layout.clip,
                baseline,
            })
        }
        ModelKind::Gpl => {
            let global = take("global", 2)?;
            let q = take("q", 1)?[0];
            let type_weights = take("type_weights", k)?;
            let means = table(take("means", d * k)?)?;
            let variances = table(take("variances", d * k)?)?;
            Predictor::Gpl(Plsa::from_parts(
                means,
                variances,
                (global[0], global[1]),
                q,
                scale,
                type_weights,
            ))
        }
        ModelKind::Mfa => {
            let weights = take("weights", k)?;
            let noise = take("noise", k)?;
            let rank = take("rank", 1)?[0];
            if !(rank >= 0.0 && rank <= 256.0 && rank.fract() == 0.0) {
                return Err(format!("a rank of {rank}"));
            }
            let rank = rank as usize;
            let theta = take("theta", d * k * (rank + 1))?;
            let global = take("baseline_global", 1)?[0];
            let item = take("baseline_item", d)?;
            let lambda_user = take("baseline_lambda_user", 1)?[0];
            let centre = take("baseline_centre", d)?;
            let baseline = Baseline {
                global,
                item,
                lambda_user,
                centre,
            };
            if noise.iter().any(|v| !(*v > 0.0)) {
                return Err("a noise variance that is not positive".into());
            }
            Predictor::Mfa(Mfa {
                k,
                rank,
                theta,
                noise,
                weights,
                baseline,
                scale,
            })
        }
    };
    if let Some((name, _)) = arrays.next() {
        return Err(format!("unexpected array {name}"));
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainingSettings;
    use crate::predictor::ModelKind;
    use crate::service::ServedModel;
    use crate::train::{self, quick_settings};
    use std::ops::ControlFlow;

    fn trained(settings: &TrainingSettings, version: u64) -> ServedModel {
        let mut go = |_: &_| ControlFlow::Continue(());
        train::train(&Source::Embedded, settings, version, &mut go).unwrap()
    }

    fn save(store: &Store, served: &ServedModel) -> PathBuf {
        let info = served.info();
        store
            .save(
                &Source::Embedded,
                &quick_settings(),
                info,
                served.predictor(),
            )
            .unwrap()
    }

    /// Every prediction of `a` and `b` for a few profiles, bit for bit.
    fn same_predictions(a: &Predictor, b: &Predictor) {
        let profiles: [&[(u32, f64)]; 3] = [&[], &[(0, 5.0), (3, 1.0)], &[(1, 2.5), (7, 4.0)]];
        for profile in profiles {
            let (pa, pb) = (a.posterior(profile).unwrap(), b.posterior(profile).unwrap());
            for l in 0..a.n_items() as u32 {
                let (x, y) = (a.predict(&pa, l), b.predict(&pb, l));
                assert_eq!(x.rating.to_bits(), y.rating.to_bits(), "item {l}");
                assert_eq!(x.spread.to_bits(), y.spread.to_bits(), "item {l}");
            }
        }
    }

    #[test]
    fn models_of_both_kinds_come_back_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 5).unwrap();
        let gpl = TrainingSettings {
            model: ModelKind::Gpl,
            k: crate::config::Auto::Is(4),
            ..quick_settings()
        };
        for (served, version) in [(trained(&quick_settings(), 1), 1), (trained(&gpl, 2), 2)] {
            let path = save(&store, &served);
            assert_eq!(path, store.path(version));
            let (manifest, model) = store.load(version).unwrap();
            assert_eq!(&manifest.info, served.info());
            assert_eq!(manifest.source, Source::Embedded);
            assert_eq!(manifest.layout.k, served.predictor().k());
            same_predictions(served.predictor(), &model);
        }
        let entries = store.entries().unwrap();
        let versions: Vec<u64> = entries.iter().map(|e| e.version).collect();
        assert_eq!(versions, [2, 1]);
        assert!(entries.iter().all(|e| e.manifest.is_ok() && !e.rolled_back));
    }

    #[test]
    fn a_cut_or_damaged_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 5).unwrap();
        let path = save(&store, &trained(&quick_settings(), 1));
        let bytes = fs::read(&path).unwrap();
        // Every prefix: what a crash half-way through a non-atomic write would leave.
        for len in 0..bytes.len() {
            let err = decode(&bytes[..len]).unwrap_err();
            assert!(!err.is_empty());
        }
        // A flipped bit anywhere (every 7th byte keeps the test quick).
        for at in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(decode(&bad).is_err(), "a flip at byte {at} went unnoticed");
        }
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let entries = store.entries().unwrap();
        let reason = entries[0].manifest.as_ref().unwrap_err();
        assert!(
            reason.contains("checksum") || reason.contains("cut short"),
            "{reason}"
        );
    }

    #[test]
    fn leftovers_are_cleared_old_files_pruned_and_nothing_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let leftover = dir.path().join(".model-00000009.mixrec.tmp");
        fs::write(&leftover, b"half a model").unwrap();
        let store = Store::open(dir.path(), 2).unwrap();
        assert!(!leftover.exists());
        let served = trained(&quick_settings(), 1);
        for version in 1..=4 {
            let info = ModelInfo {
                version,
                ..served.info().clone()
            };
            store
                .save(
                    &Source::Embedded,
                    &quick_settings(),
                    &info,
                    served.predictor(),
                )
                .unwrap();
        }
        let again = store.save(
            &Source::Embedded,
            &quick_settings(),
            served.info(),
            served.predictor(),
        );
        assert!(again.unwrap_err().reason.contains("exists"));
        store.mark_rolled_back(4).unwrap();
        assert_eq!(store.newest_version().unwrap(), 4);
        // Keep 2, and spare version 1 (serving, say).
        let removed = store.prune(&[1]).unwrap();
        assert_eq!(removed, [store.path(2)]);
        let left: Vec<(u64, bool)> = store
            .entries()
            .unwrap()
            .iter()
            .map(|e| (e.version, e.rolled_back))
            .collect();
        assert_eq!(left, [(4, true), (3, false), (1, false)]);
    }
}
