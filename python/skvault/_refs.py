"""Native models as references: where a ``skvault.native`` model came from, how it pickles,
and how another process opens it again (``skvault docs scale``).

A model pickles as its source (an absolute path, or a registry URI with a name and a version
number) and its digest: the manifest digest of its file (FORMAT.md 2.1), which covers every
array's digest, all of which are checked when the model is built. Unpickling opens the file
again, refuses it unless its digest is the pinned one, and keeps one opened model per digest
per process, so a worker that receives a thousand tasks opens the file once.

A registry version is fetched into a local cache folder once per machine, under the
registry's digest of the whole file (content-addressed, written by a rename, so processes
racing for it all end with the same complete file).
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skvault import _native, _signing
from skvault.exceptions import ModelReferenceError, SignatureError, SkvaultError

#: Models this process unpickled, by digest: kept for the life of the process, since a
#: worker's next task unpickles the same reference (see ``reopen``).
_OPENED: dict[str, Any] = {}
#: Models ``skvault.native.load`` made, by digest, while something else holds them: an
#: unpickle in the same process reuses one, and a model dropped by its caller is freed.
_LOADED: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_OPENING = threading.Lock()


@dataclass(frozen=True)
class Source:
    """Where a native model's file comes from. ``registry`` is None for a plain file;
    then ``location`` is its absolute path. Otherwise ``location`` is the registry URI and
    ``file_digest`` the registry's BLAKE3 of the whole file (the cache key)."""

    location: str
    registry: tuple[str, int, str] | None = None  # (name, version, file digest)

    def __str__(self) -> str:
        if self.registry is None:
            return self.location
        name, version, _ = self.registry
        return f"{self.location} {name}@{version}"


def cache_dir() -> Path:
    """``$SKVAULT_CACHE_DIR``, else the platform's cache folder for skvault."""
    configured = os.environ.get("SKVAULT_CACHE_DIR")
    if configured:
        return Path(configured)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "skvault" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "skvault"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "skvault"


def _registry(uri: str, storage_options: Any) -> Any:
    from skvault.registry import Registry

    return Registry(uri, storage_options=storage_options)


def resolve(uri: str, name: str, version: int | None, alias: str | None, storage_options: Any) -> tuple[Source, Path]:
    """The version a registry name (and alias or version number; default the latest) points
    at now, pinned by number and file digest, and the local file holding it (fetched into
    the cache when it is not there yet)."""
    registry = _registry(uri, storage_options)
    info = registry.info(name, version, alias=alias)
    source = Source(registry.uri, (name, info["version"], info["file"]["blake3"]))
    return source, fetch(source, registry)


def fetch(source: Source, registry: Any = None) -> Path:
    """The cached file of a registry source, downloaded first if it is not in the cache.
    S3 settings come from the environment when ``registry`` is not given (a worker)."""
    assert source.registry is not None
    name, version, file_digest = source.registry
    folder = cache_dir() / "models"
    path = folder / f"{file_digest}.skv"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    if registry is None:
        registry = _registry(source.location, None)
    # A name of its own per process and thread, then a rename onto the content address: a
    # reader never sees a partial file, and racing writers all put the same bytes there.
    part = folder / f".{file_digest}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part"
    try:
        doc = registry.download(name, part, version)
        got = doc["file"]["blake3"]
        if got != file_digest:
            raise ModelReferenceError(
                f"{source}: the registry's file digest is {got}, not the pinned {file_digest}: "
                "the version was changed in the registry",
                str(source),
                file_digest,
                got,
            )
        # A signed version's signature comes beside the file (`download` writes PART.sig):
        # it moves first, so a policy never sees the model without it.
        part_sig = part.with_name(part.name + ".sig")
        if part_sig.exists():
            os.replace(part_sig, path.with_name(path.name + ".sig"))
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
        part.with_name(part.name + ".sig").unlink(missing_ok=True)
    return path


def open_checked(path: Path, source: Source, expected: str | None, require_signature: Any = None) -> Any:
    """``_native.native_load(path)``, refused unless its digest is ``expected`` (when given).
    The signature policy (``require_signature``, else ``SKVAULT_TRUSTED_KEYS``) applies first;
    its refusal stays a :class:`SignatureError`."""
    try:
        inner = _native.native_load(os.fspath(path), **_signing.policy_args(require_signature))
    except SignatureError:
        raise
    except FileNotFoundError as e:
        raise ModelReferenceError(
            f"{path}: the model file is missing (pinned digest {expected}). A pickled "
            "skvault.native model refers to its file, which must stay at the same path on "
            "every machine that opens it (or load it from a registry)",
            str(source),
            expected,
        ) from e
    except (SkvaultError, OSError) as e:
        raise ModelReferenceError(
            f"{path}: the model file cannot be opened as the pinned model (digest {expected}): {e}",
            str(source),
            expected,
        ) from e
    if expected is not None and inner.digest != expected:
        raise ModelReferenceError(
            f"{path}: the model file changed since the model was pickled: its digest is "
            f"{inner.digest}, the pinned one {expected}",
            str(source),
            expected,
            inner.digest,
        )
    return inner


def remember(model: Any) -> None:
    """Offers a model ``load`` made to later unpickles in this process (without keeping it alive)."""
    with _OPENING:
        _LOADED.setdefault(model.digest, model)


def reopen(location: str, digest: str, registry: tuple[str, int, str] | None = None) -> Any:
    """Unpickling: this process's model of ``digest``, opened (and checked) on first use."""
    model = _OPENED.get(digest)
    if model is not None:
        return model
    from skvault.native import NativeModel

    source = Source(location, registry)
    # One open per process even when several threads (a Dask worker's) unpickle at once.
    with _OPENING:
        model = _OPENED.get(digest) or _LOADED.get(digest)
        if model is None:
            if registry is None:
                path = Path(location)
            else:
                try:
                    path = fetch(source)
                except ModelReferenceError:
                    raise
                except SkvaultError as e:
                    raise ModelReferenceError(
                        f"{source}: the registry refused the pinned model (digest {digest}): {e}",
                        str(source),
                        digest,
                    ) from e
            model = NativeModel(open_checked(path, source, digest), source)
        _OPENED[digest] = model
    return model
