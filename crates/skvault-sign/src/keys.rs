//! ECDSA P-256 keys in PEM files: the private key as PKCS#8 (SEC1 is read too), the public
//! key as SubjectPublicKeyInfo, the formats `model_signing sign key` / `verify key` read.
//!
//! A key's id is the hex SHA-256 of its public key's PEM text with `\n` line ends: the
//! "hint" model-signing records in a bundle, so the ids of both tools agree.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use sha2::{Digest, Sha256};

use crate::error::{Result, SignError};

/// Key files are a few hundred bytes; anything much larger is not a key.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// A private key, read from a file whose permissions were checked.
pub struct PrivateKey {
    pub(crate) key: SigningKey,
}

/// A trusted public key and its id.
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub(crate) key: VerifyingKey,
    key_id: String,
}

impl PrivateKey {
    /// A new key from the operating system's random numbers.
    pub fn generate() -> PrivateKey {
        PrivateKey {
            key: SigningKey::random(&mut rand_core::OsRng),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::new(*self.key.verifying_key())
    }
}

impl std::fmt::Debug for PrivateKey {
    // Never print the secret: only which public key it goes with.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({})", self.public_key().key_id())
    }
}

impl PublicKey {
    fn new(key: VerifyingKey) -> PublicKey {
        let key_id = hex(&Sha256::digest(public_pem(&key).as_bytes()));
        PublicKey { key, key_id }
    }

    /// The hex SHA-256 of the public key's PEM text (model-signing's key hint).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn to_pem(&self) -> String {
        public_pem(&self.key)
    }

    /// Parses a PEM SubjectPublicKeyInfo P-256 key.
    pub fn from_pem(text: &str) -> std::result::Result<PublicKey, String> {
        let key = p256::PublicKey::from_public_key_pem(text.trim_start())
            .map_err(|e| format!("not a PEM P-256 public key (SubjectPublicKeyInfo): {e}"))?;
        Ok(PublicKey::new(VerifyingKey::from(key)))
    }
}

fn public_pem(key: &VerifyingKey) -> String {
    // Encoding a valid point cannot fail; an empty PEM would only give a key id no bundle has.
    p256::PublicKey::from(key)
        .to_public_key_pem(LineEnding::LF)
        .unwrap_or_default()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The path of the public key written beside a private key: `KEY.pub`.
pub fn public_key_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Writes a new key pair: `path` (the private key, PKCS#8 PEM, created with mode 0600) and
/// `path.pub` (the public key). Existing files are never replaced: losing a private key
/// to a typo would orphan every signature made with it.
pub fn write_key_pair(path: &Path, key: &PrivateKey) -> Result<PathBuf> {
    let public = public_key_path(path);
    for p in [path, public.as_path()] {
        if std::fs::symlink_metadata(p).is_ok() {
            return Err(SignError::KeyExists {
                path: p.to_path_buf(),
            });
        }
    }
    let pem = key
        .key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| SignError::BadKey {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })?;
    create_new(path, 0o600, pem.as_bytes())?;
    if let Err(e) = create_new(&public, 0o644, key.public_key().to_pem().as_bytes()) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(public)
}

fn create_new(path: &Path, mode: u32, bytes: &[u8]) -> Result<()> {
    let io = |source| SignError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => SignError::KeyExists {
                path: path.to_path_buf(),
            },
            _ => io(e),
        })?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(io(e));
    }
    Ok(())
}

fn read_small(path: &Path) -> Result<(std::fs::Metadata, String)> {
    let io = |source| SignError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(SignError::BadKey {
            path: path.to_path_buf(),
            problem: format!("more than {MAX_KEY_FILE} bytes, not a key file"),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| SignError::BadKey {
        path: path.to_path_buf(),
        problem: "not PEM text".into(),
    })?;
    Ok((meta, text))
}

/// Reads a private key, refusing a file that its group or others may access (any of the
/// mode bits 0o077), as ssh does: such a key may already be someone else's too.
pub fn read_private_key(path: &Path) -> Result<PrivateKey> {
    let (meta, text) = read_small(path)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SignError::KeyFilePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let bad = |problem: String| SignError::BadKey {
        path: path.to_path_buf(),
        problem,
    };
    let text = text.trim_start();
    let secret = if text.starts_with("-----BEGIN EC PRIVATE KEY-----") {
        p256::SecretKey::from_sec1_pem(text)
            .map_err(|e| bad(format!("not a P-256 SEC1 private key: {e}")))?
    } else if text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(bad("encrypted private keys are not supported".into()));
    } else {
        p256::SecretKey::from_pkcs8_pem(text)
            .map_err(|e| bad(format!("not a PEM P-256 private key (PKCS#8 or SEC1): {e}")))?
    };
    Ok(PrivateKey {
        key: SigningKey::from(secret),
    })
}

/// Reads a public key file (PEM SubjectPublicKeyInfo, P-256).
pub fn read_public_key(path: &Path) -> Result<PublicKey> {
    let (_, text) = read_small(path)?;
    PublicKey::from_pem(&text).map_err(|problem| SignError::BadKey {
        path: path.to_path_buf(),
        problem,
    })
}
