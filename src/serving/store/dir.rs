//! The directory store: every model one file, `model-00000007.mixrec`, written atomically
//! (temporary file, fsync, rename, fsync of the directory), so a crash at any point leaves the
//! old set of files or the new one, never a torn model. A model rolled back from is renamed
//! `*.rolled-back`. Temporary files an interrupted save left are removed when the store opens.
//!
//! Must not import: the registry, the jobs, training, web or async types.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::format::{decode, encode};
use super::{Entry, Manifest, ModelStore, StoreError, StoreFault};
use crate::config::TrainingSettings;
use crate::data::Source;
use crate::predictor::Predictor;
use crate::serving::info::ModelInfo;

/// File name suffix of a model.
const SUFFIX: &str = ".mixrec";
/// Suffix added to a model that was rolled back from.
const ROLLED_BACK: &str = ".rolled-back";
/// Suffix of a file being written (hidden, and never read as a model).
const TEMP: &str = ".tmp";

/// A directory of model files.
#[derive(Debug, Clone)]
pub struct DirStore {
    dir: PathBuf,
    keep: usize,
}

/// A model file by its name: version, path, rolled back from.
struct ModelFile {
    version: u64,
    path: PathBuf,
    rolled_back: bool,
}

impl DirStore {
    /// Opens (creating it if needed) the store in `dir`, keeping the newest `keep` files, and
    /// removes the temporary files an interrupted save left behind.
    pub fn open(dir: &Path, keep: usize) -> Result<Self, StoreError> {
        fs::create_dir_all(dir)
            .map_err(|e| StoreError::io(dir.display(), "create the directory", e))?;
        let store = Self {
            dir: dir.to_owned(),
            keep: keep.max(1),
        };
        for entry in store.read_dir()? {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".model-") && name.ends_with(TEMP) {
                remove_leftover(&entry.path());
            }
        }
        Ok(store)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of version `version`'s file (not rolled back).
    pub fn path(&self, version: u64) -> PathBuf {
        self.dir.join(format!("model-{version:08}{SUFFIX}"))
    }

    fn read_dir(&self) -> Result<Vec<fs::DirEntry>, StoreError> {
        let io = |e| StoreError::io(self.dir.display(), "list the directory", e);
        fs::read_dir(&self.dir)
            .map_err(io)?
            .map(|e| e.map_err(io))
            .collect()
    }

    /// Every model file, by name only.
    fn files(&self) -> Result<Vec<ModelFile>, StoreError> {
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
                let path = entry.path();
                files.push(ModelFile {
                    version,
                    path,
                    rolled_back,
                });
            }
        }
        Ok(files)
    }
}

impl ModelStore for DirStore {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    /// On failure (a full disk, say) the temporary file is removed and every other file is as
    /// it was.
    fn save(
        &self,
        source: &Source,
        training: &TrainingSettings,
        info: &ModelInfo,
        model: &Predictor,
    ) -> Result<String, StoreError> {
        let path = self.path(info.version);
        let at = path.display();
        if path.exists() {
            return Err(StoreError::new(at, StoreFault::Exists));
        }
        let bytes = encode(source, training, info, model).map_err(|f| StoreError::new(at, f))?;
        let name = path.file_name().expect("a file name").to_string_lossy();
        let tmp = self.dir.join(format!(".{name}{TEMP}"));
        let written = write_synced(&tmp, &bytes)
            .and_then(|()| fs::rename(&tmp, &path).map_err(|e| io(&path, "rename into place", e)))
            .and_then(|()| sync_dir(&self.dir));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(path.display().to_string())
    }

    fn load(&self, version: u64) -> Result<(Manifest, Predictor), StoreError> {
        let path = self.path(version);
        read(&path).map_err(|f| StoreError::new(path.display(), f))
    }

    fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        let mut entries: Vec<Entry> = self
            .files()?
            .into_iter()
            .map(|f| Entry {
                manifest: read(&f.path).map(|(m, _)| m),
                version: f.version,
                location: f.path.display().to_string(),
                rolled_back: f.rolled_back,
            })
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.version));
        Ok(entries)
    }

    fn candidates(&self) -> Result<Vec<u64>, StoreError> {
        let files = self.files()?.into_iter().filter(|f| !f.rolled_back);
        let mut versions: Vec<u64> = files.map(|f| f.version).collect();
        versions.sort_by_key(|&v| std::cmp::Reverse(v));
        Ok(versions)
    }

    fn newest_version(&self) -> Result<u64, StoreError> {
        Ok(self.files()?.iter().map(|f| f.version).max().unwrap_or(0))
    }

    fn holds(&self, version: u64) -> bool {
        self.path(version).exists()
    }

    fn mark_rolled_back(&self, version: u64) -> Result<(), StoreError> {
        let from = self.path(version);
        let mut to = from.clone().into_os_string();
        to.push(ROLLED_BACK);
        fs::rename(&from, &to).map_err(|e| io(&from, "mark as rolled back", e))?;
        sync_dir(&self.dir)
    }

    /// Keeps the newest `keep` files.
    fn prune(&self, protect: &[u64]) -> Result<Vec<String>, StoreError> {
        let mut files = self.files()?;
        files.sort_by_key(|f| std::cmp::Reverse(f.version));
        let mut removed = Vec::new();
        for f in files.into_iter().skip(self.keep) {
            if protect.contains(&f.version) {
                continue;
            }
            fs::remove_file(&f.path).map_err(|e| io(&f.path, "delete", e))?;
            removed.push(f.path.display().to_string());
        }
        Ok(removed)
    }
}

fn io(path: &Path, action: &'static str, e: std::io::Error) -> StoreError {
    StoreError::io(path.display(), action, e)
}

/// Removes the temporary file of a save that died before its rename.
fn remove_leftover(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => tracing::warn!(file = %path.display(), "removed an unfinished model file"),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot remove an unfinished model file")
        }
    }
}

/// Reads and checks a model file.
fn read(path: &Path) -> Result<(Manifest, Predictor), StoreFault> {
    let bytes = fs::read(path).map_err(|source| StoreFault::Io {
        action: "read",
        source,
    })?;
    decode(&bytes)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    // A leftover from a save that died before its rename: not a model, safe to replace.
    let _ = fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io(path, "create", e))?;
    file.write_all(bytes).map_err(|e| io(path, "write", e))?;
    file.sync_all().map_err(|e| io(path, "flush to disk", e))
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, "flush the directory", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predictor::ModelKind;
    use crate::serving::served::ServedModel;
    use crate::serving::train::{quick_settings, train};
    use std::ops::ControlFlow;

    fn trained(settings: &TrainingSettings, version: u64) -> ServedModel {
        let mut go = |_: &_| ControlFlow::Continue(());
        train(&Source::Embedded, settings, version, &mut go).unwrap()
    }

    fn save(store: &DirStore, served: &ServedModel) -> PathBuf {
        let info = served.info();
        let saved = store.save(
            &Source::Embedded,
            &quick_settings(),
            info,
            served.predictor(),
        );
        PathBuf::from(saved.unwrap())
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
        let store = DirStore::open(dir.path(), 5).unwrap();
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
        let store = DirStore::open(dir.path(), 5).unwrap();
        let path = save(&store, &trained(&quick_settings(), 1));
        let bytes = fs::read(&path).unwrap();
        // Every prefix: what a crash half-way through a non-atomic write would leave.
        for len in 0..bytes.len() {
            let err = decode(&bytes[..len]).unwrap_err();
            assert!(!err.to_string().is_empty());
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
            matches!(
                reason,
                StoreFault::Checksum | StoreFault::NoChecksum | StoreFault::CutShort(_)
            ),
            "{reason}"
        );
    }

    #[test]
    fn leftovers_are_cleared_old_files_pruned_and_nothing_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let leftover = dir.path().join(".model-00000009.mixrec.tmp");
        fs::write(&leftover, b"half a model").unwrap();
        let store = DirStore::open(dir.path(), 2).unwrap();
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
        assert!(matches!(again.unwrap_err().fault, StoreFault::Exists));
        store.mark_rolled_back(4).unwrap();
        assert_eq!(store.newest_version().unwrap(), 4);
        // Keep 2, and spare version 1 (serving, say).
        let removed = store.prune(&[1]).unwrap();
        assert_eq!(removed, [store.path(2).display().to_string()]);
        let left: Vec<(u64, bool)> = store
            .entries()
            .unwrap()
            .iter()
            .map(|e| (e.version, e.rolled_back))
            .collect();
        assert_eq!(left, [(4, true), (3, false), (1, false)]);
    }
}
