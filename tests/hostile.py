"""Helpers for hostile-file tests: run a load (and then use the result) in a child process
with an address-space limit and a timeout, so that a crash, an allocation bomb or a hang
fails the test instead of taking pytest down; and edit the arrays of a real dump."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap

import numpy as np

from skv_bytes import SkvParts

#: Address-space limit of the child: an allocation bomb fails fast instead of swapping.
ADDRESS_SPACE = 6 << 30

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import skvault
    data = sys.stdin.buffer.read()
    kwargs = eval(sys.argv[1])  # literal dict written by the test, e.g. {"validate": True}
    try:
        obj = skvault.loads(data, **kwargs)
    except skvault.SkvaultError as e:
        print("refused:", type(e).__name__, e, flush=True)
        sys.exit(0)
    print("loaded", type(obj).__name__, flush=True)
    X = np.random.RandomState(0).rand(50, 3)
    for use in sys.argv[2:]:
        try:
            eval(use)
        except Exception as e:  # a Python error is not the crash we look for, but it is not a refusal
            print("raised", type(e).__name__, e, flush=True)
    sys.exit(3)
    """
)


def _limits():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def load_in_child(data: bytes, *uses: str, **kwargs) -> subprocess.CompletedProcess:
    """Loads `data` in a child (`skvault.loads(data, **kwargs)`), then evaluates each of
    `uses` with `obj` (the loaded object) and `X` (50 rows, 3 columns) in scope."""
    return subprocess.run(
        [sys.executable, "-c", CHILD, repr(kwargs), *uses],
        input=data,
        capture_output=True,
        timeout=120,
        preexec_fn=_limits,
    )


def assert_refused(result: subprocess.CompletedProcess, *fragments: str) -> None:
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0 and out.startswith("refused: FormatError"), (
        result.returncode,
        out,
        result.stderr.decode(errors="replace")[-2000:],
    )
    for fragment in fragments:
        assert fragment in out, out


def numpy_dtype(descr) -> np.dtype:
    """The numpy dtype of a manifest dtype description (FORMAT.md 3.2)."""
    if isinstance(descr, str):
        return np.dtype(descr)
    fields = descr["fields"]
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [numpy_dtype(f[1]) for f in fields],
            "offsets": [f[2] for f in fields],
            "itemsize": descr["itemsize"],
        }
    )


class Forge:
    """A real dump taken apart: edit arrays as numpy arrays and the tree as JSON."""

    def __init__(self, data: bytes):
        self.parts = SkvParts.parse(data)
        self.root = self.parts.manifest["root"]

    def array(self, index: int) -> np.ndarray:
        entry = self.parts.manifest["arrays"][index]
        raw = self.parts.blob_raw(index)
        return np.frombuffer(raw, dtype=numpy_dtype(entry["dtype"])).reshape(entry["shape"]).copy()

    def set_array(self, index: int, arr: np.ndarray) -> None:
        self.parts.set_blob(index, arr.tobytes())

    def objects(self, cls: str):
        """Every object node of class `cls` (dicts of the JSON tree, editable in place)."""
        found = []

        def walk(n):
            if isinstance(n, dict):
                if n.get("object") == cls:
                    found.append(n)
                for v in n.values():
                    walk(v)
            elif isinstance(n, list):
                for v in n:
                    walk(v)

        walk(self.root)
        if "validation" in self.parts.manifest:
            walk(self.parts.manifest["validation"])
        return found

    def to_bytes(self) -> bytes:
        return self.parts.to_bytes()

    def dumps_tree(self) -> str:
        return json.dumps(self.root)
