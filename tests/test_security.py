"""Hostile files: forged manifests with valid digests that name dangerous or unknown callables.

Every file here passes the header, digest and manifest checks (see conftest.forge), so the
check under test is the trust check (or the build step after it). Side effects are proven
absent with payloads that would create a marker file, an import hook module that creates a
marker when imported, a recorder around importlib.import_module (the loader's only way to
resolve a name) and an audit hook.
"""

from __future__ import annotations

import base64
import importlib
import json
import pickle
import subprocess
import sys
import textwrap
import uuid

import _pickle
import numpy as np
import pytest
from conftest import forge, split_skv
from hostile import run_limited

import skvault

FT = "sklearn.preprocessing._function_transformer.FunctionTransformer"

# ---------------------------------------------------------------- audit hook (process-wide, cheap)

_AUDIT: list[tuple[str, tuple]] | None = None
FORBIDDEN_EVENTS = {
    "pickle.find_class",
    "os.system",
    "subprocess.Popen",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "exec",
    "compile",
    "marshal.loads",
    "ctypes.dlopen",
    "ctypes.call_function",
    "builtins.input",
    "socket.connect",
    "urllib.Request",
}


def _hook(event, args):
    if _AUDIT is not None:
        _AUDIT.append((event, args))


sys.addaudithook(_hook)
# The first dump/load reads the installed package versions (importlib.metadata imports modules):
# do it now, so that the recorded events below come from the files under test only.
skvault.loads(skvault.dumps(1))


class Recorder:
    """Records audit events and importlib.import_module calls made inside the block.

    The loader looks up importlib.import_module on each load, so replacing it sees every
    name the loader resolves.
    """

    def __init__(self):
        self.imports: list[str] = []
        self.events: list[tuple[str, tuple]] = []
        self._real = None

    def __enter__(self):
        global _AUDIT
        # skvault resolves its public functions on first use (a module __getattr__ importing
        # skvault._api): done here, outside the block, so that what is recorded does not
        # depend on which test touched them first.
        for name in skvault.__all__:
            getattr(skvault, name)
        self._real = real = importlib.import_module

        def recording(name, package=None):
            self.imports.append(name)
            return real(name, package)

        importlib.import_module = recording
        _AUDIT = self.events
        return self

    def __exit__(self, *exc):
        global _AUDIT
        _AUDIT = None
        importlib.import_module = self._real
        return False

    def forbidden(self):
        return [e for e, _ in self.events if e in FORBIDDEN_EVENTS]


@pytest.fixture
def recorder():
    return Recorder


# ---------------------------------------------------------------- a helper module on sys.path

HELPER_SOURCE = """
import pathlib

pathlib.Path({imported!r}).write_text("imported")


def func(x):
    return x


def touch(path):
    pathlib.Path(path).write_text("called")
    return path


class Thing:
    def __init__(self, a):
        self.a = a

    def __eq__(self, other):
        return type(other) is type(self) and other.a == self.a
"""


@pytest.fixture
def helper(tmp_path, monkeypatch):
    """A fresh module `tests_helpers_module_<hex>` that writes a marker file when imported."""
    name = f"tests_helpers_module_{uuid.uuid4().hex[:12]}"
    imported = tmp_path / "imported.marker"
    folder = tmp_path / "helper_pkg"
    folder.mkdir()
    (folder / f"{name}.py").write_text(HELPER_SOURCE.format(imported=str(imported)))
    monkeypatch.syspath_prepend(str(folder))
    yield name, imported
    sys.modules.pop(name, None)


# ---------------------------------------------------------------- hostile payloads


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hostile_cases(marker: str):
    """(id, root, validation, expected untrusted names). Each payload would create `marker`."""
    sh = f"touch {marker}"
    py = f"__import__('os').system('touch {marker}')"
    return [
        ("os.system call", {"object": "os.system", "call": [sh]}, None, ["os.system"]),
        ("os.system global", {"global": "os.system"}, None, ["os.system"]),
        ("posix.system", {"object": "posix.system", "call": [sh]}, None, ["posix.system"]),
        ("builtins.eval call", {"object": "builtins.eval", "call": [py]}, None, ["builtins.eval"]),
        ("builtins.exec call", {"object": "builtins.exec", "call": [py]}, None, ["builtins.exec"]),
        (
            "subprocess.Popen",
            {"object": "subprocess.Popen", "call": [{"list": ["touch", marker]}]},
            None,
            ["subprocess.Popen"],
        ),
        (
            "dotted path through a module",
            {"object": "sklearn.base.os.system", "call": [sh]},
            None,
            ["sklearn.base.os.system"],
        ),
        ("getattr global", {"global": "builtins.getattr"}, None, ["builtins.getattr"]),
        (
            "getattr object class",
            {
                "object": "builtins.getattr",
                "call": [{"object": "builtins.__import__", "call": ["os"]}, "system"],
            },
            None,
            ["builtins.__import__", "builtins.getattr"],
        ),
        (
            "trusted class holding os.system",
            {"object": FT, "attrs": {"func": {"global": "os.system"}, "kw_args": {"dict": [["command", sh]]}}},
            None,
            ["os.system"],
        ),
        (
            "partial of os.system",
            {"object": "functools.partial", "call": [{"global": "os.system"}, sh]},
            None,
            ["os.system"],
        ),
        (
            "pickle inside",
            {"object": "pickle.loads", "call": [{"bytes": b64(b"cos\nsystem\n(S'" + sh.encode() + b"'\ntR.")}]},
            None,
            ["pickle.loads"],
        ),
        (
            "everything at once",
            {
                "list": [
                    {"object": "os.system", "call": [sh]},
                    {"global": "builtins.eval"},
                    {"object": "posix.system", "call": [sh]},
                    {"object": "subprocess.Popen", "call": [{"list": ["touch", marker]}]},
                    {"global": "sklearn.base.os.system"},
                    {"object": "builtins.getattr", "call": [{"global": "numpy.random"}, "bit_generator"]},
                    {"global": "numpy.log1p"},  # trusted: not listed
                    {"object": "evil_module.Payload", "new": [sh]},
                ]
            },
            None,
            [
                "builtins.eval",
                "builtins.getattr",
                "evil_module.Payload",
                "numpy.random",  # a module, not a trusted name
                "os.system",
                "posix.system",
                "sklearn.base.os.system",
                "subprocess.Popen",
            ],
        ),
        ("hidden in the validation tree", 1, {"dict": [["X", {"object": "os.system", "call": [sh]}]]}, ["os.system"]),
        (
            "split between root and validation",
            {"object": "builtins.eval", "call": [py]},
            {"object": "subprocess.Popen", "call": [{"list": ["touch", marker]}]},
            ["builtins.eval", "subprocess.Popen"],
        ),
    ]


CASE_IDS = [c[0] for c in hostile_cases("/x")]


@pytest.mark.parametrize("index", range(len(CASE_IDS)), ids=CASE_IDS)
def test_hostile_files_are_refused_before_anything_happens(tmp_path, recorder, index):
    marker = tmp_path / "pwned"
    _, root, validation, expected = hostile_cases(str(marker))[index]
    data = forge(root, validation=validation)
    path = tmp_path / "evil.skv"
    path.write_bytes(data)
    for kwargs in ({}, {"mmap": True}, {"verify": False}, {"validate": True}, {"trusted": ["json.dumps"]}):
        with recorder() as rec, pytest.raises(skvault.UntrustedTypesError) as info:
            skvault.load(path, **kwargs)
        assert info.value.names == expected
        assert rec.imports == [] and rec.forbidden() == []
        assert not marker.exists()
    with recorder() as rec, pytest.raises(skvault.UntrustedTypesError) as info:
        skvault.loads(data)
    assert info.value.names == expected
    assert rec.imports == [] and rec.forbidden() == []
    with recorder() as rec:
        assert skvault.get_untrusted_types(path) == expected
        assert skvault.get_untrusted_types(data) == expected
        assert skvault.inspect(path)["untrusted"] == expected
    assert rec.imports == [] and rec.forbidden() == []
    assert not marker.exists()
    for name in expected:
        assert name in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "os.system",
        "posix.system",
        "nt.system",
        "subprocess.Popen",
        "subprocess.run",
        "sklearn.base.os.system",
        "numpy.core.os.system",
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "builtins.open",
        "builtins.getattr",
        "builtins.setattr",
        "builtins.__import__",
        "importlib.import_module",
        "pickle.loads",
        "_pickle.loads",
        "marshal.loads",
        "shutil.rmtree",
        "socket.socket",
        "ctypes.CDLL",
        "io.open",
        "pathlib.Path",
        "runpy.run_path",
        "joblib.load",
        "operator.attrgetter",
        "functools.reduce",
        "numpy.load",
        "sys.modules",
    ],
)
def test_dangerous_names_cannot_be_trusted_even_on_request(tmp_path, name):
    marker = tmp_path / "pwned"
    data = forge({"object": name, "call": [f"touch {marker}"]})
    with pytest.raises(skvault.SkvaultError, match="refusing to trust") as info:
        skvault.loads(data, trusted=[name])
    assert not isinstance(info.value, skvault.UntrustedTypesError)
    assert name in str(info.value)
    with pytest.raises(skvault.SkvaultError, match="refusing to trust"):
        skvault.loads(skvault.dumps([1]), trusted=["json.dumps", name])
    with pytest.raises(skvault.SkvaultError, match="refusing to trust"):
        skvault.get_untrusted_types(data, trusted=[name])
    assert skvault.get_untrusted_types(data) == [name]
    assert name not in skvault.default_trusted()
    assert not marker.exists()


def test_no_default_trusted_name_is_dangerous():
    # Every default name can also be passed explicitly: none of them is refused as dangerous.
    names = skvault.default_trusted()
    assert len(names) > 100
    skvault.loads(skvault.dumps(1), trusted=names)
    assert "json.dumps" not in names  # used below as a user-trusted name


# ---------------------------------------------------------------- the audit and the loader agree


def _g(name):
    return {"global": name}


def placements(n):
    """Roots that hide the global or class `n` in every place a node can be."""
    return {
        "global": _g(n),
        "object class": {"object": n},
        "dict key": {"dict": [[{"tuple": [1, _g(n)]}, 1]]},
        "dict value": {"dict": [["k", _g(n)]]},
        "list": {"list": [1, _g(n)]},
        "tuple": {"tuple": [_g(n)]},
        "set": {"set": [_g(n)]},
        "frozenset": {"frozenset": [_g(n)]},
        "slice": {"slice": [None, _g(n), None]},
        "new args": {"object": "builtins.object", "new": [_g(n)]},
        "kwargs key": {"object": "builtins.object", "kwargs": [[{"object": n}, 1]]},
        "kwargs value": {"object": "builtins.object", "kwargs": [["k", _g(n)]]},
        "call args": {"object": "builtins.int", "call": [_g(n)]},
        "state": {"object": "builtins.object", "state": {"tuple": [None, {"dict": [["a", _g(n)]]}]}},
        "attrs": {"object": FT, "attrs": {"func": _g(n)}},
        "listitems": {"object": "builtins.list", "listitems": [_g(n)]},
        "dictitems key": {"object": "builtins.dict", "dictitems": [[_g(n), 1]]},
        "dictitems value": {"object": "builtins.dict", "dictitems": [["k", _g(n)]]},
        "basestate": {"object": "builtins.dict", "base": "dict", "basestate": {"dict": [["k", _g(n)]]}},
        "objarray": {"objarray": [1, 2, 3, _g(n)], "shape": [2, 2]},
        "random_state": {
            "random_state": {"dict": [["bit_generator", "MT19937"], ["state", {"dict": [["key", _g(n)]]}]]}
        },
        "generator": {"generator": {"bit_generator": "PCG64", "state": {"dict": [["s", {"list": [_g(n)]}]]}}},
        "bit_generator": {"bit_generator": "SFC64", "state": {"dict": [["s", _g(n)]]}},
        "shared node": {"list": [{"list": [_g(n)], "id": 7}, {"ref": 7}]},
        "object in attrs": {"object": FT, "attrs": {"inner": {"object": n, "attrs": {"x": 1}}}},
        "deep": _deep(_g(n), 40),
    }


def _deep(node, levels):
    for i in range(levels):
        node = {"list": [node]} if i % 2 else {"dict": [["k", node]]}
    return node


PLACES = list(placements("x.y"))


@pytest.mark.parametrize("place", PLACES)
def test_names_are_found_wherever_they_hide(tmp_path, place):
    root = placements("evil_pkg.Hidden")[place]
    data = forge(root)
    assert skvault.get_untrusted_types(data) == ["evil_pkg.Hidden"]
    with pytest.raises(skvault.UntrustedTypesError) as info:
        skvault.loads(data)
    assert info.value.names == ["evil_pkg.Hidden"]
    # dangerous and plain-untrusted names alike
    data = forge(placements("os.system")[place])
    assert skvault.get_untrusted_types(data, trusted=["evil_pkg.Hidden"]) == ["os.system"]
    with pytest.raises(skvault.UntrustedTypesError) as info:
        skvault.loads(data, trusted=["evil_pkg.Hidden"])
    assert info.value.names == ["os.system"]
    # in the validation tree too
    data = forge(None, validation=placements("evil_pkg.Hidden")[place])
    assert skvault.get_untrusted_types(data) == ["evil_pkg.Hidden"]
    with pytest.raises(skvault.UntrustedTypesError):
        skvault.loads(data)


def test_every_name_is_listed_once_and_sorted(tmp_path):
    items = []
    expected = set()
    for i, place in enumerate(PLACES):
        name = f"evil_{i:02d}.Z{place.replace(' ', '_')}"
        expected.add(name)
        root = placements(name)[place]
        if place == "shared node":  # one id per file
            root = {"list": [{"list": [_g(name)], "id": 1000 + i}, {"ref": 1000 + i}]}
        items.append(root)
    items += [_g("evil_00.Zglobal"), _g("os.system"), _g("os.system"), _g("numpy.float64")]
    expected.add("os.system")
    data = forge({"list": items}, validation={"list": [_g("evil_validation.V"), _g("builtins.eval")]})
    expected |= {"evil_validation.V", "builtins.eval"}
    listed = skvault.get_untrusted_types(data)
    assert listed == sorted(expected)
    with pytest.raises(skvault.UntrustedTypesError) as info:
        skvault.loads(data)
    assert info.value.names == listed
    path = tmp_path / "all.skv"
    path.write_bytes(data)
    assert skvault.get_untrusted_types(path) == listed
    assert skvault.inspect(path)["untrusted"] == listed
    # trusting some of them removes exactly those
    some = [n for n in listed if n.startswith("evil_1")]
    assert some
    rest = [n for n in listed if n not in some]
    assert skvault.get_untrusted_types(path, trusted=some) == rest
    with pytest.raises(skvault.UntrustedTypesError) as info:
        skvault.load(path, trusted=some)
    assert info.value.names == rest


def test_real_files_need_no_trust_and_agree(tmp_path):
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).random((30, 3))
    model = LogisticRegression().fit(X, X[:, 0] > 0.5)
    data = skvault.dumps({"m": model, "f": np.log1p, "t": float})
    assert skvault.get_untrusted_types(data) == []
    skvault.loads(data)


# ---------------------------------------------------------------- user-trusted names


def test_user_trusted_function_loads(tmp_path, recorder):
    data = forge({"dict": [["f", _g("json.dumps")], ["g", _g("json.decoder.JSONDecoder")]]})
    assert skvault.get_untrusted_types(data) == ["json.decoder.JSONDecoder", "json.dumps"]
    with pytest.raises(skvault.UntrustedTypesError) as info:
        skvault.loads(data, trusted=["json.dumps"])
    assert info.value.names == ["json.decoder.JSONDecoder"]
    with recorder() as rec:
        back = skvault.loads(data, trusted=["json.dumps", "json.decoder.JSONDecoder"])
    assert back["f"] is json.dumps and back["g"] is json.decoder.JSONDecoder
    # a name is resolved by importing the part before the last dot and reading one attribute
    assert sorted(rec.imports) == ["json", "json.decoder"]
    assert skvault.get_untrusted_types(data, trusted=["json.dumps", "json.decoder.JSONDecoder"]) == []


def test_user_trusted_class_from_a_helper_module(helper):
    name, imported = helper
    module = importlib.import_module(name)
    imported.unlink()
    obj = {"thing": module.Thing([1, 2]), "func": module.func}
    data = skvault.dumps(obj)
    names = sorted([f"{name}.Thing", f"{name}.func"])
    assert skvault.get_untrusted_types(data) == names
    with pytest.raises(skvault.UntrustedTypesError) as info:
        skvault.loads(data)
    assert info.value.names == names
    back = skvault.loads(data, trusted=names)
    assert back == obj


def test_untrusted_names_are_not_even_imported(helper, tmp_path, recorder):
    name, imported = helper
    data = forge({"list": [_g(f"{name}.func"), _g("os.system")]})
    with recorder() as rec, pytest.raises(skvault.UntrustedTypesError) as info:
        skvault.loads(data, trusted=[f"{name}.func"])
    assert info.value.names == ["os.system"]
    assert rec.imports == []
    assert name not in sys.modules and not imported.exists()
    # without the untrusted name the same file imports the module (the marker works)
    data = forge({"list": [_g(f"{name}.func")]})
    with pytest.raises(skvault.UntrustedTypesError):
        skvault.loads(data)
    assert name not in sys.modules and not imported.exists()
    back = skvault.loads(data, trusted=[f"{name}.func"])
    assert imported.exists() and back[0] is sys.modules[name].func


def test_a_trusted_function_named_as_a_class_is_never_called(helper, tmp_path):
    name, _ = helper
    called = tmp_path / "called.marker"
    data = forge({"object": f"{name}.touch", "call": [str(called)]})
    with pytest.raises(skvault.SkvaultError, match="not a class"):
        skvault.loads(data, trusted=[f"{name}.touch"])
    assert not called.exists()
    # referenced as a value it loads, and is still not called
    back = skvault.loads(forge({"global": f"{name}.touch"}), trusted=[f"{name}.touch"])
    assert callable(back) and not called.exists()


@pytest.mark.parametrize(
    "root",
    [
        {"object": "numpy.log1p", "call": [1]},
        {"object": "numpy.log1p"},
        {"object": "numpy.log1p", "new": [1]},
        {"list": [1, {"object": "numpy.mean", "call": [{"list": [1, 2]}]}]},
        {"object": "json.dumps", "call": [{"list": [1]}]},
    ],
)
def test_trusted_names_that_are_not_classes_cannot_build_objects(root):
    data = forge(root)
    with pytest.raises(skvault.SkvaultError, match="not a class") as info:
        skvault.loads(data, trusted=["json.dumps"])
    assert not isinstance(info.value, skvault.UntrustedTypesError)


@pytest.mark.parametrize(
    "name",
    ["json.no_such_function", "skvault_missing_module_xyz.Thing", "json.JSONEncoder.encode", "numpy.no_such_ufunc_x"],
)
@pytest.mark.parametrize("as_class", [False, True], ids=["global", "object"])
def test_trusted_names_that_do_not_exist_are_load_errors(name, as_class):
    node = {"object": name} if as_class else _g(name)
    data = forge({"dict": [["deep", {"list": [node]}]]})
    assert skvault.get_untrusted_types(data, trusted=[name]) == []
    with pytest.raises(skvault.LoadError) as info:
        skvault.loads(data, trusted=[name])
    assert name in str(info.value)


def test_builder_never_resolves_a_name_through_attributes(recorder):
    # json.JSONEncoder.encode exists as an attribute path, but its module part is not a module.
    data = forge(_g("json.JSONEncoder.encode"))
    with recorder() as rec, pytest.raises(skvault.LoadError):
        skvault.loads(data, trusted=["json.JSONEncoder.encode"])
    assert rec.imports == ["json.JSONEncoder"]


# ---------------------------------------------------------------- memory safety of trusted constructors


SUBPROCESS_LOAD = textwrap.dedent(
    """
    import sys
    import skvault
    data = sys.stdin.buffer.read()
    try:
        obj = skvault.loads(data, trusted=sys.argv[1:])
    except skvault.SkvaultError as e:
        print("refused:", type(e).__name__, e)
        sys.exit(0)
    print("loaded", type(obj).__name__, flush=True)
    repr(obj)  # reads the items (a forged pointer crashes here)
    sys.exit(3)
    """
)


def _load_in_child(data: bytes, trusted=()) -> subprocess.CompletedProcess:
    """Loads `data` in a limited child process (a crash there must not take pytest down)."""
    return run_limited([sys.executable, "-c", SUBPROCESS_LOAD, *trusted], data)


FAKE_POINTERS = b"\x41" * 8
OBJECT_RECORD = {"object": "numpy.dtype", "call": [{"list": [{"tuple": ["a", "O"]}]}]}
ARRAY_CLASSES = ["numpy.ndarray", "numpy.void", "numpy.matrix", "numpy.recarray", "numpy.memmap", "numpy.dtype"]
OBJECT_FROM_BYTES = {
    "ndarray new": {"object": "numpy.ndarray", "new": [{"tuple": [1]}, {"dtype": "|O"}, {"bytes": b64(FAKE_POINTERS)}]},
    "ndarray call": {"object": "numpy.ndarray", "call": [{"tuple": [1]}, {"dtype": "|O"}, {"bytes": b64(FAKE_POINTERS)}]},
    "ndarray kwargs": {
        "object": "numpy.ndarray",
        "kwargs": [["shape", {"tuple": [1]}], ["dtype", {"dtype": "|O"}], ["buffer", {"bytes": b64(FAKE_POINTERS)}]],
    },
    "bytearray buffer": {
        "object": "numpy.ndarray",
        "new": [{"tuple": [1]}, {"dtype": "|O"}, {"bytearray": b64(FAKE_POINTERS)}],
    },
    "dtype built by call": {
        "object": "numpy.ndarray",
        "new": [{"tuple": [1]}, {"object": "numpy.dtype", "call": ["O"]}, {"bytes": b64(FAKE_POINTERS)}],
    },
    "void record": {"object": "numpy.void", "call": [{"bytes": b64(FAKE_POINTERS)}, OBJECT_RECORD]},
    "ndarray subclass": {"object": "numpy.matrix", "new": [{"tuple": [1, 1]}, {"dtype": "|O"}, {"bytes": b64(FAKE_POINTERS)}]},
    "recarray": {"object": "numpy.recarray", "new": [{"tuple": [1]}, OBJECT_RECORD, {"bytes": b64(FAKE_POINTERS)}]},
    "ndarray state": {
        "object": "numpy.ndarray",
        "new": [{"tuple": [0]}, {"dtype": "|u1"}],
        "state": {"tuple": [1, {"tuple": [1]}, {"dtype": "|O"}, False, {"bytes": b64(FAKE_POINTERS)}]},
    },
    "masked array state": {
        "object": "numpy.ma.MaskedArray",
        "state": {"tuple": [1, {"tuple": [1]}, OBJECT_RECORD, False, {"bytes": b64(FAKE_POINTERS)}, {"bytes": "AA=="}, None]},
    },
}


@pytest.mark.parametrize("trusted", [(), tuple(ARRAY_CLASSES)], ids=["default", "array classes trusted"])
@pytest.mark.parametrize("case", list(OBJECT_FROM_BYTES))
def test_object_arrays_cannot_be_made_from_raw_bytes(case, trusted):
    """File bytes must never become PyObject pointers: ndarray.__new__(ndarray, shape, 'O', buffer)
    and friends are refused, even when the user trusts the array classes."""
    result = _load_in_child(forge(OBJECT_FROM_BYTES[case]), trusted)
    assert result.returncode == 0 and result.stdout.startswith(b"refused"), (result.returncode, result.stdout)


@pytest.mark.parametrize("name", ["numpy.ndarray", "numpy.void", "numpy.matrix", "numpy.memmap"])
def test_array_classes_are_never_built_by_object_nodes(tmp_path, name):
    created = tmp_path / "memmap.bin"
    new = [{"tuple": [2]}, {"dtype": "|u1"}, {"bytes": b64(b"ab")}]
    if name == "numpy.memmap":  # would create a file
        new = [str(created), {"dtype": "|u1"}, "w+", 0, {"tuple": [4]}]
    data = forge({"object": name, "new": new})
    assert name not in skvault.default_trusted()
    with pytest.raises(skvault.UntrustedTypesError):
        skvault.loads(data)
    if name == "numpy.memmap":  # creating one creates or truncates a file: never trusted
        with pytest.raises(skvault.SkvaultError, match="refusing to trust"):
            skvault.loads(data, trusted=[name])
    else:
        with pytest.raises(skvault.FormatError, match="cannot be created by an object node"):
            skvault.loads(data, trusted=[name])
    assert not created.exists()


OBJECT_DTYPE = {"dtype": "|O"}


def test_masked_arrays_convert_their_data_and_never_reinterpret_it():
    root = {"object": "numpy.ma.MaskedArray", "call": [{"bytes": b64(FAKE_POINTERS)}, False, OBJECT_DTYPE]}
    result = _load_in_child(forge(root))
    assert result.returncode == 3 and result.stdout.startswith(b"loaded MaskedArray"), result
    back = skvault.loads(forge(root))
    assert back.dtype == object and back.data.item() == FAKE_POINTERS


@pytest.mark.parametrize(
    "root",
    [
        {"object": "numpy.ma.MaskedArray", "new": [{"bytes": b64(FAKE_POINTERS)}]},
        {"object": "numpy.ma.MaskedArray", "call": [{"bytes": b64(FAKE_POINTERS)}], "state": None},
    ],
    ids=["new", "call with state"],
)
def test_masked_arrays_are_only_built_by_calling_them(root):
    """MaskedArray.__setstate__ reinterprets raw bytes with the dtype it is given."""
    with pytest.raises(skvault.FormatError, match="MaskedArray"):
        skvault.loads(forge(root))


def test_dtypes_are_never_built_from_object_state():
    """dtype.__setstate__ sets fields, itemsize and flags: an object field with flags 0
    (hasobject false) would make numpy read raw bytes as object pointers."""
    forged = {"object": "numpy.dtype", "call": [{"list": [{"tuple": ["a", "O"]}]}], "state": {"tuple": [3, "|", None, {"tuple": ["a"]}, None, 8, 1, 0]}}
    root = {"object": "numpy.ma.MaskedArray", "call": [{"bytes": b64(FAKE_POINTERS)}, False, forged]}
    result = _load_in_child(forge(root))
    assert result.returncode == 0 and b"dtypes come only from dtype nodes" in result.stdout, result


def test_object_arrays_from_the_tree_are_fine():
    arr = np.array([1, "a", None, (2,)], dtype=object)
    back = skvault.loads(skvault.dumps(arr))
    assert back.dtype == object and back.tolist() == arr.tolist()


# ---------------------------------------------------------------- no pickle, ever


@pytest.fixture(scope="module")
def fitted_models():
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    models = {
        "forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y),
        "hgb": HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
        "knn": KNeighborsClassifier(algorithm="ball_tree").fit(X, y),
    }
    return models, X


def _no_pickle(*args, **kwargs):
    raise AssertionError("skvault used pickle")


@pytest.mark.parametrize("compress", [None, "zstd"])
def test_loading_never_uses_pickle(fitted_models, monkeypatch, recorder, tmp_path, compress):
    models, X = fitted_models
    data = skvault.dumps(models, compress=compress)
    path = tmp_path / "models.skv"
    path.write_bytes(data)
    for module in (pickle, _pickle):
        for attr in ("loads", "load", "Unpickler", "_loads", "_load", "_Unpickler"):
            if hasattr(module, attr):
                monkeypatch.setattr(module, attr, _no_pickle)
    monkeypatch.setattr("copyreg._reconstructor", _no_pickle)
    with recorder() as rec:
        loaded = [skvault.loads(data), skvault.load(path), skvault.load(path, mmap="c")]
    assert rec.forbidden() == []
    assert not any(e == "pickle.find_class" for e, _ in rec.events)
    for back in loaded:
        for key, model in models.items():
            assert type(back[key]) is type(model)
            np.testing.assert_array_equal(back[key].predict(X), model.predict(X))
            np.testing.assert_array_equal(back[key].predict_proba(X), model.predict_proba(X))


def test_the_manifest_holds_no_pickle_bytes(fitted_models):
    models, _ = fitted_models
    _, manifest, _ = split_skv(skvault.dumps(models))
    text = json.dumps(manifest)
    for needle in ("copyreg", "__reduce", "_reconstructor", "__newobj__", "pickle"):
        assert needle not in text
