"""Neighbors trees, distance metrics and libsvm models: checked in Rust before load builds them.

Their compiled code reads the fitted state without bounds checks (see
crates/skvault-infer/src/guard/neighbors.rs and svm.rs). Real fitted models must round-trip
untouched; a real dump with one value of that state changed (digests made valid again) must be
refused before anything is built. Hostile files are loaded in a child process with an
address-space limit and a timeout, so a crash or a hang fails the test instead of pytest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import DistanceMetric
from sklearn.neighbors import KernelDensity, KNeighborsClassifier, LocalOutlierFactor, NearestNeighbors
from sklearn.svm import SVC, SVR, NuSVR, OneClassSVM

import skvault
import hostile
from hostile import run_limited

RNG = np.random.RandomState(0)
X = RNG.rand(80, 3)
Y = RNG.randint(0, 3, 80)
X_TEST = RNG.rand(7, 3)
V = np.cov(X.T)


def _quiet(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SVC(probability=True) is deprecated in 1.9
        return fit()


MODELS = {
    "knn kd_tree": lambda: KNeighborsClassifier(algorithm="kd_tree", leaf_size=4).fit(X, Y),
    "knn ball_tree": lambda: KNeighborsClassifier(algorithm="ball_tree", leaf_size=4).fit(X, Y),
    "knn mahalanobis": lambda: KNeighborsClassifier(
        algorithm="ball_tree", metric="mahalanobis", metric_params={"VI": np.linalg.inv(V)}
    ).fit(X, Y),
    "knn seuclidean": lambda: KNeighborsClassifier(
        algorithm="ball_tree", metric="seuclidean", metric_params={"V": X.var(axis=0)}
    ).fit(X, Y),
    "knn weighted minkowski": lambda: KNeighborsClassifier(
        algorithm="ball_tree", p=3, metric_params={"w": np.array([1.0, 2.0, 0.5])}
    ).fit(X, Y),
    "nearest neighbors chebyshev": lambda: NearestNeighbors(algorithm="kd_tree", metric="chebyshev").fit(X),
    "kernel density weighted": lambda: KernelDensity(bandwidth=0.3).fit(X, sample_weight=RNG.rand(80) + 0.5),
    "local outlier factor": lambda: LocalOutlierFactor(n_neighbors=5, novelty=True).fit(X),
    "svc probability": lambda: _quiet(lambda: SVC(probability=True, random_state=0).fit(X, Y)),
    "nusvr": lambda: NuSVR().fit(X, X[:, 0]),
    "one class svm": lambda: OneClassSVM(gamma="scale").fit(X),
    "svc sparse": lambda: SVC().fit(sp.csr_matrix(X), Y),
    "svr sparse linear": lambda: SVR(kernel="linear").fit(sp.csr_matrix(X), X[:, 1]),
    "svc precomputed": lambda: SVC(kernel="precomputed").fit(X @ X.T, Y),
}


def _outputs(model, name):
    """What each model computes through its compiled code."""
    if isinstance(model, NearestNeighbors):
        return model.kneighbors(X_TEST, n_neighbors=3)
    if isinstance(model, KNeighborsClassifier):
        return model.predict_proba(X_TEST), model.kneighbors(X_TEST)
    if isinstance(model, KernelDensity):
        return (model.score_samples(X_TEST),)
    if isinstance(model, LocalOutlierFactor):
        return model.score_samples(X_TEST), model.predict(X_TEST)
    test = X_TEST @ X.T if "precomputed" in name else X_TEST
    if "sparse" in name:
        test = sp.csr_matrix(test)
    out = [model.predict(test)]
    if hasattr(model, "decision_function"):
        out.append(model.decision_function(test))
    if "probability" in name:
        out.append(_quiet(lambda: model.predict_proba(test)))
    return out


@pytest.mark.parametrize("name", MODELS)
def test_fitted_models_round_trip(name):
    model = MODELS[name]()
    loaded = skvault.loads(skvault.dumps(model))
    for a, b in zip(_outputs(model, name), _outputs(loaded, name)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "metric",
    [
        DistanceMetric.get_metric("mahalanobis", V=V),
        DistanceMetric.get_metric("seuclidean", V=np.ones(3)),
        DistanceMetric.get_metric("minkowski", p=1.5, w=np.ones(3)),
        DistanceMetric.get_metric("hamming", dtype=np.float32),
    ],
    ids=lambda m: type(m).__name__,
)
def test_standalone_metrics_round_trip(metric):
    loaded = skvault.loads(skvault.dumps(metric))
    x = X.astype(np.float32) if type(metric).__name__.endswith("32") else X
    np.testing.assert_array_equal(metric.pairwise(x[:5]), loaded.pairwise(x[:5]))


# ---------------------------------------------------------------- tampered dumps


class Forge(hostile.Forge):
    """A real dump of `model`, with the state of its neighbors tree, metric and SVM at hand."""

    def __init__(self, model):
        super().__init__(skvault.dumps(model))
        self.nodes = [n for n in self._nodes() if isinstance(n.get("object"), str)]

    def obj(self, suffix: str) -> dict:
        return next(o for o in self.nodes if o["object"].endswith(suffix))

    def tree_state(self) -> list:
        return next(o for o in self.nodes if o["object"].endswith(("KDTree", "BallTree")))["state"]["tuple"]

    def metric_state(self) -> list:
        return next(o for o in self.nodes if "_dist_metrics." in o["object"])["state"]["tuple"]

    def attrs(self, suffix: str) -> dict:
        return self.obj(suffix)["attrs"]

    def bytes(self) -> bytes:
        return self.to_bytes()


def _idx_out_of_range(f):
    f.edit(f.tree_state()[1], lambda a: a.__setitem__(0, 80))


def _idx_negative(f):
    f.edit(f.tree_state()[1], lambda a: a.__setitem__(3, -(10**12)))


def _leaf_past_the_end(f):
    def change(nodes):
        leaf = np.flatnonzero(nodes["is_leaf"])[0]
        nodes["idx_end"][leaf] = 10**9

    f.edit(f.tree_state()[2], change)


def _leaf_made_inner(f):
    def change(nodes):
        nodes["is_leaf"][-1] = 0  # its children 2i+1, 2i+2 would be beyond the nodes

    f.edit(f.tree_state()[2], change)


def _set_state(i, value):
    def tamper(f):
        f.tree_state()[i] = value

    return tamper


def _no_metric(f):
    # The metric moves to the estimator (its arrays stay referenced); the tree gets None.
    f.parts.manifest["root"]["attrs"]["moved_metric"] = f.tree_state()[11]
    f.tree_state()[11] = None


def _mahalanobis_flat(f):
    # The same 9 values as a (1, 9) matrix: the metric's buffer holds 1 value, the tree writes 3.
    mat = f.array(f.metric_state()[2])
    f.set_array(f.metric_state()[2], mat.reshape(1, 9))


def _metric_vec_short(f):
    f.set_array(f.metric_state()[1], f.array(f.metric_state()[1])[:1])


def _weights_short(f):
    f.set_array(f.tree_state()[12], f.array(f.tree_state()[12])[:10])


def _svm_array(attr, change):
    def tamper(f):
        node = next(o for o in f.nodes if o["object"].startswith("sklearn.svm."))["attrs"][attr]
        f.set_array(node, change(f.array(node)))

    return tamper


def _sparse_coef_missing_value(f):
    # A valid CSR matrix with one coefficient left out: libsvm copies rows * n_SV values.
    node = f.resolve(next(o for o in f.nodes if o["object"].startswith("sklearn.svm."))["attrs"]["_dual_coef_"])
    parts = node["attrs"]
    f.set_array(parts["data"], f.array(parts["data"])[:-1])
    f.set_array(parts["indices"], f.array(parts["indices"])[:-1])
    f.edit(parts["indptr"], lambda a: a.__setitem__(-1, a[-1] - 1))


def _bumped(a):
    a = a.copy()
    a.flat[0] += 5
    return a


def _svm_attr(attr, value):
    def tamper(f):
        next(o for o in f.nodes if o["object"].startswith("sklearn.svm."))["attrs"][attr] = value

    return tamper


TAMPERED = {
    # KD/ball trees: indices into the data and the node array.
    "kd idx_array out of range": ("knn kd_tree", _idx_out_of_range),
    "ball idx_array negative": ("knn ball_tree", _idx_negative),
    "kd leaf past the end of idx_array": ("knn kd_tree", _leaf_past_the_end),
    "ball last leaf made an inner node": ("knn ball_tree", _leaf_made_inner),
    "kd n_nodes larger than node_data": ("knn kd_tree", _set_state(6, 63)),
    "kd leaf_size 0": ("knn kd_tree", _set_state(4, 0)),
    "kd no metric": ("knn kd_tree", _no_metric),
    "kernel density sample_weight short": ("kernel density weighted", _weights_short),
    # Metrics sized for another dimension than the tree's.
    "mahalanobis matrix not square": ("knn mahalanobis", _mahalanobis_flat),
    "seuclidean one variance for 3 dims": ("knn seuclidean", _metric_vec_short),
    "minkowski one weight for 3 dims": ("knn weighted minkowski", _metric_vec_short),
    # libsvm: sizes the C glue reads unchecked.
    "svc n_support sum": ("svc probability", _svm_array("_n_support", _bumped)),
    "svc intercept short": ("svc probability", _svm_array("_intercept_", lambda a: a[:1])),
    "svc probA short": ("svc probability", _svm_array("_probA", lambda a: a[:1])),
    "svc dual_coef narrow": ("svc probability", _svm_array("_dual_coef_", lambda a: a[:, :1])),
    "svc support vectors missing": ("svc probability", _svm_array("support_vectors_", lambda a: a[:0])),
    "svc precomputed support index": ("svc precomputed", _svm_array("support_", lambda a: a + 10**6)),
    "svc sparse n_support sum": ("svc sparse", _svm_array("_n_support", _bumped)),
    "svc sparse dual_coef data short": ("svc sparse", _sparse_coef_missing_value),
    "nusvr one support count": ("nusvr", _svm_array("_n_support", lambda a: a[:1])),
    "one class svm no intercept": ("one class svm", _svm_array("_intercept_", lambda a: a[:0])),
    "svc impl changed": ("svc probability", _svm_attr("_impl", "epsilon_svr")),
}

CHILD = textwrap.dedent(
    """
    import sys
    import skvault
    try:
        model = skvault.loads(sys.stdin.buffer.read())
    except skvault.FormatError as e:
        print("refused:", e)
        sys.exit(0)
    print("loaded", type(model).__name__, flush=True)
    sys.exit(3)
    """
)


def _load_in_child(data: bytes) -> subprocess.CompletedProcess:
    return run_limited([sys.executable, "-c", CHILD], data)


@pytest.mark.parametrize("case", TAMPERED)
def test_tampered_state_is_refused_before_loading(case):
    model_name, tamper = TAMPERED[case]
    forge = Forge(MODELS[model_name]())
    tamper(forge)
    result = _load_in_child(forge.bytes())
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, (result.returncode, out, result.stderr[-2000:])
    assert out.startswith("refused:") and "refused before loading" in out, out


@pytest.mark.parametrize("name", ["knn kd_tree", "knn mahalanobis", "svc probability", "svc sparse"])
def test_forged_files_without_a_change_load(name):
    # The forging helpers alone keep a file loadable, so the refusals above come from the change.
    forge = Forge(MODELS[name]())
    for index in range(len(forge.parts.manifest["arrays"])):
        node = {"array": index}
        if "pack" not in forge.parts.manifest["arrays"][index]:
            forge.set_array(node, forge.array(node))
    result = _load_in_child(forge.bytes())
    assert result.returncode == 3 and result.stdout.startswith(b"loaded"), (result.returncode, result.stdout)


def test_standalone_mahalanobis_must_be_square():
    forge = Forge(DistanceMetric.get_metric("mahalanobis", V=V))
    mat = forge.array(forge.metric_state()[2])
    forge.set_array(forge.metric_state()[2], mat[:, :1])
    result = _load_in_child(forge.bytes())
    assert result.returncode == 0 and b"refused before loading" in result.stdout, result.stdout
