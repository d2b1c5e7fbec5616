//! The signature file: a Sigstore bundle (v0.3, JSON) holding a DSSE envelope whose payload
//! is an in-toto Statement v1 with model-signing's predicate (docs/SIGNING.md).
//!
//! Parsing never trusts the input: the size is capped before any JSON is read (serde_json
//! also caps nesting), every field is checked for its type, and each problem names the
//! field. Nothing here checks a signature or a digest; `verify` does, in that order.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::error::{Result, SignError};

/// A bundle is a few kilobytes; a larger one is refused before it is parsed.
pub const MAX_BUNDLE_LEN: u64 = skvault_format::trailer::MAX_SIGNATURE_LEN;
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// The version of skvault's own claim in the predicate.
pub const CLAIM_VERSION: u64 = 1;

/// The parts of a bundle that verification uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// model-signing's public key hint (the signer's key id), when the bundle has one.
    pub key_hint: Option<String>,
    /// The DSSE payload: the statement's bytes, exactly as signed.
    pub payload: Vec<u8>,
    /// The DER-encoded ECDSA signature.
    pub signature: Vec<u8>,
}

/// DSSE v1's pre-authentication encoding of a payload, what the signature is over.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Writes a bundle, laid out as model-signing writes one.
pub fn encode_bundle(key_hint: &str, payload: &[u8], signature: &[u8]) -> Vec<u8> {
    let bundle = json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": key_hint},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": B64.encode(payload),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": B64.encode(signature), "keyid": ""}],
        },
    });
    let mut out = serde_json::to_vec_pretty(&bundle).unwrap_or_default();
    out.push(b'\n');
    out
}

fn field<'a>(obj: &'a Map<String, Value>, name: &str, path: &str) -> Result<&'a Value> {
    obj.get(name)
        .ok_or_else(|| SignError::malformed(format!("{path}{name}"), "missing"))
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| SignError::malformed(path, "not a JSON object"))
}

fn string<'a>(v: &'a Value, path: &str) -> Result<&'a str> {
    v.as_str()
        .ok_or_else(|| SignError::malformed(path, "not a string"))
}

fn base64(v: &Value, path: &str) -> Result<Vec<u8>> {
    B64.decode(string(v, path)?)
        .map_err(|e| SignError::malformed(path, format!("not base64: {e}")))
}

/// Parses a bundle's JSON (the signature is not checked here).
pub fn parse_bundle(bytes: &[u8]) -> Result<Bundle> {
    if bytes.len() as u64 > MAX_BUNDLE_LEN {
        return Err(SignError::BundleTooLarge {
            size: bytes.len() as u64,
            max: MAX_BUNDLE_LEN,
        });
    }
    let root: Value = serde_json::from_slice(bytes)
        .map_err(|e| SignError::malformed("(document)", format!("not JSON: {e}")))?;
    let root = object(&root, "(document)")?;
    let media = string(field(root, "mediaType", "")?, "mediaType")?;
    if media != BUNDLE_MEDIA_TYPE {
        return Err(SignError::malformed(
            "mediaType",
            format!("{media:?}, expected {BUNDLE_MEDIA_TYPE:?}"),
        ));
    }
    let material = object(
        field(root, "verificationMaterial", "")?,
        "verificationMaterial",
    )?;
    let key_hint = match material.get("publicKey") {
        None => None,
        Some(pk) => match object(pk, "verificationMaterial.publicKey")?.get("hint") {
            None | Some(Value::Null) => None,
            Some(h) => Some(string(h, "verificationMaterial.publicKey.hint")?.to_owned()),
        },
    };
    // A certificate or a transparency log entry means another kind of signature
    // (Sigstore, certificates), which skvault cannot check: refuse rather than ignore.
    for unsupported in ["certificate", "x509CertificateChain"] {
        if material.contains_key(unsupported) {
            return Err(SignError::malformed(
                format!("verificationMaterial.{unsupported}"),
                "certificate-based signatures are not supported, only key signatures",
            ));
        }
    }
    if let Some(entries) = material.get("tlogEntries") {
        let entries = entries.as_array().ok_or_else(|| {
            SignError::malformed("verificationMaterial.tlogEntries", "not a list")
        })?;
        if !entries.is_empty() {
            return Err(SignError::malformed(
                "verificationMaterial.tlogEntries",
                "transparency log entries are not supported, only key signatures",
            ));
        }
    }
    let envelope = object(field(root, "dsseEnvelope", "")?, "dsseEnvelope")?;
    let payload_type = string(
        field(envelope, "payloadType", "dsseEnvelope.")?,
        "dsseEnvelope.payloadType",
    )?;
    if payload_type != PAYLOAD_TYPE {
        return Err(SignError::malformed(
            "dsseEnvelope.payloadType",
            format!("{payload_type:?}, expected {PAYLOAD_TYPE:?}"),
        ));
    }
    let payload = base64(
        field(envelope, "payload", "dsseEnvelope.")?,
        "dsseEnvelope.payload",
    )?;
    let signatures = field(envelope, "signatures", "dsseEnvelope.")?
        .as_array()
        .ok_or_else(|| SignError::malformed("dsseEnvelope.signatures", "not a list"))?;
    let [only] = signatures.as_slice() else {
        return Err(SignError::malformed(
            "dsseEnvelope.signatures",
            format!("{} signatures, expected exactly one", signatures.len()),
        ));
    };
    let sig = object(only, "dsseEnvelope.signatures[0]")?;
    let signature = base64(
        field(sig, "sig", "dsseEnvelope.signatures[0].")?,
        "dsseEnvelope.signatures[0].sig",
    )?;
    Ok(Bundle {
        key_hint,
        payload,
        signature,
    })
}

/// skvault's own claim, the `skvault` member of the predicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub file_sha256: [u8; 32],
    pub file_blake3: [u8; 32],
    pub manifest_blake3: [u8; 32],
    pub identity: String,
    pub signed_at: String,
}

/// What a statement says about the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The subject's name (the file name when signed; informative only).
    pub name: String,
    /// The SHA-256 of the whole file (model-signing's one resource).
    pub file_sha256: [u8; 32],
    /// skvault's claim; absent in a statement written by model-signing.
    pub claim: Option<Claim>,
}

/// model-signing's root digest: the SHA-256 of the resources' raw digests in name order.
pub fn root_digest(resource_digests: &[[u8; 32]]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for d in resource_digests {
        h.update(d);
    }
    h.finalize().into()
}

pub fn encode_statement(name: &str, claim: &Claim) -> Vec<u8> {
    let hex = crate::keys::hex;
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": name,
            "digest": {"sha256": hex(&root_digest(&[claim.file_sha256]))},
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false},
            "resources": [{"name": ".", "algorithm": "sha256", "digest": hex(&claim.file_sha256)}],
            "skvault": {
                "version": CLAIM_VERSION,
                "file_sha256": hex(&claim.file_sha256),
                "file_blake3": hex(&claim.file_blake3),
                "manifest_blake3": hex(&claim.manifest_blake3),
                "identity": claim.identity,
                "signed_at": claim.signed_at,
            },
        },
    });
    serde_json::to_vec(&statement).unwrap_or_default()
}

fn digest32(v: &Value, path: &str) -> Result<[u8; 32]> {
    let s = string(v, path)?;
    let bad = || SignError::malformed(path, "not 64 lowercase hex digits");
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Parses the (already authenticated) payload as a statement about one file.
pub fn parse_statement(payload: &[u8]) -> Result<Statement> {
    const P: &str = "payload";
    let root: Value = serde_json::from_slice(payload)
        .map_err(|e| SignError::malformed(P, format!("not JSON: {e}")))?;
    let root = object(&root, P)?;
    let ty = string(field(root, "_type", "payload.")?, "payload._type")?;
    if ty != STATEMENT_TYPE {
        return Err(SignError::malformed(
            "payload._type",
            format!("{ty:?}, expected {STATEMENT_TYPE:?}"),
        ));
    }
    let pt = string(
        field(root, "predicateType", "payload.")?,
        "payload.predicateType",
    )?;
    if pt != PREDICATE_TYPE {
        return Err(SignError::malformed(
            "payload.predicateType",
            format!("{pt:?}, expected {PREDICATE_TYPE:?}"),
        ));
    }
    let subjects = field(root, "subject", "payload.")?
        .as_array()
        .ok_or_else(|| SignError::malformed("payload.subject", "not a list"))?;
    let [subject] = subjects.as_slice() else {
        return Err(SignError::malformed(
            "payload.subject",
            format!("{} subjects, expected exactly one", subjects.len()),
        ));
    };
    let subject = object(subject, "payload.subject[0]")?;
    let name = string(
        field(subject, "name", "payload.subject[0].")?,
        "payload.subject[0].name",
    )?;
    let digest = object(
        field(subject, "digest", "payload.subject[0].")?,
        "payload.subject[0].digest",
    )?;
    let root_sha = digest32(
        field(digest, "sha256", "payload.subject[0].digest.")?,
        "payload.subject[0].digest.sha256",
    )?;

    let predicate = object(field(root, "predicate", "payload.")?, "payload.predicate")?;
    let ser = object(
        field(predicate, "serialization", "payload.predicate.")?,
        "payload.predicate.serialization",
    )?;
    for (key, want) in [("method", "files"), ("hash_type", "sha256")] {
        let path = format!("payload.predicate.serialization.{key}");
        let got = string(field(ser, key, "payload.predicate.serialization.")?, &path)?;
        if got != want {
            return Err(SignError::malformed(
                path,
                format!("{got:?}, skvault verifies only {want:?}"),
            ));
        }
    }
    let resources = field(predicate, "resources", "payload.predicate.")?
        .as_array()
        .ok_or_else(|| SignError::malformed("payload.predicate.resources", "not a list"))?;
    let [resource] = resources.as_slice() else {
        return Err(SignError::malformed(
            "payload.predicate.resources",
            format!(
                "{} resources, expected one (a signature of a single file)",
                resources.len()
            ),
        ));
    };
    const R: &str = "payload.predicate.resources[0]";
    let resource = object(resource, R)?;
    let rname = string(
        field(resource, "name", "payload.predicate.resources[0].")?,
        &format!("{R}.name"),
    )?;
    if rname != "." {
        return Err(SignError::malformed(
            format!("{R}.name"),
            format!("{rname:?}, expected \".\" (the signed path itself is the file)"),
        ));
    }
    let alg = string(
        field(resource, "algorithm", "payload.predicate.resources[0].")?,
        &format!("{R}.algorithm"),
    )?;
    if alg != "sha256" {
        return Err(SignError::malformed(
            format!("{R}.algorithm"),
            format!("{alg:?}, expected \"sha256\""),
        ));
    }
    let file_sha256 = digest32(
        field(resource, "digest", "payload.predicate.resources[0].")?,
        &format!("{R}.digest"),
    )?;
    if root_digest(&[file_sha256]) != root_sha {
        return Err(SignError::malformed(
            "payload.subject[0].digest.sha256",
            "does not match the digest of the resources",
        ));
    }
    let claim = match predicate.get("skvault") {
        None => None,
        Some(c) => Some(parse_claim(c, file_sha256)?),
    };
    Ok(Statement {
        name: name.to_owned(),
        file_sha256,
        claim,
    })
}

fn parse_claim(v: &Value, file_sha256: [u8; 32]) -> Result<Claim> {
    const C: &str = "payload.predicate.skvault";
    let c = object(v, C)?;
    let prefix = "payload.predicate.skvault.";
    let version = field(c, "version", prefix)?;
    if version.as_u64() != Some(CLAIM_VERSION) {
        return Err(SignError::malformed(
            format!("{C}.version"),
            format!("{version}, this skvault reads version {CLAIM_VERSION}"),
        ));
    }
    let d = |name: &str| digest32(field(c, name, prefix)?, &format!("{C}.{name}"));
    let claim = Claim {
        file_sha256: d("file_sha256")?,
        file_blake3: d("file_blake3")?,
        manifest_blake3: d("manifest_blake3")?,
        identity: string(field(c, "identity", prefix)?, &format!("{C}.identity"))?.to_owned(),
        signed_at: string(field(c, "signed_at", prefix)?, &format!("{C}.signed_at"))?.to_owned(),
    };
    if claim.file_sha256 != file_sha256 {
        return Err(SignError::malformed(
            format!("{C}.file_sha256"),
            "differs from the resource's digest",
        ));
    }
    Ok(claim)
}
