//! One error type for everything that can go wrong reading or writing a `.skv` file.
//!
//! Every variant names the problem and, where it applies, the array or manifest
//! location it concerns, so a user can tell a truncated download from a tampered
//! blob without reading the code.

use std::path::PathBuf;

use crate::codec::Codec;

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
    #[error("compressed manifest is corrupt: {source}")]
    ManifestCodec {
        #[source]
        source: DecodeError,
    },

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

    /// The embedded signature's trailer (format 1.3) is malformed or does not fit the file.
    #[error("embedded signature: {message}")]
    SignatureTrailer { message: String },

    /// A compressed blob could not be decompressed to its declared size.
    #[error("array {index}: {codec} data is corrupt: {source}")]
    Codec {
        index: usize,
        codec: &'static str,
        #[source]
        source: DecodeError,
    },

    /// The raw bytes of an array do not hash to the digest in the manifest.
    #[error("array {index}: digest mismatch (the data was altered or corrupted)")]
    DigestMismatch { index: usize },

    /// A compression level the codec does not take: any level without a codec or with lz4,
    /// a zstd level outside zstd's range.
    #[error("cannot write: {}", level_problem(*codec, *level))]
    CompressionLevel { codec: Codec, level: i32 },

    /// The codec failed to compress (zstd reports resource failures this way).
    #[error("cannot write: {codec} compression failed: {source}")]
    Compress {
        codec: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The bytes given for an array are not `itemsize x` its element count.
    #[error("cannot write: array {index}: {length} bytes do not match shape {shape:?}")]
    ArrayData {
        index: usize,
        length: u64,
        shape: Vec<u64>,
    },

    /// The blobs would end past the largest offset the format can hold.
    #[error("cannot write: arrays too large")]
    ArraysTooLarge,

    /// The object tree nests deeper than readers accept (`MAX_JSON_DEPTH` JSON levels).
    #[error(
        "cannot write: the object graph nests too deeply ({depth} JSON levels, at most {max})"
    )]
    TooDeep { depth: usize, max: usize },

    /// A writer invariant broke: a bug in skvault, never caused by the data.
    #[error("cannot write: internal error: {invariant}")]
    Internal { invariant: &'static str },
}

fn level_problem(codec: Codec, level: i32) -> String {
    match codec {
        Codec::None => "a compression level needs a codec (zstd or lz4)".into(),
        Codec::Lz4 => "lz4 has no compression levels".into(),
        Codec::Zstd => format!(
            "zstd level {level} is out of range {:?}",
            zstd::compression_level_range()
        ),
    }
}

/// Why stored bytes (a blob, or the compressed manifest) do not decode to the bytes the
/// manifest or header declares. The file is corrupt or hostile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// An uncompressed blob whose stored and raw lengths differ.
    #[error("stored and raw lengths differ")]
    LengthMismatch,

    /// A zstd blob with no bytes.
    #[error("empty zstd stream")]
    EmptyZstd,

    /// Bytes that are not a zstd data frame where one must start.
    #[error("not a zstd data frame (skippable frames and trailing bytes are refused)")]
    NotZstdFrame,

    /// zstd cannot tell where a frame ends (its error name).
    #[error("{0}")]
    ZstdFrame(&'static str),

    /// A zstd frame that claims to end past the stored bytes.
    #[error("truncated zstd frame")]
    TruncatedZstdFrame,

    /// The zstd decompressor refused the data.
    #[error("{0}")]
    Zstd(#[source] std::io::Error),

    /// The lz4 decompressor refused the data.
    #[error("{0}")]
    Lz4(#[source] lz4_flex::block::DecompressError),

    /// The data decoded to another length than declared.
    #[error("decoded {decoded} bytes, expected {expected}")]
    WrongLength { decoded: usize, expected: usize },

    /// A blob marked with the `fields` filter whose dtype has no fields to split.
    #[error("the fields filter does not apply to this dtype")]
    FilterMismatch,

    /// A value of a delta-coded column (FORMAT.md 3.6) that decodes to -1 without being
    /// coded as 0: no writer produces it.
    #[error("element {element} of a delta-coded column is not the coding of any value")]
    NotDeltaCoded { element: u64 },

    /// A pack without members, hence without a dtype.
    #[error("the pack has no members")]
    EmptyPack,

    /// A pack whose raw length does not fit in memory.
    #[error("pack too large")]
    PackTooLarge,

    /// Reading a pack's stored bytes failed.
    #[error("{0}")]
    Read(#[source] Box<FormatError>),

    /// A pack failed to decode; every array in it reports the pack's error.
    #[error("in pack {pack}: {source}")]
    InPack {
        pack: usize,
        #[source]
        source: std::sync::Arc<DecodeError>,
    },

    /// A compressed manifest whose declared raw length is 0.
    #[error("the decompressed manifest length is 0")]
    ManifestEmpty,

    /// A compressed manifest declared larger than its stored bytes can expand to.
    #[error("a manifest of {raw} bytes cannot come from {stored} stored bytes of zstd")]
    ManifestExpansion { raw: u64, stored: u64 },
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
