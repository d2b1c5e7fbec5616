"""The Python face of native inference: no scikit-learn needed, the GIL released, repr."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest, RandomForestClassifier, RandomForestRegressor

import skvault
from native_helpers import assert_same, datasets

BLOCK_SKLEARN = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("native inference must not import " + name)
sys.meta_path.insert(0, Block())
import numpy as np, skvault
model = skvault.native.load(sys.argv[1])
X = np.load(sys.argv[2])
np.save(sys.argv[3], model.predict_proba(X))
print(model.class_name, model.predict(X)[:3].tolist())
assert not any(m == "sklearn" or m.startswith("sklearn.") for m in sys.modules)
"""


def _model(tmp_path):
    X, y, Xt = datasets()["multiclass"]
    model = RandomForestClassifier(n_estimators=40, random_state=0).fit(X, y)
    skvault.dump(model, tmp_path / "m.skv")
    return model, Xt


def test_native_inference_never_imports_scikit_learn(tmp_path):
    model, Xt = _model(tmp_path)
    np.save(tmp_path / "x.npy", Xt)
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_SKLEARN, tmp_path / "m.skv", tmp_path / "x.npy", tmp_path / "p.npy"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "RandomForestClassifier" in result.stdout
    assert_same(np.load(tmp_path / "p.npy"), model.predict_proba(Xt), "predict_proba")


def test_threads_predict_concurrently_with_identical_results(tmp_path):
    """Predictions run without the GIL; concurrent calls on one model give the same bits."""
    model, Xt = _model(tmp_path)
    native = skvault.native.load(tmp_path / "m.skv")
    rows = np.tile(Xt, (20, 1))
    want = model.predict_proba(rows)
    results = [None] * 4

    def work(i):
        results[i] = native.predict_proba(rows)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert_same(r, want, "concurrent predict_proba")


def test_model_description(tmp_path):
    _, _ = _model(tmp_path)
    native = skvault.native.load(tmp_path / "m.skv")
    assert native.class_name == "sklearn.ensemble._forest.RandomForestClassifier"
    assert native.n_features_in_ == 6
    assert native.methods == ["predict", "predict_proba"]
    assert "RandomForestClassifier" in repr(native)
    assert native.feature_names_in_ is None
    out = native.predict_proba(np.zeros((2, 6)))
    assert out.flags.writeable and out.dtype == np.float64


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_inputs_taken_as_they_are_and_converted_give_the_same_values(tmp_path):
    """A float64 C-contiguous ``numpy.ndarray`` goes to the extension in one call, which
    returns the output array; every other form (a subclass, another order, dtype or byte
    order, a strided view, a list) is converted by the Python layer first. Both give
    scikit-learn's values, bit for bit, and an array of their own."""
    model, Xt = _model(tmp_path)
    native = skvault.native.load(tmp_path / "m.skv")
    want = model.predict_proba(Xt[:5])
    plain = np.ascontiguousarray(Xt[:5])
    taken = native._inner.matrix_as_is("predict_proba", plain)
    assert_same(taken, want, "taken as it is")
    assert taken.flags.writeable and not np.shares_memory(taken, plain)
    read_only = plain.copy()
    read_only.flags.writeable = False
    assert_same(native._inner.matrix_as_is("predict_proba", read_only), want, "read-only input")
    converted = {
        "Fortran order": np.asfortranarray(plain),
        "float32": plain.astype(np.float32),
        "big-endian": plain.astype(">f8"),
        "strided": np.repeat(plain, 2, axis=0)[::2],
        "np.matrix": np.asmatrix(plain),
        "list": plain.tolist(),
        "1-d": plain[0],
        "unaligned": np.frombuffer(
            b"\0" + plain.tobytes(), dtype=np.float64, offset=1
        ).reshape(plain.shape),
    }
    for what, X in converted.items():
        assert native._inner.matrix_as_is("predict_proba", X) is None, what
        if what == "1-d":
            continue
        want_x = model.predict_proba(np.asarray(X, dtype=np.float64))
        assert_same(native.predict_proba(X), want_x, what)
    out = native.predict_proba(plain)
    out[0, 0] = -1.0  # its own memory: writing to it changes no later output
    assert_same(native.predict_proba(plain), want, "after writing to an output")

    # A flat output (score_samples) comes back 1-d; a classifier's labels are not a matrix.
    iso = IsolationForest(n_estimators=20, random_state=0).fit(Xt)
    skvault.dump(iso, tmp_path / "iso.skv")
    native_iso = skvault.native.load(tmp_path / "iso.skv")
    scores = native_iso._inner.matrix_as_is("score_samples", plain)
    assert scores.shape == (5,)
    assert_same(scores, iso.score_samples(plain), "score_samples")
    with pytest.raises(ValueError, match="labels"):
        native._inner.matrix_as_is("predict", plain)
    with pytest.raises(ValueError, match="no method"):
        native._inner.matrix_as_is("fit", plain)


def test_predict_takes_the_same_inputs_as_they_are_and_gives_scikit_learns_labels(tmp_path):
    """``predict`` gives the extension a float64 C-contiguous ``numpy.ndarray`` in one call
    too: a classifier's labels come back as int64 indices into ``classes_`` (text labels
    included), a regressor's values as floats; other forms are converted first."""
    X, y, Xt = datasets()["multiclass"]
    plain = np.ascontiguousarray(Xt[:7])
    text = np.array(["north", "south", "east", "west", "up", "down"])[y % 6]
    models = {
        "labels": RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y),
        "text labels": RandomForestClassifier(n_estimators=10, random_state=0).fit(X, text),
        "values": RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y * 0.5),
        "-1/1": IsolationForest(n_estimators=10, random_state=0).fit(X),
    }
    for what, model in models.items():
        skvault.dump(model, tmp_path / "p.skv")
        native = skvault.native.load(tmp_path / "p.skv")
        want = model.predict(plain)
        taken = native._inner.predict_as_is(plain)
        if native.classes_ is None:
            assert taken.dtype == np.float64, what
            assert_same(taken, want, what)
        else:
            assert taken.dtype == np.int64, what
            assert np.array_equal(native.classes_.take(taken), want), what
        got = native.predict(plain)
        assert got.dtype == want.dtype and np.array_equal(got, want), what
        for form, X_other in {
            "Fortran order": np.asfortranarray(plain),
            "float32": plain.astype(np.float32),
            "strided": np.repeat(plain, 2, axis=0)[::2],
            "list": plain.tolist(),
        }.items():
            assert native._inner.predict_as_is(X_other) is None, (what, form)
            want_x = model.predict(np.asarray(X_other, dtype=np.float64))
            assert np.array_equal(native.predict(X_other), want_x), (what, form)
    with pytest.raises(ValueError, match="features"):
        native.predict(plain[:, :3])
