//! Round trips and one test per refusal of `skvault_sign`, on real `.skv` files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use skvault_format::testing::TreeSpec;
use skvault_sign::{
    read_private_key, read_public_key, sign, sign_at, verify, write_key_pair, DigestKind,
    PrivateKey, SignError,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

struct Setup {
    _dir: tempfile::TempDir,
    model: PathBuf,
    key: PrivateKey,
    key_path: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.skv");
    std::fs::write(&model, TreeSpec::regressor().bytes().unwrap()).unwrap();
    let key_path = dir.path().join("release.key");
    write_key_pair(&key_path, &PrivateKey::generate()).unwrap();
    let key = read_private_key(&key_path).unwrap();
    Setup {
        _dir: dir,
        model,
        key,
        key_path,
    }
}

fn flip(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn manifest_len(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize
}

/// The bundle as JSON, for editing a field.
fn edit(bundle: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(bundle).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn round_trip_records_the_claims() {
    let s = setup();
    let bundle = sign_at(&s.model, &s.key, "ci@example.org", "2026-12-05T06:40:00Z").unwrap();
    let public = read_public_key(&skvault_sign::keys::public_key_path(&s.key_path)).unwrap();
    let v = verify(&s.model, &bundle, std::slice::from_ref(&public)).unwrap();
    assert_eq!(v.key_id, public.key_id());
    assert_eq!(v.name, "model.skv");
    let claim = v.claim.unwrap();
    assert_eq!(claim.identity, "ci@example.org");
    assert_eq!(claim.signed_at, "2026-12-05T06:40:00Z");
    let bytes = std::fs::read(&s.model).unwrap();
    assert_eq!(claim.file_blake3, *blake3::hash(&bytes).as_bytes());
    assert_eq!(&claim.manifest_blake3[..], &bytes[24..56]);
    // Deterministic ECDSA (RFC 6979) and a fixed time: the same bundle twice.
    let again = sign_at(&s.model, &s.key, "ci@example.org", "2026-12-05T06:40:00Z").unwrap();
    assert_eq!(bundle, again);
}

#[test]
fn several_trusted_keys_pick_the_signer() {
    let s = setup();
    let other = PrivateKey::generate().public_key();
    let bundle = sign(&s.model, &s.key, "").unwrap();
    let v = verify(&s.model, &bundle, &[other, s.key.public_key()]).unwrap();
    assert_eq!(v.key_id, s.key.public_key().key_id());
}

#[test]
fn array_bit_flip_is_a_file_digest_mismatch() {
    let s = setup();
    let bundle = sign(&s.model, &s.key, "").unwrap();
    let len = std::fs::metadata(&s.model).unwrap().len() as usize;
    flip(&s.model, len - 1);
    let err = verify(&s.model, &bundle, &[s.key.public_key()]).unwrap_err();
    assert!(
        matches!(
            err,
            SignError::DigestMismatch {
                which: DigestKind::FileSha256,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("file SHA-256 mismatch"), "{err}");
}

#[test]
fn manifest_bit_flip_is_named() {
    let s = setup();
    let bundle = sign(&s.model, &s.key, "").unwrap();
    flip(&s.model, 64 + manifest_len(&s.model) / 2);
    let err = verify(&s.model, &bundle, &[s.key.public_key()]).unwrap_err();
    assert!(
        matches!(
            err,
            SignError::DigestMismatch {
                which: DigestKind::Manifest,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn header_digest_flip_is_named() {
    let s = setup();
    let bundle = sign(&s.model, &s.key, "").unwrap();
    flip(&s.model, 30);
    let err = verify(&s.model, &bundle, &[s.key.public_key()]).unwrap_err();
    assert!(
        matches!(
            err,
            SignError::DigestMismatch {
                which: DigestKind::HeaderManifest,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn signature_bit_flip_is_a_bad_signature() {
    let s = setup();
    let bundle = sign(&s.model, &s.key, "").unwrap();
    let tampered = edit(&bundle, |v| {
        let sig = &mut v["dsseEnvelope"]["signatures"][0]["sig"];
        let mut der = B64.decode(sig.as_str().unwrap()).unwrap();
        let last = der.len() - 1;
        der[last] ^= 0x01;
        *sig = B64.encode(der).into();
    });
    let err = verify(&s.model, &tampered, &[s.key.public_key()]).unwrap_err();
    assert!(matches!(err, SignError::BadSignature { .. }), "{err}");
}

#[test]
fn changed_payload_is_a_bad_signature() {
    let s = setup();
    let bundle = sign_at(&s.model, &s.key, "alice", "2026-01-01T00:00:00Z").unwrap();
    let tampered = edit(&bundle, |v| {
        let p = &mut v["dsseEnvelope"]["payload"];
        let text = String::from_utf8(B64.decode(p.as_str().unwrap()).unwrap()).unwrap();
        *p = B64.encode(text.replace("alice", "mallory")).into();
    });
    let err = verify(&s.model, &tampered, &[s.key.public_key()]).unwrap_err();
    assert!(matches!(err, SignError::BadSignature { .. }), "{err}");
}

#[test]
fn signature_of_another_model_is_refused() {
    let s = setup();
    let other = s.model.with_file_name("other.skv");
    let mut spec = TreeSpec::regressor();
    spec.values[4] = 4.0;
    std::fs::write(&other, spec.bytes().unwrap()).unwrap();
    let bundle = sign(&other, &s.key, "").unwrap();
    let err = verify(&s.model, &bundle, &[s.key.public_key()]).unwrap_err();
    assert!(matches!(err, SignError::DigestMismatch { .. }), "{err}");
}

#[test]
fn untrusted_key_is_an_unknown_key() {
    let s = setup();
    let bundle = sign(&s.model, &PrivateKey::generate(), "").unwrap();
    let err = verify(&s.model, &bundle, &[s.key.public_key()]).unwrap_err();
    assert!(
        matches!(err, SignError::UnknownKey { trusted: 1, .. }),
        "{err}"
    );
}

#[test]
fn untrusted_key_without_hint_is_a_bad_signature() {
    let s = setup();
    let bundle = sign(&s.model, &PrivateKey::generate(), "").unwrap();
    let no_hint = edit(&bundle, |v| {
        v["verificationMaterial"]["publicKey"]
            .as_object_mut()
            .unwrap()
            .remove("hint");
    });
    let err = verify(&s.model, &no_hint, &[s.key.public_key()]).unwrap_err();
    assert!(matches!(err, SignError::BadSignature { .. }), "{err}");
    // The signer's own key still verifies a bundle without a hint.
    let own = edit(&sign(&s.model, &s.key, "").unwrap(), |v| {
        v["verificationMaterial"]["publicKey"]
            .as_object_mut()
            .unwrap()
            .remove("hint");
    });
    verify(&s.model, &own, &[s.key.public_key()]).unwrap();
}

#[test]
fn no_trusted_keys_is_refused() {
    let s = setup();
    let bundle = sign(&s.model, &s.key, "").unwrap();
    let err = verify(&s.model, &bundle, &[]).unwrap_err();
    assert!(matches!(err, SignError::NoTrustedKeys), "{err}");
}

#[test]
fn malformed_bundles_name_the_field() {
    let s = setup();
    let bundle = sign(&s.model, &s.key, "").unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{".to_vec(), "(document)"),
        (edit(&bundle, |v| v["mediaType"] = "x".into()), "mediaType"),
        (
            edit(&bundle, |v| {
                v.as_object_mut().unwrap().remove("dsseEnvelope");
            }),
            "dsseEnvelope",
        ),
        (
            edit(&bundle, |v| {
                v["dsseEnvelope"]["payloadType"] = "text/plain".into()
            }),
            "dsseEnvelope.payloadType",
        ),
        (
            edit(&bundle, |v| v["dsseEnvelope"]["payload"] = "!!".into()),
            "dsseEnvelope.payload",
        ),
        (
            edit(&bundle, |v| {
                v["dsseEnvelope"]["signatures"] = serde_json::json!([])
            }),
            "dsseEnvelope.signatures",
        ),
        (
            edit(&bundle, |v| {
                v["dsseEnvelope"]["signatures"][0]["sig"] = B64.encode(b"not der").into()
            }),
            "dsseEnvelope.signatures[0].sig",
        ),
        (
            edit(&bundle, |v| {
                v["verificationMaterial"]["tlogEntries"] = serde_json::json!([{}])
            }),
            "verificationMaterial.tlogEntries",
        ),
    ];
    for (bytes, field) in cases {
        match verify(&s.model, &bytes, &[s.key.public_key()]) {
            Err(SignError::MalformedBundle { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn oversized_bundle_is_refused_before_parsing() {
    let s = setup();
    let big = vec![b' '; skvault_sign::MAX_BUNDLE_LEN as usize + 1];
    let err = verify(&s.model, &big, &[s.key.public_key()]).unwrap_err();
    assert!(matches!(err, SignError::BundleTooLarge { .. }), "{err}");
    let path = s.model.with_extension("sig");
    std::fs::write(&path, &big).unwrap();
    let err = skvault_sign::read_bundle_file(&path).unwrap_err();
    assert!(matches!(err, SignError::BundleTooLarge { .. }), "{err}");
}

#[test]
fn key_readable_by_others_is_refused() {
    let s = setup();
    for mode in [0o644, 0o640, 0o604, 0o620] {
        std::fs::set_permissions(&s.key_path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = read_private_key(&s.key_path).unwrap_err();
        assert!(
            matches!(err, SignError::KeyFilePermissions { .. }),
            "{mode:o}: {err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    std::fs::set_permissions(&s.key_path, std::fs::Permissions::from_mode(0o400)).unwrap();
    read_private_key(&s.key_path).unwrap();
}

#[test]
fn keygen_writes_0600_and_never_replaces() {
    let s = setup();
    let mode = std::fs::metadata(&s.key_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let pem = std::fs::read_to_string(&s.key_path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    let err = write_key_pair(&s.key_path, &PrivateKey::generate()).unwrap_err();
    assert!(matches!(err, SignError::KeyExists { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&s.key_path).unwrap(), pem);
}

#[test]
fn bad_key_files_are_named() {
    let s = setup();
    let public = skvault_sign::keys::public_key_path(&s.key_path);
    // A private key where a public one is expected, and the reverse.
    let err = read_public_key(&s.key_path).unwrap_err();
    assert!(matches!(err, SignError::BadKey { .. }), "{err}");
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = read_private_key(&public).unwrap_err();
    assert!(matches!(err, SignError::BadKey { .. }), "{err}");
}

#[test]
fn not_an_skv_file_is_refused() {
    let s = setup();
    let bundle = sign(&s.model, &s.key, "").unwrap();
    std::fs::write(&s.model, b"not a model").unwrap();
    let err = verify(&s.model, &bundle, &[s.key.public_key()]).unwrap_err();
    assert!(matches!(err, SignError::NotSkv(_)), "{err}");
    let err = sign(&s.model, &s.key, "").unwrap_err();
    assert!(matches!(err, SignError::NotSkv(_)), "{err}");
}

#[test]
fn the_debug_form_of_a_private_key_shows_no_secret() {
    let s = setup();
    let shown = format!("{:?}", s.key);
    assert_eq!(
        shown,
        format!("PrivateKey({})", s.key.public_key().key_id())
    );
}

#[test]
fn an_embedded_signature_verifies_and_detaches_to_the_signed_file() {
    let s = setup();
    let public = read_public_key(&skvault_sign::keys::public_key_path(&s.key_path)).unwrap();
    let original = std::fs::read(&s.model).unwrap();
    let bundle = sign(&s.model, &s.key, "ci").unwrap();
    skvault_sign::embed(&s.model, &bundle, &s.model).unwrap();
    assert_eq!(
        skvault_sign::embedded_bundle(&s.model).unwrap().unwrap(),
        bundle
    );
    let (v, source) =
        skvault_sign::check_policy(&s.model, None, std::slice::from_ref(&public)).unwrap();
    assert_eq!(source, skvault_sign::SignatureSource::Embedded);
    assert_eq!(v.claim.unwrap().identity, "ci");
    // The digests of the embedded file are those of the signed file.
    let plain = s.model.with_file_name("plain.skv");
    skvault_sign::strip(&s.model, &plain).unwrap();
    assert_eq!(std::fs::read(&plain).unwrap(), original);
    assert_eq!(
        skvault_sign::FileDigests::of_file(&s.model).unwrap().sha256,
        skvault_sign::FileDigests::of_file(&plain).unwrap().sha256
    );
    // Re-signing replaces the embedded signature instead of stacking trailers.
    let again = sign(&s.model, &s.key, "second").unwrap();
    skvault_sign::embed(&s.model, &again, &s.model).unwrap();
    let len = std::fs::metadata(&s.model).unwrap().len() as usize;
    assert_eq!(len, original.len() + again.len() + 24);
    // The opened-file check sees the same.
    let file = skvault_format::SkvFile::open(&s.model).unwrap();
    let (v, _) = skvault_sign::check_open(&file, None, &[public]).unwrap();
    assert_eq!(v.claim.unwrap().identity, "second");
}

#[test]
fn a_policy_refuses_an_unsigned_file_as_not_signed() {
    let s = setup();
    let public = read_public_key(&skvault_sign::keys::public_key_path(&s.key_path)).unwrap();
    let err =
        skvault_sign::check_policy(&s.model, None, std::slice::from_ref(&public)).unwrap_err();
    assert!(matches!(err, SignError::NotSigned { .. }), "{err}");
    assert_eq!(err.reason(), "not_signed");
    assert!(err.is_refusal());
    let file = skvault_format::SkvFile::from_bytes(std::fs::read(&s.model).unwrap()).unwrap();
    let err = skvault_sign::check_open(&file, None, &[public]).unwrap_err();
    assert!(matches!(err, SignError::NotSigned { .. }), "{err}");
    assert!(matches!(
        skvault_sign::check_policy(&s.model, None, &[]),
        Err(SignError::NoTrustedKeys)
    ));
}
