//! Opening a store from a URI, and the handful of object operations the registry uses.
//!
//! Everything goes through `object_store`, so a folder and an S3 bucket run the same code.
//! The registry needs three things of a backend: atomic whole-object puts, conditional
//! create (`PutMode::Create`: fails if the object exists) and strongly consistent listing.
//! Both `LocalFileSystem` and S3 (with `If-None-Match: *`) provide them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{RegistryError, Result};
use crate::layout::{self, Role};

/// The registry used when no URI is given.
pub const DEFAULT_URI: &str = "./skvault-registry";

/// The largest registry document (version, alias entry, state, policy) read from a store:
/// skvault writes documents of a few kilobytes (metadata and metrics included), and a store
/// that serves more is refused before it can fill memory.
pub const MAX_DOCUMENT_BYTES: u64 = 16 << 20;

/// Where the registry lives, parsed from its URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local folder (created if missing).
    Folder(std::path::PathBuf),
    /// An S3 bucket and key prefix (possibly empty).
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// Parses `./dir`, `/abs/dir`, `file:///abs/dir` or `s3://bucket[/prefix]`.
    pub fn parse(uri: &str) -> Result<Location> {
        let bad = |message: &str| RegistryError::InvalidUri {
            uri: uri.to_string(),
            message: message.to_string(),
        };
        let uri_trimmed = if uri.is_empty() { DEFAULT_URI } else { uri };
        if let Some(rest) = uri_trimmed.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name after s3://"));
            }
            let prefix = prefix.trim_matches('/').to_string();
            if !prefix.is_empty() {
                Path::parse(&prefix).map_err(|e| bad(&format!("bad prefix: {e}")))?;
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix,
            });
        }
        if let Some(rest) = uri_trimmed.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad("a file:// URI needs an absolute path (file:///dir)"));
            }
            return Ok(Location::Folder(rest.into()));
        }
        if uri_trimmed.contains("://") {
            return Err(bad("only folders, file:// and s3:// are supported"));
        }
        Ok(Location::Folder(uri_trimmed.into()))
    }
}

/// A store plus the runtime-free helpers over it. Keys are relative to the registry root.
pub(crate) struct Store {
    inner: Arc<dyn ObjectStore>,
    pub(crate) description: String,
    /// The folder of a folder store (`None` on S3): the layout checks read it directly,
    /// without following links (see `layout`).
    root: Option<std::path::PathBuf>,
    /// After a conditional create succeeds, wait this long and read the object back: see
    /// `create`. Zero for folders (`link(2)` is atomic).
    settle: Duration,
}

/// Default settle time on S3; `SKVAULT_REGISTRY_SETTLE_MS` or the `skvault_settle_ms`
/// option override it (0 turns the read-back off for servers known to be atomic).
pub const DEFAULT_S3_SETTLE: Duration = Duration::from_millis(250);

/// An entry under `blobs/`: its key (raw, as `layout` reads it), and why it is foreign
/// (`None`: a blob, or a staged upload, that the registry wrote).
pub(crate) struct BlobEntry {
    pub(crate) key: String,
    /// `<digest>#<n>`: an upload `object_store` is staging, or one a killed writer left.
    /// `object_store` neither lists nor deletes these; neither does `gc`.
    pub(crate) staging: bool,
    pub(crate) size: u64,
    pub(crate) last_modified: chrono::DateTime<chrono::Utc>,
    pub(crate) foreign: Option<String>,
}

/// What a conditional put found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Created {
    Yes,
    AlreadyExists,
}

impl Store {
    /// Opens the store; `options` are object_store's S3 configuration keys
    /// (`aws_endpoint`, `aws_allow_http`, ...), which override the `AWS_*` environment.
    pub(crate) fn open(location: &Location, options: &[(String, String)]) -> Result<Store> {
        match location {
            Location::Folder(dir) => {
                if !options.is_empty() {
                    return Err(RegistryError::invalid(
                        "storage options only apply to s3:// registries",
                    ));
                }
                if let Ok(meta) = std::fs::metadata(dir) {
                    if !meta.is_dir() {
                        return Err(RegistryError::InvalidUri {
                            uri: dir.display().to_string(),
                            message: format!(
                                "it is a {}, not a registry folder",
                                crate::layout::kind_name(meta.file_type())
                            ),
                        });
                    }
                }
                std::fs::create_dir_all(dir).map_err(|source| RegistryError::Io {
                    path: dir.display().to_string(),
                    source,
                })?;
                let fs = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| RegistryError::store(dir.display(), e))?
                    .with_automatic_cleanup(true)
                    .with_fsync(true);
                Ok(Store {
                    inner: Arc::new(fs),
                    description: dir.display().to_string(),
                    root: Some(dir.clone()),
                    settle: Duration::ZERO,
                })
            }
            Location::S3 { bucket, prefix } => {
                let mut settle = match std::env::var("SKVAULT_REGISTRY_SETTLE_MS") {
                    Ok(v) => parse_ms(&v)?,
                    Err(_) => DEFAULT_S3_SETTLE,
                };
                for (key, value) in options {
                    if key == "skvault_settle_ms" {
                        settle = parse_ms(value)?;
                    }
                }
                let s3 = s3_client(bucket, options)?;
                let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, Path::from(prefix.as_str())))
                };
                Ok(Store {
                    inner,
                    description: format!("s3://{bucket}/{prefix}"),
                    root: None,
                    settle,
                })
            }
        }
    }

    fn err(&self, key: &str, e: object_store::Error) -> RegistryError {
        RegistryError::store(format!("{}/{key}", self.description), e)
    }

    /// A registry document's bytes and metadata (at most [`MAX_DOCUMENT_BYTES`]), or `None`
    /// if it does not exist.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<(Bytes, ObjectMeta)>> {
        self.get_limited(key, MAX_DOCUMENT_BYTES, "a registry document")
            .await
    }

    /// The object's bytes and metadata, or `None` if it does not exist; refused with
    /// [`RegistryError::TooLarge`] when its recorded size or the bytes sent exceed `limit`
    /// (a store is not trusted to send what its headers say), without reading further.
    pub(crate) async fn get_limited(
        &self,
        key: &str,
        limit: u64,
        what: &'static str,
    ) -> Result<Option<(Bytes, ObjectMeta)>> {
        let got = match self.inner.get(&Path::from(key)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err(key, e)),
        };
        let meta = got.meta.clone();
        let too_large = |size: u64| RegistryError::TooLarge {
            path: format!("{}/{key}", self.description),
            size,
            limit,
            what,
        };
        if meta.size > limit {
            return Err(too_large(meta.size));
        }
        // Sized by the recorded length (within `limit`, checked above); the bytes the store
        // actually sends are counted again as they come.
        let mut buf = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
        let mut stream = got.into_stream();
        loop {
            match stream.try_next().await {
                Ok(Some(chunk)) => {
                    let size = (buf.len() as u64).saturating_add(chunk.len() as u64);
                    if size > limit {
                        return Err(too_large(size));
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(Some((Bytes::from(buf), meta))),
                // Deleted between the request and the read (local files).
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(self.err(key, e)),
            }
        }
    }

    pub(crate) async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        match self.inner.head(&Path::from(key)).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// Writes the whole object atomically, replacing any existing one.
    pub(crate) async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.inner
            .put(&Path::from(key), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.err(key, e))
    }

    /// Creates the object only if nothing exists at `key` (`If-None-Match: *` on S3).
    ///
    /// Some S3-compatible servers check the condition and then write, non-atomically (s3s-fs
    /// 0.14 does), or ignore it: two writers can then both be told they created the object,
    /// and the last write wins. With a settle time, a writer reads the object back after it
    /// and counts as the creator only if it finds its own bytes; callers make their bytes
    /// unique (a writer nonce), so exactly one writer wins as long as concurrent PUTs finish
    /// within the settle time of each other. See docs/REGISTRY.md.
    pub(crate) async fn create(&self, key: &str, bytes: Bytes) -> Result<Created> {
        let opts = PutOptions::from(PutMode::Create);
        match self
            .inner
            .put_opts(&Path::from(key), PutPayload::from(bytes.clone()), opts)
            .await
        {
            Ok(_) if self.settle.is_zero() => Ok(Created::Yes),
            Ok(_) => {
                tokio::time::sleep(self.settle).await;
                match self.get(key).await? {
                    Some((stored, _)) if stored == bytes => Ok(Created::Yes),
                    _ => Ok(Created::AlreadyExists),
                }
            }
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(Created::AlreadyExists),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// Why the object at `key` is not one the registry may delete (a link, a directory, a
    /// name outside the layout: see `layout`), or `None` when it may be deleted.
    pub(crate) fn foreign(&self, key: &str) -> Option<String> {
        match &self.root {
            Some(root) => layout::foreign_in_folder(root, key),
            None => {
                let segments: Vec<&str> = key.split('/').collect();
                match layout::role(&segments) {
                    Role::File => None,
                    _ => Some("not a key of the registry layout".into()),
                }
            }
        }
    }

    /// Deletes the object; a missing object is not an error. Refuses (`Foreign`) anything
    /// the registry did not write, so that no link makes it delete outside the store.
    pub(crate) async fn delete(&self, key: &str) -> Result<()> {
        if let Some(reason) = self.foreign(key) {
            return Err(RegistryError::Foreign {
                path: format!("{}/{key}", self.description),
                reason,
            });
        }
        match self.inner.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// Every object under `prefix` (recursively), keys relative to the registry root.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let path = Path::from(prefix);
        let listed: std::result::Result<Vec<ObjectMeta>, _> =
            self.inner.list(Some(&path)).try_collect().await;
        match listed {
            Ok(v) => Ok(v),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(self.err(prefix, e)),
        }
    }

    /// The entries under `blobs/`. A folder is read directly, one level, without following
    /// links: a link or a directory there is reported as foreign, never entered.
    pub(crate) async fn list_blobs(&self) -> Result<Vec<BlobEntry>> {
        let Some(root) = &self.root else {
            return Ok(self
                .list("blobs")
                .await?
                .into_iter()
                .map(|meta| {
                    let key = meta.location.as_ref().to_string();
                    BlobEntry {
                        foreign: self.foreign(&key),
                        staging: false,
                        key,
                        size: meta.size,
                        last_modified: meta.last_modified,
                    }
                })
                .collect());
        };
        let dir = root.join("blobs");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(RegistryError::Io {
                    path: dir.display().to_string(),
                    source,
                })
            }
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| RegistryError::Io {
                path: dir.display().to_string(),
                source,
            })?;
            // The raw name, not object_store's percent-encoded form (`#` of staged files).
            let key = format!("blobs/{}", entry.file_name().to_string_lossy());
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue; // removed meanwhile
            };
            let last_modified = meta
                .modified()
                .map(chrono::DateTime::<chrono::Utc>::from)
                .unwrap_or_else(|_| chrono::Utc::now());
            let segments: Vec<&str> = key.split('/').collect();
            out.push(BlobEntry {
                foreign: self.foreign(&key),
                staging: layout::role(&segments) == Role::Staging,
                key,
                size: meta.len(),
                last_modified,
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Every entry of the store that does not belong to the layout (links, directories,
    /// devices, files with names the registry never writes), one line each.
    pub(crate) async fn foreign_entries(&self) -> Result<Vec<String>> {
        if let Some(root) = &self.root {
            return Ok(layout::foreign_entries_in_folder(root));
        }
        Ok(self
            .list("")
            .await?
            .iter()
            .filter_map(|meta| {
                let key = meta.location.as_ref();
                let segments: Vec<&str> = key.split('/').collect();
                match layout::role(&segments) {
                    Role::File | Role::Staging => None,
                    _ => Some(format!(
                        "{key}: foreign entry: an object that is not part of the registry layout (gc and delete leave it alone)"
                    )),
                }
            })
            .collect())
    }

    /// The names of the "folders" directly under `prefix`.
    pub(crate) async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let path = Path::from(prefix);
        match self.inner.list_with_delimiter(Some(&path)).await {
            Ok(res) => Ok(res
                .common_prefixes
                .iter()
                .filter_map(|p| p.filename().map(str::to_string))
                .collect()),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(self.err(prefix, e)),
        }
    }
}

/// An S3 client for `bucket`: settings from the `AWS_*` environment, overridden by
/// object_store's configuration keys in `options` (the registry's `skvault_settle_ms` skipped).
pub(crate) fn s3_client(
    bucket: &str,
    options: &[(String, String)],
) -> Result<object_store::aws::AmazonS3> {
    install_tls_provider();
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    for (key, value) in options {
        if key == "skvault_settle_ms" {
            continue;
        }
        let key: AmazonS3ConfigKey = key
            .to_ascii_lowercase()
            .parse()
            .map_err(|_| RegistryError::invalid(format!("unknown S3 option {key:?}")))?;
        builder = builder.with_config(key, value);
    }
    builder
        .build()
        .map_err(|e| RegistryError::store(format!("s3://{bucket}"), e))
}

/// Makes ring rustls's process-wide crypto provider, once, before the first HTTP client is
/// built: reqwest is compiled without a provider of its own (`rustls-no-provider`), so that a
/// source install needs no aws-lc-rs C build. An error means a provider is already installed
/// (by an earlier call, or by another crate in this process), which is as good.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn parse_ms(value: &str) -> Result<Duration> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            RegistryError::invalid(format!(
                "settle time {value:?} is not a number of milliseconds"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uris() {
        assert_eq!(
            Location::parse("").ok(),
            Some(Location::Folder(DEFAULT_URI.into()))
        );
        assert_eq!(
            Location::parse("file:///tmp/reg").ok(),
            Some(Location::Folder("/tmp/reg".into()))
        );
        assert_eq!(
            Location::parse("s3://bucket/team/models/").ok(),
            Some(Location::S3 {
                bucket: "bucket".into(),
                prefix: "team/models".into()
            })
        );
        assert_eq!(
            Location::parse("s3://bucket").ok(),
            Some(Location::S3 {
                bucket: "bucket".into(),
                prefix: String::new()
            })
        );
        for bad in [
            "s3://",
            "s3:///x",
            "gs://b/x",
            "file://relative",
            "http://x",
        ] {
            assert!(
                matches!(Location::parse(bad), Err(RegistryError::InvalidUri { .. })),
                "{bad}"
            );
        }
    }
}
