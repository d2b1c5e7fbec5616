"""skvault.Registry: the same tests on a folder and on a real S3-compatible server (s3s-fs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import forge
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import skvault


@pytest.fixture
def reg(backend):
    return backend.open()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


@pytest.fixture(scope="module")
def forest(data):
    return RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(*data)


def test_exceptions_are_importable_and_catchable():
    for exc, bases in [
        (skvault.RegistryError, (skvault.SkvaultError,)),
        (skvault.NotFoundError, (skvault.RegistryError, LookupError)),
        (skvault.InvalidNameError, (skvault.RegistryError, ValueError)),
        (skvault.ConflictError, (skvault.RegistryError,)),
    ]:
        assert all(issubclass(exc, b) for b in bases)
        with pytest.raises(exc):
            raise exc("x")


def test_register_model_and_load(reg, forest, data):
    X, y = data
    v = reg.register(forest, "forest", metrics={"acc": 0.9}, tags={"team": "risk"},
                     lineage={"run": "run-1", "data": "train.parquet"}, validation=(X[:10], y[:10]))
    assert v == 1
    loaded = reg.load("forest", validate=True)
    np.testing.assert_array_equal(loaded.predict_proba(X), forest.predict_proba(X))
    info = reg.info("forest", 1)
    assert info["metrics"]["acc"] == 0.9
    assert info["tags"] == {"team": "risk"}
    assert info["lineage"]["refs"] == {"run": "run-1", "data": "train.parquet"}
    assert info["lineage"]["object"] == "sklearn.ensemble._forest.RandomForestClassifier"
    assert info["lineage"]["environment"]["scikit-learn"]
    assert info["archived"] is False


def test_registered_file_comes_back_byte_identical(reg, backend, forest, tmp_path):
    for i, compress in enumerate([None, "zstd", "lz4"], start=1):
        path = tmp_path / f"m{i}.skv"
        skvault.dump(forest, path, compress=compress)
        assert reg.register(path, "m") == i
        assert reg.fetch("m", i) == path.read_bytes()
        assert reg.info("m", i)["lineage"]["source_path"] == str(path)
    out = tmp_path / "out.skv"
    reg.download("m", out, 2)
    assert out.read_bytes() == (tmp_path / "m2.skv").read_bytes()
    skvault.load(out, mmap=False)


def test_second_registration_stores_no_new_blob_bytes(reg, forest, tmp_path):
    path = tmp_path / "f.skv"
    skvault.dump(forest, path)
    reg.register(path, "f")
    before = reg.usage()
    assert reg.register(path, "f") == 2
    assert reg.register(path, "g") == 1
    assert reg.usage() == before


def test_versions_aliases_latest_archive(reg, data, tmp_path):
    X, y = data
    models = [LogisticRegression(C=c).fit(X, y) for c in (0.1, 1.0, 10.0)]
    for i, m in enumerate(models, start=1):
        assert reg.register(m, "lr") == i
    assert [v["version"] for v in reg.versions("lr")] == [1, 2, 3]
    assert reg.load("lr").C == 10.0
    assert reg.load("lr", 1).C == 0.1
    assert reg.set_alias("lr", "champion", 2, expected=None) is None
    assert reg.load("lr", alias="champion").C == 1.0
    with pytest.raises(skvault.ConflictError):
        reg.set_alias("lr", "champion", 3, expected=1)
    assert reg.set_alias("lr", "champion", 3, expected=2) == 2
    assert reg.aliases("lr") == {"champion": 3}
    with pytest.raises(skvault.ConflictError):
        reg.delete("lr", 3, force=True)
    reg.archive("lr", 3)
    assert reg.load("lr").C == 1.0  # latest skips archived versions
    assert [v["version"] for v in reg.versions("lr")] == [1, 2]
    assert len(reg.versions("lr", include_archived=True)) == 3
    assert reg.load("lr", alias="champion").C == 10.0  # archived, not gone
    reg.unarchive("lr", 3)
    assert reg.delete_alias("lr", "champion") == 3
    assert reg.models() == ["lr"]


def test_unknown_names_versions_aliases(reg, forest):
    with pytest.raises(skvault.NotFoundError, match="no model named"):
        reg.load("nope")
    with pytest.raises(LookupError):
        reg.versions("nope")
    reg.register(forest, "f")
    with pytest.raises(skvault.NotFoundError, match="no version 9"):
        reg.load("f", 9)
    with pytest.raises(skvault.NotFoundError, match="no alias"):
        reg.load("f", alias="prod")
    with pytest.raises(skvault.NotFoundError):
        reg.set_alias("f", "prod", 9)


@pytest.mark.parametrize("bad", ["../x", "..", "a/b", "", ".x", "a b", "x\n", "/abs"])
def test_invalid_names_are_refused(reg, forest, bad, backend):
    with pytest.raises(skvault.InvalidNameError):
        reg.register(forest, bad)
    with pytest.raises(ValueError):
        reg.load(bad)
    assert not (backend.root.parent / "x").exists()


def test_invalid_alias_and_filters(reg, forest):
    reg.register(forest, "f")
    for bad in ["1", "../a", "a/b"]:
        with pytest.raises(skvault.InvalidNameError):
            reg.set_alias("f", bad, 1)
    with pytest.raises(skvault.InvalidNameError):
        reg.search(metrics=["acc>>1"])
    with pytest.raises(ValueError):
        reg.register(forest, "f", metrics={"acc": float("nan")})


def test_tampered_blob_is_detected_on_load(reg, backend, forest):
    reg.register(forest, "f")
    info = reg.info("f")
    victim = max(info["file"]["blobs"], key=lambda d: backend.file_of(f"blobs/{d}").stat().st_size)
    path = backend.file_of(f"blobs/{victim}")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(skvault.IntegrityError, match="digest mismatch"):
        reg.load("f")
    assert len(reg.check(deep=True)) == 1


def test_untrusted_names_refused_through_the_registry(reg, tmp_path):
    path = tmp_path / "evil.skv"
    path.write_bytes(forge({"object": "os.system", "call": ["true"]}))
    reg.register(path, "evil")
    with pytest.raises(skvault.UntrustedTypesError):
        reg.load("evil")


def test_search_tags_and_metrics(reg, forest):
    reg.register(forest, "a", metrics={"auc": 0.95}, tags={"team": "risk"})
    reg.register(forest, "a", metrics={"auc": 0.80}, tags={"team": "risk"})
    reg.register(forest, "b", metrics={"auc": 0.99})
    found = lambda **kw: [(v["name"], v["version"]) for v in reg.search(**kw)]  # noqa: E731
    assert found(tags={"team": "risk"}) == [("a", 1), ("a", 2)]
    assert found(tags=["team"], metrics="auc>0.9") == [("a", 1)]
    assert found(metrics=["auc>=0.9"]) == [("a", 1), ("b", 1)]
    assert found(name="b") == [("b", 1)]
    assert reg.tag("a", 2, {"stage": "canary"}, remove=["team"]) == {"stage": "canary"}
    assert found(tags={"team": "risk"}) == [("a", 1)]
    reg.archive("a", 1)
    assert found(tags={"team": "risk"}) == []
    assert found(tags={"team": "risk"}, include_archived=True) == [("a", 1)]


def test_delete_needs_force_and_gc_frees_blobs(reg, data):
    X, y = data
    reg.register(LogisticRegression(C=1.0).fit(X, y), "lr")
    reg.register(LogisticRegression(C=2.0).fit(X, y), "lr")
    before = reg.usage()
    with pytest.raises(ValueError, match="force=True"):
        reg.delete("lr", 2)
    report = reg.delete("lr", 2, force=True, grace_seconds=0)
    assert report["deleted"] >= 1
    assert reg.usage()["blobs"] == before["blobs"] - report["deleted"]
    with pytest.raises(skvault.NotFoundError):
        reg.load("lr", 2)
    assert reg.load("lr", 1).C == 1.0
    assert reg.register(LogisticRegression().fit(X, y), "lr") == 3
    assert reg.check(deep=True) == []


# -- processes ---------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time, skvault
    uri, path, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    reg = skvault.Registry(uri)
    time.sleep(max(0.0, start - time.time()))
    print(reg.register(path, "race", lineage={"writer": path}))
    """
)

ALIAS_RACER = textwrap.dedent(
    """
    import sys, time, skvault
    uri, target, current, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    reg = skvault.Registry(uri)
    time.sleep(max(0.0, start - time.time()))
    try:
        reg.set_alias("m", "champion", target, expected=current)
        print("won")
    except skvault.ConflictError:
        print("lost")
    """
)


def _run_all(backend, scripts_args, start_in=1.5):
    start = time.time() + start_in
    procs = [
        subprocess.Popen([sys.executable, "-c", script, *[str(a) for a in args], str(start)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=backend.child_env())
        for script, args in scripts_args
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(out.strip())
    return outs


def test_eight_processes_register_the_same_name_at_once(backend, reg, data, tmp_path):
    X, y = data
    files = []
    for i in range(8):
        path = tmp_path / f"w{i}.skv"
        skvault.dump(LogisticRegression(C=1.0 + i).fit(X, y), path)
        files.append(path)
    for round_ in range(3):
        outs = _run_all(backend, [(WRITER, (backend.uri, f)) for f in files])
        assert sorted(int(o) for o in outs) == list(range(8 * round_ + 1, 8 * round_ + 9))
    versions = reg.versions("race")
    assert len(versions) == 24
    for v in versions:  # every writer's document is its own: none overwrote another
        assert v["lineage"]["refs"]["writer"] == v["lineage"]["source_path"]
        assert reg.fetch("race", v["version"]) == open(v["lineage"]["source_path"], "rb").read()
    assert reg.check(deep=True) == []


def test_alias_compare_and_swap_race_between_processes(backend, reg, forest):
    for _ in range(9):
        reg.register(forest, "m")
    reg.set_alias("m", "champion", 1)
    for _ in range(3):
        current = reg.aliases("m")["champion"]
        targets = [v for v in range(1, 10) if v != current]
        outs = _run_all(backend, [(ALIAS_RACER, (backend.uri, t, current)) for t in targets])
        assert outs.count("won") == 1, outs
        assert reg.aliases("m")["champion"] == targets[outs.index("won")]


def test_writer_killed_mid_register_leaves_no_visible_version(backend, reg, tmp_path):
    # Many arrays make many blob uploads, so the kill lands in the middle of them.
    arrays = {f"a{i}": np.full(2000, i, dtype=np.float64) for i in range(400)}
    path = tmp_path / "many.skv"
    skvault.dump(arrays, path)
    reg.register({"small": np.arange(3)}, "victim")
    blobs = backend.file_of("blobs")
    script = "import sys, skvault; skvault.Registry(sys.argv[1]).register(sys.argv[2], 'victim')"
    killed_mid_upload = 0
    for delay in (0.0, 0.05, 0.2):
        before = len(list(blobs.iterdir()))
        p = subprocess.Popen([sys.executable, "-c", script, backend.uri, str(path)], env=backend.child_env(),
                             stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(list(blobs.iterdir())) <= before + 5 and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(delay)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()
        # Whatever the moment of the kill: no damage, and a version is visible only if complete.
        assert reg.check() == []
        versions = [v["version"] for v in reg.versions("victim")]
        for v in versions:
            reg.load("victim", v)
        if versions == [1]:
            killed_mid_upload += p.returncode == -signal.SIGKILL
        else:  # the version was created before the kill landed: complete, byte for byte
            assert reg.fetch("victim", versions[-1]) == path.read_bytes()
            reg.delete("victim", versions[-1], force=True, grace_seconds=0)
    assert killed_mid_upload >= 1
    # The killed writers' orphans are gone (collected here or by the deletes above).
    report = reg.gc(grace_seconds=0)
    assert reg.usage()["blobs"] == report["referenced"]
    assert reg.check(deep=True) == []
    assert reg.register(path, "victim") >= 2
    assert reg.fetch("victim") == path.read_bytes()


def test_cli_registry_commands(backend, forest, tmp_path):
    path = tmp_path / "f.skv"
    skvault.dump(forest, path)

    def cli(*args):
        r = subprocess.run([sys.executable, "-m", "skvault", "registry", "--uri", backend.uri, *args],
                           capture_output=True, text=True, env=backend.child_env())
        return r.returncode, r.stdout, r.stderr

    assert cli("register", str(path), "f", "--metric", "acc=0.9", "--tag", "team=x", "--lineage", "run=7")[:2] == (0, "1\n")
    assert cli("set-alias", "f", "prod", "--version", "1", "--expect", "none")[0] == 0
    code, out, _ = cli("versions", "f", "--json")
    assert code == 0 and json.loads(out)[0]["aliases"] == ["prod"]
    out_file = tmp_path / "got.skv"
    assert cli("get", "f", "--alias", "prod", "-o", str(out_file))[0] == 0
    assert out_file.read_bytes() == path.read_bytes()
    code, _, err = cli("register", str(path), "../x")
    assert code == 2 and "invalid model name" in err
    code, _, err = cli("delete", "f", "--version", "1")
    assert code == 2 and "--yes" in err
    code, out, _ = cli("search", "--metric", "acc>0.5")
    assert code == 0 and out.startswith("f  v1")
    assert cli("check", "--deep")[0] == 0
