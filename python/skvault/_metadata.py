"""The record written into every file: environment, estimator description, user fields.

Pure Python and import-light: it never imports scikit-learn itself, it only looks at the
object it is given (``warn_if_unfitted`` asks scikit-learn's ``check_is_fitted`` about an
estimator only when scikit-learn is imported already).
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import os
import platform
import sys
import warnings
from functools import lru_cache
from importlib import metadata as importlib_metadata
from typing import Any

from skvault._native import __version__
from skvault.exceptions import UnfittedEstimatorWarning

_PACKAGES = ("scikit-learn", "numpy", "scipy")
#: Arrays longer than this are summarised in the record instead of listed.
_MAX_LISTED = 1000


#: The module of each recorded distribution, whose ``__version__`` is the distribution's.
_MODULES = {"scikit-learn": "sklearn", "numpy": "numpy", "scipy": "scipy"}


def _version(dist: str) -> str | None:
    """The installed version of ``dist``: its module's ``__version__`` when the module is
    imported already, else the distribution's metadata, which scans ``sys.path`` (about 1.5
    ms a package: most of the first load or dump in a process, for a small model)."""
    version = getattr(sys.modules.get(_MODULES.get(dist, "")), "__version__", None)
    if isinstance(version, str):
        return version
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


#: Module roots whose distributions the environment always records (or that pip does not install).
_KNOWN_ROOTS = frozenset({"sklearn", "numpy", "scipy", "skvault", "__main__"})


def _class_names(value: Any) -> set[str]:
    """The qualified class, type and callable names in an estimator record."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("class", "type", "callable") and isinstance(item, str):
                found.add(item)
            else:
                found |= _class_names(item)
    elif isinstance(value, list):
        for item in value:
            found |= _class_names(item)
    return found


def package_versions(names: set[str]) -> dict[str, str]:
    """Versions of the installed distributions providing the modules of ``names`` (qualified
    names such as ``xgboost.sklearn.XGBClassifier``), beyond scikit-learn, numpy and scipy:
    what ``skvault requirements`` pins for a model built from other packages."""
    roots = {n.split(".", 1)[0] for n in names} - _KNOWN_ROOTS - set(sys.stdlib_module_names)
    if not roots:
        return {}
    # Maps import names to distributions by reading every installed distribution's file list:
    # a few milliseconds, paid only by models that use classes from other packages.
    providers = importlib_metadata.packages_distributions()
    versions = {}
    for root in sorted(roots):
        for dist in providers.get(root, []):
            version = _version(dist)
            if version is not None:
                versions[dist] = version
    return versions


def created_at() -> str:
    """UTC time in ISO 8601; honours SOURCE_DATE_EPOCH so that builds can be reproducible."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = (
        _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc)
        if epoch and epoch.isdigit()
        else _dt.datetime.now(_dt.timezone.utc)
    )
    return now.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def qualname(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_estimator(value: Any) -> bool:
    return hasattr(value, "get_params") and hasattr(value, "fit") and not isinstance(value, type)


def warn_if_unfitted(obj: Any, stacklevel: int) -> None:
    """Warns (``UnfittedEstimatorWarning``) when ``obj`` is a scikit-learn estimator that
    scikit-learn's ``check_is_fitted`` calls unfitted: the file would be written, and fail
    only later, when something tries to predict with it."""
    if not _is_estimator(obj) or "sklearn" not in sys.modules:
        return  # an estimator of scikit-learn means scikit-learn is imported already
    try:
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted
    except ImportError:
        return
    try:
        check_is_fitted(obj)
    except NotFittedError:
        warnings.warn(
            f"{qualname(obj)} is not fitted (scikit-learn's check_is_fitted): the file is written, "
            "but the model cannot predict, natively or once loaded. Call fit() before saving it.",
            UnfittedEstimatorWarning,
            stacklevel=stacklevel + 1,
        )
    except Exception:  # not a scikit-learn estimator after all (check_is_fitted's TypeError, ...)
        return


def json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON value describing ``value``: exact for plain data, a short description otherwise."""
    if depth > 20:
        return {"repr": "..."}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if _is_estimator(value):
        return {"class": qualname(value), "params": params_of(value, depth + 1)}
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, type):
        return {"type": qualname(value)}
    if callable(value) and hasattr(value, "__name__"):
        return {"callable": f"{getattr(value, '__module__', '?')}.{value.__name__}"}
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.generic):
            return json_safe(value.item(), depth + 1)
        if isinstance(value, np.dtype):
            return {"dtype": str(value)}
        if isinstance(value, np.ndarray):
            if value.size <= _MAX_LISTED:
                return json_safe(value.tolist(), depth + 1)
            return {"array": {"dtype": str(value.dtype), "shape": list(value.shape)}}
    text = repr(value)
    return {"repr": text if len(text) <= 200 else text[:197] + "..."}


def params_of(estimator: Any, depth: int = 0) -> dict[str, Any]:
    try:
        params = estimator.get_params(deep=False)
    except Exception as exc:  # a broken get_params must not prevent saving
        return {"error": f"get_params failed: {exc}"}
    return {name: json_safe(value, depth + 1) for name, value in sorted(params.items())}


def non_default(obj: Any, params: dict[str, Any]) -> list[str] | None:
    """The names of the parameters whose recorded values differ from the defaults of the
    class's ``__init__`` (what the model card lists; a file cannot tell the defaults
    otherwise), or None when the signature cannot be read."""
    import inspect

    if "error" in params and len(params) == 1:
        return None
    try:
        signature = inspect.signature(type(obj).__init__)
    except (TypeError, ValueError):
        return None
    names = []
    for name, value in params.items():
        parameter = signature.parameters.get(name)
        if parameter is None or parameter.default is inspect.Parameter.empty:
            names.append(name)
        elif json_safe(parameter.default) != value:
            names.append(name)
    return names


def describe_estimator(obj: Any) -> dict[str, Any] | None:
    """Class, params (and which differ from the defaults), features, classes and pipeline
    steps of a fitted estimator."""
    if not _is_estimator(obj):
        return None
    record: dict[str, Any] = {"class": qualname(obj), "params": params_of(obj)}
    changed = non_default(obj, record["params"])
    if changed is not None:
        record["non_default"] = changed
    if hasattr(obj, "n_features_in_"):
        record["n_features_in"] = json_safe(obj.n_features_in_)
    if hasattr(obj, "feature_names_in_"):
        record["feature_names_in"] = json_safe(list(obj.feature_names_in_))
    if hasattr(obj, "classes_"):
        record["classes"] = json_safe(obj.classes_)
    steps = getattr(obj, "steps", None)
    if isinstance(steps, list):
        record["steps"] = [
            {"name": str(name), **(describe_estimator(step) or {"class": json_safe(step)})}
            for name, step in steps
            if isinstance(name, str)
        ]
    return record


def _check_user_json(name: str, value: Any) -> None:
    import json

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be JSON-serialisable (no NaN or infinity): {exc}") from None


def collect_metadata(
    obj: Any,
    *,
    user: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "created_at": created_at(),
        "environment": environment(),
        "object": qualname(obj),
    }
    estimator = describe_estimator(obj)
    if estimator is not None:
        record["estimator"] = estimator
    record["environment"].update(package_versions({record["object"], *_class_names(estimator)}))
    if user is not None:
        if not isinstance(user, dict) or not all(isinstance(k, str) for k in user):
            raise TypeError("metadata must be a dict with str keys")
        _check_user_json("metadata", user)
        record["user"] = user
    if metrics is not None:
        if not isinstance(metrics, dict):
            raise TypeError("metrics must be a dict of name -> number")
        clean = {}
        for name, score in metrics.items():
            if not isinstance(name, str) or isinstance(score, bool) or not isinstance(score, numbers.Real):
                raise TypeError(f"metrics must map str to numbers; got {name!r}: {score!r}")
            if not math.isfinite(score):
                raise ValueError(f"metric {name!r} is not finite: {score!r}")
            clean[name] = int(score) if isinstance(score, numbers.Integral) else float(score)
        record["metrics"] = clean
    return record
