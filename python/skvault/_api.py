"""The public functions: thin wrappers that normalise arguments for the Rust core."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from typing import Any, BinaryIO, Literal, Union

from skvault import _native, _schema, _signing, _validation, _versions
from skvault._metadata import collect_metadata, warn_if_unfitted
from skvault.exceptions import InvalidOptionError, TrustedNamesError, ValidationError

#: What ``compress=`` takes: a codec name, joblib's forms (``True``, an integer level, a
#: ``(name, level)`` pair), or nothing.
Compress = Union[Literal["zstd", "lz4"], bool, int, tuple[str, Union[int, Literal["archive"]]], None]
#: What ``level=`` takes: a zstd level, ``"archive"`` (the archival setting), or nothing.
Level = Union[int, Literal["archive"], None]
PathLike = str | os.PathLike[str]

#: Codecs joblib offers that skvault does not write, and what to use instead.
_JOBLIB_ONLY = ("zlib", "gzip", "bz2", "lzma", "xz")


def _archive(compress: Any, level: Any) -> tuple[str | None, Any]:
    """``level="archive"``: zstd at the archival level (with ``compress`` left out, zstd too)."""
    if level != "archive":
        if isinstance(level, str):
            raise TypeError(f"level must be an integer zstd level or 'archive', not {level!r}")
        return compress, level
    if not (compress is None or compress is True or compress == "zstd"):
        raise InvalidOptionError(f"level='archive' is a zstd setting: compress={compress!r} cannot take it")
    return "zstd", _native.ARCHIVE_LEVEL


def _codec(compress: Any, level: Any) -> tuple[str | None, int | None]:
    """``compress``/``level`` as the codec name and zstd level the core takes.

    joblib's spellings map as a joblib user expects: ``True`` is zstd at its default level,
    ``False``/``0`` no compression, an integer ``1..22`` zstd at that level, and
    ``(name, level)`` that codec (level 0: none) (lz4 has no levels: its level is ignored, as joblib's lz4
    ignores most). Names skvault does not write (zlib, gzip, bz2, lzma, xz) are refused with
    the advice to use zstd. ``level="archive"`` (also as ``("zstd", "archive")``) is zstd
    at the archival level.
    """
    if isinstance(level, str):
        return _archive(compress, level)
    if compress is None or compress is False:
        return None, level
    if compress is True:
        return "zstd", level
    pair = isinstance(compress, (tuple, list))
    if isinstance(compress, int) or pair:
        if pair:
            if len(compress) != 2 or not isinstance(compress[0], str):
                raise InvalidOptionError(f"compress=(name, level) expected, got {compress!r}")
            name, given = compress
        else:
            name, given = ("zstd", compress) if compress else (None, None)
        if level is not None and given is not None:
            raise InvalidOptionError(f"compress={compress!r} already sets the level: leave out level={level!r}")
        if name is None or given == 0:
            return None, level  # joblib: level 0 is no compression
        if isinstance(given, str):
            return _archive(name, given)
        if name == "lz4":
            return "lz4", None
        compress, level = name, given
    if isinstance(compress, str) and compress in _JOBLIB_ONLY:
        raise InvalidOptionError(
            f"compress={compress!r}: skvault writes zstd or lz4 (zstd at level 3 is smaller than "
            f"{compress} and much faster; level='archive' for archives)"
        )
    return _archive(compress, level)


def _is_path(obj: Any) -> bool:
    return isinstance(obj, (str, bytes, bytearray, os.PathLike))


def _is_writable_file(obj: Any) -> bool:
    """An open file to write to (joblib accepts these for ``dump``)."""
    return not _is_path(obj) and callable(getattr(obj, "write", None))


def _is_readable_file(obj: Any) -> bool:
    """An open file to read from (joblib accepts these for ``load``)."""
    return not _is_path(obj) and callable(getattr(obj, "read", None))


def _read_file(f: Any) -> bytes:
    data = f.read()
    if isinstance(data, str) or isinstance(f, io.TextIOBase):
        raise TypeError("the file is open in text mode: open it with 'rb'")
    return bytes(data)


def _names(trusted: Iterable[str] | str | None, argument: str = "trusted") -> list[str]:
    """The qualified names passed as ``trusted=``: ``None`` (none), one name as a ``str``, or
    any iterable of ``str``. Every public function taking ``trusted=`` goes through here, so
    a single string is never iterated character by character."""
    if trusted is None:
        return []
    if isinstance(trusted, str):
        return [trusted]
    if isinstance(trusted, (bytes, bytearray, memoryview)) or not isinstance(trusted, Iterable):
        raise TrustedNamesError(
            f"{argument} must be a qualified name (str) or an iterable of them, not {type(trusted).__name__}"
        )
    names = list(trusted)
    for name in names:
        if not isinstance(name, str):
            raise TrustedNamesError(
                f"{argument} names must be strings (qualified names), got {type(name).__name__}: {name!r}"
            )
    return names


def _path(path: PathLike) -> str:
    if isinstance(path, (bytes, bytearray)):
        raise TypeError("path must be a str or os.PathLike, not bytes (use skvault.loads for data)")
    return os.fspath(path)


def _prepare(obj: Any, metadata: Any, metrics: Any, validation: Any) -> tuple[dict[str, Any], Any]:
    warn_if_unfitted(obj, stacklevel=3)  # at the caller of dump / dumps
    record = collect_metadata(obj, user=metadata, metrics=metrics)
    schema = _schema.input_schema(obj, validation)
    if schema is not None:
        record["input_schema"] = schema
    tree = None
    if validation is not None:
        tree, record["validation"] = _validation.build(obj, validation)
    return record, tree


def dump(
    obj: Any,
    path: PathLike | BinaryIO,
    *,
    compress: Compress = None,
    level: Level = None,
    metadata: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    validation: Any = None,
    durable: bool = True,
) -> None:
    """Save ``obj`` (a fitted estimator or any supported object graph) to ``path``.

    The write is atomic: the file appears complete at ``path`` or not at all, and an
    existing file is replaced only once the new one is safely on disk.

    ``durable=False`` keeps the atomic rename but skips the flushes to the disk (``fsync``
    of the file and of its folder): faster, and other processes still never see a partial
    file, but after a power loss or an OS crash the new file may be missing or empty. Use
    it for checkpoints, caches and tests that can be redone; keep the default for models
    you ship. A large file that is replaced (from 32 MB, on a local file system) is let go
    on a thread of its own after the rename, so the save does not wait for the kernel to
    free it.

    ``compress`` picks a codec for the arrays (``"zstd"`` or ``"lz4"``); ``level`` is
    the zstd level (default 3). joblib's forms work too: ``compress=True`` (zstd),
    ``compress=3`` (zstd at level 3; ``0`` none), ``compress=("zstd", 9)``,
    ``compress=("lz4", 1)`` (lz4 has no levels). Uncompressed files can be loaded with
    ``mmap=True``.

    ``level="archive"`` is the archival setting: zstd at a higher level (10, a few times
    slower to save than the default, as fast to load) for files that are written once and
    kept or shipped. On a random forest it is smaller than joblib's ``compress=("lzma", 3)``
    in a fraction of its time. Both settings store tree-node arrays column by column, with
    child indices delta-coded and small integers narrowed (format 1.4).

    ``path`` may also be an open binary file (as joblib allows): the bytes are written to
    it, without the atomic rename a path gets.

    The file records the environment, the estimator's class, parameters, features and
    classes automatically; ``metadata`` adds your own JSON fields and ``metrics`` numeric
    scores. ``validation=X`` or ``(X, y)`` stores up to 100 rows and the model's outputs
    on them, re-checked by ``load(..., validate=True)``.
    """
    codec, level = _codec(compress, level)
    meta, tree = _prepare(obj, metadata, metrics, validation)
    if _is_writable_file(path):
        path.write(_native.dumps(obj, compress=codec, level=level, metadata=meta, validation=tree))  # type: ignore[union-attr, arg-type]
        return
    if not isinstance(durable, bool):
        raise TypeError(f"durable must be True or False, not {durable!r}")
    _native.dump(obj, _path(path), compress=codec, level=level, metadata=meta, validation=tree, durable=durable)  # type: ignore[arg-type, arg-type]


def dumps(
    obj: Any,
    *,
    compress: Compress = None,
    level: Level = None,
    metadata: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    validation: Any = None,
) -> bytes:
    """Return the bytes of the ``.skv`` file that ``dump`` would write."""
    codec, level = _codec(compress, level)
    meta, tree = _prepare(obj, metadata, metrics, validation)
    return _native.dumps(obj, compress=codec, level=level, metadata=meta, validation=tree)  # type: ignore[arg-type]


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
    require_signature: _signing.Policy = None,
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
        **_signing.policy_args(require_signature),
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
    path: PathLike | BinaryIO,
    *,
    trusted: Iterable[str] | str | None = None,
    mmap: bool | Literal["r", "c"] = False,
    mmap_mode: Literal["r", "c"] | None = None,
    verify: bool | None = None,
    validate: bool = False,
    on_version_mismatch: _versions.Policy = None,
    require_signature: _signing.Policy = None,
) -> Any:
    """Load an object saved with :func:`dump`.

    Nothing is imported or called unless its exact qualified name is in the default
    allow-list or in ``trusted``; otherwise :class:`UntrustedTypesError` lists every
    offending name before anything is created.

    With ``mmap=True`` (or ``"r"``) uncompressed arrays are read-only views of the mapped
    file (no copy); the file must not be modified while they are in use. Some estimators
    (e.g. SVC, through libsvm) need writable arrays: ``mmap="c"`` maps the file
    copy-on-write, so arrays are writable views and writes never reach the file (as
    joblib's ``mmap_mode="c"``). Only arrays stored uncompressed can be mapped: on a
    compressed file the others are decompressed into memory, with a
    :class:`MmapCopyWarning` saying how many. ``verify`` checks every array's digest; by
    default it does, except for mapped arrays.

    Without a mapping, the node arrays of decision trees (which scikit-learn's trees copy)
    are read into one buffer for the load; from 32 MB its memory is kept for 10 s after the
    load, for the next load that fits in it (loading models one after another then skips
    the kernel's fresh pages, a third of a large forest's load), and freed after that.

    The scikit-learn and numpy versions the file was saved with are compared with the
    installed ones: a different major version raises :class:`VersionMismatchError`, a
    different minor version warns (:class:`VersionMismatchWarning`);
    ``on_version_mismatch`` ("error", "warn", "ignore") overrides that. ``validate=True``
    recomputes the outputs recorded on the validation rows and raises
    :class:`ValidationError` if they differ.

    ``require_signature`` (a public key path or a list of them, ``True`` for the keys of
    ``SKVAULT_TRUSTED_KEYS``, ``False`` for none; by default ``SKVAULT_TRUSTED_KEYS`` when it
    is set) requires a signature by a trusted key covering the file's current bytes,
    embedded or in ``path.sig``: :class:`SignatureError` otherwise, before anything is
    built (``skvault docs signing``).

    joblib's spellings work too: ``mmap_mode="r"`` or ``"c"`` is ``mmap``, and ``path``
    may be an open binary file (read into memory: no mapping).
    """
    if mmap_mode is not None:
        if mmap not in (False, mmap_mode) and not (mmap is True and mmap_mode == "r"):
            raise InvalidOptionError(f"mmap={mmap!r} and mmap_mode={mmap_mode!r} disagree: give one")
        if mmap_mode not in ("r", "c"):
            raise InvalidOptionError(f'mmap_mode must be "r" or "c" (or None), not {mmap_mode!r}')
        mmap = mmap_mode
    if _is_readable_file(path):
        if mmap is not False:
            raise InvalidOptionError("an open file cannot be memory-mapped: pass its path, or leave out mmap")
        data = _read_file(path)
        return _load(
            data, trusted, False, True if verify is None else verify, validate, on_version_mismatch, require_signature
        )
    return _load(_path(path), trusted, mmap, verify, validate, on_version_mismatch, require_signature)  # type: ignore[arg-type]


def loads(
    data: bytes,
    *,
    trusted: Iterable[str] | str | None = None,
    verify: bool = True,
    validate: bool = False,
    on_version_mismatch: _versions.Policy = None,
    require_signature: _signing.Policy = None,
) -> Any:
    """Load an object from the bytes returned by :func:`dumps`.

    ``require_signature`` is as for :func:`load`; bytes can only carry an embedded signature.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    return _load(bytes(data), trusted, False, verify, validate, on_version_mismatch, require_signature)


def inspect(source: PathLike | bytes) -> dict[str, Any]:
    """The file's manifest as a dict: metadata, parameters, arrays, object tree, untrusted names.

    Reads the manifest only; nothing is imported or built.
    """
    src = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else _path(source)
    return _native.describe(src)


def get_untrusted_types(
    source: PathLike | bytes | None = None,
    *,
    trusted: Iterable[str] | str | None = None,
    file: PathLike | None = None,
    data: bytes | None = None,
) -> list[str]:
    """List the qualified names a file needs beyond the default allow-list (and ``trusted``).

    Nothing is imported: this reads only the manifest, through the same check ``load`` uses.
    ``file=`` (a path) and ``data=`` (bytes) are skops' spellings of ``source``.
    """
    given = [x for x in (source, file, data) if x is not None]
    if len(given) != 1:
        raise TypeError("get_untrusted_types takes one of: a path or bytes, file=PATH, data=BYTES")
    source = given[0]
    src = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else _path(source)
    return _native.get_untrusted_types(src, trusted=_names(trusted))


def verify(path: PathLike) -> None:
    """Check the digest of every array; raise :class:`IntegrityError` on the first mismatch."""
    _native.verify(_path(path))


def requirements(source: PathLike | bytes) -> str:
    """A pip requirements file pinning the package versions the file was saved with.

    scikit-learn, numpy, scipy and any other package recorded in the file's environment, one
    ``name==version`` line each, under a comment header naming the file: ``pip install -r``
    of it rebuilds the environment the model was saved in. ``skvault requirements FILE``
    prints the same text.
    """
    src = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else _path(source)
    return _native.requirements(src)


def default_trusted() -> list[str]:
    """The default allow-list of qualified names, sorted."""
    return list(_native.default_trusted())
