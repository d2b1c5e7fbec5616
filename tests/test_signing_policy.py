"""Signatures required at load time (docs/SIGNING.md, "Requiring signatures"): embedded
signatures (format 1.3), `require_signature=` on every loader, `SKVAULT_TRUSTED_KEYS`,
signed registries and `skvault serve`.

Every refusal happens before anything is built: the tampering cases run in a child process
whose import hook fails the test if scikit-learn is imported at all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

import skvault
from serve_helpers import Server, ServerFailed, predictions

SKVAULT = [sys.executable, "-m", "skvault"]
MODEL_SIGNING = [sys.executable, "-m", "model_signing"]
X = np.random.RandomState(0).rand(60, 4)
Y = (X[:, 0] + X[:, 1] > 1).astype(int)


def run(cmd, *args, env=None):
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, env=env)


def ok(cmd, *args, env=None):
    result = run(cmd, *args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def forest(seed=0):
    return RandomForestClassifier(n_estimators=4, max_depth=4, random_state=seed).fit(X, Y)


@pytest.fixture
def keys(tmp_path):
    """Two key pairs: (private, public) of the release key and of another one."""
    made = {}
    for name in ("release", "other"):
        info = skvault.keygen(tmp_path / f"{name}.key")
        made[name] = (tmp_path / f"{name}.key", tmp_path / f"{name}.key.pub")
        assert info["public_key"] == str(made[name][1])
    return made


@pytest.fixture
def model(tmp_path):
    m = forest()
    path = tmp_path / "model.skv"
    skvault.dump(m, path)
    return m, path


def no_env():
    env = dict(os.environ)
    env.pop("SKVAULT_TRUSTED_KEYS", None)
    return env


@pytest.fixture(autouse=True)
def _no_deployment_keys(monkeypatch):
    monkeypatch.delenv("SKVAULT_TRUSTED_KEYS", raising=False)


# --- embedding ------------------------------------------------------------------------------


def test_embedding_changes_nothing_that_was_signed(model, keys, tmp_path):
    m, path = model
    original = path.read_bytes()
    assert skvault.sign(path, keys["release"][0], identity="ci", embed=True) == "embedded"
    embedded = path.read_bytes()
    assert embedded[:8] == original[:8] and embedded[64 : len(original)] == original[64:]
    assert embedded[-8:] == b"SKVSIGN\x00"
    minor, flags = int.from_bytes(embedded[10:12], "little"), int.from_bytes(embedded[12:16], "little")
    assert minor == 3 and flags & 0x4
    # Everything that reads files reads it, with or without a policy.
    assert (skvault.load(path).predict(X) == m.predict(X)).all()
    assert (skvault.load(path, mmap=True).predict(X) == m.predict(X)).all()
    assert (skvault.native.load(path).predict(X) == m.predict(X)).all()
    ok(SKVAULT, "verify", path)
    assert skvault.inspect(path)["format_version"] == "1.3"
    report = skvault.verify_signature(path, keys["release"][1])
    assert report["source"] == "embedded" and report["identity"] == "ci"
    # `skvault detach` gives back the signed file byte for byte, and its signature.
    ok(SKVAULT, "detach", path, "-o", tmp_path / "plain.skv")
    assert (tmp_path / "plain.skv").read_bytes() == original
    assert skvault.verify_signature(tmp_path / "plain.skv", [keys["release"][1]])["source"].endswith("plain.skv.sig")


def test_signing_an_embedded_file_again_replaces_its_signature(model, keys):
    _, path = model
    skvault.sign(path, keys["other"][0], embed=True)
    size = path.stat().st_size
    skvault.sign(path, keys["release"][0], embed=True)
    assert abs(path.stat().st_size - size) < 64, "a second trailer was appended"
    skvault.verify_signature(path, keys["release"][1])
    with pytest.raises(skvault.SignatureError) as e:
        skvault.verify_signature(path, keys["other"][1])
    assert e.value.reason == "unknown_key"


def test_an_embedded_signature_detached_verifies_with_model_signing(model, keys, tmp_path):
    _, path = model
    ok(SKVAULT, "sign", path, "--key", keys["release"][0], "--embed")
    ok(SKVAULT, "detach", path, "-o", tmp_path / "out.skv")
    ok(
        MODEL_SIGNING, "verify", "key", tmp_path / "out.skv",
        "--signature", tmp_path / "out.skv.sig", "--public_key", keys["release"][1],
    )


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[:-8] + b"SKVSIGX\x00", "footer magic"),
        (lambda b: b[:-14] + b"\x01" + b[-13:], "reserved footer bytes"),
        (lambda b: b[:-24] + (1 << 40).to_bytes(8, "little") + b[-16:], "declared length"),
        (lambda b: b[:-24] + (len(b)).to_bytes(8, "little") + b[-16:], "does not fit"),
        (lambda b: b[:10] + (2).to_bytes(2, "little") + b[12:], "minor version"),
        (lambda b: b[:-30], "footer magic"),
    ],
    ids=["magic", "reserved", "huge-length", "length-past-start", "header-minor", "truncated"],
)
def test_a_damaged_trailer_is_a_format_error_naming_it(model, keys, damage, message):
    _, path = model
    skvault.sign(path, keys["release"][0], embed=True)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(skvault.FormatError, match=message):
        skvault.load(path)
    result = run(SKVAULT, "verify", path)
    assert result.returncode in (1, 2) and "embedded signature" in result.stderr


# --- policy at load time, tampering ---------------------------------------------------------

GUARDED = textwrap.dedent(
    """
    import json, sys
    class NoSklearn:
        def find_spec(self, name, path=None, target=None):
            if name == "sklearn" or name.startswith("sklearn."):
                raise ImportError("scikit-learn imported before the signature check: " + name)
    sys.meta_path.insert(0, NoSklearn())
    import skvault, skvault.native
    path, keys, how = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    try:
        if how == "load":
            skvault.load(path, require_signature=keys)
        elif how == "loads":
            skvault.loads(open(path, "rb").read(), require_signature=keys)
        elif how == "env":
            skvault.native.load(path)
        else:
            skvault.native.load(path, require_signature=keys)
    except skvault.SignatureError as e:
        print(json.dumps({"reason": e.reason, "message": str(e)}))
    except skvault.SkvaultError as e:
        print(json.dumps({"reason": type(e).__name__, "message": str(e)}))
    else:
        print(json.dumps({"reason": None}))
    assert "sklearn" not in sys.modules
    """
)


def refusal(path, keys, how="load", env=None):
    result = subprocess.run(
        [sys.executable, "-c", GUARDED, str(path), json.dumps([str(k) for k in keys]), how],
        capture_output=True, text=True, env=env or no_env(),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _manifest_end(path):
    return 64 + int.from_bytes(path.read_bytes()[16:24], "little")


def _flip_manifest_keeping_header_digest(path):
    """A bit flipped in the manifest, the header's digest of it recomputed: the file is
    self-consistent, only the signature can tell."""
    import blake3

    data = bytearray(path.read_bytes())
    end = _manifest_end(path)
    text = bytes(data[64:end])
    at = text.index(b'"n_estimators"')
    data[64 + at + 1] = ord("N")
    data[24:56] = blake3.blake3(bytes(data[64:end])).digest()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("embedded", [False, True], ids=["detached", "embedded"])
def test_each_tampering_is_refused_with_its_own_reason_before_anything_is_built(tmp_path, keys, embedded):
    release_key, release_pub = keys["release"]
    other_key, _ = keys["other"]
    a, b = tmp_path / "a.skv", tmp_path / "b.skv"
    skvault.dump(forest(0), a)
    skvault.dump(forest(1), b)

    def signed(name, key=release_key, src=a):
        path = tmp_path / name
        shutil.copy(src, path)
        skvault.sign(path, key, embed=embedded)
        return path

    good = signed("good.skv")
    # Accepted: native inference builds without scikit-learn, so it runs under the hook too.
    assert refusal(good, [release_pub], "native")["reason"] is None
    assert skvault.load(good, require_signature=release_pub) is not None
    if embedded:
        assert skvault.loads(good.read_bytes(), require_signature=release_pub) is not None
    else:
        # Bytes carry no detached signature.
        assert refusal(good, [release_pub], "loads")["reason"] == "not_signed"

    cases = {}
    path = signed("array.skv")
    _flip(path, (path.stat().st_size if not embedded else _data_end(path)) - 3)
    cases["digest_mismatch:array"] = path
    path = signed("manifest.skv")
    _flip_manifest_keeping_header_digest(path)
    cases["digest_mismatch:manifest"] = path
    path = signed("other-key.skv", key=other_key)
    cases["unknown_key"] = path
    path = signed("moved.skv", src=b)
    moved = tmp_path / "moved-target.skv"
    shutil.copy(a, moved)
    if embedded:
        ok(SKVAULT, "detach", path, "-o", tmp_path / "b-plain.skv")
        skvault.sign(moved, other_key, embed=True)  # give it a trailer to replace
        _embed_foreign(moved, (tmp_path / "b-plain.skv.sig").read_bytes())
    else:
        shutil.copy(tmp_path / "moved.skv.sig", tmp_path / "moved-target.skv.sig")
    cases["digest_mismatch:moved"] = moved
    unsigned = tmp_path / "unsigned.skv"
    shutil.copy(a, unsigned)
    cases["not_signed:downgrade"] = unsigned
    if embedded:
        path = signed("stripped.skv")
        ok(SKVAULT, "detach", path, "-o", tmp_path / "stripped-plain.skv")
        os.remove(tmp_path / "stripped-plain.skv.sig")
        cases["not_signed:stripped"] = tmp_path / "stripped-plain.skv"
    path = signed("bad-sig.skv")
    _damage_signature(path, embedded)
    cases["bad_signature"] = path

    for name, path in cases.items():
        expected = name.split(":")[0]
        for how in ("load", "native") + (("loads",) if embedded else ()):
            got = refusal(path, [release_pub], how)
            assert got["reason"] == expected, (name, how, got)
    # Under the deployment's keys, the same.
    env = no_env()
    env["SKVAULT_TRUSTED_KEYS"] = str(release_pub)
    assert refusal(unsigned, [], "env", env=env)["reason"] == "not_signed"
    assert refusal(cases["unknown_key"], [], "env", env=env)["reason"] == "unknown_key"
    assert refusal(good, [], "env", env=env)["reason"] is None


def _data_end(path):
    data = path.read_bytes()
    bundle_len = int.from_bytes(data[-24:-16], "little")
    return len(data) - 24 - bundle_len


def _embed_foreign(path, bundle):
    """Replaces the embedded signature of `path` with `bundle`, keeping the layout valid."""
    data = path.read_bytes()
    start = _data_end(path)
    minor = data[-16:-14]
    path.write_bytes(data[:start] + bundle + len(bundle).to_bytes(8, "little") + minor + bytes(6) + b"SKVSIGN\x00")


def _damage_signature(path, embedded):
    """Flips one bit of the DER signature, keeping the bundle well-formed JSON."""
    import base64

    if embedded:
        start = _data_end(path)
        data = path.read_bytes()
        bundle = json.loads(data[start:-24])
    else:
        bundle = json.loads(path.with_name(path.name + ".sig").read_bytes())
    sig = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 0x01
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    raw = json.dumps(bundle).encode()
    if embedded:
        _embed_foreign(path, raw)
    else:
        path.with_name(path.name + ".sig").write_bytes(raw)


def test_policy_values_and_errors(model, keys, tmp_path, monkeypatch):
    m, path = model
    skvault.sign(path, keys["release"][0])
    assert (skvault.load(path, require_signature=keys["release"][1]).predict(X) == m.predict(X)).all()
    assert (skvault.load(path, require_signature=(keys["other"][1], keys["release"][1])).predict(X) == m.predict(X)).all()
    with pytest.raises(skvault.SignatureError) as e:
        skvault.load(path, require_signature=True)
    assert e.value.reason == "no_trusted_keys" and "SKVAULT_TRUSTED_KEYS" in str(e.value)
    with pytest.raises(skvault.SignatureError):
        skvault.load(path, require_signature=[])
    with pytest.raises(TypeError, match="require_signature"):
        skvault.load(path, require_signature=3)
    with pytest.raises(FileNotFoundError):
        skvault.load(path, require_signature=tmp_path / "missing.pub")
    # A folder of keys is a key ring; the environment sets the default, False overrides it.
    ring = tmp_path / "ring"
    ring.mkdir()
    shutil.copy(keys["other"][1], ring / "other.pub")
    monkeypatch.setenv("SKVAULT_TRUSTED_KEYS", str(ring))
    with pytest.raises(skvault.SignatureError) as e:
        skvault.load(path)
    assert e.value.reason == "unknown_key"
    assert skvault.load(path, require_signature=False) is not None
    shutil.copy(keys["release"][1], ring / "release.pub")
    assert skvault.load(path) is not None
    assert skvault.native.load(path) is not None
    # A variable naming nothing usable fails closed.
    monkeypatch.setenv("SKVAULT_TRUSTED_KEYS", str(tmp_path / "empty-folder"))
    (tmp_path / "empty-folder").mkdir()
    with pytest.raises(skvault.SignatureError, match="no \\*.pub file"):
        skvault.load(path)


def test_key_rotation_trusts_several_keys(tmp_path, keys):
    old, new = tmp_path / "old.skv", tmp_path / "new.skv"
    skvault.dump(forest(0), old)
    skvault.dump(forest(1), new)
    skvault.sign(old, keys["other"][0])
    skvault.sign(new, keys["release"][0], embed=True)
    both = [keys["other"][1], keys["release"][1]]
    for path in (old, new):
        skvault.load(path, require_signature=both)
    ok(SKVAULT, "verify", old, "--pubkey", keys["other"][1], "--pubkey", keys["release"][1])


def test_private_keys_stay_private(model, keys, tmp_path):
    _, path = model
    key, _ = keys["release"]
    os.chmod(key, 0o644)
    with pytest.raises(skvault.SignatureError) as e:
        skvault.sign(path, key)
    assert e.value.reason == "key_permissions" and "chmod 600" in str(e.value)
    os.chmod(key, 0o600)
    skvault.sign(path, key, embed=True)
    secret = b"".join(key.read_bytes().splitlines()[1:-1])
    assert secret[:40] not in path.read_bytes().replace(b"\n", b"")
    with pytest.raises(skvault.SignatureError) as e:
        skvault.keygen(key)
    assert e.value.reason == "key_exists"


# --- registry -------------------------------------------------------------------------------


def test_signed_registry(backend, keys, tmp_path):
    reg = backend.open()
    m = forest(0)
    signed_file = tmp_path / "signed.skv"
    skvault.dump(m, signed_file)
    skvault.sign(signed_file, keys["release"][0], embed=True)
    unsigned_file = tmp_path / "unsigned.skv"
    skvault.dump(forest(1), unsigned_file)

    v1 = reg.register(m, "fraud", sign_with=keys["release"][0], identity="ci")
    v2 = reg.register(signed_file, "fraud")  # keeps its embedded signature, stored apart
    v3 = reg.register(unsigned_file, "fraud")
    assert reg.info("fraud", v1)["signature"] and reg.info("fraud", v2)["signature"]
    assert reg.info("fraud", v3).get("signature") is None
    # The stored file is the signed file, without a trailer.
    assert reg.fetch("fraud", v2)[-8:] != b"SKVSIGN\x00"

    pub = keys["release"][1]
    assert (reg.load("fraud", v1, require_signature=pub).predict(X) == m.predict(X)).all()
    reg.load("fraud", v2, require_signature=pub)
    with pytest.raises(skvault.SignatureError) as e:
        reg.load("fraud", v3, require_signature=pub)
    assert e.value.reason == "not_signed"
    with pytest.raises(skvault.SignatureError) as e:
        reg.load("fraud", v1, require_signature=keys["other"][1])
    assert e.value.reason == "unknown_key"

    # `get` writes the signature beside the file.
    reg.download("fraud", tmp_path / "got.skv", v1)
    assert skvault.verify_signature(tmp_path / "got.skv", pub)["identity"] == "ci"

    # The registry's own policy.
    reg.set_signature_policy(pub)
    assert reg.signature_policy() == [skvault.verify_signature(tmp_path / "got.skv", pub)["key_id"]]
    with pytest.raises(skvault.SignatureError):
        reg.register(unsigned_file, "fraud")
    with pytest.raises(skvault.SignatureError):
        reg.set_alias("fraud", "champion", v3)
    assert "champion" not in reg.aliases("fraud")
    reg.set_alias("fraud", "champion", v1)
    with pytest.raises(skvault.SignatureError):
        reg.load("fraud", v3)
    reg.load("fraud", alias="champion")
    # A tampered stored signature is refused on the way out.
    doc_path = backend.file_of(f"models/fraud/versions/{v2}.json")
    doc = json.loads(doc_path.read_text())
    doc["signature"] = json.dumps({"mediaType": "x"})
    doc_path.write_text(json.dumps(doc))
    with pytest.raises(skvault.SignatureError) as e:
        reg.load("fraud", v2)
    assert e.value.reason == "malformed_signature"
    reg.set_signature_policy(None)
    assert reg.signature_policy() is None
    reg.load("fraud", v3)


def test_registry_cli_signs_and_sets_the_policy(backend, keys, model, tmp_path):
    _, path = model
    env = backend.child_env()
    env.pop("SKVAULT_TRUSTED_KEYS", None)
    uri = ["registry", "--uri", backend.uri]
    ok(SKVAULT, *uri, "register", path, "m", "--sign-with", keys["release"][0], "--identity", "ci", env=env)
    out = ok(SKVAULT, *uri, "policy", "--require-signature", keys["release"][1], env=env).stdout
    assert "signature required: key" in out
    result = run(SKVAULT, *uri, "register", path, "m", env=env)
    assert result.returncode == 1 and "not signed" in result.stderr
    ok(SKVAULT, *uri, "get", "m", "--version", "1", "-o", tmp_path / "got.skv", env=env)
    ok(SKVAULT, "verify", tmp_path / "got.skv", "--pubkey", keys["release"][1], env=env)
    assert "no signature required" in ok(SKVAULT, *uri, "policy", "--clear", env=env).stdout


# --- serve ----------------------------------------------------------------------------------


def test_serve_honours_the_deployment_keys(model, keys, tmp_path):
    m, path = model
    env = no_env()
    env["SKVAULT_TRUSTED_KEYS"] = str(keys["release"][1])
    with pytest.raises(ServerFailed) as e:
        Server(str(path), env=env)
    assert "not signed" in e.value.stderr
    skvault.sign(path, keys["release"][0], embed=True)
    body = {"inputs": X[:5].tolist()}
    with Server(str(path), "--watch", "100ms", env=env) as s:
        assert predictions(s.post_json("/invocations", body)[1]) == m.predict(X[:5]).tolist()
        # An unsigned replacement is refused at reload; the signed model keeps serving.
        staged = tmp_path / ".staged.skv"
        skvault.dump(forest(3), staged)
        os.replace(staged, path)
        s.wait_for(lambda: s.get_json("/health")[1]["status"] == "degraded", what="the refused reload")
        assert predictions(s.post_json("/invocations", body)[1]) == m.predict(X[:5]).tolist()
        assert any("not signed" in line for line in s.lines)
        assert s.stop() == 0
    # --trusted-key overrides the environment.
    skvault.dump(m, path)
    skvault.sign(path, keys["other"][0], embed=True)
    with Server(str(path), "--trusted-key", str(keys["other"][1]), env=env) as s:
        assert s.stop() == 0


def test_native_load_from_a_registry_checks_the_version_signature(tmp_path, keys, monkeypatch):
    """The registry form of `skvault.native.load` keeps a signed version's signature beside
    its cached file, so the policy (given, or `SKVAULT_TRUSTED_KEYS` in the process that
    unpickles) checks it; an unsigned version is refused under a policy."""
    import pickle

    monkeypatch.setenv("SKVAULT_CACHE_DIR", str(tmp_path / "cache"))
    reg = skvault.Registry(tmp_path / "reg")
    m = forest(0)
    signed = reg.register(m, "fraud", sign_with=keys["release"][0])
    unsigned = reg.register(forest(1), "fraud")
    pub = keys["release"][1]
    model = skvault.native.load(tmp_path / "reg", name="fraud", version=signed, require_signature=pub)
    assert (model.predict(X) == m.predict(X)).all()
    cached = list((tmp_path / "cache" / "models").glob("*.skv.sig"))
    assert len(cached) == 1 and not list((tmp_path / "cache" / "models").glob(".*"))
    with pytest.raises(skvault.SignatureError) as e:
        skvault.native.load(tmp_path / "reg", name="fraud", version=unsigned, require_signature=pub)
    assert e.value.reason == "not_signed"
    # A process under the deployment's keys checks the cached file when it unpickles.
    blob = pickle.dumps(skvault.native.load(tmp_path / "reg", name="fraud", version=unsigned))
    code = "import pickle, sys, skvault\ntry:\n    pickle.loads(sys.stdin.buffer.read())\nexcept skvault.SignatureError as e:\n    print(e.reason)\n"
    env = no_env()
    env["SKVAULT_TRUSTED_KEYS"] = str(pub)
    env["SKVAULT_CACHE_DIR"] = str(tmp_path / "cache")
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, env=env)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().strip() == "not_signed"
