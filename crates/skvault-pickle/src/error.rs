//! The one error type of this crate. Offsets are byte positions in the pickle stream (after
//! decompression, for compressed joblib files).

/// Everything that can go wrong while reading, scanning or converting a pickle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// The input is empty.
    #[error("the input is empty")]
    Empty,
    /// The first bytes are neither a pickle opcode nor a known compression magic.
    #[error("not a pickle or joblib file: {found}")]
    NotAPickle { found: String },
    /// The stream ends in the middle of an opcode or before STOP.
    #[error("the pickle is truncated: {what} at offset {offset} runs past the end of the data")]
    Truncated { what: &'static str, offset: u64 },
    /// A length prefix asks for more bytes than the input has left.
    #[error("{opcode} at offset {offset} declares {length} bytes, but only {remaining} are left")]
    LengthTooLarge {
        opcode: &'static str,
        offset: u64,
        length: u64,
        remaining: u64,
    },
    /// A byte that is not an opcode of protocols 0 to 5.
    #[error("unknown opcode 0x{opcode:02x} at offset {offset}")]
    UnknownOpcode { opcode: u8, offset: u64 },
    /// An opcode found fewer items on the stack than it needs.
    #[error("{opcode} at offset {offset}: stack underflow")]
    StackUnderflow { opcode: &'static str, offset: u64 },
    /// An opcode that collects items up to a MARK found no MARK.
    #[error("{opcode} at offset {offset}: no MARK on the stack")]
    NoMark { opcode: &'static str, offset: u64 },
    /// GET of an index that nothing was stored at.
    #[error("{opcode} at offset {offset}: memo index {index} was never stored")]
    MemoMissing {
        opcode: &'static str,
        offset: u64,
        index: u64,
    },
    /// An opcode whose argument or operands are not what the unpickler accepts.
    #[error("{opcode} at offset {offset}: {message}")]
    Malformed {
        opcode: &'static str,
        offset: u64,
        message: String,
    },
    /// An opcode that only works with help this reader does not give: persistent ids,
    /// extension codes, out-of-band buffers.
    #[error("{opcode} at offset {offset} is not supported: {reason}")]
    Unsupported {
        opcode: &'static str,
        offset: u64,
        reason: &'static str,
    },
    /// A resource limit was reached (see `Limits`).
    #[error("limit exceeded: {what} (limit {limit})")]
    LimitExceeded { what: &'static str, limit: u64 },
    /// Bytes follow the STOP opcode where none are allowed.
    #[error("{count} unexpected bytes after STOP at offset {offset}")]
    TrailingData { offset: u64, count: u64 },
    /// The compressed container could not be decompressed.
    #[error("{codec} decompression failed: {source}")]
    Decompress {
        codec: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The decompressed stream would be larger than `Limits::max_decompressed`.
    #[error("{codec} data decompresses to more than {limit} bytes")]
    DecompressedTooLarge { codec: &'static str, limit: u64 },
    /// A joblib array (`NumpyArrayWrapper`) whose data cannot be located.
    #[error("joblib array at offset {offset}: {message}")]
    Joblib { offset: u64, message: String },
    /// The pickle is valid but has no equivalent in the skvault object tree.
    #[error("cannot convert {path}: {message}")]
    Convert { path: String, message: String },
    /// The pickle builds an object by calling something that is not a class.
    #[error(
        "cannot convert {path}: the pickle calls {callable} (offset {offset}), which is not a \
         class; skvault only creates objects through their own class"
    )]
    NotAClass {
        path: String,
        callable: String,
        offset: u64,
    },
    /// State saved by an older scikit-learn that cannot be brought to the current layout.
    #[error("cannot migrate {path}: {message}")]
    Migrate { path: String, message: String },
    /// A `.skv` file that its own reader refuses (for `scan`).
    #[error("invalid .skv file: {0}")]
    Skv(#[from] skvault_format::FormatError),
}

pub type Result<T, E = PickleError> = std::result::Result<T, E>;
