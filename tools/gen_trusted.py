"""Regenerate the default allow-list files in crates/skvault-format/trusted/.

    .venv/bin/python tools/gen_trusted.py

The lists are explicit names, committed and reviewed like code; this script only
spares the typing. tests/test_trusted.py checks the committed lists against the
installed numpy, scipy and scikit-learn.

- numpy: scalar types, ufuncs (safe to reference, e.g. FunctionTransformer(func=np.log1p)),
  a curated set of pure numpy functions (reductions such as FeatureAgglomeration's
  pooling_func=np.mean), ndarray, dtype and MaskedArray (GridSearchCV's cv_results_).
- scipy: the sparse matrix and array classes, and the B-spline objects SplineTransformer holds.
- sklearn: every estimator of all_estimators() (experimental ones enabled), every class
  defined in an estimator's own module or in the internal modules whose objects fitted
  estimators keep (trees, losses, binners, kernels, neighbor trees, distance metrics, ...),
  and a curated set of pure functions that estimators hold as parameters or attributes
  (score functions, metrics, k-means steps, check_array). Functions that read or write
  files, fetch data or run code are never listed. Private test helpers are never listed.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

TRUSTED_DIR = Path(__file__).resolve().parent.parent / "crates" / "skvault-format" / "trusted"

# Modules whose classes live inside fitted estimators. Every class *defined* in them is listed.
SKLEARN_INTERNAL_PREFIXES = (
    "sklearn._loss",
    "sklearn.tree._tree",
    "sklearn.tree._splitter",
    "sklearn.tree._criterion",
    "sklearn.ensemble._hist_gradient_boosting",
    "sklearn.ensemble._gb",
    "sklearn.neighbors._kd_tree",
    "sklearn.neighbors._ball_tree",
    "sklearn.neighbors._binary_tree",
    "sklearn.metrics._dist_metrics",
    "sklearn.metrics._scorer",
    "sklearn.gaussian_process.kernels",
    "sklearn.utils._bunch",
    "sklearn.utils._metadata_requests",
    "sklearn.utils._tags",
    "sklearn.utils._set_output",
    "sklearn.utils._available_if",
    "sklearn.utils._param_validation",
    "sklearn.model_selection._split",
    "sklearn.linear_model._sgd_fast",
    "sklearn.svm._base",
    "sklearn.cluster._birch",
    "sklearn.cluster._hdbscan",
    "sklearn.neural_network._stochastic_optimizers",
    "sklearn.feature_extraction.text",
    "sklearn.preprocessing._encoders",
    "sklearn.compose._column_transformer",
    "sklearn.pipeline",
)


def qualified(obj) -> str | None:
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if not module or not name or "." in name or "<" in name:
        return None
    try:
        if getattr(importlib.import_module(module), name) is not obj:
            return None
    except Exception:
        return None
    return f"{module}.{name}"


# Pure numpy functions (no I/O) that models hold as parameters, e.g. pooling_func=np.mean.
NUMPY_FUNCTIONS = (
    "mean", "median", "average", "sum", "prod", "max", "min", "amax", "amin", "ptp", "std", "var",
    "nanmean", "nanmedian", "nansum", "nanprod", "nanmax", "nanmin", "nanstd", "nanvar",
    "percentile", "quantile", "nanpercentile", "nanquantile", "cumsum", "cumprod", "clip",
    "round", "around", "sort", "argsort", "argmax", "argmin", "any", "all", "ravel",
    "transpose", "diff", "dot", "asarray", "atleast_2d", "column_stack", "hstack", "vstack",
)

# Pure scikit-learn functions that fitted estimators keep as parameters or attributes.
SKLEARN_FUNCTION_MODULES = (
    "sklearn.metrics",  # scorers and metric functions (scoring=..., TunedThresholdClassifierCV)
    "sklearn.feature_selection._univariate_selection",  # f_classif, chi2, ... (score_func)
    "sklearn.feature_selection._mutual_info",
)
SKLEARN_FUNCTIONS = (
    "sklearn.cluster._kmeans._kmeans_single_lloyd",
    "sklearn.cluster._kmeans._kmeans_single_elkan",
    "sklearn.utils.validation.check_array",
    "sklearn.metrics.pairwise.euclidean_distances",
)
# scipy objects SplineTransformer keeps (BSpline, and the array-API helper BSpline stores).
SCIPY_EXTRA = ("scipy.interpolate._bsplines.BSpline",)
SCIPY_EXTRA_FUNCTIONS = ("scipy._lib.array_api_compat.numpy._aliases.asarray",)


def has_compiled_code(cls: type) -> bool:
    """Whether a class (or a base other than Python's builtins) is a C or Cython type: its
    methods may read the state a file gives it without the checks Python code would make."""
    heap_type = 1 << 9  # Py_TPFLAGS_HEAPTYPE: classes written in Python
    return any(not (c.__flags__ & heap_type) and c.__module__ != "builtins" for c in cls.__mro__)


def guarded() -> set[str]:
    """The classes whose state `load` checks in Rust first (skvault_infer::guard::GUARDED)."""
    from skvault import _native

    return set(_native.guarded_classes())


def without_unguarded(names: set[str]) -> set[str]:
    """Drops classes with compiled code that have no state check (SECURITY.md): a trusted class
    whose compiled code reads file state unchecked could be made to read or write out of bounds."""
    keep = set()
    checked = guarded()
    for name in names:
        module, attr = name.rsplit(".", 1)
        obj = getattr(importlib.import_module(module), attr)
        if isinstance(obj, type) and has_compiled_code(obj) and name not in checked:
            continue
        keep.add(name)
    return keep


def numpy_names() -> list[str]:
    import numpy as np

    names = set()
    for attr in NUMPY_FUNCTIONS:
        q = qualified(getattr(np, attr))
        if q:
            names.add(q)
    q = qualified(np.ma.MaskedArray)
    if q:
        names.add(q)
    for attr in dir(np):
        obj = getattr(np, attr)
        if isinstance(obj, np.ufunc) or (isinstance(obj, type) and issubclass(obj, np.generic)):
            q = qualified(obj)
            if q:
                names.add(q)
    names.add("numpy.dtype")
    # Never trusted: ndarray and void can be constructed over raw bytes with an object dtype,
    # which would let a file forge PyObject pointers. Arrays and scalars come only from the
    # loader's own array/scalar nodes.
    names -= {"numpy.ndarray", "numpy.void"}
    return sorted(names)


def scipy_names() -> list[str]:
    import scipy.sparse as sp

    names = set()
    for attr in dir(sp):
        obj = getattr(sp, attr)
        if isinstance(obj, type) and issubclass(obj, sp._base._spbase):
            q = qualified(obj)
            # The C++ kernels of every format read their index arrays unchecked: only the
            # formats whose state load checks first are trusted (CSR, CSC, COO).
            if q and q in guarded():
                names.add(q)
    for dotted in SCIPY_EXTRA + SCIPY_EXTRA_FUNCTIONS:
        module, attr = dotted.rsplit(".", 1)
        try:
            q = qualified(getattr(importlib.import_module(module), attr))
        except (ImportError, AttributeError):
            q = None
        if q:
            names.add(q)
    return sorted(names)


def _internal_modules():
    import sklearn

    for info in pkgutil.walk_packages(sklearn.__path__, "sklearn."):
        name = info.name
        if ".tests" in name or "_testing" in name or "externals" in name:
            continue
        if any(name == p or name.startswith(p + ".") for p in SKLEARN_INTERNAL_PREFIXES):
            yield name


def _classes_defined_in(modname: str) -> set[str]:
    names = set()
    module = importlib.import_module(modname)
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if obj.__module__ == modname:
            q = qualified(obj)
            if q:
                names.add(q)
    return names


def sklearn_names() -> list[str]:
    import warnings

    import sklearn.experimental.enable_halving_search_cv  # noqa: F401
    import sklearn.experimental.enable_iterative_imputer  # noqa: F401
    from sklearn.utils import all_estimators

    names = set()
    estimator_modules = set()
    for _, cls in all_estimators():
        q = qualified(cls)
        if q:
            names.add(q)
            estimator_modules.add(cls.__module__)
    for modname in sorted(estimator_modules):
        names |= _classes_defined_in(modname)
    for modname in SKLEARN_FUNCTION_MODULES:
        module = importlib.import_module(modname)
        for attr in getattr(module, "__all__", dir(module)):
            obj = getattr(module, attr, None)
            if inspect.isfunction(obj) and not attr.startswith("_"):
                q = qualified(obj)
                if q:
                    names.add(q)
    for dotted in SKLEARN_FUNCTIONS:
        module, attr = dotted.rsplit(".", 1)
        q = qualified(getattr(importlib.import_module(module), attr))
        if q:
            names.add(q)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for modname in _internal_modules():
            try:
                module = importlib.import_module(modname)
            except Exception:
                continue
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if obj.__module__ == modname:
                    q = qualified(obj)
                    if q:
                        names.add(q)
    return sorted(without_unguarded(names))


HEADERS = {
    "numpy": "# numpy scalar types and ufuncs (values a model may reference), ndarray and dtype.",
    "scipy": "# scipy.sparse matrix and array classes.",
    "sklearn": "# scikit-learn estimators and the internal classes fitted estimators hold.",
}


def generated() -> dict[str, list[str]]:
    return {"numpy": numpy_names(), "scipy": scipy_names(), "sklearn": sklearn_names()}


def main() -> int:
    import sklearn

    for package, names in generated().items():
        header = HEADERS[package] + f"\n# Generated by tools/gen_trusted.py (scikit-learn {sklearn.__version__}).\n"
        (TRUSTED_DIR / f"{package}.txt").write_text(header + "\n".join(names) + "\n")
        print(f"{package}: {len(names)} names")
    return 0


if __name__ == "__main__":
    sys.exit(main())
