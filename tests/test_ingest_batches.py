"""The batched parse cache: files parsed and cached in batches read back exactly as one by one."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from musicml.ingest import IngestConfig, cache_paths, ingest, load_parsed
from musicml.ingest.corpus import music21_abc_files
from musicml.lake import Lake


def _small_abc() -> list[Path]:
    """music21's smallest ABC files (one short tune each): quick to parse."""
    return sorted(music21_abc_files(), key=lambda f: (f.stat().st_size, f.name))[:8]


def _drop(root: Path, derived, n_abc: int = 6) -> Lake:
    lake = Lake.from_env(root / "lake")
    lake.raw_dir.mkdir(parents=True)
    for p in _small_abc()[:n_abc]:
        shutil.copyfile(p, lake.raw_dir / p.name)
    for i, p in enumerate(derived.midi[:3]):
        shutil.copyfile(p, lake.raw_dir / f"m{i}.mid")
    return lake


def _frames(lake: Lake, config: IngestConfig) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    result = ingest(lake, config)
    assert result.counts().get("ingested", 0) == len(result.files), result.counts()
    pieces, notes = load_parsed(lake, result.files)
    return result.files, pieces, notes


def test_batched_workers_equal_in_process(tmp_path: Path, derived) -> None:
    # one worker, 9 files: batches of 3 (each worker gets a quarter of its share at a time)
    _, p1, n1 = _frames(_drop(tmp_path / "a", derived), IngestConfig(workers=1, parse_timeout_s=60))
    _, p2, n2 = _frames(_drop(tmp_path / "b", derived), IngestConfig(isolate=False))
    assert len(p1) == 9 and len(n1) > 1000
    assert p1.equals(p2)
    assert n1.equals(n2)
    batches = list((tmp_path / "a" / "lake").rglob("*.pieces.parquet"))
    assert max(pl.read_parquet(b)["content_hash"].n_unique() for b in batches) > 1  # files were batched


def test_a_file_cached_in_two_batches_is_read_once(tmp_path: Path, derived) -> None:
    lake = _drop(tmp_path, derived, n_abc=2)
    files, pieces, notes = _frames(lake, IngestConfig(isolate=False))
    first = files["content_hash"][0]
    shutil.copyfile(_small_abc()[7], lake.raw_dir / "new.abc")
    files2, pieces2, notes2 = _frames(lake, IngestConfig(isolate=False))  # no previous: a second batch
    assert len(list(lake.root.rglob("*.pieces.parquet"))) == 2
    assert pieces2["piece_id"].is_unique().all()
    old = pieces2.filter(pl.col("piece_id").is_in(pieces["piece_id"].implode()))
    assert old.equals(pieces)
    assert notes2.filter(pl.col("piece_id").is_in(pieces["piece_id"].implode())).equals(notes)
    assert cache_paths(lake, first, files["format"][0])[1].exists()


def test_missing_cache_is_a_clear_error(tmp_path: Path, derived) -> None:
    lake = _drop(tmp_path, derived, n_abc=1)
    files, _, _ = _frames(lake, IngestConfig(isolate=False))
    with pytest.raises(FileNotFoundError, match="no parse cache for 0" + "0" * 63 + ".midi"):
        cache_paths(lake, "0" * 64, "midi")
    for p in [*lake.root.rglob("*.arrow"), *lake.root.rglob("*.notes.parquet")]:
        p.unlink()
    with pytest.raises(FileNotFoundError, match="no parse cache for 4 ingested file"):
        load_parsed(lake, files)


def test_parsed_tables_are_what_load_parsed_gives(tmp_path: Path, derived) -> None:
    """``parse_step`` publishes the cache's notes parts: polars and DuckDB read back exactly
    :func:`load_parsed`'s tables, also where a cache batch holds a piece no longer ingested (its
    file removed: that batch's part is written anew, of the notes that belong)."""
    import duckdb
    import pyarrow.parquet as pq

    from musicml import catalog, workflow
    from musicml.ingest import parsed
    from musicml.ingest.note_table import NOTE_SCHEMA
    from musicml.lake import write_parquet

    lake = _drop(tmp_path, derived)
    first = ingest(lake, IngestConfig(isolate=False))
    write_parquet(workflow.ingest_lib.files_table_path(lake), first.files)
    legacy = lake.path("parsed", "notes.parquet")  # an older version's one-file table
    write_parquet(legacy, pl.DataFrame(schema=NOTE_SCHEMA))
    _, whole = workflow.parse_step(lake)
    assert not legacy.exists()
    (part,) = whole.paths
    assert whole.linked == 1 and whole.written == 0
    (cached,) = lake.root.rglob("*.notes.parquet")
    assert part.stat().st_ino == cached.stat().st_ino  # the cache's file itself, linked
    (pieces_part,) = parsed.pieces_paths(lake)  # and so are the pieces, texts and all
    assert pieces_part.stat().st_ino == next(lake.root.rglob("*.pieces.parquet")).stat().st_ino
    assert pieces_part.name == part.name
    (lake.raw_dir / "m1.mid").unlink()
    files = ingest(lake, IngestConfig(isolate=False), first.files).files
    assert len(list(lake.root.rglob("*.pieces.parquet"))) == 1  # the removed file's piece is still cached
    write_parquet(workflow.ingest_lib.files_table_path(lake), files)
    pieces, notes = load_parsed(lake, files)
    assert pieces["path"].str.contains("m1.mid").sum() == 0 and len(pieces) == 8
    _, published = workflow.parse_step(lake)
    assert published.linked == 0 and published.written == 1 and published.rows == len(notes)
    assert part.exists()  # the previous table's part stays (a reader may be reading it)
    got = parsed.read_notes(lake).sort("piece_id", maintain_order=True)
    assert got.schema == pl.Schema(NOTE_SCHEMA) and got.equals(notes)
    assert parsed.read_pieces(lake).equals(pieces)
    ids = pq.read_table(published.paths[0])["piece_id"].combine_chunks()
    assert ids.type == "string" or str(ids.type) == "string"  # read back as the string column it is
    catalog.refresh(lake)
    sql = "SELECT count(*), sum(onset), sum(pitch), count(DISTINCT piece_id), min(piece_id) FROM notes"
    assert catalog.query(lake, sql) == [
        (len(notes), notes["onset"].sum(), notes["pitch"].sum(), notes["piece_id"].n_unique(), notes["piece_id"].min())]
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{published.paths[0]}')").fetchall() == [(len(notes),)]
    # the same files again: the same table, byte for byte, and the older generation removed
    before = {p.name: p.read_bytes() for p in published.paths}
    _, again = workflow.parse_step(lake)
    assert {p.name: p.read_bytes() for p in again.paths} == before
    workflow.parse_step(lake)
    assert not part.exists()
    # the catalog, refreshed by each publication, views the parts that are there
    assert catalog.query(lake, "SELECT count(*) FROM notes") == [(len(notes),)]


def test_a_part_is_copied_where_it_cannot_be_linked(tmp_path: Path, derived, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from musicml import workflow
    from musicml.ingest import parsed
    from musicml.lake import write_parquet

    lake = _drop(tmp_path, derived, n_abc=2)
    files = ingest(lake, IngestConfig(isolate=False)).files
    write_parquet(workflow.ingest_lib.files_table_path(lake), files)

    def no_links(*_args, **_kw):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    _, published = workflow.parse_step(lake)
    (part,) = published.paths
    (cached,) = lake.root.rglob("*.notes.parquet")
    assert part.stat().st_ino != cached.stat().st_ino and part.read_bytes() == cached.read_bytes()
    assert parsed.read_notes(lake).sort("piece_id", maintain_order=True).equals(load_parsed(lake, files)[1])
    assert sorted(p.name for p in part.parent.iterdir()) == sorted([part.name, parsed.MANIFEST])  # no temp left


def test_parsed_tables_of_nothing_ingested_are_empty(tmp_path: Path) -> None:
    from musicml import catalog, workflow
    from musicml.ingest import parsed
    from musicml.ingest.note_table import NOTE_SCHEMA
    from musicml.lake import write_parquet

    lake = Lake.from_env(tmp_path / "lake")
    lake.raw_dir.mkdir(parents=True)
    (lake.raw_dir / "bad.mid").write_bytes(b"MThd not a midi")
    files = ingest(lake, IngestConfig(isolate=False)).files
    assert files["status"].to_list() == ["rejected"]
    write_parquet(workflow.ingest_lib.files_table_path(lake), files)
    pieces, notes = workflow.parse_step(lake)
    assert len(pieces) == 0 and notes.rows == 0 and len(notes.paths) == 1
    got = parsed.read_notes(lake)
    assert got.schema == pl.Schema(NOTE_SCHEMA) and not len(got)
    catalog.refresh(lake)
    assert catalog.query(lake, "SELECT count(*) FROM notes") == [(0,)]


def test_pieces_without_notes_give_an_empty_note_table(tmp_path: Path) -> None:
    """A cache batch whose pieces hold no notes (an alphaTex of rests)."""
    from musicml import workflow
    from musicml.ingest import parsed
    from musicml.ingest.note_table import NOTE_SCHEMA
    from musicml.lake import write_parquet

    lake = Lake.from_env(tmp_path / "lake")
    lake.raw_dir.mkdir(parents=True)
    (lake.raw_dir / "rests.atex").write_text('\\title "Rests"\n.\nr.4 r.4 r.4 r.4 |\n')
    files = ingest(lake, IngestConfig(isolate=False)).files
    assert files["status"].to_list() == ["ingested"]
    write_parquet(workflow.ingest_lib.files_table_path(lake), files)
    pieces, _ = workflow.parse_step(lake)
    assert pieces["n_notes"].to_list() == [0]
    got = parsed.read_notes(lake)
    assert got.schema == pl.Schema(NOTE_SCHEMA) and not len(got)


def test_reading_the_note_table_before_it_is_written_is_a_clear_error(tmp_path: Path) -> None:
    from musicml.ingest import parsed

    with pytest.raises(FileNotFoundError, match="materialize parsed_scores"):
        parsed.read_notes(Lake.from_env(tmp_path / "lake"))


@pytest.mark.parametrize("damage", ["notes_missing", "cache_cleared", "unindexed_pieces_truncated", "index_damaged",
                                    "pieces_truncated",
                                    "notes_truncated", "notes_foreign"])
def test_a_damaged_cache_batch_is_parsed_again(tmp_path: Path, derived, damage: str) -> None:
    """A cache batch lost or damaged never blocks the lake: a full ingestion parses its files
    again (what it can see: a pieces file unreadable, a notes file gone, the folder cleared);
    what only reading the notes shows is removed by ``load_parsed``, named in its error, and
    parsed again by the next ingestion. The tables come back as they were."""
    lake = _drop(tmp_path, derived, n_abc=2)
    first = ingest(lake, IngestConfig(isolate=False))
    pieces, notes = load_parsed(lake, first.files)
    (batch,) = lake.root.rglob("*.pieces.parquet")
    other = batch.with_name(batch.name.replace(".pieces.parquet", ".notes.parquet"))
    if damage == "pieces_truncated":
        batch.write_bytes(batch.read_bytes()[:100])
    elif damage == "index_damaged":
        (batch.parent / "index.arrow").write_bytes(b"not an index")
    elif damage == "unindexed_pieces_truncated":  # as a batch never read yet would be
        (batch.parent / "index.arrow").unlink()
        batch.write_bytes(batch.read_bytes()[:100])
    elif damage == "notes_missing":
        other.unlink()
    elif damage == "cache_cleared":
        shutil.rmtree(batch.parent)
    elif damage == "notes_truncated":
        other.write_bytes(other.read_bytes()[:100])
    else:  # a valid parquet file, but the notes of other pieces than the batch holds
        import pyarrow as pa
        import pyarrow.parquet as pq

        from musicml.ingest.files import NOTES_PART_PARQUET

        table = pq.read_table(other)
        bad = table.set_column(0, "piece_id", pa.array(["~" + v for v in table["piece_id"].to_pylist()]))
        pq.write_table(bad, other, **NOTES_PART_PARQUET)
    if damage == "index_damaged":  # rebuilt from the batches: nothing to parse again
        assert ingest(lake, IngestConfig(isolate=False), first.files).parsed == 0
        assert load_parsed(lake, first.files)[1].equals(notes)
        return
    if damage in ("pieces_truncated", "notes_truncated", "notes_foreign"):
        assert ingest(lake, IngestConfig(isolate=False), first.files).parsed == 0  # indexed before the damage
        which = "pieces" if damage == "pieces_truncated" else "notes"
        with pytest.warns(UserWarning, match=f"removed: its {which} file is unreadable"), \
                pytest.raises(FileNotFoundError, match=f"parse cache batch {batch.name} removed: its {which} file .* "
                                                       "a full ingestion"):
            load_parsed(lake, first.files)
        assert not batch.exists() and not other.exists()
    with pytest.warns(UserWarning) if damage in ("notes_missing", "unindexed_pieces_truncated") else _no_warning():
        again = ingest(lake, IngestConfig(isolate=False), first.files)
    assert again.parsed == len(first.files) and again.files.equals(first.files)
    p2, n2 = load_parsed(lake, again.files)
    assert p2.equals(pieces) and n2.equals(notes)


def _no_warning():
    import contextlib
    import warnings

    @contextlib.contextmanager
    def guard():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            yield
    return guard()


def test_a_full_ingestion_removes_other_parser_versions_caches(tmp_path: Path, derived) -> None:
    from musicml.ingest import PARSER_VERSION

    lake = _drop(tmp_path, derived, n_abc=2)
    cache = lake.root / "ingest" / "cache"
    old = cache / "v1"
    old.mkdir(parents=True)
    (old / "x.pieces.parquet").write_bytes(b"an older version's batch")
    (cache / "v0").symlink_to(old)  # a link is left as it is (never followed)
    files, pieces, _ = _frames(lake, IngestConfig(isolate=False))
    assert not old.exists() and (cache / "v0").is_symlink()
    assert (cache / f"v{PARSER_VERSION}").is_dir()
    assert load_parsed(lake, files)[0].equals(pieces)
    # a requested ingestion (the sensor's few paths) leaves the folder as it is
    old.mkdir()
    ingest(lake, IngestConfig(isolate=False, paths=(files["path"][0],)), previous=files)
    assert old.exists()


def test_readers_always_see_a_whole_note_table_while_it_is_published(tmp_path: Path, derived) -> None:
    """Publications at once (two threads, each its own lock handle) and a reader between them: the
    reader always finds every note (parts are written whole, the manifest is replaced atomically,
    the previous manifest's parts are kept), and the last manifest lists only parts that exist."""
    import threading

    from musicml import workflow
    from musicml.ingest import parsed
    from musicml.lake import write_parquet

    lake = _drop(tmp_path, derived)
    first = ingest(lake, IngestConfig(isolate=False))
    write_parquet(workflow.ingest_lib.files_table_path(lake), first.files)
    _, published = workflow.parse_step(lake)
    want = published.rows
    (lake.raw_dir / "m1.mid").unlink()  # every other publication writes a part anew, the others link
    fewer = ingest(lake, IngestConfig(isolate=False), first.files).files
    tables = [first.files, fewer]
    errors: list[BaseException] = []
    seen: set[int] = set()
    stop = threading.Event()

    def publish(k: int) -> None:
        try:
            for i in range(6):
                parsed.publish(lake, tables[(i + k) % 2])
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def read() -> None:
        while not stop.is_set():
            try:
                seen.add(len(parsed.read_notes(lake, ["piece_id"])))
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
                return

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=publish, args=(k,)) for k in (0, 1)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    reader.join()
    assert not errors, errors
    assert want in seen and seen <= {want, len(load_parsed(lake, fewer)[1])}
    assert all(p.exists() for p in parsed.notes_paths(lake))


def test_a_batch_parsed_again_is_published_anew(tmp_path: Path, derived) -> None:
    """A cache notes file damaged in place damages its published link too (one file): the batch
    is removed, parsed again into a new file, and the next publication links that one."""
    from musicml import workflow
    from musicml.ingest import parsed
    from musicml.lake import write_parquet

    lake = _drop(tmp_path, derived, n_abc=2)
    first = ingest(lake, IngestConfig(isolate=False))
    write_parquet(workflow.ingest_lib.files_table_path(lake), first.files)
    _, published = workflow.parse_step(lake)
    want = parsed.read_notes(lake)
    (cached,) = lake.root.rglob("*.notes.parquet")
    with open(cached, "r+b") as f:  # in place: the published part is the same file
        f.truncate(100)
    with pytest.warns(UserWarning, match="removed"), pytest.raises(FileNotFoundError, match="a full ingestion"):
        workflow.parse_step(lake)
    again = ingest(lake, IngestConfig(isolate=False), first.files)
    assert again.parsed == len(first.files)
    _, republished = workflow.parse_step(lake)
    assert [p.name for p in republished.paths] == [p.name for p in published.paths]
    assert parsed.read_notes(lake).equals(want)


def test_a_manifest_naming_a_path_outside_the_lake_is_refused(tmp_path: Path) -> None:
    from musicml.ingest import parsed
    from musicml.lake import PathEscapeError, write_json

    lake = Lake.from_env(tmp_path / "lake")
    write_json(lake.path("parsed", "notes", parsed.MANIFEST), {"parts": ["../../../secret.parquet"]})
    with pytest.raises(PathEscapeError, match="escapes the lake"):
        parsed.notes_paths(lake)


def test_parts_of_int64_and_int32_times_read_as_one_note_table(tmp_path: Path) -> None:
    """Parts store times as int32 (``NOTE_PART_SCHEMA``) and every column as REQUIRED (no
    definition levels); a part an older version wrote in int64, its columns nullable, still reads
    beside it, in polars and in DuckDB: the table comes back in ``NOTE_SCHEMA``, every row, values
    as written."""
    import duckdb
    import pyarrow.parquet as pq

    from musicml.ingest import parsed
    from musicml.ingest.files import write_notes_part
    from musicml.ingest.note_table import NOTE_PART_SCHEMA, NOTE_SCHEMA
    from musicml.lake import write_json, write_parquet

    lake = Lake.from_env(tmp_path / "lake")
    folder = lake.path("parsed", "notes")
    rows = {"piece_id": ["a", "a", "b"], "track": [0, 1, 0], "program": [0, 0, 33], "is_drum": [False, True, False],
            "onset": [0, 24, 2**31 - 1], "duration": [6, 1, 2**31 - 1], "pitch": [60, 36, 40], "velocity": [90, 100, 1]}
    new = pl.DataFrame(rows, schema=NOTE_SCHEMA)
    write_notes_part(folder / "new.parquet", new)
    assert pl.read_parquet(folder / "new.parquet").schema == pl.Schema(NOTE_PART_SCHEMA)
    write_parquet(folder / "old.parquet", new.with_columns(piece_id=pl.lit("z")))  # int64 times, as version 6 wrote
    write_json(folder / parsed.MANIFEST, {"parts": ["new.parquet", "old.parquet"]})
    assert not any(f.nullable for f in pq.read_schema(folder / "new.parquet"))
    assert all(f.nullable for f in pq.read_schema(folder / "old.parquet"))
    got = parsed.read_notes(lake)
    assert got.schema == pl.Schema(NOTE_SCHEMA) and len(got) == 6
    assert got["onset"].to_list() == rows["onset"] * 2 and got["duration"].max() == 2**31 - 1
    paths = [str(p) for p in parsed.notes_paths(lake)]
    assert duckdb.sql(f"select sum(onset), count(*) from read_parquet({paths})").fetchall() == [(2 * sum(rows["onset"]), 6)]


def test_small_parts_are_merged_and_a_merge_is_kept_while_its_files_are(tmp_path: Path, derived) -> None:
    """Ten ingestions of one file each leave ten small batches: published as one merged part (more
    than MAX_SMALL_PARTS small ones). A file removed takes its merge apart (the rest merged again);
    a file added later stays a part of its own beside the kept merge. The table is always the
    note table of the files there."""
    from musicml import workflow
    from musicml.ingest import parsed
    from musicml.lake import write_parquet

    lake = Lake.from_env(tmp_path / "lake")
    lake.raw_dir.mkdir(parents=True)
    tunes = _small_abc() + sorted(music21_abc_files(), key=lambda f: (f.stat().st_size, f.name))[8:11]
    files = None
    for p in tunes[:10]:  # one ingestion, so one batch, per file
        shutil.copyfile(p, lake.raw_dir / p.name)
        files = ingest(lake, IngestConfig(isolate=False), files).files
    assert len(list(lake.root.rglob("*.pieces.parquet"))) == 10

    def publish(files: pl.DataFrame) -> parsed.PublishedTable:
        write_parquet(workflow.ingest_lib.files_table_path(lake), files)
        _, published = workflow.parse_step(lake)
        got = parsed.read_notes(lake).sort("piece_id", maintain_order=True)
        pieces, notes = load_parsed(lake, files)
        assert got.equals(notes) and published.rows == len(got)
        assert parsed.read_pieces(lake).equals(pieces)  # the pieces table: merged alike, part for part
        assert [p.name for p in parsed.pieces_paths(lake)] == [p.name for p in published.paths]
        return published

    first = publish(files)
    assert len(first.paths) == 1 and first.merged == 1 and first.paths[0].name.startswith("m-")
    again = publish(files)  # nothing changed: the merge is kept, nothing written
    assert again.paths == first.paths and again.written == 0 and again.linked == 0
    (lake.raw_dir / tunes[0].name).unlink()
    files = ingest(lake, IngestConfig(isolate=False), files).files
    fewer = publish(files)  # 9 small parts left: merged anew
    assert len(fewer.paths) == 1 and fewer.paths != first.paths and fewer.written == 1
    shutil.copyfile(tunes[10], lake.raw_dir / tunes[10].name)
    files = ingest(lake, IngestConfig(isolate=False), files).files
    more = publish(files)  # the merge of 9 kept, the new batch its own part (2 small parts)
    assert fewer.paths[0] in more.paths and len(more.paths) == 2 and more.linked == 1 and more.written == 0
    manifest = parsed.notes_paths(lake)
    assert all(p.exists() for p in manifest)


def test_a_moved_file_keeps_its_notes_part_and_gets_its_path_in_a_new_pieces_part(tmp_path: Path, derived) -> None:
    """A file renamed in the drop zone is not parsed again (its bytes are cached), and the lake's
    pieces show its path as it is now: the batch's pieces part is written anew with that path
    (the cache's file keeps the old one), its notes part is still the cache's file, linked. The
    pieces, in polars and DuckDB, are :func:`load_parsed`'s."""
    from musicml import catalog, workflow
    from musicml.ingest import parsed
    from musicml.lake import write_parquet

    lake = _drop(tmp_path, derived)
    first = ingest(lake, IngestConfig(isolate=False))
    write_parquet(workflow.ingest_lib.files_table_path(lake), first.files)
    workflow.parse_step(lake)
    catalog.refresh(lake)
    (lake.raw_dir / "m1.mid").rename(lake.raw_dir / "renamed.mid")
    again = ingest(lake, IngestConfig(isolate=False), first.files)
    assert again.parsed == 0  # read (its stat is new) but not parsed: the cache has its bytes
    write_parquet(workflow.ingest_lib.files_table_path(lake), again.files)
    pieces, published = workflow.parse_step(lake)
    (notes_part,) = published.paths
    (pieces_part,) = parsed.pieces_paths(lake)
    assert pieces_part.name == notes_part.name and "-" in pieces_part.stem  # named by what it holds now
    assert notes_part.stat().st_ino == next(lake.root.rglob("*.notes.parquet")).stat().st_ino
    assert pieces_part.stat().st_ino != next(lake.root.rglob("*.pieces.parquet")).stat().st_ino
    got = parsed.read_pieces(lake)
    assert got.equals(load_parsed(lake, again.files)[0])
    assert "renamed.mid" in got["path"].to_list() and "m1.mid" not in got["path"].to_list()
    assert pieces.equals(got.select(pieces.columns)) and "text" not in pieces.columns  # what parse_step returns
    assert sorted(catalog.query(lake, "SELECT path FROM pieces")) == sorted((p,) for p in got["path"])


def test_a_publication_reads_no_footer_of_the_parts_it_keeps(tmp_path: Path, derived, monkeypatch) -> None:
    """The batches already published as they are, unchanged since (device, inode, size and mtime
    as the manifest recorded them), are trusted: publishing again reads none of their footers,
    so its cost does not grow with the corpus's batches; a new batch's footers are read."""
    import pyarrow.parquet as pq

    from musicml import workflow
    from musicml.ingest import files as files_mod
    from musicml.lake import write_parquet

    lake = _drop(tmp_path, derived, n_abc=2)
    first = ingest(lake, IngestConfig(isolate=False))
    write_parquet(workflow.ingest_lib.files_table_path(lake), first.files)
    workflow.parse_step(lake)
    read = []
    real = pq.read_metadata
    monkeypatch.setattr(files_mod.pq, "read_metadata", lambda p, *a, **k: read.append(Path(p).name) or real(p, *a, **k))
    workflow.parse_step(lake)
    assert read == []
    shutil.copyfile(_small_abc()[7], lake.raw_dir / "new.abc")
    second = ingest(lake, IngestConfig(isolate=False), first.files)
    write_parquet(workflow.ingest_lib.files_table_path(lake), second.files)
    workflow.parse_step(lake)
    assert len(read) == 2 and {n.split(".")[1] for n in read} == {"pieces", "notes"}  # the new batch's two
