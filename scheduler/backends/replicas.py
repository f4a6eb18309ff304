"""Engine replicas on one multi-GPU worker: GPU slices and the processes that use them.

A plan may put ``replicas_per_worker`` engines of ``tensor_parallel_size`` GPUs each on one
instance (eight replicas of an 8B model on an 8-GPU box, four of two GPUs for a 70B one).
The VM entry point then runs one worker process per replica:

- each sees only its own GPUs (``CUDA_VISIBLE_DEVICES``, sliced from what the machine
  shows) and is told its tensor-parallel size through ``SKYBATCH_TENSOR_PARALLEL_SIZE``,
  which the vllm engine uses when the recipe's ``model.options`` set none;
- each is a worker of its own in the run store (``w3`` runs ``w3-r0`` … ``w3-r7``) and
  reports its share of the instance's price, so the run's spend still sums to one instance;
- SIGTERM (the spot notice) is passed on to every replica; the entry point exits with the
  first replica's failure code, or 0 when all of them finished.

The task's run command carries ``--replicas N --tensor-parallel-size T``
(:func:`replica_flags` of the plan option); :func:`split_replica_flags` takes them off again
before the worker's own arguments are parsed.

The local backend pins its workers with the same pieces: :func:`visible_gpus` finds this
machine's GPUs, :func:`gpu_slices` cuts them, :func:`pinned_env` is what each process gets.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

from scheduler.errors import UsageError
from scheduler.store import LaunchOption

__all__ = [
    "REPLICAS_FLAG",
    "TP_ENV",
    "TP_FLAG",
    "ReplicaSplit",
    "gpu_slices",
    "pinned_env",
    "replica_argv",
    "replica_flags",
    "run_replicas",
    "split_replica_flags",
    "visible_gpus",
]

REPLICAS_FLAG = "--replicas"
TP_FLAG = "--tensor-parallel-size"
TP_ENV = "SKYBATCH_TENSOR_PARALLEL_SIZE"


def gpu_slices(replicas: int, tp: int, visible: str | None = None) -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` of each replica: consecutive groups of ``tp`` devices.

    ``visible`` is the machine's own ``CUDA_VISIBLE_DEVICES`` (None or empty: devices
    ``0 … replicas·tp - 1``); a replica never sees a device outside it.

    >>> gpu_slices(4, 2)
    ['0,1', '2,3', '4,5', '6,7']
    """
    if replicas < 1 or tp < 1:
        raise UsageError(f"{REPLICAS_FLAG} {replicas} {TP_FLAG} {tp}: both must be at least 1")
    devices = [d.strip() for d in (visible or "").split(",") if d.strip()]
    if not devices:
        devices = [str(i) for i in range(replicas * tp)]
    if len(devices) < replicas * tp:
        raise UsageError(
            f"{replicas} replicas of {tp} GPUs need {replicas * tp} GPUs, but "
            f"CUDA_VISIBLE_DEVICES={visible} shows {len(devices)}; plan again for this instance"
        )
    return [",".join(devices[i * tp : (i + 1) * tp]) for i in range(replicas)]


def visible_gpus(env: Mapping[str, str]) -> list[str]:
    """This machine's GPUs as ``CUDA_VISIBLE_DEVICES`` entries (empty: none).

    A ``CUDA_VISIBLE_DEVICES`` in ``env`` is the user's choice and wins, as CUDA reads it:
    the list ends at the first negative entry (``-1`` hides every GPU). Without it,
    ``nvidia-smi`` (found on ``env``'s PATH) lists the devices; no ``nvidia-smi``, or one
    that fails, means no GPU. ``torch.cuda`` is not asked: importing torch costs the
    driver seconds, and the answer is the same.
    """
    if "CUDA_VISIBLE_DEVICES" in env:
        devices = []
        for entry in (d.strip() for d in env["CUDA_VISIBLE_DEVICES"].split(",")):
            if entry.startswith("-"):
                break
            if not entry:
                continue
            devices.append(entry)
        return devices
    smi = shutil.which("nvidia-smi", path=env.get("PATH"))
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, env=dict(env),
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip().isdigit()]


def pinned_env(devices: str, tp: int) -> dict[str, str]:
    """What one engine's process is told: its GPUs and its tensor-parallel size."""
    return {"CUDA_VISIBLE_DEVICES": devices, TP_ENV: str(tp)}


def replica_flags(option: LaunchOption) -> list[str]:
    """The entry point's flags for a plan option (none for one engine on one GPU)."""
    replicas, tp = option.replicas_per_worker, option.tp_size
    if replicas == 1 and tp == 1:
        return []
    return [REPLICAS_FLAG, str(replicas), TP_FLAG, str(tp)]


@dataclass(frozen=True)
class ReplicaSplit:
    """The replica flags of an entry point's arguments, and the arguments left."""

    replicas: int
    tp: int
    rest: tuple[str, ...]


def split_replica_flags(argv: Sequence[str]) -> ReplicaSplit:
    """Take ``--replicas`` and ``--tensor-parallel-size`` (``--x N`` or ``--x=N``) off."""
    values = {REPLICAS_FLAG: 1, TP_FLAG: 1}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=")
        if name in values:
            raw = inline if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            i += 1 if eq else 2
            try:
                values[name] = int(raw)
            except ValueError:
                raise UsageError(f"{name} {raw!r}: expected a whole number of at least 1") from None
            if values[name] < 1:
                raise UsageError(f"{name} {raw!r}: expected a whole number of at least 1")
            continue
        rest.append(arg)
        i += 1
    return ReplicaSplit(values[REPLICAS_FLAG], values[TP_FLAG], tuple(rest))


def replica_argv(rest: Sequence[str], *, index: int, replicas: int) -> list[str]:
    """One replica's arguments: its own worker id and its share of each price."""
    out = list(rest)
    for i, arg in enumerate(out[:-1]):
        if arg == "--worker-id":
            out[i + 1] = f"{out[i + 1]}-r{index}"
        elif arg == "--prices":
            try:
                prices = json.loads(out[i + 1] or "{}")
                shares = {str(k): float(v) / replicas for k, v in prices.items()}
            except (ValueError, TypeError, AttributeError):
                raise UsageError(f"--prices {out[i + 1]!r}: expected a JSON object") from None
            out[i + 1] = json.dumps(shares, sort_keys=True, separators=(",", ":"))
    return out


def run_replicas(
    split: ReplicaSplit,
    *,
    command: Sequence[str],
    env: Mapping[str, str],
    popen: Callable[..., subprocess.Popen[bytes]] = subprocess.Popen,
) -> int:
    """Run ``split.replicas`` workers (``command`` + each one's arguments) and wait for all.

    Returns the first non-zero exit code in replica order, else 0.
    """
    slices = gpu_slices(split.replicas, split.tp, env.get("CUDA_VISIBLE_DEVICES"))
    procs: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        for index, devices in enumerate(slices):
            child_env = {**env, **pinned_env(devices, split.tp)}
            args = replica_argv(split.rest, index=index, replicas=split.replicas)
            procs.append(popen([*command, *args], env=child_env))
        codes = [p.wait() for p in procs]
    finally:
        signal.signal(signal.SIGTERM, previous)
    return next((c for c in codes if c != 0), 0)
