"""Rendering: MIDI files, piano-roll PNGs, WAV audio (additive synth and SoundFont)."""

from __future__ import annotations

import struct
import wave

import numpy as np
import pytest
from conftest import corpus_path
from PIL import Image
from symusic import Note, Score, Tempo, Track

from musicml.pianorolls.grid import to_pianoroll
from musicml.render import find_soundfont, render_png, render_wav, write_midi


def pop909(name: str = "001.mid") -> Score:
    return Score(corpus_path("midi", "pop909") / name)


def small_score(seconds_per_quarter: float = 0.5) -> Score:
    """Two bars at 120 QPM: a piano line and a drum beat (4 s of music)."""
    s = Score(480)
    s.tempos.append(Tempo(0, qpm=60 / seconds_per_quarter))
    piano, drums = Track("piano", 0, False), Track("drums", 0, True)
    for k, p in enumerate([60, 64, 67, 72, 67, 64, 60, 55]):
        piano.notes.append(Note(k * 480, 480, p, 40 + 10 * k))
    for k in range(16):
        drums.notes.append(Note(k * 240, 60, (36, 42, 38, 42)[k % 4], 100))
    s.tracks.extend([piano, drums])
    return s


def no_temp_files(folder) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


def read_wav(path):
    with wave.open(str(path), "rb") as w:
        frames = w.readframes(w.getnframes())
        data = np.frombuffer(frames, dtype="<i2").reshape(-1, w.getnchannels())
        return w.getnchannels(), w.getsampwidth(), w.getframerate(), data


# ------------------------------------------------------------------------------ MIDI


def test_write_midi(tmp_path):
    score = pop909()
    meta = write_midi(score, tmp_path / "out" / "a.mid")
    back = Score(tmp_path / "out" / "a.mid")
    assert back.note_num() == score.note_num() == meta["notes"]
    assert meta["tracks"] == 3 and meta["bytes"] > 1000
    assert 150 < meta["duration_seconds"] < 250
    assert no_temp_files(tmp_path / "out")


# ------------------------------------------------------------------------------ PNG


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_png_of_a_score(tmp_path):
    out = tmp_path / "a.png"
    meta = render_png(pop909(), out, title="POP909 001")
    assert png_size(out) == (1200, 480) == (meta["width"], meta["height"])
    assert meta["notes"] == 1556 and meta["tracks"] == 3 and meta["bars"] > 100
    img = np.asarray(Image.open(out).convert("RGB"))
    colours = {tuple(c) for c in img.reshape(-1, 3)[::97]}
    assert len(colours) > 20  # not blank: notes in several colours, axes, labels
    assert no_temp_files(tmp_path)


def test_png_sizes_bars_drums_roll_and_empty(tmp_path):
    meta = render_png(small_score(), tmp_path / "b.png", width=640, height=360, dpi=80)
    assert png_size(tmp_path / "b.png") == (640, 360) and meta["tracks"] == 2
    meta = render_png(pop909(), tmp_path / "c.png", max_bars=8)
    assert meta["bars"] == 8 and 0 < meta["notes"] < 200
    meta = render_png(to_pianoroll(pop909("002.mid")), tmp_path / "d.png", title="roll")
    assert png_size(tmp_path / "d.png") == (1200, 480) and meta["notes"] > 100
    meta = render_png(Score(480), tmp_path / "e.png")
    assert png_size(tmp_path / "e.png") == (1200, 480) and meta["notes"] == 0


# ------------------------------------------------------------------------------ WAV


def test_wav_additive(tmp_path):
    out = tmp_path / "a.wav"
    meta = render_wav(small_score(), out, synth="additive")
    channels, width, rate, data = read_wav(out)
    assert (channels, width, rate) == (1, 2, 22050)
    assert meta["synth"] == "additive" and meta["channels"] == 1 and not meta["truncated"]
    # 4 s of music and a short release tail
    assert meta["score_seconds"] == pytest.approx(4.0, abs=0.01)
    assert 4.0 <= len(data) / rate == meta["duration_seconds"] <= 4.5
    x = data[:, 0].astype(np.float64) / 32768
    assert np.sqrt(np.mean(x**2)) > 0.02 and np.abs(x).max() <= 0.91
    # every half second has sound (notes and drums all the way through)
    assert all(np.abs(x[i : i + 11025]).max() > 0.01 for i in range(0, 4 * 22050, 11025))
    assert meta["notes"] == 24
    # deterministic: the same score gives the same bytes
    render_wav(small_score(), tmp_path / "b.wav", synth="additive")
    assert (tmp_path / "b.wav").read_bytes() == out.read_bytes()
    assert no_temp_files(tmp_path)


def test_wav_is_capped_and_handles_rolls_and_empty(tmp_path):
    meta = render_wav(
        pop909(), tmp_path / "a.wav", sample_rate=8000, max_seconds=5, synth="additive"
    )
    channels, _, rate, data = read_wav(tmp_path / "a.wav")
    assert (
        rate == 8000
        and len(data) == 5 * 8000
        and meta["truncated"]
        and meta["duration_seconds"] == 5
    )
    meta = render_wav(to_pianoroll(small_score()), tmp_path / "b.wav", synth="additive")
    assert meta["notes"] > 0 and meta["rms"] > 0.01
    meta = render_wav(Score(480), tmp_path / "c.wav", synth="additive")
    assert meta["notes"] == 0 and read_wav(tmp_path / "c.wav")[3].any() == np.False_


# --------------------------------------------------------------------- SoundFont path


def tiny_sf2(path, sr: int = 22050) -> None:
    """A minimal valid SoundFont 2: one preset, one looped 441 Hz sine sample."""

    def chunk(cid: bytes, data: bytes) -> bytes:
        return cid + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)

    def name(s: str) -> bytes:
        return s.encode().ljust(20, b"\0")

    n = 1000
    sample = (np.sin(2 * np.pi * 441 * np.arange(n) / sr) * 20000).astype("<i2").tobytes()
    info = chunk(b"ifil", struct.pack("<HH", 2, 1)) + chunk(b"isng", b"EMU8000\0")
    info += chunk(b"INAM", b"tiny\0\0")
    sdta = chunk(b"smpl", sample + b"\0" * 92)  # 46 zero samples must follow a sample
    pdta = b"".join(
        chunk(cid, data)
        for cid, data in [
            (
                b"phdr",
                name("sine")
                + struct.pack("<HHHIII", 0, 0, 0, 0, 0, 0)
                + name("EOP")
                + struct.pack("<HHHIII", 0, 0, 1, 0, 0, 0),
            ),
            (b"pbag", struct.pack("<HHHH", 0, 0, 1, 0)),
            (b"pmod", b"\0" * 10),
            (b"pgen", struct.pack("<HHHH", 41, 0, 0, 0)),  # instrument 0
            (b"inst", name("sine") + struct.pack("<H", 0) + name("EOI") + struct.pack("<H", 1)),
            (b"ibag", struct.pack("<HHHH", 0, 0, 2, 0)),
            (b"imod", b"\0" * 10),
            (b"igen", struct.pack("<HHHHHH", 54, 1, 53, 0, 0, 0)),  # loop, sample 0
            (
                b"shdr",
                name("sine")
                + struct.pack("<IIIIIBbHH", 0, n, 500, 1000, sr, 69, 0, 0, 1)
                + name("EOS")
                + struct.pack("<IIIIIBbHH", 0, 0, 0, 0, 0, 0, 0, 0, 0),
            ),
        ]
    )
    body = b"sfbk" + b"".join(
        chunk(b"LIST", kind + data)
        for kind, data in [(b"INFO", info), (b"sdta", sdta), (b"pdta", pdta)]
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_find_soundfont(tmp_path, monkeypatch):
    sf = tmp_path / "tiny.sf2"
    tiny_sf2(sf)
    assert find_soundfont(sf) == sf
    with pytest.raises(FileNotFoundError):
        find_soundfont(tmp_path / "missing.sf2")
    monkeypatch.setenv("MUSICML_SOUNDFONT", str(sf))
    assert find_soundfont() == sf
    # a missing $MUSICML_SOUNDFONT falls through to the system paths (usually none)
    monkeypatch.setenv("MUSICML_SOUNDFONT", str(tmp_path / "missing.sf2"))
    found = find_soundfont()
    if found is None:
        with pytest.raises(FileNotFoundError, match="no SoundFont"):
            render_wav(small_score(), tmp_path / "x.wav", synth="soundfont")
        assert render_wav(small_score(), tmp_path / "y.wav")["synth"] == "additive"
    else:
        assert found.is_file()


def test_wav_soundfont(tmp_path):
    """symusic's Synthesizer with a real SoundFont when installed, else a generated tiny one."""
    sf = find_soundfont()
    if sf is None:
        sf = tmp_path / "tiny.sf2"
        tiny_sf2(sf)
    out = tmp_path / "sf.wav"
    try:
        meta = render_wav(small_score(), out, soundfont=sf, synth="soundfont", max_seconds=3)
    except TypeError as exc:  # symusic 0.6.0: render() cannot convert its Eigen result
        pytest.skip(f"symusic's Synthesizer cannot return audio in this build: {exc}")
    channels, width, rate, data = read_wav(out)
    assert (channels, width, rate) == (2, 2, 22050) and meta["synth"] == "soundfont"
    assert len(data) <= 3 * 22050 and np.abs(data).max() > 300


def test_wav_auto_falls_back_when_the_soundfont_fails(tmp_path):
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF\0\0\0\0junk")
    try:
        meta = render_wav(small_score(), tmp_path / "a.wav", soundfont=bad)
    except BaseException as exc:  # the synth build may abort on a corrupt file instead
        pytest.skip(f"symusic rejected the corrupt SoundFont with {type(exc).__name__}")
    assert meta["synth"] == "additive" and meta["soundfont_error"]
    assert read_wav(tmp_path / "a.wav")[0] == 1
