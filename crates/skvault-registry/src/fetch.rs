//! Loading a version: fetch its blobs, check each digest, reassemble the `.skv` file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::docs::{blob_key, VersionDoc};
use crate::error::{RegistryError, Result};
use crate::registry::{checked, Progress, Registry, Selector, CONCURRENCY};
use crate::skv::{hash_hex, parse_head, reassemble};

impl Registry {
    /// A blob's bytes (at most `limit`: no blob is larger than its version's file), checked
    /// against the digest it is stored under.
    pub(crate) async fn blob(&self, digest: &str, limit: u64) -> Result<Bytes> {
        let key = blob_key(digest);
        let (bytes, _) = self
            .store
            .get_limited(&key, limit, "a blob of this version's file")
            .await?
            .ok_or_else(|| RegistryError::MissingBlob {
                path: format!("{}/{key}", self.store.description),
            })?;
        let actual = hash_hex(&bytes);
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                path: format!("{}/{key}", self.store.description),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    async fn assemble(&self, doc: &VersionDoc, progress: &dyn Progress) -> Result<Vec<u8>> {
        let where_ = format!("{} version {}", doc.name, doc.version);
        progress.begin("download", doc.file.size);
        let head = self.blob(&doc.file.head, doc.file.size).await?;
        progress.advance(head.len() as u64);
        let manifest = parse_head(&head, doc.file.size, &where_)?;
        let unique: BTreeSet<&str> = doc.file.blobs.iter().map(String::as_str).collect();
        let at = where_.as_str();
        let fetched: BTreeMap<&str, Bytes> = futures::stream::iter(unique)
            .map(|d| async move {
                checked(progress, at)?;
                let b = self.blob(d, doc.file.size).await?;
                progress.advance(b.len() as u64);
                Ok::<_, RegistryError>((d, b))
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        progress.end();
        let blobs: Vec<Bytes> = doc
            .file
            .blobs
            .iter()
            .map(|d| fetched.get(d.as_str()).cloned().unwrap_or_default())
            .collect();
        let out = reassemble(&head, &manifest, &blobs, doc.file.size, &where_)?;
        let actual = hash_hex(&out);
        if actual != doc.file.blake3 {
            return Err(RegistryError::DigestMismatch {
                path: where_,
                expected: doc.file.blake3.clone(),
                actual,
            });
        }
        Ok(out)
    }

    /// The version's document and the bytes of its `.skv` file, identical to the registered
    /// file. Every blob's digest and the whole file's digest are checked.
    pub fn fetch(
        &self,
        name: &str,
        selector: &Selector,
        progress: &dyn Progress,
    ) -> Result<(VersionDoc, Vec<u8>)> {
        let policy = self.signature_policy()?;
        self.fetch_under(name, selector, progress, policy.as_deref())
    }

    /// [`Registry::fetch`] under the registry's signature policy `keys` (read by the caller).
    pub(crate) fn fetch_under(
        &self,
        name: &str,
        selector: &Selector,
        progress: &dyn Progress,
        keys: Option<&[skvault_sign::PublicKey]>,
    ) -> Result<(VersionDoc, Vec<u8>)> {
        let (doc, bytes) = self.block_on(async {
            let n = self.resolve_async(name, selector).await?;
            let doc = self.doc(name, n).await?;
            let bytes = self.assemble(&doc, progress).await?;
            Ok::<_, RegistryError>((doc, bytes))
        })?;
        // Under the registry's policy, nothing unsigned leaves it.
        if let Some(keys) = keys {
            self.check_signature(&doc, &bytes, keys)?;
        }
        Ok((doc, bytes))
    }

    /// Writes the version's `.skv` file to `dest` atomically (temporary file, then rename),
    /// and its signature, when it has one, to `dest.sig`.
    pub fn download(
        &self,
        name: &str,
        selector: &Selector,
        dest: &Path,
        progress: &dyn Progress,
    ) -> Result<VersionDoc> {
        let (doc, bytes) = self.fetch(name, selector, progress)?;
        let shown = dest.display().to_string();
        checked(progress, &shown)?;
        skvault_format::atomic::write_atomic(dest, |w| {
            for chunk in bytes.chunks(skvault_format::write::PROGRESS_CHUNK) {
                w.write_all(chunk)?;
                progress.check()?;
            }
            Ok(())
        })
        .map_err(|f| RegistryError::Io {
            path: f.path.display().to_string(),
            source: f.source,
        })?;
        if let Some(sig) = &doc.signature {
            // Beside the file, where `skvault verify` and loaders look for it.
            let sig_path = skvault_sign::detached_path(dest);
            skvault_format::atomic::write_atomic(&sig_path, |w| w.write_all(sig.as_bytes()))
                .map_err(|f| RegistryError::Io {
                    path: f.path.display().to_string(),
                    source: f.source,
                })?;
        }
        Ok(doc)
    }
}
