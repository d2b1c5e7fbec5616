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
    requirements,
    verify,
)
from skvault._export import export_json, export_onnx, import_json, onnx_feed
from skvault._legacy import Conversion, GlobalRef, ScanReport, convert, scan
from skvault.exceptions import (
    ConflictError,
    DestinationError,
    ExportError,
    FormatError,
    IntegrityError,
    InvalidNameError,
    InvalidOptionError,
    LoadError,
    MigrationError,
    NotFoundError,
    RegistryError,
    SkvaultError,
    UnsafeFileError,
    UnsupportedModelError,
    NotFittedError,
    TrustedNamesError,
    UnfittedEstimatorWarning,
    UnsupportedObjectError,
    UntrustedTypesError,
    ValidationError,
    VersionMismatchError,
    VersionMismatchWarning,
    MmapCopyWarning,
)

from skvault import native
from skvault.registry import Registry

from skvault._native import __version__

__all__ = [
    "__version__",
    "Conversion",
    "GlobalRef",
    "ScanReport",
    "convert",
    "default_trusted",
    "export_json",
    "export_onnx",
    "onnx_feed",
    "import_json",
    "dump",
    "dumps",
    "get_untrusted_types",
    "inspect",
    "load",
    "loads",
    "requirements",
    "scan",
    "native",
    "verify",
    "Registry",
    "ConflictError",
    "DestinationError",
    "ExportError",
    "FormatError",
    "IntegrityError",
    "InvalidNameError",
    "InvalidOptionError",
    "LoadError",
    "MigrationError",
    "NotFoundError",
    "RegistryError",
    "SkvaultError",
    "UnsafeFileError",
    "UnsupportedModelError",
    "NotFittedError",
    "TrustedNamesError",
    "UnfittedEstimatorWarning",
    "UnsupportedObjectError",
    "UntrustedTypesError",
    "ValidationError",
    "VersionMismatchError",
    "VersionMismatchWarning",
    "MmapCopyWarning",
]
