"""Where skvault's save and load time goes on a random forest, measured phase by phase.

    .venv/bin/python bench/profile_skvault.py                 # 100 trees, fitted here (~40 s)
    .venv/bin/python bench/profile_skvault.py --trees 500     # the benchmark's forest (~4 min fit)
    .venv/bin/python bench/profile_skvault.py --pickle rf.pkl # a model pickled beforehand

Each line is the median of --reps runs, all lines run round-robin. The phases are measured by
experiment (calls that stop after a given step), so they overlap: read them as differences.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import blake3
import joblib

import skvault
from skvault import _native
from skvault._metadata import collect_metadata

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--pickle", type=Path, help="load this pickled model instead of fitting")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--nogc", action="store_true", help="also time the loads with gc disabled")
    args = parser.parse_args(argv)

    if args.pickle:
        with open(args.pickle, "rb") as f:
            model = pickle.load(f)
    else:
        from sklearn.datasets import make_classification
        from sklearn.ensemble import RandomForestClassifier

        X, y = make_classification(n_samples=50000, n_features=20, random_state=0)
        model = RandomForestClassifier(
            n_estimators=args.trees, max_depth=20, random_state=0, n_jobs=-1
        ).fit(X, y)

    work = HERE / "work" / "profile"
    work.mkdir(parents=True, exist_ok=True)
    shm = Path(tempfile.mkdtemp(dir="/dev/shm")) if Path("/dev/shm").is_dir() else work
    path = work / "rf.skv"
    skvault.dump(model, path)
    pk = pickle.dumps(model, protocol=5)
    buffers: list[pickle.PickleBuffer] = []
    pickle.dumps(model, protocol=5, buffer_callback=buffers.append)
    raw = [b.raw() for b in buffers]
    manifest = _native.manifest_json(str(path))
    states = [e.tree_.__reduce__() for e in model.estimators_]
    joblib.dump(model, work / "rf.joblib")

    def rebuild_trees() -> None:
        for cls, cargs, state in states:
            cls(*cargs).__setstate__(state)

    loads = {
        "open + validate + parse manifest (get_untrusted_types)": lambda: _native.get_untrusted_types(str(path)),
        "  json.loads of the same manifest text (Python, for scale)": lambda: json.loads(manifest),
        "load mmap=True (no array copy, no digest)": lambda: _native.load(str(path), mmap="r"),
        "load verify=False": lambda: _native.load(str(path), verify=False),
        "load (verify=True, the default)": lambda: _native.load(str(path)),
        "skvault.load (public API: + version check)": lambda: skvault.load(path),
        "verify() alone (open, read and hash every array)": lambda: _native.verify(str(path)),
        "  blake3 of every array, 1 thread (Python blake3)": lambda: [blake3.blake3(r).digest() for r in raw],
        "  sklearn Tree __new__ + __setstate__ for every tree": rebuild_trees,
        "  pickle.loads of in-memory bytes": lambda: pickle.loads(pk),
        "  joblib.load": lambda: joblib.load(work / "rf.joblib"),
    }
    saves = {
        "collect_metadata (Python)": lambda: collect_metadata(model, user=None, metrics=None),
        "_native.dumps (walk, hash, manifest, copy to bytes)": lambda: _native.dumps(model),
        "_native.dump to tmpfs (fsync is free)": lambda: _native.dump(model, str(shm / "rf.skv")),
        "_native.dump to disk": lambda: _native.dump(model, str(work / "rf2.skv")),
        "skvault.dump to disk (public API)": lambda: skvault.dump(model, work / "rf3.skv"),
        "  pickle.dumps, buffers out of band (object walk only)": lambda: pickle.dumps(
            model, protocol=5, buffer_callback=lambda b: None
        ),
        "  blake3 of every array, 1 thread (Python blake3)": lambda: [blake3.blake3(r).digest() for r in raw],
        "  joblib.dump to disk": lambda: joblib.dump(model, work / "rf2.joblib"),
    }
    if args.nogc:
        loads["load (verify=True), gc disabled"] = ("nogc", loads["load (verify=True, the default)"])
        loads["  pickle.loads, gc disabled"] = ("nogc", loads["  pickle.loads of in-memory bytes"])

    def measure(table: dict) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {k: [] for k in table}
        for _ in range(args.reps):
            for name, fn in table.items():
                nogc = isinstance(fn, tuple)
                if nogc:
                    fn = fn[1]
                gc.collect()
                if nogc:
                    gc.disable()
                t0 = time.perf_counter()
                out = fn()
                times[name].append(time.perf_counter() - t0)
                gc.enable()
                del out
        return times

    size = path.stat().st_size
    print(f"forest of {len(model.estimators_)} trees: {size / 1e6:.1f} MB file, "
          f"{len(raw)} arrays, manifest {len(manifest) / 1e3:.0f} kB of JSON, "
          f"load average {[round(x, 2) for x in os.getloadavg()]}")
    try:
        for title, table in (("load", loads), ("save", saves)):
            print(f"\n{title} (median of {args.reps}, ms)")
            for name, ts in measure(table).items():
                print(f"  {1000 * statistics.median(ts):8.1f}  {name}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if shm != work:
            shutil.rmtree(shm, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
