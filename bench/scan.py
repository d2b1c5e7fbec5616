"""`skvault scan` against picklescan and fickling, side by side in one run.

    .venv/bin/python bench/scan.py            # writes bench/results/scan.{md,json}
    .venv/bin/python bench/scan.py --quick    # 50-tree forest, writes bench/work/quick/

Two workloads:
- the 500-tree RandomForestClassifier(max_depth=20) of the foundation benchmark, saved with
  joblib (uncompressed) and with pickle protocol 4;
- a folder of many small files: the test corpus of `make_fixtures.py` (benign estimators and
  malicious pickles, protocols 0-5, joblib compressed or not).

Every scanner runs in this process through its Python API (no process start-up counted):
skvault.scan, picklescan.scanner.scan_file_path, fickling.scan_file. Times are medians of
several runs; files are in the page cache. Verdicts on the corpus are compared with the
corpus's expectations (an unsafe file called safe is a false negative).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MAKE_FIXTURES = ROOT / "crates" / "skvault-pickle" / "tests" / "fixtures" / "make_fixtures.py"

import environment  # noqa: E402
import plots  # noqa: E402
from timing import median_time  # noqa: E402


def skvault_scan(path: Path) -> str:
    import skvault

    r = skvault.scan(path)
    return "unsafe" if r.verdict == "unsafe" else ("safe" if r.verdict == "safe" else "unknown")


def picklescan_scan(path: Path) -> str:
    from picklescan.scanner import scan_file_path

    r = scan_file_path(str(path))
    if r.scan_err:
        return "error"
    if r.infected_files:
        return "unsafe"
    return "safe" if r.suspicious_count == 0 else "unknown"


def fickling_scan(path: Path) -> str:
    import fickling

    with redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            r = fickling.scan_file(str(path), graceful=True)
        except Exception:
            return "unsafe"
    severity = str(getattr(r, "severity", "")).upper()
    if "LIKELY_SAFE" in severity and "UN" not in severity.split("LIKELY_SAFE")[0]:
        return "safe"
    return "unsafe" if "UNSAFE" in severity or "OVERTLY" in severity else "unknown"


SCANNERS: dict[str, Callable[[Path], str]] = {
    "skvault": skvault_scan,
    "picklescan": picklescan_scan,
    "fickling": fickling_scan,
}


def build_forest(work: Path, quick: bool) -> list[Path]:
    import pickle

    import joblib
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=50000, n_features=20, random_state=0)
    n = 50 if quick else 500
    model = RandomForestClassifier(n_estimators=n, max_depth=20, random_state=0, n_jobs=-1).fit(X, y)
    jl, pk = work / "forest.joblib", work / "forest.pkl"
    joblib.dump(model, jl)
    with open(pk, "wb") as f:
        pickle.dump(model, f, protocol=4)
    return [jl, pk]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    start = environment.snapshot()
    out = ROOT / "bench" / "work" / "quick" if args.quick else ROOT / "bench" / "results"
    work = ROOT / "bench" / "work" / "scan"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out.mkdir(parents=True, exist_ok=True)
    try:
        large = build_forest(work, args.quick)
        corpus = work / "corpus"
        subprocess.run([sys.executable, str(MAKE_FIXTURES), str(corpus)], check=True, capture_output=True)
        index = json.loads((corpus / "index.json").read_text())["files"]
        small = [corpus / e["file"] for e in index]
        results: dict[str, dict[str, float]] = {}
        verdicts: dict[str, dict[str, int]] = {}
        for name, scan in SCANNERS.items():
            r: dict[str, float] = {}
            for f in large:
                verdict = scan(f)  # warm-up, and the verdict on a benign model
                r[f"{f.name} verdict"] = verdict  # type: ignore[assignment]
                r[f"{f.name} s"] = median_time(lambda f=f: scan(f), 3 if not args.quick else 5)
            r["corpus s"] = median_time(lambda: [scan(p) for p in small], 3)
            results[name] = r
            misses = {"false negatives": 0, "false positives": 0, "agree": 0}
            for e, p in zip(index, small):
                got = scan(p)
                got = "unsafe" if got == "error" else got  # what a careful user makes of it
                if e["expect"] == "unsafe" and got == "safe":
                    misses["false negatives"] += 1
                elif e["expect"] == "safe" and got == "unsafe":
                    misses["false positives"] += 1
                misses["agree"] += got == e["expect"]
            verdicts[name] = misses
            print(name, r, misses, flush=True)
        sizes = {f.name: f.stat().st_size for f in large}
        corpus_bytes = sum(p.stat().st_size for p in small)
        head = environment.report_lines(environment.describe(work), start, environment.snapshot())
        write_report(out, results, verdicts, sizes, len(small), corpus_bytes, len(index), args.quick, head)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def write_report(out, results, verdicts, sizes, n_small, corpus_bytes, n_index, quick, head) -> None:
    names = list(results)
    lines = [
        "# `skvault scan` vs picklescan and fickling",
        "",
        *head,
        "",
        "Generated by `bench/scan.py` (part of `make bench`). Ratios are the other scanner's time "
        "divided by skvault's (higher = skvault faster); absolute times are noisy on shared machines.",
        "",
        f"- Large files: RandomForestClassifier({'50' if quick else '500'} trees, max_depth=20) on "
        "make_classification(50000, 20); "
        + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes.items()),
        f"- Small files: the test corpus, {n_small} files, {corpus_bytes / 1e6:.2f} MB in all",
        "",
        "Chart: [scan.png](scan.png)",
        "",
        "| scanner | " + " | ".join(f"{k}: MB/s" for k in sizes) + " | corpus: files/s | "
        + " | ".join(f"{k}: x skvault" for k in sizes) + " | corpus: x skvault |",
        "|---" * (2 + 2 * len(sizes) + 1) + "|",
    ]
    base = results["skvault"]
    for n in names:
        r = results[n]
        cells = [f"{sizes[k] / 1e6 / r[f'{k} s']:.0f}" for k in sizes]
        cells.append(f"{n_small / r['corpus s']:.0f}")
        cells += [f"{r[f'{k} s'] / base[f'{k} s']:.1f}" for k in sizes]
        cells.append(f"{r['corpus s'] / base['corpus s']:.1f}")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", "## Verdicts", "",
              "| scanner | " + " | ".join(f"{k}" for k in sizes) + " | corpus agrees | false negatives | false positives |",
              "|---" * (1 + len(sizes) + 3) + "|"]
    for n in names:
        v = verdicts[n]
        lines.append(
            f"| {n} | " + " | ".join(str(results[n][f'{k} verdict']) for k in sizes)
            + f" | {v['agree']}/{n_index} | {v['false negatives']} | {v['false positives']} |"
        )
    # Only scanners that read the file to its end (and call the benign model safe or unknown)
    # are comparable: giving up at the first joblib array is fast and useless.
    def ratio_on(key: str) -> tuple[float, list[str]]:
        complete = [n for n in names if n != "skvault" and results[n][f"{key} verdict"] in ("safe", "unknown")]
        if not complete:
            return float("inf"), []
        fastest = min(results[n][f"{key} s"] for n in complete)
        return fastest / base[f"{key} s"], complete

    lines += ["", "## Target", ""]
    for key in sizes:
        ratio, complete = ratio_on(key)
        if complete:
            lines.append(
                f"- {key}: skvault at least 10x faster than the fastest complete other scanner "
                f"({', '.join(complete)}): {ratio:.1f}x ({'PASS' if ratio >= 10 else 'FAIL'})"
            )
        else:
            lines.append(
                f"- {key}: no other scanner reads this file to its end (picklescan stops with an "
                "error at the first joblib array; fickling rates the benign model malicious after its "
                "first pickle), so there is no speed to compare; skvault reads every pickle in it and "
                "skips the array bytes"
            )
    lines += [
        f"- no false negatives on the corpus: {verdicts['skvault']['false negatives']} "
        f"({'PASS' if verdicts['skvault']['false negatives'] == 0 else 'FAIL'})",
    ]
    (out / "scan.md").write_text("\n".join(lines) + "\n")
    (out / "scan.json").write_text(json.dumps({"results": results, "verdicts": verdicts, "sizes": sizes}, indent=1))
    plots.render("scan", out)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
