"""Generated samples: prompt a trained model per format, check the text, render what is valid.

Every sample is saved as text (``.atex`` / ``.abc`` / ``.miditext``; event-token models: the
base token names as ``.<kind>.txt``, decoded to notes by miditok); a sample that reads as music
is also rendered to MIDI, a piano-roll PNG and WAV audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import symusic
import torch

from musicml.evaluate import validity
from musicml.evaluate.validity import summarize  # noqa: F401  (its home is musicml.evaluate)
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
    decode_failed: bool = False  # event tokens only: miditok could not make notes of the ids
    audio: dict = field(default_factory=dict)  # render_wav's metadata: synth (renderer), seconds, rms


def check(fmt: str, text: str, source: str = "<sample>") -> tuple[bool, list[str], symusic.Score | None, bool]:
    """``(syntax_ok, problems, score, musical_ok)``: :func:`musicml.evaluate.validity.check`."""
    v = validity.check(fmt, text, source)
    return v.syntax_valid, v.problems, v.score if v.playable else None, v.musically_valid


def render(score: symusic.Score, base: Path, title: str, *, media: bool = True,
           audio: dict | None = None) -> dict[str, str]:
    """MIDI (and with ``media``, PNG and WAV) files of ``score`` at ``base`` + suffix.

    The WAV comes from a General MIDI SoundFont, or the additive synth when there is none
    (:func:`musicml.render.render_wav`); its metadata, renderer included, goes into ``audio``.
    """
    from musicml import render as r

    files = {}
    r.write_midi(score, base.with_suffix(".mid"))
    files["midi"] = str(base.with_suffix(".mid"))
    if not media:
        return files
    r.render_png(score, base.with_suffix(".png"), title=title)
    files["png"] = str(base.with_suffix(".png"))
    wav = r.render_wav(score, base.with_suffix(".wav"))
    files["wav"] = str(base.with_suffix(".wav"))
    if audio is not None:
        audio.update(wav)
    return files


def audio_renderer(samples: Sequence[Sample]) -> str | None:
    """``soundfont`` when every sample's WAV came from a SoundFont, ``additive`` when any fell
    back to the additive synth, None when no sample has audio."""
    used = {s.audio["synth"] for s in samples if s.audio.get("synth")}
    return ("additive" if "additive" in used else "soundfont") if used else None


def event_sample(codec: Codec, name: str, fmt: str, prompt: str, ids: list[int],
                 out_dir: Path) -> tuple[Sample, symusic.Score | None]:
    """A sample of event ids (prompt included): its base tokens saved as ``<name>.<kind>.txt``,
    decoded by miditok; a sequence that does not decode is a ``decode_failed`` sample."""
    result = codec.decode_score(ids)
    try:
        text = codec.decode(ids)
    except ValueError as err:  # ids outside the vocabulary
        text = f"# {err}"
    path = out_dir / f"{name}.{codec.kind}.txt"
    write_text(path, text + "\n")
    problems = [] if result.ok else [f"decode failed: {result.error}"]
    if result.ok and result.token_errors:
        problems.append(f"ill-typed token successions: {result.token_errors:.1%}")
    notes = result.score.note_num() if result.ok else 0
    sample = Sample(name, fmt, prompt, text, len(ids), result.ok and not result.token_errors, problems, None,
                    notes, {"text": str(path)}, decode_failed=not result.ok)
    return sample, result.score


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
    # event tokens take prompts of base token names only: the text headers do not apply
    prompts = prompts or ({f: [""] for f in formats} if codec.decodes_to_score else DEFAULT_PROMPTS)
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
                name = f"{fmt}_p{p_idx}_{k}"
                if codec.decodes_to_score:
                    sample, score = event_sample(codec, name, fmt, prompt, ids[2:] + body, out_dir)
                else:
                    text = prompt + codec.decode(body)
                    path = out_dir / f"{name}{EXTENSIONS[fmt]}"
                    write_text(path, text)
                    ok, problems, score, musical = check(fmt, text, path.name)
                    sample = Sample(name, fmt, prompt, text, len(body), ok, problems, musical,
                                    score.note_num() if score is not None else 0, {"text": str(path)})
                if score is not None and score.note_num():
                    try:
                        sample.files.update(render(score, out_dir / name, f"{fmt} sample {name}", media=render_audio,
                                                   audio=sample.audio))
                    except Exception as err:  # rendering must not lose the sample itself
                        sample.problems.append(f"render failed: {err}")
                samples.append(sample)
    write_json(out_dir / "samples.json", [asdict(s) for s in samples])
    return samples
