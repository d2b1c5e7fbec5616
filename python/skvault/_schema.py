"""The input schema recorded in a file's metadata (``input_schema``, docs/FORMAT.md section 8).

scikit-learn keeps the names of the columns a model was fitted on (``feature_names_in_``)
but not their dtypes. The schema takes them from the validation DataFrame when ``dump`` is
given one (``"source": "validation"``, the dtypes exactly); otherwise it derives each
column's kind from the fitted model (``"source": "model"``, no dtype): text where an encoder
or imputer was fitted on ``object`` values, ``category`` where a HistGradientBoosting model
took categories from the dtype, ``unused`` for columns a ColumnTransformer drops, numbers
elsewhere.

Like ``_metadata``, this never imports scikit-learn or pandas: it looks at the objects given.
"""

from __future__ import annotations

import math
from typing import Any

#: How deep composite estimators are followed (pipelines in column transformers ...).
_MAX_DEPTH = 20


def is_dataframe(X: Any) -> bool:
    """A pandas DataFrame, recognised without importing pandas (skvault does not depend on
    it); a Series is not one."""
    return type(X).__module__.partition(".")[0] == "pandas" and hasattr(X, "columns")


def _names(obj: Any) -> list[str] | None:
    names = getattr(obj, "feature_names_in_", None)
    if names is None:
        return None
    try:
        out = [str(n) for n in names]
    except TypeError:
        return None
    return out if all(isinstance(n, str) for n in names) else None


def _category_value(v: Any) -> str | float | int | None:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and math.isfinite(v):
        return v
    item = getattr(v, "item", None)
    return _category_value(item()) if callable(item) else None


def _categories(values: Any) -> list[str | float | int] | None:
    out = [_category_value(v) for v in list(values)]
    return None if any(v is None for v in out) else out  # type: ignore[return-value]


def _kind_of_dtype(dtype: Any) -> str:
    name = str(dtype)
    if name == "category":
        return "category"
    if name in ("bool", "boolean"):
        return "boolean"
    kind = getattr(dtype, "kind", None)
    if kind in ("i", "u", "f", "c"):
        return "number"
    if kind == "b":
        return "boolean"
    return "text"


def _from_frame(X: Any, names: list[str]) -> dict[str, Any] | None:
    if not all(n in X.columns for n in names):
        return None
    columns = []
    for name in names:
        dtype = X[name].dtype
        spec: dict[str, Any] = {"name": name, "dtype": str(dtype), "kind": _kind_of_dtype(dtype)}
        if spec["kind"] == "category":
            cats = _categories(dtype.categories)
            if cats is not None:
                spec["categories"] = cats
            spec["ordered"] = bool(dtype.ordered)
        columns.append(spec)
    return {"source": "validation", "columns": columns}


def _is_object_dtype(dtype: Any) -> bool:
    return getattr(dtype, "kind", None) in ("O", "U", "S", "T")


def _kinds(est: Any, names: list[str], depth: int = 0) -> dict[str, dict[str, Any]]:
    """What ``est`` tells of the columns ``names`` it was fitted on: name -> partial spec."""
    if depth > _MAX_DEPTH or not names:
        return {}
    steps = getattr(est, "steps", None)
    if isinstance(steps, list) and steps:
        first = steps[0][1] if isinstance(steps[0], tuple) and len(steps[0]) == 2 else None
        return _kinds(first, names, depth + 1) if first is not None else {}
    to_indices = getattr(est, "_transformer_to_input_indices", None)
    transformers = getattr(est, "transformers_", None)
    if isinstance(to_indices, dict) and isinstance(transformers, list):
        # Columns no transformer reads (dropped ones) need not be given at all.
        found: dict[str, dict[str, Any]] = {n: {"kind": "unused"} for n in names}
        for item in transformers:
            if not (isinstance(item, tuple) and len(item) == 3):
                continue
            name, trans, _ = item
            if isinstance(trans, str) and trans == "drop":
                continue
            indices = to_indices.get(name, [])
            sub = [names[i] for i in indices if isinstance(i, int) and 0 <= i < len(names)]
            for n in sub:
                found[n] = {}
            found.update(_kinds(trans, sub, depth + 1))
        return {n: spec for n, spec in found.items() if spec}
    categories = getattr(est, "categories_", None)
    if isinstance(categories, list) and len(categories) == len(names):
        return {n: {"kind": "text"} for n, c in zip(names, categories) if _is_object_dtype(getattr(c, "dtype", None))}
    fit_dtype = getattr(est, "_fit_dtype", None)
    if fit_dtype is not None and _is_object_dtype(fit_dtype):
        return {n: {"kind": "text"} for n in names}
    pre = getattr(est, "_preprocessor", None)
    mask = getattr(est, "is_categorical_", None)
    if pre is not None and mask is not None:
        return _boosting_kinds(est, pre, names, depth)
    return {}


def _boosting_kinds(est: Any, pre: Any, names: list[str], depth: int) -> dict[str, dict[str, Any]]:
    """HistGradientBoosting's ``_preprocessor`` ordinal-encodes its categorical columns."""
    found: dict[str, dict[str, Any]] = {}
    from_dtype = getattr(est, "categorical_features", None) == "from_dtype"
    to_indices = getattr(pre, "_transformer_to_input_indices", {})
    for item in getattr(pre, "transformers_", []):
        if not (isinstance(item, tuple) and len(item) == 3):
            continue
        name, trans, _ = item
        cats = getattr(trans, "categories_", None)
        if not isinstance(cats, list):
            continue
        indices = [i for i in to_indices.get(name, []) if isinstance(i, int) and 0 <= i < len(names)]
        for i, values in zip(indices, cats):
            if from_dtype:
                spec: dict[str, Any] = {"kind": "category", "dtype": "category"}
                listed = _categories(values)
                if listed is not None:
                    spec["categories"] = listed
                found[names[i]] = spec
            elif _is_object_dtype(getattr(values, "dtype", None)):
                found[names[i]] = {"kind": "text"}
    return found


def input_schema(obj: Any, validation: Any = None) -> dict[str, Any] | None:
    """The schema of the columns ``obj`` was fitted on, or None when it was not fitted on
    named columns."""
    names = _names(obj)
    if names is None:
        return None
    X = validation[0] if isinstance(validation, tuple) and validation else validation
    if is_dataframe(X):
        schema = _from_frame(X, names)
        if schema is not None:
            return schema
    kinds = _kinds(obj, names)
    columns = []
    for name in names:
        spec = {"name": name, "kind": "number", **kinds.get(name, {})}
        columns.append(spec)
    return {"source": "model", "columns": columns}
