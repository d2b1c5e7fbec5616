"""Score a Dask DataFrame with a native model (``pip install skvault[dask]``).

>>> import skvault.dask, skvault.native
>>> model = skvault.native.load("s3://models/team", name="fraud", alias="champion")  # doctest: +SKIP
>>> proba = skvault.dask.predict(ddf, model, method="predict_proba")                   # doctest: +SKIP

Each partition is scored by native inference on the worker, with no scikit-learn and no
pickle of the model: the task graph carries the model's reference (its source and digest, see
:mod:`skvault.native`), and each worker process opens the file once, checks its digest, and
keeps it for every later task. A worker that cannot open the pinned model fails its task
with :class:`skvault.ModelReferenceError`. ``skvault docs scale`` has the details, and the same
pattern for Ray Data and Spark.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from skvault import native

__all__ = ["predict"]


def _as_model(model: Any) -> native.NativeModel:
    if isinstance(model, native.NativeModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        return native.load(model)
    raise TypeError(
        f"model must be a skvault.native.NativeModel or the path of a .skv file, not {type(model).__name__}"
    )


def _features(model: native.NativeModel, columns: Sequence[Any]) -> list[Any] | None:
    """The frame's columns the model takes, in its fit order, when it knows their names;
    other columns (ids, labels) are left out. A missing one is a ValueError, raised here,
    before anything runs."""
    names = model.feature_names_in_
    if names is None:
        return None
    by_name = {str(c): c for c in columns}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"the DataFrame has no column(s) {missing} that {model.class_name} was fitted on")
    return [by_name[n] for n in names]


def _output_names(model: native.NativeModel, method: str, width: int, columns: Any) -> list[str]:
    if columns is not None:
        names = [columns] if isinstance(columns, str) else list(columns)
        if len(names) != width:
            raise ValueError(f"{method} gives {width} column(s), and columns= names {len(names)}: {names}")
        return names
    if method == "predict_proba" and model.classes_ is not None and len(model.classes_) == width:
        return [f"proba_{c}" for c in model.classes_]
    return [method] if width == 1 else [f"{method}_{i}" for i in range(width)]


def _shape(out: Any, part: Any, names: list[str], frame: bool, keep: list[Any] | None) -> Any:
    """The predictions of ``part`` as a Series or DataFrame on its index; with ``keep``, a
    DataFrame of those input columns followed by the predictions."""
    import pandas as pd

    index = part.index
    if frame or keep is not None:
        out = pd.DataFrame(out.reshape(len(index), len(names)), index=index, columns=names)
        return out if keep is None else pd.concat([part[keep], out], axis=1)
    return pd.Series(out.reshape(len(index)), index=index, name=names[0])


def _score(part: Any, reference: tuple, method: str, features: list[Any] | None,
           names: list[str], frame: bool, dtype: Any, keep: list[Any] | None) -> Any:
    """One partition, on a worker. The model is opened here, from its reference, rather than
    unpickled with the task: a worker fails the task (with the ModelReferenceError) when it
    cannot open it, where an error while unpickling a task would bring the worker down."""
    from skvault import _refs

    model = _refs.reopen(*reference)
    if len(part) == 0:
        import numpy as np

        return _shape(np.empty((0, len(names)), dtype=dtype), part, names, frame, keep)
    X = part if features is None else part[features]
    return _shape(_in_slices(getattr(model, method), X, len(names), dtype), part, names, frame, keep)


# Rows scored at once within a partition: native inference copies its input (to release the
# GIL) and returns a new output, so a whole partition at once would hold those twice more.
SLICE_ROWS = 16_384


def _in_slices(call: Any, X: Any, width: int, dtype: Any) -> Any:
    """``call(X)`` in slices of ``SLICE_ROWS`` rows, written into one output array."""
    import numpy as np

    n = len(X)
    if n <= SLICE_ROWS:
        return call(X)
    out = np.empty((n, width), dtype=dtype)
    for start in range(0, n, SLICE_ROWS):
        got = np.asarray(call(X.iloc[start : start + SLICE_ROWS]))
        out[start : start + len(got)] = got.reshape(len(got), width)
    return out


def _kept(keep_columns: Any, columns: list[Any], names: list[str]) -> list[Any] | None:
    if keep_columns is None or keep_columns is False:
        return None
    keep = list(columns) if keep_columns is True else [keep_columns] if isinstance(keep_columns, str) else list(keep_columns)
    missing = [c for c in keep if c not in columns]
    if missing:
        raise ValueError(f"keep_columns names column(s) {missing} that the DataFrame does not have")
    clash = [n for n in names if n in keep]
    if clash:
        raise ValueError(f"the output column(s) {clash} are also kept input columns: name them with columns=")
    return keep


def predict(
    ddf: Any,
    model: Any,
    method: str = "predict_proba",
    columns: str | Sequence[str] | None = None,
    keep_columns: bool | str | Sequence[str] | None = None,
) -> Any:
    """``method`` of ``model`` on every row of the Dask DataFrame ``ddf``, lazily.

    ``model`` is a :class:`skvault.native.NativeModel` (from :func:`skvault.native.load`, a
    file or a registry version) or the path of a ``.skv`` file. When the model was fitted on
    named features, those columns are taken by name and any others are ignored; otherwise
    every column is a feature, in order.

    Returns a Dask Series when the method gives one value per row (``predict`` of a
    classifier or regressor, a binary ``decision_function``), named ``columns`` (default: the
    method's name); else a Dask DataFrame whose columns are ``columns`` (default
    ``proba_<class>`` for ``predict_proba``, ``<method>_<i>`` otherwise), partition for
    partition with ``ddf`` and on its index. ``keep_columns`` (column names, or ``True`` for
    all) returns a DataFrame of those input columns followed by the predictions, row for row:
    the way to keep ids with their scores (a ``join`` on an index that is not unique, as
    ``read_parquet``'s often is, would not line them up).
    """
    import numpy as np

    model = _as_model(model)
    if method not in model.methods:
        raise AttributeError(f"{model.class_name} has no method {method!r}; it has {model.methods}")
    features = _features(model, list(ddf.columns))
    # The output's shape and dtypes, from the model itself on Dask's two-row stand-in: the
    # driver has the model open already, so nothing is computed on the cluster for it.
    sample = ddf._meta_nonempty
    try:
        probe = np.asarray(getattr(model, method)(sample if features is None else sample[features]))
    except Exception as e:  # noqa: BLE001 - re-raised with what to do about it
        raise ValueError(
            f"cannot work out the output of {model.class_name}.{method} from the DataFrame's "
            f"column types ({e}); are they the ones the model was fitted on?"
        ) from e
    frame = probe.ndim == 2
    width = probe.shape[1] if frame else 1
    names = _output_names(model, method, width, columns)
    keep = _kept(keep_columns, list(ddf.columns), names)
    meta = _shape(np.empty((0, width), dtype=probe.dtype), ddf._meta, names, frame, keep)
    return ddf.map_partitions(
        _score, model._reference(), method, features, names, frame, probe.dtype, keep, meta=meta
    )
