"""Real files against docs/FORMAT.md and docs/manifest.schema.json.

The manifest is cut out of the file bytes with the header layout of FORMAT.md (not with
skvault's own reader), then validated with `jsonschema` against the published schema. The
layout of the rest of the file (padding, blob tiling, no trailing bytes) is checked the
same way, from the spec alone.
"""

from __future__ import annotations

import collections
import copy
import json
import struct
from pathlib import Path

import blake3
import jsonschema
import zstandard
import numpy as np
import pytest
import scipy.sparse as sp

import skvault

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "manifest.schema.json"
HEADER = struct.Struct("<8sHHIQ32s8s")
ALIGN = 64

NODE_KINDS = {
    "int", "float", "complex", "str_surrogatepass", "bytes", "bytearray", "const", "slice",
    "list", "tuple", "set", "frozenset", "dict", "array", "objarray", "scalar", "dtype",
    "global", "ref", "object", "random_state", "generator", "bit_generator",
}
OBJECT_KEYS = {"new", "kwargs", "call", "base", "basestate", "state", "attrs", "listitems", "dictitems"}


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def split_file(data: bytes) -> tuple[dict, dict, int]:
    """(header fields, manifest document, data section start), following FORMAT.md only."""
    assert len(data) >= HEADER.size
    magic, major, minor, flags, manifest_len, digest, reserved = HEADER.unpack_from(data)
    assert magic == b"SKVAULT\0"
    manifest_bytes = data[HEADER.size : HEADER.size + manifest_len]
    assert len(manifest_bytes) == manifest_len
    # Writers write the lowest version a file needs: 1.0; 1.1 with a compressed manifest (flag
    # 0x1, its decompressed length in bytes 56..64); 1.2 with packs (flag 0x2); 1.4 with the
    # columns filter (flag 0x8). Flag 0x4 (an embedded signature) is not written by dump.
    assert major == 1 and flags & 0xFFF4 == 0
    assert minor == (4 if flags & 0x8 else 2 if flags & 0x2 else 1 if flags & 0x1 else 0)
    if flags & 0x1 == 0:
        assert reserved == bytes(8)
        text = manifest_bytes
    else:
        raw_len = int.from_bytes(reserved, "little")
        text = zstandard.ZstdDecompressor().decompress(manifest_bytes, max_output_size=raw_len)
        assert len(text) == raw_len
    header = {"major": major, "minor": minor, "flags": flags, "manifest_len": manifest_len, "digest": digest}
    manifest = json.loads(text.decode("utf-8"))
    assert ("packs" in manifest) == bool(flags & 0x2), "packs exactly with flag PACKS"
    columns = any(b.get("filter") == "columns" for b in manifest["arrays"] + manifest.get("packs", []))
    assert columns == bool(flags & 0x8), "the columns filter exactly with flag COLUMNS"
    return header, manifest, _align(HEADER.size + manifest_len)


def blobs(manifest: dict) -> list[dict]:
    """The blobs in file order (FORMAT.md 2.4): arrays stored on their own, then packs."""
    return [e for e in manifest["arrays"] if "pack" not in e] + manifest.get("packs", [])


def check_layout(data: bytes) -> None:
    header, manifest, data_start = split_file(data)
    end_of_manifest = HEADER.size + header["manifest_len"]
    assert data[end_of_manifest:data_start] == bytes(data_start - end_of_manifest)
    for p, pack in enumerate(manifest.get("packs", [])):
        members = [e for e in manifest["arrays"] if e.get("pack") == p]
        assert members and sum(e["raw_length"] for e in members) == pack["raw_length"]
    expected = 0
    pos = data_start
    for entry in blobs(manifest):
        assert entry["offset"] == expected, "blobs are laid out in order at 64-byte boundaries"
        start = data_start + entry["offset"]
        assert data[pos:start] == bytes(start - pos), "padding between blobs is zero"
        pos = start + entry["length"]
        if entry["codec"] == "none":
            assert entry["length"] == entry["raw_length"]
        expected = _align(entry["offset"] + entry["length"])
    assert pos == len(data), "the file ends with the last blob (or the manifest padding)"


# ---------------------------------------------------------------- objects to dump


class NewArgs:
    """Reduces through copyreg.__newobj__ with arguments: a `new` list."""

    def __new__(cls, x=0):
        self = super().__new__(cls)
        self.x = x
        return self

    def __getnewargs__(self):
        return (self.x,)


class NewKwargs:
    """Reduces through copyreg.__newobj_ex__: `new` plus `kwargs`."""

    def __new__(cls, *, size=0):
        self = super().__new__(cls)
        self.size = size
        return self

    def __getnewargs_ex__(self):
        return (), {"size": self.size}


class Slotted:
    """State (None, {slot: value}): written as `state`, not `attrs`."""

    __slots__ = ("a", "b")

    def __init__(self):
        self.a = 1
        self.b = [2]


class Items(list):
    """A list subclass with an attribute: `listitems` plus `attrs`."""


def fitted_pipeline():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]).fit(X, y)


def fitted_forest():
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_iris(return_X_y=True)
    return RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y), X


def fitted_hgb():
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    return HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(X, y)


def every_kind() -> dict:
    cycle: list = []
    cycle.append(cycle)
    items = Items([1, 2])
    items.label = "two"
    dok = sp.dok_matrix((3, 3), dtype=np.float64)
    dok[0, 2] = 1.5
    shared = np.arange(4.0)
    return {
        "small int": -7,
        "u64 int": 2**64 - 1,
        "big int": 2**200,
        "negative big int": -(2**70),
        "floats": [0.1, -0.0, float("nan"), -float("nan"), float("inf"), float("-inf"), 1e300, 5e-324],
        "complex": complex(1.5, float("-inf")),
        "bytes": b"\x00\xffskv",
        "bytearray": bytearray(b"abc"),
        "ellipsis": Ellipsis,
        "slices": (slice(1, None, 2), slice(None)),
        "set": {3, 1, "b", None, 2.5, b"x"},
        "frozenset": frozenset({"x", "y"}),
        "tuple": (1, "two", None, True),
        "numpy scalars": [np.float32(1.5), np.int64(-3), np.bool_(True), np.complex128(1j)],
        "dtypes": [np.dtype("<f8"), np.dtype(object), np.dtype(">i2"),
                   np.dtype([("a", "<i4"), ("v", "<f8", (2, 3))], align=True)],
        "random_state": np.random.RandomState(0),
        "generator": np.random.default_rng(0),
        "object array": np.array([1, "x", None, [2]], dtype=object).reshape(2, 2),
        "structured array": np.zeros(4, dtype=[("left", "<i8"), ("threshold", "<f8"), ("flag", "|u1")]),
        "fortran array": np.asfortranarray(np.arange(6, dtype="<i4").reshape(2, 3)),
        "strings array": np.array(["ab", "c"]),
        "surrogate": "a\ud800b",
        "self-referencing list": cycle,
        "shared array": [shared, shared],
        "functions": [np.log1p, float, collections.OrderedDict],
        "ordered dict": collections.OrderedDict([("k", 1)]),
        "dok": dok,
        "new args": NewArgs(5),
        "new kwargs": NewKwargs(size=3),
        "slots": Slotted(),
        "list subclass": items,
        "non-str-key dict": {1: "one", (2, 3): "pair"},
    }


CASES = {
    "pipeline": lambda: skvault.dumps(fitted_pipeline()),
    "forest": lambda: skvault.dumps(fitted_forest()[0]),
    "forest-zstd-validation": lambda: skvault.dumps(
        fitted_forest()[0], compress="zstd", validation=fitted_forest()[1][:10]
    ),
    "forest-lz4": lambda: skvault.dumps(fitted_forest()[0], compress="lz4"),
    "hgb-zstd": lambda: skvault.dumps(fitted_hgb(), compress="zstd"),
    "every-kind": lambda: skvault.dumps(every_kind()),
    "every-kind-zstd": lambda: skvault.dumps(every_kind(), compress="zstd"),
    "empty-dict": lambda: skvault.dumps({}),
}


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return {name: make() for name, make in CASES.items()}


def _walk_nodes(node, out: list) -> None:
    """Collects every tagged node (a JSON object) of a tree, following each kind's children."""
    if not isinstance(node, dict):
        return
    out.append(node)
    children: list = []
    for kind in ("list", "tuple", "set", "frozenset", "objarray", "slice", "new", "call", "listitems"):
        children.extend(node.get(kind, []))
    for kind in ("dict", "kwargs", "dictitems"):
        for key, value in node.get(kind, []):
            children += [key, value]
    for kind in ("random_state", "generator", "basestate"):
        if kind in node:
            children.append(node[kind])
    if "state" in node:  # of an object or a bit generator
        children.append(node["state"])
    children.extend(node.get("attrs", {}).values())
    for child in children:
        _walk_nodes(child, out)


# ---------------------------------------------------------------- tests


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))


@pytest.mark.parametrize("case", sorted(CASES))
def test_real_manifests_match_the_schema(validator, files, case):
    _, manifest, _ = split_file(files[case])
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


@pytest.mark.parametrize("case", sorted(CASES))
def test_real_files_follow_the_layout(files, case):
    check_layout(files[case])


def test_every_node_kind_and_object_key_is_exercised(files):
    _, manifest, _ = split_file(files["every-kind"])
    nodes: list = []
    _walk_nodes(manifest["root"], nodes)
    kinds = {k for node in nodes for k in node if k in NODE_KINDS}
    object_keys = {k for node in nodes if "object" in node for k in node}
    assert kinds == NODE_KINDS
    assert OBJECT_KEYS <= object_keys
    assert any("id" in node for node in nodes)


def test_compressed_forest_splits_records_into_columns(files):
    # This small forest's node arrays share a pack under 64 KiB: column transforms (1.4) do not
    # pay for their manifest JSON there, so the writer keeps the fields filter.
    _, manifest, _ = split_file(files["forest-zstd-validation"])
    assert any(e.get("filter") == "fields" and e["codec"] == "zstd" for e in blobs(manifest))
    assert "validation" in manifest
    # The HistGradientBoosting model's node pack is larger: its integer columns are transformed.
    _, hgb, _ = split_file(files["hgb-zstd"])
    assert any(e.get("filter") == "columns" and e["codec"] == "zstd" for e in blobs(hgb))
    _, manifest, _ = split_file(files["forest-lz4"])
    assert any(e["codec"] == "lz4" for e in blobs(manifest))


def _unfilter_fields(columns: bytes, dtype: dict) -> bytes:
    """FORMAT.md 3.4, inverted: segments are the fields and the gaps between them."""
    itemsize = dtype["itemsize"]
    cuts = sorted({0, itemsize} | {off for _, _, off in dtype["fields"]}
                  | {off + np.dtype(d).itemsize for _, d, off in dtype["fields"]})
    n = len(columns) // itemsize
    out = np.empty((n, itemsize), np.uint8)
    at = 0
    for lo, hi in zip(cuts, cuts[1:]):
        out[:, lo:hi] = np.frombuffer(columns, np.uint8, (hi - lo) * n, at).reshape(n, hi - lo)
        at += (hi - lo) * n
    return out.tobytes()


def _unfilter_columns(filtered: bytes, dtype: dict, transforms: list, members: list[int]) -> bytes:
    """FORMAT.md 3.6, inverted: the fields segments, with each transformed integer column
    stored in `width` bytes, widened (sign or zero extension) and delta-decoded against the
    row index, which restarts with each member (of `members` elements)."""
    itemsize = dtype["itemsize"]
    n = sum(members)
    cuts = sorted({0, itemsize} | {off for _, _, off in dtype["fields"]}
                  | {off + np.dtype(d).itemsize for _, d, off in dtype["fields"]})
    by_offset = {}
    for t in transforms:
        (_, d, off), = [f for f in dtype["fields"] if f[0] == t["field"]]
        by_offset[off] = (np.dtype(d), t.get("delta", False), t.get("width", np.dtype(d).itemsize))
    rows = np.concatenate([np.arange(m, dtype=np.uint64) for m in members]) if members else np.zeros(0, np.uint64)
    out = np.empty((n, itemsize), np.uint8)
    at = 0
    for lo, hi in zip(cuts, cuts[1:]):
        if lo not in by_offset:
            out[:, lo:hi] = np.frombuffer(filtered, np.uint8, (hi - lo) * n, at).reshape(n, hi - lo)
            at += (hi - lo) * n
            continue
        field, delta, width = by_offset[lo]
        kind = "i" if field.kind == "i" else "u"
        stored = np.frombuffer(filtered, np.dtype(f"<{kind}{width}"), n, at).astype(f"<{kind}8")
        at += width * n
        values = stored.view(np.uint64)
        if delta:
            minus_one = np.uint64(2 ** (8 * field.itemsize) - 1)
            mask = minus_one if field.itemsize < 8 else np.uint64(2**64 - 1)
            decoded = (values + rows) & mask
            assert not ((values != 0) & (decoded == mask)).any(), "a non-canonical delta value"
            values = np.where(values == 0, mask, decoded)
        column = values.astype(np.uint64).view(np.uint8).reshape(n, 8)[:, : field.itemsize]
        out[:, lo:hi] = column
    assert at == len(filtered), "the filtered length is N x the stored widths"
    return out.tobytes()


@pytest.mark.parametrize("case", ["forest-zstd-validation", "hgb-zstd"])
def test_pack_members_are_consecutive_slices_of_the_pack(files, case):
    """Decodes each pack with the zstandard module, following FORMAT.md 3.5 alone, and checks
    every member's digest over its own slice."""
    data = files[case]
    _, manifest, data_start = split_file(data)
    assert manifest.get("packs"), "the writer packs small arrays of one dtype"
    codings = {(p["codec"], p.get("filter", "none")) for p in manifest["packs"]}
    assert {("none", "none"), ("zstd", "none")} <= codings
    assert codings & {("zstd", "fields"), ("zstd", "columns")}
    for p, pack in enumerate(manifest["packs"]):
        stored = data[data_start + pack["offset"] : data_start + pack["offset"] + pack["length"]]
        members = [e for e in manifest["arrays"] if e.get("pack") == p]
        if pack["codec"] == "none":
            raw = stored
        else:
            assert pack["codec"] == "zstd"
            # Large packs have a frame per column: read across frames.
            reader = zstandard.ZstdDecompressor().stream_reader(stored, read_across_frames=True)
            raw = reader.read(pack["raw_length"] + 1)
        if pack.get("filter") == "columns":
            assert all(e["dtype"] == members[0]["dtype"] for e in members)
            dtype = members[0]["dtype"]
            counts = [e["raw_length"] // dtype["itemsize"] for e in members]
            raw = _unfilter_columns(raw, dtype, pack["columns"], counts)
        if pack.get("filter") == "fields":
            assert all(e["dtype"] == members[0]["dtype"] for e in members)
            raw = _unfilter_fields(raw, members[0]["dtype"])
        assert len(raw) == pack["raw_length"]
        at = 0
        for e in members:
            assert blake3.blake3(raw[at : at + e["raw_length"]]).hexdigest() == e["digest"]
            at += e["raw_length"]


def test_manifest_digest_is_blake3_of_the_manifest_bytes(files):
    for data in files.values():
        header, _, _ = split_file(data)
        manifest_bytes = data[HEADER.size : HEADER.size + header["manifest_len"]]
        assert blake3.blake3(manifest_bytes).digest() == header["digest"]


def test_array_digests_are_blake3_of_the_raw_bytes(files):
    data = files["every-kind"]
    _, manifest, data_start = split_file(data)
    for entry in manifest["arrays"]:
        assert entry["codec"] == "none"
        start = data_start + entry["offset"]
        raw = data[start : start + entry["length"]]
        assert blake3.blake3(raw).hexdigest() == entry["digest"]


def test_sets_of_plain_values_are_sorted_by_their_json_text(files):
    _, manifest, _ = split_file(files["every-kind"])
    items = dict(manifest["root"]["dict"])["set"]["set"]
    texts = [json.dumps(x, separators=(",", ":"), ensure_ascii=False).encode() for x in items]
    assert texts == sorted(texts)


def test_same_object_same_bytes(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    model, _ = fitted_forest()
    assert skvault.dumps(model, compress="zstd") == skvault.dumps(model, compress="zstd")


# ---------------------------------------------------------------- the schema and the reader agree


def _minimal(root, arrays=()):
    return {"writer": "test", "metadata": {}, "arrays": list(arrays), "root": root}


def _entry(**changes):
    entry = {
        "dtype": "<f8", "shape": [2], "order": "C", "offset": 0, "length": 16,
        "codec": "none", "raw_length": 16, "digest": blake3.blake3(bytes(16)).hexdigest(),
    }
    entry.update(changes)
    return entry


def _file(manifest: dict | bytes, blobs: bytes = b"") -> bytes:
    """A file around `manifest` (a document or its JSON text), laid out as FORMAT.md section 2 says."""
    if isinstance(manifest, bytes):
        text = manifest
    else:
        text = json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()
    header = HEADER.pack(b"SKVAULT\0", 1, 0, 0, len(text), blake3.blake3(text).digest(), bytes(8))
    body = header + text
    return body + bytes(_align(len(body)) - len(body)) + blobs


def reader_accepts(manifest: dict | bytes, blobs: bytes = b"") -> bool:
    """Whether skvault's reader accepts the file (header, manifest, layout: no building)."""
    try:
        skvault.inspect(_file(manifest, blobs))
    except skvault.FormatError:
        return False
    return True


# Invalid by the spec and the schema; each needs a check beyond the generic node grammar.
STRICT_READER_CASES = [
    ({"bit_generator": "PCG64"}, "bit_generator without state"),
    ({"float": "nan:7FF8000000000001"}, "uppercase NaN bits"),
    ({"int": "-0"}, "-0"),
    ({"dtype": "<f08"}, "leading zeros in dtype sizes"),
    ({"generator": {"list": []}}, "generator child not checked"),
    ({"random_state": 5}, "random_state child not checked"),
    ({"list": [{"int": "5", "id": 1}, {"ref": 1}]}, "an id on a value that cannot carry one"),
]


VALID_ROOTS = [
    None,
    18446744073709551615,
    -9223372036854775808,
    {"int": "5"},
    {"float": 1},
    {"float": -0.0},
    {"float": "nan:fff8000000000000"},
    {"complex": ["inf", 2.5]},
    {"str_surrogatepass": "Ye2ggGI="},
    {"bytes": ""},
    {"list": [{"list": [], "id": 1}, {"ref": 1}]},
    {"list": [{"ref": 0}], "id": 0},
    {"object": "a.B"},
    {"object": "a.B", "call": []},
    {
        "object": "a.B", "new": [1], "kwargs": [["k", 2]], "attrs": {"x": None},
        "listitems": [1], "dictitems": [[1, 2]],
    },
    {
        "object": "a.B", "base": "dict", "basestate": {"dict": []},
        "state": {"tuple": [None, {"dict": []}]},
    },
    {"dtype": "|O"},
    {"dtype": ">U1"},
    {"dtype": {"fields": [["a", "<i4", 0], ["b", "<i2", 2]], "itemsize": 4}},
    {"dtype": {
        "fields": [["v", {"subarray": {"fields": [["x", "|u1", 0]], "itemsize": 1}, "shape": [0]}, 0]],
        "itemsize": 0,
        "aligned": True,
    }},
    {"scalar": {"fields": [["a", "<i4", 0]], "itemsize": 4}, "data": "AQAAAA=="},
    {"objarray": [5], "shape": []},
    {"list": [{"bit_generator": "SFC64", "state": {"dict": []}, "id": 0}, {"generator": {"ref": 0}}]},
    {"random_state": {"dict": [["bit_generator", "MT19937"]]}},
    {"global": "a." + "b" * 510},
]

INVALID_ROOTS = [
    {"list": [], "extra": 1},  # unknown key inside a node
    {"object": "a.B", "new": [], "colour": "red"},
    {"lambda": "x"},  # unknown kind
    {"id": 3},  # an id alone is not a node
    {"list": [], "tuple": []},  # two kinds
    {"list": [{"list": [], "id": 1}, {"ref": 1, "id": 2}]},  # refs carry no id
    {"list": [], "id": -1},
    [1, 2],  # bare JSON list
    1.5,  # bare float
    18446744073709551616,
    -9223372036854775809,
    {"global": "os"},  # no module part
    {"global": "a..b"},
    {"global": "a.b c"},
    {"global": "a." + "b" * 511},
    {"int": "007"},
    {"int": "+1"},
    {"int": "1" * 4301},
    {"float": "nan:7ff0000000000000"},  # that is +inf, not a NaN
    {"float": "NaN"},
    {"float": True},
    {"complex": [1.0]},
    {"bytes": "YQ"},  # missing padding
    {"bytes": "YR=="},  # non-zero unused bits
    {"bytes": "-_8="},  # URL-safe alphabet
    {"object": "a.B", "new": [], "call": []},
    {"object": "a.B", "kwargs": [], "base": "dict", "basestate": None},
    {"object": "a.B", "state": {}, "attrs": {}},
    {"object": "a.B", "attrs": []},
    {"object": "a.B", "base": "tuple", "basestate": []},
    {"object": "a.B", "base": "dict"},
    {"object": "a.B", "basestate": {"dict": []}},
    {"object": "a.B", "kwargs": [[1]]},
    {"bit_generator": "Evil", "state": {"dict": []}},
    {"dtype": "|O8"},
    {"dtype": {"fields": [["a", "|O", 0]], "itemsize": 8}},
    {"scalar": "|O", "data": ""},
    {"scalar": "<f8"},
    {"dtype": "<M8"},
    {"dtype": "<f16"},
    {"dtype": "<i1"},
    {"dtype": "|f8"},
    {"dtype": "|U1"},
    {"dtype": {"subarray": "<f8", "shape": [2]}},
    {"dtype": {"fields": [], "itemsize": 0}},
    {"dtype": {"fields": [["", "<i4", 0]], "itemsize": 4}},
    {"dtype": {"fields": [["a", "<i4", 0]], "itemsize": 4, "names": ["a"]}},
    {"dtype": {  # a sub-array of a sub-array
        "fields": [["a", {"subarray": {"subarray": "<i4", "shape": [2]}, "shape": [2]}, 0]],
        "itemsize": 16,
    }},
    {"objarray": [1]},
    {"objarray": [], "shape": [0] * 65},
    {"slice": [1, 2]},
    {"const": "None"},
]

# Checks that JSON Schema cannot express (FORMAT.md section 9): only the reader makes them.
READER_ONLY_INVALID_ROOTS = [
    {"list": [{"ref": 7}]},  # ref before its id
    {"list": [{"list": [], "id": 1}, {"list": [], "id": 1}]},  # id declared twice
    {"objarray": [1, 2], "shape": [3]},
    {"scalar": "<f8", "data": "AAAA"},
    {"dtype": {"fields": [["a", "<i8", 12]], "itemsize": 16}},
    {"dtype": {"fields": [["a", "<i8", 0], ["a", "<i8", 8]], "itemsize": 16}},
    {"dtype": "|V2147483649"},  # numeric bounds of dtype sizes
    {"array": 0},  # no array table entry 0
    {"float": 1e400},  # beyond binary64 (Python writes Infinity, which is not JSON either)
]


@pytest.mark.parametrize("root", VALID_ROOTS)
def test_schema_and_reader_accept_valid_nodes(validator, root):
    assert validator.is_valid(_minimal(root))
    assert reader_accepts(_minimal(root))


@pytest.mark.parametrize("root", INVALID_ROOTS + [root for root, _ in STRICT_READER_CASES])
def test_schema_rejects_bad_nodes(validator, root):
    assert not validator.is_valid(_minimal(root))


@pytest.mark.parametrize(
    "root", INVALID_ROOTS + [root for root, _ in STRICT_READER_CASES]
)
def test_reader_rejects_bad_nodes(root):
    assert not reader_accepts(_minimal(root))


@pytest.mark.parametrize("root", READER_ONLY_INVALID_ROOTS)
def test_reader_makes_the_checks_the_schema_cannot(root):
    assert not reader_accepts(_minimal(root))


def test_unknown_top_level_keys_are_allowed(validator):
    manifest = {**_minimal(1), "future_section": {"x": 1}}
    assert validator.is_valid(manifest)
    assert reader_accepts(manifest)


def test_minimal_array_file_is_valid(validator):
    manifest = _minimal({"array": 0}, [_entry()])
    assert validator.is_valid(manifest)
    assert reader_accepts(manifest, bytes(16))


@pytest.mark.parametrize(
    "changes",
    [
        {"codec": "gzip"},
        {"codec": "none", "filter": "fields"},
        {"filter": "bitshuffle", "codec": "zstd"},
        {"digest": "A" * 64},
        {"digest": "0" * 63},
        {"order": "K"},
        {"offset": -1},
        {"dtype": "|O"},
        {"dtype": {"subarray": "<f8", "shape": [2]}},
        {"level": 3},
        {"shape": [1] * 65},
    ],
)
def test_schema_and_reader_reject_bad_array_entries(validator, changes):
    manifest = _minimal({"array": 0}, [_entry(**changes)])
    assert not validator.is_valid(manifest), "schema"
    assert not reader_accepts(manifest, bytes(16)), "reader"


@pytest.mark.parametrize(
    "changes",
    [
        {"raw_length": 15},  # product(shape) * itemsize
        {"length": 15},  # codec none: length == raw_length
        {"offset": 64},  # blobs are packed from 0
        {"codec": "zstd", "length": 1, "shape": [8192], "raw_length": 65536},  # beyond zstd's bound
        {"shape": [2.0]},  # JSON Schema's "integer" admits 2.0; the format does not
    ],
)
def test_reader_checks_array_entries_beyond_the_schema(validator, changes):
    manifest = _minimal({"array": 0}, [_entry(**changes)])
    assert validator.is_valid(manifest)
    assert not reader_accepts(manifest, bytes(80))


def test_schema_rejects_a_real_manifest_once_tampered(validator, files):
    _, manifest, _ = split_file(files["pipeline"])
    bad_node = copy.deepcopy(manifest)
    bad_node["root"]["unexpected"] = True
    assert not validator.is_valid(bad_node)
    bad_entry = copy.deepcopy(manifest)
    bad_entry["arrays"][0]["codec"] = "brotli"
    assert not validator.is_valid(bad_entry)
    no_root = copy.deepcopy(manifest)
    del no_root["root"]
    assert not validator.is_valid(no_root)


# ---------------------------------------------------------------- FORMAT.md section 15, executable



def _zstd_raw_frame(content: bytes) -> bytes:
    """One zstd frame (RFC 8878) holding `content` in a single raw block: single segment, 1-byte size."""
    assert len(content) < 256
    block_header = (1 | (len(content) << 3)).to_bytes(3, "little")  # last block, raw
    return b"\x28\xb5\x2f\xfd" + bytes([0x20, len(content)]) + block_header + content


def _zstd_file(stored: bytes, raw: bytes) -> bytes:
    entry = _entry(
        dtype="|u1", shape=[len(raw)], codec="zstd", length=len(stored), raw_length=len(raw),
        digest=blake3.blake3(raw).hexdigest(),
    )
    return _file(_minimal({"array": 0}, [entry]), stored)


def test_hand_made_zstd_frame_loads():
    raw = bytes(range(16))
    assert skvault.loads(_zstd_file(_zstd_raw_frame(raw), raw)).tobytes() == raw


def test_reader_refuses_zstd_skippable_frames():
    raw = bytes(range(16))
    skippable = b"\x50\x2a\x4d\x18" + (8).to_bytes(4, "little") + b"HIDDEN!!"
    with pytest.raises(skvault.FormatError):
        skvault.loads(_zstd_file(skippable + _zstd_raw_frame(raw), raw))


def test_items_may_refer_to_an_object_first_seen_in_the_state():
    shared = [1]
    items = Items([shared])
    items.extra = shared
    loaded = skvault.loads(skvault.dumps(items), trusted=[f"{__name__}.Items"])
    assert loaded[0] is loaded.extra


def test_tuple_cycles_are_refused_at_dump_or_loaded():
    t = ([],)
    t[0].append(t)
    try:
        data = skvault.dumps(t)
    except skvault.UnsupportedObjectError:
        return
    loaded = skvault.loads(data)
    assert loaded[0][0] is loaded


def test_writer_never_writes_a_name_the_reader_refuses():
    cls = type("Café", (), {"__module__": __name__, "__qualname__": "Café"})
    globals()["Café"] = cls
    try:
        data = skvault.dumps(cls())
    except skvault.UnsupportedObjectError:
        return
    finally:
        del globals()["Café"]
    skvault.inspect(data)


@pytest.mark.parametrize(
    "text",
    [
        b'{"writer":"t","arrays":[],"root":{"list":[1]},"root":{"list":[2]}}',
        b'{"writer":"t","arrays":[],"root":{"int":"1","int":"2"}}',
    ],
)
def test_reader_refuses_duplicate_member_names(text):
    assert not reader_accepts(text)
