//! Signing from Python: `skvault.sign`, `skvault.verify_signature`, `skvault.keygen`, and the
//! signature policy every loader applies before it builds anything
//! (`require_signature=`, `SKVAULT_TRUSTED_KEYS`; docs/SIGNING.md).

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use skvault_format::SkvFile;
use skvault_sign::{PublicKey, SignError, SignatureSource, Verified};

use crate::errors::{from_format, new_err};

/// Converts a signing error: the file's own problems as format errors, I/O as `OSError`,
/// everything about keys and signatures a `SignatureError` carrying its reason.
pub fn from_sign(py: Python<'_>, err: SignError) -> PyErr {
    match err {
        SignError::NotSkv(e) => from_format(py, e),
        SignError::Io { path, source } => {
            from_format(py, skvault_format::FormatError::Io { path, source })
        }
        other => {
            let reason = other.reason();
            new_err(py, "SignatureError", (other.to_string(), reason))
        }
    }
}

/// The keys a loader checks signatures with. `mode` says where they come from:
/// `"keys"` (the paths in `keys`), `"env"` (`SKVAULT_TRUSTED_KEYS` if set, else no check),
/// `"env-required"` (`SKVAULT_TRUSTED_KEYS`, which must be set) or `"off"`.
pub fn policy_keys(
    py: Python<'_>,
    mode: &str,
    keys: Option<Vec<PathBuf>>,
) -> PyResult<Option<Vec<PublicKey>>> {
    let result = match (mode, keys) {
        ("off", _) => Ok(None),
        ("keys", Some(paths)) => skvault_sign::read_trusted_keys(&paths).map(Some),
        ("env", _) => skvault_sign::trusted_keys_from_env(),
        ("env-required", _) => match skvault_sign::trusted_keys_from_env() {
            Ok(None) => return Err(env_not_set(py)),
            other => other,
        },
        (other, _) => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown signature policy {other:?}"
            )))
        }
    };
    result.map_err(|e| from_sign(py, e))
}

fn env_not_set(py: Python<'_>) -> PyErr {
    let message = format!(
        "require_signature=True but {} is not set: name the trusted public keys",
        skvault_sign::TRUSTED_KEYS_ENV
    );
    new_err(py, "SignatureError", (message, "no_trusted_keys"))
}

/// Applies the policy to an opened file: with keys, its signature must verify.
pub fn enforce(py: Python<'_>, file: &SkvFile, keys: Option<&[PublicKey]>) -> PyResult<()> {
    let Some(keys) = keys else {
        return Ok(());
    };
    py.detach(|| skvault_sign::check_open(file, None, keys))
        .map(|_| ())
        .map_err(|e| from_sign(py, e))
}

fn report<'py>(
    py: Python<'py>,
    v: &Verified,
    source: &SignatureSource,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("key_id", &v.key_id)?;
    d.set_item("name", &v.name)?;
    d.set_item("sha256", &v.sha256)?;
    d.set_item("identity", v.claim.as_ref().map(|c| c.identity.clone()))?;
    d.set_item("signed_at", v.claim.as_ref().map(|c| c.signed_at.clone()))?;
    d.set_item(
        "source",
        match source {
            SignatureSource::Embedded => "embedded".to_string(),
            SignatureSource::Detached(p) => p.display().to_string(),
        },
    )?;
    Ok(d)
}

/// Makes a key pair: returns (private key path, public key path, key id).
#[pyfunction]
pub fn keygen(py: Python<'_>, path: PathBuf) -> PyResult<(String, String, String)> {
    let key = skvault_sign::PrivateKey::generate();
    let public = skvault_sign::write_key_pair(&path, &key).map_err(|e| from_sign(py, e))?;
    Ok((
        path.display().to_string(),
        public.display().to_string(),
        key.public_key().key_id().to_owned(),
    ))
}

/// Signs the file at `path`; returns where the signature went (a path, or "embedded").
#[pyfunction]
#[pyo3(signature = (path, key, *, identity=String::new(), embed=false, output=None))]
pub fn sign(
    py: Python<'_>,
    path: PathBuf,
    key: PathBuf,
    identity: String,
    embed: bool,
    output: Option<PathBuf>,
) -> PyResult<String> {
    py.detach(|| {
        let key = skvault_sign::read_private_key(&key)?;
        let bundle = skvault_sign::sign(&path, &key, &identity)?;
        if embed {
            skvault_sign::embed(&path, &bundle, &path)?;
            return Ok("embedded".to_string());
        }
        let out = output.unwrap_or_else(|| skvault_sign::detached_path(&path));
        skvault_format::atomic::write_atomic(&out, |w| w.write_all(&bundle)).map_err(|f| {
            SignError::Io {
                path: f.path,
                source: f.source,
            }
        })?;
        Ok(out.display().to_string())
    })
    .map_err(|e| from_sign(py, e))
}

/// Verifies the signature of the file at `path` with `keys` (`None`: the deployment's
/// `SKVAULT_TRUSTED_KEYS`); `signature` names a detached signature file. Returns what was
/// verified; raises `SignatureError` naming why not.
#[pyfunction]
#[pyo3(signature = (path, keys=None, *, signature=None))]
pub fn verify_signature<'py>(
    py: Python<'py>,
    path: PathBuf,
    keys: Option<Vec<PathBuf>>,
    signature: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let mode = if keys.is_some() {
        "keys"
    } else {
        "env-required"
    };
    let trusted = policy_keys(py, mode, keys)?.unwrap_or_default();
    let (v, source) = py
        .detach(|| -> Result<_, SignError> {
            let file = SkvFile::open(&path).map_err(SignError::NotSkv)?;
            skvault_sign::check_open(&file, signature.as_deref(), &trusted)
        })
        .map_err(|e| from_sign(py, e))?;
    report(py, &v, &source)
}
