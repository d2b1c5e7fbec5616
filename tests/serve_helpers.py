"""`skvault serve` for the tests: the real server in a child process (`python -m skvault
serve ... --port 0`), on loopback, spoken to over real sockets with the standard library.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

LISTENING = re.compile(r"skvault serve: listening on http://([0-9.]+):(\d+) ")


class ServerFailed(RuntimeError):
    """The server exited before it listened; ``stderr`` holds what it said."""

    def __init__(self, code: int, stderr: str) -> None:
        super().__init__(f"skvault serve exited with {code}: {stderr}")
        self.code = code
        self.stderr = stderr


class Server:
    """A running `skvault serve`; ``stop()`` sends SIGTERM and returns the exit code."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, port: int = 0, timeout: float = 60) -> None:
        cmd = [sys.executable, "-m", "skvault", "serve", *args]
        if "--port" not in args:
            cmd += ["--port", str(port)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env or dict(os.environ)
        )
        self.lines: list[str] = []
        first = self.proc.stderr.readline()
        match = LISTENING.match(first)
        if not match:
            rest = self.proc.stderr.read()
            code = self.proc.wait(timeout)
            raise ServerFailed(code, first + rest)
        self.host, self.port = match.group(1), int(match.group(2))
        self.lines.append(first.rstrip("\n"))
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            if isinstance(body, str):
                body = body.encode()
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def post_json(self, path: str, doc, **headers: str) -> tuple[int, dict]:
        h = {"Content-Type": "application/json", **headers}
        status, _, data = self.request("POST", path, json.dumps(doc), h)
        return status, json.loads(data)

    def get_json(self, path: str, **headers: str) -> tuple[int, dict]:
        status, _, data = self.request("GET", path, headers=headers)
        return status, json.loads(data)

    def wait_for(self, predicate, timeout: float = 30, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; server log:\n" + "\n".join(self.lines[-30:]))

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class HeldRequest:
    """A POST whose headers and all but the last bytes of its body are sent: the server has
    begun it (it counts in flight, holds a concurrency permit) and it can end only after
    ``finish()``, whatever the speed of the machine."""

    TAIL = 16

    def __init__(self, server: Server, path: str, body: bytes, content_type: str = "application/json") -> None:
        assert len(body) > self.TAIL
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {server.host}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.sock = socket.create_connection((server.host, server.port), 60)
        self.sock.sendall(head + body[: -self.TAIL])
        self._tail = body[-self.TAIL :]

    def finish(self) -> tuple[int, bytes]:
        """Sends the rest of the body and returns the answer's status and body."""
        self.sock.sendall(self._tail)
        response = http.client.HTTPResponse(self.sock)
        response.begin()
        return response.status, response.read()

    def close(self) -> None:
        self.sock.close()


def in_flight(server: Server) -> int:
    """The server's own count of prediction requests in flight (/metrics)."""
    text = server.request("GET", "/metrics")[2].decode()
    line = next(l for l in text.splitlines() if l.startswith("skvault_requests_in_flight "))
    return int(float(line.split()[1]))


def predictions(doc: dict):
    assert set(doc) == {"predictions"}, doc
    return doc["predictions"]
