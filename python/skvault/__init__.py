"""skvault: safe, fast persistence for scikit-learn models.

>>> import skvault
>>> skvault.dump(model, "model.skv")                # doctest: +SKIP
>>> model = skvault.load("model.skv")               # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from skvault._native import __version__
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
    SignatureError,
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
    ModelReferenceError,
)

# The API is imported on first use (PEP 562): the command line (`skvault ...`,
# `python -m skvault`) needs only the extension, and importing numpy and the modules that
# introspect scikit-learn took half a second of every command's start-up.
_LAZY = {
    "default_trusted": "skvault._api",
    "dump": "skvault._api",
    "dumps": "skvault._api",
    "get_untrusted_types": "skvault._api",
    "inspect": "skvault._api",
    "load": "skvault._api",
    "loads": "skvault._api",
    "requirements": "skvault._api",
    "verify": "skvault._api",
    "card": "skvault._card",
    "export_json": "skvault._export",
    "export_onnx": "skvault._export",
    "import_json": "skvault._export",
    "onnx_feed": "skvault._export",
    "Conversion": "skvault._legacy",
    "GlobalRef": "skvault._legacy",
    "ScanReport": "skvault._legacy",
    "convert": "skvault._legacy",
    "scan": "skvault._legacy",
    "Registry": "skvault.registry",
    "keygen": "skvault._signing",
    "sign": "skvault._signing",
    "verify_signature": "skvault._signing",
}

if TYPE_CHECKING:
    from skvault import native
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
    from skvault._card import card
    from skvault._export import export_json, export_onnx, import_json, onnx_feed
    from skvault._legacy import Conversion, GlobalRef, ScanReport, convert, scan
    from skvault._signing import keygen, sign, verify_signature
    from skvault.registry import Registry


def __getattr__(name: str) -> Any:
    if name == "native":
        value: Any = importlib.import_module("skvault.native")
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'skvault' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "__version__",
    "Conversion",
    "card",
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
    "keygen",
    "sign",
    "verify_signature",
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
    "SignatureError",
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
    "ModelReferenceError",
]
