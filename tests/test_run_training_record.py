"""Evaluation, samples and registration use the training of their own Dagster run, not whatever
training of the lake finished last (two runs at once on one lake)."""

# no `from __future__ import annotations`: Dagster reads the context annotation
import json
from pathlib import Path

import dagster as dg
import pytest

from musicml import workflow
from musicml.lake import Lake
from pipelines.assets.model import training_of_this_run


def _record(run_dir: Path, name: str) -> dict:
    run_dir.mkdir(parents=True)
    record = {"name": name, "run_dir": str(run_dir), "checkpoint": str(run_dir / "ckpt.pt"), "mlflow_run_id": name}
    (run_dir / "run.json").write_text(json.dumps(record))
    return record


def test_downstream_assets_take_the_training_of_their_own_run(tmp_path: Path) -> None:
    lake = Lake(root=tmp_path, raw_dir=tmp_path / "raw")
    mine = _record(tmp_path / "models" / "mine", "mine")
    other = _record(tmp_path / "models" / "other", "other")
    (tmp_path / "models" / "latest.json").write_text(json.dumps(other))  # another run finished later
    seen: list[dict] = []

    @dg.asset(name="trained_model")
    def fake_training() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"run_dir": dg.MetadataValue.path(mine["run_dir"])})

    @dg.asset(deps=[fake_training])
    def evaluation(context: dg.AssetExecutionContext) -> None:
        seen.append(training_of_this_run(context, lake))

    with dg.instance_for_test() as instance:
        assert dg.materialize([fake_training, evaluation], instance=instance).success
        assert seen[-1]["name"] == "mine"  # not the lake's latest
        assert dg.materialize([evaluation], instance=instance).success  # a run that trained nothing
        assert seen[-1]["name"] == "other"


def test_an_unfinished_run_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"name": "x", "mlflow_run_id": "1"}))
    with pytest.raises(FileNotFoundError, match="has not finished"):
        workflow.run_record(tmp_path)
