"""The Dagster layer's wiring: the graph, the GPU pool, the sensor, the schedule and the leak check."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from pipelines import pools
from pipelines.checks import no_split_leak
from pipelines.definitions import defs
from pipelines.resources import LakeResource
from pipelines.sensors import new_scores_sensor, nightly_retrain

ROOT = Path(__file__).resolve().parents[1]
GRAPH = ["raw_scores", "parsed_scores", "deduped_scores", "augmented_scores", "splits", "tokenizer",
         "token_shards", "trained_model", "model_evaluation", "generated_samples"]


def test_graph_is_a_chain_from_drop_zone_to_samples() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == set(GRAPH) | {"piano_rolls", "registered_model", "raw_score_buckets"}  # piano rolls: a side branch splits -> trained_model
    assert {k.to_user_string() for k in graph.get(dg.AssetKey("raw_scores")).parent_keys} == {
        "raw_score_buckets"}  # the partitioned side branch for ingestion on several machines
    main = {k.to_user_string() for k in defs.resolve_job_def("main_job").asset_layer.selected_asset_keys}
    assert main == keys - {"raw_score_buckets"}  # main_job runs unpartitioned
    assert {k.to_user_string() for k in graph.get(dg.AssetKey("registered_model")).parent_keys} == {
        "model_evaluation"}  # the registry: a side branch after the evaluation
    assert {k.to_user_string() for k in graph.get(dg.AssetKey("piano_rolls")).parent_keys} == {"splits"}
    for upstream, downstream in zip(GRAPH, GRAPH[1:]):
        parents = {k.to_user_string() for k in graph.get(dg.AssetKey(downstream)).parent_keys}
        assert upstream in parents, (upstream, downstream)


def test_training_runs_in_the_gpu_pool_limited_to_one_and_other_pools_are_unlimited() -> None:
    assert defs.resolve_assets_def("trained_model").op.pool == pools.GPU == "gpu"
    instance_yaml = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert "default_limit" not in instance_yaml["concurrency"].get("pools", {})  # it would cap every pool
    with dg.instance_for_test(overrides=instance_yaml) as instance:
        assert pools.apply_pool_limits(instance) == {"gpu": 1}
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1
        assert instance.event_log_storage.get_concurrency_keys() == {"gpu"}


def test_pool_limits_script_sets_the_gpu_pool(tmp_path) -> None:
    """``.ci/setup`` runs ``python -m pipelines.pools`` against DAGSTER_HOME."""
    import os
    import subprocess
    import sys

    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "pipelines.pools"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "{'gpu': 1}" in proc.stdout
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1


def test_nightly_schedule_is_off_until_switched_on() -> None:
    assert nightly_retrain.cron_schedule == "0 3 * * *"
    assert nightly_retrain.default_status == dg.DefaultScheduleStatus.STOPPED


def test_sensor_requests_a_run_only_when_the_drop_zone_changes(tmp_path, monkeypatch) -> None:
    # the sensor watches the configured LakeResource, not the environment
    monkeypatch.setenv("MUSICML_LAKE", str(tmp_path / "env_lake"))
    monkeypatch.setenv("MUSICML_RAW_DIR", str(tmp_path / "env_raw"))
    (tmp_path / "env_raw").mkdir()
    (tmp_path / "env_raw" / "ignored.abc").write_text("X:1\nT:x\nK:C\nC|\n")
    raw = tmp_path / "drop"
    raw.mkdir(parents=True)
    resources = {"lake": LakeResource(root=str(tmp_path / "lake"), raw_dir=str(raw))}

    def evaluate(cursor: str | None = None):
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
            return new_scores_sensor(context)

    with dg.instance_for_test() as instance:
        empty = evaluate()
        assert isinstance(empty, dg.SkipReason) and "empty" in empty.skip_message and str(raw) in empty.skip_message

        (raw / "a.abc").write_text("X:1\nT:a\nK:C\nCDEF|\n")
        first = evaluate()
        assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
        assert first.run_requests[0].tags["musicml/files"] == "1"

        same = evaluate(first.cursor)
        assert isinstance(same, dg.SkipReason) and "no change in 1 files" in same.skip_message

        (raw / "sub").mkdir()
        (raw / "sub" / "b.abc").write_text("X:1\nT:b\nK:G\nGABc|\n")
        added = evaluate(first.cursor)
        assert isinstance(added, dg.SensorResult) and added.cursor != first.cursor
        assert added.run_requests[0].run_key == added.cursor


def _splits(tmp_path: Path, rows: list[tuple[str, str, str, str | None]]) -> LakeResource:
    lake = tmp_path / "lake"
    (lake / "curated").mkdir(parents=True)
    pl.DataFrame(rows, schema=["row_id", "work_id", "text_hash", "split"], orient="row").write_parquet(
        lake / "curated" / "splits.parquet")
    return LakeResource(root=str(lake))


@pytest.mark.parametrize(
    ("rows", "passed", "what"),
    [
        ([("a", "w1", "h1", "train"), ("a+1", "w1", "h2", "train"), ("b", "w2", "h3", "valid")], True, None),
        ([("a", "w1", "h1", "train"), ("a+1", "w1", "h2", "test")], False, "works_in_several_splits"),
        ([("a", "w1", "h1", "train"), ("b", "w2", "h1", "valid")], False, "identical_texts_in_several_splits"),
        ([("a", "w1", "h1", "train"), ("b", "w2", "h2", None)], False, "rows_without_split"),
    ],
)
def test_no_split_leak_check(tmp_path, rows, passed, what) -> None:
    result = no_split_leak(lake=_splits(tmp_path, rows))
    assert result.passed is passed
    if what:
        assert result.metadata[what].value == 1


@pytest.mark.parametrize("source", ["README.md", ".ci/small.yaml", ".ci/remi.yaml"])
def test_documented_run_configs_validate(source: str) -> None:
    text = (ROOT / source).read_text()
    if source.endswith(".md"):  # the README's ```yaml example
        text = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    dg.validate_run_config(defs.resolve_job_def("main_job"), yaml.safe_load(text))
