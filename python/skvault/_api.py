"""The public functions: thin wrappers that normalise arguments for the Rust core."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any, Literal

from skvault import _native
from skvault._metadata import collect_metadata

Compress = Literal["zstd", "lz4"] | None
PathLike = str | os.PathLike[str]


def _names(trusted: Iterable[str] | str | None) -> list[str]:
    if trusted is None:
        return []
    if isinstance(trusted, str):
        return [trusted]
    names = list(trusted)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"trusted names must be strings, got {type(name).__name__}")
    return names


def _path(path: PathLike) -> str:
    if isinstance(path, (bytes, bytearray)):
        raise TypeError("path must be a str or os.PathLike, not bytes (use skvault.loads for data)")
    return os.fspath(path)


def dump(obj: Any, path: PathLike, *, compress: Compress = None, level: int | None = None) -> None:
    """Save ``obj`` (a fitted estimator or any supported object graph) to ``path``.

    The write is atomic: the file appears complete at ``path`` or not at all, and an
    existing file is replaced only once the new one is safely on disk.

    ``compress`` picks a codec for the arrays (``"zstd"`` or ``"lz4"``); ``level`` is
    the zstd level (default 3). Uncompressed files can be loaded with ``mmap=True``.
    """
    metadata = json.dumps(collect_metadata(obj))
    _native.dump(obj, _path(path), compress=compress, level=level, metadata=metadata)


def dumps(obj: Any, *, compress: Compress = None, level: int | None = None) -> bytes:
    """Return the bytes of the ``.skv`` file that ``dump`` would write."""
    metadata = json.dumps(collect_metadata(obj))
    return _native.dumps(obj, compress=compress, level=level, metadata=metadata)


def load(
    path: PathLike,
    *,
    trusted: Iterable[str] | None = None,
    mmap: bool = False,
    verify: bool | None = None,
) -> Any:
    """Load an object saved with :func:`dump`.

    Nothing is imported or called unless its exact qualified name is in the default
    allow-list or in ``trusted``; otherwise :class:`UntrustedTypesError` lists every
    offending name before anything is created.

    With ``mmap=True`` uncompressed arrays are read-only views of the mapped file (no
    copy); the file must not be modified while they are in use. ``verify`` checks
    every array's digest; by default it does, except for mapped arrays.
    """
    return _native.load(_path(path), trusted=_names(trusted), mmap=mmap, verify=verify)


def loads(data: bytes, *, trusted: Iterable[str] | None = None, verify: bool = True) -> Any:
    """Load an object from the bytes returned by :func:`dumps`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    return _native.load(bytes(data), trusted=_names(trusted), verify=verify)


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
