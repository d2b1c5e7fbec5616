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
    skvault_sign::detached_path(model)
}

/// The keys to check signatures with: those given, else the deployment's
/// (`SKVAULT_TRUSTED_KEYS`), else none.
pub fn trusted_keys(given: &[PathBuf]) -> Result<Vec<skvault_sign::PublicKey>, CliError> {
    if !given.is_empty() {
        return Ok(skvault_sign::read_trusted_keys(given)?);
    }
    Ok(skvault_sign::trusted_keys_from_env()?.unwrap_or_default())
}

pub fn sign(
    model: &Path,
    key: &Path,
    identity: &str,
    out: Option<&Path>,
    embed: bool,
    as_json: bool,
) -> Result<u8, CliError> {
    let out = match (embed, out) {
        (true, _) => model.to_path_buf(),
        (false, Some(o)) => o.to_path_buf(),
        (false, None) => default_signature_path(model),
    };
    if !embed {
        skvault_format::atomic::refuse_input_as_output(&out, &[model, key])
            .map_err(|e| CliError::io(&out, e))?;
    }
    let key = skvault_sign::read_private_key(key)?;
    let bundle = skvault_sign::sign(model, &key, identity)?;
    if embed {
        skvault_sign::embed(model, &bundle, model)?;
    } else {
        skvault_format::atomic::write_atomic(&out, |w| w.write_all(&bundle))
            .map_err(|f| CliError::io(&f.path, f.source))?;
    }
    let key_id = key.public_key().key_id().to_owned();
    if as_json {
        crate::output::print_json(&json!({
            "file": model.display().to_string(),
            "signature": if embed { "embedded".to_string() } else { out.display().to_string() },
            "key_id": key_id,
            "identity": identity,
        }))?;
    } else if embed {
        outln!(
            "{}: signed with key {key_id}, signature embedded",
            model.display()
        );
    } else {
        outln!(
            "{}: signed with key {key_id}, signature in {}",
            model.display(),
            out.display()
        );
    }
    Ok(0)
}

/// `skvault detach`: writes the signed file of MODEL (without its embedded signature) to
/// OUT and the signature to OUT.sig, the form `model_signing verify key` checks.
pub fn detach(model: &Path, out: &Path, as_json: bool) -> Result<u8, CliError> {
    let sig = default_signature_path(out);
    skvault_format::atomic::refuse_input_as_output(out, &[model])
        .map_err(|e| CliError::io(out, e))?;
    skvault_format::atomic::refuse_input_as_output(&sig, &[model])
        .map_err(|e| CliError::io(&sig, e))?;
    let Some(bundle) = skvault_sign::embedded_bundle(model)? else {
        return Err(skvault_sign::SignError::NotSigned {
            path: model.to_path_buf(),
            looked: default_signature_path(model),
        }
        .into());
    };
    skvault_sign::strip(model, out)?;
    skvault_format::atomic::write_atomic(&sig, |w| w.write_all(&bundle))
        .map_err(|f| CliError::io(&f.path, f.source))?;
    if as_json {
        crate::output::print_json(&json!({
            "file": out.display().to_string(),
            "signature": sig.display().to_string(),
        }))?;
    } else {
        outln!(
            "wrote {} and its signature {}",
            out.display(),
            sig.display()
        );
    }
    Ok(0)
}
