"""``skvault.export_onnx``, ``export_json`` and ``import_json`` (see ``skvault docs export``).

The work is done in Rust (``skvault-export``): ONNX is written from the same native model
that ``skvault.native`` predicts with, with no scikit-learn involved; JSON holds the whole
object tree. Every output is written atomically: on error nothing is left at ``out``.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from skvault import _api, _native

PathLike = str | os.PathLike[str]


@contextmanager
def _as_skv(src: Any) -> Iterator[str]:
    """A path to a ``.skv`` file: ``src`` itself, or a fitted estimator dumped to a temporary file."""
    if isinstance(src, (str, os.PathLike)):
        yield os.fspath(src)
        return
    with tempfile.TemporaryDirectory(prefix="skvault-export-") as tmp:
        path = os.path.join(tmp, "model.skv")
        _api.dump(src, path)
        yield path


def export_onnx(src: Any, out: PathLike, *, dtype: str = "float64") -> int:
    """Write ``src`` (a ``.skv`` path or a fitted estimator) as an ONNX model to ``out``.

    ``dtype="float32"`` writes tree ensembles (trees, forests, gradient boosting, isolation
    forests) that run in float32, as skl2onnx does and onnxruntime runs fastest: splits
    stay exact (X is float32 in scikit-learn's trees too), leaf values and their sums lose
    float64's precision (values within 1e-5 relative; a label can differ where two classes
    tie within float32 rounding). The default, ``"float64"``, matches scikit-learn within
    1e-12.

    Input ``X``: double ``[N, n_features]`` (a model that reads text columns: one ``[N, 1]``
    input per column, see :func:`onnx_feed`); outputs ``label`` and ``probabilities``
    (classifiers), ``prediction`` (regressors) or ``transformed`` (transformers), plain
    tensors. Returns the number of bytes written. An estimator the exporter does not
    support raises :class:`skvault.ExportError` naming it, and nothing is written.
    """
    if dtype not in ("float64", "float32"):
        raise ValueError(f'dtype must be "float64" or "float32", not {dtype!r}')
    with _as_skv(src) as path:
        return _native.export_onnx(path, os.fspath(out), float32_trees=dtype == "float32")


def onnx_feed(session: Any, frame: Any) -> dict[str, Any]:
    """The inputs of an exported model that reads text, from a DataFrame (or any mapping of
    column name to 1-d values): ``session.run(None, skvault.onnx_feed(session, df))``.

    ``session`` is an ``onnxruntime.InferenceSession`` of a graph written by
    :func:`export_onnx`. Such a graph has one ``[N, 1]`` input per column the model reads,
    listed with its column in the ``skvault.input`` metadata: string columns get their
    values as text, a missing value (None, NaN, ``pd.NA``) as ``""``; numeric columns get
    float64 (missing values NaN). A graph with the single input ``X`` gets the frame's
    columns as one float64 matrix.
    """
    import json

    import numpy as np

    inputs = session.get_inputs()
    if [i.name for i in inputs] == ["X"]:
        return {"X": np.column_stack([_numbers(frame[c]) for c in frame])}
    meta = session.get_modelmeta().custom_metadata_map
    feed = {}
    for item in json.loads(meta["skvault.input"]):
        values = frame[item["column"]]
        if item["type"] == "string":
            feed[item["name"]] = np.array([_text(v) for v in values], dtype=object).reshape(-1, 1)
        else:
            feed[item["name"]] = _numbers(values).reshape(-1, 1)
    return feed


def _numbers(values: Any) -> Any:
    import numpy as np

    to_numpy = getattr(values, "to_numpy", None)
    if to_numpy is not None:
        return to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


def _text(v: Any) -> str:
    """A text value as the graph takes it: missing values (None, NaN, pd.NA) as ``""``."""
    if v is None or (isinstance(v, float) and v != v) or type(v).__name__ == "NAType":
        return ""
    return str(v)


def export_json(src: Any, out: PathLike) -> None:
    """Write ``src`` (a ``.skv`` path or a fitted estimator) as a portable JSON document
    (schema: ``docs/export.schema.json``) to ``out``."""
    with _as_skv(src) as path:
        _native.export_json(path, os.fspath(out))


def import_json(
    src: PathLike, out: PathLike, *, trusted: Iterable[str] | str | None = None, compress: _api.Compress = None
) -> None:
    """Turn a document written by :func:`export_json` back into the ``.skv`` file ``out``.

    Names outside the default trusted set (plus ``trusted``) raise
    :class:`skvault.UntrustedTypesError`, exactly as :func:`skvault.load` would; a document
    whose arrays do not match their dtype and shape raises :class:`skvault.ExportError`.
    """
    _native.import_json(os.fspath(src), os.fspath(out), _api._names(trusted), compress)
