"""The piano-roll asset: sparse 16th-note events of every split's pieces (family ``fractal``)."""

import time

import dagster as dg

from musicml.pianorolls.dataset import PianoRollConfig
from musicml.pianorolls.steps import piano_rolls_step
from pipelines.assets.curation import splits
from pipelines.config import dagster_config
from pipelines.metadata import md_table
from pipelines.resources import LakeResource

GROUP = "data"

PianoRollsConfig = dagster_config(PianoRollConfig, name="PianoRollsConfig")


@dg.asset(group_name=GROUP, deps=[splits], kinds={"polars", "parquet"})
def piano_rolls(context: dg.AssetExecutionContext, config: PianoRollsConfig, lake: LakeResource) -> dg.MaterializeResult:
    """Every augmented row with notes as sparse note events on a true 16th-note grid, per split."""
    import polars as pl

    t0 = time.perf_counter()
    summary = piano_rolls_step(lake.lake(), config.build())
    table = pl.DataFrame([{"split": k, **v} for k, v in sorted(summary["splits"].items())])
    context.log.info(f"piano rolls: {summary['splits']}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": int(summary["events"]),
        "pieces": int(summary["pieces"]),
        "splits": md_table(table) if table.height else "no rolls",
        "seconds": round(time.perf_counter() - t0, 2),
    })
