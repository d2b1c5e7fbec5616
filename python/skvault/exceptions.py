"""The exceptions skvault raises. All derive from :class:`SkvaultError`.

``skvault docs errors`` tables which failure raises which class (and the command line's exit code).
"""

from __future__ import annotations

__all__ = [
    "SkvaultError",
    "FormatError",
    "IntegrityError",
    "InvalidOptionError",
    "UntrustedTypesError",
    "UnsupportedObjectError",
    "UnsupportedModelError",
    "NotFittedError",
    "TrustedNamesError",
    "UnfittedEstimatorWarning",
    "ExportError",
    "LoadError",
    "MigrationError",
    "UnsafeFileError",
    "ValidationError",
    "VersionMismatchError",
    "VersionMismatchWarning",
    "MmapCopyWarning",
    "RegistryError",
    "NotFoundError",
    "InvalidNameError",
    "ConflictError",
    "DestinationError",
    "SignatureError",
    "ModelReferenceError",
]


class SkvaultError(Exception):
    """Base class of every error raised by skvault."""


class FormatError(SkvaultError, ValueError):
    """The file is not a valid ``.skv`` file: truncated, corrupted, hostile or from an unknown version."""


class IntegrityError(FormatError):
    """An array's bytes do not match the BLAKE3 digest recorded for them."""


class InvalidOptionError(SkvaultError, ValueError):
    """A write option is not allowed: ``compress`` names no codec, or ``level`` is one the
    codec does not take (lz4 has none, zstd's range is bounded). Nothing was written."""


class UntrustedTypesError(SkvaultError):
    """The file names classes or functions that are not trusted.

    ``names`` lists every one of them, sorted. Nothing was imported or created.
    Pass the names you have reviewed to ``load(..., trusted=[...])`` to allow them.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        listing = ", ".join(self.names)
        super().__init__(
            f"the file needs {len(self.names)} untrusted name(s): {listing}. "
            "Review them, then pass them to load(..., trusted=[...]) to allow them."
        )

    def __reduce__(self):  # keep the exception picklable (multiprocessing, pytest-xdist)
        return (type(self), (self.names,))


class UnsupportedObjectError(SkvaultError, TypeError):
    """``dump`` met an object it cannot store without pickle (for example a lambda)."""


class UnsupportedModelError(SkvaultError, TypeError):
    """``skvault.native.load`` met an estimator (or configuration) that native inference does not implement."""


class NotFittedError(SkvaultError, ValueError, AttributeError):
    """Native inference or export met an estimator that was saved before ``fit``: it has no
    fitted state to predict with. The bases are those of scikit-learn's ``NotFittedError``."""


class TrustedNamesError(SkvaultError, TypeError):
    """``trusted=`` is neither a qualified name (``str``) nor an iterable of them (``load``,
    ``loads``, ``scan``, ``convert``, ``get_untrusted_types``, ``import_json``, ``Registry.get``)."""


class UnfittedEstimatorWarning(UserWarning):
    """``dump`` was given a scikit-learn estimator that is not fitted (scikit-learn's
    ``check_is_fitted`` says so). The file is written, but it cannot predict."""


class ExportError(SkvaultError, ValueError):
    """An export or import was refused: an estimator the ONNX exporter does not write (the
    message names it), or a JSON document that does not match its schema, dtypes or shapes.
    Nothing was written."""


class LoadError(SkvaultError):
    """A trusted class refused the stored state while the model was being rebuilt."""


class ValidationError(SkvaultError):
    """The loaded model's outputs on the stored validation rows differ from the recorded ones."""

    def __init__(self, method: str, n_rows: int, max_diff: float | None, detail: str | None = None) -> None:
        self.method = method
        self.n_rows = n_rows
        self.max_diff = max_diff
        self.detail = detail
        parts = [f"validation failed for {method}: {n_rows} row(s) differ"]
        if max_diff is not None:
            parts.append(f"largest difference {max_diff:.3g}")
        if detail:
            parts.append(detail)
        super().__init__(", ".join(parts))

    def __reduce__(self):
        return (type(self), (self.method, self.n_rows, self.max_diff, self.detail))


class VersionMismatchError(SkvaultError):
    """The file was written with a different major version of a package than the installed one."""


class VersionMismatchWarning(UserWarning):
    """The file was written with a different minor version of a package than the installed one."""


class MmapCopyWarning(UserWarning):
    """``load(..., mmap=True)`` on a file whose arrays are (partly) compressed: those arrays
    are decompressed into memory, only the uncompressed ones are mapped."""


class UnsafeFileError(SkvaultError):
    """``convert`` refused a pickle or joblib file: it names a dangerous callable, holds a
    suspicious construct, or cannot be read to its end. ``report`` is the scan report."""

    def __init__(self, message: str, report: object = None) -> None:
        from skvault import _native
        from skvault._legacy import ScanReport

        if isinstance(report, _native.ScanReport):
            report = ScanReport._from_native(report)
        self.report = report
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.args[0], self.report))


class DestinationError(SkvaultError, OSError):
    """A write was refused because its destination exists and is not a regular file: a
    directory, device (``/dev/null``), FIFO, socket or symbolic link. Nothing was written
    and the destination is untouched. ``filename`` is the path, ``kind`` what is there."""

    def __init__(self, message: str, filename: str | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.filename = filename
        self.kind = kind

    def __str__(self) -> str:  # OSError's would print "[Errno None] None: <filename>"
        return str(self.args[0]) if self.args else ""

    def __reduce__(self):
        return (type(self), (self.args[0], self.filename, self.kind))


class MigrationError(SkvaultError):
    """``convert`` met state saved by an older scikit-learn that it cannot bring up to date."""
class SignatureError(SkvaultError):
    """A signature check failed, or a signing key cannot be used.

    ``reason`` says which, as a short stable name: ``"not_signed"`` (no embedded signature
    and no ``.sig`` file), ``"unknown_key"`` (signed by a key that is not trusted),
    ``"bad_signature"`` (the signature does not verify), ``"digest_mismatch"`` (the file's
    bytes are not those that were signed), ``"malformed_signature"``,
    ``"signature_too_large"``, ``"no_trusted_keys"``, ``"key_permissions"`` (a private key
    readable by others), ``"bad_key"``, ``"key_exists"``. Nothing was built.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        self.reason = reason
        super().__init__(message)

    def __reduce__(self):  # keep the exception picklable
        return (type(self), (str(self), self.reason))


class RegistryError(SkvaultError):
    """A model registry operation failed (storage errors, damaged registry data)."""


class NotFoundError(RegistryError, LookupError):
    """No such model, version or alias in the registry (or every version is archived)."""


class InvalidNameError(RegistryError, ValueError):
    """A model name, alias, tag, metric filter or registry URI is not allowed."""


class ConflictError(RegistryError):
    """A compare-and-swap lost (the alias moved meanwhile), or a version still has aliases."""


class ModelReferenceError(SkvaultError):
    """A native model pickled as a reference (``skvault.native``, ``skvault.dask``) could not
    be opened again as the model it pins: its file is missing, holds another model (its
    digest differs), or the registry refused to give it back (a tampered blob, a deleted
    version). ``source`` is the path or registry reference, ``expected`` the pinned digest,
    ``found`` the digest of what is there now (``None`` when nothing could be read)."""

    def __init__(self, message: str, source: str | None = None, expected: str | None = None, found: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.expected = expected
        self.found = found

    def __reduce__(self):  # raised on Dask workers, pickled back to the client
        return (type(self), (self.args[0], self.source, self.expected, self.found))
