"""Signing and the signature policy of loaders (docs/SIGNING.md).

A policy is given by ``require_signature=`` on :func:`skvault.load`, :func:`skvault.loads`
and :func:`skvault.native.load`:

- ``None`` (the default): the deployment's policy, ``SKVAULT_TRUSTED_KEYS`` (public key
  files or folders of ``*.pub`` files, separated by ``:``); when it is unset, no check.
- ``False``: no check, whatever the environment says.
- ``True``: a signature by one of the keys of ``SKVAULT_TRUSTED_KEYS``, which must be set.
- a path, or a list of paths, of public keys (or folders of them): a signature by one of
  those keys.

Under a policy, the file must carry a signature (embedded, or ``MODEL.skv.sig`` beside it)
by a trusted key that covers its current bytes, or :class:`skvault.SignatureError` is
raised before anything is built.
"""

from __future__ import annotations

import os
from typing import Any, Union

from skvault import _native

PathLike = Union[str, "os.PathLike[str]"]
Policy = Union[None, bool, PathLike, "list[PathLike]", "tuple[PathLike, ...]"]

__all__ = ["keygen", "sign", "verify_signature"]


def policy_args(require_signature: Any) -> dict[str, Any]:
    """The keyword arguments of the extension's loaders for a ``require_signature`` value."""
    if require_signature is None:
        return {"signature_policy": "env"}
    if require_signature is False:
        return {"signature_policy": "off"}
    if require_signature is True:
        return {"signature_policy": "env-required"}
    if isinstance(require_signature, (str, os.PathLike)):
        return {"signature_policy": "keys", "signature_keys": [os.fspath(require_signature)]}
    if isinstance(require_signature, (list, tuple)) and all(
        isinstance(k, (str, os.PathLike)) for k in require_signature
    ):
        if not require_signature:
            from skvault.exceptions import SignatureError

            raise SignatureError("require_signature=[] trusts no key: give at least one public key", "no_trusted_keys")
        return {"signature_policy": "keys", "signature_keys": [os.fspath(k) for k in require_signature]}
    raise TypeError(
        "require_signature must be None, True, False, a public key path or a list of them, "
        f"not {type(require_signature).__name__}"
    )


def keygen(path: PathLike) -> dict[str, str]:
    """Make an ECDSA P-256 key pair: ``path`` (private, mode 0600, never replaced) and
    ``path.pub``. Returns the two paths and the key id."""
    private, public, key_id = _native.keygen(os.fspath(path))
    return {"private_key": private, "public_key": public, "key_id": key_id}


def sign(
    path: PathLike,
    key: PathLike,
    *,
    identity: str = "",
    embed: bool = False,
    output: PathLike | None = None,
) -> str:
    """Sign the ``.skv`` file at ``path`` with the private key file ``key``.

    Writes a detached signature (``path.sig``, or ``output``), which OpenSSF's
    ``model_signing verify key`` also checks, or with ``embed=True`` rewrites the file
    (atomically) with the signature inside it. Returns the signature's path, or
    ``"embedded"``. ``identity`` is recorded as the signer's name (free text).
    """
    if embed and output is not None:
        raise ValueError("embed=True writes the signature into the file: leave out output")
    return _native.sign(
        os.fspath(path),
        os.fspath(key),
        identity=identity,
        embed=embed,
        output=None if output is None else os.fspath(output),
    )


def verify_signature(
    path: PathLike,
    keys: PathLike | list[PathLike] | tuple[PathLike, ...] | None = None,
    *,
    signature: PathLike | None = None,
) -> dict[str, Any]:
    """Check that the file at ``path`` is signed by one of ``keys`` (public key files or
    folders of them; default: ``SKVAULT_TRUSTED_KEYS``) and that the signature covers its
    current bytes. The signature is the embedded one, else ``signature``, else
    ``path.sig``. Returns what was verified (key id, identity, time, where the signature
    was); raises :class:`skvault.SignatureError` naming why not."""
    if keys is None:
        key_list = None
    elif isinstance(keys, (str, os.PathLike)):
        key_list = [os.fspath(keys)]
    else:
        key_list = [os.fspath(k) for k in keys]
    return _native.verify_signature(
        os.fspath(path), key_list, signature=None if signature is None else os.fspath(signature)
    )
