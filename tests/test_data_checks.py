"""The blocking check ``enough_valid_files``: too few ingested files stop the graph at raw_scores."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from musicml.ingest.corpus import music21_abc_files
from pipelines.assets.curation import parsed_scores, raw_scores
from pipelines.checks import enough_valid_files
from pipelines.resources import LakeResource


@pytest.fixture
def lake_root(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for f in music21_abc_files()[:2]:
        shutil.copy(f, raw / f.name)
    (raw / "noise.mid").write_bytes(b"not a midi file")
    return tmp_path


def run(lake_root, min_valid_files: int) -> dg.ExecuteInProcessResult:
    config = {"ops": {"raw_scores": {"config": {"seed_default_corpus": False, "isolate": False}},
                      "raw_scores_enough_valid_files": {"config": {"min_valid_files": min_valid_files}}}}
    with dg.instance_for_test() as instance:
        return dg.materialize([raw_scores, parsed_scores, enough_valid_files], run_config=config,
                              resources={"lake": LakeResource(root=str(lake_root))}, instance=instance,
                              raise_on_error=False)


def test_too_few_valid_files_stop_the_graph(lake_root):
    result = run(lake_root, 3)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["ingested"].value == 2
    assert evaluation.metadata["status_rejected"].value == 1
    assert not (lake_root / "parsed" / "pieces" / "manifest.json").exists()  # parsed_scores never ran
    assert [m.asset_key for m in result.asset_materializations_for_node("raw_scores")] == [dg.AssetKey("raw_scores")]
    assert result.asset_materializations_for_node("parsed_scores") == []


def test_enough_valid_files_let_it_through(lake_root):
    result = run(lake_root, 2)
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert (lake_root / "parsed" / "pieces" / "manifest.json").exists()
