"""skvault: safe, fast persistence for scikit-learn models.

>>> import skvault
>>> skvault.dump(model, "model.skv")                # doctest: +SKIP
>>> model = skvault.load("model.skv")               # doctest: +SKIP
"""

from skvault._api import (
    default_trusted,
    dump,
    dumps,
    get_untrusted_types,
    inspect,
    load,
    loads,
    verify,
)
from skvault.exceptions import (
    ConflictError,
    FormatError,
    IntegrityError,
    InvalidNameError,
    LoadError,
    NotFoundError,
    RegistryError,
    SkvaultError,
    UnsupportedObjectError,
    UntrustedTypesError,
    ValidationError,
    VersionMismatchError,
    VersionMismatchWarning,
)

from skvault.registry import Registry

from skvault._native import __version__

__all__ = [
    "__version__",
    "default_trusted",
    "dump",
    "dumps",
    "get_untrusted_types",
    "inspect",
    "load",
    "loads",
    "verify",
    "Registry",
    "ConflictError",
    "FormatError",
    "IntegrityError",
    "InvalidNameError",
    "LoadError",
    "NotFoundError",
    "RegistryError",
    "SkvaultError",
    "UnsupportedObjectError",
    "UntrustedTypesError",
    "ValidationError",
    "VersionMismatchError",
    "VersionMismatchWarning",
]
