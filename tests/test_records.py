"""The classes `skvault._native` returns instead of JSON text (registry documents, scan
reports, conversions) and the typed values it takes (metadata, registration options).

Every class is frozen, has `__eq__`, `__repr__` and `to_dict()`; `to_dict()` gives what the
CLI prints with `--json` for the same registry or scan. Values going in are converted as
`json.dumps(allow_nan=False)` read back by serde_json would give: the bytes written do not
depend on the path taken.
"""

from __future__ import annotations

import enum
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import skvault
from skvault import _native

RECORDS = [
    _native.Conversion,
    _native.FileRef,
    _native.FileScan,
    _native.GcReport,
    _native.GlobalFinding,
    _native.Lineage,
    _native.Migration,
    _native.RegisterOptions,
    _native.ScanReport,
    _native.VersionDoc,
    _native.VersionInfo,
]


def cli(*args: str) -> object:
    done = subprocess.run([sys.executable, "-m", "skvault", *args], capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    return LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))


@pytest.fixture
def registry(tmp_path, model):
    """A folder registry with two versions of "m" (one aliased), one of "n", a deleted version."""
    uri = str(tmp_path / "reg")
    reg = skvault.Registry(uri)
    reg.register(model, "m", metrics={"acc": 0.75, "n": 3}, tags={"team": "risk"},
                 metadata={"owner": "ana", "nested": {"k": [1, 2.5, None]}}, lineage={"run": "r-1"})
    reg.register(model, "m", metrics={"acc": 0.5})
    reg.set_alias("m", "champion", 1)
    reg.register(model, "n")
    reg.register(LogisticRegression(C=2.0).fit(np.eye(3), [0, 1, 0]), "gone")
    return uri, reg


@pytest.fixture
def pickles(tmp_path, model):
    """A folder of pickles: a model (unknown names), a plain list (safe), os.system (unsafe)."""
    folder = tmp_path / "pickles"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(model, protocol=5))
    (folder / "list.pkl").write_bytes(pickle.dumps([1, 2.5, "x"], protocol=2))
    (folder / "evil.pkl").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    return folder


@pytest.fixture
def old_tree(tmp_path):
    """A tree pickle that says it was saved by scikit-learn 1.3: converting it migrates its
    values (class counts to fractions; these already are fractions, which stay as they are)."""
    X = np.random.default_rng(0).normal(size=(50, 3))
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, (X[:, 0] > 0).astype(int))
    data = pickle.dumps(tree, protocol=5)
    version = sklearn.__version__.encode()
    assert data.count(version) == 1
    path = tmp_path / "old_tree.pkl"
    path.write_bytes(data.replace(version, b"1.3." + b"0" * (len(version) - 4)))
    return path


def test_every_record_class_has_eq_repr_to_dict_and_is_final():
    for cls in RECORDS:
        assert cls.__module__ == "skvault._native", cls
        assert cls.__eq__ is not object.__eq__, cls
        assert cls.__repr__ is not object.__repr__, cls
        assert callable(getattr(cls, "to_dict", None)), cls
        with pytest.raises(TypeError):
            type("Sub", (cls,), {})


def _instances(registry, pickles, old_tree, tmp_path):
    uri, reg = registry
    native = reg._native
    info = native.info("m", 1)
    scans = _native.scan_paths([pickles])
    report = next(s.report for s in scans if s.report.globals)
    done = _native.convert(old_tree, tmp_path / "tree.skv")
    return {
        _native.VersionInfo: info,
        _native.VersionDoc: info.doc,
        _native.FileRef: info.doc.file,
        _native.Lineage: info.doc.lineage,
        _native.GcReport: native.gc(3600.0),
        _native.RegisterOptions: _native.RegisterOptions(metrics={"a": 1}),
        _native.FileScan: scans[0],
        _native.ScanReport: report,
        _native.GlobalFinding: report.globals[0],
        _native.Conversion: done,
        _native.Migration: done.migrations[0],
    }


def test_records_are_frozen_and_compare_by_value(registry, pickles, old_tree, tmp_path):
    first = _instances(registry, pickles, old_tree, tmp_path)
    (tmp_path / "again").mkdir()
    second = _instances(registry, pickles, old_tree, tmp_path / "again")
    assert set(first) == set(RECORDS)
    for cls, obj in first.items():
        assert type(obj) is cls
        assert obj == second[cls], cls
        assert obj != object() and obj != obj.to_dict(), cls
        assert repr(obj).startswith(cls.__name__ + "("), repr(obj)
        getters = [n for n, v in vars(cls).items() if type(v).__name__ == "getset_descriptor"]
        assert getters, cls
        for name in getters:
            with pytest.raises(AttributeError):
                setattr(obj, name, getattr(obj, name))
        with pytest.raises(AttributeError):
            obj.not_an_attribute = 1  # type: ignore[attr-defined]
    assert first[_native.VersionInfo] != registry[1]._native.info("m", 2)


def test_registry_records_match_the_cli(registry):
    uri, reg = registry
    native = reg._native
    base = ["registry", "--uri", uri]
    info = native.info("m", alias="champion")
    assert info.to_dict() == cli(*base, "show", "m", "--alias", "champion", "--arrays")
    assert info.to_dict() == reg.info("m", alias="champion")
    doc = info.doc
    assert (info.name, info.version, info.archived, info.aliases) == ("m", 1, False, ["champion"])
    assert (doc.name, doc.version) == ("m", 1)
    assert (doc.metrics, doc.tags) == ({"acc": 0.75, "n": 3.0}, {"team": "risk"})
    assert doc.metadata == {"owner": "ana", "nested": {"k": [1, 2.5, None]}}
    assert doc.lineage.refs == {"run": "r-1"}
    assert doc.lineage.object == "sklearn.linear_model._logistic.LogisticRegression"
    assert doc.file.size == len(reg.fetch("m", 1)) and doc.file.blobs
    # The document is the version info without the listing's fields.
    expected = {k: v for k, v in info.to_dict().items() if k not in ("archived", "aliases")}
    assert doc.to_dict() == expected
    assert native.fetch("m", 1)[0] == doc
    versions = [v.to_dict() for v in native.versions("m", False)]
    assert versions == cli(*base, "versions", "m", "--json")
    assert [v.to_dict() for v in native.search(None, {"team": None}, [], False)] == cli(
        *base, "search", "--tag", "team", "--json"
    )
    deleted = native.delete_version("gone", 1, 0.0)
    assert deleted.deleted >= 1 and deleted.to_dict()["deleted"] == deleted.deleted
    assert native.gc(0.0).to_dict() == cli(*base, "gc", "--grace-seconds", "0")


def test_scan_records_match_the_cli(pickles, tmp_path):
    scans = _native.scan_paths([pickles])
    assert [s.to_dict() for s in scans] == cli("scan", "--json", str(pickles))["files"]
    by_name = {s.path.name: s for s in scans}
    assert by_name["list.pkl"].report.verdict == "safe" and by_name["list.pkl"].report.is_safe()
    evil = by_name["evil.pkl"].report
    assert evil.verdict == "unsafe"
    found = [(g.qualified, g.kind, g.first_offset) for g in evil.globals]
    assert found == [("os.system", "dangerous", 0)]
    assert evil.globals[0].to_dict() == evil.to_dict()["globals"][0]
    public = skvault.scan(pickles / "evil.pkl")
    assert public.dangerous == ["os.system"] and public.size == by_name["evil.pkl"].size
    with pytest.raises(skvault.UnsafeFileError) as refused:
        skvault.convert(pickles / "evil.pkl", tmp_path / "evil.skv")
    assert refused.value.report.dangerous == ["os.system"]


def test_conversion_record(old_tree, tmp_path):
    done = _native.convert(old_tree, tmp_path / "tree.skv")
    d = done.to_dict()
    assert d["report"] == done.report.to_dict() and d["arrays"] == done.arrays > 0
    assert d["bytes_written"] == done.bytes_written == (tmp_path / "tree.skv").stat().st_size
    assert d["sklearn_versions"] == done.sklearn_versions
    assert [v[:4] for v in done.sklearn_versions] == ["1.3."]
    (migration,) = done.migrations
    assert d["migrations"] == [migration.to_dict()]
    assert migration.to_dict() == {
        "id": migration.id, "what": migration.what, "count": 1, "first_path": "/tree_"
    }
    assert migration.id == "tree-values-fractions"
    public = skvault.convert(old_tree, tmp_path / "public.skv")
    assert public.migrations == (migration.to_dict(),) and public.report.is_safe


def test_describe_is_the_manifest_json(tmp_path, model):
    path = tmp_path / "m.skv"
    skvault.dump(model, path)
    assert _native.describe(str(path)) == json.loads(_native.manifest_json(str(path)))
    assert _native.describe(str(path)) == cli("inspect", "--json", str(path))
    assert skvault.inspect(path) == _native.describe(path.read_bytes())


class Level(enum.IntEnum):
    HIGH = 3


class Ratio(float):
    def __repr__(self) -> str:
        return "Ratio!"


class Name(str):
    pass


# Values as json.dumps writes them: keys made text, tuples as lists, subclasses as their base.
ODD_BUT_JSON = {
    "ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**70), 10**300, Level.HIGH, True],
    "floats": [0.1, -0.0, 1e300, 5e-324, Ratio(2.5), np.float64(1 / 3)],
    "text": [Name("n"), "é\u2028\x00", ""],
    "tuple": (1, (2, [3])),
    1: "int key",
    2.5: "float key",
    False: "bool key",
    None: "none key",
    Level.HIGH: "int-enum key",
    "1": "replaces the int key's value, in its place",
}


def _serde_int(digits: str) -> int | float:
    """An integer as serde_json reads it: exact within 64 bits, else the nearest float."""
    n = int(digits)
    return n if -(2**63) <= n < 2**64 else float(n)


def test_values_going_in_are_written_as_a_json_round_trip_would_be(model):
    text = json.dumps(ODD_BUT_JSON, allow_nan=False)
    through_text = json.loads(text, parse_int=_serde_int)
    direct = _native.dumps(model, metadata=ODD_BUT_JSON)
    assert direct == _native.dumps(model, metadata=through_text)
    assert skvault.inspect(direct)["metadata"] == through_text
    assert list(through_text)[4:] == ["1", "2.5", "false", "null", "3"]
    options = _native.RegisterOptions(metadata=ODD_BUT_JSON, lineage={"x": ODD_BUT_JSON})
    assert options.metadata == through_text and options.lineage == {"x": through_text}
    assert options.to_dict() == {
        "metadata": through_text, "metrics": {}, "tags": {}, "lineage": {"x": through_text}
    }


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    "metadata, error",
    [
        ({"x": object()}, TypeError),
        ({"x": {1, 2}}, TypeError),
        ({(1, 2): "tuple key"}, TypeError),
        ({"x": float("nan")}, ValueError),
        ({"x": [float("-inf")]}, ValueError),
        ({float("inf"): 1}, ValueError),
        # What serde_json refused when it read the text: a lone surrogate, an integer beyond
        # binary64, nesting as deep as its limit.
        ({"x": "a\ud800"}, skvault.FormatError),
        ({"x": 10**400}, skvault.FormatError),
        (_nested(128), skvault.FormatError),
    ],
)
def test_values_json_cannot_hold_are_refused(model, metadata, error):
    with pytest.raises(error):
        _native.dumps(model, metadata=metadata)


def test_deep_nesting_below_the_limits_is_kept(model):
    data = _native.dumps(model, metadata=_nested(100))
    assert skvault.inspect(data)["metadata"] == _nested(100)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"metrics": {"acc": "high"}}, skvault.InvalidNameError),
        ({"metrics": {"acc": True}}, skvault.InvalidNameError),
        ({"tags": {"team": 1}}, skvault.InvalidNameError),
        ({"metrics": {"acc": float("nan")}}, ValueError),
        ({"lineage": {"run": object()}}, TypeError),
        ({"metadata": _nested(127)}, skvault.InvalidNameError),
    ],
)
def test_register_options_refuse_what_the_json_options_refused(kwargs, error):
    with pytest.raises(error):
        _native.RegisterOptions(**kwargs)


def test_register_options_keep_what_they_are_given():
    given = {"metadata": {"a": 1}, "metrics": {"acc": 1}, "tags": {"t": "v"}, "lineage": {"run": "r"}}
    options = _native.RegisterOptions(**given)
    assert (options.metadata, options.metrics, options.tags, options.lineage) == (
        {"a": 1}, {"acc": 1.0}, {"t": "v"}, {"run": "r"}
    )
    assert options == _native.RegisterOptions(**{**given, "metrics": {"acc": 1.0}})
    assert options != _native.RegisterOptions(**{**given, "tags": {}})
    assert "acc" in repr(options)
