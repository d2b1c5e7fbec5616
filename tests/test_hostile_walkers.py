"""Hostile files for everything that walks the object tree following refs, and for sizes
declared by a file (issue 17, items 7, 8 and 9): each runs in a child process with a 4 GiB
address-space limit and a timeout, so a stack overflow, an allocation bomb or a hang fails
the test instead of taking pytest down. Every file is forged here, from docs/FORMAT.md."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import build_skv, forge
from hostile import run_limited

EMPTY_DIGEST = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
UNION = "sklearn.pipeline.FeatureUnion"
IDENTITY = "sklearn.preprocessing._function_transformer.FunctionTransformer"


CHILD = textwrap.dedent(
    """
    import sys, tempfile, os
    import skvault, skvault.native
    data = sys.stdin.buffer.read()
    what = sys.argv[1]
    d = tempfile.mkdtemp()
    src = os.path.join(d, "in.skv")
    if what == "import_json":
        src = os.path.join(d, "in.json")
    open(src, "wb").write(data)
    try:
        if what == "native":
            skvault.native.load(src)
        elif what == "onnx":
            skvault.export_onnx(src, os.path.join(d, "out.onnx"))
        elif what == "json":
            skvault.export_json(src, os.path.join(d, "out.json"))
        elif what == "import_json":
            skvault.import_json(src, os.path.join(d, "out.skv"))
        elif what == "load":
            skvault.load(src)
        elif what == "inspect":
            skvault.inspect(src)
    except Exception as e:
        print(type(e).__name__ + "|" + ",".join(c.__name__ for c in type(e).__mro__) + "|" + str(e).replace(chr(10), " "))
        sys.exit(3)
    print("OK")
    """
)


def _run(what: str, data: bytes) -> subprocess.CompletedProcess:
    return run_limited([sys.executable, "-c", CHILD, what], data)


def _refused(what: str, data: bytes, *, exc: str, needle: str) -> None:
    r = _run(what, data)
    assert r.returncode == 3, f"{what}: rc={r.returncode}\n{r.stdout!r}\n{r.stderr[-2000:]!r}"
    name, mro, message = r.stdout.decode().strip().split("|", 2)
    assert exc in mro.split(","), (name, message)
    assert needle in message, message


def _identity(n: int = 2) -> dict:
    return {"object": IDENTITY, "attrs": {"n_features_in_": n}}


def _union(members: list) -> dict:
    return {"object": UNION, "attrs": {"transformer_list": {"list": [{"tuple": [f"m{i}", m]} for i, m in enumerate(members)]}}}


def _layered(levels: int, width: int) -> bytes:
    """Level 0 an identity, level k a FeatureUnion of `width` refs to level k-1, all declared
    in an attribute of the top union, whose one member is a ref to the last level."""
    decl = [dict(_identity(), id=0)]
    for k in range(1, levels):
        decl.append(dict(_union([{"ref": k - 1}] * width), id=k))
    top = {"object": UNION, "attrs": {"_levels": {"list": decl}, "transformer_list": {"list": [{"tuple": ["top", {"ref": levels - 1}]}]}}}
    return forge(top)


@pytest.mark.parametrize("what", ["native", "onnx"])
def test_a_chain_of_5000_refs_is_refused_not_a_stack_overflow(what):
    data = _layered(5000, 1)
    assert len(data) < 1_000_000
    exc = "ValueError" if what == "native" else "ExportError"
    _refused(what, data, exc=exc, needle="estimator nesting depth")


@pytest.mark.parametrize("what", ["native", "onnx"])
def test_a_dag_of_shared_levels_is_refused_not_2_to_the_64(what):
    exc = "ValueError" if what == "native" else "ExportError"
    _refused(what, _layered(40, 2), exc=exc, needle="model work")
    _refused(what, _layered(64, 2), exc=exc, needle="the limit on")


def test_a_few_shared_levels_still_load_natively():
    assert _run("native", _layered(4, 2)).stdout.strip() == b"OK"


def test_polynomial_features_with_a_huge_n_features_in_is_refused():
    for n in (1 << 31, 2**63 - 1):
        root = {
            "object": "sklearn.preprocessing._polynomial.PolynomialFeatures",
            "attrs": {"n_features_in_": n, "include_bias": True, "interaction_only": False,
                      "_min_degree": 0, "_max_degree": 2, "n_output_features_": 6},
        }
        _refused("native", forge(root), exc="UnsupportedModelError", needle="too many output features")


def _empty_array(dtype, shape) -> bytes:
    entry = {"dtype": dtype, "shape": shape, "order": "C", "offset": 0, "length": 0,
             "codec": "none", "raw_length": 0, "digest": EMPTY_DIGEST}
    return forge({"array": 0}, arrays=[entry])


@pytest.mark.parametrize("dtype", ["|V0", "|S0", "<U0"])
@pytest.mark.parametrize("what", ["load", "json", "inspect"])
def test_zero_width_arrays_with_a_huge_count_are_format_errors(dtype, what):
    _refused(what, _empty_array(dtype, [2**62]), exc="FormatError", needle="holds no bytes")


@pytest.mark.parametrize("shape", [[0, 2**64 - 1], [0, 2**63 - 1], [2**40, 0]])
def test_absurd_empty_shapes_are_format_errors_not_numpy_errors(shape):
    _refused("load", _empty_array("<f8", shape), exc="FormatError", needle="holds no bytes")


def test_empty_object_array_with_an_absurd_shape_is_a_format_error():
    _refused("load", forge({"objarray": [], "shape": [0, 2**64 - 1]}), exc="FormatError", needle="holds no bytes")


def test_aligned_struct_with_a_misaligned_field_is_a_format_error():
    dtype = {"fields": [["a", "<f8", 1]], "itemsize": 16, "aligned": True}
    _refused("load", _empty_array(dtype, [0]), exc="FormatError", needle="alignment 8")
    # numpy accepts the same record unaligned, and so does the reader.
    dtype["aligned"] = False
    assert _run("load", _empty_array(dtype, [0])).stdout.strip() == b"OK"


def test_import_json_with_a_huge_declared_shape_is_refused():
    doc = {"format": "skvault-json", "version": 1, "writer": "t", "root": {"array": 0},
           "arrays": [{"dtype": "<f8", "shape": [2**60], "order": "C", "data": []}]}
    data = json.dumps(doc).encode()
    assert len(data) < 200
    _refused("import_json", data, exc="ExportError", needle="")
