"""Version policy on load: the packages a model was saved with against the installed ones.

- a different **major** version: :class:`VersionMismatchError`;
- a different **minor** version: :class:`VersionMismatchWarning`;
- a different patch version: silent.

``on_version_mismatch="error"`` raises for major and minor differences, ``"warn"`` only
warns (for both), ``"ignore"`` says nothing.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from typing import Any, Literal

from skvault._metadata import environment
from skvault.exceptions import VersionMismatchError, VersionMismatchWarning

Policy = Literal["error", "warn", "ignore"] | None
#: Packages whose versions are compared, as recorded in the environment.
CHECKED = ("scikit-learn", "numpy")
_RELEASE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


def _parse(version: Any) -> tuple[int, int, int] | None:
    if not isinstance(version, str):
        return None
    m = _RELEASE.match(version)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@lru_cache(maxsize=1)
def _installed() -> dict[str, tuple[Any, tuple[int, int, int] | None]]:
    """The installed version of each checked package, as text and parsed (once per process)."""
    env = environment()
    return {package: (env.get(package), _parse(env.get(package))) for package in CHECKED}


def check(saved_env: Any, policy: Policy = None) -> None:
    """Compare the environment recorded in a file (``metadata["environment"]``) with this one."""
    if policy not in (None, "error", "warn", "ignore"):
        raise ValueError(f'on_version_mismatch must be "error", "warn", "ignore" or None, not {policy!r}')
    if policy == "ignore":
        return
    if not isinstance(saved_env, dict):
        saved_env = {}
    for package, (installed, b) in _installed().items():
        saved = saved_env.get(package)
        if saved == installed:
            continue
        a = _parse(saved)
        if a is None or b is None or a[:2] == b[:2]:
            continue
        kind = "major" if a[0] != b[0] else "minor"
        message = (
            f"the file was saved with {package} {saved} and {package} {installed} is installed "
            f"(a different {kind} version). Load with validate=True to check that the model "
            "still gives the recorded outputs"
        )
        if policy == "error" or (policy is None and kind == "major"):
            raise VersionMismatchError(message + '; on_version_mismatch="warn" loads it anyway.')
        warnings.warn(message + ".", VersionMismatchWarning, stacklevel=4)
