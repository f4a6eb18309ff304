"""Transient object-store errors retried with backoff and jitter, within a bounded budget.

botocore retries a 5xx a few times within about a second; an outage of tens of seconds (a
region hiccup, throttling under load, a proxy restarting) outlasts that. Every call the
store makes to an object store goes through :func:`retry_call`, which retries errors
that say "try again" (5xx, 429/SlowDown, timeouts, dropped or refused connections) with
exponential backoff and full jitter, and gives up after ``SKYBATCH_STORE_RETRY_S``
seconds (default 120) with one :class:`~scheduler.errors.StoreUnavailable` line naming
the store, what was being done and the last reason. Everything else (absent, exists,
access denied) goes through at once: retrying it could not help.

Retrying is safe for every operation: reads and overwrites are idempotent, and a retried
exclusive create that had landed is answered "exists", which ``commit`` settles by
reading the marker back.
"""

from __future__ import annotations

import errno
import os
import random
import time
from collections.abc import Callable
from typing import TypeVar

from scheduler.errors import StoreUnavailable
from scheduler.units import duration_text

__all__ = ["retry_budget_s", "retry_call", "transient_reason"]

T = TypeVar("T")

_TRANSIENT_ERRNOS = {
    errno.EBUSY,  # s3fs: 503 ServiceUnavailable / SlowDown, 409 OperationAborted
    getattr(errno, "EREMOTEIO", errno.EIO),  # s3fs: 500 InternalError
    errno.ETIMEDOUT,
    errno.ECONNRESET,
    errno.ECONNREFUSED,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.EAGAIN,
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
}
_NOT_TRANSIENT = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError)
_SDKS = ("botocore", "aiobotocore", "aiohttp", "urllib3", "requests", "google", "gcsfs", "s3fs")
_TRANSIENT_NAMES = (
    "Connection",
    "Timeout",
    "Endpoint",
    "Disconnected",
    "Payload",
    "Incomplete",
    "HTTPClient",  # botocore: the HTTP exchange itself failed (a garbled or cut answer)
)


def _status(e: BaseException) -> int | None:
    for err in (e, e.__cause__, e.__context__):
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            if isinstance(status, int):
                return status
    return None


def transient_reason(e: BaseException) -> str | None:
    """A short description if ``e`` is worth retrying, else None."""
    if isinstance(e, _NOT_TRANSIENT):
        return None
    status = _status(e)
    # 501/505: the store does not implement the request; no retry makes it.
    if status is not None and (status >= 500 or status == 429) and status not in (501, 505):
        return f"HTTP {status} ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
    if isinstance(e, OSError) and e.errno in _TRANSIENT_ERRNOS:
        return f"{os.strerror(e.errno) if e.errno else ''} ({str(e).splitlines()[0][:200]})"
    if isinstance(e, TimeoutError | ConnectionError):
        return f"{type(e).__name__}: {str(e)[:200]}"
    module = type(e).__module__.split(".")[0]
    if module in _SDKS and any(k in type(e).__name__ for k in _TRANSIENT_NAMES):
        return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    return None


def retry_budget_s() -> float:
    """Seconds a store call keeps retrying transient errors (``SKYBATCH_STORE_RETRY_S``)."""
    try:
        return max(0.0, float(os.environ.get("SKYBATCH_STORE_RETRY_S", "120")))
    except ValueError:
        return 120.0


def retry_call(
    store: str,
    what: str,
    fn: Callable[[], T],
    *,
    budget_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``fn()``, retrying transient errors with backoff and jitter until ``budget_s``."""
    budget = retry_budget_s() if budget_s is None else budget_s
    started = time.monotonic()
    tries = 0
    while True:
        try:
            return fn()
        except Exception as e:
            reason = transient_reason(e)
            if reason is None:
                raise
            tries += 1
            elapsed = time.monotonic() - started
            left = budget - elapsed
            if left <= 0:
                raise StoreUnavailable(
                    f"store {store} unreachable: {reason}, still failing after {tries} "
                    f"attempt{'s' if tries > 1 else ''} over {duration_text(elapsed)} while {what}; check the store and run the "
                    "same command again to resume"
                ) from e
            # Full jitter: workers that failed together do not retry together.
            sleep(min(left, random.uniform(0.0, min(8.0, 0.25 * 2 ** min(tries, 10)))))
