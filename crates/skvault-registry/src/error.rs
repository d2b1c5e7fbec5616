//! The registry's error type: one variant per failure a caller may want to tell apart.

use skvault_format::FormatError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry URI is not a folder path, `file://` URL or `s3://bucket/prefix`.
    #[error("invalid registry URI {uri:?}: {message}")]
    InvalidUri { uri: String, message: String },

    /// A model name, alias or tag key breaks the naming rules (see `docs/REGISTRY.md`).
    #[error("invalid {what} {value:?}: {message}")]
    InvalidName {
        what: &'static str,
        value: String,
        message: String,
    },

    /// An argument other than a name is out of range (a metric filter, a metric value, ...).
    #[error("invalid argument: {message}")]
    InvalidArgument { message: String },

    /// No model of that name.
    #[error("no model named {name:?} in the registry")]
    ModelNotFound { name: String },

    /// The model exists but not that version (or it was deleted).
    #[error("model {name:?} has no version {version}")]
    VersionNotFound { name: String, version: u64 },

    /// The model has no alias of that name.
    #[error("model {name:?} has no alias {alias:?}")]
    AliasNotFound { name: String, alias: String },

    /// The model has versions, but every one of them is archived.
    #[error("model {name:?} has no version that is not archived")]
    NoActiveVersion { name: String },

    /// Compare-and-swap lost: the alias or version state moved since it was read.
    #[error("{path}: changed concurrently (expected {expected}, found {found})")]
    Conflict {
        path: String,
        expected: String,
        found: String,
    },

    /// `delete` refused: aliases still point at the version.
    #[error("model {name:?} version {version} is the target of alias(es) {aliases:?}: move or delete them first")]
    VersionInUse {
        name: String,
        version: u64,
        aliases: Vec<String>,
    },

    /// A stored object's bytes do not hash to the digest it is stored under: tampering or corruption.
    #[error("{path}: digest mismatch (expected {expected}, got {actual}): the registry data was altered or corrupted")]
    DigestMismatch {
        path: String,
        expected: String,
        actual: String,
    },

    /// A signature was required (by the caller or by the registry's policy) and the
    /// version's is missing, by an untrusted key, or does not cover its file.
    #[error("{what}: signature refused: {source}")]
    Signature {
        what: String,
        #[source]
        source: skvault_sign::SignError,
    },

    /// A stored object is larger than what is read of its kind: a registry document over
    /// [`crate::MAX_DOCUMENT_BYTES`], or a blob larger than the file its version records.
    /// Nothing beyond the limit is read.
    #[error("{path}: {size} bytes or more, over the limit of {limit} bytes for {what}")]
    TooLarge {
        path: String,
        size: u64,
        limit: u64,
        what: &'static str,
    },

    /// A stored registry document (version, alias, state) is not what this version of skvault writes.
    #[error("{path}: malformed registry document: {message}")]
    Document { path: String, message: String },

    /// A stored registry document that is not valid JSON or not of the expected shape.
    #[error("{path}: malformed registry document: {source}")]
    DocumentJson {
        path: String,
        #[source]
        source: serde_json::Error,
    },

    /// A document the registry writes could not be serialized (a bug: the types always
    /// serialize).
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// A validated `.skv` file could not be cut into its head and blobs (a bug: the file was
    /// checked against exactly these bytes).
    #[error("{path}: cannot cut the file into head and blobs: {reason}")]
    Split { path: String, reason: &'static str },

    /// A blob that a version refers to is missing.
    #[error("{path}: missing blob (the registry is damaged)")]
    MissingBlob { path: String },

    /// Something in the store that the registry did not write (a symbolic link, a directory,
    /// a name outside the layout): never deleted, and reported by `check`.
    #[error("{path}: {reason}: not something the registry wrote, refusing to delete it")]
    Foreign { path: String, reason: String },

    /// The `.skv` file to register, or the reassembled one, is invalid.
    #[error("{path}: {source}")]
    Format {
        path: String,
        #[source]
        source: FormatError,
    },

    /// The file changed on disk while it was being registered.
    #[error("{path}: the file changed while it was being registered")]
    SourceChanged { path: String },

    /// A local file (source or destination) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The storage backend failed (network, permissions, server errors).
    #[error("storage error at {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: object_store::Error,
    },

    /// The storage backend cannot do what the registry needs (e.g. conditional create).
    #[error("the storage backend does not support {what}: {source}")]
    Unsupported {
        what: &'static str,
        #[source]
        source: object_store::Error,
    },
}

impl RegistryError {
    pub(crate) fn store(path: impl ToString, source: object_store::Error) -> Self {
        match source {
            e @ (object_store::Error::NotImplemented { .. }
            | object_store::Error::NotSupported { .. }) => RegistryError::Unsupported {
                what: "an operation the registry needs",
                source: e,
            },
            source => RegistryError::Store {
                path: path.to_string(),
                source,
            },
        }
    }

    pub(crate) fn document(path: impl ToString, message: impl Into<String>) -> Self {
        RegistryError::Document {
            path: path.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn document_json(path: impl ToString, source: serde_json::Error) -> Self {
        RegistryError::DocumentJson {
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        RegistryError::InvalidArgument {
            message: message.into(),
        }
    }

    /// True for "no such model / version / alias" errors.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RegistryError::ModelNotFound { .. }
                | RegistryError::VersionNotFound { .. }
                | RegistryError::AliasNotFound { .. }
                | RegistryError::NoActiveVersion { .. }
        )
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
