"""Hostile manifest texts for the reader of the array table (crates/skvault-format/src/wire.rs),
which keeps each entry's text in a first pass, then reads the entries (on a thread of its own
for a table over 128 kB, while the tree is decoded) and parses each distinct dtype text once.

Each file is a real dump whose manifest text was edited (and its digest recomputed), loaded in
a child process with an address-space limit and a timeout (tests/hostile.py): it must be
refused with a FormatError naming the problem, never crash, hang or exhaust memory. The same
cases are checked in process, variant by variant, by crates/skvault-format/tests/corruption.rs;
the `read_rehashed` fuzz target reaches this reader with mutated manifests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

import skvault
from hostile import assert_refused, load_in_child
from skv_bytes import SkvParts

X = np.random.RandomState(0).rand(200, 3)
Y = (X[:, 0] > 0.5).astype(int)


@pytest.fixture(scope="module")
def parts() -> SkvParts:
    model = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, Y)
    return SkvParts.parse(skvault.dumps(model))


def node_dtype_text(parts: SkvParts) -> str:
    """The text of the first structured dtype (a tree's node records) as the writer wrote it."""
    entry = next(e for e in parts.manifest["arrays"] if isinstance(e["dtype"], dict))
    return json.dumps(entry["dtype"], separators=(",", ":"))


def test_the_unedited_file_loads(parts):
    out = load_in_child(parts.to_bytes()).stdout.decode()
    assert out.startswith("loaded RandomForestClassifier"), out


def test_repeated_names_in_an_entry_or_its_dtype_are_refused(parts):
    node = node_dtype_text(parts)
    edits = {
        "a repeated dtype member": lambda t: t.replace('"dtype":"<i8",', '"dtype":"<i8","dtype":"<i8",', 1),
        "a repeated name inside a structured dtype": lambda t: t.replace(
            node, node.replace('"itemsize":', '"itemsize":64,"itemsize":', 1), 1
        ),
        "a repeated array table": lambda t: t.replace('"arrays":[', '"arrays":[],"arrays":[', 1),
    }
    for what, edit in edits.items():
        data = parts.to_bytes(edit)
        assert data != parts.to_bytes(), what
        assert_refused(load_in_child(data), "duplicate key")


def test_a_dtype_nested_past_the_limit_is_refused_without_a_crash(parts):
    deep = "[" * 200_000 + "]" * 200_000
    data = parts.to_bytes(lambda t: t.replace('"dtype":"<i8"', f'"dtype":{deep}', 1))
    assert_refused(load_in_child(data), "not valid JSON", "recursion limit")


def test_entries_that_are_not_objects_are_refused_by_index(parts):
    for other in ["1", '"x"', "null", "[[1]]"]:
        data = parts.to_bytes(lambda t, o=other: t.replace('"arrays":[', f'"arrays":[{o},', 1))
        assert_refused(load_in_child(data), "/arrays/0")


def test_many_distinct_dtype_texts_are_parsed_within_bounds(parts):
    """20,000 extra entries, each with a dtype text of its own (the node dtype with its own
    whitespace), are all parsed, one dtype each, within the child's memory and time, and the
    file is then refused for the entries the tree does not refer to."""
    node = node_dtype_text(parts)
    entry = next(e for e in parts.manifest["arrays"] if isinstance(e["dtype"], dict))
    extra = []
    for i in range(20_000):
        text = json.dumps(dict(entry, dtype="DTYPE"), separators=(",", ":"))
        spaced = node.replace(",", "," + " " * (i % 50), 1).replace(":", ":" + " " * (i // 50), 1)
        extra.append(text.replace('"DTYPE"', spaced))
    data = parts.to_bytes(lambda t: t.replace('"arrays":[', '"arrays":[' + ",".join(extra) + ",", 1))
    assert len(data) > 20_000 * len(node)
    assert_refused(load_in_child(data), "no node of the tree refers to this array")


@pytest.fixture(scope="module")
def large() -> SkvParts:
    """A forest of 300 stumps: an array table of over 128 kB, which the reader reads on a
    thread of its own while the tree is decoded (Manifest::from_bytes)."""
    model = RandomForestClassifier(n_estimators=300, max_depth=1, random_state=0).fit(X, Y)
    parts = SkvParts.parse(skvault.dumps(model))
    assert len(json.dumps(parts.manifest["arrays"], separators=(",", ":"))) > 128 << 10
    return parts


def replace_last(text: str, old: str, new: str) -> str:
    at = text.rindex(old)
    return text[:at] + new + text[at + len(old):]


def test_hostile_entries_of_a_table_read_on_its_own_thread_are_refused(large):
    """The same refusals when the table is read beside the tree, on its last entries (read
    last by that thread, while the tree is decoded)."""
    out = load_in_child(large.to_bytes()).stdout.decode()
    assert out.startswith("loaded RandomForestClassifier"), out
    n = len(large.manifest["arrays"])
    deep = "[" * 200_000 + "]" * 200_000
    cases = [
        (lambda t: replace_last(t, '"order":"C",', '"order":"C","order":"C",'), ("duplicate key",)),
        (lambda t: replace_last(t, '"itemsize":', '"itemsize":64,"itemsize":'), ("duplicate key",)),
        (lambda t: replace_last(t, '"dtype":"<f8"', f'"dtype":{deep}'), ("not valid JSON", "recursion limit")),
        (lambda t: t.replace('}],"root":', '},[1]],"root":', 1), (f"/arrays/{n}",)),
        (lambda t: replace_last(t, '"shape":[', '"shape":[-1,'), ("/shape",)),
    ]
    for edit, says in cases:
        data = large.to_bytes(edit)
        assert data != large.to_bytes()
        assert_refused(load_in_child(data), *says)
