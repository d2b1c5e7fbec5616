//! The JSON documents the registry stores, and where it stores them (`docs/REGISTRY.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{RegistryError, Result};

/// Written into every version document; readers refuse other values.
pub const VERSION_FORMAT: &str = "skvault-registry-version/1";

pub(crate) fn blob_key(digest: &str) -> String {
    format!("blobs/{digest}")
}

pub(crate) fn model_prefix(name: &str) -> String {
    format!("models/{name}/")
}

pub(crate) fn version_key(name: &str, version: u64) -> String {
    format!("models/{name}/versions/{version}.json")
}

pub(crate) fn deleted_key(name: &str, version: u64) -> String {
    format!("models/{name}/deleted/{version}.json")
}

pub(crate) fn state_prefix(name: &str, version: u64) -> String {
    format!("models/{name}/state/{version}/")
}

pub(crate) fn alias_prefix(name: &str, alias: &str) -> String {
    format!("models/{name}/aliases/{alias}/")
}

/// A random-enough id (128 bits of BLAKE3 over time, pid and a counter) that makes every
/// document a writer creates differ from any other writer's: `Store::create` relies on it.
pub(crate) fn writer_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = blake3::Hasher::new();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.update(&nanos.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.finalize().to_hex()[..32].to_string()
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// How the registered file is stored: its digest and size, and the blobs it is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    /// BLAKE3 of the whole `.skv` file: what `load` reassembles is checked against it.
    pub blake3: String,
    pub size: u64,
    /// Digest of the head blob (64-byte header + manifest).
    pub head: String,
    /// Digests of the arrays' stored bytes, in array-table order.
    pub blobs: Vec<String>,
}

/// Where a version came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// The path the file was registered from, as given (informative).
    pub source_path: Option<String>,
    /// BLAKE3 of the registered file (equal to `file.blake3`).
    pub source_blake3: String,
    /// The `.skv` writer and the environment recorded in the file's metadata.
    pub writer: String,
    #[serde(default)]
    pub environment: Value,
    /// The saved object's class, from the file's metadata.
    #[serde(default)]
    pub object: Option<String>,
    /// User-supplied references: run ids, data sets, commits, ...
    #[serde(default)]
    pub refs: Map<String, Value>,
}

/// An immutable version document: `models/<name>/versions/<n>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionDoc {
    pub format: String,
    pub name: String,
    pub version: u64,
    pub created_at: String,
    pub file: FileRef,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub lineage: Lineage,
    /// Unique per registration (see `writer_id`).
    pub writer_id: String,
    /// The file's signature (a Sigstore bundle, JSON text; docs/SIGNING.md), when it was
    /// registered signed. The stored file itself never embeds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl VersionDoc {
    pub(crate) fn parse(bytes: &[u8], key: &str, name: &str, version: u64) -> Result<VersionDoc> {
        let doc: VersionDoc =
            serde_json::from_slice(bytes).map_err(|e| RegistryError::document_json(key, e))?;
        if doc.format != VERSION_FORMAT {
            return Err(RegistryError::document(
                key,
                format!("unknown format {:?}", doc.format),
            ));
        }
        // A document copied or renamed to another key must not pass for that version.
        if doc.name != name || doc.version != version {
            return Err(RegistryError::document(
                key,
                format!(
                    "describes {} version {}, not {name} version {version}",
                    doc.name, doc.version
                ),
            ));
        }
        for d in std::iter::once(&doc.file.head).chain(&doc.file.blobs) {
            if !crate::layout::is_digest(d) {
                return Err(RegistryError::document(key, format!("bad digest {d:?}")));
            }
        }
        Ok(doc)
    }
}

/// The mutable state of a version, kept in a compare-and-swap log (`state/<n>/`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionState {
    pub tags: BTreeMap<String, String>,
    pub archived: bool,
    pub updated_at: String,
    #[serde(default)]
    pub writer_id: String,
}

/// One entry of an alias log (`aliases/<alias>/`): the version, or `None` once deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasEntry {
    pub version: Option<u64>,
    pub updated_at: String,
    #[serde(default)]
    pub writer_id: String,
}

/// A version as listings and searches show it: the document with its current tags,
/// whether it is archived, and the aliases pointing at it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    #[serde(flatten)]
    pub doc: VersionDoc,
    pub archived: bool,
    pub aliases: Vec<String>,
}

/// What `gc` did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GcReport {
    /// Blobs some version refers to.
    pub referenced: u64,
    pub deleted: u64,
    pub deleted_bytes: u64,
    /// Unreferenced blobs kept because they were written within the grace period.
    pub kept_recent: u64,
    /// Entries under `blobs/` that are not blobs the registry wrote (links, directories,
    /// other names): never deleted; `check` lists them.
    #[serde(default)]
    pub foreign: u64,
}
