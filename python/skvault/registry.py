"""``skvault.Registry``: versions, aliases and tags of models in a folder or an S3 bucket.

The storage layout and its guarantees are described in ``skvault docs registry``; the work is
done in Rust (``skvault-registry``), this module only shapes arguments and results.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

from skvault import _api, _native, _signing

PathLike = str | os.PathLike[str]
_UNSET: Any = object()

#: Unreferenced blobs younger than this survive ``gc`` (see ``skvault docs registry``).
DEFAULT_GC_GRACE_SECONDS = 3600.0


def _version(version: Any, argument: str = "version") -> int:
    """A version number: an ``int``, never a ``bool`` (``True`` is not version 1)."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"{argument} must be an int, not {type(version).__name__}")
    return version


def _selector(version: Any, alias: Any) -> tuple[int | None, str | None]:
    """Checks ``version=`` / ``alias=``: at most one of them, a version an ``int`` (not a
    ``bool``), an alias a ``str``."""
    if version is not None:
        _version(version)
    if alias is not None and not isinstance(alias, str):
        raise TypeError(f"alias must be a str, not {type(alias).__name__}")
    if version is not None and alias is not None:
        raise TypeError(f"give a version or an alias, not both (version={version!r}, alias={alias!r})")
    return version, alias


class Registry:
    """A model registry at ``uri``: a folder (default ``./skvault-registry``),
    ``file:///abs/dir`` or ``s3://bucket/prefix``.

    S3 settings come from the usual environment variables (``AWS_ENDPOINT_URL``,
    ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ALLOW_HTTP``,
    ...); ``storage_options`` (object_store keys such as ``aws_endpoint``) override them.

    >>> reg = skvault.Registry("s3://models/team")          # doctest: +SKIP
    >>> v = reg.register(model, "fraud", metrics={"auc": 0.93}, tags={"team": "risk"})  # doctest: +SKIP
    >>> reg.set_alias("fraud", "champion", v)               # doctest: +SKIP
    >>> model = reg.load("fraud", alias="champion")         # doctest: +SKIP
    """

    def __init__(self, uri: PathLike = "./skvault-registry", *, storage_options: Mapping[str, str] | None = None) -> None:
        options = [(str(k), str(v)) for k, v in (storage_options or {}).items()]
        self._native = _native.Registry(os.fspath(uri), options)

    @property
    def uri(self) -> str:
        return self._native.uri

    def __repr__(self) -> str:
        return f"Registry({self.uri!r})"

    # -- writing ---------------------------------------------------------------------------

    def register(
        self,
        model_or_path: Any,
        name: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        validation: Any = None,
        lineage: Mapping[str, Any] | None = None,
        compress: _api.Compress = None,
        sign_with: PathLike | None = None,
        identity: str = "",
    ) -> int:
        """Register a fitted model (dumped with :func:`skvault.dump` first) or a ``.skv``
        file as the next version of ``name``; returns the version number.

        ``metadata``, ``metrics`` and ``validation`` go into the dumped file as with
        ``dump``; ``metadata``, ``metrics`` and ``tags`` are also recorded in the version
        document, with ``lineage`` (your run and data references). Concurrent writers all
        get distinct numbers.

        ``sign_with`` (a private key file made by :func:`skvault.keygen`) signs the file; the
        signature is kept with the version (``identity`` names the signer). A file with an
        embedded signature keeps it that way. Under the registry's signature policy
        (:meth:`set_signature_policy`) an unsigned file is refused with
        :class:`SignatureError`.
        """
        key = None if sign_with is None else os.fspath(sign_with)
        # Checked before anything is written: TypeError / ValueError for values JSON cannot hold.
        options = _native.RegisterOptions(
            metadata=dict(metadata or {}),
            metrics=dict(metrics or {}),
            tags=dict(tags or {}),
            lineage=dict(lineage or {}),
        )
        if isinstance(model_or_path, (str, os.PathLike)):
            if validation is not None or compress is not None:
                raise ValueError("validation= and compress= apply when registering a model, not a file")
            info = self._native.register(os.fspath(model_or_path), name, options, key, identity)
        else:
            with tempfile.TemporaryDirectory(prefix="skvault-register-") as tmp:
                path = os.path.join(tmp, "model.skv")
                _api.dump(
                    model_or_path,
                    path,
                    compress=compress,
                    metadata=dict(metadata) if metadata else None,
                    metrics=dict(metrics) if metrics else None,
                    validation=validation,
                )
                info = self._native.register(path, name, options, key, identity)
        return info.version

    def set_alias(self, name: str, alias: str, version: int, *, expected: int | None = _UNSET) -> int | None:
        """Point ``alias`` at ``version`` atomically; returns the previous target.

        With ``expected`` this is a compare-and-swap: it raises :class:`ConflictError`
        unless the alias points at ``expected`` now (``None``: the alias must not exist).
        """
        _version(version)
        if expected is _UNSET:
            return self._native.set_alias(name, alias, version)
        if expected is not None:
            _version(expected, "expected")
        return self._native.set_alias(name, alias, version, True, expected)

    def delete_alias(self, name: str, alias: str) -> int:
        """Remove ``alias``; returns the version it pointed at."""
        return self._native.delete_alias(name, alias)

    def tag(
        self, name: str, version: int, tags: Mapping[str, str] | None = None, *, remove: Iterable[str] | str = ()
    ) -> dict[str, str]:
        """Set and remove tags of a version; returns the tags now in force."""
        removed = [remove] if isinstance(remove, str) else list(remove)
        return dict(self._native.tag(name, _version(version), dict(tags or {}), removed))

    def archive(self, name: str, version: int) -> None:
        """Hide a version from listings, searches and "latest". Nothing is deleted: it stays
        loadable by number or alias, and :meth:`unarchive` shows it again."""
        self._native.archive(name, _version(version), True)

    def unarchive(self, name: str, version: int) -> None:
        self._native.archive(name, _version(version), False)

    def delete(self, name: str, version: int, *, force: bool = False, grace_seconds: float = DEFAULT_GC_GRACE_SECONDS) -> dict[str, int]:
        """Delete a version for good; needs ``force=True``. Refused while an alias points at
        it. Then collects blobs no other version uses (see :meth:`gc`); returns that report."""
        if force is not True:
            raise ValueError(f"deleting {name} version {version} cannot be undone: pass force=True (or archive it)")
        return self._native.delete_version(name, _version(version), float(grace_seconds)).to_dict()

    def gc(self, *, grace_seconds: float = DEFAULT_GC_GRACE_SECONDS) -> dict[str, int]:
        """Delete blobs that no version uses and that were written more than
        ``grace_seconds`` ago. A shorter grace is safe only while nobody registers."""
        return self._native.gc(float(grace_seconds)).to_dict()

    # -- reading ---------------------------------------------------------------------------

    def load(
        self,
        name: str,
        version: int | None = None,
        *,
        alias: str | None = None,
        trusted: Iterable[str] | None = None,
        validate: bool = False,
        on_version_mismatch: Any = None,
        require_signature: _signing.Policy = None,
    ) -> Any:
        """Load a version (default: the latest that is not archived) or an alias.

        The blobs are checked against their digests, the file is reassembled byte for byte
        and loaded by :func:`skvault.loads`, with the same trust, integrity and version checks.
        ``require_signature`` is as for :func:`skvault.load` (by default
        ``SKVAULT_TRUSTED_KEYS``); the version's signature is checked before anything is
        built, and under the registry's own policy it always is.
        """
        _, data = self._native.fetch(name, *_selector(version, alias), **_signing.policy_args(require_signature))
        return _api.loads(
            data, trusted=trusted, validate=validate, on_version_mismatch=on_version_mismatch, require_signature=False
        )

    def fetch(
        self,
        name: str,
        version: int | None = None,
        *,
        alias: str | None = None,
        require_signature: _signing.Policy = None,
    ) -> bytes:
        """The bytes of the version's ``.skv`` file, identical to the registered file (its
        signature checked as :meth:`load` does)."""
        return self._native.fetch(name, *_selector(version, alias), **_signing.policy_args(require_signature))[1]

    def set_signature_policy(self, keys: PathLike | Iterable[PathLike] | None) -> None:
        """Require every version registered, fetched, loaded or aliased from now on to be
        signed by one of ``keys`` (public key files or folders of them); ``None`` or ``[]``
        removes the requirement. The policy is stored in the registry, so whoever can write
        the store can change it: readers that must resist that check with keys of their own
        (``require_signature=``, ``SKVAULT_TRUSTED_KEYS``)."""
        if keys is None:
            paths: list[str] = []
        elif isinstance(keys, (str, os.PathLike)):
            paths = [os.fspath(keys)]
        else:
            paths = [os.fspath(k) for k in keys]
        self._native.set_signature_policy(paths)

    def signature_policy(self) -> list[str] | None:
        """The ids of the keys versions must be signed by, or ``None`` without a policy."""
        return self._native.signature_policy()

    def download(self, name: str, path: PathLike, version: int | None = None, *, alias: str | None = None) -> dict[str, Any]:
        """Write the version's ``.skv`` file to ``path`` (atomically); returns its document.
        ``skvault.load(path, mmap=True)`` then maps it."""
        return self._native.download(name, os.fspath(path), *_selector(version, alias)).to_dict()

    def export(
        self,
        name: str,
        out: PathLike,
        version: int | None = None,
        *,
        alias: str | None = None,
        format: str | None = None,
    ) -> None:
        """Export a registered version to ONNX or portable JSON (``format``: ``"onnx"`` or
        ``"json"``; by default ``json`` for a ``.json`` path, else ``onnx``). See
        :func:`skvault.export_onnx` and :func:`skvault.export_json`."""
        from skvault import _export

        _selector(version, alias)
        fmt = format or ("json" if os.fspath(out).lower().endswith(".json") else "onnx")
        if fmt not in ("onnx", "json"):
            raise ValueError(f"format must be 'onnx' or 'json', not {format!r}")
        with tempfile.TemporaryDirectory(prefix="skvault-export-") as tmp:
            path = os.path.join(tmp, "model.skv")
            self.download(name, path, version, alias=alias)
            if fmt == "onnx":
                _export.export_onnx(path, out)
            else:
                _export.export_json(path, out)

    def info(self, name: str, version: int | None = None, *, alias: str | None = None) -> dict[str, Any]:
        """One version's document: file, metadata, metrics, tags, lineage, aliases, archived."""
        return self._native.info(name, *_selector(version, alias)).to_dict()

    def versions(self, name: str, *, include_archived: bool = False) -> list[dict[str, Any]]:
        """The versions of ``name``, oldest first."""
        return [v.to_dict() for v in self._native.versions(name, include_archived)]

    def models(self) -> list[str]:
        return list(self._native.models())

    def aliases(self, name: str) -> dict[str, int]:
        return dict(self._native.aliases(name))

    def search(
        self,
        *,
        name: str | None = None,
        tags: Mapping[str, str | None] | Iterable[str] | None = None,
        metrics: Iterable[str] | str | None = None,
        include_archived: bool = False,
    ) -> list[dict[str, Any]]:
        """Versions whose tags match (``{"team": "risk"}``; a value of ``None`` or a bare key
        means any value) and whose metrics pass every filter (``"auc>=0.9"``)."""
        if tags is None:
            tag_map: dict[str, str | None] = {}
        elif isinstance(tags, Mapping):
            tag_map = dict(tags)
        else:
            tag_map = {t: None for t in tags}
        filters = [metrics] if isinstance(metrics, str) else list(metrics or [])
        return [v.to_dict() for v in self._native.search(name, tag_map, filters, include_archived)]

    def check(self, *, deep: bool = False) -> list[str]:
        """Problems found (missing blobs, dangling aliases; ``deep`` re-hashes every blob)."""
        return list(self._native.check(deep))

    def usage(self) -> dict[str, int]:
        """Number and total bytes of stored blobs."""
        blobs, size = self._native.usage()
        return {"blobs": blobs, "blob_bytes": size}
