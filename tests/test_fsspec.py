"""fsspec URLs: the lake's read/write helpers and MLflow artifacts on fsspec's memory and local
filesystems (the code path an object store takes), and what is refused (a lake root on object
storage: tests/test_lake_sync.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import fsspec
import polars as pl
import pytest
import symusic

from musicml import lake, tracking
from musicml.fsspec_artifacts import FsspecArtifactRepository
from musicml.lake import Lake, sha256_bytes, sha256_file


def test_lake_root_as_file_url(tmp_path, monkeypatch) -> None:
    assert Lake.from_env(tmp_path.as_uri()) == Lake.from_env(tmp_path)
    monkeypatch.setenv("MUSICML_LAKE", (tmp_path / "lk").as_uri())
    monkeypatch.setenv("MUSICML_RAW_DIR", (tmp_path / "drop").as_uri())
    lk = Lake.from_env()
    assert lk.root == (tmp_path / "lk").resolve() and lk.raw_dir == (tmp_path / "drop").resolve()


@pytest.mark.parametrize("url", ["s3://bucket/lake", "memory://lake", "gs://b/l"])
def test_a_drop_zone_on_object_storage_is_refused_with_the_way_out(url, monkeypatch, tmp_path) -> None:
    """A lake root may be a URL (a synced local copy: tests/test_lake_sync.py), a drop zone not."""
    monkeypatch.setenv("MUSICML_LAKE_CACHE", str(tmp_path))
    assert Lake.from_env(url).remote == url
    monkeypatch.setenv("MUSICML_LAKE", "file:///tmp/lake-ok")
    with pytest.raises(ValueError, match="drop zone") as err:
        Lake.from_env(raw_dir=url)
    assert url in str(err.value) and "raw/" in str(err.value) and "MUSICML_ARTIFACTS" in str(err.value)


def _notes(derived) -> pl.DataFrame:
    """A real note table (the first derived tune)."""
    score = symusic.Score(str(derived.midi[0]))
    notes = score.tracks[0].notes
    return pl.DataFrame({"time": [n.time for n in notes], "pitch": [n.pitch for n in notes],
                         "duration": [n.duration for n in notes]})


def test_helpers_round_trip_on_memory(memory_root, derived) -> None:
    midi = derived.midi[0].read_bytes()
    lake.write_bytes(f"{memory_root}/raw/tune.mid", midi)
    assert sha256_bytes(lake.read_bytes(f"{memory_root}/raw/tune.mid")) == sha256_file(derived.midi[0])
    lake.write_json(f"{memory_root}/shards/manifest.json", {"digest": "abc", "rows": 3})
    assert lake.read_json(f"{memory_root}/shards/manifest.json") == {"digest": "abc", "rows": 3}
    notes = _notes(derived)
    lake.write_parquet(f"{memory_root}/parsed/notes.parquet", notes)
    assert pl.from_arrow(lake.read_parquet(f"{memory_root}/parsed/notes.parquet")).equals(notes)
    fs = fsspec.filesystem("memory")
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.find(memory_root.removeprefix("memory:/")))
    assert names == ["manifest.json", "notes.parquet", "tune.mid"]  # no temp file left


def test_helpers_on_file_urls_are_the_local_atomic_path(tmp_path, derived) -> None:
    notes = _notes(derived)
    target = tmp_path / "parsed" / "notes.parquet"
    lake.write_parquet(target.as_uri(), notes)
    assert pl.read_parquet(target).equals(notes)  # a plain local file
    assert pl.from_arrow(lake.read_parquet(target.as_uri())).equals(notes)
    lake.write_json((tmp_path / "m.json").as_uri(), [1, 2])
    assert lake.read_json(tmp_path / "m.json") == [1, 2]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["m.json", "notes.parquet", "parsed"]


def test_reading_a_missing_url_raises(memory_root) -> None:
    with pytest.raises(FileNotFoundError):
        lake.read_json(f"{memory_root}/absent.json")


@pytest.fixture()
def sqlite_uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's ./mlruns, should anything fall back to it
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracking.client(uri)
    return uri


def _tracked_run(uri: str, experiment: str) -> str:
    return tracking.start_or_resume_run(uri, run_id=None, run_name="fsspec", tags={}, experiment=experiment)


def test_mlflow_artifacts_on_memory(memory_root, sqlite_uri, tmp_path, monkeypatch, derived) -> None:
    monkeypatch.setenv("MUSICML_ARTIFACTS", f"{memory_root}/mlartifacts")
    run_id = _tracked_run(sqlite_uri, "fsspec-memory")
    c = tracking.client(sqlite_uri)
    assert c.get_run(run_id).info.artifact_uri.startswith(f"{memory_root}/mlartifacts/")
    samples = tmp_path / "samples"
    (samples / "midi").mkdir(parents=True)
    (samples / "midi" / "tune.mid").write_bytes(derived.midi[0].read_bytes())
    (samples / "tune.txt").write_text("X:1\nK:G\nGABc|\n")
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"digest": "abc"}')
    tracking.log_artifacts(sqlite_uri, run_id, [manifest])
    tracking.log_artifacts(sqlite_uri, run_id, [samples], "samples")
    listed = {f.path: f.is_dir for f in c.list_artifacts(run_id)}
    assert listed == {"manifest.json": False, "samples": True}
    assert {f.path for f in c.list_artifacts(run_id, "samples")} == {"samples/midi", "samples/tune.txt"}
    out = Path(c.download_artifacts(run_id, "samples", str(tmp_path / "down")))
    assert sha256_file(out / "midi" / "tune.mid") == sha256_file(derived.midi[0])
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlartifacts").exists()


def test_mlflow_artifacts_on_a_file_url(sqlite_uri, tmp_path, monkeypatch, derived) -> None:
    store = tmp_path / "object-store"
    monkeypatch.setenv("MUSICML_ARTIFACTS", store.as_uri())
    run_id = _tracked_run(sqlite_uri, "fsspec-file")
    tracking.log_artifacts(sqlite_uri, run_id, [derived.midi[0]], "samples")
    assert [p.name for p in store.rglob("*.mid")] == [derived.midi[0].name]


def test_artifact_paths_cannot_leave_the_root(memory_root) -> None:
    repo = FsspecArtifactRepository(f"{memory_root}/runs/1/artifacts")
    with pytest.raises(ValueError, match="escapes"):
        repo.list_artifacts("../../other")
    assert repo.list_artifacts() == []  # nothing logged yet
