//! `skvault verify FILE [--json]`: checks every digest. Exit 0 when all match, 1 on a
//! mismatch (named, on stderr; and in the JSON report), 2 on other errors.

use std::path::Path;

use serde_json::json;
use skvault_format::FormatError;

use crate::CliError;

/// What a failed check found: the message, and the array it concerns (if any).
struct Failure {
    message: String,
    array: Option<String>,
}

pub fn run(path: &Path, as_json: bool) -> Result<u8, CliError> {
    let (arrays, failure) = check(path)?;
    if let Some(f) = &failure {
        let what = f
            .array
            .as_ref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        errln!("{}: FAILED: {}{what}", path.display(), f.message);
    }
    if as_json {
        crate::output::print_json(&json!({
            "file": path.display().to_string(),
            "ok": failure.is_none(),
            "arrays": arrays,
            "error": failure.as_ref().map(|f| f.message.clone()),
            "array": failure.as_ref().and_then(|f| f.array.clone()),
        }))?;
    } else if failure.is_none() {
        outln!("{}: OK ({} arrays)", path.display(), arrays.unwrap_or(0));
    }
    Ok(if failure.is_none() { 0 } else { 1 })
}

/// The number of arrays (unknown when the manifest itself is bad) and the first failure.
fn check(path: &Path) -> Result<(Option<usize>, Option<Failure>), CliError> {
    let file = match skvault_format::SkvFile::open(path) {
        Err(FormatError::ManifestDigestMismatch) => {
            let message = "the manifest digest does not match".to_string();
            let failure = Failure {
                message,
                array: None,
            };
            return Ok((None, Some(failure)));
        }
        other => other?,
    };
    let arrays = file.manifest().arrays.len();
    match file.verify() {
        Ok(()) => Ok((Some(arrays), None)),
        Err(e @ (FormatError::DigestMismatch { .. } | FormatError::Codec { .. })) => {
            let index = match &e {
                FormatError::DigestMismatch { index } | FormatError::Codec { index, .. } => *index,
                _ => 0,
            };
            let array = crate::inspect::array_paths(file.manifest())
                .remove(&index)
                .unwrap_or_else(|| format!("array {index}"));
            let failure = Failure {
                message: e.to_string(),
                array: Some(array),
            };
            Ok((Some(arrays), Some(failure)))
        }
        Err(e) => Err(e.into()),
    }
}
