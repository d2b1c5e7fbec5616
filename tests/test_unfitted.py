"""An estimator saved before fit: `dump` warns (`skvault.UnfittedEstimatorWarning`, from
scikit-learn's `check_is_fitted`), and native inference and export say that it is not fitted
(`skvault.NotFittedError`) instead of naming the first fitted attribute they miss."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import skvault

X = np.random.default_rng(0).random((40, 3))
y = (X[:, 0] > 0.5).astype(int)

UNFITTED = {
    "logreg": lambda: LogisticRegression(),
    "forest": lambda: RandomForestClassifier(n_estimators=3, random_state=0),
    "pipeline": lambda: Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]),
    "scaler": lambda: StandardScaler(),
}


def cli(*args) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "skvault", *map(str, args)], capture_output=True, text=True)


def _dump_unfitted(name, path):
    with pytest.warns(skvault.UnfittedEstimatorWarning, match="not fitted") as record:
        skvault.dump(UNFITTED[name](), path)
    assert record[0].filename == __file__  # points at the caller's dump()
    return path


@pytest.mark.parametrize("name", sorted(UNFITTED))
def test_dump_and_dumps_warn_about_an_unfitted_estimator(name, tmp_path):
    _dump_unfitted(name, tmp_path / "m.skv")
    assert issubclass(skvault.UnfittedEstimatorWarning, UserWarning)
    with pytest.warns(skvault.UnfittedEstimatorWarning):
        data = skvault.dumps(UNFITTED[name]())
    # Still written and loadable: it is the user's model, only not fitted.
    assert type(skvault.loads(data)) is type(UNFITTED[name]())
    fitted = UNFITTED[name]().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", skvault.UnfittedEstimatorWarning)
        skvault.dumps(fitted)
        skvault.dumps({"not an estimator": [1, 2]})


@pytest.mark.parametrize("name", sorted(UNFITTED))
def test_native_load_and_predict_say_not_fitted(name, tmp_path):
    path = _dump_unfitted(name, tmp_path / "m.skv")
    with pytest.raises(skvault.NotFittedError) as info:
        skvault.native.load(path)
    message = str(info.value)
    assert "is not fitted" in message and "missing attribute" not in message, message
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)
    np.save(tmp_path / "x.npy", X)
    result = cli("predict", path, tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert result.returncode == 2, result
    assert "is not fitted" in result.stderr and "missing attribute" not in result.stderr
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("name", sorted(UNFITTED))
def test_onnx_export_says_not_fitted(name, tmp_path):
    path = _dump_unfitted(name, tmp_path / "m.skv")
    with pytest.raises(skvault.NotFittedError, match="is not fitted") as info:
        skvault.export_onnx(path, tmp_path / "m.onnx")
    assert "missing attribute" not in str(info.value)
    assert not (tmp_path / "m.onnx").exists()
    with pytest.warns(skvault.UnfittedEstimatorWarning), pytest.raises(skvault.NotFittedError):
        skvault.export_onnx(UNFITTED[name](), tmp_path / "direct.onnx")
    result = cli("export", path, tmp_path / "m.onnx")
    assert result.returncode == 2, result
    assert "is not fitted" in result.stderr and "missing attribute" not in result.stderr
    assert not (tmp_path / "m.onnx").exists()
    # The portable JSON document is the whole tree, not a native model: an unfitted estimator
    # is written as it is and comes back as it was.
    skvault.export_json(path, tmp_path / "m.json")
    skvault.import_json(tmp_path / "m.json", tmp_path / "back.skv")
    assert type(skvault.load(tmp_path / "back.skv")) is type(UNFITTED[name]())


def test_a_fitted_model_with_state_removed_is_still_malformed_not_unfitted(tmp_path):
    """Only an estimator with no fitted attribute at all is "not fitted": one whose state lost
    a single attribute is a damaged (or hostile) file, reported as such."""
    model = LogisticRegression().fit(X, y)
    del model.coef_
    path = tmp_path / "m.skv"
    skvault.dump(model, path)
    with pytest.raises(skvault.FormatError, match="missing attribute") as info:
        skvault.native.load(path)
    assert not isinstance(info.value, skvault.NotFittedError)
