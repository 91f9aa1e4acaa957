"""Concurrency pools and their limits. Dagster keeps per-pool limits in the instance's storage
(not in ``dagster.yaml``, whose ``pools: default_limit`` would cap every pool), so they are set
with ``python -m pipelines.pools`` (run by ``.ci/setup``; the same as ``dagster instance
concurrency set gpu 1``). Pools not listed here are unlimited."""

from __future__ import annotations

import dagster as dg

GPU = "gpu"  # trainings: one at a time on a machine
POOL_LIMITS: dict[str, int] = {GPU: 1}


def apply_pool_limits(instance: dg.DagsterInstance) -> dict[str, int]:
    """Set every limit of :data:`POOL_LIMITS` on ``instance``; returns them."""
    for pool, limit in POOL_LIMITS.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    return dict(POOL_LIMITS)


if __name__ == "__main__":
    with dg.DagsterInstance.get() as inst:
        print(f"pool limits set in {inst.root_directory}: {apply_pool_limits(inst)}")
