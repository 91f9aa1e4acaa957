"""Rendering scores for people: MIDI files, piano-roll pictures (PNG) and audio (WAV).

Every function writes atomically (a temporary file in the target folder, then ``os.replace``)
and returns a metadata dict for a UI (Dagster materialization metadata, MLflow artifacts).
``render_png`` and ``render_wav`` take a ``symusic.Score`` or a piano roll from
:func:`musicml.pianorolls.grid.to_pianoroll` (``(128, T)`` or ``(tracks, 128, T)``).

Audio is FluidSynth (through pyfluidsynth and the system's FluidSynth library, Debian's
``libfluidsynth3``) playing the score's MIDI with a General MIDI SoundFont, found in this order:
the ``soundfont`` argument, the ``MUSICML_SOUNDFONT`` environment variable, the usual system
paths (:data:`SOUNDFONT_PATHS`; Debian's ``fluid-soundfont-gm`` installs the first) and a
SoundFont symusic already downloaded. Nothing is downloaded. (symusic's own ``Synthesizer``
cannot return audio in symusic 0.6.0, and 0.5.8/0.5.9, whose synthesizer works, cannot write
ABC.) Without a SoundFont or the library, a small offline additive synthesizer renders the score
(see :func:`additive_synth`) and a warning says why. WAV files are 16-bit PCM written with the
standard library's ``wave`` module: stereo from the SoundFont, mono from the additive synth.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import wave
from pathlib import Path

import numpy as np
from symusic import Score, TimeUnit

from musicml import env
from musicml.formats.native import captured_native_output
from musicml.lake import atomic_path

__all__ = [
    "SOUNDFONT_PATHS",
    "SOUNDFONT_TAIL",
    "SoundFontError",
    "additive_synth",
    "find_soundfont",
    "render_png",
    "render_wav",
    "write_midi",
]

SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/local/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
)
SOUNDFONT_TAIL = 1.0  # seconds rendered after the score's end: SoundFont releases and reverb
_PEAK = 0.9  # SoundFont renders are scaled to this peak
_BLOCK = 8192  # frames per FluidSynth write

log = logging.getLogger(__name__)


class SoundFontError(RuntimeError):
    """The SoundFont renderer cannot run: no FluidSynth library, or input it refuses."""


def _atomic(path: str | os.PathLike):
    """A temporary path beside ``path``, renamed over it on success (:func:`musicml.lake.atomic_path`)."""
    return atomic_path(Path(path))


def _as_score(obj, grid: int) -> Score:
    if isinstance(obj, np.ndarray):
        from musicml.pianorolls.grid import from_pianoroll

        return from_pianoroll(obj, grid=grid)
    if obj.ttype != TimeUnit.tick:
        return obj.to("tick")
    return obj


def _seconds(score: Score) -> float:
    return float(score.to("second").end()) if score.note_num() else 0.0


def write_midi(score: Score, path: str | os.PathLike) -> dict:
    """Write ``score`` as a standard MIDI file; returns path, bytes, tracks, notes, seconds."""
    with _atomic(path) as tmp:
        score.dump_midi(str(tmp))
    return {
        "path": str(path),
        "bytes": os.path.getsize(path),
        "tracks": len(score.tracks),
        "notes": int(score.note_num()),
        "tpq": int(score.tpq),
        "duration_seconds": round(_seconds(score), 3),
    }


# ------------------------------------------------------------------------------ PNG


def _bar_axis(score: Score) -> np.ndarray:
    """Downbeat ticks from the time signatures (4/4 before the first), past the score's end."""
    end = float(max(score.end(), 1))
    sigs = sorted(
        (int(t.time), int(t.numerator), int(t.denominator)) for t in score.time_signatures
    )
    sigs = [s for s in sigs if s[1] > 0 and s[2] > 0]
    if not sigs or sigs[0][0] > 0:
        sigs.insert(0, (0, 4, 4))
    beats: list[np.ndarray] = []
    for i, (start, num, den) in enumerate(sigs):
        if start > end:
            break
        stop = sigs[i + 1][0] if i + 1 < len(sigs) and sigs[i + 1][0] <= end else None
        bar = max(num * 4.0 * score.tpq / den, 1.0)
        if stop is None:
            beats.append(start + bar * np.arange(int((end - start) // bar) + 2))
            break
        beats.append(start + bar * np.arange(max(1, int(np.ceil((stop - start) / bar)))))
    return np.concatenate(beats)


def render_png(
    score_or_roll,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    grid: int = 4,
    width: int = 1200,
    height: int = 480,
    dpi: int = 100,
    max_bars: int | None = None,
) -> dict:
    """A piano-roll picture: time in bars on x, pitch on y (C labels), one colour per track.

    Note opacity follows velocity; drum tracks are drawn in grey. The image is exactly
    ``width`` x ``height`` pixels; ``max_bars`` shows only the first bars of a long score.
    Returns path, width, height, bars (shown), notes (drawn), tracks, pitch range, seconds.
    """
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from musicml.formats.midi.text import pitch_name

    score = _as_score(score_or_roll, grid)
    view_end = max(score.end(), 1)
    if max_bars is not None:
        beats = _bar_axis(score)
        if len(beats) > max_bars and beats[max_bars] < view_end:
            view_end = int(beats[max_bars])
            score = score.clip(0, view_end, clip_end=False)
    downbeats = _bar_axis(score)
    bar_index = np.arange(len(downbeats), dtype=np.float64) + 1.0  # bars numbered from 1

    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    palette = [
        "#1f77b4",
        "#d62728",
        "#2ca02c",
        "#ff7f0e",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#17becf",
        "#bcbd22",
        "#7f7f7f",
    ]
    handles = []
    lo, hi = 127, 0
    n_notes = 0
    colour_i = 0
    for i, track in enumerate(score.tracks):
        if not track.note_num():
            continue
        a = track.notes.numpy()
        x0 = np.interp(a["time"], downbeats, bar_index)
        x1 = np.interp(a["time"] + np.maximum(a["duration"], 1), downbeats, bar_index)
        x1 = np.maximum(x1, x0 + 0.02)
        p = a["pitch"].astype(np.float64)
        verts = np.stack(
            [
                np.stack([x0, p - 0.42], 1),
                np.stack([x0, p + 0.42], 1),
                np.stack([x1, p + 0.42], 1),
                np.stack([x1, p - 0.42], 1),
            ],
            1,
        )
        colour = "#555555" if track.is_drum else palette[colour_i % len(palette)]
        if not track.is_drum:
            colour_i += 1
        rgba = np.tile(np.array(to_rgba(colour)), (len(p), 1))
        rgba[:, 3] = 0.35 + 0.65 * np.clip(a["velocity"], 1, 127) / 127.0
        ax.add_collection(PolyCollection(verts, facecolors=rgba, edgecolors="none"))
        lo, hi = min(lo, int(p.min())), max(hi, int(p.max()))
        n_notes += len(p)
        label = track.name.strip() or f"track {i}"
        label += " (drums)" if track.is_drum else f" (program {track.program})"
        handles.append(Patch(color=colour, label=label))

    last_bar = float(np.interp(view_end, downbeats, bar_index))
    if n_notes == 0:
        lo, hi = 48, 72
        ax.text(0.5, 0.5, "no notes", transform=ax.transAxes, ha="center", va="center")
    lo, hi = max(0, lo - 2), min(127, hi + 2)
    ax.set_xlim(1, max(last_bar, 2.0))
    ax.set_ylim(lo - 0.5, hi + 0.5)
    n_bars = int(np.ceil(last_bar - 1))
    every = 1 if n_bars <= 48 else 4 if n_bars <= 192 else 16
    for b in range(1, n_bars + 2, every):
        ax.axvline(b, color="#dddddd", lw=0.6, zorder=0)
    cs = [p for p in range(0, 128, 12) if lo <= p <= hi]
    ax.set_yticks(cs, [pitch_name(p) for p in cs])
    for p in cs:
        ax.axhline(p - 0.5, color="#eeeeee", lw=0.6, zorder=0)
    ax.set_xlabel("bar")
    ax.set_ylabel("pitch")
    if title:
        ax.set_title(title)
    if handles:
        ax.legend(handles=handles[:12], loc="upper right", fontsize="x-small", framealpha=0.8)
    with _atomic(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return {
        "path": str(path),
        "width": width,
        "height": height,
        "bars": n_bars,
        "notes": n_notes,
        "tracks": len(handles),
        "pitch_range": [lo, hi],
        "duration_seconds": round(_seconds(score), 3),
    }


# ------------------------------------------------------------------------------ WAV

# GM program family (program // 8) -> harmonic amplitudes, attack, decay, sustain, release (s)
_TIMBRES: dict[int, tuple[tuple[float, ...], float, float, float, float]] = {
    0: ((1.0, 0.45, 0.22, 0.12, 0.06), 0.005, 0.6, 0.25, 0.2),  # piano
    1: ((1.0, 0.2, 0.5, 0.1, 0.3), 0.002, 0.3, 0.1, 0.2),  # chromatic percussion
    2: ((1.0, 0.8, 0.6, 0.4, 0.3), 0.01, 0.05, 0.9, 0.08),  # organ
    3: ((1.0, 0.5, 0.3, 0.15), 0.003, 0.4, 0.2, 0.15),  # guitar
    4: ((1.0, 0.35, 0.1), 0.005, 0.3, 0.5, 0.1),  # bass
    5: ((1.0, 0.6, 0.4, 0.3, 0.2, 0.1), 0.08, 0.1, 0.85, 0.25),  # strings
    6: ((1.0, 0.6, 0.4, 0.3, 0.2, 0.1), 0.06, 0.1, 0.85, 0.3),  # ensemble
    7: ((1.0, 0.7, 0.5, 0.3, 0.2), 0.03, 0.1, 0.8, 0.1),  # brass
    8: ((1.0, 0.6, 0.3, 0.2), 0.03, 0.1, 0.8, 0.1),  # reed
    9: ((1.0, 0.15, 0.05), 0.04, 0.1, 0.8, 0.1),  # pipe
}
_DEFAULT_TIMBRE = ((1.0, 0.5, 0.3, 0.2), 0.01, 0.2, 0.6, 0.15)
_TAIL = 0.3  # seconds of release after the last note


def _envelope(n_on: int, n_total: int, sr: int, a: float, d: float, s: float, r: float):
    """ADSR: linear attack, exponential decay to ``s``, held to note-off, then release."""
    t = np.arange(n_total) / sr
    env = np.where(t < a, t / max(a, 1e-6), s + (1 - s) * np.exp(-(t - a) / max(d, 1e-6)))
    if n_on < n_total:
        off = env[n_on - 1] if n_on > 0 else 0.0
        env[n_on:] = off * np.exp(-(t[n_on:] - t[n_on]) * 5.0 / max(r, 1e-6))
    return env


def _drum(pitch: int, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A noise burst or pitch sweep for a GM percussion key."""
    t = np.arange(n) / sr
    noise = rng.standard_normal(n)
    if pitch in (35, 36):  # kick: falling sine
        freq = 50 + 100 * np.exp(-t * 30)
        return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / 0.18)
    if pitch in (38, 40, 37, 39):  # snare, clap, rim
        return (0.6 * noise + 0.4 * np.sin(2 * np.pi * 185 * t)) * np.exp(-t / 0.09)
    if pitch in (41, 43, 45, 47, 48, 50):  # toms
        f = 80 + (pitch - 41) * 12
        return np.sin(2 * np.pi * f * t) * np.exp(-t / 0.2)
    hp = np.diff(noise, prepend=0.0) * 0.5  # crude high-pass for metal
    if pitch in (42, 44):  # closed / pedal hi-hat
        return hp * np.exp(-t / 0.03)
    if pitch in (46, 49, 51, 52, 53, 55, 57, 59):  # open hat, cymbals, ride
        return hp * np.exp(-t / (0.25 if pitch == 46 else 0.6))
    return 0.7 * noise * np.exp(-t / 0.06)


def additive_synth(score: Score, *, sample_rate: int = 22050, max_seconds: float = 60.0):
    """Render ``score`` with the offline additive synthesizer; returns (mono float32, notes).

    Pitched notes are sums of harmonics (amplitudes from the track's GM program family: piano,
    organ, guitar, bass, strings, brass, ...) shaped by an ADSR envelope, with loudness
    ``(velocity / 127) ** 1.5``. Drum tracks are noise bursts and pitch sweeps (kick, snare,
    toms, hi-hats, cymbals). Deterministic (fixed noise seed); peaks are limited to 0.9.
    """
    sr = int(sample_rate)
    sec = score.to("second")
    end = float(sec.end()) if score.note_num() else 0.0
    total_s = min(max_seconds, end + _TAIL)
    out = np.zeros(max(1, int(round(total_s * sr))), dtype=np.float64)
    rng = np.random.default_rng(0)
    rendered = 0
    for track in sec.tracks:
        if not track.note_num():
            continue
        a = track.notes.numpy()
        harm, att, dec, sus, rel = _TIMBRES.get(int(track.program) // 8, _DEFAULT_TIMBRE)
        for on, dur, pitch, vel in zip(
            a["time"].tolist(), a["duration"].tolist(), a["pitch"].tolist(), a["velocity"].tolist()
        ):
            start = int(round(on * sr))
            if start >= len(out):
                continue
            gain = 0.22 * (max(1, min(127, vel)) / 127.0) ** 1.5
            if track.is_drum:
                n = min(int(0.8 * sr), len(out) - start)
                wave_ = _drum(pitch, n, sr, rng)
            else:
                n_on = max(1, int(round(max(dur, 0.03) * sr)))
                n = min(n_on + int(rel * sr), len(out) - start)
                t = np.arange(n) / sr
                f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
                wave_ = np.zeros(n)
                for k, amp in enumerate(harm, start=1):
                    if k * f0 >= sr / 2:
                        break
                    wave_ += amp * np.sin(2 * np.pi * k * f0 * t)
                wave_ *= _envelope(min(n_on, n), n, sr, att, dec, sus, rel) / sum(harm)
            out[start : start + n] += gain * wave_
            rendered += 1
    peak = float(np.abs(out).max()) if len(out) else 0.0
    if peak > 0.9:
        out *= 0.9 / peak
    return out.astype(np.float32), rendered


def find_soundfont(soundfont: str | os.PathLike | None = None) -> Path | None:
    """The SoundFont to use: argument, ``$MUSICML_SOUNDFONT``, system paths, symusic's cache.

    An argument naming a missing file raises ``FileNotFoundError``. A ``$MUSICML_SOUNDFONT``
    naming a missing file logs a warning and gives None (an override is never silently replaced
    by a system SoundFont). Nothing is downloaded.
    """
    if soundfont is not None:
        p = Path(soundfont)
        if not p.is_file():
            raise FileNotFoundError(f"SoundFont not found: {p}")
        return p
    override = env.soundfont()
    if override is not None:
        if override.is_file():
            return override
        log.warning("%s=%s is not a file: no SoundFont audio", env.SOUNDFONT, override)
        return None
    for candidate in SOUNDFONT_PATHS:
        if Path(candidate).is_file():
            return Path(candidate)
    with contextlib.suppress(Exception):
        from symusic import BuiltInSF3

        cached = BuiltInSF3.MuseScoreGeneral().path(download=False)
        if cached.is_file():
            return cached
    return None


def _write_wav(path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM WAV; ``audio`` is (samples,) or (channels, samples) float in [-1, 1]."""
    data = np.atleast_2d(audio)
    pcm = (np.clip(data, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with _atomic(path) as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(data.shape[0])
            w.setsampwidth(2)
            w.setframerate(int(sample_rate))
            w.writeframes(np.ascontiguousarray(pcm.T).tobytes())


@functools.cache
def _fluidsynth_api():
    """pyfluidsynth's module and the two C functions it does not wrap (MIDI from memory, float out)."""
    try:
        import fluidsynth
    except (ImportError, OSError) as exc:  # pyfluidsynth raises ImportError without the library
        raise SoundFontError(
            f"FluidSynth is not available ({exc}); install it with "
            "`apt-get install libfluidsynth3` (macOS: `brew install fluid-synth`)"
        ) from exc
    c = ctypes
    add_mem = fluidsynth.cfunc(
        "fluid_player_add_mem", c.c_int,
        ("player", c.c_void_p, 1), ("buffer", c.c_char_p, 1), ("len", c.c_size_t, 1),
    )  # fmt: skip
    write_float = fluidsynth.cfunc(
        "fluid_synth_write_float", c.c_int,
        ("synth", c.c_void_p, 1), ("len", c.c_int, 1),
        ("lout", c.c_void_p, 1), ("loff", c.c_int, 1), ("lincr", c.c_int, 1),
        ("rout", c.c_void_p, 1), ("roff", c.c_int, 1), ("rincr", c.c_int, 1),
    )  # fmt: skip
    if add_mem is None or write_float is None:
        raise SoundFontError("this FluidSynth library is too old (2.0 or newer is needed)")
    return fluidsynth, add_mem, write_float


def _fluidsynth_render(score: Score, sf: Path, sample_rate: int, frames: int) -> np.ndarray:
    """(2, frames) float32: FluidSynth's own MIDI player playing ``score`` through ``sf``."""
    fs, add_mem, write_float = _fluidsynth_api()
    midi = score.dumps_midi()
    out = np.zeros((frames, 2), dtype=np.float32)
    settings = {"player.timing-source": "sample", "synth.lock-memory": 0}
    failure = None
    with captured_native_output() as messages:
        synth = fs.Synth(samplerate=float(sample_rate), channels=16, **settings)
        try:
            if synth.get_setting("synth.sample-rate") != float(sample_rate):
                failure = f"FluidSynth cannot render at {sample_rate} Hz"
            elif synth.sfload(str(sf)) < 0:
                failure = f"FluidSynth cannot load the SoundFont {sf}"
            else:
                player = fs.new_fluid_player(synth.synth)
                try:
                    if (
                        add_mem(player, midi, len(midi)) != fs.FLUID_OK
                        or fs.fluid_player_play(player) != fs.FLUID_OK
                    ):
                        failure = "FluidSynth's MIDI player refused the score"
                    else:
                        for i in range(0, frames, _BLOCK):
                            block = out[i : i + _BLOCK]
                            ptr = block.ctypes.data
                            write_float(synth.synth, len(block), ptr, 0, 2, ptr, 1, 2)
                finally:
                    fs.fluid_player_stop(player)
                    fs.delete_fluid_player(player)
        finally:
            synth.delete()
    for line in messages:
        log.debug("fluidsynth: %s", line)
    if failure:
        said = next((m for m in messages if "error" in m.lower()), None)
        raise SoundFontError(f"{failure} ({said.strip()})" if said else failure)
    return out.T


def render_wav(
    score_or_roll,
    path: str | os.PathLike,
    *,
    sample_rate: int = 22050,
    soundfont: str | os.PathLike | None = None,
    max_seconds: float = 60.0,
    synth: str = "auto",
    grid: int = 4,
) -> dict:
    """Render audio to a 16-bit PCM WAV, at most ``max_seconds`` long.

    ``synth`` is ``"auto"`` (FluidSynth with the SoundFont :func:`find_soundfont` finds; the
    additive synth, with a logged warning and the reason in ``soundfont_error``, when there is
    none or it cannot render), ``"soundfont"`` (raises instead of falling back) or
    ``"additive"``. A SoundFont render lasts the score plus :data:`SOUNDFONT_TAIL` (releases
    and reverb), stereo, scaled to a peak of 0.9; the additive synth's adds 0.3 s, mono.
    Returns path, synth (``soundfont`` / ``additive``: the renderer used), soundfont,
    soundfont_error, sample_rate, channels, duration_seconds (of the WAV), score_seconds,
    truncated, notes, peak and rms.
    """
    if synth not in ("auto", "soundfont", "additive"):
        raise ValueError(f"synth must be 'auto', 'soundfont' or 'additive', got {synth!r}")
    score = _as_score(score_or_roll, grid)
    score_seconds = _seconds(score)
    sf = find_soundfont(soundfont) if synth != "additive" else None
    if synth == "soundfont" and sf is None:
        raise FileNotFoundError(
            "no SoundFont found: install one (`apt-get install fluid-soundfont-gm`), "
            f"pass soundfont= or set {env.SOUNDFONT}"
        )
    limit = int(round(max_seconds * sample_rate))
    audio = None
    error = None
    if synth == "auto":
        error = f"no SoundFont found (apt-get install fluid-soundfont-gm, or set {env.SOUNDFONT})"
    used = "additive"
    rendered = 0
    if sf is not None:
        try:
            frames = max(1, min(limit, int(round((score_seconds + SOUNDFONT_TAIL) * sample_rate))))
            audio = _fluidsynth_render(score, sf, sample_rate, frames)
            peak = float(np.abs(audio).max())
            if peak > 1e-4:  # same loudness for a melody and a band: scaled to one peak
                audio *= _PEAK / peak
            sec = score.to("second")
            rendered = sum(int((t.notes.numpy()["time"] < max_seconds).sum()) for t in sec.tracks)
            used, error = "soundfont", None
        except Exception as exc:  # a broken SoundFont or a missing library: fall back, say why
            if synth == "soundfont":
                raise
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            audio = None
    if audio is None:
        if synth == "auto":
            log.warning("%s; %s rendered with the additive synthesizer", error, Path(path).name)
        audio, rendered = additive_synth(score, sample_rate=sample_rate, max_seconds=max_seconds)
        audio = audio[None, :limit]
    _write_wav(path, audio, sample_rate)
    frames = audio.shape[1]
    return {
        "path": str(path),
        "synth": used,
        "soundfont": str(sf) if used == "soundfont" else None,
        "soundfont_error": error,
        "sample_rate": int(sample_rate),
        "channels": int(audio.shape[0]),
        "duration_seconds": round(frames / sample_rate, 3),
        "score_seconds": round(score_seconds, 3),
        "truncated": score_seconds > max_seconds,
        "notes": rendered,
        "peak": round(float(np.abs(audio).max()) if audio.size else 0.0, 4),
        "rms": round(
            float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0, 5
        ),
    }
