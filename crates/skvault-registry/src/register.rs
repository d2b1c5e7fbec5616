//! Registering a `.skv` file: blobs first, then the version document with a conditional create.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value};
use skvault_format::SkvFile;

use crate::docs::{
    blob_key, now_rfc3339, version_key, writer_id, FileRef, Lineage, VersionDoc, VersionInfo,
    VERSION_FORMAT,
};
use crate::error::{RegistryError, Result};
use crate::names::{check_model_name, check_tag_key};
use crate::registry::{checked, Progress, Registry, CONCURRENCY};
use crate::skv::{hash_hex, split};
use crate::store::Created;
use skvault_sign::SignError;

/// A blob already stored is reused as is only if it was written within this period; older
/// ones are written again, which renews their modification time. `gc` never deletes a blob
/// younger than its grace period, and the grace period must be at least twice this, so a
/// blob a writer decided to reuse cannot vanish before the writer's version document exists
/// (see docs/REGISTRY.md, "Garbage collection").
pub const REUSE_WINDOW: Duration = Duration::from_secs(20 * 60);

/// What to record with a new version besides the file.
#[derive(Clone, Default)]
pub struct RegisterOptions {
    /// Sign the file with this key (the signature goes into the version document).
    pub sign_with: Option<std::sync::Arc<skvault_sign::PrivateKey>>,
    /// The signer's name recorded in that signature (free text).
    pub identity: String,
    /// Free-form JSON fields.
    pub metadata: Map<String, Value>,
    /// Numeric scores; they override metrics of the same name recorded in the file.
    pub metrics: BTreeMap<String, f64>,
    pub tags: BTreeMap<String, String>,
    /// User-supplied lineage references (run id, data set, commit, ...).
    pub lineage: Map<String, Value>,
}

impl RegisterOptions {
    fn check(&self) -> Result<()> {
        for (k, v) in &self.metrics {
            check_tag_key(k)?;
            if !v.is_finite() {
                return Err(RegistryError::invalid(format!(
                    "metric {k:?} is {v}: metrics must be finite numbers"
                )));
            }
        }
        for k in self.tags.keys() {
            check_tag_key(k)?;
        }
        Ok(())
    }
}

/// Metrics recorded in the file's metadata (`metadata.metrics`), numbers only.
fn file_metrics(file: &SkvFile) -> BTreeMap<String, f64> {
    match file.manifest().metadata.get("metrics") {
        Some(Value::Object(m)) => m
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_f64().filter(|x| x.is_finite())?)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

impl Registry {
    /// Registers the `.skv` file at `path` as the next version of `name`; returns it.
    ///
    /// The file is validated and every digest checked first. Its blobs are uploaded (those
    /// already stored are skipped), then the version document is created with a conditional
    /// create; if another writer took that number meanwhile, the next one is tried.
    pub fn register(
        &self,
        path: &Path,
        name: &str,
        options: &RegisterOptions,
        progress: &dyn Progress,
    ) -> Result<VersionInfo> {
        check_model_name(name)?;
        options.check()?;
        let shown = path.display().to_string();
        let fmt = |source| RegistryError::Format {
            path: shown.clone(),
            source,
        };
        let file = SkvFile::open_mmap(path).map_err(fmt)?;
        file.verify().map_err(fmt)?;
        let (bytes, _) = file
            .mapped_whole()
            .ok_or_else(|| RegistryError::SourceChanged {
                path: shown.clone(),
            })?;
        // A file with an embedded signature is stored as the file it signs, its signature
        // kept in the version document (FORMAT.md 2.5): what `fetch` returns is then exactly
        // what was signed.
        let content_len =
            usize::try_from(file.content_len()).map_err(|_| RegistryError::SourceChanged {
                path: shown.clone(),
            })?;
        let signed_head: Option<Vec<u8>> = file.trailer().map(|t| {
            let mut h = t.signed_header(file.header()).to_bytes().to_vec();
            let manifest_end =
                (skvault_format::manifest::HEADER_LEN + file.header().manifest_len) as usize;
            h.extend_from_slice(bytes.get(64..manifest_end).unwrap_or_default());
            h
        });
        let content_digest = |bytes: &[u8]| match &signed_head {
            Some(head) => {
                let mut h = blake3::Hasher::new();
                h.update(head);
                h.update(bytes.get(head.len()..content_len).unwrap_or_default());
                h.finalize().to_hex().to_string()
            }
            None => hash_hex(bytes),
        };
        let file_digest = content_digest(bytes);
        let signature = self.version_signature(bytes, &file, options, path, &shown)?;
        let mut pieces = split(bytes, &file, &shown)?;
        if let Some(h) = &signed_head {
            pieces.head = h;
        }
        let head = hash_hex(pieces.head);
        let blobs: Vec<String> = pieces.blobs.iter().map(|b| hash_hex(b)).collect();

        let mut unique: BTreeMap<&str, &[u8]> = BTreeMap::new();
        unique.insert(&head, pieces.head);
        for (key, data) in blobs.iter().zip(&pieces.blobs) {
            unique.insert(key, data);
        }
        let total: u64 = unique.values().map(|d| d.len() as u64).sum();
        progress.begin("upload", total);
        let uploaded = self.block_on(self.upload_all(&unique, &shown, progress));
        progress.end();
        uploaded?;
        checked(progress, &shown)?;
        // The uploads hashed their own copies; this catches a file rewritten in place meanwhile.
        if content_digest(bytes) != file_digest {
            return Err(RegistryError::SourceChanged { path: shown });
        }

        let metadata = &file.manifest().metadata;
        let mut metrics = file_metrics(&file);
        metrics.extend(options.metrics.iter().map(|(k, v)| (k.clone(), *v)));
        let lineage = Lineage {
            source_path: Some(shown.clone()),
            source_blake3: file_digest.clone(),
            writer: file.manifest().writer.clone(),
            environment: metadata.get("environment").cloned().unwrap_or(Value::Null),
            object: metadata
                .get("object")
                .and_then(Value::as_str)
                .map(str::to_string),
            refs: options.lineage.clone(),
        };
        let mut doc = VersionDoc {
            format: VERSION_FORMAT.to_string(),
            name: name.to_string(),
            version: 0,
            created_at: now_rfc3339(),
            file: FileRef {
                blake3: file_digest,
                size: file.content_len(),
                head,
                blobs,
            },
            metadata: options.metadata.clone(),
            metrics,
            tags: options.tags.clone(),
            lineage,
            writer_id: writer_id(),
            signature,
        };
        self.block_on(self.create_version(&mut doc))?;
        Ok(VersionInfo {
            doc,
            archived: false,
            aliases: Vec::new(),
        })
    }

    /// The signature to record: a new one made with `sign_with`, else the file's embedded
    /// one. Under the registry's policy it must verify with the policy's keys.
    fn version_signature(
        &self,
        bytes: &[u8],
        file: &SkvFile,
        options: &RegisterOptions,
        path: &Path,
        shown: &str,
    ) -> Result<Option<String>> {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let refused = |source| RegistryError::Signature {
            what: shown.to_string(),
            source,
        };
        let bundle = match &options.sign_with {
            Some(key) => Some(
                skvault_sign::sign_bytes(
                    bytes,
                    &file_name,
                    key,
                    &options.identity,
                    &skvault_sign::now(),
                )
                .map_err(refused)?,
            ),
            None => match file
                .embedded_signature()
                .map_err(|source| RegistryError::Format {
                    path: shown.to_string(),
                    source,
                })? {
                // A detached signature beside the file (`skvault sign` writes it there).
                None => skvault_sign::find_signature(path, None)
                    .map_err(refused)?
                    .map(|(b, _)| b),
                embedded => embedded,
            },
        };
        if let Some(keys) = self.block_on(self.policy_keys())? {
            crate::signing::check_bytes(bytes, bundle.as_deref(), shown, &keys)?;
        }
        bundle
            .map(|b| {
                String::from_utf8(b).map_err(|_| {
                    refused(SignError::MalformedBundle {
                        field: "(bundle)".into(),
                        problem: "not UTF-8 JSON".into(),
                    })
                })
            })
            .transpose()
    }

    /// Uploads every missing (or stale) blob; repeats the freshness pass if it took longer
    /// than half the reuse window, so reused blobs are fresh when the version is created.
    async fn upload_all(
        &self,
        unique: &BTreeMap<&str, &[u8]>,
        shown: &str,
        progress: &dyn Progress,
    ) -> Result<()> {
        let mut first = true;
        loop {
            let started = Instant::now();
            futures::stream::iter(unique.iter())
                .map(|(key, data)| async move {
                    checked(progress, shown)?;
                    self.ensure_blob(key, data, shown).await?;
                    if first {
                        progress.advance(data.len() as u64);
                    }
                    Ok::<_, RegistryError>(())
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await?;
            if started.elapsed() < REUSE_WINDOW / 2 {
                return Ok(());
            }
            first = false;
        }
    }

    async fn ensure_blob(&self, key: &str, data: &[u8], shown: &str) -> Result<()> {
        let object = blob_key(key);
        if let Some(meta) = self.store.head(&object).await? {
            let age = chrono::Utc::now().signed_duration_since(meta.last_modified);
            let fresh = age.to_std().map_or(true, |a| a < REUSE_WINDOW);
            if fresh && meta.size == data.len() as u64 {
                return Ok(());
            }
        }
        // Hash the very bytes sent, so that a blob is never stored under another digest.
        let copy = Bytes::copy_from_slice(data);
        if hash_hex(&copy) != key {
            return Err(RegistryError::SourceChanged {
                path: shown.to_string(),
            });
        }
        self.store.put(&object, copy).await
    }

    /// Creates `models/<name>/versions/<n>.json` for the first free `n`.
    async fn create_version(&self, doc: &mut VersionDoc) -> Result<()> {
        let mut taken: BTreeSet<u64> = BTreeSet::new();
        loop {
            let listing = self.listing(&doc.name).await?;
            let mut n = listing.next_version();
            // A few attempts per listing: the numbers just above are the likely free ones.
            for _ in 0..8 {
                while taken.contains(&n) {
                    n = n.saturating_add(1);
                }
                doc.version = n;
                let body =
                    serde_json::to_vec_pretty(doc).map_err(|source| RegistryError::Encode {
                        what: "the version document",
                        source,
                    })?;
                let key = version_key(&doc.name, n);
                match self.store.create(&key, Bytes::from(body)).await? {
                    Created::Yes => return Ok(()),
                    Created::AlreadyExists => {
                        taken.insert(n);
                    }
                }
            }
        }
    }
}
