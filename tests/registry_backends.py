"""Registry backends for the Python tests: a temporary folder, and a real S3-compatible
server (s3s-fs, built by ``make s3-server`` into .cache/s3s) on a free loopback port.

Every test gets an empty registry: its own folder, or its own prefix in the server's bucket.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
S3S_FS = pathlib.Path(os.environ.get("SKVAULT_S3S_FS", ROOT / ".cache" / "s3s" / "bin" / "s3s-fs"))
BUCKET = "skvault-test"
ACCESS_KEY = "skvault"
SECRET_KEY = "skvault-test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """s3s-fs in a subprocess with a temporary data folder; ``stop()`` kills it."""

    def __init__(self) -> None:
        if not S3S_FS.exists():
            raise RuntimeError(f"{S3S_FS} is missing: run `make s3-server`")
        self.data = pathlib.Path(tempfile.mkdtemp(prefix="skvault-s3-"))
        (self.data / BUCKET).mkdir()
        self.proc: subprocess.Popen | None = None
        for _ in range(5):
            self.port = _free_port()
            self.proc = subprocess.Popen(
                [str(S3S_FS), "--host", "127.0.0.1", "--port", str(self.port),
                 "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, str(self.data)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.1):
                    return
                time.sleep(0.02)
            self.proc.kill()
            self.proc.wait()
        raise RuntimeError("s3s-fs did not start")

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.port}",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)


class Backend:
    """One empty registry: ``uri``, the environment a child process needs to reach it,
    and ``file_of(key)``, the file on disk holding a stored object (both backends keep
    plain files, which lets tests tamper with stored data)."""

    def __init__(self, kind: str, tmp: pathlib.Path, server: S3Server | None) -> None:
        self.kind = kind
        self.server = server
        if server is None:
            self.root = tmp / "registry"
            self.uri = str(self.root)
            self.env: dict[str, str] = {}
        else:
            prefix = f"t-{uuid.uuid4().hex[:12]}"
            self.root = server.data / BUCKET / prefix
            self.uri = f"s3://{BUCKET}/{prefix}"
            self.env = server.env

    def open(self):
        import skvault

        options = {}
        if self.server is not None:
            e = self.env
            options = {
                "aws_endpoint": e["AWS_ENDPOINT_URL"],
                "aws_access_key_id": e["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": e["AWS_SECRET_ACCESS_KEY"],
                "aws_region": e["AWS_REGION"],
                "aws_allow_http": e["AWS_ALLOW_HTTP"],
            }
        return skvault.Registry(self.uri, storage_options=options)

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        return env

    def file_of(self, key: str) -> pathlib.Path:
        return self.root / key
