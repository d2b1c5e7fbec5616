//! `skvault verify FILE [--json] [--pubkey PUB]... [--signature SIG]`: checks every digest,
//! then, with `--pubkey` (or `SKVAULT_TRUSTED_KEYS` set), the file's signature: embedded, or
//! `FILE.sig` beside it. Exit 0 when all pass, 1 on a mismatch or a
//! refused signature (named, on stderr; and in the JSON report), 2 on other errors (a
//! missing file, an unreadable key).

use std::path::Path;

use serde_json::json;
use skvault_format::FormatError;

use crate::CliError;

/// What a failed check found: the message, and the array it concerns (if any).
struct Failure {
    message: String,
    array: Option<String>,
}

pub fn run(
    path: &Path,
    as_json: bool,
    pubkeys: &[std::path::PathBuf],
    signature: Option<&Path>,
) -> Result<u8, CliError> {
    // Keys are read first: a typo in a key path is an error (2), whatever the file holds.
    let trusted = crate::sign::trusted_keys(pubkeys)?;
    let (arrays, mut failure) = check(path)?;
    let mut signed = None;
    if failure.is_none() && !trusted.is_empty() {
        match check_signature(path, signature, &trusted)? {
            Ok(v) => signed = Some(v),
            Err(message) => {
                failure = Some(Failure {
                    message,
                    array: None,
                })
            }
        }
    }
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
            "signature": signed.as_ref().map(|(v, at)| signature_json(v, at)),
        }))?;
    } else if failure.is_none() {
        outln!("{}: OK ({} arrays)", path.display(), arrays.unwrap_or(0));
        if let Some((v, at)) = &signed {
            let at = match at {
                skvault_sign::SignatureSource::Embedded => "embedded".to_string(),
                skvault_sign::SignatureSource::Detached(p) => format!("in {}", p.display()),
            };
            outln!("{}: signature OK ({}; {at})", path.display(), describe(v));
        }
    }
    Ok(if failure.is_none() { 0 } else { 1 })
}

/// The signature check: `Ok(Err(message))` when the signature is refused (exit 1),
/// `Err` when it could not be checked (exit 2). A file with no signature (none embedded,
/// no signature file) is a refusal: the caller asked for a signed file.
fn check_signature(
    path: &Path,
    signature: Option<&Path>,
    trusted: &[skvault_sign::PublicKey],
) -> Result<Result<(skvault_sign::Verified, skvault_sign::SignatureSource), String>, CliError> {
    match skvault_sign::check_policy(path, signature, trusted) {
        Ok(v) => Ok(Ok(v)),
        Err(skvault_sign::SignError::Io { source, path: sig })
            if source.kind() == std::io::ErrorKind::NotFound && signature == Some(&*sig) =>
        {
            Ok(Err(format!(
                "not signed: no signature file {}",
                sig.display()
            )))
        }
        Err(e) if e.is_refusal() => Ok(Err(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

fn describe(v: &skvault_sign::Verified) -> String {
    match &v.claim {
        Some(c) if c.identity.is_empty() => format!("key {}, signed {}", v.key_id, c.signed_at),
        Some(c) => format!(
            "key {}, identity {:?}, signed {}",
            v.key_id, c.identity, c.signed_at
        ),
        None => format!(
            "key {}, SHA-256 only: no skvault claim (identity, time), as model_signing writes",
            v.key_id
        ),
    }
}

fn signature_json(
    v: &skvault_sign::Verified,
    at: &skvault_sign::SignatureSource,
) -> serde_json::Value {
    let hex = |d: &[u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    json!({
        "key_id": v.key_id,
        "name": v.name,
        "sha256": v.sha256,
        "identity": v.claim.as_ref().map(|c| c.identity.clone()),
        "signed_at": v.claim.as_ref().map(|c| c.signed_at.clone()),
        "manifest_blake3": v.claim.as_ref().map(|c| hex(&c.manifest_blake3)),
        "blake3": v.claim.as_ref().map(|c| hex(&c.file_blake3)),
        "source": at.to_string(),
    })
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
