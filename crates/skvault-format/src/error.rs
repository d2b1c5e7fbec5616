//! One error type for everything that can go wrong reading or writing a `.skv` file.
//!
//! Every variant names the problem and, where it applies, the array or manifest
//! location it concerns, so a user can tell a truncated download from a tampered
//! blob without reading the code.

use std::path::PathBuf;

/// Where in the manifest a problem was found, as a JSON-pointer-like path (`/root/object/state/...`).
pub type ManifestPath = String;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The file could not be opened, read, written, synced or renamed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is shorter than the part being read requires.
    #[error("file is truncated: {what} needs {needed} bytes but only {available} are present")]
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },

    /// The first eight bytes are not `SKVAULT\0`.
    #[error("not a .skv file: bad magic bytes {found:02x?} (expected \"SKVAULT\\0\")")]
    BadMagic { found: Vec<u8> },

    /// The file was written by a newer, incompatible major version of the format.
    #[error("unsupported .skv format version {major}.{minor}: this reader supports major version {supported}")]
    UnsupportedVersion {
        major: u16,
        minor: u16,
        supported: u16,
    },

    /// A required-feature flag this reader does not know is set.
    #[error("the file requires features this reader does not know (flags {flags:#010x})")]
    UnknownFlags { flags: u32 },

    /// The declared manifest length is larger than the reader accepts.
    #[error("manifest length {declared} exceeds the limit of {max} bytes")]
    ManifestTooLarge { declared: u64, max: u64 },

    /// The BLAKE3 digest of the manifest does not match the one in the header.
    #[error("manifest digest mismatch: the manifest was altered or corrupted")]
    ManifestDigestMismatch,

    /// A compressed manifest (format 1.1) does not decompress to its declared length.
    #[error("compressed manifest is corrupt: {message}")]
    ManifestCodec { message: String },

    /// The manifest is not valid UTF-8 JSON (or nests deeper than the format allows).
    #[error("manifest is not valid JSON: {source}")]
    ManifestJson {
        #[source]
        source: serde_json::Error,
    },

    /// The manifest is valid JSON but does not follow the schema.
    #[error("malformed manifest at {path}: {message}")]
    Manifest { path: ManifestPath, message: String },

    /// A dtype that the format does not allow (object, unknown kind, absurd size, ...).
    #[error("dtype not allowed at {path}: {message}")]
    DType { path: ManifestPath, message: String },

    /// An array's declared placement does not fit the file.
    #[error("array {index}: {message}")]
    ArrayLayout { index: usize, message: String },

    /// A pack's (format 1.2) declared placement or members do not fit the file or each other.
    #[error("pack {pack}: {message}")]
    PackLayout { pack: usize, message: String },

    /// Bytes after the last blob, or non-zero padding: the file is not exactly what the manifest describes.
    #[error("unexpected bytes in the file: {message}")]
    UnexpectedBytes { message: String },

    /// A compressed blob could not be decompressed to its declared size.
    #[error("array {index}: {codec} data is corrupt: {message}")]
    Codec {
        index: usize,
        codec: &'static str,
        message: String,
    },

    /// The raw bytes of an array do not hash to the digest in the manifest.
    #[error("array {index}: digest mismatch (the data was altered or corrupted)")]
    DigestMismatch { index: usize },

    /// The caller asked to write something the format cannot hold.
    #[error("cannot write: {message}")]
    Unsupported { message: String },
}

impl FormatError {
    pub(crate) fn manifest(path: impl Into<String>, message: impl Into<String>) -> Self {
        FormatError::Manifest {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn layout(index: usize, message: impl Into<String>) -> Self {
        FormatError::ArrayLayout {
            index,
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FormatError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = FormatError> = std::result::Result<T, E>;
