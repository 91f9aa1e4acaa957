"""The whole asset graph, materialized in-process into a temp lake on a mixed real corpus."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import Derived

from musicml import shards
from musicml.lake import sha256_file

TINY_RUN = {
    "ops": {
        "raw_scores": {"config": {"seed_default_corpus": False}},
        "tokenizer": {"config": {"vocab_size": 1024}},
        "trained_model": {"config": {
            "model": {"n_layer": 1, "n_embd": 64, "n_head": 1}, "seq_len": 128, "device_batch_size": 4,
            "total_batch_tokens": 512, "max_steps": 12, "eval_every": 6, "checkpoint_every": 6,
            "eval_tokens": 2048, "launcher": "subprocess"}},
        "model_evaluation": {"config": {"validity_samples": 1, "max_new_tokens": 48}},  # whole splits
        "generated_samples": {"config": {"per_prompt": 1, "max_new_tokens": 64}},
    }
}
DATA_ASSETS = ["raw_scores", "parsed_scores", "deduped_scores", "augmented_scores", "splits",
               "tokenizer", "token_shards"]


def build_drop_zone(raw: Path, derived: Derived) -> dict[str, str]:
    """A mixed real subset (derived from music21's corpus) plus bad files; returns {file: expected status}."""
    expected = {}
    for name, src in (("001.mid", derived.multitrack[0]), ("002.mid", derived.multitrack[1])):
        shutil.copy(src, raw / name)
        expected[name] = "ingested"
    shutil.copy(derived.multitrack[0], raw / "001_copy.mid")
    expected["001_copy.mid"] = "duplicate"
    for name in ("garbage_chunk_id.mid", "truncated.mid"):
        shutil.copy(derived.corrupt_midi[name], raw / name)
        expected[name] = "rejected"
    shutil.copy(derived.empty_midi, raw / "empty.mid")
    expected["empty.mid"] = "rejected"
    for i, f in enumerate(derived.abc_files[:5]):  # music21's ABC files as installed
        shutil.copy(f, raw / f"m21_{i}_{f.name}")
        expected[f"m21_{i}_{f.name}"] = "ingested"
    for f in derived.atex[5:8]:  # other tunes, as alphaTex tabs
        shutil.copy(f, raw / f"tab_{f.name}")
        expected[f"tab_{f.name}"] = "ingested"
    (raw / "broken.atex").write_text('\\title "Broken\n\\tempo 120\n.\n3.3.4 (0.1 2.2.4 |\n')
    expected["broken.atex"] = "rejected"
    (raw / "notes.txt").write_text("not a score")
    expected["notes.txt"] = "rejected"
    (raw / "zero.abc").write_bytes(b"")
    expected["zero.abc"] = "rejected"
    (raw / "binary.abc").write_bytes(b"X:1\nT:bin\n\x00\x01\x02 garbage")
    expected["binary.abc"] = "rejected"
    for p in raw.iterdir():  # files that sit in the drop zone: a file modified in the last 2 s is
        os.utime(p, ns=(OLD_NS, OLD_NS))  # read again by the next run (musicml.ingest.files.RACY_NS)
    return expected


OLD_NS = 1_600_000_000 * 10**9  # an mtime long past


@pytest.fixture(scope="module")
def graph(tmp_path_factory, derived):
    """Materialize everything once for the module; yields (lake root, result, expected statuses)."""
    root = tmp_path_factory.mktemp("lake")
    raw = root / "raw"
    raw.mkdir()
    expected = build_drop_zone(raw, derived)
    mp = pytest.MonkeyPatch()
    mp.setenv("MUSICML_LAKE", str(root))
    mp.delenv("MUSICML_RAW_DIR", raising=False)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    from pipelines.definitions import defs, main_assets

    with dg.instance_for_test() as instance:
        result = dg.materialize([*main_assets(defs), *defs.asset_checks], run_config=TINY_RUN,
                                resources=defs.resources, instance=instance)
        yield root, result, expected, defs, instance
    mp.undo()


def test_run_succeeds_and_checks_pass(graph):
    _, result, *_ = graph
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    names = {e.check_name: e.passed for e in evaluations}
    assert names == {"no_split_leak": True, "every_file_accounted": True, "shards_match_manifest": True,
                     "enough_valid_files": True}


def test_every_file_has_exactly_one_row(graph):
    root, _, expected, *_ = graph
    files = pl.read_parquet(root / "ingest" / "files.parquet")
    assert sorted(files["path"].to_list()) == sorted(expected)
    status = dict(files.select("path", "status").iter_rows())
    assert status == expected
    for row in files.filter(pl.col("status") != "ingested").iter_rows(named=True):
        assert row["path"] in row["reason"], row
    broken = files.filter(pl.col("path") == "broken.atex")["reason"][0]
    assert "broken.atex:" in broken and "error" in broken
    assert "identical bytes to 001.mid" in files.filter(pl.col("path") == "001_copy.mid")["reason"][0]


def test_catalog_views(graph):
    root, *_ = graph
    con = duckdb.connect(str(root / "catalog.duckdb"), read_only=True)
    try:
        cols = {r[0] for r in con.execute("DESCRIBE scores").fetchall()}
        assert {"path", "format", "content_hash", "status", "reason"} <= cols
        assert "split" in {r[0] for r in con.execute("DESCRIBE splits").fetchall()}
        n_shards = con.execute("SELECT count(*) FROM shards").fetchone()[0]
        assert n_shards >= 3
        rejected = con.execute("SELECT count(*) FROM scores WHERE status = 'rejected'").fetchone()[0]
        assert rejected == 7
    finally:
        con.close()


def test_shards_and_manifest(graph):
    root, *_ = graph
    shard_dir = root / "shards"
    manifest = shards.read_manifest(shard_dir)
    assert shards.verify(shard_dir) == []
    assert set(manifest["splits"]) == {"train", "valid", "test"}
    for split, info in manifest["splits"].items():
        assert info["tokens"] > 0
        for path in shards.shard_paths(shard_dir, split):
            assert pq.read_metadata(path).row_group(0).column(0).compression == "ZSTD"
            rows = pq.read_table(path, columns=["tokens"]).column("tokens").to_pylist()
            assert all(r[0] == manifest["bos_id"] for r in rows)
    assert {"abc", "midi", "atex"} <= set(manifest["formats"])
    works = pl.read_parquet(root / "curated" / "splits.parquet")
    assert works.group_by("work_id").agg(pl.col("split").n_unique()).filter(pl.col("split") > 1).is_empty()


def test_mlflow_run_links_back_to_dagster(graph):
    root, result, *_ = graph
    from mlflow.tracking import MlflowClient

    latest = json.loads((root / "models" / "latest.json").read_text())
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    run = client.get_run(latest["mlflow_run_id"])
    assert run.data.tags["dagster.run_id"] == result.run_id
    assert run.data.tags["dagster.asset_key"] == "trained_model"
    manifest = shards.read_manifest(root / "shards")
    assert run.data.tags["data_digest"] == manifest["digest"]
    for key in ("val_bpb", "test_bpb", "unigram_val_bpb", "unigram_test_bpb", "train_loss"):
        assert key in run.data.metrics, key
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 12
    inputs = run.inputs.dataset_inputs
    assert inputs and inputs[0].dataset.digest == manifest["digest"][:16]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"checkpoints", "data", "samples", "plots"} <= artifacts
    mat = result.asset_materializations_for_node("trained_model")[0]
    assert mat.metadata["mlflow_run_id"].value == run.info.run_id


def test_one_source_for_every_evaluation_figure(graph):
    """MLflow's latest value of every figure == evaluation.json == the Dagster metadata."""
    root, result, *_ = graph
    from mlflow.tracking import MlflowClient

    latest = json.loads((root / "models" / "latest.json").read_text())
    saved = json.loads((Path(latest["run_dir"]) / "evaluation.json").read_text())
    meta = result.asset_materializations_for_node("model_evaluation")[0].metadata
    logged = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}").get_run(latest["mlflow_run_id"]).data.metrics
    for key in ("val_bpb", "test_bpb", "unigram_val_bpb", "unigram_test_bpb", "val_bpn", "test_bpn",
                "unigram_val_bpn", "unigram_test_bpn", "midi_musical_valid_rate", "oa_ref_pitch_range"):
        assert key in saved, key
    for key, value in saved.items():
        assert logged[key] == value and meta[key].value == value, key
    assert "val_bpb_estimate" in logged  # the training-time figure keeps its own name
    assert "musical_metrics" in meta


def test_samples_written(graph):
    root, *_ = graph
    latest = json.loads((root / "models" / "latest.json").read_text())
    sample_dir = Path(latest["run_dir"]) / "samples"
    listing = json.loads((sample_dir / "samples.json").read_text())
    assert {s["format"] for s in listing} == {"abc", "atex", "midi"}
    assert all((sample_dir / Path(s["files"]["text"]).name).exists() for s in listing)


def test_rerun_is_incremental_and_byte_identical(graph, tmp_path, derived):
    root, _, _, defs, instance = graph
    watched = ["ingest/files.parquet", "curated/splits.parquet", "shards/manifest.json"]
    before = {p: sha256_file(root / p) for p in watched}
    data = [a for a in defs.assets if a.key.to_user_string() in DATA_ASSETS]
    again = dg.materialize(data, run_config={"ops": {k: v for k, v in TINY_RUN["ops"].items() if k in DATA_ASSETS}},
                           resources=defs.resources, instance=instance)
    assert again.success
    meta = again.asset_materializations_for_node("raw_scores")[0].metadata
    assert meta["parsed_now"].value == 0
    assert {p: sha256_file(root / p) for p in watched} == before
    shutil.copy(derived.multitrack[2], root / "raw" / "003.mid")
    raw_only = [a for a in data if a.key.to_user_string() == "raw_scores"]
    third = dg.materialize(raw_only, run_config={"ops": {"raw_scores": TINY_RUN["ops"]["raw_scores"]}},
                           resources=defs.resources, instance=instance)
    assert third.asset_materializations_for_node("raw_scores")[0].metadata["parsed_now"].value == 1
