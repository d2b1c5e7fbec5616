"""Standard-library values that scikit-learn models and their users hold (`OrderedDict`,
`defaultdict` with a builtin factory, `Counter`, `datetime` values, `Decimal`, `Fraction`,
`UUID`, `pathlib` paths) are trusted in the shapes their pickles have: `scan` rates them safe,
`convert` converts them, `dump`/`load` round-trip them to equal objects of the same types. Any
other shape (a factory that is no builtin type, a `Decimal` of junk, a date out of range, a
`UUID` beyond 128 bits, ...) is refused by `convert`, `load` and `dump`, trusted or not."""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import io
import json
import pathlib
import pickle
import uuid

import joblib
import numpy as np
import pytest
from skv_bytes import SkvParts

import skvault

EST = datetime.timezone(datetime.timedelta(hours=-5), "EST")


def _defaultdict(factory, items=()):
    d = collections.defaultdict(factory)
    d.update(items)
    return d


VALUES = {
    "OrderedDict": collections.OrderedDict([("b", 1), ("a", [2, 3])]),
    "defaultdict(list)": _defaultdict(list, {"x": [1], "y": []}),
    "defaultdict(int)": _defaultdict(int, {"a": 3}),
    "defaultdict(dict)": _defaultdict(dict),
    "defaultdict(set)": _defaultdict(set, {1: {2}}),
    "defaultdict(float)": _defaultdict(float),
    "defaultdict(str)": _defaultdict(str, {"k": "v"}),
    "defaultdict(None)": _defaultdict(None, {1: 2}),
    "Counter": collections.Counter("abracadabra"),
    "date": datetime.date(2024, 2, 29),
    "datetime": datetime.datetime(2024, 12, 31, 23, 59, 59, 999999),
    "datetime tz": datetime.datetime(2020, 5, 17, 12, 30, tzinfo=EST),
    "datetime utc": datetime.datetime(1, 1, 1, tzinfo=datetime.timezone.utc),
    "datetime fold": datetime.datetime(2021, 11, 7, 1, 30, fold=1),
    "time": datetime.time(23, 59, 1, 5),
    "time tz fold": datetime.time(8, 0, tzinfo=EST, fold=1),
    "timedelta": datetime.timedelta(days=-3, seconds=5, microseconds=7),
    "timezone": EST,
    "timezone utc": datetime.timezone.utc,
    "Decimal": decimal.Decimal("-1.50E+7"),
    "Decimal specials": [decimal.Decimal(s) for s in ("NaN", "-Infinity", "0.000", "sNaN12", "1E-999")],
    "Fraction": fractions.Fraction(-(10**30), 7),
    "UUID": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "UUID safe": uuid.UUID(int=2**128 - 1, is_safe=uuid.SafeUUID.safe),
    "PurePosixPath": pathlib.PurePosixPath("/tmp/data/x.csv"),
    "PosixPath": pathlib.PosixPath("relative/dir"),
    "PureWindowsPath": pathlib.PureWindowsPath("C:/data/x.csv"),
}


def _same(a, b) -> None:
    """Equal and of the same types all the way down (NaN decimals compared by text)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, decimal.Decimal):
        assert str(a) == str(b)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys())
        for k in a:
            _same(a[k], b[k])
        if isinstance(a, collections.defaultdict):
            assert a.default_factory is b.default_factory
    else:
        assert a == b
        if isinstance(a, (datetime.datetime, datetime.time)):
            assert a.fold == b.fold and a.tzinfo == b.tzinfo
        if isinstance(a, uuid.UUID):
            assert a.is_safe == b.is_safe


def _pickles(obj):
    for protocol in range(6):
        yield f"p{protocol}", pickle.dumps(obj, protocol=protocol)
    for compress in (0, 3):
        buf = io.BytesIO()
        joblib.dump(obj, buf, compress=compress)
        yield f"joblib{compress}", buf.getvalue()


@pytest.mark.parametrize("name", sorted(VALUES))
def test_dump_and_load_give_an_equal_object_of_the_same_type(name, tmp_path):
    value = {"value": VALUES[name], "array": np.arange(3.0)}
    path = tmp_path / "v.skv"
    skvault.dump(value, path)
    assert skvault.get_untrusted_types(path) == []
    assert skvault.scan(path).verdict == "safe"
    loaded = skvault.load(path)
    _same(value["value"], loaded["value"])


@pytest.mark.parametrize("name", sorted(VALUES))
def test_pickles_of_every_protocol_scan_safe_and_convert(name, tmp_path):
    value = {"value": VALUES[name]}
    for label, data in _pickles(value):
        src, dst = tmp_path / f"{label}.pkl", tmp_path / f"{label}.skv"
        src.write_bytes(data)
        report = skvault.scan(src)
        assert report.verdict == "safe", (label, report)
        skvault.convert(src, dst)
        # What pickle itself gives back (protocols below 4 do not keep `fold`): the test's own
        # benign bytes, unpickled as the reference.
        expected = joblib.load(io.BytesIO(data)) if label.startswith("joblib") else pickle.loads(data)
        _same(expected["value"], skvault.load(dst)["value"])
        # The converted tree is the one dump writes for that object.
        assert _tree(dst) == _tree_of(expected, tmp_path / "dumped.skv"), label


def _tree(path):
    return skvault.inspect(path)["root"]


def _tree_of(obj, path):
    skvault.dump(obj, path)
    return _tree(path)


# Hand-written pickles that a real value never has. `skvault_canary`-free: every callable they
# name is harmless or dangerous by name, and nothing here unpickles them.
HOSTILE_PICKLES = {
    "defaultdict(os.system)": (b"\x80\x04ccollections\ndefaultdict\ncos\nsystem\n\x85R.", "unsafe"),
    "defaultdict(numpy.mean)": (b"\x80\x04ccollections\ndefaultdict\ncnumpy\nmean\n\x85R.", "safe"),
    "defaultdict(functools.partial)": (
        b"\x80\x04ccollections\ndefaultdict\ncfunctools\npartial\n\x85R.",
        "safe",
    ),
    "Decimal junk": (b"\x80\x04cdecimal\nDecimal\nX\x04\x00\x00\x00junk\x85R.", "safe"),
    "Decimal with underscores": (b"\x80\x04cdecimal\nDecimal\nX\x05\x00\x00\x001_000\x85R.", "safe"),
    "Decimal from a float": (b"\x80\x04cdecimal\nDecimal\nG?\xf8\x00\x00\x00\x00\x00\x00\x85R.", "safe"),
    "date day 30 of February": (b"\x80\x04cdatetime\ndate\nC\x04\x07\xe8\x02\x1e\x85R.", "safe"),
    "datetime hour 99": (b"\x80\x04cdatetime\ndatetime\nC\x0a\x07\xe8\x01\x01\x63\x00\x00\x00\x00\x00\x85R.", "safe"),
    "datetime short": (b"\x80\x04cdatetime\ndatetime\nC\x04\x07\xe8\x01\x01\x85R.", "safe"),
    "Fraction over zero": (b"\x80\x04cfractions\nFraction\nK\x01K\x00\x86R.", "safe"),
    "UUID beyond 128 bits": (
        b"\x80\x04\x8c\x04uuid\x8c\x04UUID\x93)\x81}\x8c\x03int\x8a\x11" + b"\x00" * 16 + b"\x01sb.",
        "safe",
    ),
    "OrderedDict with attribute state": (
        b"\x80\x04ccollections\nOrderedDict\n)R}\x8c\x01x\x8c\x01ysb.",
        "safe",
    ),
    "PosixPath of a number": (b"\x80\x04cpathlib\nPosixPath\nK\x01\x85R.", "safe"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PICKLES))
def test_hostile_shapes_are_refused_by_convert(name, tmp_path):
    data, verdict = HOSTILE_PICKLES[name]
    src, dst = tmp_path / "h.pkl", tmp_path / "h.skv"
    src.write_bytes(data)
    assert skvault.scan(src).verdict == verdict
    error = skvault.UnsafeFileError if verdict == "unsafe" else skvault.UnsupportedObjectError
    with pytest.raises(error):
        skvault.convert(src, dst, trusted=["functools.partial"])
    assert not dst.exists()


def _forge(value, old: str, new: str, tmp_path):
    """A .skv file of `value` whose tree (the manifest's `root`) has `old` replaced by `new`,
    digests made valid."""
    data = skvault.dumps(value)
    parts = SkvParts.parse(data)
    text = json.dumps(parts.manifest["root"])
    assert old in text, text
    parts.manifest["root"] = json.loads(text.replace(old, new, 1))
    path = tmp_path / "forged.skv"
    path.write_bytes(parts.to_bytes())
    return path


FORGED = {
    "defaultdict(numpy.mean)": (_defaultdict(list), '"builtins.list"', '"numpy.mean"'),
    "defaultdict(functools.partial)": (_defaultdict(list), '"builtins.list"', '"functools.partial"'),
    "Decimal junk": (decimal.Decimal("1.5"), '"1.5"', '"junk"'),
    "Fraction over zero": (fractions.Fraction(1, 3), "[1, 3]", "[1, 0]"),
    "PosixPath of a list": (pathlib.PosixPath("a"), '"a"', '{"list": []}'),
    "UUID beyond 128 bits": (
        uuid.UUID(int=5),
        '"int": 5',
        '"int": {"int": "340282366920938463463374607431768211456"}',
    ),
    "UUID with a foreign attribute": (uuid.UUID(int=5), '"int": 5', '"int": 5, "x": 1'),
    "datetime hour 24": (datetime.datetime(2020, 1, 1, 23), "B+QBARcAAAAAAA==", "B+QBARgAAAAAAA=="),
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_hostile_shapes_are_refused_by_load_even_when_trusted(name, tmp_path):
    value, old, new = FORGED[name]
    path = _forge(value, old, new, tmp_path)
    for trusted in ([], ["functools.partial", "numpy.mean"]):
        with pytest.raises(skvault.FormatError, match="refused before loading"):
            skvault.load(path, trusted=trusted)


def test_dump_refuses_what_load_would_refuse(tmp_path):
    import functools

    with pytest.raises(skvault.UnsupportedObjectError, match="default_factory"):
        skvault.dumps(collections.defaultdict(functools.partial(list)))
    with pytest.raises(skvault.UnsupportedObjectError, match="default_factory"):
        skvault.dumps(collections.defaultdict(np.mean))
    with pytest.raises(skvault.UnsupportedObjectError, match="attribute state"):
        od = collections.OrderedDict(a=1)
        od.extra = "attribute"
        skvault.dumps(od)


def test_pathlib_module_itself_stays_dangerous(tmp_path):
    for name in ("pathlib.Path.write_text", "pathlib.Path", "pathlib.os.system"):
        with pytest.raises(skvault.SkvaultError, match="refusing to trust"):
            skvault.load(tmp_path / "missing.skv", trusted=[name])
