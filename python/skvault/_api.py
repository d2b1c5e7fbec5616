"""The public functions: thin wrappers that normalise arguments for the Rust core."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Literal

from skvault import _native, _validation, _versions
from skvault._metadata import collect_metadata
from skvault.exceptions import ValidationError

Compress = Literal["zstd", "lz4"] | None
PathLike = str | os.PathLike[str]


def _names(trusted: Iterable[str] | str | None, argument: str = "trusted") -> list[str]:
    """The qualified names passed as ``trusted=``: ``None`` (none), one name as a ``str``, or
    any iterable of ``str``. Every public function taking ``trusted=`` goes through here, so
    a single string is never iterated character by character."""
    if trusted is None:
        return []
    if isinstance(trusted, str):
        return [trusted]
    if isinstance(trusted, (bytes, bytearray, memoryview)) or not isinstance(trusted, Iterable):
        raise TypeError(
            f"{argument} must be a qualified name (str) or an iterable of them, not {type(trusted).__name__}"
        )
    names = list(trusted)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{argument} names must be strings, got {type(name).__name__}: {name!r}")
    return names


def _path(path: PathLike) -> str:
    if isinstance(path, (bytes, bytearray)):
        raise TypeError("path must be a str or os.PathLike, not bytes (use skvault.loads for data)")
    return os.fspath(path)


def _prepare(obj: Any, metadata: Any, metrics: Any, validation: Any) -> tuple[dict[str, Any], Any]:
    record = collect_metadata(obj, user=metadata, metrics=metrics)
    tree = None
    if validation is not None:
        tree, record["validation"] = _validation.build(obj, validation)
    return record, tree


def dump(
    obj: Any,
    path: PathLike,
    *,
    compress: Compress = None,
    level: int | None = None,
    metadata: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    validation: Any = None,
) -> None:
    """Save ``obj`` (a fitted estimator or any supported object graph) to ``path``.

    The write is atomic: the file appears complete at ``path`` or not at all, and an
    existing file is replaced only once the new one is safely on disk.

    ``compress`` picks a codec for the arrays (``"zstd"`` or ``"lz4"``); ``level`` is
    the zstd level (default 3). Uncompressed files can be loaded with ``mmap=True``.

    The file records the environment, the estimator's class, parameters, features and
    classes automatically; ``metadata`` adds your own JSON fields and ``metrics`` numeric
    scores. ``validation=X`` or ``(X, y)`` stores up to 100 rows and the model's outputs
    on them, re-checked by ``load(..., validate=True)``.
    """
    meta, tree = _prepare(obj, metadata, metrics, validation)
    _native.dump(obj, _path(path), compress=compress, level=level, metadata=meta, validation=tree)


def dumps(
    obj: Any,
    *,
    compress: Compress = None,
    level: int | None = None,
    metadata: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    validation: Any = None,
) -> bytes:
    """Return the bytes of the ``.skv`` file that ``dump`` would write."""
    meta, tree = _prepare(obj, metadata, metrics, validation)
    return _native.dumps(obj, compress=compress, level=level, metadata=meta, validation=tree)


def _mmap_mode(mmap: bool | str) -> str | None:
    if mmap is False:
        return None
    if mmap is True:
        return "r"
    if mmap in ("r", "c"):
        return mmap
    raise ValueError(f'mmap must be False, True, "r" or "c", not {mmap!r}')


def _load(
    source: str | bytes,
    trusted: Iterable[str] | None,
    mmap: bool | str,
    verify: bool | None,
    validate: bool,
    on_version_mismatch: _versions.Policy,
) -> Any:
    def before_build(environment: Any) -> None:
        _versions.check(environment, on_version_mismatch)

    result = _native.load(
        source,
        trusted=_names(trusted),
        mmap=_mmap_mode(mmap),
        verify=verify,
        with_validation=validate,
        before_build=before_build,
    )
    if not validate:
        return result
    model, samples = result
    if samples is None:
        raise ValidationError(
            "(none)", 0, None, "the file has no validation samples: save it with dump(..., validation=X)"
        )
    _validation.check(model, samples)
    return model


def load(
    path: PathLike,
    *,
    trusted: Iterable[str] | None = None,
    mmap: bool | Literal["r", "c"] = False,
    verify: bool | None = None,
    validate: bool = False,
    on_version_mismatch: _versions.Policy = None,
) -> Any:
    """Load an object saved with :func:`dump`.

    Nothing is imported or called unless its exact qualified name is in the default
    allow-list or in ``trusted``; otherwise :class:`UntrustedTypesError` lists every
    offending name before anything is created.

    With ``mmap=True`` (or ``"r"``) uncompressed arrays are read-only views of the mapped
    file (no copy); the file must not be modified while they are in use. Some estimators
    (e.g. SVC, through libsvm) need writable arrays: ``mmap="c"`` maps the file
    copy-on-write, so arrays are writable views and writes never reach the file (as
    joblib's ``mmap_mode="c"``). ``verify`` checks every array's digest; by default it
    does, except for mapped arrays.

    The scikit-learn and numpy versions the file was saved with are compared with the
    installed ones: a different major version raises :class:`VersionMismatchError`, a
    different minor version warns (:class:`VersionMismatchWarning`);
    ``on_version_mismatch`` ("error", "warn", "ignore") overrides that. ``validate=True``
    recomputes the outputs recorded on the validation rows and raises
    :class:`ValidationError` if they differ.
    """
    return _load(_path(path), trusted, mmap, verify, validate, on_version_mismatch)


def loads(
    data: bytes,
    *,
    trusted: Iterable[str] | None = None,
    verify: bool = True,
    validate: bool = False,
    on_version_mismatch: _versions.Policy = None,
) -> Any:
    """Load an object from the bytes returned by :func:`dumps`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    return _load(bytes(data), trusted, False, verify, validate, on_version_mismatch)


def inspect(source: PathLike | bytes) -> dict[str, Any]:
    """The file's manifest as a dict: metadata, parameters, arrays, object tree, untrusted names.

    Reads the manifest only; nothing is imported or built.
    """
    src = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else _path(source)
    return _native.describe(src)


def get_untrusted_types(
    source: PathLike | bytes, *, trusted: Iterable[str] | None = None
) -> list[str]:
    """List the qualified names a file needs beyond the default allow-list (and ``trusted``).

    Nothing is imported: this reads only the manifest, through the same check ``load`` uses.
    """
    src = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else _path(source)
    return _native.get_untrusted_types(src, trusted=_names(trusted))


def verify(path: PathLike) -> None:
    """Check the digest of every array; raise :class:`IntegrityError` on the first mismatch."""
    _native.verify(_path(path))


def default_trusted() -> list[str]:
    """The default allow-list of qualified names, sorted."""
    return list(_native.default_trusted())
