"""Hostile drop zones: every entry gets a row, one bad file never stops the rest, nothing escapes.

Each case here stopped the whole ``raw_scores`` step once (issue 10); now each is a ``rejected``
row whose reason names the file and the problem, and the good file beside it is ingested.
"""

from __future__ import annotations

import os
import random
import stat
import struct
import time
from pathlib import Path

import polars as pl
import pytest
import symusic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musicml.ingest import IngestConfig, ingest, load_parsed
from musicml.ingest.isolation import ParserPool, Task
from musicml.ingest.scan import fingerprint, read_regular, scan
from musicml.lake import Lake

GOOD_ABC = b"X:1\nT:Good\nL:1/8\nK:G\nGABc dedB|GABc d2 G2|\n"


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def midi_bytes(division: int, delta_on: int = 0, delta_off: int = 96, pitch: int = 60) -> bytes:
    """A one-note type-0 Standard MIDI File, byte by byte (so headers can lie)."""
    trk = _vlq(delta_on) + bytes([0x90, pitch, 100]) + _vlq(delta_off) + bytes([0x80, pitch, 0]) + b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, division) + b"MTrk" + struct.pack(">I", len(trk)) + trk


def _lake(tmp_path: Path) -> Lake:
    lake = Lake.from_env(tmp_path / "lake")
    lake.raw_dir.mkdir(parents=True)
    (lake.raw_dir / "good.abc").write_bytes(GOOD_ABC)
    return lake


def _rows(lake: Lake, config: IngestConfig | None = None) -> dict[str, dict]:
    result = ingest(lake, config or IngestConfig(parse_timeout_s=30))
    rows = {r["path"]: r for r in result.files.iter_rows(named=True)}
    assert rows["good.abc"]["status"] == "ingested"  # the rest of the drop zone is ingested as usual
    return rows


def _rejected(rows: dict, rel: str, *words: str) -> str:
    row = rows[rel]
    assert row["status"] == "rejected", row
    assert row["reason"].startswith(rel), row["reason"]
    for w in words:
        assert w in row["reason"], row["reason"]
    return row["reason"]


def test_midi_headers_and_times_that_overflow(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    raw = lake.raw_dir
    (raw / "tpq0.mid").write_bytes(midi_bytes(0))  # 0 ticks per quarter: resample to inf
    (raw / "int32.mid").write_bytes(midi_bytes(1, 0x0FFFFFFF, 1))  # beyond int32 after resampling
    (raw / "far.mid").write_bytes(midi_bytes(24, 0, 0x0FFFFFFF))  # 44 bytes that would expand to GBs of text
    (raw / "smpte.mid").write_bytes(midi_bytes(0xE728))
    rows = _rows(lake)
    _rejected(rows, "tpq0.mid", "0 ticks per quarter")
    _rejected(rows, "int32.mid", "too long")
    _rejected(rows, "far.mid", "too long", "max_quarters")
    _rejected(rows, "smpte.mid", "SMPTE time (25 frames per second, 40 ticks per frame): not supported")
    assert len(raw.joinpath("far.mid").read_bytes()) < 50


def test_expansion_is_bounded_by_text_size(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    score = symusic.Score(24)
    track = symusic.Track("piano", 0, False)
    for i in range(400):
        track.notes.append(symusic.Note(i * 6, 6, 40 + i % 40, 90))
    score.tracks.append(track)
    score.dump_midi(str(lake.raw_dir / "dense.mid"))
    rows = _rows(lake, IngestConfig(max_text_bytes=2_000, parse_timeout_s=30))
    _rejected(rows, "dense.mid", "canonical text too large", "max_text_bytes")


def test_too_many_tracks(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    score = symusic.Score(480)
    for i in range(1100):
        track = symusic.Track(f"t{i}", 0, False)
        track.notes.append(symusic.Note(i, 10, 60, 90))
        score.tracks.append(track)
    score.dump_midi(str(lake.raw_dir / "tracks.mid"))
    rows = _rows(lake)
    _rejected(rows, "tracks.mid", "too many tracks", "max_tracks")


def test_alphatex_with_a_4301_digit_number(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    (lake.raw_dir / "digits.atex").write_text("\\tempo " + "9" * 4301 + "\n.\n3.3.4 |\n")
    _rejected(_rows(lake), "digits.atex", "digits.atex:1:8: error: number too long (4301 digits; at most 18)")


def test_special_files_are_never_opened(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    raw = lake.raw_dir
    os.mkfifo(raw / "pipe.mid")  # opening it for reading would block for ever
    (raw / "zero.mid").symlink_to("/dev/zero")
    (raw / "dangling.abc").symlink_to(raw / "missing.abc")
    (raw / "loop_a.abc").symlink_to(raw / "loop_b.abc")
    (raw / "loop_b.abc").symlink_to(raw / "loop_a.abc")
    try:
        os.mknod(raw / "x.mid", stat.S_IFCHR | 0o600, os.makedev(1, 5))
        have_device = True
    except PermissionError:  # not root: the /dev/zero link still covers devices
        have_device = False
    t0 = time.monotonic()
    rows = _rows(lake)
    assert time.monotonic() - t0 < 60  # a blocked FIFO would never return
    _rejected(rows, "pipe.mid", "FIFO")
    _rejected(rows, "zero.mid", "outside the drop zone")
    _rejected(rows, "dangling.abc", "dangling")
    _rejected(rows, "loop_a.abc", "loop")
    _rejected(rows, "loop_b.abc", "loop")
    if have_device:
        _rejected(rows, "x.mid", "character device")
    assert fingerprint(raw)  # the sensor's fingerprint never raises on these


def test_read_regular_refuses_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p.mid")
    with pytest.raises(OSError, match="not a regular file"):
        read_regular(tmp_path / "p.mid", 100)


def test_read_regular_reads_whole_files_and_at_most_one_byte_past_the_limit(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # 1.28 MB: more than one read after the size hint
    (tmp_path / "a.mid").write_bytes(data)
    assert read_regular(tmp_path / "a.mid", len(data)) == data
    assert read_regular(tmp_path / "a.mid", 1000) == data[:1001]  # too large, noticed unread
    (tmp_path / "e.mid").write_bytes(b"")
    assert read_regular(tmp_path / "e.mid", 100) == b""
    status = Path("/proc/self/status")  # a regular file whose size says 0 but that holds text
    if status.exists() and status.stat().st_size == 0:
        assert read_regular(status, 1 << 20).startswith(b"Name:")


def test_file_name_not_utf8(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    bad = os.path.join(os.fsencode(lake.raw_dir), b"caf\xe9.abc")
    with open(bad, "wb") as f:
        f.write(GOOD_ABC)
    rows = _rows(lake)
    (rel,) = [r for r in rows if r.startswith("caf")]
    assert rel == "caf\\xe9.abc"
    _rejected(rows, rel, "not valid UTF-8")
    result = ingest(lake)
    result.files.write_parquet(tmp_path / "files.parquet")  # the table is writable


def test_dotfiles_and_empty_files_of_two_formats(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    (lake.raw_dir / ".notes.abc").write_bytes(GOOD_ABC)
    (lake.raw_dir / "empty.mid").write_bytes(b"")
    (lake.raw_dir / "empty.abc").write_bytes(b"")
    rows = _rows(lake)
    _rejected(rows, ".notes.abc", "hidden")
    _rejected(rows, "empty.mid", "empty file")
    _rejected(rows, "empty.abc", "empty file")  # not a "duplicate" of the empty MIDI


def test_same_bytes_as_two_formats_are_each_read(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    (lake.raw_dir / "copy.atex").write_bytes(GOOD_ABC)
    rows = _rows(lake)
    assert rows["copy.atex"]["status"] == "rejected"  # read as alphaTex, not called a duplicate
    assert "copy.atex" in rows["copy.atex"]["reason"]


@pytest.mark.parametrize("eol", ["\n", "\r", "\r\n"])  # "\r": old Macintosh line ends, where a
def test_abc_include_never_reads_outside_files(tmp_path: Path, eol: str) -> None:  # directive once blanked the rest
    lake = _lake(tmp_path)
    secret = tmp_path / "secret.abc"
    secret.write_text("X:1\nT:SECRET-TITLE\nL:1/8\nK:C\n" + "^c'^c'^c'^c' " * 8 + "|\n")
    (lake.raw_dir / "inc.abc").write_bytes(eol.join(["X:1", "T:Includer", "L:1/8", "K:C", f"%%abc-include {secret}",
                                                     "CDEF|", f"I:abc-include {secret}", "GABc|", ""]).encode())
    rows = _rows(lake)
    row = rows["inc.abc"]
    assert row["status"] == "ingested"
    assert [p.split(": warning")[0] for p in row["problems"] if "include directive removed" in p] == [
        "inc.abc:5:1", "inc.abc:7:1"]
    pieces, notes = load_parsed(lake, pl.DataFrame([*rows.values()]))
    text = pieces.filter(pl.col("path") == "inc.abc")["text"][0]
    assert "SECRET" not in text and "abc-include" not in text
    pid = pieces.filter(pl.col("path") == "inc.abc")["piece_id"][0]
    pitches = notes.filter(pl.col("piece_id") == pid)["pitch"].to_list()
    assert 85 not in pitches and len(pitches) == 8  # ^c' is never played; the tune's own 8 notes are
    for path in lake.root.rglob("*"):
        if path.is_file():
            assert b"SECRET-TITLE" not in path.read_bytes(), path


def test_many_empty_abc_tunes_run_no_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from musicml.formats.abc import reader

    calls = []
    monkeypatch.setattr(reader, "parse_tune", lambda tune, source: calls.append(tune) or tune)
    lake = _lake(tmp_path)
    (lake.raw_dir / "xs.abc").write_bytes(b"X:1\n" * 2000)
    rows = {r["path"]: r for r in ingest(lake, IngestConfig(isolate=False)).files.iter_rows(named=True)}
    _rejected(rows, "xs.abc", "no readable tune among 2000")
    assert len(calls) == 1  # only good.abc's tune went to the reader


def test_reasons_carry_no_random_paths(tmp_path: Path) -> None:
    bad = b"X:1\nT:Broken\nK:Q\nCDEF|\n"
    reasons = []
    for i in range(2):
        lake = _lake(tmp_path / str(i))
        (lake.raw_dir / "broken.abc").write_bytes(bad)
        reasons.append(_rows(lake)["broken.abc"]["reason"])
    assert reasons[0] == reasons[1]
    assert str(tmp_path) not in reasons[0]


def test_cache_write_error_is_a_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from musicml.ingest import files

    def fail(lake, entries):  # a batch holding bad.abc fails; then each file is written alone
        if any(e.rel == "bad.abc" for e in entries):
            raise OSError(28, "No space left on device")
        return real(lake, entries)

    real = files._write_cache
    monkeypatch.setattr(files, "_write_cache", fail)
    lake = _lake(tmp_path)
    (lake.raw_dir / "bad.abc").write_bytes(GOOD_ABC.replace(b"Good", b"Other"))
    rows = {r["path"]: r for r in ingest(lake, IngestConfig(isolate=False)).files.iter_rows(named=True)}
    _rejected(rows, "bad.abc", "No space left")
    assert rows["good.abc"]["status"] == "ingested"


# --- the worker pool itself: crashes and hangs cost one row -------------------------------------


def _misbehaving_worker(conn, memory_bytes, shared):  # runs in a spawned child; speaks the batch protocol
    import json
    import signal

    from musicml.ingest.isolation import READY, Progress, receive_files

    progress = Progress(shared)
    conn.send_bytes(READY)
    while True:
        try:
            header = json.loads(conn.recv_bytes())
            if any(f["rel"] == "toobig.mid" for f in header["files"]):
                os._exit(1)  # as a MemoryError receiving the batch's bytes
            receive_files(conn, header)
        except EOFError:
            return
        rels = [f["rel"] for f in header["files"]]
        replies = []
        for k, rel in enumerate(rels):
            progress.set(k)
            if rel == "crash.mid":
                os.kill(os.getpid(), signal.SIGSEGV)
            if rel == "hang.mid":
                time.sleep(3600)
            if rel.startswith("slow"):  # each file has its own time limit, not the batch
                time.sleep(1.2)
            replies.append({"status": "ingested", "reason": "", "encoding": None, "n_pieces": 1, "problems": []})
        progress.set(len(rels))
        if "badwrite.mid" in rels:  # the batch's cache write crashes
            os.kill(os.getpid(), signal.SIGSEGV)
        conn.send_bytes(json.dumps({"replies": replies, "written": {}}).encode())


def _pool_replies(workers: int, rels: tuple[str, ...], **kw) -> dict[str, dict]:
    pool = ParserPool(workers, 0, target=_misbehaving_worker)
    tasks = [Task("/nonexistent", rel, "midi", "0" * 64, b"x" * (1 << 20 if rel == "toobig.mid" else 1), {})
             for rel in rels]
    try:
        replies = [(t.rel, r) for t, r in pool.run(tasks, timeout_s=3, **kw)]
    finally:
        pool.close()
    assert sorted(r for r, _ in replies) == sorted(rels)  # every file answered exactly once
    return dict(replies)


def test_pool_survives_crash_and_hang() -> None:
    rels = ("a.mid", "crash.mid", "b.mid", "hang.mid", "c.mid", "d.mid")
    replies = _pool_replies(2, rels)
    assert "SIGSEGV" in replies["crash.mid"]["reason"] and replies["crash.mid"]["status"] == "rejected"
    assert "did not finish within 3 s" in replies["hang.mid"]["reason"]
    assert replies["crash.mid"]["unfinished"] and replies["hang.mid"]["unfinished"]  # tried again next run
    assert all(replies[r]["status"] == "ingested" for r in ("a.mid", "b.mid", "c.mid", "d.mid"))


def test_crash_or_hang_inside_a_batch_costs_only_that_file() -> None:
    rels = ("a.mid", "b.mid", "crash.mid", "c.mid", "hang.mid", "d.mid", "e.mid")
    replies = _pool_replies(1, rels, batch_files=64)
    assert replies["crash.mid"]["reason"].startswith("crash.mid: reader process killed by signal SIGSEGV")
    assert replies["hang.mid"]["reason"].startswith("hang.mid: reader did not finish within 3 s")
    assert all(replies[r]["status"] == "ingested" for r in ("a.mid", "b.mid", "c.mid", "d.mid", "e.mid"))


def test_each_file_of_a_batch_has_its_own_time_limit() -> None:
    """A batch answers once, at its end: the worker's shared progress gives each file the whole
    limit (four files of 1.2 s in one batch under a 3 s limit), and names the one that hangs."""
    rels = ("slow1.mid", "slow2.mid", "slow3.mid", "slow4.mid", "hang.mid", "a.mid")
    replies = _pool_replies(1, rels, batch_files=64)
    assert all(replies[r]["status"] == "ingested" for r in rels if r != "hang.mid"), replies
    assert replies["hang.mid"]["reason"].startswith("hang.mid: reader did not finish within 3 s")


def test_crash_in_a_batch_cache_write_costs_only_that_file() -> None:
    replies = _pool_replies(1, ("a.mid", "badwrite.mid", "b.mid"), batch_files=64)
    assert replies["badwrite.mid"]["status"] == "rejected" and "SIGSEGV" in replies["badwrite.mid"]["reason"]
    assert replies["a.mid"]["status"] == replies["b.mid"]["status"] == "ingested"


def test_batches_respect_files_bytes_and_config() -> None:
    from musicml.ingest.isolation import _batches

    tasks = [Task("/l", f"{i}.mid", "midi", "0" * 64, b"x" * 10, {"g": i // 5}) for i in range(12)]
    sizes = [len(b) for b in _batches(tasks, 3, 1000)]
    assert sizes == [3, 2, 3, 2, 2]  # a new config starts a new batch
    assert [len(b) for b in _batches(tasks[:5], 64, 25)] == [2, 2, 1]  # at most 25 bytes each


# --- fuzzing: random bytes, truncations and bit flips of real files ------------------------------


def _real_files() -> list[tuple[str, bytes]]:
    from musicml.ingest.corpus import music21_abc_files

    abc = sorted(music21_abc_files())[:3]
    out = [(f"seed{i}.abc", p.read_bytes()) for i, p in enumerate(abc)]
    out.append(("seed.mid", symusic.Score.from_abc(GOOD_ABC.decode()).dumps_midi()))
    out.append(("seed.atex", b"\\title \"x\"\n\\tempo 90\n.\n:4 3.3 5.3 7.2 (5.2 7.3) | 0.1.8 r.8 3.2.2 |\n"))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_inputs_are_rows_never_crashes(tmp_path_factory: pytest.TempPathFactory, data) -> None:
    seeds = _real_files()
    name, seed = data.draw(st.sampled_from(seeds))
    kind = data.draw(st.sampled_from(["random", "truncate", "flip"]))
    if kind == "random":
        blob = data.draw(st.binary(max_size=400))
        if data.draw(st.booleans()):
            blob = b"MThd" + blob
    elif kind == "truncate":
        blob = seed[: data.draw(st.integers(0, len(seed)))]
    else:
        rng = random.Random(data.draw(st.integers(0, 2**32)))
        b = bytearray(seed)
        for _ in range(data.draw(st.integers(1, 16))):
            if b:
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        blob = bytes(b)
    lake = Lake.from_env(tmp_path_factory.mktemp("fuzz") / "lake")
    lake.raw_dir.mkdir(parents=True)
    (lake.raw_dir / name).write_bytes(blob)
    result = ingest(lake, IngestConfig(parse_timeout_s=20))
    (row,) = result.files.iter_rows(named=True)
    assert row["status"] in ("ingested", "rejected")
    if row["status"] == "rejected":
        assert row["reason"].startswith(name) and len(row["reason"]) > len(name) + 2


def test_scan_order_and_folders_are_not_rows(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.abc").write_bytes(GOOD_ABC)
    (tmp_path / "a.abc").write_bytes(GOOD_ABC)
    assert [e.rel for e in scan(tmp_path)] == ["a.abc", "b/x.abc"]


def test_two_ingestions_at_once_parse_each_file_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    lake = _lake(tmp_path)
    for i in range(6):
        (lake.raw_dir / f"t{i}.abc").write_bytes(GOOD_ABC.replace(b"Good", f"Tune {i}".encode()))
    code = ("import sys, json; from musicml.lake import Lake; from musicml.workflow import ingest_step; "
            "r, _ = ingest_step(Lake.from_env(sys.argv[1]), seed_default_corpus=False); "
            "print(json.dumps({'parsed': r.parsed, 'rows': len(r.files)}))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(lake.root)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    import json

    results = [json.loads(o.strip().splitlines()[-1]) for o in outs]
    assert sorted(r["parsed"] for r in results) == [0, 7]  # one run parsed all, the other reused them
    assert all(r["rows"] == 7 for r in results)
    files = pl.read_parquet(lake.path("ingest", "files.parquet"))
    assert files.height == 7 and files["path"].n_unique() == 7


def test_names_from_scores_never_write_outside_the_lake(tmp_path: Path) -> None:
    """Titles and track names that look like paths stay data: every file the data steps write
    is under the lake root."""
    from musicml import workflow

    lake = _lake(tmp_path / "inner")
    (lake.raw_dir / "t.abc").write_text("X:1\nT:../../../../escaped\nL:1/8\nK:D\nDEFG ABcd|\n")
    (lake.raw_dir / "a.atex").write_text('\\title "../../../../escaped2"\n.\n3.3.4 5.3.4 7.2.4 5.2.4 |\n')
    score = symusic.Score(480)
    track = symusic.Track("../../../../escaped3", 0, False)
    for i in range(16):
        track.notes.append(symusic.Note(i * 240, 240, 60 + i % 12, 90))
    score.tracks.append(track)
    score.dump_midi(str(lake.raw_dir / "m.mid"))
    before = {p for p in tmp_path.rglob("*")}
    workflow.ingest_step(lake, seed_default_corpus=False)
    workflow.parse_step(lake)
    workflow.dedup_step(lake)
    workflow.augment_step(lake)
    workflow.split_step(lake)
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(lake.root in p.parents for p in created)
    assert not any("escaped" in p.name for p in created)


def test_unfinished_rows_are_parsed_again_next_run(tmp_path: Path) -> None:
    """A row whose reader never finished carries no parser version, so a rerun does not reuse it."""
    from musicml.ingest.files import _row

    row = _row("x.mid", "midi", 10, "0" * 64, "rejected", "x.mid: reader process killed", unfinished=True)
    assert row["parser_version"] == ""
    lake = _lake(tmp_path)
    first = ingest(lake)
    stale = first.files.with_columns(pl.lit("").alias("parser_version"))  # as if every reader had died
    again = ingest(lake, previous=stale)
    assert again.parsed == 1 and again.reused == 0


def test_a_batch_a_worker_dies_receiving_costs_only_the_file_too_big_for_it() -> None:
    """A worker that dies receiving a batch (a file's bytes beyond its memory limit) is replaced;
    the batch is sent again file by file, and only that file is rejected."""
    rels = ("a.mid", "toobig.mid", "b.mid", "c.mid")
    replies = _pool_replies(1, rels, batch_files=64)
    assert replies["toobig.mid"]["status"] == "rejected"
    assert replies["toobig.mid"]["reason"].startswith("toobig.mid: reader process exited with code 1 while receiving")
    assert all(replies[r]["status"] == "ingested" for r in ("a.mid", "b.mid", "c.mid"))


def test_pool_takes_tasks_as_workers_need_them() -> None:
    """An iterator of tasks is read batch by batch as workers free up (ingestion reads and hashes
    files while others are parsed, holding only those in flight), and every task is answered."""
    pulled: list[int] = []

    def tasks():
        for k in range(200):
            pulled.append(k)
            yield Task("/nonexistent", f"f{k}.mid", "midi", "0" * 64, b"x", {})

    pool = ParserPool(1, 0, target=_misbehaving_worker)
    try:
        answered, pulled_at_first = [], None
        for task, reply in pool.run(tasks(), timeout_s=10, batch_files=4, at_most=200):
            if pulled_at_first is None:
                pulled_at_first = len(pulled)
            assert reply["status"] == "ingested", reply
            answered.append(task.rel)
    finally:
        pool.close()
    assert sorted(answered) == sorted(f"f{k}.mid" for k in range(200))
    assert pulled_at_first <= 3 * 4  # the batch answered, the next one sent, and one being made


def test_text_scores_in_utf16_are_ingested_and_without_a_mark_named(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    tune = "X:1\nT:Caf\u00e9\nL:1/8\nK:G\nGABc dedB|\n"
    (lake.raw_dir / "windows.abc").write_bytes(b"\xff\xfe" + tune.encode("utf-16-le"))
    (lake.raw_dir / "tab.atex").write_bytes(b"\xfe\xff" + '\\title "Caf\u00e9"\n.\n3.3 5.2 |\n'.encode("utf-16-be"))
    (lake.raw_dir / "nomark.abc").write_bytes(tune.encode("utf-16-le"))
    rows = _rows(lake)
    assert (rows["windows.abc"]["status"], rows["windows.abc"]["encoding"]) == ("ingested", "utf-16")
    assert (rows["tab.atex"]["status"], rows["tab.atex"]["encoding"]) == ("ingested", "utf-16")
    _rejected(rows, "nomark.abc", "UTF-16 text without a byte-order mark")


def test_riff_midi_is_unwrapped_and_other_riff_named(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    smf = midi_bytes(96)

    def riff(kind: bytes, *chunks: tuple[bytes, bytes]) -> bytes:
        body = kind + b"".join(i + len(p).to_bytes(4, "little") + p + b"\0" * (len(p) & 1) for i, p in chunks)
        return b"RIFF" + len(body).to_bytes(4, "little") + body

    (lake.raw_dir / "win.rmi").write_bytes(riff(b"RMID", (b"LIST", b"INFOodd"), (b"data", smf)))
    (lake.raw_dir / "plain.mid").write_bytes(smf)  # the same notes: a musical duplicate later, not here
    (lake.raw_dir / "sound.mid").write_bytes(riff(b"WAVE", (b"fmt ", b"\0" * 16)))
    (lake.raw_dir / "nodata.mid").write_bytes(riff(b"RMID", (b"LIST", b"INFO")))
    (lake.raw_dir / "smpte_in_riff.rmi").write_bytes(riff(b"RMID", (b"data", midi_bytes(0xE728))))
    rows = _rows(lake)
    assert rows["win.rmi"]["status"] == rows["plain.mid"]["status"] == "ingested"
    _rejected(rows, "sound.mid", "a RIFF file of type b'WAVE', not RIFF MIDI")
    _rejected(rows, "nodata.mid", "RIFF MIDI file without a 'data' chunk")
    _rejected(rows, "smpte_in_riff.rmi", "SMPTE time")


def test_abc_reader_failures_read_the_same_on_any_machine(tmp_path: Path) -> None:
    """abc2midi's exit names no install or temp path (its first error instead); symusic's
    out-of-range values are said in words."""
    lake = _lake(tmp_path)
    (lake.raw_dir / "div.abc").write_text("X:1\nK:C\nc/99999999|\n")
    (lake.raw_dir / "high.abc").write_text("X:1\nK:C\nc''''''''''''''|\n")
    (lake.raw_dir / "prog.abc").write_text("X:1\nK:C\n%%MIDI program 999\ncd|\n")
    rows = _rows(lake)
    reason = _rejected(rows, "div.abc", "abc2midi failed (exit code 1); first problem: div.abc:3:1: error:")
    assert not any(w in reason for w in ("site-packages", "bin/", "<temp file>", "/tmp")), reason
    _rejected(rows, "high.abc", "a pitch of 240 after conversion, outside MIDI's 0-127")
    _rejected(rows, "prog.abc", "a program of 231 after conversion, outside MIDI's 0-127")
    (lake.raw_dir / "key.abc").write_text("X:1\nK:Hm\ncdef|\n")
    _rejected(_rows(lake), "key.abc", "abc2midi wrote no MIDI; first problem: key.abc:2:1: error: First K: field must "
                                      "specify key signature")


def test_workers_start_under_a_script_read_from_stdin(tmp_path: Path) -> None:
    """``python - < script`` has a main module named ``<stdin>``, which a spawned worker would
    try to run again and die on (every worker start failing stopped ingestion)."""
    import subprocess
    import sys

    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.abc").write_bytes(GOOD_ABC)
    script = ("from pathlib import Path\nfrom musicml.ingest import ingest\nfrom musicml.lake import Lake\n"
              f"root = Path({str(tmp_path)!r})\n"
              "print(ingest(Lake(root=root / 'lake', raw_dir=root / 'raw')).parsed)\n")
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1"]
