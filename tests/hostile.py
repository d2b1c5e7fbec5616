"""Helpers for hostile-file tests: run a load (and then use the result) in a child process
with an address-space limit and a timeout, so that a crash, an allocation bomb or a hang
fails the test instead of taking pytest down; and edit the arrays of a real dump."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

import numpy as np
from blake3 import blake3

from skv_bytes import SkvParts

#: Address-space limit of the child: an allocation bomb fails fast instead of swapping.
ADDRESS_SPACE = 4 << 30

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


def limits() -> None:
    """The child's limits (a `preexec_fn`): no core dump, `ADDRESS_SPACE` of memory."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_limited(args: list[str], data: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs `args` with `data` on stdin under `limits`: a crash, a hang (`timeout`) or an
    allocation bomb ends the child, never the test process."""
    return subprocess.run(args, input=data, capture_output=True, timeout=timeout, preexec_fn=limits)


def load_in_child(data: bytes, *uses: str, **kwargs) -> subprocess.CompletedProcess:
    """Loads `data` in a child (`skvault.loads(data, **kwargs)`), then evaluates each of
    `uses` with `obj` (the loaded object) and `X` (50 rows, 3 columns) in scope."""
    return run_limited([sys.executable, "-c", CHILD, repr(kwargs), *uses], data)


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
    """A real dump taken apart: edit arrays as numpy arrays (digests kept valid) and the tree as
    JSON. Arrays are named by their table index or by their array node (or a ref to one)."""

    def __init__(self, data: bytes):
        self.parts = SkvParts.parse(data)
        self.root = self.parts.manifest["root"]

    def _trees(self):
        yield self.root
        if "validation" in self.parts.manifest:
            yield self.parts.manifest["validation"]

    def _nodes(self):
        """Every JSON object of the trees, depth first."""
        stack = list(self._trees())
        while stack:
            n = stack.pop()
            if isinstance(n, dict):
                yield n
                stack.extend(reversed(list(n.values())))
            elif isinstance(n, list):
                stack.extend(reversed(n))

    def objects(self, cls: str):
        """Every object node of class `cls` (dicts of the JSON tree, editable in place)."""
        return [n for n in self._nodes() if n.get("object") == cls]

    def resolve(self, node: dict) -> dict:
        """The node itself, or the node with the id a `ref` points to."""
        if "ref" not in node:
            return node
        return next(n for n in self._nodes() if n.get("id") == node["ref"])

    def _index(self, array) -> int:
        return array if isinstance(array, int) else self.resolve(array)["array"]

    def array(self, array) -> np.ndarray:
        index = self._index(array)
        entry = self.parts.manifest["arrays"][index]
        raw = self.parts.blob_raw(index)
        return np.frombuffer(raw, dtype=numpy_dtype(entry["dtype"])).reshape(entry["shape"]).copy()

    def set_array(self, array, value: np.ndarray) -> None:
        """Replaces an uncompressed array (any shape, its own dtype), its length and digest."""
        index = self._index(array)
        entry = self.parts.manifest["arrays"][index]
        raw = np.ascontiguousarray(value, dtype=numpy_dtype(entry["dtype"])).tobytes()
        self.parts.blobs[self.parts._blob_of(index)] = raw
        entry.update(shape=list(np.shape(value)), length=len(raw), raw_length=len(raw), digest=blake3(raw).hexdigest())

    def edit(self, array, change) -> None:
        """Applies `change` to the array in place, then stores it."""
        a = self.array(array)
        change(a)
        self.set_array(array, a)

    def to_bytes(self) -> bytes:
        return self.parts.to_bytes()
