"""Native inference: predict from a ``.skv`` file in Rust, without building Python objects.

>>> import skvault.native
>>> model = skvault.native.load("model.skv")          # doctest: +SKIP
>>> model.predict_proba(X)                            # doctest: +SKIP

``load`` builds a native estimator for every object of the model and validates all of its
state first: an estimator that native inference does not implement raises
:class:`skvault.UnsupportedModelError` naming it, at load time. The methods take anything
numpy can turn into a 2-d float64 array, or a pandas DataFrame (whose columns must be the
model's ``feature_names_in_``; they are taken by name), and release the GIL while they
compute. Results
match scikit-learn's (see ``skvault docs native`` for the supported estimators and tolerances).
Nothing in the file is imported or executed, and scikit-learn is not needed.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from skvault import _native

__all__ = ["NativeModel", "load"]


def _is_dataframe(X: Any) -> bool:
    # Recognised without importing pandas: skvault does not depend on it.
    return type(X).__module__.partition(".")[0] == "pandas" and hasattr(X, "columns")


def _frame_to_matrix(X: Any, names: list[str] | None) -> np.ndarray:
    """Columns are taken by name when the model has feature names (in any order, as
    ``skvault predict`` takes a CSV header); a missing or unexpected name is a ValueError
    naming it. Nullable columns (pd.NA) become NaN; text columns are refused."""
    columns = [str(c) for c in X.columns]
    if names is not None and columns != names:
        missing = [n for n in names if n not in columns]
        unexpected = [c for c in columns if c not in names]
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if missing or unexpected or twice:
            detail = ""
            if unexpected:
                detail += f" Feature names unseen at fit time: {unexpected}."
            if missing:
                detail += f" Feature names seen at fit time, yet now missing: {missing}."
            if twice:
                detail += f" Feature names given more than once: {twice}."
            raise ValueError(
                "The feature names should match those that were passed during fit." + detail
            )
        X = X.iloc[:, [columns.index(n) for n in names]]
    try:
        return X.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as e:
        text = [str(c) for c, t in zip(X.columns, X.dtypes) if getattr(t, "kind", "O") not in "biuf"]
        raise ValueError(f"non-numeric column(s) {text}: {e}") from e


def _as_matrix(X: Any, names: list[str] | None = None) -> np.ndarray:
    if _is_dataframe(X):
        X = _frame_to_matrix(X, names)
    X = np.asarray(X)
    if X.dtype == object:
        X = X.astype(np.float64)
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-d array, got {X.ndim}-d; reshape with X.reshape(1, -1) for a single "
            "row or X.reshape(-1, 1) for a single feature"
        )
    return X


def _matrix(out: tuple) -> np.ndarray:
    data, n_rows, n_cols, flat = out
    values = np.frombuffer(data, dtype=np.float64)
    return values if flat else values.reshape(n_rows, n_cols)


class NativeModel:
    """A model loaded by :func:`load`. Has the methods of the estimator it was saved from."""

    def __init__(self, inner: _native.NativeModel) -> None:
        self._inner = inner
        classes = inner.classes
        # For IsolationForest these are the labels predict returns (-1, 1), as numbers.
        if classes is None:
            self.classes_ = None
        else:
            labels, dtype = classes
            self.classes_ = np.array(labels, dtype=np.dtype(dtype))

    @property
    def class_name(self) -> str:
        """The qualified class name of the saved estimator."""
        return self._inner.class_name

    @property
    def n_features_in_(self) -> int:
        return self._inner.n_features_in

    @property
    def feature_names_in_(self) -> np.ndarray | None:
        names = self._inner.feature_names_in
        return None if names is None else np.array(names, dtype=object)

    @property
    def methods(self) -> list[str]:
        """The methods this model has (``predict``, ``predict_proba``, ...)."""
        return list(self._inner.methods)

    def _input(self, X: Any) -> np.ndarray:
        names = self._inner.feature_names_in
        return _as_matrix(X, None if names is None else list(names))

    def _check(self, method: str) -> None:
        if not self._inner.has(method):
            raise AttributeError(f"{self.class_name} has no method {method}")

    def predict(self, X: Any) -> np.ndarray:
        self._check("predict")
        kind, data, n_rows, n_cols, flat = self._inner.predict(self._input(X))
        if kind == "labels":
            return self.classes_.take(np.frombuffer(data, dtype=np.int64))
        return _matrix((data, n_rows, n_cols, flat))

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check("predict_proba")
        return _matrix(self._inner.predict_proba(self._input(X)))

    def decision_function(self, X: Any) -> np.ndarray:
        self._check("decision_function")
        return _matrix(self._inner.decision_function(self._input(X)))

    def transform(self, X: Any) -> np.ndarray:
        self._check("transform")
        return _matrix(self._inner.transform(self._input(X)))

    def score_samples(self, X: Any) -> np.ndarray:
        self._check("score_samples")
        return _matrix(self._inner.score_samples(self._input(X)))

    def __repr__(self) -> str:
        return f"<skvault.native.NativeModel {self.class_name} ({', '.join(self.methods)})>"


def load(path: str | os.PathLike[str]) -> NativeModel:
    """Builds the model of a ``.skv`` file for native inference (digests are checked)."""
    return NativeModel(_native.native_load(os.fspath(path)))
