"""`skvault.scan` against real numpy on the paths where numpy and joblib decide by a dtype's
flags (issue #17, item 4), and on callables that touch files.

The differential tests build random dtypes with numpy, pickle them as numpy does, with or
without a change to their flags or element size, inside `_reconstruct` arrays and joblib
wrappers; real numpy then says what it would do with that state (`dtype.__setstate__` on a
fresh dtype: whether `hasobject` is set, whether raw bytes are read, the item size), and the
scanner must agree. Nothing here unpickles a hostile file or builds an array from one.
"""

from __future__ import annotations

import importlib.util
import inspect
import pickle
import random
from pathlib import Path

import numpy as np
import pytest

import skvault

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "make_fixtures", ROOT / "crates" / "skvault-pickle" / "tests" / "fixtures" / "make_fixtures.py"
)
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

LIST_PICKLE = 0x02
# Flag bits that decide how numpy reads and frees items (NPY_ITEM_HASOBJECT, LIST_PICKLE,
# ITEM_IS_POINTER, USE_GETITEM, USE_SETITEM).
OBJECT_BITS = (0x01, 0x02, 0x04, 0x20, 0x40)
SCALARS = ["b1", "i1", "<u2", ">i4", "<f4", "<f8", "<c16", "S3", "<U2", "O", "V4", "<M8[s]"]
CASES = 300
# NPY_NEEDS_INIT and NPY_NEEDS_PYAPI on a dtype without objects: numpy is only more careful.
HARMLESS = 0x08 | 0x10
ALIGNED_STRUCT = 0x80


def random_dtype(rng: random.Random, depth: int = 0) -> np.dtype:
    roll = rng.random()
    if depth >= 2 or roll < 0.4:
        return np.dtype(rng.choice(SCALARS))
    if roll < 0.55:
        return np.dtype((random_dtype(rng, depth + 1), tuple(rng.randint(1, 3) for _ in range(rng.randint(1, 2)))))
    fields = [(f"f{i}", random_dtype(rng, depth + 1)) for i in range(rng.randint(1, 3))]
    return np.dtype(fields, align=rng.random() < 0.3)


def holds_objects(dt: np.dtype) -> bool:
    """What the dtype's content holds, by its structure, not by its flags."""
    if dt.fields is not None:
        return any(holds_objects(f[0]) for f in dt.fields.values())
    if dt.subdtype is not None:
        return holds_objects(dt.subdtype[0])
    return dt.kind == "O"


class Node:
    """A dtype as numpy pickles it, its nested dtypes as nodes, with an optional change."""

    def __init__(self, dt: np.dtype):
        _, args, state = dt.__reduce__()
        self.typestr, self.state = args[0], list(state)
        self.children: list[Node] = []
        if self.state[2] is not None:  # sub-array (base, shape)
            base = Node(self.state[2][0])
            self.children.append(base)
            self.state[2] = (base, self.state[2][1])
        if self.state[4] is not None:  # fields {name: (dtype, offset[, title])}
            fields = {}
            for name, entry in self.state[4].items():
                child = Node(entry[0])
                self.children.append(child)
                fields[name] = (child, *entry[1:])
            self.state[4] = fields
        self.changed = False
        self.holds_objects = holds_objects(dt)

    def all(self):
        yield self
        for c in self.children:
            yield from c.all()

    def mutate(self, rng: random.Random) -> bool:
        flags, elsize = self.state[7], self.state[5]
        flexible = self.typestr[0] in "SUV"
        if rng.random() < 0.6 or not flexible:
            # Bits that change how items are read or freed (NEEDS_INIT and NEEDS_PYAPI only
            # make numpy more careful and differ between numpy versions: not changed here).
            pick = rng.choice([flags ^ bit for bit in OBJECT_BITS] + [0, 63])
            harmless = 0 if self.holds_objects else HARMLESS
            if self.state[3] is not None:
                harmless |= ALIGNED_STRUCT  # align=True or False: both are numpy's
            if (pick ^ flags) & ~harmless == 0:
                return False
            self.state[7] = pick
        else:
            self.state[5] = elsize + rng.choice((-4, -1, 1, 8, 4096))
        self.changed = True
        return True

    def pickled(self) -> fixtures.Dtype:
        """The stand-in that pickles as numpy.dtype + BUILD of this (maybe changed) state."""
        state = list(self.state)
        if state[2] is not None:
            state[2] = (state[2][0].pickled(), state[2][1])
        if state[4] is not None:
            state[4] = {k: (v[0].pickled(), *v[1:]) for k, v in state[4].items()}
        return fixtures.Dtype(self.typestr, tuple(state))

    def numpy(self) -> np.dtype:
        """What numpy builds from this state: a fresh dtype and `__setstate__`, as unpickling
        does (no array is ever made from it)."""
        state = list(self.state)
        if state[2] is not None:
            state[2] = (state[2][0].numpy(), state[2][1])
        if state[4] is not None:
            state[4] = {k: (v[0].numpy(), *v[1:]) for k, v in state[4].items()}
        dt = np.dtype(self.typestr, False, True)
        dt.__setstate__(tuple(state))
        return dt


def scan_bytes(tmp_path: Path, name: str, data: bytes) -> skvault.ScanReport:
    path = tmp_path / name
    path.write_bytes(data)
    return skvault.scan(path)


def cases(seed: int):
    rng = random.Random(seed)
    for i in range(CASES):
        node = Node(random_dtype(rng))
        changed = False
        if rng.random() < 0.7:
            target = rng.choice(list(node.all()))
            changed = target.mutate(rng)
        yield i, node, changed


def test_random_dtype_states_in_arrays_agree_with_numpy(tmp_path):
    wrong = []
    forged_seen = pointer_reads = 0
    for i, node, changed in cases(1217):
        dt = node.numpy()
        n = 2
        # numpy's `ndarray.__setstate__` reads raw bytes unless NPY_LIST_PICKLE is set.
        raw = not dt.flags & LIST_PICKLE
        reads_pointers = raw and holds_objects(dt)
        data = b"\x00" * (dt.itemsize * n) if raw else [None] * n
        report = scan_bytes(tmp_path, f"a{i}.pkl", pickle.dumps(fixtures.Reconstructed(node.pickled(), (n,), data), protocol=2))
        unsafe = report.verdict == "unsafe"
        if (changed or reads_pointers) and not unsafe:
            wrong.append(f"{i}: {dt!r} flags={dt.flags} changed={changed} pointers={reads_pointers}: {report.verdict}")
        if not changed and report.verdict != "safe":
            wrong.append(f"{i}: numpy's own {dt!r} rated {report.verdict}: {report.issues} {report.error}")
        if changed and unsafe:
            dst = tmp_path / "out.skv"
            with pytest.raises(skvault.UnsafeFileError):
                skvault.convert(tmp_path / f"a{i}.pkl", dst)
            assert not dst.exists()
        forged_seen += changed
        pointer_reads += reads_pointers
    assert not wrong, "\n".join(wrong[:40])
    assert forged_seen > 50 and pointer_reads > 5, (forged_seen, pointer_reads)


def test_random_dtype_states_in_joblib_wrappers_are_read_as_joblib_reads_them(tmp_path):
    """joblib reads a nested pickle when `dtype.hasobject`, else padding and
    `count * itemsize` raw bytes. The file holds exactly what joblib reads: a scanner that
    reads it otherwise loses its place (an error or a second pickle)."""
    wrong = []
    nested_reads = 0
    for i, node, changed in cases(4711):
        dt = node.numpy()
        n = 3
        if dt.hasobject:
            after = pickle.dumps([None] * n, protocol=2)
            nested_reads += 1
        else:
            after = b"\x00" + b"\xff" * (dt.itemsize * n)
        protocol = 2 + i % 2
        data = fixtures.joblib_wrapper(node.pickled(), n, after, protocol=protocol)
        report = scan_bytes(tmp_path, f"j{i}.joblib", data)
        # A negative item size (numpy takes it from the state) has joblib read nonsense.
        if dt.itemsize >= 0 and (report.error or report.pickles != 1):
            wrong.append(f"{i}: {dt!r} hasobject={dt.hasobject} itemsize={dt.itemsize}: read otherwise than joblib: {report.error}")
        if changed and report.verdict != "unsafe":
            wrong.append(f"{i}: changed {dt!r} flags={dt.flags}: {report.verdict}")
        if not changed and report.verdict != "safe":
            wrong.append(f"{i}: numpy's own {dt!r}: {report.verdict} {report.issues}")
    assert not wrong, "\n".join(wrong[:40])
    assert nested_reads > 20


def test_handmade_numpy_attacks_are_unsafe_and_refused(tmp_path):
    for name, data in fixtures.hostile_numpy():
        src = tmp_path / (name + (".joblib" if "joblib" in name else ".pkl"))
        src.write_bytes(data)
        report = skvault.scan(src)
        assert report.verdict == "unsafe", (name, report.issues, report.globals)
        with pytest.raises(skvault.UnsafeFileError):
            skvault.convert(src, tmp_path / "out.skv")
        assert not (tmp_path / "out.skv").exists()
    report = skvault.scan(tmp_path / "memmap_pth_write.pkl")
    assert "numpy.memmap" in report.dangerous
    assert not Path("/tmp/skvault-never.pth").exists()


FILE_PARAMETERS = {"file", "fname", "filename", "fid", "path", "filepath_or_buffer", "path_or_buf", "file_name"}


def file_callables():
    """Public callables of numpy and scipy.sparse whose signature takes a file or path: what
    real numpy says touches files."""
    import scipy.sparse

    for module in (np, np.lib.format, np.ma, scipy.sparse):
        for name in dir(module):
            if name.startswith("_"):
                continue
            obj = getattr(module, name)
            if not callable(obj):
                continue
            try:
                params = set(inspect.signature(obj).parameters)
            except (TypeError, ValueError):
                continue
            if params & FILE_PARAMETERS:
                yield module.__name__, name
    for method in ("tofile", "dump"):
        yield "numpy", f"ndarray.{method}"


def test_every_numpy_callable_that_takes_a_file_is_dangerous(tmp_path):
    found = list(file_callables())
    assert ("numpy", "memmap") in found and ("numpy", "fromfile") in found, found
    wrong = []
    for i, (module, name) in enumerate(found):
        data = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"."
        report = scan_bytes(tmp_path, f"f{i}.pkl", data)
        if report.dangerous != [f"{module}.{name}"]:
            wrong.append(f"{module}.{name}: {report.verdict} {report.globals}")
    assert not wrong, "\n".join(wrong)
