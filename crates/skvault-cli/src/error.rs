//! The command line's one error type, and the one place that turns an error into a message
//! and an exit code.
//!
//! Exit codes: 0 success; 1 a verdict (`verify` found a bad digest, `scan` an unsafe or
//! unknown file, `registry check` a problem) or a refusal (`convert` of unsafe or untrusted
//! content, `export` of an estimator the exporter does not write, `import` of untrusted
//! names); 2 every other error, as for clap's usage errors. Verdicts are results, returned
//! as `Ok(1)` by the commands; refusals and errors are `CliError`s, sorted by `exit_code`.

use std::path::{Path, PathBuf};

use skvault_export::ExportError;
use skvault_format::trust::TrustError;
use skvault_format::FormatError;
use skvault_infer::InferError;
use skvault_pickle::FileError;
use skvault_registry::RegistryError;

use skvault_table::TableError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A `.skv` file could not be read or written (`inspect`, `verify`, `diff`).
    #[error(transparent)]
    Format(#[from] FormatError),

    /// `convert` failed or refused the pickle or joblib file.
    #[error(transparent)]
    Convert(#[from] FileError),

    /// A registry operation failed, or a registry argument is not allowed.
    #[error(transparent)]
    Registry(#[from] RegistryError),

    /// `serve` could not start.
    #[error(transparent)]
    Serve(#[from] skvault_serve::ServeError),

    /// `predict`: the model could not be opened or refused the input.
    #[error(transparent)]
    Infer(#[from] InferError),

    /// `export` or `import` failed or refused.
    #[error(transparent)]
    Export(#[from] ExportError),

    /// `keygen`, `sign` or `verify --pubkey` failed, or refused a file or its signature.
    #[error(transparent)]
    Sign(#[from] skvault_sign::SignError),

    /// A `--trust` name is not a qualified name.
    #[error(transparent)]
    Trust(#[from] TrustError),

    /// Printing a JSON report failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),

    /// A file named on the command line could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `predict`: the input table cannot be read (`path` when the message does not name it).
    #[error("{}{source}", path.as_deref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Table {
        path: Option<PathBuf>,
        #[source]
        source: TableError,
    },

    /// `--compress` names no codec.
    #[error("unknown codec {name:?} (none, zstd or lz4)")]
    UnknownCodec { name: String },

    /// `inspect --params` on a file that records no estimator parameters.
    #[error("{} records no estimator parameters", path.display())]
    NoParams { path: PathBuf },

    /// A registry command that reads (or changes what is there) found no registry at the
    /// URI; only `register` creates one.
    #[error(
        "no registry at {uri} (create one with `skvault registry --uri {uri} register FILE NAME`)"
    )]
    NoRegistry { uri: String },

    /// A command-line value or an input that does not fit the command (an output format,
    /// input columns that do not match the model's features, a method the model lacks, ...).
    #[error("{message}")]
    Input { message: String },
}

impl From<TableError> for CliError {
    fn from(source: TableError) -> Self {
        CliError::Table { path: None, source }
    }
}

impl CliError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        CliError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn input(message: impl Into<String>) -> Self {
        CliError::Input {
            message: message.into(),
        }
    }

    /// True when skvault refused the input on purpose (unsafe or untrusted content, an
    /// estimator the exporter does not write), rather than failing.
    pub fn is_refusal(&self) -> bool {
        match self {
            CliError::Convert(e) => matches!(
                e,
                FileError::Unsafe { .. }
                    | FileError::Untrusted { .. }
                    | FileError::Unmigratable { .. }
            ),
            CliError::Export(e) => matches!(
                e,
                ExportError::Unsupported { .. }
                    | ExportError::Untrusted { .. }
                    | ExportError::Infer(InferError::Unsupported { .. })
            ),
            CliError::Sign(e) | CliError::Registry(RegistryError::Signature { source: e, .. }) => {
                e.is_refusal() || matches!(e, skvault_sign::SignError::KeyFilePermissions { .. })
            }
            _ => false,
        }
    }

    /// The process's exit code for this error: 1 for a refusal, 2 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.is_refusal() {
            1
        } else {
            2
        }
    }
}

/// Prints `err` on stderr ("skvault: refused: ..." or "skvault: error: ...") and returns the
/// exit code.
pub fn report(err: &CliError) -> u8 {
    if err.is_refusal() {
        errln!("skvault: refused: {err}");
    } else {
        errln!("skvault: error: {err}");
    }
    if let Some(hint) = bad_magic(err).and_then(convert_hint) {
        errln!("skvault: {hint}");
    }
    err.exit_code()
}

/// The first bytes of a file that was not `.skv`, wherever the error wraps the reader's
/// (the wrappers are transparent, so their `source()` chains skip the `FormatError`).
fn bad_magic(err: &CliError) -> Option<&[u8]> {
    let format = match err {
        CliError::Format(f)
        | CliError::Infer(InferError::Format(f))
        | CliError::Export(ExportError::Format(f))
        | CliError::Export(ExportError::Infer(InferError::Format(f)))
        | CliError::Registry(RegistryError::Format { source: f, .. }) => f,
        _ => return None,
    };
    match format {
        FormatError::BadMagic { found } => Some(found),
        _ => None,
    }
}

/// For a file that is not `.skv` but one `skvault convert` reads: what it is and what to do.
pub fn convert_hint(first_bytes: &[u8]) -> Option<String> {
    skvault_pickle::convertible_kind(first_bytes).map(|kind| {
        format!(
            "this looks like {kind}: check it without running it with `skvault scan FILE`, \
             then make a .skv file with `skvault convert FILE NEW.skv`"
        )
    })
}
