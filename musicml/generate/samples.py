"""Generated samples: prompt a trained model per format, check the text, render what is valid.

Every sample is saved as text (``.atex`` / ``.abc`` / ``.miditext``); a sample that reads as
music is also rendered to MIDI, a piano-roll PNG and WAV audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import symusic
import torch

from musicml.formats.native import captured_native_output
from musicml.generate import generate
from musicml.lake import write_json, write_text
from musicml.tokenizers import Codec

EXTENSIONS = {"atex": ".atex", "abc": ".abc", "midi": ".miditext"}

# Prompts per format: empty, and a header that starts a document the way real files do.
DEFAULT_PROMPTS: dict[str, list[str]] = {
    "atex": ["", '\\title "'],
    "abc": ["", "X:1\nT:"],
    "midi": ["", "MIDI grid=4"],
}


@dataclass
class Sample:
    name: str
    format: str
    prompt: str
    text: str
    tokens: int
    syntax_ok: bool
    problems: list[str] = field(default_factory=list)
    musical_ok: bool | None = None
    notes: int = 0
    files: dict[str, str] = field(default_factory=dict)


def check(fmt: str, text: str, source: str = "<sample>") -> tuple[bool, list[str], symusic.Score | None, bool | None]:
    """``(syntax_ok, problems, score, musical_ok)`` of a generated text in format ``fmt``."""
    if fmt == "atex":
        from musicml.formats import alphatex

        result = alphatex.parse(text, source)
        if not result.ok:
            return False, [str(d) for d in result.errors[:10]], None, None
        warnings = [d for d in alphatex.validate(text, source) if d.severity == "warning"]
        try:
            score = alphatex.to_score(result.ast)
        except Exception as err:  # a text that parses but cannot be played is a musical failure
            return True, [f"{source}: cannot convert to notes: {err}"], None, False
        return True, [str(d) for d in warnings[:10]], score, not warnings
    if fmt == "abc":
        from musicml.formats.abc import Tune, parse_tune
        from musicml.formats.errors import ScoreError

        tune = Tune(index=0, line=1, text=text)
        try:
            parse_tune(tune, source)
        except ScoreError as err:
            return False, [str(err)], None, None
        errors = [m for m in tune.messages if ": error:" in m]
        return not errors, tune.messages[:10], tune.score, not tune.messages
    if fmt == "midi":
        from musicml.formats.midi import text as miditext

        problems = miditext.validate(text)
        score = miditext.decode(text)
        return not problems, problems[:10], score if score.note_num() else None, None
    raise ValueError(f"unknown format {fmt!r}")


def render(score: symusic.Score, base: Path, title: str, *, media: bool = True) -> dict[str, str]:
    """MIDI (and with ``media``, PNG and WAV) files of ``score`` at ``base`` + suffix."""
    from musicml import render as r

    files = {}
    r.write_midi(score, base.with_suffix(".mid"))
    files["midi"] = str(base.with_suffix(".mid"))
    if not media:
        return files
    r.render_png(score, base.with_suffix(".png"), title=title)
    files["png"] = str(base.with_suffix(".png"))
    r.render_wav(score, base.with_suffix(".wav"))
    files["wav"] = str(base.with_suffix(".wav"))
    return files


def generate_samples(
    model: torch.nn.Module,
    codec: Codec,
    formats: Sequence[str],
    out_dir: Path,
    *,
    prompts: dict[str, list[str]] | None = None,
    per_prompt: int = 2,
    max_new_tokens: int = 512,
    temperature: float = 0.9,
    top_k: int | None = 50,
    top_p: float | None = None,
    seed: int = 0,
    render_audio: bool = True,
) -> list[Sample]:
    """Sample ``per_prompt`` documents for each format's prompts; save and render each."""
    prompts = prompts or DEFAULT_PROMPTS
    bos = codec.bos_id
    out_dir = Path(out_dir)
    samples: list[Sample] = []
    for fmt in formats:
        for p_idx, prompt in enumerate(prompts.get(fmt, [""])):
            ids = codec.prompt_ids(fmt, prompt)
            for k in range(per_prompt):
                new = generate(model, ids, max_new_tokens=max_new_tokens, temperature=temperature,
                               top_k=top_k, top_p=top_p, seed=seed + 1000 * p_idx + k, stop_ids=[bos])
                body = [t for t in new if t != bos]
                text = prompt + codec.decode(body)
                name = f"{fmt}_p{p_idx}_{k}"
                path = out_dir / f"{name}{EXTENSIONS[fmt]}"
                write_text(path, text)
                with captured_native_output():
                    ok, problems, score, musical = check(fmt, text, path.name)
                sample = Sample(name, fmt, prompt, text, len(body), ok, problems, musical,
                                score.note_num() if score is not None else 0, {"text": str(path)})
                if score is not None and score.note_num():
                    try:
                        sample.files.update(render(score, out_dir / name, f"{fmt} sample {name}", media=render_audio))
                    except Exception as err:  # rendering must not lose the sample itself
                        sample.problems.append(f"render failed: {err}")
                samples.append(sample)
    write_json(out_dir / "samples.json", [asdict(s) for s in samples])
    return samples


def summarize(samples: Sequence[Sample]) -> dict[str, float]:
    """Validity rates per format: ``{fmt}_syntax_valid_rate``, ``{fmt}_musical_valid_rate``."""
    out: dict[str, float] = {}
    for fmt in sorted({s.format for s in samples}):
        group = [s for s in samples if s.format == fmt]
        out[f"{fmt}_syntax_valid_rate"] = sum(s.syntax_ok for s in group) / len(group)
        musical = [s for s in group if s.musical_ok is not None]
        if musical:
            out[f"{fmt}_musical_valid_rate"] = sum(bool(s.musical_ok) for s in group) / len(group)
        out[f"{fmt}_playable_rate"] = sum(s.notes > 0 for s in group) / len(group)
    return out
