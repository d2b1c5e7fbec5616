//! Signed versions (docs/SIGNING.md, "Registry"): a version's signature lives in its
//! version document, and a registry may require every version to be signed by given keys
//! (`policy.json` at its root). Under that policy `register` refuses an unsigned file,
//! `fetch` (and so `load`, `get`, `serve`) verifies before returning bytes, and an alias
//! cannot be moved to a version whose signature does not verify.
//!
//! The policy lives in the store, so whoever can write the store can change it: it stops
//! mistakes (an unsigned model registered or promoted by accident), not an attacker with
//! write access. Against that, readers check with keys of their own
//! (`SKVAULT_TRUSTED_KEYS`, `require_signature=`), which nothing in the store can change.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use skvault_sign::{PublicKey, SignError};

use crate::docs::VersionDoc;
use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// The policy document's key, at the registry's root.
pub const POLICY_KEY: &str = "policy.json";
const POLICY_FORMAT: &str = "skvault-registry-policy/1";

#[derive(Debug, Serialize, Deserialize)]
struct PolicyDoc {
    format: String,
    /// PEM public keys; a version must be signed by one of them.
    require_signature: Vec<String>,
}

impl Registry {
    /// The keys the registry requires versions to be signed by; `None` without a policy.
    pub fn signature_policy(&self) -> Result<Option<Vec<PublicKey>>> {
        self.block_on(self.policy_keys())
    }

    pub(crate) async fn policy_keys(&self) -> Result<Option<Vec<PublicKey>>> {
        let Some((bytes, _)) = self.store.get(POLICY_KEY).await? else {
            return Ok(None);
        };
        let path = format!("{}/{POLICY_KEY}", self.store.description);
        let doc: PolicyDoc =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::document_json(&path, e))?;
        if doc.format != POLICY_FORMAT {
            return Err(RegistryError::document(
                &path,
                format!("unknown format {:?}", doc.format),
            ));
        }
        if doc.require_signature.is_empty() {
            return Err(RegistryError::document(
                &path,
                "require_signature lists no key",
            ));
        }
        let keys = doc
            .require_signature
            .iter()
            .map(|pem| PublicKey::from_pem(pem))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|problem| RegistryError::document(&path, format!("a key: {problem}")))?;
        Ok(Some(keys))
    }

    /// Requires every version registered from now on, and every version read or aliased,
    /// to be signed by one of `keys`; no keys removes the requirement.
    pub fn set_signature_policy(&self, keys: &[PublicKey]) -> Result<()> {
        self.block_on(async {
            if keys.is_empty() {
                return self.store.delete(POLICY_KEY).await;
            }
            let doc = PolicyDoc {
                format: POLICY_FORMAT.to_string(),
                require_signature: keys.iter().map(PublicKey::to_pem).collect(),
            };
            let bytes =
                serde_json::to_vec_pretty(&doc).map_err(|source| RegistryError::Encode {
                    what: "the registry policy",
                    source,
                })?;
            self.store.put(POLICY_KEY, Bytes::from(bytes)).await
        })
    }

    /// Verifies a fetched version's file (`bytes`, as `fetch` returns them) against the
    /// signature its document records, with `trusted`.
    pub fn check_signature(
        &self,
        doc: &VersionDoc,
        bytes: &[u8],
        trusted: &[PublicKey],
    ) -> Result<()> {
        let what = format!("{} version {}", doc.name, doc.version);
        check_bytes(
            bytes,
            doc.signature.as_deref().map(str::as_bytes),
            &what,
            trusted,
        )
    }
}

/// Verifies `bytes` (a `.skv` file, possibly with an embedded signature) against a detached
/// `signature` or its embedded one, with `trusted`: the check `register` runs under a policy.
pub(crate) fn check_bytes(
    bytes: &[u8],
    signature: Option<&[u8]>,
    what: &str,
    trusted: &[PublicKey],
) -> Result<()> {
    let refused = |source| RegistryError::Signature {
        what: what.to_string(),
        source,
    };
    let Some(bundle) = signature else {
        return Err(refused(SignError::NotSigned {
            path: what.into(),
            looked: "signature with it".into(),
        }));
    };
    skvault_sign::verify_bytes(bytes, bundle, trusted)
        .map(|_| ())
        .map_err(refused)
}
