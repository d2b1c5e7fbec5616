"""Native inference: predict from a ``.skv`` file in Rust, without building Python objects.

>>> import skvault.native
>>> model = skvault.native.load("model.skv")          # doctest: +SKIP
>>> model.predict_proba(X)                            # doctest: +SKIP

``load`` builds a native estimator for every object of the model and validates all of its
state first: an estimator that native inference does not implement raises
:class:`skvault.UnsupportedModelError` naming it, at load time. The methods take anything
numpy can turn into a 2-d float64 array, or a pandas DataFrame (whose columns must be the
model's ``feature_names_in_``; they are taken by name, and text and ``category`` columns go
to the encoders fitted on them) or a pyarrow Table (the same, with dictionary columns as
categories), and release the GIL while they compute. Results
match scikit-learn's (see ``skvault docs native`` for the supported estimators and tolerances).
Nothing in the file is imported or executed, and scikit-learn is not needed.

A model pickles as a reference, never as its arrays: its source (the file's absolute path,
or a registry URI, name and version number) and its digest. Unpickling in another process
opens the file again, refuses it unless the digest is the same (:class:`skvault.ModelReferenceError`)
and keeps one opened model per digest per process, which is what Dask, Ray or Spark workers
need (``skvault docs scale``):

>>> model = skvault.native.load("s3://models/team", name="fraud", alias="champion")  # doctest: +SKIP
>>> len(pickle.dumps(model))   # the URI, "fraud", its version and digests  # doctest: +SKIP
212
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from skvault import _native, _refs, _signing
from skvault._schema import is_dataframe
from skvault.exceptions import ValidationError

# dtype instances: numpy converts `dtype=np.float64` (a type) on every call, which is a
# good part of a one-row call's time.
_FLOAT64 = np.dtype(np.float64)
_INT64 = np.dtype(np.int64)

__all__ = ["NativeModel", "load"]


def _fit_order(columns: list[str], names: list[str] | None) -> list[int] | None:
    """Positions of the model's columns among ``columns``, taken by name when the model has
    feature names (in any order, as ``skvault predict`` takes a CSV header); None when they
    are already in order. A missing or unexpected name is a ValueError naming it."""
    if names is None or columns == names:
        return None
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
        raise ValueError("The feature names should match those that were passed during fit." + detail)
    return [columns.index(n) for n in names]


def _in_fit_order(X: Any, names: list[str] | None) -> Any:
    order = _fit_order([str(c) for c in X.columns], names)
    return X if order is None else X.iloc[:, order]


def _is_arrow_table(X: Any) -> bool:
    # Recognised without importing pyarrow: skvault does not depend on it.
    return type(X).__module__.partition(".")[0] == "pyarrow" and hasattr(X, "column_names") and hasattr(X, "schema")


def _arrow_kind(arrow_type: Any) -> str:
    """How a pyarrow column of this type reaches ``skvault._native`` (see :func:`_kind`)."""
    kind = str(arrow_type)
    if kind.startswith("dictionary<"):
        return "category"
    if kind == "bool" or kind.startswith(("int", "uint", "float", "double", "halffloat")):
        return "numbers"
    return "objects"


def _arrow_column_spec(column: Any, kind: str) -> tuple:
    """A pyarrow column of :func:`_arrow_kind` ``kind`` as ``skvault._native`` takes it:
    numbers and booleans as float64 (nulls as NaN), dictionary columns as codes and dictionary
    (pandas' ``category``), anything else as Python values (nulls as NaN, as ``to_pandas``
    gives them)."""
    if kind == "category":
        combined = column.combine_chunks() if hasattr(column, "combine_chunks") else column
        indices = combined.indices.to_pylist()
        return ("category", [-1 if i is None else i for i in indices], combined.dictionary.to_pylist())
    if kind == "numbers":
        values = column.to_numpy(zero_copy_only=False)
        # A float64 column without nulls comes zero-copy and contiguous, as it is passed.
        return ("numbers", values if values.dtype == _FLOAT64 else values.astype(_FLOAT64))
    # pyarrow has one null; pandas reads a null string as NaN (its "str" dtype), which is
    # what a model fitted on a DataFrame saw for a missing string: "arrow" reads None as NaN.
    return ("arrow", column.to_pylist())


#: What reading a table of one schema takes: its columns in fit order (names, positions
#: in the table, kinds).
ArrowPlan = tuple[list[str], list[int], list[str]]


def _arrow_plan(schema: Any, names: list[str] | None) -> ArrowPlan:
    columns = [str(c) for c in schema.names]
    order = _fit_order(columns, names)
    positions = list(range(len(columns))) if order is None else order
    return [columns[i] for i in positions], positions, [_arrow_kind(schema.field(i).type) for i in positions]


def _arrow_columns(table: Any, plan: ArrowPlan) -> tuple[list[str], list[tuple]]:
    """The table's columns for ``call_frame``; ``plan`` is :func:`_arrow_plan` of its schema."""
    names_out, positions, kinds = plan
    columns = table.columns
    return names_out, [_arrow_column_spec(columns[i], k) for i, k in zip(positions, kinds)]


# Up to this many rows, per-call overheads matter more than per-row costs.
_FEW_ROWS = 32


def _kind(dtype: Any) -> str:
    """How a column of this dtype reaches ``skvault._native``: ``"numbers"`` (numpy's and
    pandas' nullable numbers and booleans: Int64, Float64, boolean), ``"category"`` or
    ``"objects"``. Decided from ``kind`` and ``name`` attributes, not ``str(dtype)``:
    numpy builds that string in Python, microseconds a column, most of a one-row call."""
    if isinstance(dtype, np.dtype):
        return "numbers" if dtype.kind in "biuf" else "objects"
    if getattr(dtype, "name", None) == "category":
        return "category"
    return "numbers" if getattr(dtype, "kind", "O") in "biuf" else "objects"


def _column_spec(values: Any, kind: str | None = None) -> tuple:
    """A column's values (a numpy or pandas extension array) as ``skvault._native`` takes
    them: numbers as float64 (pd.NA as NaN), a category column as its codes and categories,
    anything else as its Python objects (``None``, NaN and ``pd.NA`` kept apart, as
    scikit-learn keeps them)."""
    kind = kind or _kind(values.dtype)
    if kind == "category":
        return ("category", values.codes.tolist(), values.categories.tolist())
    if kind == "numbers":
        if isinstance(values, np.ndarray):
            return ("numbers", np.ascontiguousarray(values, dtype=np.float64))
        return ("numbers", np.ascontiguousarray(values.to_numpy(dtype=np.float64, na_value=np.nan)))
    if isinstance(values, np.ndarray):
        return ("objects", values.astype(object, copy=False).tolist())
    if len(values) <= _FEW_ROWS:
        return _few_objects(values)
    return ("objects", np.asarray(values, dtype=object).tolist())


def _few_objects(values: Any) -> tuple:
    """The scalars ``np.asarray(values, dtype=object)`` gives, for an extension array of a
    few rows, without building an object array (faster for a few rows, far slower for many).
    pandas' Arrow-backed text keeps its values in an Arrow array whose nulls are the dtype's
    missing marker; read there (a microsecond a column), else through the array's own
    iteration. Where that marker is NaN (the ``str`` dtype), the Arrow values go as they are:
    kind ``"arrow"`` reads their ``None`` as NaN."""
    arrow = getattr(values, "_pa_array", None)
    na = getattr(values.dtype, "na_value", None)
    if arrow is not None and getattr(values.dtype, "name", None) in ("str", "string"):
        try:
            items = arrow.to_pylist()
        except (AttributeError, TypeError):
            pass
        else:
            if type(na) is float and na != na:
                return ("arrow", items)
            return ("objects", [na if v is None else v for v in items])
    return ("objects", list(values))


def _column_arrays(X: Any) -> tuple[list[Any], list[str]]:
    """The DataFrame's columns as arrays, in order, with their :func:`_kind`, without building
    a Series for each (a Series costs microseconds, which is most of a one-row prediction).
    pandas keeps columns of one dtype in 2-d blocks; reading the blocks costs a few
    microseconds for the whole frame where taking the columns one by one costs one per
    column, and a block's kind is decided once. The blocks are pandas' internals, so
    anything unexpected falls back to its public column arrays."""
    try:
        n = len(X.columns)
        out: list[Any] = [None] * n
        kinds: list[str] = [""] * n
        for block in X._mgr.blocks:
            values = block.values
            kind = _kind(values.dtype)
            positions = block.mgr_locs.as_array
            if getattr(values, "ndim", 1) == 2:
                for k, i in enumerate(positions):
                    out[i], kinds[i] = values[k], kind
            elif len(positions) == 1:
                out[positions[0]], kinds[positions[0]] = values, kind
            else:
                raise AttributeError("a 1-d block with several columns")
        if any(a is None for a in out):
            raise AttributeError("a column without a block")
        return out, kinds
    except (AttributeError, IndexError, TypeError):
        arrays = getattr(X, "_iter_column_arrays", None)
        found = list(arrays()) if callable(arrays) else [s.array for _, s in X.items()]
        return found, [_kind(a.dtype) for a in found]


def _frame_columns(
    X: Any, names: list[str] | None, order: list[int] | None
) -> tuple[list[str], list[tuple]] | None:
    """The frame's columns for native inference when one of them is not numeric (text,
    category, object), else None (the matrix path is faster). ``order`` is
    :func:`_fit_order` of the frame's columns."""
    arrays, kinds = _column_arrays(X)
    if all(k == "numbers" for k in kinds):
        return None
    positions = range(len(arrays)) if order is None else order
    columns = names if names is not None else [str(c) for c in X.columns]
    specs = []
    for i in positions:
        a, kind = arrays[i], kinds[i]
        # Float columns of a numpy block go as they are (most numeric columns; no call).
        if kind == "numbers" and type(a) is np.ndarray and a.dtype == np.float64 and a.flags.c_contiguous:
            specs.append(("numbers", a))
        else:
            specs.append(_column_spec(a, kind))
    return list(columns), specs


def _frame_to_matrix(X: Any, names: list[str] | None) -> np.ndarray:
    """A numeric DataFrame as a float64 matrix in fit order; nullable columns (pd.NA)
    become NaN."""
    X = _in_fit_order(X, names)
    try:
        return X.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as e:
        text = [str(c) for c, t in zip(X.columns, X.dtypes) if getattr(t, "kind", "O") not in "biuf"]
        raise ValueError(f"non-numeric column(s) {text}: {e}") from e


def _as_matrix(X: Any, names: list[str] | None = None) -> np.ndarray:
    if is_dataframe(X):
        X = _frame_to_matrix(X, names)
    X = np.asarray(X)
    if X.dtype == object:
        X = X.astype(np.float64)
    # Aligned as well: a float64 view at an odd offset of a buffer is C-contiguous, and
    # ascontiguousarray would hand it over as it is.
    X = np.require(X, dtype=np.float64, requirements=["C", "A"])
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-d array, got {X.ndim}-d; reshape with X.reshape(1, -1) for a single "
            "row or X.reshape(-1, 1) for a single feature"
        )
    return X


def _matrix(out: tuple) -> np.ndarray:
    data, n_rows, n_cols, flat = out
    # A view of the bytearray with its shape, in one call (frombuffer, then reshape: two).
    return np.ndarray((n_rows * n_cols,) if flat else (n_rows, n_cols), _FLOAT64, data)


class NativeModel:
    """A model loaded by :func:`load`. Has the methods of the estimator it was saved from."""

    def __init__(self, inner: _native.NativeModel, source: _refs.Source | None = None) -> None:
        self._inner = inner
        self._source = source
        self._feature_names = self._names()
        # Asked on every call: a set, not a call into the extension.
        self._methods = frozenset(inner.methods)
        self._order_cache: tuple[Any, list[int] | None] | None = None
        self._arrow_cache: tuple[Any, ArrowPlan] | None = None
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
    def digest(self) -> str:
        """The file's manifest digest (BLAKE3, hex; FORMAT.md 2.1): it covers every array's
        digest, so it names the model's content. Pickles pin it."""
        return self._inner.digest

    @property
    def source(self) -> str | None:
        """Where the model was loaded from: the file's absolute path, or
        ``"<registry URI> <name>@<version>"``."""
        return None if self._source is None else str(self._source)

    def _reference(self) -> tuple:
        """What ``skvault._refs.reopen`` takes to open this model again in another process."""
        if self._source is None:
            raise TypeError("this NativeModel has no source to pickle: load it with skvault.native.load")
        return (self._source.location, self.digest, self._source.registry)

    def __reduce__(self) -> tuple:
        # A reference, never the arrays: see the module's docstring and skvault._refs.
        return (_refs.reopen, self._reference())

    def __dask_tokenize__(self) -> tuple[str, str]:
        # Dask names tasks by their arguments: the digest names the model without hashing it.
        return ("skvault.native.NativeModel", self.digest)

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

    def _names(self) -> list[str] | None:
        names = self._inner.feature_names_in
        return None if names is None else list(names)

    def _arrow_order(self, table: Any) -> ArrowPlan:
        """:func:`_arrow_plan` of the table's schema, kept for the last schema seen (equal
        schemas, compared field by field, share it: each one-row table has its own)."""
        schema = table.schema
        cached = self._arrow_cache
        if cached is not None and cached[0].equals(schema):
            return cached[1]
        plan = _arrow_plan(schema, self._feature_names)
        self._arrow_cache = (schema, plan)
        return plan

    def _frame_order(self, X: Any) -> list[int] | None:
        """:func:`_fit_order` of the frame's columns. pandas' column indexes are immutable,
        so the answer for the last index seen is kept (with the index, so that its identity
        cannot be reused): a loop of one-row frames cut from one DataFrame asks once."""
        columns = X.columns
        cached = self._order_cache
        if cached is not None and cached[0] is columns:
            return cached[1]
        order = _fit_order([str(c) for c in columns], self._feature_names)
        self._order_cache = (columns, order)
        return order

    def _check(self, method: str) -> None:
        if method not in self._methods:
            raise AttributeError(f"{self.class_name} has no method {method}")

    def _call(self, method: str, X: Any) -> tuple:
        """``method`` on ``X``: a frame with text or category columns goes to the encoders
        as it is; anything else as a float64 matrix. (What the extension takes as it is, an
        aligned float64 C-contiguous ``numpy.ndarray``, never comes here: the methods hand it
        over first.)"""
        self._check(method)
        if is_dataframe(X):
            frame = _frame_columns(X, self._feature_names, self._frame_order(X))
            if frame is not None:
                return self._inner.call_frame(method, *frame)
        elif _is_arrow_table(X):
            return self._inner.call_frame(method, *_arrow_columns(X, self._arrow_order(X)))
        x = _as_matrix(X, self._feature_names)
        out = getattr(self._inner, method)(x)
        return out if method == "predict" else ("values", *out)

    def predict(self, X: Any) -> np.ndarray:
        # One call for what the extension takes as it is (see `_values`): a classifier's
        # labels come back as indices into classes_.
        if "predict" in self._methods:
            out = self._inner.predict_as_is(X)
            if out is not None:
                return out if self.classes_ is None else self.classes_.take(out)
        kind, data, n_rows, n_cols, flat = self._call("predict", X)
        if kind == "labels":
            return self.classes_.take(np.frombuffer(data, _INT64))
        return _matrix((data, n_rows, n_cols, flat))

    def _values(self, method: str, X: Any) -> np.ndarray:
        """A method that returns numbers: what the extension takes as it is (a float64
        C-contiguous ``numpy.ndarray``, checked there) goes straight to it, which returns
        the array, in one call: on one row through a large forest, the Python layer's
        checks and calls were a tenth of the latency. Anything else is converted first."""
        self._check(method)
        out = self._inner.matrix_as_is(method, X)
        if out is not None:
            return out
        return _matrix(self._call(method, X)[1:])

    def predict_proba(self, X: Any) -> np.ndarray:
        # `_values` written out: a one-row call's latency counts the Python calls.
        if "predict_proba" in self._methods:
            out = self._inner.matrix_as_is("predict_proba", X)
            if out is not None:
                return out
        return _matrix(self._call("predict_proba", X)[1:])

    def decision_function(self, X: Any) -> np.ndarray:
        return self._values("decision_function", X)

    def transform(self, X: Any) -> np.ndarray:
        return self._values("transform", X)

    def score_samples(self, X: Any) -> np.ndarray:
        return self._values("score_samples", X)

    def prepare_few_rows(self) -> bool:
        """Build now what the first prediction on fewer than 8 rows builds otherwise: a
        forest's one-row layout (16 bytes a node and a leaf; batches never use it). For a
        service whose first request should be as fast as the next; ``skvault serve`` does
        it when it loads a model. Returns whether the model has such a layout.
        """
        return self._inner.prepare_few_rows()

    def validate(self) -> dict[str, Any]:
        """Re-check the validation rows stored in the file (``dump(..., validation=...)``)
        with native inference, without scikit-learn: labels must match exactly, numbers
        within the tolerance ``load(..., validate=True)`` uses.

        Returns ``{"n_rows", "methods" (checked), "skipped" (method -> reason)}``; outputs
        native inference cannot compare (a sparse matrix, a list of arrays) are skipped,
        never counted as passed. Raises :class:`skvault.ValidationError` on a mismatch or
        when the file has no validation rows.
        """
        out = self._inner.validate()
        if out is None:
            raise ValidationError(
                "(none)", 0, None, "the file has no validation samples: save it with dump(..., validation=X)"
            )
        n_rows, methods, skipped = out
        return {"n_rows": n_rows, "methods": list(methods), "skipped": dict(skipped)}

    def __repr__(self) -> str:
        return f"<skvault.native.NativeModel {self.class_name} ({', '.join(self.methods)})>"


def load(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    version: int | None = None,
    alias: str | None = None,
    storage_options: Any = None,
    require_signature: _signing.Policy = None,
) -> NativeModel:
    """Builds the model of a ``.skv`` file for native inference (digests are checked).

    With ``name``, ``path`` is a registry (a folder, ``file:///...`` or ``s3://bucket/prefix``,
    as :class:`skvault.Registry` takes it, with its ``storage_options``): the model is
    ``name``'s ``version``, or the one ``alias`` points at now, or the latest. The alias is
    resolved once, here: the model (and its pickles) stay pinned to that version's number and
    digest. The file is fetched into the local cache (``$SKVAULT_CACHE_DIR``, else the
    platform's cache folder) once per machine.

    ``require_signature`` is as for :func:`skvault.load`: under a policy (given, or
    ``SKVAULT_TRUSTED_KEYS``), the file's signature (embedded, beside it, or the registry
    version's) is checked before the model is built. A pickled model does not carry the
    policy: each process that unpickles it applies its own (``SKVAULT_TRUSTED_KEYS``).
    """
    if name is None:
        given = [k for k, v in (("version", version), ("alias", alias), ("storage_options", storage_options)) if v is not None]
        if given:
            raise TypeError(f"{', '.join(given)} apply to a registry: pass name= too")
        absolute = os.path.abspath(os.fspath(path))
        model = NativeModel(
            _native.native_load(absolute, **_signing.policy_args(require_signature)), _refs.Source(absolute)
        )
    else:
        from skvault.registry import _selector

        _selector(version, alias)
        source, cached = _refs.resolve(os.fspath(path), name, version, alias, storage_options)
        model = NativeModel(_refs.open_checked(cached, source, None, require_signature), source)
    _refs.remember(model)
    return model
