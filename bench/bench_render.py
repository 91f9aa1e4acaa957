"""Benchmark WAV rendering, SoundFont (FluidSynth) against the additive synth; prints one JSON object.

    python bench/bench_render.py [--files 8] [--source pop909|music21] [--sample-rate 22050]

Each file is rendered whole by both renderers, alternately (so a loaded machine slows both
alike); figures per renderer: seconds of audio rendered per second of wall time (the
real-time factor) and per CPU second of this process, total audio, wall and CPU seconds, and
the wall-time ratio SoundFont / additive. Sources:
POP909 from the shared corpora, or (``music21``, and when the corpora are absent) the longest
single tunes of music21's installed ABC corpus read with symusic. The SoundFont is the one
:func:`musicml.render.find_soundfont` finds; without one (or FluidSynth) only the additive synth
is measured and ``soundfont_file`` says why.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from symusic import Score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musicml import env  # noqa: E402
from musicml.formats.native import captured_native_output  # noqa: E402
from musicml.ingest.corpus import music21_abc_files  # noqa: E402
from musicml.render import SoundFontError, _fluidsynth_api, find_soundfont, render_wav  # noqa: E402


def pop909_scores(n: int) -> list[tuple[str, Score]] | None:
    folder = env.corpora_dir() / "midi" / "pop909"
    if not folder.is_dir():
        return None
    return [(p.name, Score(p)) for p in sorted(folder.glob("*.mid"))[:n]]


def music21_scores(n: int) -> list[tuple[str, Score]]:
    """The ``n`` longest one-tune files of music21's ABC corpus that symusic reads."""
    out = []
    for path in music21_abc_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        if text.count("\nX:") + text.startswith("X:") != 1:
            continue
        with captured_native_output():
            try:
                score = Score.from_abc(text)
            except Exception:  # a tune symusic cannot read is not benchmarked
                continue
        if score.note_num():
            out.append((path.name, score))
    out.sort(key=lambda item: (-item[1].to("second").end(), item[0]))
    return out[:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--source", choices=["pop909", "music21"], default="pop909")
    ap.add_argument("--sample-rate", type=int, default=22050)
    args = ap.parse_args()

    scores = pop909_scores(args.files) if args.source == "pop909" else None
    source = "pop909"
    if scores is None:
        scores, source = music21_scores(args.files), "music21"
    sf = find_soundfont()
    why_not = None if sf else "no SoundFont found (apt-get install fluid-soundfont-gm)"
    if sf:
        try:
            _fluidsynth_api()
        except SoundFontError as exc:
            why_not = str(exc)
    synths = ["additive"] if why_not else ["soundfont", "additive"]
    wall = dict.fromkeys(synths, 0.0)
    cpu = dict.fromkeys(synths, 0.0)
    audio = dict.fromkeys(synths, 0.0)
    score_seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (_, score) in enumerate(scores):
            seconds = score.to("second").end()
            score_seconds += seconds
            order = synths if i % 2 == 0 else synths[::-1]
            for synth in order:
                t0, c0 = time.perf_counter(), time.process_time()
                meta = render_wav(score, Path(tmp) / f"{synth}.wav", sample_rate=args.sample_rate,
                                  max_seconds=seconds + 10, synth=synth)
                wall[synth] += time.perf_counter() - t0
                cpu[synth] += time.process_time() - c0
                audio[synth] += meta["duration_seconds"]
    result = {
        "source": source,
        "files": len(scores),
        "notes": sum(s.note_num() for _, s in scores),
        "score_seconds": round(score_seconds, 1),
        "sample_rate": args.sample_rate,
        "soundfont_file": str(sf) if not why_not else why_not,
    }
    for synth in synths:
        result[synth] = {
            "audio_seconds": round(audio[synth], 1),
            "wall_seconds": round(wall[synth], 2),
            "audio_seconds_per_second": round(audio[synth] / wall[synth], 1),
            "cpu_seconds": round(cpu[synth], 2),
            "audio_seconds_per_cpu_second": round(audio[synth] / cpu[synth], 1),
        }
    if not why_not:
        result["soundfont_over_additive_speed"] = round(
            result["soundfont"]["audio_seconds_per_second"]
            / result["additive"]["audio_seconds_per_second"], 2
        )  # fmt: skip
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
