"""The main job end to end on a small real model: train, dump, inspect, load, predict;
native inference, the registry, and an old joblib file scanned and converted."""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skvault


def main() -> int:
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=100, random_state=0))
    model.fit(X_train, y_train)
    print(f"trained {model!r}\n  test accuracy {model.score(X_test, y_test):.3f}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.skv"
        t0 = time.perf_counter()
        skvault.dump(model, path, compress="zstd")
        t1 = time.perf_counter()
        print(f"\nsaved {path.name}: {path.stat().st_size / 1024:.1f} KiB in {1000 * (t1 - t0):.1f} ms "
              f"(pickle would be {len(pickle.dumps(model, protocol=5)) / 1024:.1f} KiB)")

        print("\n$ skvault inspect model.skv")
        sys.stdout.flush()
        subprocess.run([sys.executable, "-m", "skvault", "inspect", str(path)], check=True)

        print(f"untrusted types: {skvault.get_untrusted_types(path) or 'none'}")
        t0 = time.perf_counter()
        loaded = skvault.load(path)
        t1 = time.perf_counter()
        print(f"loaded {type(loaded).__name__} in {1000 * (t1 - t0):.1f} ms (no pickle, nothing untrusted imported)")

        expected = model.predict_proba(X_test)
        got = loaded.predict_proba(X_test)
        if not np.array_equal(expected, got):
            print("ERROR: predictions differ after the round trip", file=sys.stderr)
            return 1
        print(f"predictions for the first 5 test rows: {loaded.predict(X_test[:5]).tolist()}")
        print(f"probabilities identical to the original on all {len(X_test)} test rows")

        # An old joblib file: scan it without running it, then convert it.
        import joblib

        old = Path(tmp) / "model.joblib"
        joblib.dump(model, old, compress=3)
        print("\n$ skvault scan model.joblib")
        sys.stdout.flush()
        subprocess.run([sys.executable, "-m", "skvault", "scan", str(old)], check=True)
        done = skvault.convert(old, Path(tmp) / "converted.skv")
        print(f"converted model.joblib ({done.report.format}) -> converted.skv: {done.arrays} arrays")
        converted = skvault.load(done.path)
        if not np.array_equal(converted.predict_proba(X_test), expected):
            print("ERROR: the converted model predicts differently", file=sys.stderr)
            return 1
        print("the converted model's probabilities are identical too")

        # Native inference: the same predictions from Rust, no scikit-learn objects built.
        native = skvault.native.load(path)
        if not np.array_equal(native.predict_proba(X_test), expected):
            print("ERROR: native inference differs from scikit-learn", file=sys.stderr)
            return 1
        np.save(Path(tmp) / "rows.npy", X_test)
        print("\n$ skvault predict model.skv rows.npy -o labels.csv")
        sys.stdout.flush()
        subprocess.run([sys.executable, "-m", "skvault", "predict", str(path), str(Path(tmp) / "rows.npy"),
                        "-o", str(Path(tmp) / "labels.csv")], check=True)
        header, *labels = (Path(tmp) / "labels.csv").read_text().split()
        print(f"native inference: probabilities identical to scikit-learn; labels.csv: {header}, "
              f"{', '.join(labels[:5])}, ...")

        # A registry in a folder: versions, an alias, no duplicate bytes for the same model.
        reg = skvault.Registry(Path(tmp) / "registry")
        v1 = reg.register(path, "cancer", metrics={"accuracy": float(model.score(X_test, y_test))})
        stored = reg.usage()["blob_bytes"]
        v2 = reg.register(path, "cancer", tags={"stage": "candidate"})
        reg.set_alias("cancer", "champion", v1)
        champion = reg.load("cancer", alias="champion")
        if not np.array_equal(champion.predict_proba(X_test), expected):
            print("ERROR: the registered model predicts differently", file=sys.stderr)
            return 1
        print(f"\nregistry: versions {[v['version'] for v in reg.versions('cancer')]} (v{v2} added "
              f"{reg.usage()['blob_bytes'] - stored} new blob bytes), champion -> v{v1}, same predictions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
