"""The registry on a folder and on S3 (s3s-fs on loopback) against writing the file alone,
and MLflow's model registry (local file store) when MLflow is installed.

    .venv/bin/python bench/registry.py           # 500-tree forest: bench/results/registry.{md,json}
    .venv/bin/python bench/registry.py --quick   # 50 trees: bench/work/registry-quick/

Times are medians over a few runs. "register" starts from a .skv file already on disk;
"dump + register" from the fitted model. "2nd register +bytes" is what a second
registration of the same model adds to the blob store (target: 0). The S3 figures include
the registry's 250 ms read-back of the version document (docs/REGISTRY.md section 5).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import plots  # noqa: E402
import skvault  # noqa: E402
from registry_backends import Backend, S3Server  # noqa: E402


def median_time(fn, reps: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_skvault(backend: Backend, model, path: Path, X, expected, reps: int) -> dict:
    reg = backend.open()
    t_reg, _ = median_time(lambda: reg.register(path, "forest"), reps)
    t_dump_reg, _ = median_time(lambda: reg.register(model, "forest-dumped"), 1)
    before = reg.usage()
    reg.register(path, "forest")
    added = reg.usage()["blob_bytes"] - before["blob_bytes"]
    t_load, loaded = median_time(lambda: reg.load("forest"), reps)
    assert np.array_equal(loaded.predict_proba(X), expected)
    return {"register": t_reg, "dump+register": t_dump_reg, "load": t_load,
            "second_register_added_bytes": added, "stored_bytes": reg.usage()["blob_bytes"]}


def bench_mlflow(model, work: Path, X, expected, reps: int) -> dict | None:
    # MLflow 3 refuses its file store unless asked; it is the local store the issue compares.
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        import mlflow
        import mlflow.sklearn
    except ImportError:
        return None
    store = work / "mlruns"
    uri = store.as_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("bench")

    def register():
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(model, name="model", serialization_format="pickle")
        return mlflow.register_model(info.model_uri, "forest")

    t_reg, _ = median_time(register, reps)
    before = du(store)
    register()
    added = du(store) - before
    t_load, loaded = median_time(lambda: mlflow.sklearn.load_model("models:/forest/1"), reps)
    assert np.array_equal(loaded.predict_proba(X), expected)
    return {"dump+register": t_reg, "load": t_load, "second_register_added_bytes": added,
            "stored_bytes": du(store), "version": mlflow.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--render", action="store_true", help="only rewrite registry.md from registry.json")
    args = parser.parse_args(argv)
    if args.render:
        r = json.loads((HERE / "results" / "registry.json").read_text())
        (HERE / "results" / "registry.md").write_text(render(r))
        plots.render("registry", HERE / "results")
        return 0
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    n = 50 if args.quick else 500
    reps = 3
    X, y = make_classification(n_samples=50000, n_features=20, random_state=0)
    model = RandomForestClassifier(n_estimators=n, max_depth=20, random_state=0, n_jobs=-1).fit(X, y)
    model.set_params(n_jobs=1)
    expected = model.predict_proba(X[:1000])
    out_dir = HERE / "work" / "registry-quick" if args.quick else HERE / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {"model": f"RandomForestClassifier(n_estimators={n}, max_depth=20)",
                     "cpus": os.cpu_count(), "loadavg_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="skvault-bench-") as tmp:
        work = Path(tmp)
        path = work / "forest.skv"
        t_dump, _ = median_time(lambda: skvault.dump(model, path), reps)
        t_load, _ = median_time(lambda: skvault.load(path), reps)
        results["file"] = {"dump": t_dump, "load": t_load, "size": path.stat().st_size}
        print(f"file: dump {t_dump:.3f}s load {t_load:.3f}s size {path.stat().st_size}", flush=True)
        results["folder"] = bench_skvault(Backend("folder", work, None), model, path, X[:1000], expected, reps)
        print("folder:", results["folder"], flush=True)
        server = S3Server()
        try:
            results["s3"] = bench_skvault(Backend("s3", work, server), model, path, X[:1000], expected, reps)
        finally:
            server.stop()
        print("s3:", results["s3"], flush=True)
        results["mlflow"] = bench_mlflow(model, work, X[:1000], expected, reps)
        print("mlflow:", results["mlflow"], flush=True)
    results["loadavg_end"] = list(os.getloadavg())
    (out_dir / "registry.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "registry.md").write_text(render(results))
    plots.render("registry", out_dir)
    print((out_dir / "registry.md").read_text())
    return 0


def load_note(r: dict) -> str:
    """How busy the machine was: absolute times mean little on a loaded machine; the ratios,
    taken within one run, hold up better."""
    if "loadavg_start" in r:
        seen = f"load average (1/5/15 min) {r['loadavg_start']} at the start, {r['loadavg_end']} at the end"
    elif "loadavg_observed" in r:
        seen = f"load average {r['loadavg_observed']['values']} ({r['loadavg_observed']['how']})"
    else:
        return "Machine load: not recorded."
    return (f"Machine: {r.get('cpus', '?')} CPUs; {seen}. A load above the CPU count inflates "
            "every absolute time; compare the ratios.")


def render(r: dict) -> str:
    f = r["file"]
    lines = [
        f"# Registry benchmark: {r['model']}",
        "",
        f"File alone: `skvault.dump` {f['dump']:.3f} s, `skvault.load` {f['load']:.3f} s, "
        f"{f['size'] / 1e6:.1f} MB. Ratios are against these.",
        "",
        load_note(r),
        "",
        "Chart: [registry.png](registry.png)",
        "",
        "| store | register (file) | dump + register | load | 2nd register: new blob bytes | stored bytes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in [("folder", "skvault, folder"), ("s3", "skvault, S3 (s3s-fs, loopback)")]:
        x = r[key]
        lines.append(
            f"| {label} | {x['register']:.3f} s ({x['register'] / f['dump']:.1f}x dump) "
            f"| {x['dump+register']:.3f} s ({x['dump+register'] / f['dump']:.1f}x) "
            f"| {x['load']:.3f} s ({x['load'] / f['load']:.1f}x load) "
            f"| {x['second_register_added_bytes']} | {x['stored_bytes'] / 1e6:.1f} MB |"
        )
    m = r.get("mlflow")
    if m:
        lines.append(
            f"| MLflow {m['version']}, file store | n/a | {m['dump+register']:.3f} s "
            f"({m['dump+register'] / f['dump']:.1f}x) | {m['load']:.3f} s ({m['load'] / f['load']:.1f}x) "
            f"| {m['second_register_added_bytes']} (whole directory) | {m['stored_bytes'] / 1e6:.1f} MB |"
        )
    else:
        lines.append("| MLflow | not installed | | | | |")
    lines += ["", "Generated by `bench/registry.py` (`make bench`).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
