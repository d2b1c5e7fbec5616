"""Shared helpers: take a .skv file apart and put it back together with a valid manifest digest.

Tests use them to forge hostile files that pass the header and digest checks, so that the
check under test (trust, layout, building) is the one that fires. Import them with
``from conftest import split_skv, build_skv, forge``.
"""

from __future__ import annotations

import json
import struct

from blake3 import blake3

#: magic, major, minor, flags, manifest_len, manifest digest, reserved (docs/FORMAT.md 2.1).
HEADER = struct.Struct("<8sHHIQ32s8s")
MAGIC = b"SKVAULT\0"


def align64(n: int) -> int:
    return (n + 63) // 64 * 64


def split_skv(data: bytes) -> tuple[dict, dict, bytes]:
    """(header fields, manifest document, data section) of a .skv file's bytes."""
    magic, major, minor, flags, manifest_len, digest, reserved = HEADER.unpack_from(data)
    assert magic == MAGIC
    header = {
        "major": major,
        "minor": minor,
        "flags": flags,
        "manifest_len": manifest_len,
        "digest": digest,
        "reserved": reserved,
    }
    manifest = json.loads(manifest_text(data, flags, manifest_len, reserved).decode("utf-8"))
    return header, manifest, data[align64(HEADER.size + manifest_len) :]


#: Required flag of format 1.1: the manifest is zstd-compressed, its length in bytes 56..64.
MANIFEST_ZSTD = 0x1


def manifest_text(data: bytes, flags: int, manifest_len: int, reserved: bytes) -> bytes:
    """The manifest JSON of a file, decompressed when the header says so (FORMAT.md 2.2.1)."""
    stored = data[HEADER.size : HEADER.size + manifest_len]
    if not flags & MANIFEST_ZSTD:
        return stored
    import zstandard

    raw_len = int.from_bytes(reserved, "little")
    text = zstandard.ZstdDecompressor().decompress(stored, max_output_size=raw_len)
    assert len(text) == raw_len
    return text


def build_skv(manifest: dict, rest: bytes = b"", *, major: int = 1, minor: int = 0, flags: int = 0) -> bytes:
    """A file around `manifest` with a correct digest, zero padding, then `rest` (the blobs).

    Array offsets are not recomputed: `rest` must already be laid out as the manifest says.
    """
    text = json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    header = HEADER.pack(MAGIC, major, minor, flags, len(text), blake3(text).digest(), bytes(8))
    body = header + text
    return body + bytes(align64(len(body)) - len(body)) + rest


def forge(root, *, validation=None, arrays=(), rest: bytes = b"") -> bytes:
    """A minimal file whose object tree is `root` (a JSON node), signed like a real one."""
    manifest = {"writer": "forged", "metadata": {}, "arrays": list(arrays), "root": root}
    if validation is not None:
        manifest["validation"] = validation
    return build_skv(manifest, rest)


# --- registry backends (tests/registry_backends.py) ------------------------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def s3_server():
    """One s3s-fs server for the whole run; each test gets its own prefix in its bucket."""
    from registry_backends import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(params=["folder", "s3"])
def backend(request, tmp_path):
    """An empty registry in a folder, then on the S3 test server."""
    from registry_backends import Backend

    server = request.getfixturevalue("s3_server") if request.param == "s3" else None
    return Backend(request.param, tmp_path, server)
