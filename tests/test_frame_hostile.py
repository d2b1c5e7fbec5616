"""Hostile files for what issue 19 added: the fitted state native inference reads for text
encoders, infrequent categories, TargetEncoder and MissingIndicator, and the DataFrame
validation rows `validate()` rebuilds. Each test forges one defect into a real file (digests
kept valid) and opens it in a child process with an address-space limit and a timeout
(tests/hostile.py): a crash, a hang or an allocation bomb fails the test; a clear refusal,
naming what is wrong, passes."""

from __future__ import annotations

import sys
import textwrap

import pytest
from sklearn.impute import MissingIndicator
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

import skvault
from conftest import build_skv, split_skv
from hostile import run_limited
from test_native_text import skewed

pd = pytest.importorskip("pandas")

CHILD = textwrap.dedent(
    """
    import sys, tempfile, os
    import skvault, skvault.native
    path = os.path.join(tempfile.mkdtemp(), "m.skv")
    with open(path, "wb") as f:
        f.write(sys.stdin.buffer.read())
    try:
        model = skvault.native.load(path)
        model.validate()
    except skvault.SkvaultError as e:
        print("refused:", type(e).__name__, e, flush=True)
        sys.exit(0)
    print("built and validated", flush=True)
    sys.exit(3)
    """
)


def _opened_in_child(data: bytes) -> str:
    r = run_limited([sys.executable, "-c", CHILD], data)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, (r.returncode, out, r.stderr.decode(errors="replace")[-2000:])
    return out


def _forged(est, edit, validation=None) -> bytes:
    header, manifest, blobs = split_skv(skvault.dumps(est, validation=validation))
    edit(manifest)
    return build_skv(manifest, blobs, major=header["major"], minor=header["minor"], flags=header["flags"])


def _replace(attr: str, node):
    """An edit that replaces `attr` of the root object, keeping the arrays it held referenced
    (a reader refuses a file with an array no node uses) under a spare attribute."""

    def edit(m):
        attrs = m["root"]["attrs"]
        attrs["_spare_" + attr] = attrs[attr]
        attrs[attr] = node

    return edit


def _infrequent():
    S = skewed(200, 0)
    return OneHotEncoder(min_frequency=30, handle_unknown="infrequent_if_exist").fit(S), S


def test_an_infrequent_mapping_beyond_the_categories_is_refused():
    enc, _ = _infrequent()
    data = _forged(enc, _replace("_default_to_infrequent_mappings", {"list": [{"list": [0, 99, 1, 2, 3, 4]}, None]}))
    out = _opened_in_child(data)
    assert out.startswith("refused: FormatError") and "expected 6 indices below 6" in out, out


def test_an_infrequent_index_beyond_the_categories_is_refused():
    enc, _ = _infrequent()
    data = _forged(enc, _replace("_infrequent_indices", {"list": [{"list": [2**40]}, None]}))
    out = _opened_in_child(data)
    assert out.startswith("refused: FormatError") and "_infrequent_indices" in out, out


def test_a_category_listed_twice_is_refused():
    enc = OrdinalEncoder().fit(pd.DataFrame({"c": ["a", "b"]}))
    data = _forged(enc, _replace("categories_", {"list": [{"objarray": ["a", "a"], "shape": [2]}]}))
    out = _opened_in_child(data)
    assert out.startswith("refused: FormatError") and "appears twice" in out, out


def test_a_category_that_is_not_a_value_is_refused():
    enc = OrdinalEncoder().fit(pd.DataFrame({"c": ["a", "b"]}))
    data = _forged(enc, _replace("categories_", {"list": [{"objarray": ["a", {"list": []}], "shape": [2]}]}))
    out = _opened_in_child(data)
    assert out.startswith("refused: UnsupportedModelError") and "neither text, a number nor None" in out, out


def test_target_encodings_of_the_wrong_count_are_refused():
    X = pd.DataFrame({"c": ["a", "b", "a", "b"] * 10})
    enc = TargetEncoder(random_state=0).fit(X, [0.0, 1.0, 0.5, 2.0] * 10)
    data = _forged(enc, _replace("encodings_", {"list": []}))
    out = _opened_in_child(data)
    assert out.startswith("refused: FormatError") and "expected 1 x 1 arrays" in out, out


def test_a_missing_indicator_feature_beyond_the_input_is_refused():
    ind = MissingIndicator().fit(pd.DataFrame({"a": [1.0, float("nan")], "b": [None, "x"]}))
    data = _forged(ind, _replace("features_", {"list": [0, 7]}))
    out = _opened_in_child(data)
    assert out.startswith("refused: FormatError") and "feature 7 is not below 2" in out, out


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda f: f["dict"][2][1]["list"].pop(), "one data entry per column"),
        (lambda f: f["dict"][0][1]["list"].__setitem__(0, 3), "column names must be text"),
        (lambda f: f["dict"][2][1]["list"][0]["objarray"].__setitem__(0, {"list": []}), "not text, a number or None"),
        (lambda f: f["dict"][2][1]["list"][0].update(objarray=["x"] * 6, shape=[6]), 'column "u" has 5 rows, but column "t" has 6'),
    ],
    ids=["columns-without-data", "name-not-text", "value-not-a-value", "ragged-columns"],
)
def test_forged_validation_frames_are_refused_naming_the_problem(edit, needle):
    enc, S = _infrequent()

    def forge(m):
        frame = m["validation"]["dict"][0][1]["dict"][0][1]
        edit(frame)

    out = _opened_in_child(_forged(enc, forge, validation=S.iloc[:5]))
    assert out.startswith("refused: FormatError") and needle in out, out
