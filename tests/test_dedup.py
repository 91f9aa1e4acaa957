"""Deduplication: exact copies, re-saved copies and transposed copies become one work."""

from __future__ import annotations

import polars as pl
import pytest
import symusic

from musicml.curate.dedup import deduplicate, fingerprints
from musicml.formats.midi import text as miditext
from musicml.ingest.note_table import note_table


def _resave(score: symusic.Score, tpq: int) -> symusic.Score:
    return symusic.Score.from_midi(score.resample(tpq=tpq).dumps_midi())


def _reorder_tracks(score: symusic.Score, order: list[int]) -> symusic.Score:
    out = symusic.Score(score.ticks_per_quarter)
    out.tempos = score.tempos.copy()
    out.time_signatures = score.time_signatures.copy()
    out.key_signatures = score.key_signatures.copy()
    for i in order:
        out.tracks.append(score.tracks[i].copy())
    return out


def _velocities(score: symusic.Score, fn) -> symusic.Score:
    out = score.copy()
    for t in out.tracks:
        for n in t.notes:
            n.velocity = fn(n.velocity)
    return out


def _rename(score: symusic.Score, suffix: str) -> symusic.Score:
    out = score.copy()
    for t in out.tracks:
        t.name = t.name + suffix
    return out


def _frame(items: list[tuple[str, str, symusic.Score, str | None]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(piece_id, path, score, text or None for miditext) -> pieces and notes tables."""
    rows, notes = [], []
    for pid, path, score, text in items:
        rows.append({"piece_id": pid, "path": path, "index": 0, "text": text or miditext.encode(score)})
        notes.append(note_table(score, pid))
    return pl.DataFrame(rows), pl.concat(notes)


@pytest.fixture(scope="module")
def songs(derived) -> tuple[symusic.Score, symusic.Score]:
    """Two real multi-voice tunes (music21's corpus through symusic); the first has three voices."""
    a = symusic.Score(str(derived.multitrack[0]))
    b = symusic.Score(str(derived.multitrack[1]))
    return a, b


@pytest.fixture(scope="module")
def result(songs):
    a, b = songs
    items = [
        # piece ids deliberately out of path order: the representative is the first by *path*
        ("p9", "a/001.mid", a, None),
        ("p1", "b/001_copy.mid", a, None),                          # exact text copy
        ("p2", "c/001_960.mid", _rename(_resave(a, 960), "_x"), None),  # re-saved, other tpq
        ("p3", "d/001_reordered.mid", _reorder_tracks(a, [2, 0, 1]), None),
        ("p4", "e/001_soft.mid", _velocities(a, lambda v: max(1, v // 2)), None),
        ("p5", "f/001_up2.mid", a.shift_pitch(2), None),            # transposed +2
        ("p6", "g/002.mid", b, None),                               # a different song
        ("p7", "h/002_down3.mid", b.shift_pitch(-3), None),
    ]
    pieces, notes = _frame(items)
    return deduplicate(pieces, notes)


def _kinds(res) -> dict[str, tuple[str, str | None, str]]:
    """piece_id -> (dup_kind, dup_of, the piece that represents its work)."""
    rep = dict(res.representatives.select("work_id", "piece_id").iter_rows())
    return {r["piece_id"]: (r["dup_kind"], r["dup_of"], rep[r["work_id"]])
            for r in res.pieces.iter_rows(named=True)}


def test_kinds_and_representatives(result) -> None:
    kinds = _kinds(result)
    assert kinds["p9"] == ("unique", None, "p9")
    assert kinds["p1"] == ("exact", "p9", "p9")
    assert kinds["p2"] == ("same_notes", "p9", "p9")
    assert kinds["p3"] == ("same_notes", "p9", "p9")
    assert kinds["p4"] == ("same_notes", "p9", "p9")
    assert kinds["p5"] == ("transposed", "p9", "p9")
    assert kinds["p6"] == ("unique", None, "p6")
    assert kinds["p7"] == ("transposed", "p6", "p6")


def test_counts(result) -> None:
    assert result.counts == {"pieces": 8, "works": 2, "exact": 1, "same_notes": 3, "transposed": 2}


def test_representatives_property(result) -> None:
    reps = result.representatives
    assert sorted(reps["piece_id"]) == ["p6", "p9"]
    assert reps["is_representative"].all()
    assert reps["work_id"].n_unique() == len(reps)
    assert all(w.startswith("s") and len(w) == 21 for w in reps["work_id"])  # s + 20 hex of the shape
    assert result.pieces["piece_id"].to_list() == sorted(result.pieces["piece_id"])
    assert not any(c.startswith("_") for c in result.pieces.columns)


def test_resave_at_other_tpq_with_same_text_is_exact(songs) -> None:
    a, _ = songs
    pieces, notes = _frame([("x", "1.mid", a, None), ("y", "2.mid", _resave(a, 1920), None)])
    assert pieces["text"][0] == pieces["text"][1]  # miditext is resolution-free
    kinds = _kinds(deduplicate(pieces, notes))
    assert kinds["y"] == ("exact", "x", "x")


def test_fingerprints_of_variants(songs) -> None:
    a, b = songs
    variants = {"orig": a, "tpq": _resave(a, 960), "reorder": _reorder_tracks(a, [1, 2, 0]),
                "vel": _velocities(a, lambda v: 127), "up2": a.shift_pitch(2), "other": b}
    fp = fingerprints(pl.concat([note_table(s, k) for k, s in variants.items()]))
    keys = {r["piece_id"]: (r["notes_key"], r["shape_key"]) for r in fp.iter_rows(named=True)}
    assert keys["tpq"] == keys["orig"] == keys["reorder"] == keys["vel"]
    assert keys["up2"][0] != keys["orig"][0] and keys["up2"][1] == keys["orig"][1]
    assert keys["other"][0] != keys["orig"][0] and keys["other"][1] != keys["orig"][1]
    assert fp.schema["notes_key"] == pl.UInt64


def _tiny(pitches: list[int], *, drum: list[int] | None = None, start: int = 0, tpq: int = 96) -> symusic.Score:
    s = symusic.Score(tpq)
    t = symusic.Track("p", program=0)
    for i, p in enumerate(pitches):
        t.notes.append(symusic.Note(start + i * tpq, tpq, p, 80))
    s.tracks.append(t)
    if drum:
        d = symusic.Track("d", program=0, is_drum=True)
        for i, p in enumerate(drum):
            d.notes.append(symusic.Note(i * tpq, tpq // 2, p, 100))
        s.tracks.append(d)
    return s


def test_synthetic_cases() -> None:
    items = [
        ("a", "01.mid", _tiny([60, 62, 64]), "text-a"),
        ("b", "02.mid", _tiny([60, 62, 64], start=96 * 4), "text-b"),   # same notes, shifted start
        ("c", "03.mid", _tiny([60, 62, 64], drum=[36, 38]), "text-c"),  # drums do not count
        ("d", "04.mid", _tiny([64, 62, 60]), "text-d"),                 # reversed melody: other work
        ("e", "05.mid", _tiny([61, 63, 65]), "text-e"),                 # +1
        ("f", "00.mid", _tiny([72, 74, 76]), "text-f"),                 # +12, and first by path
    ]
    pieces, notes = _frame(items)
    res = deduplicate(pieces, notes)
    kinds = _kinds(res)
    assert kinds["f"] == ("unique", None, "f")
    assert kinds["a"] == ("transposed", "f", "f")
    assert kinds["b"] == ("transposed", "f", "f")
    assert kinds["c"] == ("transposed", "f", "f")
    assert kinds["e"] == ("transposed", "f", "f")
    assert kinds["d"] == ("unique", None, "d")
    assert res.counts["works"] == 2


def test_pieces_without_notes_group_by_text() -> None:
    pieces = pl.DataFrame({
        "piece_id": ["n1", "n2", "n3", "m1"],
        "path": ["x/2.abc", "x/1.abc", "x/3.abc", "x/0.mid"],
        "index": [0, 0, 0, 0],
        "text": ["same text", "same text", "other text", "music"],
    })
    notes = note_table(_tiny([60, 64]), "m1")
    res = deduplicate(pieces, notes)
    kinds = _kinds(res)
    assert kinds["n2"] == ("unique", None, "n2")
    assert kinds["n1"] == ("exact", "n2", "n2")
    assert kinds["n3"][0] == "unique" and kinds["m1"][0] == "unique"
    assert res.counts == {"pieces": 4, "works": 3, "exact": 1, "same_notes": 0, "transposed": 0}


def test_multi_piece_file_order_by_index() -> None:
    # two tunes of one file that are the same music: the lower index represents the work
    s = _tiny([60, 62, 64, 65])
    pieces = pl.DataFrame({"piece_id": ["h-0001", "h-0000"], "path": ["f.abc", "f.abc"], "index": [1, 0],
                           "text": ["X:2 ...", "X:1 ..."]})
    notes = pl.concat([note_table(s, "h-0001"), note_table(s, "h-0000")])
    kinds = _kinds(deduplicate(pieces, notes))
    assert kinds["h-0000"] == ("unique", None, "h-0000")
    assert kinds["h-0001"] == ("same_notes", "h-0000", "h-0000")


def test_deterministic(songs) -> None:
    a, b = songs
    items = [("p1", "z.mid", a, None), ("p2", "y.mid", b, None), ("p3", "x.mid", a.shift_pitch(1), None)]
    pieces, notes = _frame(items)
    one = deduplicate(pieces, notes).pieces
    two = deduplicate(pieces.reverse(), notes.reverse()).pieces
    assert one.equals(two)
    assert dict(zip(one["piece_id"], one["dup_of"])) == {"p1": "p3", "p2": None, "p3": None}
