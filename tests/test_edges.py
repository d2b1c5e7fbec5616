"""API edges: ``trusted=`` (one str is one name, everywhere), the registry's version and
alias arguments, a registry path that is a file, links planted in a registry folder, and
a command line whose stdout goes away."""

from __future__ import annotations

import json
import statistics
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import skvault

CLI = [sys.executable, "-m", "skvault"]


@pytest.fixture
def needs_json_dumps(tmp_path):
    """A .skv file, its JSON export and a pickle that all name ``statistics.median`` (not trusted by default)."""
    skv = tmp_path / "f.skv"
    skvault.dump({"f": statistics.median}, skv)
    assert skvault.get_untrusted_types(skv) == ["statistics.median"]
    doc = tmp_path / "f.json"
    skvault.export_json(skv, doc)
    pkl = tmp_path / "f.pkl"
    pkl.write_bytes(pickle.dumps({"f": statistics.median}))
    return skv, doc, pkl


def test_a_single_string_is_one_trusted_name_in_every_function(needs_json_dumps, tmp_path):
    skv, doc, pkl = needs_json_dumps
    name = "statistics.median"
    assert skvault.load(skv, trusted=name)["f"] is statistics.median
    assert skvault.loads(skv.read_bytes(), trusted=name)["f"] is statistics.median
    assert skvault.get_untrusted_types(skv, trusted=name) == []
    out = tmp_path / "back.skv"
    skvault.import_json(doc, out, trusted=name)
    assert skvault.load(out, trusted=[name])["f"] is statistics.median
    assert skvault.scan(pkl).verdict == "unknown"
    assert skvault.scan(pkl, trusted=name).verdict == "safe"
    converted = tmp_path / "converted.skv"
    skvault.convert(pkl, converted, trusted=name)
    assert skvault.load(converted, trusted=(n for n in [name]))["f"] is statistics.median
    reg = skvault.Registry(tmp_path / "registry")
    reg.register(skv, "m")
    assert reg.load("m", trusted=name)["f"] is statistics.median


@pytest.mark.parametrize("bad", [5, b"statistics.median", 1.5, object()])
def test_trusted_that_is_neither_a_str_nor_an_iterable_of_str_is_a_type_error(needs_json_dumps, tmp_path, bad):
    skv, doc, pkl = needs_json_dumps
    calls = [
        lambda: skvault.load(skv, trusted=bad),
        lambda: skvault.loads(skv.read_bytes(), trusted=bad),
        lambda: skvault.get_untrusted_types(skv, trusted=bad),
        lambda: skvault.import_json(doc, tmp_path / "x.skv", trusted=bad),
        lambda: skvault.scan(pkl, trusted=bad),
        lambda: skvault.convert(pkl, tmp_path / "y.skv", trusted=bad),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="trusted"):
            call()
    assert not (tmp_path / "x.skv").exists() and not (tmp_path / "y.skv").exists()


@pytest.fixture
def registry(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    reg = skvault.Registry(tmp_path / "registry")
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    reg.register(model, "m", tags={"team": "risk", "t": "x"})
    reg.register(model, "m")
    reg.set_alias("m", "prod", 2)
    return reg


def test_version_and_alias_together_are_refused(registry, tmp_path):
    for call in [
        lambda: registry.load("m", 1, alias="missing"),
        lambda: registry.load("m", version=1, alias="prod"),
        lambda: registry.fetch("m", 1, alias="prod"),
        lambda: registry.info("m", 1, alias="prod"),
        lambda: registry.download("m", tmp_path / "d.skv", 1, alias="prod"),
        lambda: registry.export("m", tmp_path / "e.json", 1, alias="prod"),
    ]:
        with pytest.raises(TypeError, match="not both"):
            call()
    # Either one alone still works.
    assert registry.info("m", alias="prod")["version"] == 2
    assert registry.info("m", 1)["version"] == 1


def test_a_bool_is_not_a_version(registry):
    for call in [
        lambda: registry.load("m", version=True),
        lambda: registry.fetch("m", True),
        lambda: registry.info("m", version=False),
        lambda: registry.set_alias("m", "staging", True),
        lambda: registry.set_alias("m", "prod", 1, expected=True),
        lambda: registry.tag("m", True, {"a": "b"}),
        lambda: registry.archive("m", True),
        lambda: registry.delete("m", True, force=True),
    ]:
        with pytest.raises(TypeError, match="must be an int, not bool"):
            call()
    assert [v["version"] for v in registry.versions("m")] == [1, 2]
    with pytest.raises(TypeError, match="alias must be a str"):
        registry.load("m", alias=1)


def test_tag_remove_takes_one_key_as_a_string(registry):
    assert registry.tag("m", 1, remove="team") == {"t": "x"}


def test_a_file_is_not_a_registry_folder(tmp_path):
    path = tmp_path / "a-file"
    path.write_bytes(b"x")
    with pytest.raises(skvault.RegistryError, match="regular file, not a registry folder") as info:
        skvault.Registry(path)
    assert not isinstance(info.value, FileExistsError)
    assert path.read_bytes() == b"x"


def test_gc_never_follows_a_link_planted_under_blobs(registry, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_bytes(b"keep me")
    blobs = tmp_path / "registry" / "blobs"
    (blobs / "evil").symlink_to(victim)
    (blobs / ("ab" * 32)).symlink_to(victim / "precious.txt")
    registry.delete("m", 1, force=True, grace_seconds=0)
    report = registry.gc(grace_seconds=0)
    assert (victim / "precious.txt").read_bytes() == b"keep me"
    assert report["foreign"] == 2 and report["deleted"] == 0
    problems = registry.check()
    assert sorted(p.split(":")[0] for p in problems) == ["blobs/" + "ab" * 32, "blobs/evil"]
    code = subprocess.run([*CLI, "registry", "--uri", str(tmp_path / "registry"), "check"],
                          capture_output=True, text=True, timeout=120).returncode
    assert code != 0


def _big_manifest(tmp_path):
    path = tmp_path / "big.skv"
    skvault.dump({f"key{i}": "x" * 100 for i in range(3000)}, path)
    return path


def test_a_closed_stdout_pipe_ends_the_command_quietly(tmp_path):
    path = _big_manifest(tmp_path)
    for args in (["inspect", "--json", str(path)], ["inspect", "--all", str(path)]):
        proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        head = proc.stdout.read(10)
        proc.stdout.close()  # like `| head -c 10`: the rest cannot be written
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=120)
        assert len(head) == 10
        assert err == "", err
        assert code == 0


def test_a_full_stdout_is_one_error_message(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    path = _big_manifest(tmp_path)
    with open("/dev/full", "w") as full:
        result = subprocess.run([*CLI, "inspect", "--json", str(path)], stdout=full, stderr=subprocess.PIPE,
                                text=True, timeout=120)
    assert result.returncode == 2
    assert "writing to stdout" in result.stderr
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr
