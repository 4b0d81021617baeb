"""``batchhub demo`` as a test runs it: in its own session, its output
collected as it comes, stopped as an admin stops it (SIGTERM, as Ctrl-C
does through the demo's handler)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any


class DemoProcess:
    """A running demo: ``argv`` with ``popen`` (``cwd``, ``env``, ``user``...)."""

    def __init__(self, argv: Sequence[str], **popen: Any) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            **popen,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first match of ``pattern`` in the output; AssertionError with
        the output's end if the demo exits or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while not (match := re.search(pattern, self.output)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the demo never printed {pattern!r}:\n{self.output[-3000:]}")
            time.sleep(0.1)
        return match

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then its whole session killed if it does not end in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()
