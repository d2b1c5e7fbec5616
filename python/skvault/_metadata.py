"""The record written into every file: environment and a short description of the object."""

from __future__ import annotations

import platform
import sys
from functools import lru_cache
from importlib import metadata as importlib_metadata
from typing import Any

from skvault._native import __version__

_PACKAGES = ("scikit-learn", "numpy", "scipy")


def _version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def _environment() -> tuple[tuple[str, Any], ...]:
    env: dict[str, Any] = {
        "skvault": __version__,
        "python": platform.python_version(),
        "platform": f"{sys.platform}-{platform.machine()}",
    }
    for dist in _PACKAGES:
        env[dist] = _version(dist)
    return tuple(env.items())


def environment() -> dict[str, Any]:
    """Versions of skvault, Python and the packages a model depends on, and the platform.

    Looked up once per process: reading installed package metadata costs milliseconds.
    """
    return dict(_environment())


def collect_metadata(obj: Any) -> dict[str, Any]:
    cls = type(obj)
    return {
        "environment": environment(),
        "object": f"{cls.__module__}.{cls.__qualname__}",
    }
