"""A fault-injecting TCP proxy for HTTP on loopback, for store outage tests.

It sits between s3fs and the moto server and, per connection, either pipes bytes both ways
or injects a fault: a canned ``503 Service Unavailable`` (S3's XML error, ``SlowDown``
code) or a connection dropped before any answer. ``outage()`` also cuts the connections
already open (clients pool them), so every request during an outage meets a fault.
Requests that pass are logged as (method, path) in ``requests``, read off the wire
(keep-alive connections carry several), so a test can count the GETs a command makes.
Loopback only, bounded: every socket has a timeout, and ``close`` stops everything.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable

__all__ = ["FaultProxy"]

_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code>'
    b"<Message>injected by the test proxy</Message></Error>"
)
_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_BODY), _BODY)
)
_503_HEAD = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class FaultProxy:
    """``FaultProxy(target_port)``; point clients at ``endpoint``."""

    def __init__(self, target_port: int, *, seed: int = 13) -> None:
        self.target = ("127.0.0.1", target_port)
        self.rng = random.Random(seed)
        self.mode = "pass"  # pass | 503 | drop
        self.flaky = 0.0  # share of new connections given a random fault while passing
        self.counts: Counter[str] = Counter()
        #: (method, path without the query) of every request passed on, in order.
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def outage(self, mode: str = "503") -> None:
        """Answer every request with ``mode`` (503 or drop) until :meth:`recover`."""
        self.mode = mode
        with self._lock:
            for sock in list(self._open):
                _close(sock)
            self._open.clear()

    def recover(self) -> None:
        self.mode = "pass"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()
        self.outage("drop")

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(30)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _fault(self) -> str | None:
        if self.mode != "pass":
            return self.mode
        if self.flaky and self.rng.random() < self.flaky:
            return self.rng.choice(["503", "drop"])
        return None

    def _serve(self, client: socket.socket) -> None:
        fault = self._fault()
        if fault is not None:
            self.counts[fault] += 1
            if fault == "503":
                with contextlib.suppress(OSError):
                    head = client.recv(65536)  # the request head
                    # A HEAD answer has no body (a client would read it as the next answer).
                    client.sendall(_503_HEAD if head.startswith(b"HEAD ") else _503)
            _close(client)
            return
        self.counts["pass"] += 1
        try:
            upstream = socket.create_connection(self.target, timeout=30)
        except OSError:
            _close(client)
            return
        with self._lock:
            self._open.update((client, upstream))
        pump = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        pump.start()
        _pipe(client, upstream, _RequestParser(self._log).feed)
        pump.join(timeout=30)
        with self._lock:
            self._open.discard(client)
            self._open.discard(upstream)

    def _log(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))


class _RequestParser:
    """Splits a client's byte stream into HTTP/1.1 requests: head, then a body of
    ``Content-Length`` bytes (botocore sends no chunked bodies to S3 here)."""

    def __init__(self, log: Callable[[str, str], None]) -> None:
        self.log = log
        self.buf = b""
        self.body_left = 0

    def feed(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.body_left:
                skip = min(self.body_left, len(self.buf))
                self.buf, self.body_left = self.buf[skip:], self.body_left - skip
                if self.body_left:
                    return
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4 :]
            lines = head.split("\r\n")
            method, target = [*lines[0].split(" "), "", ""][:2]
            self.log(method, target.split("?", 1)[0])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    self.body_left = int(value.strip())


def _pipe(
    src: socket.socket, dst: socket.socket, tap: Callable[[bytes], None] | None = None
) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if tap is not None:
                tap(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
