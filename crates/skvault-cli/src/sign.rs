//! `skvault keygen` and `skvault sign`: an ECDSA P-256 key pair, and a detached signature
//! (`MODEL.skv.sig`, a Sigstore bundle that `model_signing verify key` also reads). The
//! signature check of `skvault verify --pubkey` is in verify.rs. See docs/SIGNING.md.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::CliError;

pub fn keygen(out: &Path, as_json: bool) -> Result<u8, CliError> {
    let key = skvault_sign::PrivateKey::generate();
    let public = skvault_sign::write_key_pair(out, &key)?;
    let key_id = key.public_key().key_id().to_owned();
    if as_json {
        crate::output::print_json(&json!({
            "private_key": out.display().to_string(),
            "public_key": public.display().to_string(),
            "key_id": key_id,
        }))?;
    } else {
        outln!(
            "wrote {} (private, keep it secret) and {} (public, key id {key_id})",
            out.display(),
            public.display()
        );
    }
    Ok(0)
}

/// The default signature path: `MODEL.skv.sig` beside the model.
pub fn default_signature_path(model: &Path) -> PathBuf {
    let mut name = model.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

pub fn sign(
    model: &Path,
    key: &Path,
    identity: &str,
    out: Option<&Path>,
    as_json: bool,
) -> Result<u8, CliError> {
    let out = out.map_or_else(|| default_signature_path(model), Path::to_path_buf);
    skvault_format::atomic::refuse_input_as_output(&out, &[model, key])
        .map_err(|e| CliError::io(&out, e))?;
    let key = skvault_sign::read_private_key(key)?;
    let bundle = skvault_sign::sign(model, &key, identity)?;
    skvault_format::atomic::write_atomic(&out, |w| w.write_all(&bundle))
        .map_err(|f| CliError::io(&f.path, f.source))?;
    let key_id = key.public_key().key_id().to_owned();
    if as_json {
        crate::output::print_json(&json!({
            "file": model.display().to_string(),
            "signature": out.display().to_string(),
            "key_id": key_id,
            "identity": identity,
        }))?;
    } else {
        outln!(
            "{}: signed with key {key_id}, signature in {}",
            model.display(),
            out.display()
        );
    }
    Ok(0)
}
