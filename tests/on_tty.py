"""Run the command line with stderr on a pseudo-terminal, as a user's shell would, and read
what it drew there: progress bars are only drawn on a terminal.

``SKVAULT_PROGRESS_MIN_BYTES=0`` (for tests only, docs/ERRORS.md) lets a small job show its
bar; every wait is bounded.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass

CLI = [sys.executable, "-m", "skvault"]

#: Cursor moves, line clears, colours: what indicatif writes around a bar's text.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class TtyRun:
    code: int
    stdout: str
    tty: str  # everything drawn on the terminal, escapes removed

    def lines(self) -> list[str]:
        """Every frame or line drawn, in order (frames are separated by carriage returns)."""
        return [part.strip() for part in re.split(r"[\r\n]", self.tty) if part.strip()]

    def last_bar(self, label: str) -> str:
        """The last frame drawn of the bar labelled `label` (its final state on screen)."""
        frames = [line for line in self.lines() if line.startswith(label + " [")]
        assert frames, f"no {label!r} bar was drawn: {self.tty!r}"
        return frames[-1]


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out.update(extra)
    return out


def open_tty() -> tuple[int, int]:
    """A pseudo-terminal 200 columns wide (so that bars are not cut), as (master, slave)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    return master, slave


def drain(master: int, proc: subprocess.Popen, deadline: float, until: str | None = None) -> bytes:
    """What the terminal received until the process closed it (or `until` appeared)."""
    got = bytearray()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the slave side closed it
                break
            if not chunk:
                break
            got += chunk
            if until is not None and until in ANSI.sub("", got.decode(errors="replace")):
                return bytes(got)
    else:
        proc.kill()
        raise AssertionError(f"timed out; the terminal showed {bytes(got)!r}")
    return bytes(got)


def run_tty(*args: object, timeout: float = 300, **extra: str) -> TtyRun:
    """Runs `skvault ARGS` with stderr on a terminal and stdout on a pipe."""
    master, slave = open_tty()
    try:
        proc = subprocess.Popen(
            [*CLI, *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env(**extra),
        )
        os.close(slave)
        slave = -1
        drawn = drain(master, proc, time.monotonic() + timeout)
        out, _ = proc.communicate(timeout=timeout)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return TtyRun(proc.returncode, out.decode(), ANSI.sub("", drawn.decode(errors="replace")))


def human_bytes(n: int) -> str:
    """A byte count as the bars show it (binary prefixes, two decimals)."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for prefix in ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.2f} {prefix}B"
