//! The `Registry` handle: opening a store, and reading models, versions and aliases.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use futures::{StreamExt, TryStreamExt};

use crate::cell;
use crate::docs::{
    alias_prefix, model_prefix, state_prefix, version_key, AliasEntry, VersionDoc, VersionInfo,
    VersionState,
};
use crate::error::{RegistryError, Result};
use crate::names::{check_alias, check_model_name};
use crate::store::{Location, Store};

/// How many objects are read or written at once.
pub(crate) const CONCURRENCY: usize = 8;

/// Which version of a model to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The highest version that is not archived.
    Latest,
    Version(u64),
    Alias(String),
}

/// Callbacks for progress bars; every method has a do-nothing default.
pub trait Progress: Sync {
    fn begin(&self, _what: &str, _total_bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn end(&self) {}
    /// Asked between two blobs and before a version is created or a file written: an error
    /// stops the operation there (the command line's Ctrl-C), returned as
    /// [`RegistryError::Io`](crate::RegistryError::Io). Blobs already uploaded stay until
    /// `gc` collects them; no version is created and no file is left at a destination.
    fn check(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// [`Progress::check`] as a registry error about `path`.
pub(crate) fn checked(progress: &dyn Progress, path: &str) -> Result<()> {
    progress.check().map_err(|source| RegistryError::Io {
        path: path.to_string(),
        source,
    })
}

/// No progress reporting.
pub struct NoProgress;
impl Progress for NoProgress {}

/// A model registry in a folder or an S3 bucket. Methods block; they run on a small tokio
/// runtime owned by the handle, so callers need no async runtime of their own (and must
/// not call them from inside one).
pub struct Registry {
    pub(crate) store: Store,
    rt: tokio::runtime::Runtime,
    uri: String,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("uri", &self.uri).finish()
    }
}

/// What one listing of `models/<name>/` tells.
#[derive(Debug, Default)]
pub(crate) struct ModelListing {
    pub versions: BTreeSet<u64>,
    pub deleted: BTreeSet<u64>,
    /// Versions that have a state log.
    pub stateful: BTreeSet<u64>,
    pub aliases: BTreeSet<String>,
}

impl ModelListing {
    pub(crate) fn exists(&self) -> bool {
        !self.versions.is_empty() || !self.deleted.is_empty()
    }

    /// Whether a version document exists that is not tombstoned.
    pub(crate) fn has_live_version(&self) -> bool {
        self.versions.iter().any(|n| !self.deleted.contains(n))
    }

    /// The next version number to try: never reuses a deleted one.
    pub(crate) fn next_version(&self) -> u64 {
        let last = self.versions.iter().chain(&self.deleted).max().copied();
        last.map_or(1, |n| n.saturating_add(1))
    }
}

impl Registry {
    /// Opens (creating the folder if needed) the registry at `uri`: a folder path,
    /// `file:///abs/path` or `s3://bucket/prefix`. S3 settings come from the `AWS_*`
    /// environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`, ...).
    pub fn open(uri: &str) -> Result<Registry> {
        Self::open_with_options(uri, &[])
    }

    /// Like `open`, with object_store S3 options (`aws_endpoint`, ...) overriding the environment.
    pub fn open_with_options(uri: &str, options: &[(String, String)]) -> Result<Registry> {
        let location = Location::parse(uri)?;
        let rt = runtime()?;
        // Building the S3 client may need the runtime (credential providers).
        let store = {
            let _guard = rt.enter();
            Store::open(&location, options)?
        };
        Ok(Registry {
            store,
            rt,
            uri: uri.to_string(),
        })
    }

    /// Opens the registry at `uri` only if one is there, creating nothing: `Ok(None)` for a
    /// folder that does not exist, or a folder or S3 prefix without the registry's top-level
    /// `models/` or `blobs/` entries (every registration writes both; deletions keep
    /// tombstones under `models/`). For commands that only read, so that a mistyped path
    /// is reported instead of silently becoming a new, empty registry.
    pub fn open_existing(uri: &str) -> Result<Option<Registry>> {
        Self::open_existing_with_options(uri, &[])
    }

    /// Like `open_existing`, with the S3 options of `open_with_options`.
    pub fn open_existing_with_options(
        uri: &str,
        options: &[(String, String)],
    ) -> Result<Option<Registry>> {
        if let Location::Folder(dir) = Location::parse(uri)? {
            if let Err(e) = std::fs::symlink_metadata(&dir) {
                if e.kind() == std::io::ErrorKind::NotFound {
                    return Ok(None);
                }
            }
        }
        let registry = Self::open_with_options(uri, options)?;
        let top = registry.block_on(registry.store.list_dirs(""))?;
        Ok(top
            .iter()
            .any(|d| d == "models" || d == "blobs")
            .then_some(registry))
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The model's listing, or `ModelNotFound` when it has no entries at all.
    pub(crate) async fn existing_listing(&self, name: &str) -> Result<ModelListing> {
        let listing = self.listing(name).await?;
        if !listing.exists() {
            return Err(RegistryError::ModelNotFound {
                name: name.to_string(),
            });
        }
        Ok(listing)
    }

    pub(crate) async fn listing(&self, name: &str) -> Result<ModelListing> {
        let prefix = model_prefix(name);
        let mut out = ModelListing::default();
        for meta in self.store.list(&prefix).await? {
            let key = meta.location.as_ref();
            let Some(rest) = key.strip_prefix(&prefix) else {
                continue;
            };
            let mut parts = rest.split('/');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("versions"), Some(file), None) => {
                    if let Some(n) = parse_numbered(file) {
                        out.versions.insert(n);
                    }
                }
                (Some("deleted"), Some(file), None) => {
                    if let Some(n) = parse_numbered(file) {
                        out.deleted.insert(n);
                    }
                }
                (Some("state"), Some(n), Some(_)) => {
                    if let Ok(n) = n.parse() {
                        out.stateful.insert(n);
                    }
                }
                (Some("aliases"), Some(alias), Some(_)) => {
                    out.aliases.insert(alias.to_string());
                }
                _ => {}
            }
        }
        Ok(out)
    }

    pub(crate) async fn doc(&self, name: &str, version: u64) -> Result<VersionDoc> {
        let key = version_key(name, version);
        match self.store.get(&key).await? {
            Some((bytes, _)) => VersionDoc::parse(&bytes, &key, name, version),
            None => Err(self.not_found(name, version).await),
        }
    }

    async fn not_found(&self, name: &str, version: u64) -> RegistryError {
        match self.listing(name).await {
            Ok(l) if l.exists() => RegistryError::VersionNotFound {
                name: name.to_string(),
                version,
            },
            Ok(_) => RegistryError::ModelNotFound {
                name: name.to_string(),
            },
            Err(e) => e,
        }
    }

    pub(crate) async fn state(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<(u64, VersionState)>> {
        let prefix = state_prefix(name, version);
        match cell::read(&self.store, &prefix).await? {
            None => Ok(None),
            Some((seq, bytes)) => {
                let state = serde_json::from_slice(&bytes)
                    .map_err(|e| RegistryError::document_json(cell::entry_key(&prefix, seq), e))?;
                Ok(Some((seq, state)))
            }
        }
    }

    pub(crate) async fn alias_entry(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<Option<(u64, AliasEntry)>> {
        let prefix = alias_prefix(name, alias);
        match cell::read(&self.store, &prefix).await? {
            None => Ok(None),
            Some((seq, bytes)) => {
                let entry = serde_json::from_slice(&bytes)
                    .map_err(|e| RegistryError::document_json(cell::entry_key(&prefix, seq), e))?;
                Ok(Some((seq, entry)))
            }
        }
    }

    pub(crate) async fn aliases_async(
        &self,
        name: &str,
        listing: &ModelListing,
    ) -> Result<BTreeMap<String, u64>> {
        let entries: Vec<(String, Option<(u64, AliasEntry)>)> =
            futures::stream::iter(listing.aliases.iter())
                .map(|alias| async move {
                    Ok::<_, RegistryError>((alias.clone(), self.alias_entry(name, alias).await?))
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect()
                .await?;
        Ok(entries
            .into_iter()
            .filter_map(|(alias, entry)| Some((alias, entry?.1.version?)))
            .collect())
    }

    pub(crate) async fn resolve_async(&self, name: &str, selector: &Selector) -> Result<u64> {
        check_model_name(name)?;
        match selector {
            Selector::Version(n) => Ok(*n),
            Selector::Alias(alias) => {
                check_alias(alias)?;
                match self.alias_entry(name, alias).await? {
                    Some((
                        _,
                        AliasEntry {
                            version: Some(n), ..
                        },
                    )) => Ok(n),
                    _ => {
                        if self.listing(name).await?.exists() {
                            Err(RegistryError::AliasNotFound {
                                name: name.to_string(),
                                alias: alias.clone(),
                            })
                        } else {
                            Err(RegistryError::ModelNotFound {
                                name: name.to_string(),
                            })
                        }
                    }
                }
            }
            Selector::Latest => {
                let listing = self.listing(name).await?;
                if listing.versions.is_empty() {
                    return Err(if listing.exists() {
                        RegistryError::NoActiveVersion {
                            name: name.to_string(),
                        }
                    } else {
                        RegistryError::ModelNotFound {
                            name: name.to_string(),
                        }
                    });
                }
                for &n in listing.versions.iter().rev() {
                    if !listing.stateful.contains(&n) {
                        return Ok(n);
                    }
                    match self.state(name, n).await? {
                        Some((_, s)) if s.archived => continue,
                        _ => return Ok(n),
                    }
                }
                Err(RegistryError::NoActiveVersion {
                    name: name.to_string(),
                })
            }
        }
    }

    /// The version number `selector` designates now.
    pub fn resolve(&self, name: &str, selector: &Selector) -> Result<u64> {
        self.block_on(self.resolve_async(name, selector))
    }

    pub(crate) async fn info_async(
        &self,
        name: &str,
        version: u64,
        aliases: &BTreeMap<String, u64>,
    ) -> Result<VersionInfo> {
        let (doc, state) = futures::try_join!(self.doc(name, version), self.state(name, version))?;
        let mut doc = doc;
        let archived = match state {
            Some((_, s)) => {
                doc.tags = s.tags;
                s.archived
            }
            None => false,
        };
        let aliases = aliases
            .iter()
            .filter(|(_, v)| **v == version)
            .map(|(a, _)| a.clone())
            .collect();
        Ok(VersionInfo {
            doc,
            archived,
            aliases,
        })
    }

    /// One version, with its current tags, archive flag and aliases.
    pub fn version(&self, name: &str, selector: &Selector) -> Result<VersionInfo> {
        self.block_on(async {
            let n = self.resolve_async(name, selector).await?;
            let listing = self.listing(name).await?;
            let aliases = self.aliases_async(name, &listing).await?;
            self.info_async(name, n, &aliases).await
        })
    }

    pub(crate) async fn versions_async(
        &self,
        name: &str,
        include_archived: bool,
    ) -> Result<Vec<VersionInfo>> {
        check_model_name(name)?;
        let listing = self.existing_listing(name).await?;
        let aliases = self.aliases_async(name, &listing).await?;
        let aliases = &aliases;
        let mut infos: Vec<VersionInfo> = futures::stream::iter(listing.versions.iter().copied())
            .map(|n| async move {
                match self.info_async(name, n, aliases).await {
                    // Deleted between the listing and the read.
                    Err(RegistryError::VersionNotFound { .. }) => Ok(None),
                    other => other.map(Some),
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_filter_map(|x| async move { Ok(x) })
            .try_collect()
            .await?;
        infos.retain(|i| include_archived || !i.archived);
        infos.sort_by_key(|i| i.doc.version);
        Ok(infos)
    }

    /// Every version of `name`, oldest first; archived ones only if asked.
    pub fn versions(&self, name: &str, include_archived: bool) -> Result<Vec<VersionInfo>> {
        self.block_on(self.versions_async(name, include_archived))
    }

    pub(crate) async fn models_async(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for name in self.store.list_dirs("models").await? {
            // Models whose versions were all deleted keep their tombstones (numbers are
            // never reused) but are not listed.
            if check_model_name(&name).is_ok() && self.listing(&name).await?.has_live_version() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The names of the models that have at least one version that is not deleted, sorted
    /// (archived versions count: archiving hides a version, not its model).
    pub fn models(&self) -> Result<Vec<String>> {
        self.block_on(self.models_async())
    }

    /// The aliases of `name` and the versions they point at.
    pub fn aliases(&self, name: &str) -> Result<BTreeMap<String, u64>> {
        check_model_name(name)?;
        self.block_on(async {
            let listing = self.existing_listing(name).await?;
            self.aliases_async(name, &listing).await
        })
    }
}

impl Registry {
    /// Every alias of `name` that was ever set, with all its entries oldest first (a
    /// deleted alias ends with an entry whose `version` is `None`): the alias logs as kept.
    pub fn alias_history(&self, name: &str) -> Result<BTreeMap<String, Vec<AliasEntry>>> {
        check_model_name(name)?;
        self.block_on(async {
            let listing = self.existing_listing(name).await?;
            let mut out = BTreeMap::new();
            for alias in &listing.aliases {
                let prefix = alias_prefix(name, alias);
                let mut seqs: Vec<u64> = self
                    .store
                    .list(&prefix)
                    .await?
                    .iter()
                    .filter_map(|m| cell::entry_seq(&prefix, m.location.as_ref()))
                    .collect();
                seqs.sort_unstable();
                let mut entries = Vec::with_capacity(seqs.len());
                for seq in seqs {
                    let key = cell::entry_key(&prefix, seq);
                    if let Some((bytes, _)) = self.store.get(&key).await? {
                        let entry: AliasEntry = serde_json::from_slice(&bytes)
                            .map_err(|e| RegistryError::document_json(key.clone(), e))?;
                        entries.push(entry);
                    }
                }
                out.insert(alias.clone(), entries);
            }
            Ok(out)
        })
    }
}

fn parse_numbered(file: &str) -> Option<u64> {
    let digits = file.strip_suffix(".json")?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The runtime a registry (or an object listing) drives its store with.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| RegistryError::Io {
            path: "<tokio runtime>".into(),
            source,
        })
}
