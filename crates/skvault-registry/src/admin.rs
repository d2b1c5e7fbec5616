//! Changing what is registered: aliases, tags, archiving, deleting, garbage collection, checks.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::cell;
use crate::docs::{
    alias_prefix, blob_key, deleted_key, now_rfc3339, state_prefix, version_key, writer_id,
    AliasEntry, GcReport, VersionDoc, VersionState,
};
use crate::error::{RegistryError, Result};
use crate::names::{check_alias, check_model_name, check_tag_key};
use crate::registry::{Registry, CONCURRENCY};

/// A CAS loop gives up after this many lost races in a row.
const MAX_CAS_ATTEMPTS: usize = 200;

/// `gc` keeps unreferenced blobs younger than this by default (see `REUSE_WINDOW`).
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(60 * 60);

fn to_bytes<T: serde::Serialize>(value: &T) -> Result<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|source| RegistryError::Encode {
            what: "a registry document",
            source,
        })
}

impl Registry {
    /// Points `alias` at `version`. With `expected`, this is a compare-and-swap: it succeeds
    /// only if the alias currently points at `expected` (`Some(None)`: the alias must not
    /// exist), and fails with `Conflict` otherwise. Without it, the alias is moved whatever
    /// it pointed at, still atomically. Returns the previous target.
    pub fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: u64,
        expected: Option<Option<u64>>,
    ) -> Result<Option<u64>> {
        check_model_name(name)?;
        check_alias(alias)?;
        if let Some(keys) = self.signature_policy()? {
            // An alias never points at a version the policy would refuse to hand out.
            let version = crate::Selector::Version(version);
            self.fetch_under(name, &version, &crate::NoProgress, Some(&keys))?;
        }
        self.block_on(async {
            let doc = self.doc(name, version).await?;
            let previous = self
                .move_alias(name, alias, Some(doc.version), expected)
                .await?;
            // A concurrent `delete` may have removed the version between the check and the
            // move: put the alias back rather than leave it dangling.
            if self
                .store
                .head(&version_key(name, version))
                .await?
                .is_none()
            {
                let _ = self
                    .move_alias(name, alias, previous, Some(Some(version)))
                    .await;
                return Err(RegistryError::VersionNotFound {
                    name: name.to_string(),
                    version,
                });
            }
            Ok(previous)
        })
    }

    /// Removes `alias` (optionally only if it points at `expected`). Returns its last target.
    pub fn delete_alias(&self, name: &str, alias: &str, expected: Option<u64>) -> Result<u64> {
        check_model_name(name)?;
        check_alias(alias)?;
        self.block_on(async {
            let current = self
                .alias_entry(name, alias)
                .await?
                .and_then(|(_, e)| e.version);
            let Some(current) = current else {
                return Err(RegistryError::AliasNotFound {
                    name: name.to_string(),
                    alias: alias.to_string(),
                });
            };
            let expected = Some(Some(expected.unwrap_or(current)));
            self.move_alias(name, alias, None, expected).await?;
            Ok(current)
        })
    }

    async fn move_alias(
        &self,
        name: &str,
        alias: &str,
        target: Option<u64>,
        expected: Option<Option<u64>>,
    ) -> Result<Option<u64>> {
        let prefix = alias_prefix(name, alias);
        let entry = AliasEntry {
            version: target,
            updated_at: now_rfc3339(),
            writer_id: writer_id(),
        };
        let body = to_bytes(&entry)?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.alias_entry(name, alias).await?;
            let seq = current.as_ref().map(|(s, _)| *s);
            let value = current.and_then(|(_, e)| e.version);
            if let Some(expected) = expected {
                if expected != value {
                    return Err(RegistryError::Conflict {
                        path: format!("{name}@{alias}"),
                        expected: show(expected),
                        found: show(value),
                    });
                }
            }
            if cell::swap(&self.store, &prefix, seq, body.clone()).await? {
                return Ok(value);
            }
        }
        Err(RegistryError::Conflict {
            path: format!("{name}@{alias}"),
            expected: "a quiet moment".into(),
            found: format!("{MAX_CAS_ATTEMPTS} concurrent changes"),
        })
    }

    /// Applies `change` to the version's mutable state with compare-and-swap.
    async fn update_state(
        &self,
        name: &str,
        version: u64,
        change: &(dyn Fn(&mut VersionState) + Sync),
    ) -> Result<VersionState> {
        let doc = self.doc(name, version).await?;
        let prefix = state_prefix(name, version);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (seq, mut state) = match self.state(name, version).await? {
                Some((seq, s)) => (Some(seq), s),
                None => (
                    None,
                    VersionState {
                        tags: doc.tags.clone(),
                        ..VersionState::default()
                    },
                ),
            };
            change(&mut state);
            state.updated_at = now_rfc3339();
            state.writer_id = writer_id();
            if cell::swap(&self.store, &prefix, seq, to_bytes(&state)?).await? {
                return Ok(state);
            }
        }
        Err(RegistryError::Conflict {
            path: prefix,
            expected: "a quiet moment".into(),
            found: format!("{MAX_CAS_ATTEMPTS} concurrent changes"),
        })
    }

    /// Sets and removes tags of a version; returns the tags now in force.
    pub fn tag(
        &self,
        name: &str,
        version: u64,
        set: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<BTreeMap<String, String>> {
        check_model_name(name)?;
        for k in set.keys().chain(remove) {
            check_tag_key(k)?;
        }
        let change = |s: &mut VersionState| {
            for k in remove {
                s.tags.remove(k);
            }
            s.tags
                .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        };
        self.block_on(self.update_state(name, version, &change))
            .map(|s| s.tags)
    }

    /// Hides a version from listings, searches and `Latest` (or shows it again). Archived
    /// versions stay loadable by number or alias; nothing is deleted.
    pub fn archive(&self, name: &str, version: u64, archived: bool) -> Result<()> {
        check_model_name(name)?;
        let change = move |s: &mut VersionState| s.archived = archived;
        self.block_on(self.update_state(name, version, &change))
            .map(|_| ())
    }

    /// Deletes a version for good: refuses while an alias points at it, leaves a tombstone
    /// so the number is never reused, then collects blobs unreferenced for longer than
    /// `grace`.
    pub fn delete_version(&self, name: &str, version: u64, grace: Duration) -> Result<GcReport> {
        check_model_name(name)?;
        self.block_on(async {
            self.doc(name, version).await?;
            let listing = self.listing(name).await?;
            let aliases: Vec<String> = self
                .aliases_async(name, &listing)
                .await?
                .into_iter()
                .filter(|(_, v)| *v == version)
                .map(|(a, _)| a)
                .collect();
            if !aliases.is_empty() {
                return Err(RegistryError::VersionInUse {
                    name: name.to_string(),
                    version,
                    aliases,
                });
            }
            // Tombstone first: a listing then always sees the number as used.
            let tomb = serde_json::json!({"version": version, "deleted_at": now_rfc3339()});
            self.store
                .create(&deleted_key(name, version), to_bytes(&tomb)?)
                .await?;
            self.store.delete(&version_key(name, version)).await?;
            // A listing follows links: only the log's own regular files are deleted, and
            // anything else there is left for `check` to report.
            for meta in self.store.list(&state_prefix(name, version)).await? {
                let key = meta.location.as_ref();
                if self.store.foreign(key).is_none() {
                    self.store.delete(key).await?;
                }
            }
            self.gc_async(grace).await
        })
    }

    /// Every version document in the registry, with its key (unreadable ones as errors).
    async fn all_docs(&self) -> Result<Vec<(String, Result<VersionDoc>)>> {
        let mut keys = Vec::new();
        for meta in self.store.list("models").await? {
            let key = meta.location.as_ref().to_string();
            let parts: Vec<&str> = key.split('/').collect();
            if let ["models", name, "versions", file] = parts.as_slice() {
                let n = file
                    .strip_suffix(".json")
                    .and_then(|n| n.parse::<u64>().ok());
                if let Some(n) = n {
                    keys.push((key.clone(), name.to_string(), n));
                }
            }
        }
        futures::stream::iter(keys)
            .map(|(key, name, n)| async move {
                let doc = match self.store.get(&key).await {
                    Ok(Some((bytes, _))) => VersionDoc::parse(&bytes, &key, &name, n),
                    Ok(None) => Err(RegistryError::VersionNotFound { name, version: n }),
                    Err(e) => Err(e),
                };
                Ok::<_, RegistryError>((key, doc))
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await
    }

    pub(crate) async fn gc_async(&self, grace: Duration) -> Result<GcReport> {
        // Versions are listed before blobs, and a blob is only deleted if it was last
        // written before this instant minus the grace period (docs/REGISTRY.md).
        let started = chrono::Utc::now();
        let mut referenced = BTreeSet::new();
        for (key, doc) in self.all_docs().await? {
            match doc {
                Ok(doc) => {
                    referenced.insert(doc.file.head);
                    referenced.extend(doc.file.blobs);
                }
                // Deleted meanwhile: its blobs are garbage now.
                Err(RegistryError::VersionNotFound { .. }) => {}
                // An unreadable document may still reference blobs: refuse to guess.
                Err(e) => {
                    return Err(RegistryError::document(
                        key,
                        format!("gc stopped, nothing deleted: {e}"),
                    ))
                }
            }
        }
        let cutoff = started - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let mut report = GcReport {
            referenced: referenced.len() as u64,
            ..GcReport::default()
        };
        for blob in self.store.list_blobs().await? {
            if blob.foreign.is_some() {
                report.foreign += 1;
                continue;
            }
            if blob.staging {
                continue;
            }
            let digest = blob.key.strip_prefix("blobs/").unwrap_or(&blob.key);
            if referenced.contains(digest) {
                continue;
            }
            if blob.last_modified >= cutoff {
                report.kept_recent += 1;
                continue;
            }
            self.store.delete(&blob.key).await?;
            report.deleted += 1;
            report.deleted_bytes += blob.size;
        }
        Ok(report)
    }

    /// Deletes blobs that no version refers to and that were written more than `grace` ago.
    /// A grace shorter than `DEFAULT_GC_GRACE` is safe only while nobody registers.
    pub fn gc(&self, grace: Duration) -> Result<GcReport> {
        self.block_on(self.gc_async(grace))
    }

    /// Checks the whole registry: every version document readable, every blob it needs
    /// present (with `deep`, also re-hashed), every alias pointing at an existing version,
    /// nothing in the store that the registry did not write (links, directories, devices,
    /// names outside the layout, found without following any link).
    /// Returns one line per problem; an empty list means healthy.
    pub fn check(&self, deep: bool) -> Result<Vec<String>> {
        self.block_on(async {
            let mut problems = Vec::new();
            let mut needed: BTreeMap<String, String> = BTreeMap::new();
            for (key, doc) in self.all_docs().await? {
                match doc {
                    Ok(doc) => {
                        for d in std::iter::once(&doc.file.head).chain(&doc.file.blobs) {
                            needed.entry(d.clone()).or_insert_with(|| key.clone());
                        }
                    }
                    Err(e) => problems.push(format!("{key}: {e}")),
                }
            }
            let present: BTreeMap<String, u64> = self
                .store
                .list_blobs()
                .await?
                .into_iter()
                .filter(|b| b.foreign.is_none() && !b.staging)
                .map(|b| {
                    let digest = b.key.strip_prefix("blobs/").unwrap_or(&b.key).to_string();
                    (digest, b.size)
                })
                .collect();
            for (digest, user) in &needed {
                if !present.contains_key(digest) {
                    problems.push(format!("{user}: missing blob {}", blob_key(digest)));
                } else if deep {
                    // As large as the listing says, and no larger.
                    let listed = present.get(digest).copied().unwrap_or(0);
                    if let Err(e) = self.blob(digest, listed).await {
                        problems.push(format!("{user}: {e}"));
                    }
                }
            }
            problems.extend(self.store.foreign_entries().await?);
            for name in self.models_async().await? {
                let listing = self.listing(&name).await?;
                for (alias, version) in self.aliases_async(&name, &listing).await? {
                    if !listing.versions.contains(&version) {
                        problems.push(format!(
                            "models/{name}: alias {alias} points at missing version {version}"
                        ));
                    }
                }
            }
            Ok(problems)
        })
    }
}

/// What the registry holds in blobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub blobs: u64,
    pub blob_bytes: u64,
}

impl Registry {
    /// Number and total size of the stored blobs.
    pub fn usage(&self) -> Result<Usage> {
        self.block_on(async {
            let mut u = Usage::default();
            for blob in self.store.list_blobs().await? {
                if blob.foreign.is_some() || blob.staging {
                    continue;
                }
                u.blobs += 1;
                u.blob_bytes += blob.size;
            }
            Ok(u)
        })
    }
}

fn show(v: Option<u64>) -> String {
    v.map_or_else(|| "no alias".to_string(), |n| format!("version {n}"))
}
