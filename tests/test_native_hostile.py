"""Hostile and malformed files: native inference refuses them at load, never mid-prediction,
and never crashes. Each test forges one defect into a real file (with valid digests, so the
check under test is the one that fires)."""

from __future__ import annotations

import numpy as np
import pytest
from blake3 import blake3
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import skvault
import skvault.native
from conftest import build_skv, split_skv

NODE = np.dtype(
    {
        "names": ["left_child", "right_child", "feature", "threshold", "impurity",
                  "n_node_samples", "weighted_n_node_samples", "missing_go_to_left"],
        "formats": ["<i8", "<i8", "<i8", "<f8", "<f8", "<i8", "<f8", "u1"],
        "offsets": [0, 8, 16, 24, 32, 40, 48, 56],
        "itemsize": 64,
    }
)


def _tree_file(tmp_path):
    rng = np.random.RandomState(0)
    X, y = rng.randn(100, 3), rng.randint(0, 3, 100)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    data = skvault.dumps(model)
    return data, X


def _with_nodes(data: bytes, edit) -> bytes:
    """The file with the tree's node records changed by `edit` (digest updated)."""
    _, manifest, blobs = split_skv(data)
    index = manifest["root"]["attrs"]["tree_"]["attrs"]["nodes"]["array"]
    entry = manifest["arrays"][index]
    assert entry["codec"] == "none"
    start, length = entry["offset"], entry["length"]
    nodes = np.frombuffer(blobs[start : start + length], dtype=NODE).copy()
    edit(nodes)
    raw = nodes.tobytes()
    entry["digest"] = blake3(raw).hexdigest()
    return build_skv(manifest, blobs[:start] + raw + blobs[start + length :])


def _set(field: str, value: int):
    def edit(nodes):
        nodes[field][0] = value

    return edit


def _swap(a: dict, ka: str, b: dict, kb: str) -> None:
    """Exchanges two attributes: every array stays referenced exactly once."""
    a[ka], b[kb] = b[kb], a[ka]


def _rename(d: dict, old: str, new: str) -> None:
    d[new] = d.pop(old)


def _load(tmp_path, data: bytes):
    path = tmp_path / "forged.skv"
    path.write_bytes(data)
    return skvault.native.load(path)


def test_unforged_file_loads(tmp_path):
    data, X = _tree_file(tmp_path)
    assert _load(tmp_path, _with_nodes(data, lambda n: None)).predict(X).shape == (100,)


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set("left_child", 0), "children"),  # a cycle
        (_set("right_child", -5), "children"),
        (_set("left_child", 10**6), "children"),
        (_set("left_child", -1), "children"),  # half a leaf
        (_set("feature", 3), "feature"),
        (_set("feature", -2), "feature"),
        (_set("feature", 2**40), "feature"),
    ],
    ids=["cycle", "negative-child", "child-out-of-range", "half-leaf", "feature-too-big",
         "negative-feature", "huge-feature"],
)
def test_bad_tree_indices_are_refused_at_load(tmp_path, edit, message):
    data, _ = _tree_file(tmp_path)
    with pytest.raises(skvault.FormatError, match=message):
        _load(tmp_path, _with_nodes(data, edit))


def _with_manifest(data: bytes, edit) -> bytes:
    _, manifest, blobs = split_skv(data)
    edit(manifest)
    return build_skv(manifest, blobs)


def _tree_attrs(m):
    return m["root"]["attrs"]["tree_"]["attrs"]


@pytest.mark.parametrize(
    "edit, exc, message",
    [
        # values and nodes exchanged: wrong dtypes
        (lambda m: _swap(_tree_attrs(m), "values", _tree_attrs(m), "nodes"), skvault.FormatError, "numeric|structured"),
        # values and classes_ exchanged: wrong shapes
        (lambda m: _swap(_tree_attrs(m), "values", m["root"]["attrs"], "classes_"), skvault.FormatError, "shape|classes_"),
        (lambda m: _tree_attrs(m).__setitem__("node_count", 99), skvault.FormatError, "node_count"),
        (lambda m: m["root"]["attrs"].__setitem__("n_features_in_", -1), skvault.FormatError, "n_features_in_"),
        (lambda m: m["root"]["attrs"].__setitem__("n_features_in_", 2), skvault.FormatError, "feature"),
        (lambda m: _rename(m["root"]["attrs"], "tree_", "tree"), skvault.FormatError, "tree_"),
        (lambda m: m["root"]["attrs"]["tree_"].__setitem__("object", "sklearn.tree._tree.Other"), skvault.FormatError, "tree_"),
        (lambda m: m["root"].__setitem__("object", "sklearn.svm._classes.SVC"), skvault.UnsupportedModelError, "SVC"),
        (lambda m: m["root"].__setitem__("object", "builtins.dict"), skvault.UnsupportedModelError, "dict"),
        (lambda m: m["root"]["attrs"].__setitem__("n_outputs_", 2), skvault.UnsupportedModelError, "multi-output"),
        (lambda m: m["root"]["attrs"].__setitem__("_sklearn_version", "1.3.2"), skvault.UnsupportedModelError, "1.3.2"),
    ],
    ids=["values-dtype", "values-shape", "node-count", "negative-features", "fewer-features",
         "no-tree", "tree-class", "unsupported-root", "not-sklearn", "multi-output", "counts-era"],
)
def test_bad_state_is_refused_at_load(tmp_path, edit, exc, message):
    data, _ = _tree_file(tmp_path)
    with pytest.raises(exc, match=message):
        _load(tmp_path, _with_manifest(data, edit))


def test_unsupported_class_deep_in_a_forest_is_named_with_its_path(tmp_path):
    rng = np.random.RandomState(0)
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(rng.randn(50, 2), rng.randint(0, 2, 50))

    def edit(m):
        m["root"]["attrs"]["estimators_"]["list"][2]["object"] = "sklearn.svm._classes.SVC"

    with pytest.raises(skvault.UnsupportedModelError, match="estimators_/2.*SVC"):
        _load(tmp_path, _with_manifest(skvault.dumps(model), edit))


def test_linear_coefficients_of_the_wrong_shape(tmp_path):
    rng = np.random.RandomState(0)
    X, y = rng.randn(60, 4), rng.randint(0, 3, 60)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)

    def edit(m):
        steps = m["root"]["attrs"]["steps"]["list"]
        lr = steps[1]["tuple"][1]["attrs"]
        _swap(lr, "coef_", steps[0]["tuple"][1]["attrs"], "mean_")  # a 1-d coef_

    # Both ends of the exchange are wrong; whichever is built first is reported.
    with pytest.raises((skvault.FormatError, skvault.UnsupportedModelError), match="mean_|coef_"):
        _load(tmp_path, _with_manifest(skvault.dumps(model), edit))

    def edit2(m):
        lr = m["root"]["attrs"]["steps"]["list"][1]["tuple"][1]["attrs"]
        _swap(lr, "classes_", lr, "n_iter_")  # 1 class for 3 rows of coefficients

    with pytest.raises(skvault.FormatError, match="classes"):
        _load(tmp_path, _with_manifest(skvault.dumps(model), edit2))


def test_errors_are_importable_and_typed():
    assert issubclass(skvault.UnsupportedModelError, skvault.SkvaultError)
    assert issubclass(skvault.UnsupportedModelError, TypeError)
    assert "UnsupportedModelError" in skvault.__all__
