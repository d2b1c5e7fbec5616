"""skvault.native models pickle as references (source + digest), never as their arrays.

Each "other process" below is a real child interpreter with its own model cache (and, for
registry models, its own cache folder), the way a Dask or Ray worker unpickles a task.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

import skvault
import skvault.native


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    return X, y


def _forest(data, n_trees, seed=0):
    return RandomForestClassifier(n_estimators=n_trees, max_depth=8, random_state=seed).fit(*data)


@pytest.fixture(scope="module")
def small(data):
    return _forest(data, 3)


@pytest.fixture(scope="module")
def large(data):
    return _forest(data, 150, seed=1)


# Unpickles the model in argv[1] (twice, then once more after moving its file away) and
# predicts argv[2]'s rows; prints what happened as JSON. A refusal is printed, not raised.
CHILD = textwrap.dedent(
    """
    import json, os, pickle, sys
    import numpy as np
    import skvault
    blob = open(sys.argv[1], "rb").read()
    X = np.load(sys.argv[2])
    try:
        first = pickle.loads(blob)
    except skvault.ModelReferenceError as e:
        print(json.dumps({"error": type(e).__name__, "message": str(e), "source": e.source,
                          "expected": e.expected, "found": e.found,
                          "cause": type(e.__cause__).__name__ if e.__cause__ else None}))
        sys.exit(0)
    again = pickle.loads(blob)
    moved = None
    if len(sys.argv) > 3:
        os.rename(sys.argv[3], sys.argv[3] + ".away")
        moved = pickle.loads(blob) is first
        os.rename(sys.argv[3] + ".away", sys.argv[3])
    print(json.dumps({"proba": first.predict_proba(X).tolist(), "same_object": again is first,
                      "after_move_same_object": moved, "source": first.source,
                      "digest": first.digest}))
    """
)


def _child(tmp_path, model_bytes, X, *extra, env=None):
    blob, rows = tmp_path / "model.pickle", tmp_path / "X.npy"
    blob.write_bytes(model_bytes)
    np.save(rows, X)
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(blob), str(rows), *map(str, extra)],
        capture_output=True, text=True, timeout=120, env=env or dict(os.environ),
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _header_digest(path) -> str:
    # FORMAT.md 2.1: the manifest digest is bytes 24..56 of the 64-byte header.
    return struct.unpack_from("<32s", open(path, "rb").read(64), 24)[0].hex()


def test_a_native_model_pickles_to_the_same_few_bytes_whatever_the_size_of_the_model(small, large, tmp_path):
    a, b = tmp_path / "a.skv", tmp_path / "b.skv"
    skvault.dump(small, a)
    skvault.dump(large, b)
    assert b.stat().st_size > 20 * a.stat().st_size
    sizes = [len(pickle.dumps(skvault.native.load(p))) for p in (a, b)]
    assert sizes[0] == sizes[1] < 1000


def test_the_digest_is_the_manifest_digest_of_the_file_and_the_source_its_absolute_path(small, tmp_path, monkeypatch):
    skvault.dump(small, tmp_path / "m.skv")
    monkeypatch.chdir(tmp_path)
    model = skvault.native.load("m.skv")
    assert model.digest == _header_digest(tmp_path / "m.skv")
    assert model.source == str(tmp_path / "m.skv")


def test_another_process_opens_the_file_once_checks_it_and_predicts_like_scikit_learn(small, data, tmp_path):
    path = tmp_path / "m.skv"
    skvault.dump(small, path)
    X = data[0][:50]
    out = _child(tmp_path, pickle.dumps(skvault.native.load(path)), X, path)
    assert np.array_equal(np.array(out["proba"]), small.predict_proba(X))
    assert out["same_object"] is True
    # The file was moved away before the third unpickle: the process's opened model served it.
    assert out["after_move_same_object"] is True
    assert out["digest"] == _header_digest(path)


def test_unpickling_where_the_model_was_loaded_gives_back_that_model_without_keeping_loads_alive(small, tmp_path):
    import gc
    import weakref

    path = tmp_path / "m.skv"
    skvault.dump(small, path)
    model = skvault.native.load(path)
    assert pickle.loads(pickle.dumps(model)) is model  # now held for the process's later unpickles
    other = tmp_path / "other.skv"
    skvault.dump(_forest((np.eye(6), np.arange(6) % 2), 2), other)
    dropped = weakref.ref(skvault.native.load(other))
    gc.collect()
    assert dropped() is None  # a model that was loaded, never unpickled, is freed with its last reference


def test_a_missing_file_is_a_model_reference_error_naming_the_path_and_the_digest(small, data, tmp_path):
    path = tmp_path / "m.skv"
    skvault.dump(small, path)
    blob = pickle.dumps(skvault.native.load(path))
    path.unlink()
    out = _child(tmp_path, blob, data[0][:5])
    assert out["error"] == "ModelReferenceError"
    assert str(path) in out["message"] and "missing" in out["message"]
    assert out["expected"] in out["message"] and len(out["expected"]) == 64
    assert out["found"] is None and out["cause"] == "FileNotFoundError"


def test_a_file_replaced_by_another_model_is_refused_naming_both_digests(small, data, tmp_path):
    path = tmp_path / "m.skv"
    skvault.dump(small, path)
    pinned = skvault.native.load(path)
    blob = pickle.dumps(pinned)
    skvault.dump(_forest(data, 3, seed=7), path)
    out = _child(tmp_path, blob, data[0][:5])
    assert out["error"] == "ModelReferenceError"
    assert out["expected"] == pinned.digest and out["found"] == _header_digest(path) != pinned.digest
    assert str(path) in out["message"] and pinned.digest in out["message"] and out["found"] in out["message"]


def test_a_file_whose_arrays_were_altered_is_refused_with_the_integrity_error_as_cause(small, data, tmp_path):
    path = tmp_path / "m.skv"
    skvault.dump(small, path)
    blob = pickle.dumps(skvault.native.load(path))
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0x01  # in the last array: the manifest (and its digest) stay as they were
    path.write_bytes(bytes(raw))
    out = _child(tmp_path, blob, data[0][:5])
    assert out["error"] == "ModelReferenceError" and out["cause"] == "IntegrityError"
    assert str(path) in out["message"] and "digest" in out["message"]


def test_the_model_reference_error_pickles_with_its_fields():
    e = skvault.ModelReferenceError("gone", "/m.skv", "a" * 64, None)
    back = pickle.loads(pickle.dumps(e))
    assert (str(back), back.source, back.expected, back.found) == ("gone", "/m.skv", "a" * 64, None)


def test_registry_arguments_without_a_name_are_refused(small, tmp_path):
    skvault.dump(small, tmp_path / "m.skv")
    with pytest.raises(TypeError, match="name="):
        skvault.native.load(tmp_path / "m.skv", alias="champion")


# --- registry references ----------------------------------------------------------------------


def _driver_env(backend, tmp_path, monkeypatch) -> dict[str, str]:
    """This process reaches the registry through the environment (as the children do), with
    a cache folder of its own; returns that environment for the children to start from."""
    env = {**backend.child_env(), "SKVAULT_CACHE_DIR": str(tmp_path / "driver-cache")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def test_an_alias_is_pinned_to_its_version_when_loaded(backend, small, data, tmp_path, monkeypatch):
    reg = backend.open()
    other = _forest(data, 3, seed=5)
    v1, v2 = reg.register(small, "fraud"), reg.register(other, "fraud")
    reg.set_alias("fraud", "champion", v1)
    env = _driver_env(backend, tmp_path, monkeypatch)
    model = skvault.native.load(backend.uri, name="fraud", alias="champion")
    assert model.source == f"{reg.uri} fraud@{v1}"
    blob = pickle.dumps(model)
    assert len(blob) < 1000
    reg.set_alias("fraud", "champion", v2)  # moves after the load: the pickle stays on v1
    worker = {**env, "SKVAULT_CACHE_DIR": str(tmp_path / "worker-cache")}
    X = data[0][:40]
    out = _child(tmp_path, blob, X, env=worker)
    assert np.array_equal(np.array(out["proba"]), small.predict_proba(X))
    cached = list((tmp_path / "worker-cache" / "models").iterdir())
    assert [p.name for p in cached] == [reg.info("fraud", v1)["file"]["blake3"] + ".skv"]
    # Cached once per machine: the next process opens the cached file without the registry.
    shutil.rmtree(backend.root)
    again = _child(tmp_path, blob, X, env=worker)
    assert again["proba"] == out["proba"]


def test_two_processes_fetching_the_same_version_at_once_leave_one_complete_file(backend, large, data, tmp_path):
    reg = backend.open()
    v = reg.register(large, "fraud")
    env = {**backend.child_env(), "SKVAULT_CACHE_DIR": str(tmp_path / "cache")}
    script = textwrap.dedent(
        """
        import sys, time, skvault.native
        time.sleep(max(0.0, float(sys.argv[4]) - time.time()))
        m = skvault.native.load(sys.argv[1], name=sys.argv[2], version=int(sys.argv[3]))
        print(m.digest)
        """
    )
    import time

    start = str(time.time() + 1.5)
    procs = [subprocess.Popen([sys.executable, "-c", script, backend.uri, "fraud", str(v), start],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert len({o.strip() for o, _ in outs}) == 1
    files = sorted(p.name for p in (tmp_path / "cache" / "models").iterdir())
    assert files == [reg.info("fraud", v)["file"]["blake3"] + ".skv"]
    assert (tmp_path / "cache" / "models" / files[0]).read_bytes() == reg.fetch("fraud", v)


def test_a_tampered_blob_in_the_registry_is_refused_where_the_model_is_unpickled(backend, large, data, tmp_path, monkeypatch):
    reg = backend.open()
    reg.register(large, "fraud")
    env = _driver_env(backend, tmp_path, monkeypatch)
    blob = pickle.dumps(skvault.native.load(backend.uri, name="fraud"))
    info = reg.info("fraud")
    victim = max(info["file"]["blobs"], key=lambda d: backend.file_of(f"blobs/{d}").stat().st_size)
    path = backend.file_of(f"blobs/{victim}")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    out = _child(tmp_path, blob, data[0][:5], env={**env, "SKVAULT_CACHE_DIR": str(tmp_path / "worker-cache")})
    assert out["error"] == "ModelReferenceError" and out["cause"] == "IntegrityError"
    assert "fraud@1" in out["message"] and "digest mismatch" in out["message"]
    assert not any((tmp_path / "worker-cache" / "models").iterdir())  # nothing half-written cached


def test_a_cached_file_replaced_by_another_model_is_refused_naming_the_cache_path(backend, small, data, tmp_path, monkeypatch):
    reg = backend.open()
    reg.register(small, "fraud")
    env = _driver_env(backend, tmp_path, monkeypatch)
    model = skvault.native.load(backend.uri, name="fraud")
    cached = tmp_path / "driver-cache" / "models" / f"{reg.info('fraud')['file']['blake3']}.skv"
    skvault.dump(_forest(data, 3, seed=11), cached)  # what a damaged or tampered cache would hold
    out = _child(tmp_path, pickle.dumps(model), data[0][:5], env=env)
    assert out["error"] == "ModelReferenceError"
    assert str(cached) in out["message"] and out["expected"] == model.digest != out["found"]
