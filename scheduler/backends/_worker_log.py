"""A local worker's output: copied to its log file, with its last lines kept in memory."""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from pathlib import Path
from typing import IO

__all__ = ["WorkerLog"]


class WorkerLog:
    """A worker's output: copied to its log file, and its last lines kept in memory.

    The log file may sit on the disk that just filled up (a local store): the lines the
    driver keeps are what reaches the user then. ``close`` marks the worker reaped.
    """

    def __init__(self, path: Path, stream: IO[bytes]) -> None:
        self.path = path
        self.tail: deque[str] = deque(maxlen=20)
        self.closed = False
        try:
            self._file: IO[bytes] | None = open(path, "ab")  # noqa: SIM115 - closed at EOF
        except OSError:
            self._file = None
        self._reader = threading.Thread(target=self._copy, args=(stream,), daemon=True)
        self._reader.start()

    def _copy(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.tail.append(line)
            if self._file is not None:
                try:
                    self._file.write(raw)
                    self._file.flush()
                except OSError:  # disk full: the tail still has it
                    with contextlib.suppress(OSError):
                        self._file.close()
                    self._file = None
        stream.close()
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()

    def close(self) -> None:
        self.closed = True
        self._reader.join(timeout=2.0)  # the last lines of an exited worker

    def last_lines(self, n: int = 5) -> list[str]:
        return list(self.tail)[-n:]

    def last_line(self) -> str | None:
        lines = [ln for ln in self.tail if not ln.startswith(("Traceback", "  "))]
        return lines[-1] if lines else None
