//! Requiring a signature: where a file's signature is found (embedded first, then the
//! detached `MODEL.skv.sig` beside it), the deployment-wide trusted keys
//! (`SKVAULT_TRUSTED_KEYS`), and the one check every loader runs before building anything.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use skvault_format::manifest::{Header, HEADER_LEN};

use crate::error::{Result, SignError};
use crate::keys::{read_public_key, PublicKey};
use skvault_format::SkvFile;

use crate::{check_digests, read_bundle_file, verify, verify_bundle, FileDigests, Verified};

/// The environment variable naming the public keys a deployment trusts: public key files
/// or folders of `*.pub` files, separated by `:`.
pub const TRUSTED_KEYS_ENV: &str = "SKVAULT_TRUSTED_KEYS";

/// Where a signature was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureSource {
    /// In the `.skv` file's trailer (format 1.3).
    Embedded,
    /// In a separate file.
    Detached(PathBuf),
}

impl std::fmt::Display for SignatureSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureSource::Embedded => f.write_str("embedded"),
            SignatureSource::Detached(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The default detached signature path: `MODEL.skv.sig` beside the model.
pub fn detached_path(model: &Path) -> PathBuf {
    let mut name = model.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// The bytes of the signature embedded in the file at `model`, if it has one. Only the
/// header and the trailer are read.
pub fn embedded_bundle(model: &Path) -> Result<Option<Vec<u8>>> {
    let io = |source| SignError::Io {
        path: model.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(model).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut head = Vec::with_capacity(64);
    (&mut file)
        .take(HEADER_LEN)
        .read_to_end(&mut head)
        .map_err(io)?;
    let header = Header::parse(&head, len).map_err(SignError::NotSkv)?;
    let trailer = skvault_format::trailer::locate(&header, len, |at, buf| {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(buf, at)
            .map_err(|source| skvault_format::FormatError::Io {
                path: model.to_path_buf(),
                source,
            })
    })
    .map_err(SignError::NotSkv)?;
    let Some(t) = trailer else {
        return Ok(None);
    };
    let mut bundle = vec![0u8; t.bundle_len as usize];
    file.seek(SeekFrom::Start(t.bundle_offset)).map_err(io)?;
    file.read_exact(&mut bundle).map_err(io)?;
    Ok(Some(bundle))
}

/// The signature of the file at `model`: the one in `detached` when given (it must exist),
/// else the embedded one, else `MODEL.skv.sig` if it exists.
pub fn find_signature(
    model: &Path,
    detached: Option<&Path>,
) -> Result<Option<(Vec<u8>, SignatureSource)>> {
    if let Some(sig) = detached {
        let bytes = read_bundle_file(sig)?;
        return Ok(Some((bytes, SignatureSource::Detached(sig.to_path_buf()))));
    }
    if let Some(bytes) = embedded_bundle(model)? {
        return Ok(Some((bytes, SignatureSource::Embedded)));
    }
    beside(model)
}

/// The detached signature `MODEL.skv.sig` beside `model`, if there is one.
fn beside(model: &Path) -> Result<Option<(Vec<u8>, SignatureSource)>> {
    let path = detached_path(model);
    match read_bundle_file(&path) {
        Ok(bytes) => Ok(Some((bytes, SignatureSource::Detached(path)))),
        Err(SignError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The check a loader runs under a policy that requires a signature: the file at `model`
/// must carry (embedded, or beside it) a signature by one of `trusted` that covers its
/// current bytes. Returns what was verified and where the signature was.
pub fn check_policy(
    model: &Path,
    detached: Option<&Path>,
    trusted: &[PublicKey],
) -> Result<(Verified, SignatureSource)> {
    if trusted.is_empty() {
        return Err(SignError::NoTrustedKeys);
    }
    let Some((bundle, source)) = find_signature(model, detached)? else {
        return Err(SignError::NotSigned {
            path: model.to_path_buf(),
            looked: detached_path(model),
        });
    };
    let verified = verify(model, &bundle, trusted)?;
    Ok((verified, source))
}

/// [`check_policy`] for a file already opened (and validated) by a loader: the digests are
/// read through the opened file itself, so what is verified is what will be built. The
/// signature is `detached` when given, else the embedded one, else `MODEL.skv.sig` beside
/// the file.
pub fn check_open(
    file: &SkvFile,
    detached: Option<&Path>,
    trusted: &[PublicKey],
) -> Result<(Verified, SignatureSource)> {
    if trusted.is_empty() {
        return Err(SignError::NoTrustedKeys);
    }
    let shown = file
        .path()
        .map_or_else(|| PathBuf::from("<bytes>"), Path::to_path_buf);
    let found = match (
        detached,
        file.embedded_signature().map_err(SignError::NotSkv)?,
    ) {
        (Some(sig), _) => Some((
            read_bundle_file(sig)?,
            SignatureSource::Detached(sig.to_path_buf()),
        )),
        (None, Some(b)) => Some((b, SignatureSource::Embedded)),
        (None, None) => match file.path() {
            Some(model) => beside(model)?,
            None => None,
        },
    };
    let looked = file.path().map_or_else(
        || PathBuf::from("(no file beside in-memory bytes)"),
        detached_path,
    );
    verify_found(file, found, shown, looked, trusted)
}

/// Verifies the signature found for an opened file (none: not signed) through the file's
/// own bytes.
fn verify_found(
    file: &SkvFile,
    found: Option<(Vec<u8>, SignatureSource)>,
    path: PathBuf,
    looked: PathBuf,
    trusted: &[PublicKey],
) -> Result<(Verified, SignatureSource)> {
    let Some((bundle, source)) = found else {
        return Err(SignError::NotSigned { path, looked });
    };
    let (key_id, statement) = verify_bundle(&bundle, trusted)?;
    let verified = check_digests(key_id, statement, &FileDigests::of_skv(file)?)?;
    Ok((verified, source))
}

/// The keys named by `SKVAULT_TRUSTED_KEYS`: `None` when it is unset or empty. A set
/// variable that names no usable key is an error (a deployment that asked for signatures
/// must not silently load unsigned models).
pub fn trusted_keys_from_env() -> Result<Option<Vec<PublicKey>>> {
    match std::env::var_os(TRUSTED_KEYS_ENV) {
        None => Ok(None),
        Some(v) if v.to_string_lossy().trim().is_empty() => Ok(None),
        Some(v) => read_trusted_keys(&std::env::split_paths(&v).collect::<Vec<_>>()).map(Some),
    }
}

/// Reads public keys from files, and from every `*.pub` file of the folders among `paths`.
pub fn read_trusted_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    for p in paths.iter().filter(|p| !p.as_os_str().is_empty()) {
        if p.is_dir() {
            let io = |source| SignError::Io {
                path: p.clone(),
                source,
            };
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "pub") && f.is_file())
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(SignError::BadKey {
                    path: p.clone(),
                    problem: "a folder of trusted keys with no *.pub file".into(),
                });
            }
            for f in files {
                keys.push(read_public_key(&f)?);
            }
        } else {
            keys.push(read_public_key(p)?);
        }
    }
    if keys.is_empty() {
        return Err(SignError::NoTrustedKeys);
    }
    Ok(keys)
}
