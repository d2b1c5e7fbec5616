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


def export_onnx(src: Any, out: PathLike) -> int:
    """Write ``src`` (a ``.skv`` path or a fitted estimator) as an ONNX model to ``out``.

    Input ``X``: double ``[N, n_features]``; outputs ``label`` and ``probabilities``
    (classifiers), ``prediction`` (regressors) or ``transformed`` (transformers), plain
    tensors. Returns the number of bytes written. An estimator the exporter does not
    support raises :class:`skvault.ExportError` naming it, and nothing is written.
    """
    with _as_skv(src) as path:
        return _native.export_onnx(path, os.fspath(out))


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
