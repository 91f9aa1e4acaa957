"""Settings of the automation around the graph: the data guarantee checked before training."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DataChecksConfig:
    min_valid_files: int = 3  # ingested files below which the blocking check enough_valid_files stops the graph (train, valid and test each need a work)


@dataclass
class RetrainConfig:
    min_new_works: int = 20  # works not in the latest training's data that make new_works_sensor request a retraining
    max_request_paths: int = 2000  # new_scores_sensor names at most this many changed paths; more: a request to rescan the whole drop zone


WORKS_FILE = "works.json"  # in a training's run folder: the works of the data it trained on


def current_works(lake) -> list[str]:
    """Work ids of the curated data now (``curated/splits.parquet``), sorted; [] before curation."""
    import polars as pl

    path = lake.path("curated", "splits.parquet")
    if not path.exists() or "work_id" not in pl.read_parquet_schema(path):  # (hand-made test lakes)
        return []
    from musicml.lake import read_frame

    return sorted(read_frame(path, columns=["work_id"])["work_id"].unique().to_list())


def record_works(lake, run_dir) -> None:
    """Write the works a training is about to train on into its run folder."""
    from musicml.lake import write_json

    write_json(run_dir / WORKS_FILE, {"works": current_works(lake)})


def new_works(lake) -> list[str]:
    """Works of the curated data that the latest finished training did not see (all, before any)."""
    from pathlib import Path

    from musicml.lake import read_json

    works = current_works(lake)
    latest = lake.path("models", "latest.json")
    if not latest.exists():
        return works
    seen_file = Path(read_json(latest)["run_dir"]) / WORKS_FILE
    seen = set(read_json(seen_file)["works"]) if seen_file.exists() else set()
    return [w for w in works if w not in seen]
