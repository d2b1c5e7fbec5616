"""Signed models (docs/SIGNING.md): `skvault keygen`, `skvault sign`, `skvault verify --pubkey`,
checked against OpenSSF's `model-signing` package in both directions, and every tampering
refused with its own message.

skvault runs as a subprocess (`python -m skvault`, the Rust command line) and so does
`python -m model_signing`; the statement's digests are recomputed here with hashlib and blake3.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys

import blake3
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sklearn.linear_model import LinearRegression

import skvault

SKVAULT = [sys.executable, "-m", "skvault"]
MODEL_SIGNING = [sys.executable, "-m", "model_signing"]


def run(cmd, *args):
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True)


def ok(cmd, *args):
    result = run(cmd, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def refused(*args):
    """`skvault verify` refusing: exit 1 and one FAILED line naming why."""
    result = run(SKVAULT, "verify", *args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stderr, result.stderr
    return result.stderr


def make_model(path, scale=1.0):
    X = np.arange(40.0).reshape(20, 2)
    skvault.dump(LinearRegression().fit(X, scale * X[:, 0] + 1.0), path)
    return path


def flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def signed(tmp_path):
    """A model signed by a key made with `skvault keygen`: (model, key, public key)."""
    model = make_model(tmp_path / "model.skv")
    key = tmp_path / "release.key"
    ok(SKVAULT, "keygen", "--out", key)
    ok(SKVAULT, "sign", model, "--key", key, "--identity", "ci@example.org")
    return model, key, tmp_path / "release.key.pub"


def statement(sig_path):
    bundle = json.loads(sig_path.read_text())
    return bundle, json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def test_keygen_writes_a_private_key_and_its_public_key(signed):
    _, key, public = signed
    assert os.stat(key).st_mode & 0o777 == 0o600
    private = serialization.load_pem_private_key(key.read_bytes(), None)
    loaded = serialization.load_pem_public_key(public.read_bytes())
    assert isinstance(private.curve, ec.SECP256R1)
    assert private.public_key().public_numbers() == loaded.public_numbers()


def test_statement_records_the_digests_of_the_file(signed):
    model, _, public = signed
    bundle, st = statement(model.with_name("model.skv.sig"))
    data = model.read_bytes()
    sha = hashlib.sha256(data).digest()
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == hashlib.sha256(public.read_bytes()).hexdigest()
    assert bundle["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == "https://model_signing/signature/v1.0"
    assert st["subject"] == [{"name": "model.skv", "digest": {"sha256": hashlib.sha256(sha).hexdigest()}}]
    assert st["predicate"]["resources"] == [{"name": ".", "algorithm": "sha256", "digest": sha.hex()}]
    claim = st["predicate"]["skvault"]
    assert claim["file_sha256"] == sha.hex()
    assert claim["file_blake3"] == blake3.blake3(data).hexdigest()
    assert claim["manifest_blake3"] == data[24:56].hex()
    manifest_len = int.from_bytes(data[16:24], "little")
    assert claim["manifest_blake3"] == blake3.blake3(data[64 : 64 + manifest_len]).hexdigest()
    assert claim["identity"] == "ci@example.org"


def test_skvault_signature_verifies_with_model_signing(signed):
    model, _, public = signed
    result = ok(
        MODEL_SIGNING, "verify", "key", model, "--signature", model.with_name("model.skv.sig"), "--public_key", public
    )
    assert "Verification succeeded" in result.stdout + result.stderr


def test_model_signing_refuses_a_tampered_skvault_signed_file(signed):
    model, _, public = signed
    flip(model, model.stat().st_size - 1)
    result = run(
        MODEL_SIGNING, "verify", "key", model, "--signature", model.with_name("model.skv.sig"), "--public_key", public
    )
    assert result.returncode != 0
    assert "Verification succeeded" not in result.stdout + result.stderr


def test_model_signing_signature_verifies_with_skvault(signed, tmp_path):
    model, key, public = signed
    sig = tmp_path / "by-model-signing.sig"
    ok(MODEL_SIGNING, "sign", "key", model, "--private_key", key, "--signature", sig)
    result = ok(SKVAULT, "verify", model, "--pubkey", public, "--signature", sig)
    assert "signature OK" in result.stdout
    assert "no skvault claim" in result.stdout
    doc = json.loads(ok(SKVAULT, "verify", "--json", model, "--pubkey", public, "--signature", sig).stdout)
    assert doc["ok"] is True
    assert doc["signature"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert doc["signature"]["identity"] is None
    # And once the file changes, skvault refuses it too.
    flip(model, model.stat().st_size - 1)
    assert "digest" in refused(model, "--pubkey", public, "--signature", sig)


@pytest.mark.parametrize("key_format", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_keys_made_by_cryptography_work_in_both_directions(tmp_path, key_format):
    model = make_model(tmp_path / "m.skv")
    private = ec.generate_private_key(ec.SECP256R1())
    key = tmp_path / "k.pem"
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, key_format, serialization.NoEncryption()))
    key.chmod(0o600)
    public = tmp_path / "k.pub"
    public.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    # model-signing signs, several times: ECDSA signatures are randomized (high and low S).
    for i in range(4):
        sig = tmp_path / f"ms{i}.sig"
        ok(MODEL_SIGNING, "sign", "key", model, "--private_key", key, "--signature", sig)
        ok(SKVAULT, "verify", model, "--pubkey", public, "--signature", sig)
    ok(SKVAULT, "sign", model, "--key", key)
    ok(MODEL_SIGNING, "verify", "key", model, "--signature", tmp_path / "m.skv.sig", "--public_key", public)


def test_each_tampering_is_refused_with_its_own_message(tmp_path):
    key = tmp_path / "k"
    ok(SKVAULT, "keygen", "--out", key)
    public = tmp_path / "k.pub"
    other_key = tmp_path / "other"
    ok(SKVAULT, "keygen", "--out", other_key)
    messages = {}

    def fresh(name, with_key=key):
        model = make_model(tmp_path / name)
        ok(SKVAULT, "sign", model, "--key", with_key)
        return model

    m = fresh("array.skv")
    flip(m, m.stat().st_size - 1)  # the last array's last byte
    messages["array"] = refused(m, "--pubkey", public)
    assert "digest" in messages["array"] and "(" in messages["array"]

    m = fresh("manifest.skv")
    flip(m, 80)
    messages["manifest"] = refused(m, "--pubkey", public)
    assert "manifest digest" in messages["manifest"]

    m = fresh("signature.skv")
    sig = tmp_path / "signature.skv.sig"
    bundle = json.loads(sig.read_text())
    der = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    der[-1] ^= 0x01
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(der)).decode()
    sig.write_text(json.dumps(bundle))
    messages["signature"] = refused(m, "--pubkey", public)
    assert "bad signature" in messages["signature"]

    a = fresh("a.skv")
    b = make_model(tmp_path / "b.skv", scale=2.0)
    ok(SKVAULT, "sign", b, "--key", key)
    messages["moved"] = refused(a, "--pubkey", public, "--signature", tmp_path / "b.skv.sig")
    assert "does not cover this file" in messages["moved"]
    assert "manifest BLAKE3 mismatch" in messages["moved"]

    m = fresh("untrusted.skv", with_key=other_key)
    messages["untrusted"] = refused(m, "--pubkey", public)
    assert "unknown key" in messages["untrusted"]

    m = make_model(tmp_path / "unsigned.skv")
    messages["unsigned"] = refused(m, "--pubkey", public)
    assert "not signed" in messages["unsigned"]

    sig = tmp_path / "a.skv.sig"
    sig.write_text(sig.read_text().replace("application/vnd.in-toto+json", "text/plain"))
    messages["malformed"] = refused(a, "--pubkey", public)
    assert "dsseEnvelope.payloadType" in messages["malformed"]

    # Six different reasons, six different messages (file names aside).
    reasons = {k: v.split("FAILED:", 1)[1].split("(signed")[0].strip() for k, v in messages.items()}
    assert len(set(reasons.values())) == len(reasons), reasons


def test_several_trusted_keys_for_rotation(signed, tmp_path):
    model, _, public = signed
    new = tmp_path / "new.key"
    ok(SKVAULT, "keygen", "--out", new)
    ok(SKVAULT, "verify", model, "--pubkey", tmp_path / "new.key.pub", "--pubkey", public)
    assert "unknown key" in refused(model, "--pubkey", tmp_path / "new.key.pub")


def test_private_key_readable_by_others_is_refused(signed):
    model, key, _ = signed
    model.with_name("model.skv.sig").unlink()
    for mode in (0o644, 0o640, 0o604):
        key.chmod(mode)
        result = run(SKVAULT, "sign", model, "--key", key)
        assert result.returncode == 1, result.stderr
        assert "can be read or written by others" in result.stderr and "chmod 600" in result.stderr
        assert not model.with_name("model.skv.sig").exists()


def test_keygen_never_replaces_a_key(signed):
    _, key, _ = signed
    before = key.read_bytes()
    result = run(SKVAULT, "keygen", "--out", key)
    assert result.returncode == 2
    assert "already exists" in result.stderr
    assert key.read_bytes() == before
