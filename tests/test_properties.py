"""Property tests: anything built from the supported types loads back exactly, and bytes are stable.

"Exactly" means: the same types all the way down (``type(x) is type(y)``), floats with the same
bits (NaN payloads and -0.0 included), arrays with the same dtype, shape, bytes and memory order,
and the same sharing: an object that appears twice loads as one object, two distinct mutable
objects stay distinct.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import skvault

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def fixed_clock():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", "0")
        yield


# ---------------------------------------------------------------- exact comparison

MUTABLE = (list, dict, set, bytearray, np.ndarray)


def float_bits(x: float) -> bytes:
    return struct.pack("<d", x)


def canon(x):
    """A text that identifies a hashable value by type and exact bits (to compare sets)."""
    t = type(x).__name__
    if isinstance(x, float):
        return f"{t}:{float_bits(x).hex()}"
    if isinstance(x, complex):
        return f"{t}:{float_bits(x.real).hex()}:{float_bits(x.imag).hex()}"
    if isinstance(x, str):
        return f"{t}:{x.encode('utf-8', 'surrogatepass').hex()}"
    if isinstance(x, tuple):
        return f"{t}:({','.join(canon(i) for i in x)})"
    if isinstance(x, frozenset):
        return f"{t}:{{{','.join(sorted(canon(i) for i in x))}}}"
    if isinstance(x, np.generic):
        return f"{t}:{x.dtype.str}:{x.tobytes().hex()}"
    return f"{t}:{x!r}"


class Same:
    """Deep, type-exact, bit-exact comparison that also checks that sharing is mirrored."""

    def __init__(self):
        self.forward: dict[int, object] = {}
        self.backward: dict[int, object] = {}
        self.keep: list = []

    def __call__(self, x, y, path="root"):
        assert type(x) is type(y), f"{path}: {type(x).__name__} became {type(y).__name__}"
        shared = isinstance(x, MUTABLE) or (isinstance(x, (tuple, frozenset)) and len(x) > 0)
        if shared:
            if id(x) in self.forward:
                assert self.forward[id(x)] is y, f"{path}: an object seen twice loaded as two objects"
                return
            if isinstance(x, MUTABLE):
                assert id(y) not in self.backward, f"{path}: two distinct objects loaded as one"
                self.backward[id(y)] = x
            self.forward[id(x)] = y
            self.keep += [x, y]
        if isinstance(x, float):
            assert float_bits(x) == float_bits(y), f"{path}: {x!r} != {y!r}"
        elif isinstance(x, complex):
            assert canon(x) == canon(y), f"{path}: {x!r} != {y!r}"
        elif isinstance(x, (list, tuple)):
            assert len(x) == len(y), path
            for i, (a, b) in enumerate(zip(x, y)):
                self(a, b, f"{path}[{i}]")
        elif isinstance(x, dict):
            assert len(x) == len(y), path
            for i, ((ka, va), (kb, vb)) in enumerate(zip(x.items(), y.items())):
                self(ka, kb, f"{path}.key{i}")
                self(va, vb, f"{path}[{ka!r}]")
        elif isinstance(x, (set, frozenset)):
            assert sorted(map(canon, x)) == sorted(map(canon, y)), path
        elif isinstance(x, np.ndarray):
            self.array(x, y, path)
        elif isinstance(x, np.generic):
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), f"{path}: {x!r} != {y!r}"
        elif isinstance(x, np.dtype):
            assert x == y and x.isalignedstruct == y.isalignedstruct, path
        else:
            assert x == y, f"{path}: {x!r} != {y!r}"

    def array(self, x, y, path):
        assert x.dtype == y.dtype, f"{path}: dtype {x.dtype} became {y.dtype}"
        assert x.dtype.isalignedstruct == y.dtype.isalignedstruct, path
        assert x.shape == y.shape, f"{path}: shape {x.shape} became {y.shape}"
        if x.flags.c_contiguous:
            assert y.flags.c_contiguous, f"{path}: C order lost"
        elif x.flags.f_contiguous:
            assert y.flags.f_contiguous, f"{path}: Fortran order lost"
        else:
            assert y.flags.c_contiguous, f"{path}: non-contiguous arrays are stored in C order"
        if x.dtype.hasobject:
            for i, (a, b) in enumerate(zip(x.ravel(order="C"), y.ravel(order="C"))):
                self(a, b, f"{path}.flat[{i}]")
        elif x.flags.c_contiguous or x.flags.f_contiguous:
            # contiguous arrays are stored as their exact memory, padding of records included
            assert x.tobytes(order="A") == y.tobytes(order="A"), f"{path}: different bytes"
        else:
            # numpy copies records field by field: padding bytes of a copy are undefined
            assert field_bytes(x) == field_bytes(y), f"{path}: different bytes"


def field_bytes(a: np.ndarray) -> bytes:
    """The bytes of every field of every element, in C order, without the padding between fields."""
    if a.dtype.names is None:
        return np.ascontiguousarray(a).tobytes()
    return b"".join(field_bytes(a[name]) for name in a.dtype.names)


def assert_same(x, y):
    Same()(x, y)


# ---------------------------------------------------------------- strategies


def from_bits(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


SPECIAL_FLOATS = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), -float("nan"), 5e-324, 1.7976931348623157e308]
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(0, 2**64 - 1).map(from_bits),  # every bit pattern, NaN payloads included
    st.sampled_from(SPECIAL_FLOATS),
)
EDGE_INTS = [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, -(2**64), 10**4300 - 1, -(10**4300 - 1)]
ints = st.one_of(st.integers(), st.integers(-(2**70), 2**70), st.sampled_from(EDGE_INTS))
complexes = st.builds(complex, floats, floats)
texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)  # lone surrogates too
binaries = st.binary(max_size=16)

SCALAR_TYPES = [
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64, np.complex64, np.complex128,
]  # fmt: skip


@st.composite
def number_scalars(draw):
    t = draw(st.sampled_from(SCALAR_TYPES))
    dt = np.dtype(t)
    if t is np.bool_:
        return np.bool_(draw(st.booleans()))
    raw = draw(st.binary(min_size=dt.itemsize, max_size=dt.itemsize))
    return np.frombuffer(raw, dtype=dt)[0]


@st.composite
def numpy_scalars(draw):
    kind = draw(st.sampled_from(["number", "str", "bytes", "void", "record"]))
    if kind == "number":
        return draw(number_scalars())
    if kind == "str":  # np.str_("") cannot be stored: see test_empty_numpy_strings_round_trip
        return np.str_(draw(st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=6).filter(lambda s: not s.endswith("\0"))))
    if kind == "bytes":
        return np.bytes_(draw(st.binary(min_size=1, max_size=6).filter(lambda b: not b.endswith(b"\0"))))
    if kind == "void":
        return np.void(draw(st.binary(min_size=1, max_size=6)))
    dt = np.dtype([("a", "<i4"), ("b", ">f8"), ("c", "S3")])
    return np.frombuffer(draw(st.binary(min_size=dt.itemsize, max_size=dt.itemsize)), dtype=dt)[0]


ARRAY_DTYPES = [
    "|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8", "<c8", "<c16",
    ">i2", ">i4", ">u8", ">f4", ">f8", ">c16", "|S1", "|S5", "<U1", "<U3", ">U2", "|V3",
    [("a", "<i4"), ("b", "<f8"), ("c", "S3")],
    np.dtype([("x", "u1"), ("y", "<i8")], align=True),
    [("m", "<f4", (2, 3)), ("n", [("p", "u1"), ("q", ">i2")])],
    {"names": ["lo", "hi"], "formats": ["<u2", "<u2"], "offsets": [0, 6], "itemsize": 12},
]  # fmt: skip


@st.composite
def numpy_arrays(draw, padded_views=True):
    """Arrays of every dtype and layout. Without `padded_views`, records with padding bytes are
    only drawn contiguous (see test_record_padding_of_non_contiguous_arrays_is_not_stale_memory)."""
    dtype = np.dtype(draw(st.sampled_from(ARRAY_DTYPES)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
    count = int(np.prod(shape))
    if dtype.kind == "b":
        base = np.array(draw(st.lists(st.booleans(), min_size=count, max_size=count)), dtype=bool).reshape(shape)
    else:
        raw = draw(st.binary(min_size=count * dtype.itemsize, max_size=count * dtype.itemsize))
        base = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    layouts = ["C", "F", "T", "step", "reverse", "readonly"]
    if not padded_views and dtype.names is not None:
        layouts = ["C", "F", "T", "readonly"]
    layout = draw(st.sampled_from(layouts))
    if layout == "F":
        return np.asfortranarray(base)
    if layout == "T":
        return base.T
    if layout == "step" and base.ndim:
        return base[::2]
    if layout == "reverse" and base.ndim:
        return base[..., ::-1]
    if layout == "readonly":
        base.flags.writeable = False
    return base


object_arrays = st.lists(st.one_of(st.none(), ints, texts, floats), min_size=0, max_size=6).map(
    lambda items: np.array(items + [None], dtype=object)[:-1] if items else np.empty((0,), dtype=object)
)
dtypes = st.sampled_from(ARRAY_DTYPES + ["|O"]).map(np.dtype)

hashables = st.recursive(
    st.one_of(st.none(), ints, texts, binaries),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(inner, max_size=3),
    ),
    max_leaves=6,
)
plain_set_items = st.one_of(st.none(), st.booleans(), ints, floats, texts, binaries)
# Keys whose frozensets hold only plain items (None, int, str, bytes): written sorted.
plain_hashables = st.recursive(
    st.one_of(st.none(), ints, texts, binaries),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(st.one_of(st.none(), ints, texts, binaries), max_size=3),
    ),
    max_leaves=6,
)



def leaves(padded_views=True):
    return st.one_of(
        st.none(),
        st.booleans(),
        ints,
        floats,
        complexes,
        texts,
        binaries,
        binaries.map(bytearray),
        st.just(Ellipsis),
        numpy_scalars(),
        numpy_arrays(padded_views),
        object_arrays,
        dtypes,
    )


def containers(children, keys, set_items):
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
        st.sets(set_items, max_size=4),
        st.frozensets(set_items, max_size=4),
        st.builds(slice, st.one_of(st.none(), ints), st.one_of(st.none(), ints), st.one_of(st.none(), ints)),
        # the same object in two places
        children.map(lambda v: [v, v]),
        st.tuples(children, children).map(lambda p: {"a": p[0], "b": [p[1], p[0]], "c": (p[0],)}),
    )


values = st.recursive(
    leaves(), lambda c: containers(c, hashables, st.one_of(hashables, plain_set_items)), max_leaves=12
)
# Sets whose items are all None/bool/int/float/str/bytes are written sorted (FORMAT.md section 11);
# other sets keep their iteration order, which a loaded copy need not share.
plain_values = st.recursive(
    leaves(padded_views=False), lambda c: containers(c, plain_hashables, plain_set_items), max_leaves=12
)


# ---------------------------------------------------------------- round trips


@SETTINGS
@given(values)
def test_round_trip(value):
    assert_same(value, skvault.loads(skvault.dumps(value)))


@FEW
@given(values, st.sampled_from([("zstd", None), ("zstd", 1), ("zstd", 19), ("lz4", None)]))
def test_round_trip_compressed(value, codec):
    compress, level = codec
    assert_same(value, skvault.loads(skvault.dumps(value, compress=compress, level=level)))


@FEW
@given(st.dictionaries(texts, numpy_arrays(), max_size=5), st.sampled_from([False, True, "c"]))
def test_round_trip_through_a_file(arrays, mmap):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "a.skv")
        skvault.dump(arrays, path)
        back = skvault.load(path, mmap=mmap)
        for key, arr in arrays.items():
            Same().array(arr, back[key], key)
            if mmap is True and arr.size:
                assert back[key].flags.writeable is False
        del back


@SETTINGS
@given(st.lists(number_scalars(), min_size=2, max_size=40))
def test_numpy_number_scalars_keep_their_type_and_bits_however_many(values):
    # The walker reads the first scalar of a numpy number type through .dtype and .tobytes(),
    # and the later ones through the buffer protocol: both must give the same bytes.
    loaded = skvault.loads(skvault.dumps(values))
    assert [type(v) for v in loaded] == [type(v) for v in values]
    assert [v.tobytes() for v in loaded] == [v.tobytes() for v in values]


@SETTINGS
@given(floats)
def test_every_float_keeps_its_bits(x):
    y = skvault.loads(skvault.dumps(x))
    assert type(y) is float and float_bits(x) == float_bits(y)
    z = skvault.loads(skvault.dumps(np.float64(x)))
    assert type(z) is np.float64 and z.tobytes() == np.float64(x).tobytes()


@SETTINGS
@given(texts)
def test_every_string_round_trips(s):
    assert skvault.loads(skvault.dumps(s)) == s
    assert skvault.loads(skvault.dumps({s: [s]})) == {s: [s]}


@SETTINGS
@given(st.integers(min_value=-(10**4300 - 1), max_value=10**4300 - 1))
def test_every_int_up_to_4300_digits_round_trips(n):
    back = skvault.loads(skvault.dumps(n))
    assert type(back) is int and back == n


# ---------------------------------------------------------------- sharing


@SETTINGS
@given(values)
def test_shared_references_load_as_one_object(value):
    inner = [value]
    box = {"k": value}
    arr = np.arange(3)
    outer = [inner, inner, (inner, box), box, arr, {"again": arr}]
    back = skvault.loads(skvault.dumps(outer))
    assert back[0] is back[1] is back[2][0]
    assert back[2][1] is back[3]
    assert back[4] is back[5]["again"]
    assert_same(outer, back)


def test_cycles_load_as_cycles():
    a = [1]
    a.append(a)
    d = {"x": a}
    d["self"] = d
    s = {"cyc": [d, a]}
    back = skvault.loads(skvault.dumps(s))
    assert back["cyc"][1][1] is back["cyc"][1]
    assert back["cyc"][0]["self"] is back["cyc"][0]
    assert back["cyc"][0]["x"] is back["cyc"][1]


# ---------------------------------------------------------------- determinism


@SETTINGS
@given(plain_values)
def test_same_object_same_bytes(value):
    assert skvault.dumps(value) == skvault.dumps(value)


@SETTINGS
@given(plain_values)
def test_a_loaded_object_dumps_to_the_same_bytes(value):
    data = skvault.dumps(value)
    assert skvault.dumps(skvault.loads(data)) == data


@FEW
@given(st.sets(plain_set_items, max_size=8))
def test_plain_sets_are_written_in_a_fixed_order(items):
    # The same items inserted in another order give the same bytes.
    reordered = set()
    for item in reversed(list(items)):
        reordered.add(item)
    assert skvault.dumps(items) == skvault.dumps(reordered)
    assert skvault.dumps(frozenset(items)) == skvault.dumps(frozenset(reordered))


# ---------------------------------------------------------------- known gaps


def test_record_padding_of_non_contiguous_arrays_is_not_stale_memory():
    from conftest import split_skv

    dt = np.dtype([("x", "u1"), ("y", "<i8")], align=True)  # 7 padding bytes per record
    source = np.full(2 * 16 * dt.itemsize, 0xAB, dtype=np.uint8).view(dt)
    source["x"], source["y"] = 1, 2
    view = source[::2]
    freed = np.full(view.size * dt.itemsize, 0xCD, dtype=np.uint8)  # memory numpy will hand out again
    del freed
    _, manifest, blob = split_skv(skvault.dumps(view))
    assert manifest["arrays"][0]["codec"] == "none"
    records = np.frombuffer(blob, dtype=np.uint8).reshape(-1, dt.itemsize)
    padding = records[:, 1:8]
    assert (padding == 0).all() or (padding == 0xAB).all(), padding[:2]


@pytest.mark.parametrize("value", [np.str_(""), np.bytes_(b""), np.void(b"")], ids=["str_", "bytes_", "void"])
def test_empty_numpy_strings_round_trip(value):
    assert_same(value, skvault.loads(skvault.dumps(value)))


def test_the_writer_refuses_ints_the_reader_would_refuse():
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        with pytest.raises(skvault.UnsupportedObjectError):
            skvault.dumps(10**4300)
    finally:
        sys.set_int_max_str_digits(old)


def test_huge_ints_are_unsupported_objects():
    with pytest.raises(skvault.UnsupportedObjectError):
        skvault.dumps([10**4300])
