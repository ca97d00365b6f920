//! The object store: models in an S3 bucket (or any S3-compatible server) under a prefix, shared
//! by one trainer and any number of replicas (`models.url = "s3://bucket/prefix"`; credentials,
//! region and endpoint from the standard `AWS_*` variables).
//!
//! ```text
//! <prefix>/models/model-00000007.mixrec        a model, the bytes of `format.rs`, written once
//! <prefix>/models/model-00000007.rolled-back   empty: version 7 was rolled back from
//! <prefix>/catalogues/<sha256>.catalogue       the catalogue of snapshot <sha256>, written once
//! <prefix>/LATEST                              {"version":7,"snapshot":"<sha256>"}
//! ```
//!
//! Publishing is atomic for readers: the model object is written whole (one PUT: S3 never shows
//! half an object), then its catalogue if that snapshot has none yet, then `LATEST` moves with a
//! conditional put (`If-Match` on the ETag read, or `If-None-Match: *` for the first). A writer
//! killed at any point leaves `LATEST` naming a complete model and catalogue, the old ones or
//! the new. Every object is checked on the way back in (SHA-256 trailer), so a damaged one is
//! refused. A rollback moves the pointer back.
//!
//! The store trait is blocking (its callers run on the training threads); the requests run on
//! a small runtime of the store's own, so a call works from any thread.
//!
//! Must not import: the registry, the jobs, training, web types.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{
    ClientConfigKey, ObjectStore as _, ObjectStoreExt as _, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};
use serde::{Deserialize, Serialize};

use super::format::{decode, decode_catalogue, encode, encode_catalogue};
use super::{Entry, Manifest, ModelStore, StoreError, StoreFault};
use crate::config::TrainingSettings;
use crate::data::{Fingerprint, Snapshot, Source, Titles};
use crate::predictor::Predictor;
use crate::serving::catalogue::Catalogue;
use crate::serving::info::ModelInfo;

/// The pointer's name under the prefix.
const LATEST: &str = "LATEST";
/// Suffix of a model object.
const SUFFIX: &str = ".mixrec";
/// Suffix of the marker of a model rolled back from.
const ROLLED_BACK: &str = ".rolled-back";

/// Models in an S3 bucket under a prefix.
pub struct ObjectStore {
    url: String,
    prefix: String,
    keep: usize,
    s3: Arc<AmazonS3>,
    /// The store's own runtime, for calls from threads that have none (dropped in the
    /// background: a store may be dropped inside another runtime).
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStore")
            .field("url", &self.url)
            .finish()
    }
}

impl Drop for ObjectStore {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// What `LATEST` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pointer {
    /// The published model's version.
    version: u64,
    /// The snapshot it was trained on: its catalogue's name.
    snapshot: Fingerprint,
}

fn remote(e: impl std::fmt::Display) -> StoreFault {
    StoreFault::Remote(e.to_string())
}

impl ObjectStore {
    /// The store at `url` (`s3://bucket/prefix`), keeping the newest `keep` models. Nothing is
    /// read yet: an unreachable store shows on the first call.
    pub fn open(url: &str, keep: usize) -> Result<Self, StoreError> {
        let fault = |why: String| StoreError::new(url, StoreFault::Remote(why));
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| fault("not an s3:// URL".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let client = |key| AmazonS3ConfigKey::Client(key);
        // Fail fast when the store is down: a replica keeps serving and tries again next poll.
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_config(client(ClientConfigKey::ConnectTimeout), "2s")
            .with_config(client(ClientConfigKey::Timeout), "120s")
            .with_retry(object_store::RetryConfig {
                backoff: object_store::BackoffConfig::default(),
                max_retries: 2,
                retry_timeout: std::time::Duration::from_secs(10),
            })
            .build()
            .map_err(|e| fault(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mixrec-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::io(url, "start the store's runtime", e))?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            keep: keep.max(1),
            s3: Arc::new(s3),
            runtime: Some(runtime),
        })
    }

    /// The object `name` under the prefix.
    fn path(&self, name: &str) -> Path {
        match self.prefix.is_empty() {
            true => Path::from(name),
            false => Path::from(format!("{}/{name}", self.prefix)),
        }
    }

    fn model_name(version: u64) -> String {
        format!("models/model-{version:08}{SUFFIX}")
    }

    fn marker_name(version: u64) -> String {
        format!("models/model-{version:08}{ROLLED_BACK}")
    }

    fn catalogue_name(fingerprint: &Fingerprint) -> String {
        format!("catalogues/{fingerprint}.catalogue")
    }

    /// Where object `name` is, for messages.
    fn at(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    /// Runs `work` against the bucket on the store's runtime and waits for it.
    fn run<T, F>(&self, work: impl FnOnce(Arc<AmazonS3>) -> F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let future = work(self.s3.clone());
        let rt = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the store");
        rt.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv()
            .expect("the store's runtime finishes what it starts")
    }

    /// The bytes of object `name`; `None` when there is none.
    fn get(&self, name: &str) -> Result<Option<(Vec<u8>, UpdateVersion)>, StoreError> {
        let path = self.path(name);
        let got = self.run(move |s3| async move {
            let got = s3.get(&path).await?;
            let version = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let bytes = got.bytes().await?;
            Ok::<_, object_store::Error>((bytes.to_vec(), version))
        });
        match got {
            Ok(got) => Ok(Some(got)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::new(self.at(name), remote(e))),
        }
    }

    /// Writes object `name` whole with `mode`.
    fn put(&self, name: &str, bytes: Vec<u8>, mode: PutMode) -> Result<(), object_store::Error> {
        let path = self.path(name);
        self.run(move |s3| async move {
            let options = PutOptions::from(mode);
            s3.put_opts(&path, PutPayload::from(bytes), options)
                .await
                .map(|_| ())
        })
    }

    /// Whether object `name` exists.
    fn exists(&self, name: &str) -> Result<bool, StoreError> {
        let path = self.path(name);
        match self.run(move |s3| async move { s3.head(&path).await }) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(StoreError::new(self.at(name), remote(e))),
        }
    }

    /// Every model object by version, and whether it was rolled back from.
    fn listing(&self) -> Result<Vec<(u64, bool)>, StoreError> {
        let dir = self.path("models");
        let names = self.run(move |s3| async move {
            let listed = s3.list_with_delimiter(Some(&dir)).await?;
            Ok::<_, object_store::Error>(
                listed
                    .objects
                    .into_iter()
                    .filter_map(|m| m.location.filename().map(str::to_owned))
                    .collect::<Vec<String>>(),
            )
        });
        let names = names.map_err(|e| StoreError::new(self.at("models/"), remote(e)))?;
        let mut models: HashMap<u64, bool> = HashMap::new();
        let mut marked = Vec::new();
        for name in names {
            let Some(stem) = name.strip_prefix("model-") else {
                continue;
            };
            if let Some(v) = stem.strip_suffix(SUFFIX).and_then(|v| v.parse().ok()) {
                models.entry(v).or_insert(false);
            } else if let Some(v) = stem.strip_suffix(ROLLED_BACK).and_then(|v| v.parse().ok()) {
                marked.push(v);
            }
        }
        for v in marked {
            if let Some(rolled_back) = models.get_mut(&v) {
                *rolled_back = true;
            }
        }
        let mut listing: Vec<(u64, bool)> = models.into_iter().collect();
        listing.sort_by_key(|&(v, _)| std::cmp::Reverse(v));
        Ok(listing)
    }

    /// The pointer and the version to update it with, `None` before the first publish.
    fn pointer(&self) -> Result<Option<(Pointer, UpdateVersion)>, StoreError> {
        let Some((bytes, version)) = self.get(LATEST)? else {
            return Ok(None);
        };
        let pointer = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::new(self.at(LATEST), StoreFault::Manifest(e)))?;
        Ok(Some((pointer, version)))
    }
}

impl ModelStore for ObjectStore {
    fn location(&self) -> String {
        self.url.clone()
    }

    /// One PUT that may not replace an existing object: the model is there whole or not at
    /// all.
    fn save(
        &self,
        source: &Source,
        training: &TrainingSettings,
        info: &ModelInfo,
        model: &Predictor,
    ) -> Result<String, StoreError> {
        let name = Self::model_name(info.version);
        let at = self.at(&name);
        let bytes = encode(source, training, info, model).map_err(|f| StoreError::new(&at, f))?;
        match self.put(&name, bytes, PutMode::Create) {
            Ok(()) => Ok(at),
            Err(object_store::Error::AlreadyExists { .. }) => {
                Err(StoreError::new(at, StoreFault::Exists))
            }
            Err(e) => Err(StoreError::new(at, remote(e))),
        }
    }

    fn load(&self, version: u64) -> Result<(Manifest, Predictor), StoreError> {
        let name = Self::model_name(version);
        let at = self.at(&name);
        let (bytes, _) = self
            .get(&name)?
            .ok_or_else(|| StoreError::new(&at, remote("no such object")))?;
        decode(&bytes).map_err(|f| StoreError::new(at, f))
    }

    fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::new();
        for (version, rolled_back) in self.listing()? {
            let manifest = self.load(version).map(|(m, _)| m).map_err(|e| e.fault);
            entries.push(Entry {
                version,
                location: self.at(&Self::model_name(version)),
                rolled_back,
                manifest,
            });
        }
        Ok(entries)
    }

    fn candidates(&self) -> Result<Vec<u64>, StoreError> {
        let listing = self.listing()?.into_iter();
        Ok(listing.filter(|&(_, rb)| !rb).map(|(v, _)| v).collect())
    }

    fn newest_version(&self) -> Result<u64, StoreError> {
        Ok(self.listing()?.first().map_or(0, |&(v, _)| v))
    }

    fn holds(&self, version: u64) -> bool {
        let model = self.exists(&Self::model_name(version));
        let marker = self.exists(&Self::marker_name(version));
        matches!((model, marker), (Ok(true), Ok(false)))
    }

    fn mark_rolled_back(&self, version: u64) -> Result<(), StoreError> {
        let name = Self::marker_name(version);
        match self.put(&name, Vec::new(), PutMode::Overwrite) {
            Ok(()) => Ok(()),
            Err(e) => Err(StoreError::new(self.at(&name), remote(e))),
        }
    }

    /// Keeps the newest `keep` models and the published one.
    fn prune(&self, protect: &[u64]) -> Result<Vec<String>, StoreError> {
        let published = self.pointer()?.map(|(p, _)| p.version);
        let mut removed = Vec::new();
        for (version, rolled_back) in self.listing()?.into_iter().skip(self.keep) {
            if protect.contains(&version) || published == Some(version) {
                continue;
            }
            let name = Self::model_name(version);
            let (path, marker) = (self.path(&name), self.path(&Self::marker_name(version)));
            let deleted = self.run(move |s3| async move {
                s3.delete(&path).await?;
                if rolled_back {
                    s3.delete(&marker).await?;
                }
                Ok::<_, object_store::Error>(())
            });
            deleted.map_err(|e| StoreError::new(self.at(&name), remote(e)))?;
            removed.push(self.at(&name));
        }
        Ok(removed)
    }

    fn publish(
        &self,
        version: u64,
        fingerprint: &Fingerprint,
        catalogue: &Catalogue,
    ) -> Result<(), StoreError> {
        let name = Self::catalogue_name(fingerprint);
        if !self.exists(&name)? {
            let bytes = encode_catalogue(&catalogue.snapshot(), catalogue.titles())
                .map_err(|f| StoreError::new(self.at(&name), f))?;
            match self.put(&name, bytes, PutMode::Create) {
                Ok(()) | Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(StoreError::new(self.at(&name), remote(e))),
            }
        }
        let pointer = Pointer {
            version,
            snapshot: fingerprint.clone(),
        };
        let mode = match self.pointer()? {
            Some((now, _)) if now == pointer => return Ok(()),
            Some((_, seen)) => PutMode::Update(seen),
            None => PutMode::Create,
        };
        let bytes = serde_json::to_vec(&pointer).expect("a pointer serialises");
        self.put(LATEST, bytes, mode).map_err(|e| {
            let why = match e {
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. } => {
                    "another process moved the pointer at the same time (one trainer per store)"
                        .to_owned()
                }
                e => e.to_string(),
            };
            StoreError::new(self.at(LATEST), StoreFault::Remote(why))
        })
    }

    fn published(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.pointer()?.map(|(p, _)| p.version))
    }

    fn catalogue(&self, fingerprint: &Fingerprint) -> Result<(Snapshot, Titles), StoreError> {
        let name = Self::catalogue_name(fingerprint);
        let at = self.at(&name);
        let (bytes, _) = self
            .get(&name)?
            .ok_or_else(|| StoreError::new(&at, remote("no such object")))?;
        decode_catalogue(&bytes).map_err(|f| StoreError::new(at, f))
    }
}
