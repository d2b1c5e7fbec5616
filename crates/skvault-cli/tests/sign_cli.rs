//! `skvault keygen`, `skvault sign` and `skvault verify --pubkey`: round trips, exit codes
//! and the message of each refusal, on the binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{model, s, skvault};
use serde_json::json;

fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(name);
    let run = skvault(dir, &["keygen", "--out", s(&key)]);
    assert_eq!(run.code, 0, "{}", run.err);
    (key.clone(), dir.join(format!("{name}.pub")))
}

fn flip(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn keygen_sign_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = model(dir.path(), "m.skv");
    let (key, public) = keygen(dir.path(), "release.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let run = skvault(
        dir.path(),
        &[
            "sign",
            s(&path),
            "--key",
            s(&key),
            "--identity",
            "ci@example.org",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.err);
    let sig = dir.path().join("m.skv.sig");
    assert!(sig.is_file());
    // The private key never appears in the signature.
    let secret = std::fs::read_to_string(&key).unwrap();
    let body: String = secret.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!std::fs::read_to_string(&sig).unwrap().contains(&body[..20]));

    let ok = skvault(dir.path(), &["verify", s(&path), "--pubkey", s(&public)]);
    assert_eq!(ok.code, 0, "{}", ok.err);
    assert!(ok.out.contains("signature OK"), "{}", ok.out);
    assert!(ok.out.contains("\"ci@example.org\""), "{}", ok.out);

    let doc = skvault(
        dir.path(),
        &["verify", "--json", s(&path), "--pubkey", s(&public)],
    )
    .json();
    assert_eq!(doc["ok"], json!(true));
    assert_eq!(doc["signature"]["identity"], json!("ci@example.org"));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        doc["signature"]["blake3"],
        json!(blake3::hash(&bytes).to_hex().to_string())
    );
}

#[test]
fn signature_output_path_and_signature_option() {
    let dir = tempfile::tempdir().unwrap();
    let path = model(dir.path(), "m.skv");
    let (key, public) = keygen(dir.path(), "k");
    let sig = dir.path().join("elsewhere.json");
    let run = skvault(
        dir.path(),
        &["sign", s(&path), "--key", s(&key), "-o", s(&sig)],
    );
    assert_eq!(run.code, 0, "{}", run.err);
    assert!(!dir.path().join("m.skv.sig").exists());
    let missing = skvault(dir.path(), &["verify", s(&path), "--pubkey", s(&public)]);
    assert_eq!(missing.code, 1);
    assert!(missing.err.contains("not signed"), "{}", missing.err);
    let ok = skvault(
        dir.path(),
        &[
            "verify",
            s(&path),
            "--pubkey",
            s(&public),
            "--signature",
            s(&sig),
        ],
    );
    assert_eq!(ok.code, 0, "{}", ok.err);
}

#[test]
fn each_tampering_is_refused_with_its_own_message() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "k");
    let (other_key, _) = keygen(dir.path(), "other");
    let fresh = |name: &str, with: &Path| {
        let path = model(dir.path(), name);
        let run = skvault(dir.path(), &["sign", s(&path), "--key", s(with)]);
        assert_eq!(run.code, 0, "{}", run.err);
        path
    };
    let verify = |path: &Path| {
        let run = skvault(dir.path(), &["verify", s(path), "--pubkey", s(&public)]);
        assert_eq!(run.code, 1, "{}: {}", path.display(), run.err);
        run.err
    };

    // A flipped bit in an array: the digest check names the array first.
    let a = fresh("array.skv", &key);
    let len = std::fs::metadata(&a).unwrap().len() as usize;
    flip(&a, len - 1);
    assert!(verify(&a).contains("digest"), "array");

    // The signature itself.
    let b = fresh("sig.skv", &key);
    let sig = dir.path().join("sig.skv.sig");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&sig).unwrap()).unwrap();
    let s64 = doc["dsseEnvelope"]["signatures"][0]["sig"]
        .as_str()
        .unwrap()
        .to_owned();
    let flipped = if s64.ends_with("A=") { "B=" } else { "A=" };
    doc["dsseEnvelope"]["signatures"][0]["sig"] =
        json!(format!("{}{flipped}", &s64[..s64.len() - 2]));
    std::fs::write(&sig, serde_json::to_vec(&doc).unwrap()).unwrap();
    let msg = verify(&b);
    assert!(
        msg.contains("bad signature") || msg.contains("malformed signature bundle"),
        "{msg}"
    );

    // A flipped bit in the manifest: the header digest no longer matches.
    let m = fresh("manifest.skv", &key);
    flip(&m, 100);
    assert!(verify(&m).contains("manifest digest"), "manifest");

    // An untrusted key.
    let e = fresh("e.skv", &other_key);
    assert!(verify(&e).contains("unknown key"), "untrusted key");
}

#[test]
fn a_signature_moved_from_another_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "k");
    let a = common::tree_model(&dir.path().join("a.skv"), [1.0, 2.0, 3.0], json!({}));
    let b = common::tree_model(&dir.path().join("b.skv"), [1.0, 2.0, 4.0], json!({}));
    let run = skvault(dir.path(), &["sign", s(&b), "--key", s(&key)]);
    assert_eq!(run.code, 0, "{}", run.err);
    let run = skvault(
        dir.path(),
        &[
            "verify",
            s(&a),
            "--pubkey",
            s(&public),
            "--signature",
            s(&dir.path().join("b.skv.sig")),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.err);
    assert!(run.err.contains("does not cover this file"), "{}", run.err);
}

#[test]
fn key_files_readable_by_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = model(dir.path(), "m.skv");
    let (key, _) = keygen(dir.path(), "k");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = skvault(dir.path(), &["sign", s(&path), "--key", s(&key)]);
    assert_eq!(run.code, 1, "{}", run.err);
    assert!(run.err.contains("chmod 600"), "{}", run.err);
    assert!(!dir.path().join("m.skv.sig").exists());
}

#[test]
fn keygen_never_replaces_a_key_and_bad_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = model(dir.path(), "m.skv");
    let (key, _) = keygen(dir.path(), "k");
    let before = std::fs::read(&key).unwrap();
    let again = skvault(dir.path(), &["keygen", "--out", s(&key)]);
    assert_eq!(again.code, 2);
    assert!(again.err.contains("already exists"), "{}", again.err);
    assert_eq!(std::fs::read(&key).unwrap(), before);
    // A private key given as a public one: an error (2), not a verdict.
    let run = skvault(dir.path(), &["verify", s(&path), "--pubkey", s(&key)]);
    assert_eq!(run.code, 2, "{}", run.err);
    assert!(run.err.contains("not a usable key"), "{}", run.err);
}
