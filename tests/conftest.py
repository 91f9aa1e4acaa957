"""Shared fixtures: real test data derived from installed packages, and the shared corpora.

Every test that needs "some real MIDI / ABC / alphaTex" uses :func:`derived_corpus`: music21's
ABC corpus (it ships inside the ``music21`` package), read with symusic and written as MIDI, and
written as alphaTex with the project's own converter. It is built once per session into a temp
folder, deterministically, so a fresh clone runs the whole suite. Only tests about one particular
file of ``../shared/corpora`` (whole-corpus figures, alphaTab's conversion log) use
:func:`corpus_path`, which skips when that folder is absent.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest
import symusic
from hypothesis import settings

from musicml.formats import alphatex
from musicml.formats.abc.reader import split_tunes
from musicml.formats.native import captured_native_output
from musicml.ingest.corpus import music21_abc_files

# Property and fuzz tests (hypothesis): the same examples on every run ("ci", the default: a
# suite that passes here passes in CI), or new ones each run (HYPOTHESIS_PROFILE=explore) to
# look for more failures; a failure prints the example and the seed that reproduce it.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("MUSICML_CORPORA", REPO_ROOT.parent / "shared" / "corpora"))

N_TUNES = 8  # single-voice tunes written as MIDI and alphaTex
N_VOICED = 3  # multi-voice tunes (2-3 tracks)
MIN_NOTES = 40
BAND_PROGRAMS = (73, 40, 32)  # flute, violin, acoustic bass: the band file's pitched tracks


def corpus_path(*parts: str) -> Path:
    """Path inside the shared corpora; skips the calling test when it is absent."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"shared corpus file {path} not found: this test checks that particular file; "
            "set MUSICML_CORPORA to a copy of the project's shared corpora to run it"
        )
    return path


def shared_files(*parts: str, names: list[str] | None = None) -> list[Path]:
    """Files of a shared-corpus folder (all, or ``names``); empty when the folder is absent.

    For parametrizing a test over extra shared files on top of the derived ones, without a skip.
    """
    root = CORPORA.joinpath(*parts)
    if not root.is_dir():
        return []
    if names is None:
        return sorted(p for p in root.iterdir() if p.is_file())
    return [root / n for n in names if (root / n).is_file()]


@dataclass(frozen=True)
class Derived:
    """Real music for tests, made from music21's installed ABC corpus (see module docstring)."""

    root: Path
    abc_files: tuple[Path, ...]  # music21 ABC files as installed (smallest single tunes first)
    big_abc: Path  # one music21 file of several hundred tunes
    midi: tuple[Path, ...]  # one-track MIDI, one per tune (symusic's ABC reader, dump_midi)
    multitrack: tuple[Path, ...]  # MIDI of multi-voice tunes, one track per voice (most voices first)
    band: Path  # a multi-voice tune with GM programs per track plus a drum track
    empty_midi: Path  # a valid MIDI file with a track and no notes
    atex: tuple[Path, ...]  # alphaTex of the tunes (musicml.formats.alphatex.from_score)
    corrupt_midi: dict[str, Path]  # name -> a broken copy of a derived MIDI file


def _read_abc(text: str) -> symusic.Score | None:
    with captured_native_output() as messages:
        try:
            score = symusic.Score.from_abc(text)
        except Exception:  # a tune symusic cannot read is simply not picked
            return None
    if any(m.startswith("Error") for m in messages):
        return None
    return score


def _band(score: symusic.Score) -> symusic.Score:
    """``score`` with a GM program per voice and a drum track on the first voice's onsets."""
    band = score.copy()
    pitched = [t for t in band.tracks if t.note_num()]
    for track, program in zip(pitched, BAND_PROGRAMS):
        track.program = program
    drums = symusic.Track("drums", 0, True)
    for i, n in enumerate(pitched[0].notes):
        drums.notes.append(symusic.Note(n.time, n.duration, 36 if i % 2 == 0 else 42, 90))
    band.tracks = [*pitched, drums]
    return band


def _corruptions(data: bytes) -> dict[str, bytes]:
    track = data.index(b"MTrk", 14)
    return {
        "garbage_chunk_id.mid": data[:track] + b"XyZ!" + data[track + 4 :],
        "truncated.mid": data[: len(data) // 2],
        "track_length_past_end.mid": data[: track + 4] + (1 << 20).to_bytes(4, "big") + data[track + 8 :],
    }


def _build(root: Path) -> Derived:
    files = music21_abc_files()
    by_size = sorted(files, key=lambda p: (p.stat().st_size, p.as_posix()))
    singles, tunes = [], []
    for path in by_size:
        score = _read_abc(path.read_text(encoding="utf-8"))
        if score is not None and len(score.tracks) == 1 and score.note_num() >= MIN_NOTES:
            singles.append(path)
            tunes.append((path.stem, score))
        if len(tunes) == N_TUNES:
            break
    voiced = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if "\nV:" not in text:
            continue
        for tune in split_tunes(text):
            if "\nV:" in tune.text and len(voiced) < N_VOICED:
                score = _read_abc(tune.text)
                if score is not None and sum(t.note_num() > 0 for t in score.tracks) >= 2:
                    voiced.append((f"{path.stem}_{tune.index}", score))
        if len(voiced) == N_VOICED:
            break
    voiced.sort(key=lambda v: -len(v[1].tracks))  # stable: the first has the most voices
    big = max(files, key=lambda p: (p.read_text(encoding="utf-8", errors="replace").count("\nX:"), p.as_posix()))

    def write_midi(folder: str, name: str, score: symusic.Score) -> Path:
        out = root / folder / f"{name}.mid"
        out.parent.mkdir(parents=True, exist_ok=True)
        score.dump_midi(str(out))
        return out

    midi = tuple(write_midi("midi", name, s) for name, s in tunes)
    multitrack = tuple(write_midi("multitrack", name, s) for name, s in voiced)
    band = write_midi("multitrack", "band", _band(voiced[0][1]))
    empty = symusic.Score(480)
    empty.tracks.append(symusic.Track("silence", 0, False))
    empty_midi = write_midi("edge", "empty", empty)
    atex = []
    for name, score in [*tunes, *voiced]:
        out = root / "atex" / f"{name}.atex"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(alphatex.from_score(score), encoding="utf-8")
        atex.append(out)
    corrupt = {}
    for name, data in _corruptions(midi[0].read_bytes()).items():
        corrupt[name] = root / "corrupt" / name
        corrupt[name].parent.mkdir(parents=True, exist_ok=True)
        corrupt[name].write_bytes(data)
    return Derived(root, tuple(singles), big, midi, multitrack, band, empty_midi, tuple(atex), corrupt)


@lru_cache(maxsize=1)
def derived_corpus() -> Derived:
    """The derived test data, built on first use (also at collection time) and kept for the session."""
    root = Path(tempfile.mkdtemp(prefix="musicml-derived-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return _build(root)


@pytest.fixture(scope="session")
def derived() -> Derived:
    """Real test data derived from music21's installed corpus (see :class:`Derived`)."""
    return derived_corpus()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run faster on one thread, and steadily on a shared, loaded CPU."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture()
def memory_root():
    """A fresh folder on fsspec's (process-global) memory filesystem, removed afterwards."""
    import uuid

    import fsspec

    name = f"musicml-test-{uuid.uuid4().hex[:8]}"
    yield f"memory://{name}"
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{name}"):
        fs.rm(f"/{name}", recursive=True)
