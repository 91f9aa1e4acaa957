"""MIDI text stays byte-identical: encodings of real scores against stored digests.

``data/miditext_expected.json`` holds a SHA-256 prefix of :func:`encode`'s output for every
score and option set below, written by the encoder of commit bcd54ef (before the encoder was
rewritten for speed). The scores: music21's ABC corpus read with symusic (ships with the
package), the same written as MIDI and read back, and, where ``../shared/corpora`` is present,
a sample of POP909 and its versions and the edge-case MIDI files. ``python
tests/test_miditext_stored.py`` rewrites the file: only for a deliberate change of the format.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import symusic
from conftest import CORPORA

from musicml.formats.midi.text import encode
from musicml.formats.native import captured_native_output
from musicml.ingest.corpus import music21_abc_files

EXPECTED = Path(__file__).resolve().parent / "data" / "miditext_expected.json"
OPTIONS = {  # name -> encode() keywords: the default, then grids, bins and options that change the text
    "g4v8": {},
    "g12v32m2": {"grid": 12, "velocity_bins": 32, "max_tracks": 2},
    "g3v128": {"grid": 3, "velocity_bins": 128, "names": False},
    "g480v1": {"grid": 480, "velocity_bins": 1},
}
N_ABC = 60  # music21 ABC files, every len // N_ABC-th
POP909_EVERY = 29  # every 29th file of POP909 and its versions (100 files)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def _abc_scores() -> dict[str, symusic.Score]:
    """music21 ABC files read with symusic, and the same written as MIDI and read back."""
    files = music21_abc_files()
    out: dict[str, symusic.Score] = {}
    for path in files[:: max(1, len(files) // N_ABC)]:
        with captured_native_output():
            try:
                score = symusic.Score.from_abc(path.read_text(encoding="utf-8", errors="replace"))
            except Exception:
                continue
        if score.note_num() == 0:
            continue
        name = f"music21/{path.parent.name}/{path.name}"
        out[name] = score
        out[name + ".mid"] = symusic.Score.from_midi(score.dumps_midi())
    return out


def _shared_files() -> list[Path]:
    midi = CORPORA / "midi"
    pop = sorted((midi / "pop909").glob("*.mid")) + sorted((midi / "pop909-versions").glob("*.mid"))
    edge = sorted(p for p in (midi / "edge").rglob("*") if p.suffix in (".mid", ".midi")
                  and "corrupted" not in p.as_posix())
    return pop[::POP909_EVERY] + edge


def _shared_scores() -> dict[str, symusic.Score]:
    out: dict[str, symusic.Score] = {}
    for path in _shared_files():
        try:
            out[path.relative_to(CORPORA).as_posix()] = symusic.Score(path)
        except Exception:
            continue
    return out


def _encodings(scores: dict[str, symusic.Score]) -> dict[str, dict[str, str]]:
    return {name: {opt: _digest(encode(score, **kw)) for opt, kw in OPTIONS.items()}
            for name, score in scores.items()}


def _expected() -> dict[str, dict[str, str]]:
    return json.loads(EXPECTED.read_text(encoding="utf-8"))["digests"]


def test_music21_encodings_unchanged() -> None:
    expected = _expected()
    got = _encodings(_abc_scores())
    assert len(got) >= N_ABC
    missing = sorted(set(got) - set(expected))
    assert not missing, f"no stored digests for {missing[:3]}: symusic's ABC reader changed?"
    changed = [(name, opt) for name, row in got.items() for opt, d in row.items() if expected[name][opt] != d]
    assert not changed, f"{len(changed)} encodings differ from the stored ones, e.g. {changed[:5]}"


def test_shared_midi_encodings_unchanged() -> None:
    if not (CORPORA / "midi" / "pop909").is_dir():
        pytest.skip(f"POP909 not found under {CORPORA}/midi: set MUSICML_CORPORA to the shared corpora")
    expected = _expected()
    got = _encodings(_shared_scores())
    assert len(got) >= 100
    changed = [(name, opt) for name, row in got.items() for opt, d in row.items() if expected[name][opt] != d]
    assert not changed, f"{len(changed)} encodings differ from the stored ones, e.g. {changed[:5]}"


def test_a_changed_text_is_caught() -> None:
    """The digests see a one-byte change (so a passing comparison means something)."""
    score = next(iter(_abc_scores().values()))
    text = encode(score)
    assert _digest(text) != _digest(text.replace(" v", " v1", 1))


if __name__ == "__main__":
    digests = {**_encodings(_abc_scores()), **_encodings(_shared_scores())}
    EXPECTED.parent.mkdir(exist_ok=True)
    EXPECTED.write_text(json.dumps({"options": OPTIONS, "digests": digests}, indent=0, sort_keys=True) + "\n",
                        encoding="utf-8")
    print(f"{len(digests)} scores written to {EXPECTED}")
