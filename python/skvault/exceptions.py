"""The exceptions skvault raises. All derive from :class:`SkvaultError`."""

from __future__ import annotations

__all__ = [
    "SkvaultError",
    "FormatError",
    "IntegrityError",
    "UntrustedTypesError",
    "UnsupportedObjectError",
    "LoadError",
]


class SkvaultError(Exception):
    """Base class of every error raised by skvault."""


class FormatError(SkvaultError, ValueError):
    """The file is not a valid ``.skv`` file: truncated, corrupted, hostile or from an unknown version."""


class IntegrityError(FormatError):
    """An array's bytes do not match the BLAKE3 digest recorded for them."""


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


class LoadError(SkvaultError):
    """A trusted class refused the stored state while the model was being rebuilt."""
