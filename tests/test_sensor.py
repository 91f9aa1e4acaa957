"""The drop-zone sensor: it requests ingestion of exactly the files added, changed or removed
since the lake's files table was written."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from musicml import workflow
from musicml.ingest import IngestConfig
from musicml.ingest.corpus import music21_abc_files
from musicml.lake import Lake
from pipelines import sensors
from pipelines.definitions import defs
from pipelines.resources import LakeResource
from pipelines.sensors import new_scores_sensor

OLD_NS = 1_600_000_000 * 10**9  # files older than the 2 s in which a fresh mtime is not trusted
CFG = IngestConfig(isolate=False)


@functools.cache
def _smallest() -> list[Path]:
    return sorted(music21_abc_files(), key=lambda p: (p.stat().st_size, p.name))


def _tunes(n: int) -> list[Path]:
    """Small real files: one-tune ABC files of music21's corpus."""
    return _smallest()[100:100 + n]


def _put(lake: Lake, src: Path) -> str:
    shutil.copyfile(src, lake.raw_dir / src.name)
    os.utime(lake.raw_dir / src.name, ns=(OLD_NS, OLD_NS))
    return src.name


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lk = Lake(root=tmp_path / "lake", raw_dir=tmp_path / "lake" / "raw")
    lk.raw_dir.mkdir(parents=True)
    return lk


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def evaluate(instance):
    def run(lake: Lake, cursor: str | None = None):
        resources = {"lake": LakeResource(root=str(lake.root), raw_dir=str(lake.raw_dir))}
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
            return new_scores_sensor(context)

    return run


def _ingest(lake: Lake, request: dg.RunRequest) -> None:
    """Run the ingestion the request asks for, with its run config."""
    config = request.run_config["ops"]["raw_scores"]["config"]
    workflow.ingest_step(lake, IngestConfig(paths=tuple(config["paths"]), isolate=False), seed_default_corpus=False)


def test_requests_exactly_the_added_changed_and_removed_files(lake: Lake, evaluate) -> None:
    tunes = _tunes(6)
    for src in tunes[:3]:
        _put(lake, src)
    workflow.ingest_step(lake, CFG, seed_default_corpus=False)
    same = evaluate(lake)
    assert isinstance(same, dg.SkipReason) and same.skip_message == "no change in 3 files"

    added = [_put(lake, src) for src in tunes[3:5]]
    result = evaluate(lake)
    assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.run_config == {"ops": {"raw_scores": {"config": {"paths": sorted(added)}}}}
    assert request.tags == {"musicml/files": "5", "musicml/changes": "2", "musicml/added": "2",
                            "musicml/changed": "0", "musicml/removed": "0"}
    assert request.run_key.startswith("drop-") and result.cursor == request.run_key
    dg.validate_run_config(defs.resolve_job_def("main_job"), request.run_config)
    again = evaluate(lake, result.cursor)  # not ingested yet: not asked twice
    assert isinstance(again, dg.SkipReason) and "since the last request" in again.skip_message

    _ingest(lake, request)
    assert isinstance(evaluate(lake, result.cursor), dg.SkipReason)

    removed = tunes[0].name
    (lake.raw_dir / removed).unlink()
    changed = tunes[1].name
    (lake.raw_dir / changed).write_bytes((lake.raw_dir / changed).read_bytes() + b"\n")
    os.utime(lake.raw_dir / changed, ns=(OLD_NS + 10**9, OLD_NS + 10**9))
    result = evaluate(lake, result.cursor)
    request = result.run_requests[0]
    assert request.run_config["ops"]["raw_scores"]["config"]["paths"] == sorted([removed, changed])
    assert (request.tags["musicml/removed"], request.tags["musicml/changed"]) == ("1", "1")
    _ingest(lake, request)
    settled = evaluate(lake, result.cursor)
    assert isinstance(settled, dg.SkipReason) and settled.skip_message == "no change in 4 files"


def test_odd_entries_never_make_it_raise_and_settle(lake: Lake, evaluate) -> None:
    _put(lake, _tunes(1)[0])
    raw = lake.raw_dir
    os.mkfifo(raw / "pipe.mid")
    (raw / "dangling.abc").symlink_to(raw / "missing.abc")
    (raw / "loop_a.abc").symlink_to(raw / "loop_b.abc")
    (raw / "loop_b.abc").symlink_to(raw / "loop_a.abc")
    (raw / "outside.mid").symlink_to("/dev/zero")
    (raw / "bad\udcff.abc").write_bytes(b"X:1\n")  # a name that is not UTF-8
    first = evaluate(lake)
    assert isinstance(first, dg.SensorResult) and first.run_requests[0].tags["musicml/added"] == "7"
    _ingest(lake, first.run_requests[0])
    os.utime(raw / "bad\udcff.abc", ns=(OLD_NS, OLD_NS))  # as if ingested long after it was written
    workflow.ingest_step(lake, CFG, seed_default_corpus=False)
    settled = evaluate(lake)
    assert isinstance(settled, dg.SkipReason) and settled.skip_message == "no change in 7 files"


def test_many_changes_request_a_whole_ingestion(lake: Lake, evaluate, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sensors, "MAX_REQUEST_PATHS", 1)
    for src in _tunes(2):
        _put(lake, src)
    request = evaluate(lake).run_requests[0]
    assert request.run_config == {"ops": {"raw_scores": {"config": {}}}}  # paths left out: every entry
    assert request.tags["musicml/added"] == "2"


def test_empty_drop_zone_is_skipped(lake: Lake, evaluate) -> None:
    result = evaluate(lake)
    assert isinstance(result, dg.SkipReason) and "empty" in result.skip_message
