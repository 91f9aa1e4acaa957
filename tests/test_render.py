"""Rendering: MIDI files, piano-roll PNGs, WAV audio (additive synth and SoundFont)."""

from __future__ import annotations

import logging
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import derived_corpus
from PIL import Image
from symusic import Note, Score, Tempo, Track

from musicml import render
from musicml.pianorolls.grid import to_pianoroll
from musicml.render import (
    SOUNDFONT_TAIL,
    SoundFontError,
    _fluidsynth_api,
    find_soundfont,
    render_png,
    render_wav,
    write_midi,
)


def real(i: int = 0) -> Score:
    """A real three-voice tune (music21's corpus through symusic), 38 s long."""
    return Score(str(derived_corpus().multitrack[i]))


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
    score = real()
    meta = write_midi(score, tmp_path / "out" / "a.mid")
    back = Score(tmp_path / "out" / "a.mid")
    assert back.note_num() == score.note_num() == meta["notes"]
    assert meta["tracks"] == 3 and meta["bytes"] > 1000
    assert abs(meta["duration_seconds"] - score.to("second").end()) < 1
    assert no_temp_files(tmp_path / "out")


# ------------------------------------------------------------------------------ PNG


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_png_of_a_score(tmp_path):
    out = tmp_path / "a.png"
    score = real()
    meta = render_png(score, out, title="Lord Falconberg's March")
    assert png_size(out) == (1200, 480) == (meta["width"], meta["height"])
    assert meta["notes"] == score.note_num() and meta["tracks"] == 3 and meta["bars"] > 20
    img = np.asarray(Image.open(out).convert("RGB"))
    colours = {tuple(c) for c in img.reshape(-1, 3)[::97]}
    assert len(colours) > 20  # not blank: notes in several colours, axes, labels
    assert no_temp_files(tmp_path)


def test_png_sizes_bars_drums_roll_and_empty(tmp_path):
    meta = render_png(small_score(), tmp_path / "b.png", width=640, height=360, dpi=80)
    assert png_size(tmp_path / "b.png") == (640, 360) and meta["tracks"] == 2
    meta = render_png(real(), tmp_path / "c.png", max_bars=8)
    assert meta["bars"] == 8 and 0 < meta["notes"] < 200
    meta = render_png(to_pianoroll(real(1)), tmp_path / "d.png", title="roll")
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
        real(), tmp_path / "a.wav", sample_rate=8000, max_seconds=5, synth="additive"
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


GM_SOUNDFONT_MISSING = (
    "no General MIDI SoundFont installed: `apt-get install fluid-soundfont-gm` "
    "(or set MUSICML_SOUNDFONT to an .sf2 file)"
)


def fluidsynth_or_skip() -> None:
    try:
        _fluidsynth_api()
    except SoundFontError as exc:
        pytest.skip(f"{exc}")


@pytest.fixture
def gm_soundfont(monkeypatch):
    """The system's General MIDI SoundFont (``$MUSICML_SOUNDFONT`` ignored), else skip."""
    monkeypatch.delenv("MUSICML_SOUNDFONT", raising=False)
    sf = find_soundfont()
    if sf is None:
        pytest.skip(GM_SOUNDFONT_MISSING)
    fluidsynth_or_skip()
    return sf


def one_note(program: int, pitch: int, seconds: float = 1.0) -> Score:
    s = Score(480)
    s.tempos.append(Tempo(0, qpm=120))
    track = Track("one", program, False)
    track.notes.append(Note(0, int(seconds * 960), pitch, 100))
    s.tracks.append(track)
    return s


def dominant_hz(mono: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.fft.rfftfreq(len(mono), 1 / rate)[spectrum.argmax()])


def assert_soundfont_wav(path, meta, score_seconds: float) -> np.ndarray:
    """Stereo 16-bit 22.05 kHz, as long as the score plus the release tail, with sound."""
    channels, width, rate, data = read_wav(path)
    assert (channels, width, rate) == (2, 2, 22050)
    assert meta["synth"] == "soundfont" and meta["soundfont_error"] is None
    assert meta["score_seconds"] == pytest.approx(score_seconds, abs=0.01)
    assert len(data) / rate == pytest.approx(score_seconds + SOUNDFONT_TAIL, abs=1 / rate)
    assert meta["duration_seconds"] == pytest.approx(len(data) / rate, abs=1e-3)
    x = data.astype(np.float64) / 32768
    assert np.sqrt(np.mean(x**2)) > 0.02 and np.abs(x).max() == pytest.approx(0.9, abs=0.01)
    return x


def test_find_soundfont(tmp_path, monkeypatch, caplog):
    sf = tmp_path / "tiny.sf2"
    tiny_sf2(sf)
    assert find_soundfont(sf) == sf
    with pytest.raises(FileNotFoundError, match="missing.sf2"):
        find_soundfont(tmp_path / "missing.sf2")
    monkeypatch.setenv("MUSICML_SOUNDFONT", str(sf))
    assert find_soundfont() == sf
    # the override names a missing file: no SoundFont at all (not the system's), said in the log
    monkeypatch.setenv("MUSICML_SOUNDFONT", str(tmp_path / "missing.sf2"))
    with caplog.at_level(logging.WARNING, logger="musicml.render"):
        assert find_soundfont() is None
    assert "MUSICML_SOUNDFONT" in caplog.text and "missing.sf2" in caplog.text


def test_wav_falls_back_to_additive_without_a_soundfont(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MUSICML_SOUNDFONT", str(tmp_path / "missing.sf2"))
    with caplog.at_level(logging.WARNING, logger="musicml.render"):
        meta = render_wav(small_score(), tmp_path / "a.wav")
    assert meta["synth"] == "additive" and meta["soundfont"] is None
    assert "apt-get install fluid-soundfont-gm" in meta["soundfont_error"]
    assert "additive synthesizer" in caplog.text and "a.wav" in caplog.text
    assert read_wav(tmp_path / "a.wav")[0] == 1 and meta["rms"] > 0.01
    with pytest.raises(FileNotFoundError, match="fluid-soundfont-gm"):
        render_wav(small_score(), tmp_path / "b.wav", synth="soundfont")
    assert not (tmp_path / "b.wav").exists() and no_temp_files(tmp_path)
    with pytest.raises(ValueError, match="synth must be"):
        render_wav(small_score(), tmp_path / "c.wav", synth="timidity")


def test_wav_falls_back_without_the_fluidsynth_library(tmp_path, monkeypatch, caplog):
    def missing():
        raise SoundFontError("FluidSynth is not available (no library)")

    monkeypatch.setattr(render, "_fluidsynth_api", missing)
    sf = tmp_path / "tiny.sf2"
    tiny_sf2(sf)
    with caplog.at_level(logging.WARNING, logger="musicml.render"):
        meta = render_wav(small_score(), tmp_path / "a.wav", soundfont=sf)
    assert meta["synth"] == "additive" and "FluidSynth is not available" in meta["soundfont_error"]
    assert "FluidSynth is not available" in caplog.text
    with pytest.raises(SoundFontError):
        render_wav(small_score(), tmp_path / "b.wav", soundfont=sf, synth="soundfont")


def test_wav_soundfont_real_music(tmp_path, gm_soundfont, derived):
    """FluidSynth and the system's GM SoundFont on a music21 tune: flute, violin, bass, drums."""
    band = Score(str(derived.band))
    seconds = band.to("second").end()
    meta = render_wav(band, tmp_path / "band.wav")
    assert meta["soundfont"] == str(gm_soundfont) and not meta["truncated"]
    assert meta["notes"] == band.note_num() and meta["channels"] == 2
    x = assert_soundfont_wav(tmp_path / "band.wav", meta, seconds)
    # sound all the way through the score (drums on every melody onset), and a decaying tail
    windows = [x[i : i + 11025] for i in range(0, int(seconds * 22050) - 11025, 11025)]
    assert sum(np.sqrt(np.mean(w**2)) > 0.005 for w in windows) >= 0.9 * len(windows)
    tail = x[-int(0.25 * 22050) :]
    assert np.sqrt(np.mean(tail**2)) < np.sqrt(np.mean(x**2))
    assert no_temp_files(tmp_path)


@pytest.mark.parametrize(("program", "pitch"), [(0, 69), (0, 60), (73, 81), (40, 57)])
def test_wav_soundfont_plays_the_right_pitch(tmp_path, gm_soundfont, program, pitch):
    """One note (piano, flute, violin): the loudest frequency is a harmonic of the note's."""
    meta = render_wav(one_note(program, pitch), tmp_path / "n.wav")
    x = assert_soundfont_wav(tmp_path / "n.wav", meta, 1.0)
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    ratio = dominant_hz(x[:22050].mean(axis=1), 22050) / f0
    assert round(ratio) >= 1 and abs(ratio - round(ratio)) < 0.03 * round(ratio)


def test_wav_soundfont_capped(tmp_path, gm_soundfont):
    score = real()
    meta = render_wav(score, tmp_path / "p.wav", max_seconds=12)
    channels, _, rate, data = read_wav(tmp_path / "p.wav")
    assert channels == 2 and len(data) == 12 * rate and meta["truncated"]
    starts = np.concatenate([t.notes.numpy()["time"] for t in score.to("second").tracks])
    assert meta["notes"] == int((starts < 12).sum()) and 0 < meta["notes"] < score.note_num()
    assert meta["rms"] > 0.01


def test_wav_soundfont_tiny_generated_sf2(tmp_path):
    """Any valid SoundFont works, not only a GM one: a generated one-sample 441 Hz SoundFont."""
    fluidsynth_or_skip()
    sf = tmp_path / "tiny.sf2"
    tiny_sf2(sf)
    meta = render_wav(one_note(0, 69, 2.0), tmp_path / "sf.wav", soundfont=sf, synth="soundfont")
    x = assert_soundfont_wav(tmp_path / "sf.wav", meta, 2.0)
    assert dominant_hz(x[:22050].mean(axis=1), 22050) == pytest.approx(441, abs=3)
    # a piano roll plays too; an empty score is the release tail's length of silence
    meta = render_wav(to_pianoroll(small_score()), tmp_path / "r.wav", soundfont=sf)
    assert meta["synth"] == "soundfont" and meta["notes"] > 0 and meta["rms"] > 0.01
    meta = render_wav(Score(480), tmp_path / "e.wav", soundfont=sf, synth="soundfont")
    channels, _, rate, data = read_wav(tmp_path / "e.wav")
    assert meta["notes"] == 0 and channels == 2 and len(data) == SOUNDFONT_TAIL * rate
    assert not data.any()


@pytest.mark.parametrize(
    "content",
    [b"", b"RIFF\0\0\0\0junk", b"RIFF\x10\0\0\0sfbkLIST", "truncated"],
    ids=["empty", "junk", "short-header", "truncated"],
)
def test_wav_corrupt_soundfont_falls_back_or_raises(tmp_path, content, caplog):
    fluidsynth_or_skip()
    bad = tmp_path / "bad.sf2"
    if content == "truncated":
        tiny_sf2(tmp_path / "ok.sf2")
        content = (tmp_path / "ok.sf2").read_bytes()[:300]
    bad.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="musicml.render"):
        meta = render_wav(small_score(), tmp_path / "a.wav", soundfont=bad)
    assert meta["synth"] == "additive" and "cannot load the SoundFont" in meta["soundfont_error"]
    assert "bad.sf2" in caplog.text
    assert read_wav(tmp_path / "a.wav")[0] == 1
    with pytest.raises(SoundFontError, match="cannot load the SoundFont"):
        render_wav(small_score(), tmp_path / "b.wav", soundfont=bad, synth="soundfont")


def test_wav_soundfont_refuses_an_unsupported_sample_rate(tmp_path):
    fluidsynth_or_skip()
    sf = tmp_path / "tiny.sf2"
    tiny_sf2(sf)
    with pytest.raises(SoundFontError, match="4000 Hz"):
        render_wav(
            small_score(), tmp_path / "a.wav", soundfont=sf, synth="soundfont", sample_rate=4000
        )
    meta = render_wav(small_score(), tmp_path / "b.wav", soundfont=sf, sample_rate=4000)
    assert meta["synth"] == "additive" and read_wav(tmp_path / "b.wav")[2] == 4000


# ------------------------------------------------------------------ samples (text -> media)


def test_abc_sample_text_becomes_midi_png_and_wav(tmp_path, gm_soundfont, derived):
    """A char model's ABC sample goes text -> symusic Score -> MIDI, PNG and SoundFont WAV."""
    from musicml.generate import samples

    text = derived.abc_files[0].read_text(encoding="utf-8")
    ok, problems, score, _ = samples.check("abc", text, derived.abc_files[0].name)
    assert ok and score is not None and score.note_num() >= 40, problems
    audio: dict = {}
    files = samples.render(score, tmp_path / "abc_p0_0", "abc sample", audio=audio)
    assert set(files) == {"midi", "png", "wav"}
    assert Score(files["midi"]).note_num() == score.note_num()
    assert png_size(Path(files["png"])) == (1200, 480)
    assert audio["synth"] == "soundfont" and audio["path"] == files["wav"]
    assert_soundfont_wav(files["wav"], audio, min(score.to("second").end(), 60.0))


def test_char_lstm_abc_samples_get_midi_png_and_audio(tmp_path, derived, monkeypatch):
    """The char-model path end to end: an LSTM continues a real tune; the ABC sample becomes
    MIDI, a piano roll and a WAV, and says which renderer made the audio."""
    import json

    import torch

    from musicml.generate import samples
    from musicml.models import build_model, model_config
    from musicml.tokenizers import train_codec

    monkeypatch.delenv("MUSICML_SOUNDFONT", raising=False)
    tunes = [p.read_text(encoding="utf-8") for p in derived.abc_files[:3]]
    codec = train_codec(tunes, kind="char")
    torch.manual_seed(0)
    model = build_model("lstm", model_config("lstm", codec.vocab_size, 64, embed_dim=16, hidden_dim=32))
    out = samples.generate_samples(model, codec, ["abc"], tmp_path, prompts={"abc": [tunes[0]]},
                                   per_prompt=1, max_new_tokens=2)
    (sample,) = out
    assert sample.notes >= 40 and set(sample.files) == {"text", "midi", "png", "wav"}
    try:
        _fluidsynth_api()
        expected = "soundfont" if find_soundfont() else "additive"
    except SoundFontError:
        expected = "additive"
    assert sample.audio["synth"] == expected == samples.audio_renderer(out)
    assert read_wav(sample.files["wav"])[0] == (2 if expected == "soundfont" else 1)
    saved = json.loads((tmp_path / "samples.json").read_text())
    assert saved[0]["audio"]["synth"] == expected and saved[0]["audio"]["rms"] > 0.005


def test_audio_renderer_of_a_run():
    from musicml.generate.samples import Sample, audio_renderer

    def sample(synth: str | None) -> Sample:
        return Sample("s", "abc", "", "", 0, True, audio={"synth": synth} if synth else {})

    assert audio_renderer([sample("soundfont"), sample(None)]) == "soundfont"
    assert audio_renderer([sample("soundfont"), sample("additive")]) == "additive"
    assert audio_renderer([sample(None)]) is None and audio_renderer([]) is None
