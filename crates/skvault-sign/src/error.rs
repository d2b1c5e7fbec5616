//! The errors of signing and verifying. Each reason a signature is refused is its own
//! variant, so that callers (the CLI's exit code, later a Python `SignatureError`) can tell
//! a tampered file from an unknown key or a damaged bundle.

use std::path::PathBuf;

/// Which digest of the file disagrees with the signed statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestKind {
    /// The BLAKE3 of the manifest bytes (skvault's claim; covers every array digest).
    Manifest,
    /// The manifest digest stored in the header (bytes 24..56), against skvault's claim.
    HeaderManifest,
    /// The SHA-256 of the whole file (model-signing's resource digest).
    FileSha256,
    /// The BLAKE3 of the whole file (skvault's claim).
    FileBlake3,
}

impl DigestKind {
    pub fn name(self) -> &'static str {
        match self {
            DigestKind::Manifest => "manifest BLAKE3",
            DigestKind::HeaderManifest => "header's manifest digest",
            DigestKind::FileSha256 => "file SHA-256",
            DigestKind::FileBlake3 => "file BLAKE3",
        }
    }
}

impl std::fmt::Display for DigestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: the private key file can be read or written by others (mode {mode:04o}); make it private: chmod 600 {}", path.display(), path.display())]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    #[error("{}: not a usable key: {problem}", path.display())]
    BadKey { path: PathBuf, problem: String },
    #[error("{}: already exists; keygen does not replace a key", path.display())]
    KeyExists { path: PathBuf },
    #[error("not a .skv file: {0}")]
    NotSkv(#[source] skvault_format::FormatError),
    #[error(
        "the signature is {size} bytes, more than the {max} bytes a signature bundle may have"
    )]
    BundleTooLarge { size: u64, max: u64 },
    #[error("malformed signature bundle: {field}: {problem}")]
    MalformedBundle { field: String, problem: String },
    #[error("no trusted public key was given")]
    NoTrustedKeys,
    #[error("{}: not signed: it has no embedded signature and there is no {}", path.display(), looked.display())]
    NotSigned { path: PathBuf, looked: PathBuf },
    #[error("signed by an unknown key (key id {key_id}): it is none of the {trusted} trusted public key(s)")]
    UnknownKey { key_id: String, trusted: usize },
    #[error("bad signature: the envelope's signature does not verify with {}", describe_keys(.key_ids))]
    BadSignature { key_ids: Vec<String> },
    #[error("the signature does not cover this file: {which} mismatch (signed {signed}, the file has {actual})")]
    DigestMismatch {
        which: DigestKind,
        signed: String,
        actual: String,
    },
}

fn describe_keys(ids: &[String]) -> String {
    match ids {
        [one] => format!("the trusted key {one}"),
        many => format!("any of the {} trusted keys", many.len()),
    }
}

impl SignError {
    /// A short stable name for the reason, for programs (`SignatureError.reason` in Python,
    /// the CLI's JSON report).
    pub fn reason(&self) -> &'static str {
        match self {
            SignError::Io { .. } => "io",
            SignError::KeyFilePermissions { .. } => "key_permissions",
            SignError::BadKey { .. } => "bad_key",
            SignError::KeyExists { .. } => "key_exists",
            SignError::NotSkv(_) => "not_skv",
            SignError::BundleTooLarge { .. } => "signature_too_large",
            SignError::MalformedBundle { .. } => "malformed_signature",
            SignError::NoTrustedKeys => "no_trusted_keys",
            SignError::NotSigned { .. } => "not_signed",
            SignError::UnknownKey { .. } => "unknown_key",
            SignError::BadSignature { .. } => "bad_signature",
            SignError::DigestMismatch { .. } => "digest_mismatch",
        }
    }

    pub(crate) fn malformed(field: impl Into<String>, problem: impl Into<String>) -> Self {
        SignError::MalformedBundle {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// True when the error is a refusal of the file or its signature (a failed check), as
    /// opposed to a problem with the inputs (a missing file, an unreadable key).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SignError::BundleTooLarge { .. }
                | SignError::NotSigned { .. }
                | SignError::MalformedBundle { .. }
                | SignError::UnknownKey { .. }
                | SignError::BadSignature { .. }
                | SignError::DigestMismatch { .. }
        )
    }
}

pub type Result<T> = std::result::Result<T, SignError>;
