"""The store layer's retry of transient errors (``scheduler/store/_retry.py``): what counts
as transient, backoff within a budget, one line when the budget is spent."""

from __future__ import annotations

import errno

import pytest

from scheduler.errors import StoreUnavailable
from scheduler.store._retry import retry_call, transient_reason


class Flaky:
    def __init__(self, errors: list[BaseException]) -> None:
        self.errors, self.calls = errors, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.EBUSY, "Service Unavailable"),
        ConnectionResetError("reset by peer"),
        TimeoutError("read timed out"),
    ],
)
def test_transient_errors_are_retried_until_they_pass(error: OSError) -> None:
    fn, naps = Flaky([error, error]), []
    assert retry_call("s3://b/runs", "reading x", fn, budget_s=60, sleep=naps.append) == "ok"
    assert fn.calls == 3 and len(naps) == 2 and all(0 <= n <= 8 for n in naps)


@pytest.mark.parametrize(
    "error",
    [FileNotFoundError("x"), FileExistsError("x"), PermissionError("denied"), ValueError("x")],
)
def test_other_errors_go_through_at_once(error: Exception) -> None:
    fn = Flaky([error])
    with pytest.raises(type(error)):
        retry_call("s3://b/runs", "reading x", fn, budget_s=60, sleep=lambda _: None)
    assert fn.calls == 1 and transient_reason(error) is None


def test_a_spent_budget_is_one_line_naming_the_store_and_the_reason() -> None:
    fn = Flaky([OSError(errno.EBUSY, "Service Unavailable")] * 50)
    with pytest.raises(StoreUnavailable) as info:
        retry_call("s3://b/runs", "writing claims/7.json", fn, budget_s=0.0)
    message = str(info.value)
    assert message.startswith("store s3://b/runs unreachable: Device or resource busy")
    assert "while writing claims/7.json" in message and "\n" not in message
    assert info.value.exit_code == 3
