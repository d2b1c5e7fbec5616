"""Native inference (skvault.native) against scikit-learn, onnxruntime (skl2onnx) and treelite.

    .venv/bin/python bench/native.py            # writes bench/results/native.{md,json}
    .venv/bin/python bench/native.py --quick    # 50-tree forest, writes bench/work/quick/
    .venv/bin/python bench/native.py --render bench/results/native.json   # the report again

treelite runs twice: its interpreter (gtil) and its compiled predictor (tl2cgen: C code from
the trees, compiled by gcc; the compile time is reported, not timed; models with more nodes
than TL2CGEN_MAX_NODES are skipped, the forest among them).

Models: the 500-tree RandomForestClassifier(max_depth=20), HistGradientBoostingClassifier
(max_iter=200) and StandardScaler + LogisticRegression of `bench/run.py`, fitted on
make_classification(50000, 20). Measured: predict_proba on 10000 rows (throughput, best of
several runs) and on one row (latency, median of many calls: the same row again and again,
whose path through the trees stays in the caches, and 1000 different rows of the batch in
turn, as a service receives them), every engine limited to the
same number of threads (--threads, default: all cores). Outputs are checked against
scikit-learn before timing: native must be bit-identical for the trees, within 1e-12 for the
pipeline; the others are reported with their largest difference. An engine that cannot
convert or run a model is reported as such, with the reason.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import sys
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="50-tree forest, fewer repetitions")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--render", type=Path, metavar="JSON",
                   help="only write the report again from a run's native.json (no measuring)")
    return p.parse_args()


ARGS = parse_args()
# Thread pools read these when they start: set them before numpy, sklearn and skvault load.
os.environ["RAYON_NUM_THREADS"] = str(ARGS.threads)
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402

import skvault  # noqa: E402
import skvault.native  # noqa: E402
import environment  # noqa: E402
from timing import best_time, median_time, write_results  # noqa: E402


def build_models(quick: bool) -> dict[str, Any]:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(n_samples=50000, n_features=20, random_state=0)
    n = 50 if quick else 500
    models = {
        f"forest ({n} trees)": RandomForestClassifier(
            n_estimators=n, max_depth=20, random_state=0, n_jobs=ARGS.threads
        ),
        "hgb (200 iterations)": HistGradientBoostingClassifier(max_iter=200, random_state=0),
        "pipeline (scaler + logistic)": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    }
    for name, m in models.items():
        t = time.perf_counter()
        m.fit(X, y)
        print(f"fitted {name} in {time.perf_counter() - t:.1f}s", flush=True)
    return models, X


# tl2cgen compiles every node into C: past this many nodes gcc's time and memory dominate the
# run (the 500-tree forest has about 2 million), so larger models are reported as skipped.
TL2CGEN_MAX_NODES = 200_000


def proba_columns(p: np.ndarray, n: int) -> np.ndarray:
    """treelite's output for `n` rows as predict_proba's columns (binary: P(class 1) only)."""
    p = p.reshape(n, -1)
    return np.column_stack([1 - p[:, 0], p[:, 0]]) if p.shape[1] == 1 else p


def tree_nodes(model: Any) -> int:
    """Nodes in a tree ensemble's trees (0 for other models)."""
    if hasattr(model, "_predictors"):
        return sum(len(p.nodes) for it in model._predictors for p in it)
    return sum(e.tree_.node_count for e in getattr(model, "estimators_", []) if hasattr(e, "tree_"))


def tl2cgen_engine(model: Any, tl: Any, workdir: Path, notes: dict[str, str]
                   ) -> Callable[[np.ndarray], np.ndarray] | str:
    """treelite's compiled predictor (tl2cgen + gcc); its compile time goes into `notes`."""
    import tl2cgen

    nodes = tree_nodes(model)
    if nodes > TL2CGEN_MAX_NODES:
        return f"skipped: {nodes} nodes to compile into C (the limit here is {TL2CGEN_MAX_NODES})"
    lib = workdir / "model.so"
    t = time.perf_counter()
    tl2cgen.export_lib(tl, toolchain="gcc", libpath=str(lib), params={"parallel_comp": ARGS.threads},
                       nthread=ARGS.threads)
    notes["tl2cgen compile (s)"] = f"{time.perf_counter() - t:.1f}"
    pred = tl2cgen.Predictor(str(lib), nthread=ARGS.threads)
    return lambda A: proba_columns(pred.predict(tl2cgen.DMatrix(A)), len(A))


def engines(model: Any, X: np.ndarray, workdir: Path, notes: dict[str, str],
            loaders: dict[str, Callable[[], Any]]) -> dict[str, Callable[[np.ndarray], np.ndarray] | str]:
    """name -> predict_proba function, or the reason the engine is not available. Extra
    facts to report (tl2cgen's compile time) go into `notes`; `loaders` gets, for the
    engines that open a file, the call from that file to a model ready to predict."""
    out: dict[str, Callable | str] = {"scikit-learn": model.predict_proba}
    pickled = workdir / "model.pkl"
    pickled.write_bytes(pickle.dumps(model, protocol=5))
    loaders["scikit-learn"] = lambda: pickle.loads(pickled.read_bytes())
    path = workdir / "model.skv"
    skvault.dump(model, path)
    native = skvault.native.load(path)
    out["skvault.native"] = native.predict_proba
    loaders["skvault.native"] = lambda: skvault.native.load(path)
    try:
        import onnxruntime as ort
        from skl2onnx import to_onnx

        options = {id(model): {"zipmap": False}}
        if hasattr(model, "steps"):
            options = {id(model.steps[-1][1]): {"zipmap": False}}
        onx = to_onnx(model, X[:1].astype(np.float32), options=options)
        so = ort.SessionOptions()
        so.intra_op_num_threads = ARGS.threads
        so.inter_op_num_threads = 1
        onnx_path = workdir / "model.onnx"
        onnx_path.write_bytes(onx.SerializeToString())
        sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        loaders["onnxruntime"] = lambda: ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        out["onnxruntime"] = lambda A: sess.run(["probabilities"], {name: A.astype(np.float32)})[0]
    except Exception as e:  # noqa: BLE001 - any conversion failure is reported, not fatal
        out["onnxruntime"] = f"not available: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    try:
        import treelite

        tl = treelite.sklearn.import_model(model)

        def tl_proba(A: np.ndarray) -> np.ndarray:
            return proba_columns(treelite.gtil.predict(tl, A.astype(np.float32), nthread=ARGS.threads), len(A))

        out["treelite (gtil)"] = tl_proba
    except Exception as e:  # noqa: BLE001
        out["treelite (gtil)"] = f"not available: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
        return out
    try:
        out["tl2cgen (compiled)"] = tl2cgen_engine(model, tl, workdir, notes)
    except Exception as e:  # noqa: BLE001
        out["tl2cgen (compiled)"] = f"not available: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    return out


# One-row latencies below this are measured again in interleaved rounds (scikit-learn's and
# treelite's interpreter, tens of milliseconds to a millisecond a row, are not).
FAST_ONE_ROW_S = 1e-3
# Rounds of the interleaved one-row measurement, and the pause before each engine's block
# (its warm-up follows). onnxruntime's threads spin for a while after its calls and slow
# another engine's row while they do (native's 8.7 µs row took 13 µs right after them, back
# 2 s later), but after a pause of 1 s onnxruntime's own row took 25 µs instead of 19 (0
# or 0.1 s: 19): a short pause, which leaves the next engine, native in some rounds, to
# share the core with onnxruntime's spinning threads for a while rather than flatter it.
ONE_ROW_ROUNDS = 5
ONE_ROW_PAUSE_S = 0.1


def one_row_rounds(fast: dict[str, Callable[[np.ndarray], np.ndarray]], rows: dict[str, dict],
                   one: np.ndarray, varied: list[np.ndarray], reps: int) -> None:
    """Measures the fast engines' one-row latencies again, in rounds that interleave the
    engines (each round in another order, a pause before each block), and keeps the median
    of the rounds' medians: a slow spell of this shared machine (seconds long, up to 2x)
    then falls on every engine alike instead of on the one measured at that moment. The
    first measurement's block stays in the JSON as `one_row_first_us`."""
    rounds = 2 if ARGS.quick else ONE_ROW_ROUNDS
    same: dict[str, list[float]] = {e: [] for e in fast}
    other: dict[str, list[float]] = {e: [] for e in fast}
    names = list(fast)
    if not names:
        return
    for r in range(rounds):
        k = r % len(names)
        for engine in names[k:] + names[:k]:
            time.sleep(ONE_ROW_PAUSE_S)
            fn = fast[engine]
            # Warmed up after the pause: threads woken, caches and clocks back.
            for _ in range(reps // 10):
                fn(one)
            same[engine].append(median_time(lambda: fn(one), reps))
            turn = itertools.cycle(varied)
            other[engine].append(median_time(lambda: fn(next(turn)), reps))
    for engine in names:
        row = rows[engine]
        row["one_row_first_us"] = row["one_row_us"]
        row["one_row_us"] = statistics.median(same[engine]) * 1e6
        row["one_row_varied_us"] = statistics.median(other[engine]) * 1e6
        row["one_row_rounds_us"] = [t * 1e6 for t in same[engine]]
        print(f"  {engine}: 1 row over {rounds} interleaved rounds {row['one_row_us']:.1f} us "
              f"({', '.join(f'{t * 1e6:.1f}' for t in same[engine])}), varied rows "
              f"{row['one_row_varied_us']:.1f} us", flush=True)


def main() -> None:
    from threadpoolctl import threadpool_limits

    reps_batch = 3 if ARGS.quick else 5
    reps_one = 200 if ARGS.quick else 1000
    reps_load = 3 if ARGS.quick else 5
    results: dict[str, Any] = {"threads": ARGS.threads, "quick": ARGS.quick, "models": {}, "notes": {}, "run_start": environment.snapshot()}
    with threadpool_limits(limits=ARGS.threads):
        models, X = build_models(ARGS.quick)
        rng = np.random.RandomState(1)
        batch = X[rng.choice(len(X), 10000, replace=False)]
        one = batch[:1].copy()
        varied = [batch[i:i + 1].copy() for i in range(1000)]
        for name, model in models.items():
            print(f"== {name}", flush=True)
            # The reference runs single-threaded: a forest's predict_proba with n_jobs > 1 sums
            # tree outputs in whichever order threads finish, so its last bits vary run to run.
            n_jobs = getattr(model, "n_jobs", None)
            if n_jobs is not None:
                model.set_params(n_jobs=None)
            want = model.predict_proba(batch)
            if n_jobs is not None:
                model.set_params(n_jobs=n_jobs)
            rows = {}
            notes: dict[str, str] = {}
            loaders: dict[str, Callable[[], Any]] = {}
            fast: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
            with tempfile.TemporaryDirectory() as d:
                for engine, fn in engines(model, X, Path(d), notes, loaders).items():
                    if isinstance(fn, str):
                        rows[engine] = {"note": fn}
                        print(f"  {engine}: {fn}")
                        continue
                    got = np.asarray(fn(batch), dtype=np.float64)
                    diff = float(np.max(np.abs(got - want)))
                    if engine == "skvault.native":
                        exact = "pipeline" not in name
                        ok = np.array_equal(got, want) if exact else diff <= 1e-12
                        if not ok:
                            raise SystemExit(f"native output differs from scikit-learn on {name}: {diff}")
                    t_batch = best_time(lambda: fn(batch), reps_batch)
                    reps = reps_one if engine != "scikit-learn" else reps_one // 10
                    t_one = median_time(lambda: fn(one), reps)
                    turn = itertools.cycle(varied)
                    t_varied = median_time(lambda: fn(next(turn)), reps)
                    load = loaders.get(engine)
                    t_load = median_time(load, reps_load) if load else None
                    rows[engine] = {
                        "load_ms": None if t_load is None else t_load * 1e3,
                        "batch_rows_per_s": 10000 / t_batch,
                        "batch_ms": t_batch * 1e3,
                        "one_row_us": t_one * 1e6,
                        "one_row_varied_us": t_varied * 1e6,
                        "max_abs_diff": diff,
                    }
                    print(f"  {engine}: 10000 rows {t_batch * 1e3:.1f} ms, 1 row {t_one * 1e6:.1f} us (varied rows "
                          f"{t_varied * 1e6:.1f} us), "
                          f"max |diff| {diff:.2g}", flush=True)
                    if t_one < FAST_ONE_ROW_S:
                        fast[engine] = fn
                one_row_rounds(fast, rows, one, varied, reps_one)
            base = rows["scikit-learn"]["batch_rows_per_s"]
            for r in rows.values():
                if "batch_rows_per_s" in r:
                    r["throughput_vs_sklearn"] = r["batch_rows_per_s"] / base
            results["models"][name] = rows
            results.setdefault("notes", {})[name] = notes
    write(results)


def write(results: dict[str, Any]) -> None:
    lines = [
        "# Native inference: predict_proba throughput and latency",
        "",
        f"Threads: {results['threads']} for every engine. Batch: 10000 rows (best of several runs);"
        " one row: median latency, of the same row again and again (its path stays in the"
        " caches) and of 1000 different rows in turn (what a service receives); for the engines"
        " under 1 ms a row, the median of 5 rounds of 1000 calls that interleave them (each"
        " round in another order, 0.1 s of pause and 100 calls of warm-up before each engine's block), so that a slow"
        " spell of the machine falls on all of them alike. Ratio: batch throughput / scikit-learn's. Load: median time"
        " from the file (in the page cache) to a model ready to predict: `pickle.loads` of the"
        " file's bytes for scikit-learn, `skvault.native.load` (digests checked, state"
        " validated), an `InferenceSession` on the .onnx file for onnxruntime; not measured"
        " for treelite.",
        "",
        "Chart: [native.png](native.png)",
        "",
    ]
    for name, rows in results["models"].items():
        lines += [f"## {name}", "", "| engine | 10000 rows (ms) | ratio | 1 row, same (µs) | 1 row, varied (µs) "
                  "| load (ms) | max abs diff |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for engine, r in rows.items():
            if "note" in r:
                lines.append(f"| {engine} | {r['note']} | | | | | |")
            else:
                load = r.get("load_ms")
                load = "" if load is None else f"{load:.1f}" if load >= 1 else f"{load:.2f}"
                varied = r.get("one_row_varied_us")  # runs before it was measured lack it
                varied = "" if varied is None else f"{varied:.1f}"
                lines.append(
                    f"| {engine} | {r['batch_ms']:.1f} | {r['throughput_vs_sklearn']:.2f}x | "
                    f"{r['one_row_us']:.1f} | {varied} | {load} | {r['max_abs_diff']:.2g} |"
                )
        lines.append("")
        for key, value in results["notes"].get(name, {}).items():
            lines += [f"{key}: {value} (not included in the times above).", ""]
    write_results("native", results, lines, results.get("quick", ARGS.quick))


if __name__ == "__main__":
    if ARGS.render:
        write(json.loads(ARGS.render.read_text()))
    else:
        main()
