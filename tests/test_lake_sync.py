"""A lake on object storage (fsspec's memory filesystem, the code path s3:// and gs:// take):
local copies synced both ways, and Dagster materializations whose lake is only the URL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import fsspec
import pytest

from musicml import lake_sync
from musicml.ingest.corpus import music21_abc_files
from musicml.lake import Lake, write_json
from pipelines.assets.curation import parsed_scores, raw_scores
from pipelines.resources import LakeResource


@pytest.fixture()
def remote(memory_root: str) -> str:
    """A fresh lake URL on fsspec's memory filesystem (``memory_root``: tests/conftest.py)."""
    return f"{memory_root}/lake"


def _objects(remote: str) -> dict[str, bytes]:
    fs = fsspec.filesystem("memory")
    base = remote.removeprefix("memory://")
    return {p.removeprefix(f"/{base}/"): fs.cat_file(p) for p in fs.find(f"/{base}")}


def test_copies_sync_both_ways(tmp_path: Path, remote: str) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_json(a / "models" / "latest.json", {"run": 1})
    (a / "ingest").mkdir()
    (a / "ingest" / "files.parquet").write_bytes(b"PAR1 rows")
    (a / "ingest" / "ingest.lock").write_bytes(b"")  # a lock: this machine's only
    (a / "ingest" / ".files.parquet.123-abc.tmp.parquet").write_bytes(b"half")  # an atomic write under way
    (a / "catalog.duckdb").write_bytes(b"views naming local paths")
    assert sorted(lake_sync.push(remote, a).copied) == ["ingest/files.parquet", "models/latest.json"]
    assert _objects(remote) == {"ingest/files.parquet": b"PAR1 rows", "models/latest.json": b'{\n  "run": 1\n}\n'}
    assert not lake_sync.push(remote, a)  # nothing changed: nothing sent

    assert sorted(lake_sync.pull(remote, b).copied) == ["ingest/files.parquet", "models/latest.json"]
    assert (b / "ingest" / "files.parquet").read_bytes() == b"PAR1 rows"
    assert not lake_sync.pull(remote, b)

    (a / "ingest" / "files.parquet").write_bytes(b"PAR1 more rows")
    (a / "models" / "latest.json").unlink()
    pushed = lake_sync.push(remote, a)
    assert pushed.copied == ["ingest/files.parquet"] and pushed.deleted == ["models/latest.json"]
    pulled = lake_sync.pull(remote, b)
    assert pulled.copied == ["ingest/files.parquet"] and pulled.deleted == ["models/latest.json"]
    assert (b / "ingest" / "files.parquet").read_bytes() == b"PAR1 more rows"
    assert not (b / "models" / "latest.json").exists()


def test_a_local_change_waits_for_push_and_the_remote_wins_a_pull(tmp_path: Path, remote: str) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_json(a / "x.json", {"v": 1})
    lake_sync.push(remote, a)
    lake_sync.pull(remote, b)
    write_json(b / "x.json", {"v": "b"})  # changed here, not there: a pull keeps it
    assert not lake_sync.pull(remote, b)
    assert "b" in (b / "x.json").read_text()
    write_json(a / "x.json", {"v": "a"})  # now changed there too: the remote wins
    lake_sync.push(remote, a)
    assert lake_sync.pull(remote, b).copied == ["x.json"]
    assert '"a"' in (b / "x.json").read_text()


def test_a_local_deletion_is_not_undone_by_a_pull(tmp_path: Path, remote: str) -> None:
    """As a step that replaced a shard generation, then another step's pull before the push."""
    a = tmp_path / "a"
    write_json(a / "shards" / "old.json", {})
    lake_sync.push(remote, a)
    (a / "shards" / "old.json").unlink()
    assert not lake_sync.pull(remote, a)
    assert not (a / "shards" / "old.json").exists()
    assert lake_sync.push(remote, a).deleted == ["shards/old.json"] and _objects(remote) == {}


def test_a_push_keeps_an_object_rewritten_there_since(tmp_path: Path, remote: str) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_json(a / "x.json", {"v": 1})
    lake_sync.push(remote, a)
    lake_sync.pull(remote, b)
    write_json(b / "x.json", {"v": 2})
    lake_sync.push(remote, b)  # another machine rewrote it
    (a / "x.json").unlink()
    assert lake_sync.push(remote, a).deleted == []
    assert b'"v": 2' in _objects(remote)["x.json"]


def test_an_object_named_to_leave_the_copy_is_never_pulled(tmp_path: Path, remote: str) -> None:
    fs = fsspec.filesystem("memory")
    base = remote.removeprefix("memory://")
    fs.pipe_file(f"/{base}/ok.json", b"{}")
    fs.store[f"/{base}/../escaped.json"] = fs.store[f"/{base}/ok.json"]  # a key S3 would allow
    assert lake_sync.pull(remote, tmp_path / "copy").copied == ["ok.json"]
    assert not (tmp_path / "escaped.json").exists()
    assert lake_sync.synced("raw/a.mid") and not lake_sync.synced("raw/../../x") and not lake_sync.synced("/etc/x")


def test_a_pull_by_prefix_brings_only_those(tmp_path: Path, remote: str) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_json(a / "raw" / "x.json", {})
    write_json(a / "shards" / "manifest.json", {})
    write_json(a / "ingest" / "files.parquet", {})
    lake_sync.push(remote, a)
    assert sorted(lake_sync.pull(remote, b, ("raw", "ingest/files.parquet")).copied) == [
        "ingest/files.parquet", "raw/x.json"]
    assert lake_sync.pull(remote, b).copied == ["shards/manifest.json"]


def test_a_lake_on_object_storage_is_worked_on_in_a_local_copy(tmp_path: Path, remote: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICML_LAKE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MUSICML_RAW_DIR", raising=False)
    lk = Lake.from_env(remote)
    assert lk.remote == remote and lk.root.parent == (tmp_path / "cache").resolve()
    assert lk.raw_dir == lk.root / "raw" and Lake.from_env(remote + "/").root == lk.root
    assert Lake.from_env(remote.replace("lake", "other")).root != lk.root
    assert "/" not in lk.root.name and ".." not in lk.root.name
    with pytest.raises(ValueError, match="drop zone"):
        Lake.from_env(tmp_path / "local", raw_dir=remote + "/raw")
    local = Lake.from_env(tmp_path / "local")
    assert local.remote is None
    local.pull()
    local.push()  # no-ops for a local lake
    assert not (tmp_path / "local" / ".sync").exists()


def _materialize(remote: str) -> dg.ExecuteInProcessResult:
    config = {"ops": {"raw_scores": {"config": {"seed_default_corpus": False, "isolate": False}}}}
    with dg.instance_for_test() as instance:
        return dg.materialize([raw_scores, parsed_scores], run_config=config,
                              resources={"lake": LakeResource(root=remote)}, instance=instance)


def test_materializations_on_a_lake_url_on_two_machines(tmp_path: Path, remote: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Scores uploaded to the bucket's raw/ are ingested by one machine; another, with an empty
    local copy, finds everything there: nothing is parsed again."""
    monkeypatch.delenv("MUSICML_RAW_DIR", raising=False)
    fs = fsspec.filesystem("memory")
    base = remote.removeprefix("memory://")
    tunes = music21_abc_files()[:3]
    for f in tunes:
        fs.pipe_file(f"/{base}/raw/{f.name}", f.read_bytes())
    monkeypatch.setenv("MUSICML_LAKE_CACHE", str(tmp_path / "machine_a"))
    first = _materialize(remote)
    ingested = first.asset_materializations_for_node("raw_scores")[0].metadata
    assert ingested["parsed_now"].value == 3
    objects = _objects(remote)
    assert {"ingest/files.parquet", "parsed/pieces/manifest.json", "parsed/notes/manifest.json"} <= set(objects)
    assert any(k.startswith("ingest/cache/") for k in objects)
    assert not any(k.endswith(".lock") or "/.sync/" in f"/{k}" for k in objects)

    shutil.rmtree(tmp_path / "machine_a")  # the other machine starts empty
    monkeypatch.setenv("MUSICML_LAKE_CACHE", str(tmp_path / "machine_b"))
    fs.pipe_file(f"/{base}/raw/new.abc", music21_abc_files()[3].read_bytes())
    second = _materialize(remote)
    meta = second.asset_materializations_for_node("raw_scores")[0].metadata
    assert meta["parsed_now"].value == 1  # the three before were read from the lake's parse cache
    manifest = Lake.from_env(remote).path("parsed", "pieces", "manifest.json")
    assert manifest.is_file() and _objects(remote)["parsed/pieces/manifest.json"] == manifest.read_bytes()
    parts = [f"parsed/pieces/{p}" for p in json.loads(manifest.read_text())["parts"]]
    assert len(parts) == 2 and set(parts) <= set(_objects(remote))  # the first run's batch and the new file's


def test_the_drop_zone_sensor_sees_scores_uploaded_to_the_bucket(tmp_path: Path, remote: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """It pulls the drop zone and the files table only (not the lake's caches and models)."""
    from pipelines.sensors import new_scores_sensor

    monkeypatch.delenv("MUSICML_RAW_DIR", raising=False)
    monkeypatch.setenv("MUSICML_LAKE_CACHE", str(tmp_path / "daemon"))
    fs = fsspec.filesystem("memory")
    base = remote.removeprefix("memory://")
    fs.pipe_file(f"/{base}/raw/a.abc", music21_abc_files()[0].read_bytes())
    fs.pipe_file(f"/{base}/shards/manifest.json", b"{}")
    with dg.instance_for_test() as instance, dg.build_sensor_context(
            instance=instance, resources={"lake": LakeResource(root=remote)}) as context:
        result = new_scores_sensor(context)
    (request,) = result.run_requests
    assert request.run_config["ops"]["raw_scores"]["config"]["paths"] == ["a.abc"]
    copy = Lake.from_env(remote)
    assert (copy.raw_dir / "a.abc").is_file() and not copy.path("shards", "manifest.json").exists()


def test_the_whole_graph_on_a_lake_url_then_its_champion_sampled_on_a_fresh_machine(
        tmp_path: Path, remote: str, derived, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Ingestion to registration with ``MUSICML_LAKE=memory://...`` (MLflow's SQLite store and
    artifacts inside the lake), then, on a machine whose local copy is empty (the same image:
    the same cache path), ``python -m musicml.generate --model models:/<name>@champion``."""
    from test_pipeline import TINY_RUN, build_drop_zone

    from musicml.generate.__main__ import main
    from pipelines.definitions import defs, main_assets

    upload = tmp_path / "upload"
    upload.mkdir()
    build_drop_zone(upload, derived)
    fs = fsspec.filesystem("memory")
    base = remote.removeprefix("memory://")
    for f in upload.iterdir():
        fs.pipe_file(f"/{base}/raw/{f.name}", f.read_bytes())
    cache = tmp_path / "cache"
    monkeypatch.setenv("MUSICML_LAKE", remote)
    monkeypatch.setenv("MUSICML_LAKE_CACHE", str(cache))
    for var in ("MUSICML_RAW_DIR", "MLFLOW_TRACKING_URI", "MUSICML_ARTIFACTS"):
        monkeypatch.delenv(var, raising=False)
    with dg.instance_for_test() as instance:
        result = dg.materialize([*main_assets(defs), *defs.asset_checks], run_config=TINY_RUN,
                                resources=defs.resources, instance=instance)
    assert result.success
    name = result.asset_materializations_for_node("registered_model")[0].metadata["registered_model"].value
    objects = set(_objects(remote))
    assert {"mlflow.db", "models/latest.json", "shards/manifest.json", "tokenizer/tokenizer.json"} <= objects
    assert any(k.startswith("mlartifacts/") and k.endswith(".pt") for k in objects)
    assert "catalog.duckdb" not in objects

    shutil.rmtree(cache)
    capsys.readouterr()
    assert main(["--model", f"models:/{name}@champion", "--steps", "16", "--out", str(tmp_path / "tune.mid")]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["family"] == "gpt" and line["tokens"] >= 1 and Path(line["text"]).is_file()
    assert not Lake.from_env().path("ingest").exists()  # sampling pulled what it reads, not the caches
