"""Thread and worker counts from the cores actually available (musicml.threads)."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from musicml import threads

REPO = Path(__file__).resolve().parents[1]


def test_available_cores_follows_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    assert threads.available_cores() == 3


def test_available_cores_is_capped_by_the_cgroup_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 2.5)
    assert threads.available_cores() == 3  # 2.5 cores of quota: 3 threads, not 16


def test_available_cores_falls_back_to_cpu_count_without_affinity(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    assert threads.available_cores() == 1


@pytest.mark.parametrize("text, cores", [("max 100000", None), ("200000 100000", 2.0),
                                         ("50000 100000", 0.5), ("garbage", None), ("", None),
                                         ("x 100000", None), ("0 100000", None)])
def test_cgroup_cpu_limit_parses_cpu_max(tmp_path, text, cores):
    path = tmp_path / "cpu.max"
    path.write_text(text + "\n")
    assert threads.cgroup_cpu_limit(path) == cores


def test_cgroup_cpu_limit_without_the_file(tmp_path):
    assert threads.cgroup_cpu_limit(tmp_path / "absent") is None


@pytest.mark.parametrize("requested, jobs, cores, expected", [
    (0, None, 2, 2), (8, None, 2, 2), (1, None, 2, 1), (0, 1, 4, 1), (0, 0, 4, 1), (-3, 100, 3, 3),
])
def test_pool_workers_never_exceed_the_cores(requested, jobs, cores, expected):
    assert threads.pool_workers(requested, jobs, cores=cores) == expected


def test_limit_threads_sets_torch_and_the_env(monkeypatch):
    import torch

    for name in (*threads.THREAD_ENV_VARS, "OMP_WAIT_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAYON_NUM_THREADS", "7")  # a user's own setting is kept
    before = torch.get_num_threads()
    try:
        assert threads.limit_threads(1) == 1
        assert torch.get_num_threads() == 1
        assert os.environ["POLARS_MAX_THREADS"] == "1"
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
        assert os.environ["RAYON_NUM_THREADS"] == "7"
        assert not threads.oversubscribed(cores=1)
    finally:
        torch.set_num_threads(before)


def test_limit_threads_rejects_zero():
    with pytest.raises(ValueError, match="threads must be >= 1"):
        threads.limit_threads(0)


def test_oversubscribed_compares_torch_threads_with_cores():
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert threads.oversubscribed(cores=1)
        assert not threads.oversubscribed(cores=2)
    finally:
        torch.set_num_threads(before)


def _worker_threads(_):
    import torch

    return os.getpid(), torch.get_num_threads(), os.environ["POLARS_MAX_THREADS"]


def test_pool_workers_run_one_thread_each():
    import multiprocessing

    import torch  # noqa: F401  (imported in the parent, as in the pipeline's processes)

    n = threads.pool_workers(0, jobs=8)
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"),
                             initializer=threads.worker_init) as pool:
        out = list(pool.map(_worker_threads, range(8)))
    assert len({pid for pid, _, _ in out}) <= threads.available_cores()
    assert {(t, p) for _, t, p in out} == {(1, "1")}


def test_polars_pool_is_sized_before_import():
    """In a fresh process, limit_threads before ``import polars`` sizes polars' pool."""
    code = ("from musicml.threads import limit_threads; limit_threads(1); import polars, torch; "
            "print(polars.thread_pool_size(), torch.get_num_threads(), torch.get_num_interop_threads())")
    env = {k: v for k, v in os.environ.items() if k not in threads.THREAD_ENV_VARS}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True, timeout=120).stdout.split()
    assert out == ["1", "1", "1"]
