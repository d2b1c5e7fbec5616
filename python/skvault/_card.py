"""Model cards: ``skvault.card`` (the same text as ``skvault card FILE``).

Import-light on purpose: making a card reads the file in Rust and needs neither numpy nor
scikit-learn.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Literal

from skvault import _native


def card(
    source: str | os.PathLike[str] | bytes,
    format: Literal["html", "md"] = "html",
    *,
    sections: str | None = None,
    pubkeys: Iterable[str | os.PathLike[str]] = (),
    signature: str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> str:
    """The model card of a ``.skv`` file, as HTML (a self-contained page: inline CSS and SVG
    pictures, no script, nothing fetched) or Markdown (``format="md"``).

    Everything comes from the file: class, pipeline, parameters, input schema, classes,
    metrics, environment and requirements, provenance (digests, signature status), the
    validation rows re-checked with native inference, and pictures of the fitted model.
    ``sections`` is Markdown text added to the card (intended use, limitations), after the
    sections a file holds in ``metadata={"card": {...}}``. ``pubkeys`` verify the signature
    beside the file (``FILE.sig``, or ``signature``); without them a signature is shown as
    unverified. ``name`` is the name the card shows (default: the file's name).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        src: str | bytes = bytes(source)
    else:
        src = os.fspath(source)
    return _native.card(
        src,
        format=format,
        sections=sections,
        pubkeys=[os.fspath(p) for p in pubkeys],
        signature=None if signature is None else os.fspath(signature),
        name=name,
    )
