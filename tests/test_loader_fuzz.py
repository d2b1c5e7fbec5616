"""Fuzzing the Python loader's object construction (issue 17): seeded mutations of real
dumps (integers of node, index and count arrays; integers and shapes of the manifest), each
loaded and then used (predict, toarray, query) in a child process with an address-space
limit. A mutated file may load, be refused or raise inside scikit-learn; it must never crash
the interpreter (a signal), hang, or exhaust memory.

SKVAULT_LOADER_FUZZ=<n> sets the number of mutations per model (default 60);
SKVAULT_FUZZ_SEED the seed.
"""

from __future__ import annotations

import copy
import os
import random
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
from hostile import Forge, run_limited
from skv_bytes import SkvParts, blob_entries
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeRegressor

import skvault

N = int(os.environ.get("SKVAULT_LOADER_FUZZ", "60"))
SEED = int(os.environ.get("SKVAULT_FUZZ_SEED", "17"))
RNG = np.random.RandomState(0)
X = RNG.rand(80, 3)
Y = (X[:, 0] + X[:, 1] > 1).astype(int)

MODELS = {
    "tree": lambda: DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, X[:, 2]),
    "forest": lambda: RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, Y),
    "gradient boosting": lambda: GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, Y),
    "hist gradient boosting": lambda: HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, Y),
    "sparse coef": lambda: LogisticRegression().fit(X, Y).sparsify(),
    "sparse matrix": lambda: sp.random(6, 5, density=0.5, format="csr", random_state=0),
    "kd tree": lambda: KNeighborsClassifier(3, algorithm="kd_tree").fit(X, Y),
    "ball tree": lambda: KNeighborsClassifier(3, algorithm="ball_tree", metric="mahalanobis", metric_params={"VI": np.eye(3)}).fit(X, Y),
    "svc": lambda: SVC(probability=True, random_state=0).fit(X, (X[:, 0] * 3).astype(int)),
}

def _child(n_features: int, body: str) -> str:
    """A child script: for each file of the folder it is given, named on stdout first (the last
    name printed is the file a crash happened on), ``body`` runs with the file's ``path`` and
    ``X`` (20 rows of ``n_features``); "done" once every file is through."""
    head = textwrap.dedent(
        f"""
        import sys, os, warnings
        import numpy as np
        import skvault
        import skvault.native
        warnings.simplefilter("ignore")
        X = np.random.RandomState(1).rand(20, {n_features})
        folder = sys.argv[1]
        for name in sorted(os.listdir(folder)):
            print(name, flush=True)
            path = os.path.join(folder, name)
        """
    )
    return head + textwrap.indent(textwrap.dedent(body), "    ") + 'print("done", flush=True)\n'


CHILD = _child(
    3,
    """
    try:
        obj = skvault.loads(open(path, "rb").read())
    except skvault.SkvaultError:
        continue
    for method in ("predict", "predict_proba", "decision_function", "kneighbors", "toarray", "apply"):
        f = getattr(obj, method, None)
        if f is None:
            continue
        try:
            f() if method == "toarray" else f(X)
        except Exception:
            pass
    for attr in ("feature_importances_",):
        try:
            getattr(obj, attr)
        except Exception:
            pass
    """,
)

INTERESTING = [-(2**63), -(2**31), -7, -2, -1, 0, 1, 2, 3, 255, 256, 2**31 - 1, 2**31, 2**40, 2**62]


def _int_fields(dtype: np.dtype):
    if dtype.names:
        return [n for n in dtype.names if dtype[n].kind in "iu"]
    return [None] if dtype.kind in "iu" else []


def _mutate_array(f: Forge, rng: random.Random) -> bool:
    entries = f.parts.manifest["arrays"]
    candidates = [i for i, e in enumerate(entries) if e["codec"] == "none" and e["length"] > 0]
    rng.shuffle(candidates)
    for index in candidates:
        arr = f.array(index)
        fields = _int_fields(arr.dtype)
        if not fields or arr.size == 0:
            continue
        field = rng.choice(fields)
        flat = (arr[field] if field else arr).reshape(-1)
        pos = rng.randrange(flat.size)
        value = rng.choice(INTERESTING + [int(flat[pos]) + rng.choice([-1, 1]), rng.randrange(-50, 50)])
        info = np.iinfo(flat.dtype)
        flat[pos] = min(max(value, info.min), info.max)
        f.set_array(index, arr)
        return True
    return False


def _mutate_manifest(f: Forge, rng: random.Random) -> bool:
    """Replaces one integer of the object tree (counts, arguments, shapes in tuples)."""
    slots = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, int) and not isinstance(v, bool) and k not in ("array", "ref", "id"):
                    slots.append((node, k))
                else:
                    walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, int) and not isinstance(v, bool):
                    slots.append((node, i))
                else:
                    walk(v)

    walk(f.root)
    if not slots:
        return False
    container, key = rng.choice(slots)
    container[key] = rng.choice(INTERESTING)
    return True


def _mutants(make, rng: random.Random, count: int):
    data = skvault.dumps(make())
    for _ in range(count):
        f = Forge(data)
        for _ in range(rng.choice([1, 1, 2, 3])):
            if rng.random() < 0.7:
                _mutate_array(f, rng)
            else:
                _mutate_manifest(f, rng)
        try:
            yield f.to_bytes()
        except (TypeError, ValueError):
            continue


def _run_child(child: str, folder, model: str) -> list[str]:
    """Runs ``child`` on the files of ``folder`` with limits; its lines, checked to end with
    "done" (the last file named before a crash is kept with the others)."""
    result = run_limited([sys.executable, "-c", child, str(folder)], timeout=600)
    lines = result.stdout.decode().splitlines()
    last = lines[-1] if lines else "(none)"
    assert result.returncode == 0 and last == "done", (
        f"{model}: the child died after {last!r} (seed {SEED}, exit {result.returncode}); "
        f"the files are kept in {folder}\n{result.stderr.decode(errors='replace')[-3000:]}"
    )
    return lines[:-1]


@pytest.mark.parametrize("model", list(MODELS))
def test_mutated_models_never_crash_the_loader(model, tmp_path):
    rng = random.Random(f"{SEED}-{model}")
    for i, data in enumerate(_mutants(MODELS[model], rng, N)):
        (tmp_path / f"{i:05d}.skv").write_bytes(data)
    _run_child(CHILD, tmp_path, model)


# Compressed files (format 1.4: zstd, the `fields` and `columns` filters, packs). Their
# blobs are checked by digest after decoding, so a mutant either is refused or decodes to
# the very bytes of the original: one that loads must predict exactly as the original does.
COMPRESSED = {
    "forest": lambda: RandomForestClassifier(n_estimators=8, max_depth=6, random_state=0).fit(X, Y),
    "hist gradient boosting": lambda: HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, Y),
    "gradient boosting": lambda: GradientBoostingClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, Y),
}

CHILD_COMPRESSED = textwrap.dedent(
    """
    import sys, os, warnings
    import numpy as np
    import skvault
    warnings.simplefilter("ignore")
    X = np.random.RandomState(1).rand(20, 3)
    folder = sys.argv[1]
    want = skvault.load(os.path.join(folder, "original")).predict_proba(X)
    for name in sorted(os.listdir(folder)):
        try:
            got = skvault.load(os.path.join(folder, name)).predict_proba(X)
        except skvault.SkvaultError:
            print(name, "refused", flush=True)
            continue
        print(name, "same" if np.array_equal(got, want) else "DIFFERENT", flush=True)
    print("done", flush=True)
    """
)


def _mutate_compressed(parts: SkvParts, rng: random.Random) -> None:
    entries = blob_entries(parts.manifest)
    coded = [i for i, e in enumerate(entries) if e.get("codec", "none") != "none"]
    i = rng.choice(coded)
    entry, blob = entries[i], bytearray(parts.blobs[i])
    what = rng.random()
    if what < 0.5:
        for _ in range(rng.choice([1, 1, 2, 8])):
            pos = rng.randrange(len(blob))
            blob[pos] = rng.randrange(256) if rng.random() < 0.5 else blob[pos] ^ (1 << rng.randrange(8))
    elif what < 0.6:
        del blob[rng.randrange(len(blob)) :]
    elif what < 0.7:
        entry["raw_length"] = rng.choice(INTERESTING + [entry["raw_length"] + rng.choice([-8, -1, 1, 8])])
    elif what < 0.8:
        entry["filter"] = rng.choice(["none", "fields", "columns", "bogus"])
    else:
        columns = entry.get("columns")
        if not columns:
            entry["codec"] = rng.choice(["lz4", "none", "zstd"])
        else:
            column = rng.choice(columns)
            key = rng.choice(["width", "delta", "field"])
            column[key] = {
                "width": rng.choice([0, 1, 2, 3, 4, 8, 16, -1]),
                "delta": rng.choice([True, False, 1, None]),
                "field": rng.choice(["left_child", "threshold", "missing_go_to_left", "nope"]),
            }[key]
    parts.blobs[i] = bytes(blob)


@pytest.mark.parametrize("model", list(COMPRESSED))
def test_mutated_compressed_files_are_refused_or_decode_to_the_original(model, tmp_path):
    data = skvault.dumps(COMPRESSED[model](), compress="zstd")
    parts = SkvParts.parse(data)
    filters = {e.get("filter", "none") for e in blob_entries(parts.manifest) if e.get("codec") == "zstd"}
    assert filters & {"fields", "columns"}, filters
    if model == "forest":
        assert "columns" in filters
    (tmp_path / "original").write_bytes(data)
    rng = random.Random(f"{SEED}-zstd-{model}")
    for i in range(N):
        mutant = copy.deepcopy(parts)
        for _ in range(rng.choice([1, 1, 2])):
            _mutate_compressed(mutant, rng)
        (tmp_path / f"{i:05d}.skv").write_bytes(mutant.to_bytes())
    outcomes = dict(line.split() for line in _run_child(CHILD_COMPRESSED, tmp_path, model))
    assert outcomes.pop("original") == "same"
    different = [name for name, o in outcomes.items() if o == "DIFFERENT"]
    assert not different, f"{model}: mutants decoded to other bytes than their digests: {different}"
    assert len(outcomes) == N
    # Almost every mutation changes decoded bytes; the digest check must catch them.
    assert sum(o == "refused" for o in outcomes.values()) >= N * 0.8


# A mapped load of a forest with over 1 MiB of node arrays checks its trees on a thread of its
# own while the objects are built, each tree created once its own checks passed (SECURITY.md,
# "What load does", step 5). Mutants of such a forest, loaded mapped in a child with limits,
# with and without verify, then used: never a crash, a hang or a memory bomb.
CHILD_MAPPED = _child(
    6,
    """
    for verify in (None, True):
        try:
            obj = skvault.load(path, mmap=True, verify=verify)
        except skvault.SkvaultError:
            continue
        for method in ("predict_proba", "apply"):
            try:
                getattr(obj, method)(X)
            except Exception:
                pass
    """,
)


def test_mutated_large_forests_never_crash_a_mapped_load(tmp_path):
    rng = np.random.RandomState(0)
    Xl = rng.rand(4000, 6)
    yl = rng.randint(0, 2, 4000)

    def make():
        return RandomForestClassifier(n_estimators=16, random_state=0).fit(Xl, yl)

    nodes = [e for e in SkvParts.parse(skvault.dumps(make())).manifest["arrays"] if "left_child" in str(e["dtype"])]
    assert sum(e["raw_length"] for e in nodes) > 1 << 20, "the checks run beside the build from 1 MiB of nodes"
    rng = random.Random(f"{SEED}-mapped-forest")
    for i, data in enumerate(_mutants(make, rng, max(N // 3, 1))):
        (tmp_path / f"{i:05d}.skv").write_bytes(data)
    _run_child(CHILD_MAPPED, tmp_path, "mapped forest")


# One row through a forest large enough to be shared with the helper thread (4096 steps or
# more), whose leaf values are laid out beside the leaves and summed by both threads
# (crates/skvault-infer/src/pair.rs). Mutants of such a forest, loaded by skvault.native in a
# child with limits and predicted row by row: refused at load, or answered; never a crash, a
# hang or a memory bomb.
CHILD_NATIVE = _child(
    6,
    """
    try:
        model = skvault.native.load(path)
    except skvault.SkvaultError:
        continue
    for i in range(len(X)):
        for method in ("predict", "predict_proba"):
            try:
                getattr(model, method)(X[i : i + 1])
            except skvault.SkvaultError:
                pass
    """,
)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_mutated_forests_never_crash_native_one_row_predictions(tmp_path, n_classes):
    rng = np.random.RandomState(0)
    Xf = rng.rand(400, 6)
    yf = rng.randint(0, n_classes, 400)

    def make():
        return RandomForestClassifier(n_estimators=300, random_state=0).fit(Xf, yf)

    depths = [e.tree_.max_depth for e in make().estimators_]
    work = sum(max(depths[i : i + 16]) * len(depths[i : i + 16]) for i in range(0, len(depths), 16))
    assert work >= 4096, "the forest is too small for one row to be shared with the helper"
    rng = random.Random(f"{SEED}-native-forest-{n_classes}")
    for i, data in enumerate(_mutants(make, rng, max(N // 3, 1))):
        (tmp_path / f"{i:05d}.skv").write_bytes(data)
    lines = _run_child(CHILD_NATIVE, tmp_path, f"native forest, {n_classes} classes")
    assert len(lines) == len(list(tmp_path.iterdir()))
