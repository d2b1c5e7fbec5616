"""Issue 17, items 2 and 3: trusted classes whose compiled code reads the state a file gives
it. Each case takes a real dump, makes one value hostile (digests stay valid), and checks in
a child process (address-space limit, timeout) that `load` refuses it with a FormatError
before anything is built; without the check, using the loaded object would crash, loop or
read and write out of bounds in Cython or C++."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import forge
from hostile import Forge, assert_refused, load_in_child
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import skvault

TREE = "sklearn.tree._tree.Tree"
RNG = np.random.RandomState(0)
X = RNG.rand(60, 3)
Y = (X[:, 0] + X[:, 1] > 1).astype(int)
USE_TREE = ("obj.predict(X)", "obj.feature_importances_", "obj.decision_path(X)")


def _tree_file(model=None):
    model = model or DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, Y)
    f = Forge(skvault.dumps(model))
    tree = f.objects(TREE)[0]
    return f, tree, tree["attrs"]["nodes"]["array"]


def test_untouched_files_load_and_predict():
    """The control: the same route without an edit loads and predicts in the child."""
    f, _, _ = _tree_file()
    result = load_in_child(f.to_bytes(), *USE_TREE)
    assert result.returncode == 3 and b"raised" not in result.stdout, result


def _first_split(nodes):
    return int(np.flatnonzero(nodes["left_child"] != -1)[0])


def _set(field, value, which=lambda n: _first_split(n)):
    def edit(nodes):
        nodes[field][which(nodes)] = value

    return edit


TREE_EDITS = {
    "child beyond the node count": _set("left_child", 10**6),
    "child pointing back (cycle)": _set("left_child", 0, lambda n: int(np.flatnonzero(n["left_child"] != -1)[1])),
    "negative child": _set("right_child", -7),
    "feature beyond n_features": _set("feature", 10**5),
    "half leaf": _set("right_child", 1, lambda n: int(np.flatnonzero(n["left_child"] == -1)[0])),
}


@pytest.mark.parametrize("edit", list(TREE_EDITS))
def test_hostile_tree_nodes_are_refused(edit):
    f, _, index = _tree_file()
    f.edit(index, TREE_EDITS[edit])
    assert_refused(load_in_child(f.to_bytes(), *USE_TREE), "refused before loading", "Tree")


def test_tree_wider_than_its_estimator_is_refused():
    """Tree(n_features=1000) with a split on feature 500, held by an estimator fitted on 3
    columns: the estimator validates X for 3 columns, the tree reads column 500."""
    f, tree, index = _tree_file()
    tree["call"][0] = 1000
    f.edit(index, _set("feature", 500))
    assert_refused(load_in_child(f.to_bytes(), *USE_TREE), "validates X for 3")


def test_forest_tree_wider_than_the_forest_is_refused():
    """Forests call their trees with check_input=False."""
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, Y)
    f = Forge(skvault.dumps(forest))
    tree = f.objects(TREE)[1]
    tree["call"][0] = 1000
    f.edit(tree["attrs"]["nodes"]["array"], _set("feature", 500))
    # The sub-estimator's own n_features_in_ agrees with the tree, only the forest's does not.
    for est in f.objects("sklearn.tree._classes.DecisionTreeClassifier"):
        if est["attrs"].get("tree_") is tree:
            est["attrs"]["n_features_in_"] = 1000
    assert_refused(load_in_child(f.to_bytes(), "obj.predict_proba(X)"), "validates X for 3")


def test_gradient_boosting_tree_with_bad_children_is_refused():
    gb = GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, Y)
    f = Forge(skvault.dumps(gb))
    index = f.objects(TREE)[2]["attrs"]["nodes"]["array"]
    f.edit(index, TREE_EDITS["child beyond the node count"])
    assert_refused(load_in_child(f.to_bytes(), "obj.predict(X)"), "refused before loading")


def test_tree_values_of_the_wrong_shape_are_refused():
    f, tree, _ = _tree_file()
    tree["attrs"]["node_count"] = 2
    assert_refused(load_in_child(f.to_bytes(), *USE_TREE), "node_count")


# ---------------------------------------------------------------- sparse matrices

def _csr_file(m=None):
    m = sp.csr_matrix(np.arange(12.0).reshape(3, 4)) if m is None else m
    f = Forge(skvault.dumps(m))
    return f, f.root


SPARSE_EDITS = {
    "index beyond the columns": ("indices", lambda a: a.__setitem__(0, 10**6)),
    "negative index": ("indices", lambda a: a.__setitem__(1, -3)),
    "indptr going down": ("indptr", lambda a: a.__setitem__(1, a[2] + 1)),
    "indptr past the data": ("indptr", lambda a: a.__setitem__(-1, a[-1] + 100)),
    "indptr not starting at 0": ("indptr", lambda a: a.__setitem__(0, 1)),
}


@pytest.mark.parametrize("edit", list(SPARSE_EDITS))
def test_hostile_sparse_parts_are_refused(edit):
    f, root = _csr_file()
    name, change = SPARSE_EDITS[edit]
    index = root["attrs"][name]["array"]
    arr = f.array(index)
    change(arr)
    f.set_array(index, arr)
    assert_refused(load_in_child(f.to_bytes(), "obj.toarray()", "obj @ np.ones(4)"), "refused before loading")


def test_sparse_shape_larger_than_its_parts_is_refused():
    f, root = _csr_file()
    root["attrs"]["_shape"] = {"tuple": [3, 2]}  # column indices up to 3 no longer fit
    assert_refused(load_in_child(f.to_bytes(), "obj.toarray()"), "outside [0, 2)")


def test_sparse_state_cannot_set_properties():
    """A (dict, slots) state naming `shape` would run scipy's reshape on unchecked parts."""
    f, root = _csr_file()
    attrs = root.pop("attrs")
    as_dict = {"dict": [[k, v] for k, v in attrs.items()]}
    root["state"] = {"tuple": [as_dict, {"dict": [["shape", {"tuple": [4, 3]}]]}]}
    assert_refused(load_in_child(f.to_bytes(), "obj.toarray()"), "must be a dict")


def test_unexpected_sparse_attributes_are_refused():
    f, root = _csr_file()
    root["attrs"]["_has_canonical_format"] = True
    root["attrs"]["shape"] = {"tuple": [4, 3]}
    assert_refused(load_in_child(f.to_bytes(), "obj.toarray()"), "unexpected attribute")


def test_hostile_sparse_validation_output_is_refused():
    """load(validate=True) compares recorded outputs: a sparse one would be densified."""
    good, root = _csr_file()
    bad, bad_root = _csr_file()
    index = bad_root["attrs"]["indices"]["array"]
    arr = bad.array(index)
    arr[0] = 10**6
    bad.set_array(index, arr)
    hostile = bad.to_bytes()
    f = Forge(hostile)
    f.parts.manifest["validation"] = f.parts.manifest["root"]
    f.parts.manifest["root"] = None
    assert_refused(load_in_child(f.to_bytes(), validate=True), "/validation/")


def test_sparse_coef_with_out_of_range_indices_is_refused():
    model = LogisticRegression().fit(X, Y).sparsify()
    f = Forge(skvault.dumps(model))
    coef = f.objects("scipy.sparse._csr.csr_matrix")[0]
    index = coef["attrs"]["indices"]["array"]
    arr = f.array(index)
    arr[0] = 10**6
    f.set_array(index, arr)
    assert_refused(load_in_child(f.to_bytes(), "obj.decision_function(X)"), "refused before loading")


@pytest.mark.parametrize(
    "make",
    [
        lambda: sp.csr_matrix(np.eye(4)),
        lambda: sp.csc_array(np.arange(6.0).reshape(2, 3)),
        lambda: sp.coo_matrix(np.eye(3)),
        lambda: sp.coo_array(np.arange(6.0).reshape(3, 2)),
        lambda: sp.csr_matrix((3, 5)),
        lambda: sp.random(40, 30, density=0.1, format="csr", random_state=0).astype(np.float32),
    ],
    ids=["csr", "csc array", "coo", "coo array", "empty", "random float32"],
)
def test_valid_sparse_matrices_round_trip(make):
    m = make()
    back = skvault.loads(skvault.dumps(m))
    assert type(back) is type(m) and back.shape == m.shape and back.dtype == m.dtype
    assert (back != m).nnz == 0


@pytest.mark.parametrize("fmt", ["bsr", "dia", "lil", "dok"])
def test_unguarded_sparse_formats_are_not_trusted_by_default(fmt):
    m = sp.random(5, 5, density=0.4, format=fmt, random_state=0)
    with pytest.raises(skvault.UntrustedTypesError):
        skvault.loads(skvault.dumps(m))


# ---------------------------------------------------------------- HistGradientBoosting, losses

def _hgb_file():
    model = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, Y)
    f = Forge(skvault.dumps(model))
    predictor = f.objects("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor")[0]
    return f, predictor


@pytest.mark.parametrize(
    "field, value",
    [("left", 10**6), ("right", 0), ("feature_idx", 300), ("bitset_idx", 10**5)],
)
def test_hostile_hist_predictor_nodes_are_refused(field, value):
    f, predictor = _hgb_file()
    index = predictor["attrs"]["nodes"]["array"]
    nodes = f.array(index)
    split = int(np.flatnonzero(nodes["is_leaf"] == 0)[0])
    nodes[split][field] = value
    if field == "bitset_idx":
        nodes[split]["is_categorical"] = 1
    f.set_array(index, nodes)
    assert_refused(load_in_child(f.to_bytes(), "obj.predict(X)"), "refused before loading")


def test_hist_predictor_outside_its_estimator_is_refused():
    """Its estimator checks a predictor against its own features: elsewhere it is refused."""
    f, _ = _hgb_file()
    attrs = f.root["attrs"]
    attrs["_elsewhere"] = attrs.pop("_predictors")
    assert_refused(load_in_child(f.to_bytes()), "only loaded as part of")


@pytest.mark.parametrize(
    "node",
    [
        {"object": "sklearn._loss._loss.CyHalfTweedieLoss", "call": [{"list": [{"float": 1.5}]}]},
        {"object": "sklearn._loss._loss.CyHalfTweedieLoss", "call": [{"float": 1.5}], "attrs": {"x": 1}},
        {"object": "sklearn.linear_model._sgd_fast.Hinge", "call": ["1.0"]},
    ],
    ids=["list argument", "extra state", "string argument"],
)
def test_loss_objects_take_numbers_only(node):
    assert_refused(load_in_child(forge(node)), "built from at most 4 numbers")


@pytest.mark.parametrize(
    "key",
    [{"list": [1]}, {"dict": []}],
    ids=["list in a set", "dict as a dict key"],
)
def test_unhashable_set_items_and_dict_keys_are_format_errors(key):
    with pytest.raises(skvault.FormatError, match="not hashable"):
        skvault.loads(forge({"set": [key]}))
    with pytest.raises(skvault.FormatError, match="not hashable"):
        skvault.loads(forge({"dict": [[key, 1]]}))


# ---------------------------------------------------------------- k-means, gradient boosting width

def test_kmeans_centers_narrower_than_the_features_are_refused():
    """KMeans.predict validates X for n_features_in_ columns, then BLAS reads that many
    values of every center row."""
    from sklearn.cluster import KMeans

    f = Forge(skvault.dumps(KMeans(3, n_init=1, random_state=0).fit(X)))
    f.root["attrs"]["n_features_in_"] = 300
    assert_refused(load_in_child(f.to_bytes(), "obj.predict(np.random.rand(5, 300))"), "cluster_centers_")


def test_bisecting_kmeans_centers_are_checked_in_its_tree():
    from sklearn.cluster import BisectingKMeans

    f = Forge(skvault.dumps(BisectingKMeans(3, random_state=0).fit(X)))
    node = f.objects("sklearn.cluster._bisect_k_means._BisectingTree")[-1]
    center = node["attrs"]["center"]
    f.set_array(center, f.array(center)[:1])
    assert_refused(load_in_child(f.to_bytes(), "obj.predict(X)"), "center")


def test_gradient_boosting_stages_wider_than_its_predictions_are_refused():
    """predict_stages adds tree k of each stage to column k of an array as wide as the init
    estimator's output: binary classification has 1 column."""
    y3 = (X[:, 0] * 3).astype(int)
    f = Forge(skvault.dumps(GradientBoostingClassifier(n_estimators=2, max_depth=1, random_state=0).fit(X, y3)))
    classes = f.objects("sklearn.dummy.DummyClassifier")[0]["attrs"]["classes_"]
    f.set_array(classes, f.array(classes)[:1])
    assert_refused(load_in_child(f.to_bytes(), "obj.predict(X)"), "init_")


@pytest.mark.parametrize("n_classes", [2, 3])
def test_gradient_boosting_and_kmeans_still_load(n_classes):
    from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans

    y = (X[:, 0] * n_classes).astype(int)
    for model in [
        GradientBoostingClassifier(n_estimators=2, max_depth=1, random_state=0).fit(X, y),
        GradientBoostingClassifier(n_estimators=2, init="zero", random_state=0).fit(X, y),
        KMeans(n_classes, n_init=1, random_state=0).fit(X),
        MiniBatchKMeans(n_classes, n_init=1, random_state=0).fit(X),
        BisectingKMeans(n_classes, random_state=0).fit(X),
    ]:
        back = skvault.loads(skvault.dumps(model))
        np.testing.assert_array_equal(back.predict(X), model.predict(X))
