"""The estimator zoo itself: every case is fitted, its methods run and are deterministic,
and every estimator of sklearn.utils.all_estimators() has a case or a reason to be skipped."""

from __future__ import annotations

import time
import warnings

import estimator_zoo  # noqa: E402  (tests/ is on sys.path under pytest)
from sklearn.utils import all_estimators


def test_zoo_builds_runs_and_covers_all_estimators():
    start = time.perf_counter()
    cases = estimator_zoo.cases()
    elapsed = time.perf_counter() - start
    print(f"\nestimator zoo: {len(cases)} cases built in {elapsed:.1f} s")
    print("skipped:", estimator_zoo.SKIPPED)

    assert cases, "no cases"
    names = [case.name for case in cases]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert duplicates == [], f"duplicate case names: {duplicates}"

    problems = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in cases:
            unknown = set(case.methods) - set(estimator_zoo.CANDIDATE_METHODS)
            if unknown:
                problems.append(f"{case.name}: unknown methods {sorted(unknown)}")
            for method in case.methods:
                try:
                    first = getattr(case.estimator, method)(case.X)
                    second = getattr(case.estimator, method)(case.X)
                except Exception as exc:
                    problems.append(f"{case.name}.{method}: {type(exc).__name__}: {exc}")
                    continue
                if not estimator_zoo.same_output(first, second):
                    problems.append(f"{case.name}.{method}: not deterministic")
    assert problems == [], "\n".join(problems)

    for name, reason in estimator_zoo.SKIPPED.items():
        assert reason.strip(), f"SKIPPED[{name!r}] has no reason"

    covered = estimator_zoo.covered_names(cases)
    both = sorted(covered & set(estimator_zoo.SKIPPED))
    assert both == [], f"estimators both covered and skipped: {both}"
    missing = sorted(set(dict(all_estimators())) - covered - set(estimator_zoo.SKIPPED))
    assert missing == [], f"estimators with neither a case nor a skip reason: {missing}"
