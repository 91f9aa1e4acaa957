"""Text-level ABC transposition: key spelling, notes, chord symbols, and symusic as the oracle."""

from __future__ import annotations

import random
import re
from functools import lru_cache

import pytest
import symusic
from conftest import CORPORA, derived_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musicml.formats.abc import split_tunes
from musicml.formats.abc.transpose import transpose_abc, transpose_key
from musicml.formats.native import captured_native_output
from musicml.ingest.corpus import music21_abc_files

SHIFTS = (-3, -2, -1, 1, 2, 3)


def tune(body: str, key: str = "C", header: str = "") -> str:
    return f"X:1\nT:t\n{header}M:4/4\nL:1/4\nK:{key}\n{body}"


def music(text: str) -> str:
    """The lines after the header's K: line."""
    lines = text.split("\n")
    head = next(i for i, line in enumerate(lines) if line.startswith("K:"))
    return "\n".join(lines[head + 1 :])


def moved(body: str, k: int, key: str = "C") -> str:
    out = transpose_abc(tune(body, key), k)
    assert out is not None
    return music(out)


# -- oracle: symusic (abc2midi) reads both tunes --------------------------------------------------


def read_notes(text: str) -> list[list[tuple[int, int, int]]] | None:
    """Per track, sorted (onset, duration, pitch); None when symusic cannot read the tune."""
    try:
        with captured_native_output():
            score = symusic.Score.from_abc(text)
    except Exception:
        return None
    return [sorted((n.time, n.duration, n.pitch) for n in tr.notes) for tr in score.tracks]


def _gchord_off(text: str) -> str:
    lines = text.split("\n")
    head = next(i for i, line in enumerate(lines) if line.startswith("K:"))
    return "\n".join(lines[: head + 1] + ["%%MIDI gchordoff"] + lines[head + 1 :])


@lru_cache(maxsize=4096)
def _original(text: str):
    chords = re.search(r'"[A-G]', text) is not None
    return chords, read_notes(_gchord_off(text) if chords else text)


def oracle(text: str, k: int) -> str:
    """'ok' when the transposed tune sounds the original moved by ``k`` (see module notes).

    abc2midi voices chord symbols in a fixed octave, so the melody is compared exactly with the
    accompaniment switched off, and the accompaniment separately by pitch class.
    """
    chords, base = _original(text)
    if base is None or not any(base):
        return "unread"
    new = transpose_abc(text, k)
    if new is None:
        return "none"
    got = read_notes(_gchord_off(new) if chords else new)
    if got != [[(t, d, p + k) for t, d, p in track] for track in base]:
        return "mismatch"
    if chords:
        a, b = read_notes(text), read_notes(new)
        if a is None or b is None or len(a) != len(b):
            return "chord-mismatch"
        for ta, tb in zip(a, b):
            want = sorted((t, d, (p + k) % 12) for t, d, p in ta)
            if want != sorted((t, d, p % 12) for t, d, p in tb):
                return "chord-mismatch"
    return "ok"


def sweep(texts: list[str]) -> tuple[float, dict[str, list]]:
    results: dict[str, list] = {}
    for i, text in enumerate(texts):
        for k in SHIFTS:
            results.setdefault(oracle(text, k), []).append((i, k))
    judged = sum(len(v) for s, v in results.items() if s != "unread")
    return len(results.get("ok", [])) / max(judged, 1), results


IRISH = CORPORA / "abc" / "irish.abc"
# music21's ABC corpus ships with the package; irish.abc (804 tunes) joins when the shared corpora are there
COLLECTIONS = ["music21", *(["irish"] if IRISH.is_file() else [])]


@lru_cache(maxsize=2)
def real_tunes(collection: str = "music21") -> tuple[str, ...]:
    """Every tune of a real collection, in file order."""
    paths = music21_abc_files() if collection == "music21" else [IRISH]
    return tuple(t.text for p in paths for t in split_tunes(p.read_text(encoding="utf-8", errors="replace")))


# -- key spelling ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "k", "want"),
    [
        ("G", 2, "A"),
        ("F", 1, "Gb"),
        ("Am", 3, "Cm"),
        ("D mix", -2, "C mix"),
        ("Bb", 1, "B"),
        ("C", 1, "Db"),  # not C# (7 sharps)
        ("E", 2, "F#"),  # not Gb: a major second is spelled on the next letter
        ("G", -1, "F#"),
        ("D Major", 1, "Eb Major"),
        ("A Dorian", -2, "G Dorian"),
        ("Edor", 3, "Gdor"),
        ("E Minor", 1, "F Minor"),
        ("Gm", 1, "G#m"),  # 5 sharps beat Abm's 7 flats
        ("Bb", -3, "G"),
        ("Glyd", 2, "Alyd"),
        ("A mix", 12, "A mix"),
        ("C#", 12, "C#"),  # whole octaves keep the spelling
        ("C#", 0, "C#"),
        ("G clef=bass", 3, "Bb clef=bass"),
        ("E phr -8va", 1, "F phr -8va"),
        ("D exp ^f _b", 2, "E exp ^g =c"),
        ("Dmix=c", 2, "Emix=d"),
        ("K:G Major", 2, "K:A Major"),
        ("K: D % comment", -1, "K: Db % comment"),
    ],
)
def test_transpose_key(key, k, want):
    assert transpose_key(key, k) == want


@pytest.mark.parametrize("key", ["none", "HP", "Hp", "Bn", "", "clef=bass", "H", "Fbass"])
def test_transpose_key_refuses(key):
    assert transpose_key(key, 2) is None


def test_every_tonic_and_mode_gets_at_most_six_accidentals():
    sig = {"": 0, "m": -3, "dor": -2, "mix": -1, "lyd": 1, "phr": -4, "loc": -5}
    fifths = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F": -1}
    for mode, offset in sig.items():
        for k in range(-11, 12):
            new = transpose_key("C" + mode if mode else "C", k)
            assert new is not None
            m = re.fullmatch(r"([A-G])([#b]?)(.*)", new)
            assert m is not None and m[3] == mode
            sf = fifths[m[1]] + {"#": 7, "b": -7, "": 0}[m[2]] + offset
            assert -6 <= sf <= 6
            pitch = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[m[1]]
            assert (pitch + {"#": 1, "b": -1, "": 0}[m[2]]) % 12 == k % 12


# -- notes -----------------------------------------------------------------------------------------


def test_plain_notes_follow_the_key_and_cross_octaves():
    assert moved("C D E F G A B c|", 2, "C") == "D E F G A B c d|"  # in D major: no accidentals
    assert moved("B, B b c'|", 1) == "C c c' d'|"  # C -> Db: B moves up to c
    assert moved("C, C c c''|", -1) == "B,, B, B b'|"  # C -> B
    assert moved("c2 B/A/|", -2) == "B2 A/G/|"  # C -> Bb, lengths untouched


def test_explicit_accidentals_are_kept_and_recomputed():
    assert moved("=f ^c _B ^^G __e|", 2, "G") == "=g ^d =c ^^A _f|"
    assert moved("^c =c _c|", 1) == "=d _d __d|"  # C -> Db
    # more than a double flat: respelled on the next letter down
    assert moved("__c|", 1) == "_c|"


def test_bar_scoped_accidentals_stay_consistent():
    assert moved("^c c C c'|c", 2) == "^d d D d'|d"
    # after a respelled note the carried accidental is written out where needed
    out = moved("__c c|c", 1)
    assert out == "_c _c|d"
    text = tune("__c c =c c ^^B B|c c", "C")
    assert oracle(text, 1) == "ok"


def test_inline_and_body_key_changes():
    assert moved("C [K:G] F f|", 2) == "D [K:A] G g|"
    assert moved("C D|\nK:Am\nA c|", 3) == "E F|\nK:Cm\nc e|"
    text = tune("^f f [K:G] f F|\nK:Eb\nB e _d =B|", "C")
    for k in SHIFTS:
        assert oracle(text, k) == "ok"


def test_explicit_key_signature_is_respected():
    text = tune("C D E F G A B c|", "D exp ^f")
    for k in SHIFTS:
        assert oracle(text, k) == "ok"


def test_chords_grace_notes_and_tuplets():
    assert moved("[CEG]2 {^f}g (3ABc|", 2) == "[DFA]2 {^g}a (3Bcd|"
    assert oracle(tune("[CEG]2 {^f}g (3ABc [^F_B]|", "C"), 3) == "ok"


# -- what stays untouched --------------------------------------------------------------------------


def test_chord_symbols_move_annotations_do_not():
    assert (
        moved('"Am7/G"A "^Allegro"B "_D.C."c "@C"d|', 3) == '"Cm7/Bb"c "^Allegro"d "_D.C."e "@C"f|'
    )
    assert moved('"C#dim"c "G/B"G "G D"G|', 1) == '"Ddim"d "Ab/C"A "Ab Eb"A|'
    assert moved('"D7"d|', 2, "G") == '"E7"e|'


def test_fields_comments_decorations_rests_and_lyrics_are_kept():
    body = (
        "!trill!C +fermata+D ~E .F z2 x Z2|% A B C comment\n"
        "w: A-ve Ma-ri-a\n"
        "W: Be good\n"
        "T:Second part C D\n"
        "%%MIDI program 1\n"
        "[M:3/4][L:1/8][Q:1/4=120] C|"
    )
    out = moved(body, 2).split("\n")
    assert out[0] == "!trill!D +fermata+E ~F .G z2 x Z2|% A B C comment"
    assert out[1:5] == body.split("\n")[1:5]
    assert out[5] == "[M:3/4][L:1/8][Q:1/4=120] D|"
    header = "X:7\nT:Title C D\nC:Composer\nQ:1/4=100\nM:6/8\nL:1/8\n"
    text = header + "K:G\nGAB|\n\nFree text after the tune: A B C"
    out = transpose_abc(text, 2)
    assert out == header + "K:A\nABc|\n\nFree text after the tune: A B C"


def test_zero_shift_is_identity():
    text = tune('"Am"A ^c =c|', "D Mixolydian")
    assert transpose_abc(text, 0) == text


# -- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        tune("C D E|", "none"),
        tune("A B c|", "HP"),
        tune("A B c|", "Hp"),
        tune("A B c|", "Bn"),
        "X:1\nT:no key\nC D E|",
        tune("^/c d|", "C"),  # microtonal accidental
        tune("c'''''''|", "C"),  # leaves the MIDI range
        tune("C D|\nK:none\nC D|", "C"),
    ],
)
def test_refusals(text):
    assert transpose_abc(text, 2) is None


# -- real tunes ------------------------------------------------------------------------------------


def test_edge_tunes_transpose_exactly():
    # the smallest music21 tunes, and MidiTok's ABC test files when the shared corpora are there
    edge = sorted((CORPORA / "abc" / "edge").glob("*.abc"))
    texts = [t.text for p in [*derived_corpus().abc_files, *edge] for t in split_tunes(p.read_text())]
    rate, results = sweep(texts)
    assert rate == 1.0, {s: v[:5] for s, v in results.items() if s not in ("ok", "unread")}


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_real_sample_transposes_exactly(collection):
    texts = list(real_tunes(collection))
    sample = random.Random(20240601).sample(texts, min(150, len(texts)))
    rate, results = sweep(sample)
    assert rate >= 0.99, {s: v[:5] for s, v in results.items() if s not in ("ok", "unread")}


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_text_transposer_keeps_the_layout(collection):
    for text in real_tunes(collection)[:100]:
        out = transpose_abc(text, 2)
        assert out is not None
        pairs = list(zip(out.split("\n"), text.split("\n"), strict=True))
        for new, old in pairs:
            if re.match(r"[A-JL-Za-z]:|%", old):
                assert new == old
            else:  # only notes, chord symbols and the key move
                assert re.sub(r"[A-Ga-g,'^_=#]", "", new) == re.sub(r"[A-Ga-g,'^_=#]", "", old)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(min_value=0, max_value=10**6), k=st.integers(-40, 40))
def test_random_shifts_of_real_tunes_never_raise(index, k):
    texts = [t for c in COLLECTIONS for t in real_tunes(c)]
    text = texts[index % len(texts)]
    out = transpose_abc(text, k)
    assert out is None or isinstance(out, str)
    if k == 0:  # no shift is the text itself, even in a key the transposer cannot move (K:Hp)
        assert out == text or "K:" not in text


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="XKTCDEFGABcdefgabz,'^_=|[]{}\"!+%:/23 \n#mMjorix", max_size=80),
       k=st.integers(-13, 13))  # fmt: skip
def test_garbage_never_raises(text, k):
    out = transpose_abc(text, k)
    assert out is None or isinstance(out, str)


@pytest.mark.slow
@pytest.mark.parametrize("collection", COLLECTIONS)
def test_whole_collection_transposes_exactly(collection):
    rate, results = sweep(list(real_tunes(collection)))
    assert rate >= 0.99, {s: v[:10] for s, v in results.items() if s not in ("ok", "unread")}


@pytest.mark.slow
def test_music21_sample_transposes_exactly():
    texts = list(real_tunes("music21"))
    sample = random.Random(7).sample(texts, min(300, len(texts)))
    rate, results = sweep(sample)
    assert rate >= 0.99, {s: v[:10] for s, v in results.items() if s not in ("ok", "unread")}
