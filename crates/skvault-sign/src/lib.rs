//! Signing and verifying `.skv` files in the format of OpenSSF's model signing: a Sigstore
//! bundle holding a DSSE envelope around an in-toto statement, signed with an ECDSA P-256
//! key (docs/SIGNING.md). The statement covers the file's SHA-256 (what `model_signing
//! verify key` checks) and, in skvault's own claim, the manifest digest, the file's BLAKE3,
//! the signer's identity and the signing time.
//!
//! Verifying checks, in order: the bundle's structure, that the key is trusted, the
//! signature, the statement, then the file's digests; each failure is its own
//! [`SignError`] variant.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod digests;
pub mod embed;
pub mod error;
pub mod fuzzing;
pub mod keys;
pub mod policy;

use std::io::Read;
use std::path::Path;

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature};

pub use bundle::{Bundle, Claim, Statement, MAX_BUNDLE_LEN};
pub use digests::FileDigests;
pub use embed::{embed, strip};
pub use error::{DigestKind, Result, SignError};
pub use keys::{read_private_key, read_public_key, write_key_pair, PrivateKey, PublicKey};
pub use policy::{
    check_open, check_policy, detached_path, embedded_bundle, find_signature, read_trusted_keys,
    trusted_keys_from_env, SignatureSource, TRUSTED_KEYS_ENV,
};

/// Signs a `.skv` file: returns the bundle (JSON bytes) for `MODEL.skv.sig`. `identity` is
/// recorded as the signer's name (free text, not checked by anyone), with the current time.
pub fn sign(path: &Path, key: &PrivateKey, identity: &str) -> Result<Vec<u8>> {
    sign_at(path, key, identity, &now())
}

/// [`sign`] with a given signing time (RFC 3339), for reproducible signatures.
pub fn sign_at(path: &Path, key: &PrivateKey, identity: &str, signed_at: &str) -> Result<Vec<u8>> {
    let d = FileDigests::of_file(path)?;
    sign_digests(&d, path, key, identity, signed_at)
}

/// [`sign_at`] for a file held in memory; `name` is the subject name recorded.
pub fn sign_bytes(
    bytes: &[u8],
    name: &str,
    key: &PrivateKey,
    identity: &str,
    signed_at: &str,
) -> Result<Vec<u8>> {
    let d = FileDigests::of_bytes(bytes)?;
    sign_digests(&d, Path::new(name), key, identity, signed_at)
}

/// The current time as the statement records it (UTC, RFC 3339, seconds).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn sign_digests(
    d: &FileDigests,
    path: &Path,
    key: &PrivateKey,
    identity: &str,
    signed_at: &str,
) -> Result<Vec<u8>> {
    if d.manifest_blake3 != d.header_manifest_digest {
        // Signing a damaged file would give a signature no verification can pass.
        return Err(SignError::NotSkv(
            skvault_format::FormatError::ManifestDigestMismatch,
        ));
    }
    let claim = Claim {
        file_sha256: d.sha256,
        file_blake3: d.blake3,
        manifest_blake3: d.manifest_blake3,
        identity: identity.to_owned(),
        signed_at: signed_at.to_owned(),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let payload = bundle::encode_statement(&name, &claim);
    let signature: Signature = key.key.sign(&bundle::pae(bundle::PAYLOAD_TYPE, &payload));
    let der: DerSignature = signature.to_der();
    Ok(bundle::encode_bundle(
        key.public_key().key_id(),
        &payload,
        der.as_bytes(),
    ))
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The id of the trusted key that made the signature.
    pub key_id: String,
    /// The subject name recorded by the signer (the file name it signed).
    pub name: String,
    /// The file's SHA-256 (hex), as signed and as found.
    pub sha256: String,
    /// skvault's claim, when the signer wrote one (a `model_signing` signature has none).
    pub claim: Option<Claim>,
}

/// Reads a signature file, refusing one larger than [`MAX_BUNDLE_LEN`] before reading it.
pub fn read_bundle_file(path: &Path) -> Result<Vec<u8>> {
    let io = |source| SignError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > MAX_BUNDLE_LEN {
        return Err(SignError::BundleTooLarge {
            size,
            max: MAX_BUNDLE_LEN,
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

/// Checks the bundle's signature with the trusted keys and returns the statement's claims,
/// without looking at any file.
pub fn verify_bundle(bundle_bytes: &[u8], trusted: &[PublicKey]) -> Result<(String, Statement)> {
    if trusted.is_empty() {
        return Err(SignError::NoTrustedKeys);
    }
    let b = bundle::parse_bundle(bundle_bytes)?;
    let candidates: Vec<&PublicKey> = match &b.key_hint {
        Some(hint) => {
            let found: Vec<_> = trusted.iter().filter(|k| k.key_id() == hint).collect();
            if found.is_empty() {
                return Err(SignError::UnknownKey {
                    key_id: hint.clone(),
                    trusted: trusted.len(),
                });
            }
            found
        }
        // Bundles of model-signing before 1.1 name no key: try each trusted one.
        None => trusted.iter().collect(),
    };
    let signature = Signature::from_der(&b.signature).map_err(|e| {
        SignError::malformed(
            "dsseEnvelope.signatures[0].sig",
            format!("not a DER ECDSA P-256 signature: {e}"),
        )
    })?;
    let message = bundle::pae(bundle::PAYLOAD_TYPE, &b.payload);
    let signer = candidates
        .iter()
        .find(|k| k.key.verify(&message, &signature).is_ok())
        .ok_or_else(|| SignError::BadSignature {
            key_ids: candidates.iter().map(|k| k.key_id().to_owned()).collect(),
        })?;
    let statement = bundle::parse_statement(&b.payload)?;
    Ok((signer.key_id().to_owned(), statement))
}

/// Verifies a signature of the `.skv` file at `path`: the bundle, the key (one of
/// `trusted`), the signature, then every digest the statement records against the file's
/// current bytes (the signed file, for a file with an embedded signature).
pub fn verify(path: &Path, bundle_bytes: &[u8], trusted: &[PublicKey]) -> Result<Verified> {
    let (key_id, statement) = verify_bundle(bundle_bytes, trusted)?;
    let d = FileDigests::of_file(path)?;
    check_digests(key_id, statement, &d)
}

/// [`verify`] for an opened file (a registry version reassembled in memory, say): the digests
/// are those of the very bytes it was opened from.
pub fn verify_skv(
    file: &skvault_format::SkvFile,
    bundle_bytes: &[u8],
    trusted: &[PublicKey],
) -> Result<Verified> {
    let (key_id, statement) = verify_bundle(bundle_bytes, trusted)?;
    let d = FileDigests::of_skv(file)?;
    check_digests(key_id, statement, &d)
}

/// [`verify`] for a file held in memory.
pub fn verify_bytes(bytes: &[u8], bundle_bytes: &[u8], trusted: &[PublicKey]) -> Result<Verified> {
    let (key_id, statement) = verify_bundle(bundle_bytes, trusted)?;
    let d = FileDigests::of_bytes(bytes)?;
    check_digests(key_id, statement, &d)
}

pub(crate) fn check_digests(
    key_id: String,
    statement: Statement,
    d: &FileDigests,
) -> Result<Verified> {
    let hex = keys::hex;
    let check = |which, signed: &[u8; 32], actual: &[u8; 32]| {
        if signed == actual {
            Ok(())
        } else {
            Err(SignError::DigestMismatch {
                which,
                signed: hex(signed),
                actual: hex(actual),
            })
        }
    };
    // The most specific first: a changed manifest is named as such, not as a changed file.
    if let Some(c) = &statement.claim {
        check(DigestKind::Manifest, &c.manifest_blake3, &d.manifest_blake3)?;
        check(
            DigestKind::HeaderManifest,
            &c.manifest_blake3,
            &d.header_manifest_digest,
        )?;
    }
    check(DigestKind::FileSha256, &statement.file_sha256, &d.sha256)?;
    if let Some(c) = &statement.claim {
        check(DigestKind::FileBlake3, &c.file_blake3, &d.blake3)?;
    }
    Ok(Verified {
        key_id,
        name: statement.name,
        sha256: hex(&d.sha256),
        claim: statement.claim,
    })
}
