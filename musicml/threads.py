"""Thread and worker counts sized from the cores this process may actually use.

    cores = available_cores()          # affinity mask (os.sched_getaffinity), capped by a cgroup quota
    limit_threads()                    # torch intra-op = cores, inter-op 1, polars/rayon/OpenMP env
    n = pool_workers(requested, jobs)  # a process pool never larger than the cores (or the jobs)
    ProcessPoolExecutor(n, initializer=worker_init)   # workers run 1 torch / polars thread each

Call :func:`limit_threads` first thing in a process entry point: ``POLARS_MAX_THREADS`` is read
when polars is imported and ``OMP_WAIT_POLICY`` when torch is, so those two only take effect
before the imports (this module imports neither at load time). ``OMP_WAIT_POLICY=PASSIVE`` makes
OpenMP threads sleep instead of spin while they wait: on a CPU shared with another busy process
spinning threads are preempted mid-step, which is what made training 10x slower there (see
``bench/bench_busy.py``).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
# env read by libraries when they start their thread pools (polars, HF tokenizers' rayon, OpenMP)
THREAD_ENV_VARS = ("POLARS_MAX_THREADS", "RAYON_NUM_THREADS", "OMP_NUM_THREADS")
WAIT_POLICY = "PASSIVE"


def cgroup_cpu_limit(path: Path = CGROUP_CPU_MAX) -> float | None:
    """The cgroup v2 CPU quota in cores (``cpu.max`` "quota period"), or None when unlimited,
    absent or unreadable."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        q, p = float(quota), float(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity mask, capped by a cgroup CPU quota
    (rounded up); at least 1. ``os.cpu_count()`` is only the fallback where affinity is
    unsupported (macOS, Windows)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def pool_workers(requested: int = 0, jobs: int | None = None, cores: int | None = None) -> int:
    """Processes for a pool: ``requested`` (0: one per available core), never more than the
    available cores nor than ``jobs``; at least 1."""
    cores = cores if cores is not None else available_cores()
    n = cores if requested <= 0 else min(requested, cores)
    if jobs is not None:
        n = min(n, jobs)
    return max(1, n)


def thread_env(threads: int) -> dict[str, str]:
    """Environment for a process (or child) meant to use ``threads`` threads."""
    return {**{name: str(threads) for name in THREAD_ENV_VARS}, "OMP_WAIT_POLICY": WAIT_POLICY}


def limit_threads(threads: int | None = None, *, override_env: bool = False) -> int:
    """Size this process's thread pools to ``threads`` (default: :func:`available_cores`).

    Sets the env of :func:`thread_env` (kept where the user already set a variable, unless
    ``override_env``), torch's intra-op threads to ``threads`` and inter-op threads to 1 when
    torch is already imported (or imports it). Polars' pool cannot change once polars is
    imported; that is left as it is. Returns the thread count."""
    threads = threads if threads is not None else available_cores()
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    for name, value in thread_env(threads).items():
        if override_env or name not in os.environ:
            os.environ[name] = value
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable once, before any inter-op work; keep what is there
        pass
    return threads


def oversubscribed(cores: int | None = None) -> bool:
    """Whether torch (if imported) runs more intra-op threads than the available cores."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    return torch.get_num_threads() > (cores if cores is not None else available_cores())


def worker_init() -> None:
    """Process-pool initializer: a worker runs one thread, so ``n`` workers use ``n`` cores."""
    for name, value in thread_env(1).items():
        os.environ[name] = value
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
