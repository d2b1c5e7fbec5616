"""Test helpers: take a .skv file apart and put it back together with valid digests.

Tests use them to forge files that pass the digest checks (rewritten versions, altered
validation outputs, hostile manifests), so that the check under test is the one that fires.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass

from blake3 import blake3

HEADER = struct.Struct("<8sHHIQ32s8s")
MAGIC = b"SKVAULT\0"
#: Required flag of format 1.1: the manifest is zstd-compressed.
MANIFEST_ZSTD = 0x1
#: Required flag of format 1.2: the manifest has packs.
PACKS = 0x2


def align64(n: int) -> int:
    return (n + 63) // 64 * 64


def blob_entries(manifest: dict) -> list[dict]:
    """The entries that own a blob, in file order (FORMAT.md 2.4): arrays stored on their own,
    then packs."""
    return [e for e in manifest["arrays"] if "pack" not in e] + manifest.get("packs", [])


@dataclass
class SkvParts:
    major: int
    minor: int
    flags: int
    manifest: dict
    blobs: list[bytes]  # stored bytes of each blob, in file order (see `blob_entries`)

    @classmethod
    def parse(cls, data: bytes) -> SkvParts:
        magic, major, minor, flags, mlen, _digest, reserved = HEADER.unpack_from(data)
        assert magic == MAGIC
        text = data[64 : 64 + mlen]
        if flags & MANIFEST_ZSTD:
            # A compressed manifest (FORMAT.md 2.2.1); `to_bytes` writes it back plain (1.0).
            import zstandard

            raw_len = int.from_bytes(reserved, "little")
            text = zstandard.ZstdDecompressor().decompress(text, max_output_size=raw_len)
            flags &= ~MANIFEST_ZSTD
            minor = 2 if flags & PACKS else 0
        manifest = json.loads(text)
        start = align64(64 + mlen)
        blobs = [data[start + e["offset"] : start + e["offset"] + e["length"]] for e in blob_entries(manifest)]
        return cls(major, minor, flags, manifest, blobs)

    def _blob_of(self, index: int) -> int:
        """Position in `blobs` of array `index`, which must be stored on its own."""
        arrays = self.manifest["arrays"]
        assert "pack" not in arrays[index], "a packed array has no blob of its own"
        return sum(1 for e in arrays[:index] if "pack" not in e)

    def blob_raw(self, index: int) -> bytes:
        entry = self.manifest["arrays"][index]
        assert entry["codec"] == "none", "only uncompressed blobs are raw"
        return self.blobs[self._blob_of(index)]

    def set_blob(self, index: int, raw: bytes) -> None:
        """Replace an uncompressed blob and its digest (the length must stay the same)."""
        entry = self.manifest["arrays"][index]
        assert entry["codec"] == "none" and len(raw) == entry["length"]
        self.blobs[self._blob_of(index)] = raw
        entry["digest"] = blake3(raw).hexdigest()

    def to_bytes(self, edit_text: Callable[[str], str] | None = None) -> bytes:
        """Lays the blobs out again (offsets recomputed) and signs the manifest; `edit_text`,
        if given, rewrites the manifest's JSON text first (for what a dict cannot hold:
        repeated names, nesting deeper than Python's parser, chosen whitespace)."""
        offset = 0
        for entry, blob in zip(blob_entries(self.manifest), self.blobs):
            entry["offset"] = offset
            entry["length"] = len(blob)
            offset = align64(offset + len(blob))
        text = json.dumps(self.manifest, separators=(",", ":"))
        mbytes = (edit_text(text) if edit_text else text).encode()
        header = HEADER.pack(MAGIC, self.major, self.minor, self.flags, len(mbytes), blake3(mbytes).digest(), b"\0" * 8)
        out = bytearray(header + mbytes)
        out += b"\0" * (align64(len(out)) - len(out))
        for i, blob in enumerate(self.blobs):
            if i:
                out += b"\0" * (align64(len(out)) - len(out))
            out += blob
        return bytes(out)


def find_array(node, predicate) -> int | None:
    """Index of the first array node in a JSON tree whose path (list of keys) satisfies predicate."""

    def walk(n, path):
        if isinstance(n, dict):
            if "array" in n and isinstance(n["array"], int) and predicate(path):
                return n["array"]
            for k, v in n.items():
                found = walk(v, [*path, k])
                if found is not None:
                    return found
        elif isinstance(n, list):
            for i, v in enumerate(n):
                found = walk(v, [*path, i])
                if found is not None:
                    return found
        return None

    return walk(node, [])
