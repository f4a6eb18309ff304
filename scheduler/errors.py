"""The one exception hierarchy of skybatch.

Every error a user can cause or meet derives from :class:`SkybatchError` and carries the
process exit code the CLI uses for it. Messages are one line: what was attempted, on which
file/field/row/run, what failed and what to do::

    SkybatchError            exit 1
    ├── UsageError           exit 2   bad command-line usage
    ├── RecipeError          exit 2   a recipe file or one of its fields is invalid
    ├── InputError           exit 2   the input data cannot be read or sharded
    ├── StoreError           exit 3   the run store refused an operation
    │   ├── StoreUnavailable exit 3   the store stayed unreachable past the retry budget
    │   └── ResumeRefused    exit 2   the input or model changed since the run was created
    ├── EngineError          exit 1   an engine could not load or run
    ├── PlanError            exit 4   no plan meets the deadline/budget
    ├── LaunchError          exit 5   SkyPilot could not launch (e.g. no cloud enabled)
    ├── BudgetError          exit 6   the run would pass, or has passed, its budget
    └── DeadlineMissed       exit 7   the run finished after its deadline

Third-party errors are wrapped with ``raise ... from e`` so the cause stays visible in
``--debug`` tracebacks, while the CLI prints only the message.
"""

from __future__ import annotations

__all__ = [
    "BudgetError",
    "DeadlineMissed",
    "EngineError",
    "InputError",
    "LaunchError",
    "PlanError",
    "RecipeError",
    "ResumeRefused",
    "SkybatchError",
    "StoreError",
    "StoreUnavailable",
    "UsageError",
    "describe_cloud_error",
]

_CLOUD_SDKS = ("botocore", "aiobotocore", "boto3", "s3fs", "gcsfs", "google", "adlfs", "azure")


def describe_cloud_error(exc: BaseException) -> str | None:
    """A one-line description of an object-store SDK error, or None for other errors.

    The SDKs raise their own exception types (botocore's ``NoCredentialsError`` is not an
    ``OSError``), so callers that touch s3:// or gs:// catch ``Exception`` and ask here.
    """
    module = type(exc).__module__.split(".")[0]
    if module not in _CLOUD_SDKS:
        return None
    name = type(exc).__name__
    if "Credential" in name or "credential" in str(exc).lower():
        return f"no cloud credentials ({name}); configure them (e.g. aws configure, gcloud auth)"
    return f"{name}: {str(exc).splitlines()[0] if str(exc) else name}"


class SkybatchError(Exception):
    """Root of every error skybatch raises on purpose."""

    exit_code: int = 1


class UsageError(SkybatchError):
    """The command line was wrong."""

    exit_code = 2


class RecipeError(SkybatchError):
    """A recipe file, or one of its fields, is invalid.

    ``problems`` lists every problem found, one line each (the message names the first
    and counts the rest): the CLI prints them all.
    """

    exit_code = 2

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems or [message])


class InputError(SkybatchError):
    """The input data cannot be found, read or sharded."""

    exit_code = 2


class StoreError(SkybatchError):
    """The run store refused an operation, or failed its conformance check."""

    exit_code = 3


class StoreUnavailable(StoreError):
    """The store kept failing (5xx, throttling, dropped connections) past the retry budget.

    Also raised for a local store that cannot be written (disk full, permission denied):
    a condition that no retry of this process fixes.
    """

    exit_code = 3


class ResumeRefused(StoreError):
    """An existing run was created from a different input, model or recipe."""

    exit_code = 2


class EngineError(SkybatchError):
    """An engine could not be loaded or failed as a whole (not one row)."""

    exit_code = 1


class PlanError(SkybatchError):
    """No plan satisfies the deadline and budget."""

    exit_code = 4


class LaunchError(SkybatchError):
    """SkyPilot could not launch the workers (no cloud enabled, quota, ...).

    ``launched`` holds the jobs that were submitted before the failure (worker id ->
    managed job id): they run, so they must be recorded like any other.
    """

    exit_code = 5

    def __init__(self, message: str, *, launched: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.launched: dict[str, int] = dict(launched or {})


class BudgetError(SkybatchError):
    """The run would pass, or has passed, its budget."""

    exit_code = 6


class DeadlineMissed(SkybatchError):
    """The run finished, but after its deadline."""

    exit_code = 7
