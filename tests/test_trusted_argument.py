"""`trusted=` is read the same way by every function that takes it (one helper,
`skvault._api._names`): a single name as a `str` (never iterated character by character), or
any iterable of `str` (list, tuple, set, frozenset, generator, dict keys). Anything else is a
`skvault.TrustedNamesError` (a `TypeError` too) naming what was wrong."""

from __future__ import annotations

import pickle
import types

import pytest

import skvault

NAMES = ["types.SimpleNamespace", "fractions.Fraction"]


def _forms():
    """Every accepted spelling of the names a file needs: yields (label, factory)."""
    yield "str", lambda: NAMES[0]
    yield "list", lambda: list(NAMES)
    yield "tuple", lambda: tuple(NAMES)
    yield "set", lambda: set(NAMES)
    yield "frozenset", lambda: frozenset(NAMES)
    yield "generator", lambda: (n for n in NAMES)
    yield "dict keys", lambda: dict.fromkeys(NAMES).keys()
    yield "map", lambda: map(str, NAMES)


FORMS = dict(_forms())
OBJ = types.SimpleNamespace(a=1, b=[2])


@pytest.fixture
def files(tmp_path):
    skv = tmp_path / "ns.skv"
    skvault.dump(OBJ, skv)
    pkl = tmp_path / "ns.pkl"
    pkl.write_bytes(pickle.dumps(OBJ, protocol=4))
    return skv, pkl


@pytest.mark.parametrize("form", sorted(FORMS))
def test_load_loads_and_get_untrusted_types_take_every_form(files, form):
    skv, _ = files
    with pytest.raises(skvault.UntrustedTypesError):
        skvault.load(skv)
    assert skvault.load(skv, trusted=FORMS[form]()) == OBJ
    assert skvault.loads(skv.read_bytes(), trusted=FORMS[form]()) == OBJ
    assert skvault.get_untrusted_types(skv) == ["types.SimpleNamespace"]
    assert skvault.get_untrusted_types(skv, trusted=FORMS[form]()) == []
    assert skvault.get_untrusted_types(file=skv, trusted=FORMS[form]()) == []


@pytest.mark.parametrize("form", sorted(FORMS))
def test_scan_and_convert_take_every_form(files, tmp_path, form):
    skv, pkl = files
    assert skvault.scan(pkl).verdict == "unknown"
    assert skvault.scan(pkl, trusted=FORMS[form]()).verdict == "safe"
    assert skvault.scan(skv, trusted=FORMS[form]()).verdict == "safe"
    out = tmp_path / "converted.skv"
    with pytest.raises(skvault.UntrustedTypesError):
        skvault.convert(pkl, out)
    skvault.convert(pkl, out, trusted=FORMS[form]())
    assert skvault.load(out, trusted=FORMS[form]()) == OBJ


def test_a_single_string_is_one_name_not_its_characters(files):
    skv, pkl = files
    # Iterated character by character, "types.SimpleNamespace" would trust "t", "y", ...: no
    # name at all, and the file would stay untrusted.
    assert skvault.get_untrusted_types(skv, trusted="types.SimpleNamespace") == []
    assert skvault.scan(pkl, trusted="types.SimpleNamespace").verdict == "safe"


BAD = {
    "bytes": (lambda: b"types.SimpleNamespace", "bytes"),
    "int": (lambda: 42, "int"),
    "list of bytes": (lambda: [b"types.SimpleNamespace"], "bytes"),
    "list with an int": (lambda: ["types.SimpleNamespace", 3], "int"),
    "generator of None": (lambda: (n for n in [None]), "NoneType"),
    "dict values": (lambda: {"types.SimpleNamespace": 1}.values(), "int"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_anything_else_is_a_trusted_names_error_from_every_function(files, tmp_path, case):
    skv, pkl = files
    make, what = BAD[case]
    calls = [
        lambda t: skvault.load(skv, trusted=t),
        lambda t: skvault.loads(skv.read_bytes(), trusted=t),
        lambda t: skvault.get_untrusted_types(skv, trusted=t),
        lambda t: skvault.scan(pkl, trusted=t),
        lambda t: skvault.convert(pkl, tmp_path / "x.skv", trusted=t),
    ]
    for call in calls:
        with pytest.raises(skvault.TrustedNamesError, match=what) as info:
            call(make())
        assert isinstance(info.value, TypeError)
        assert "trusted" in str(info.value)
    assert not (tmp_path / "x.skv").exists()
