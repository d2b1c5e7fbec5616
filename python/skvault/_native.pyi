"""Type stubs for the Rust extension module `skvault._native`."""

from os import PathLike

__version__: str

def dump(
    obj: object,
    path: str | PathLike[str],
    *,
    compress: str | None = None,
    level: int | None = None,
    metadata: str | None = None,
    validation: object | None = None,
) -> None: ...
def dumps(
    obj: object,
    *,
    compress: str | None = None,
    level: int | None = None,
    metadata: str | None = None,
    validation: object | None = None,
) -> bytes: ...
def load(
    source: bytes | str | PathLike[str],
    *,
    trusted: list[str] = ...,
    mmap: str | None = None,
    verify: bool | None = None,
    with_validation: bool = False,
    before_build: object | None = None,
) -> object: ...
def get_untrusted_types(source: bytes | str | PathLike[str], *, trusted: list[str] = ...) -> list[str]: ...
def manifest_json(source: bytes | str | PathLike[str]) -> str: ...
def verify(source: bytes | str | PathLike[str]) -> None: ...
def default_trusted() -> list[str]: ...
def cli_main(argv: list[str]) -> int: ...

class MappedFile:
    """A read-only buffer over a memory-mapped .skv file; mapped numpy arrays keep it alive."""
def scan_paths(paths: list[PathLike[str]], *, trusted: list[str] = ...) -> str: ...
def convert(
    src: PathLike[str],
    dst: PathLike[str],
    *,
    trusted: list[str] = ...,
    compress: str | None = ...,
    level: int | None = ...,
) -> str: ...
