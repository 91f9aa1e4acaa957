"""MIDI event tokens through miditok: REMI (default), TSD, MIDILike or Structured, optionally with BPE.

Kinds: only tokenizations that give *one* id sequence per piece over *one* vocabulary fit the
project's models (one embedding table, one softmax): ``remi``, ``tsd``, ``midilike``,
``structured``. CPWord, Octuple and MuMIDI stack several vocabularies per time step (they need
one embedding and one output head per vocabulary) and are refused with a clear error; MMM,
PerTok and BEAT are left out too (MMM needs a base tokenizer and per-track sequences, PerTok
works in ticks with micro-timing instead of the project's 16th-note grid, BEAT drops notes in
a plain round trip with miditok 3.1).

Configuration (:class:`EventSettings`, one home for every default): positions and durations on
the project's 16th-note grid (4 per beat; miditok counts beats of the time signature, so 2/2
gets 8ths and 6/8 32nds; durations up to 16 beats), 32 velocity bins, 32 tempo bins in 40-250
qpm, the corpora's time signatures (where the kind has them; Structured has none), all 128
pitches (pitch shifting keeps notes in MIDI range, not in the piano's), and ``use_programs``
with one token stream, so a multi-track file is one sequence (miditok merges tracks of the same
program, its documented behaviour). This is miditok's documented loss of a round trip: times
and durations quantized to the grid, velocities and tempos to their bins, same-program tracks
merged, time signatures outside the list read as 4/4; MIDILike may swap the ends of
overlapping notes of one pitch.

Documents are ``BOS Fmt_<format> events...``: ``BOS_None`` and one ``Fmt_atex`` /
``Fmt_abc`` / ``Fmt_midi`` special token per format are miditok special tokens, so every id
lives in miditok's one vocabulary (after BPE too). Every piece is converted to a
``symusic.Score`` with the project's readers (MIDI text, ABC through symusic, alphaTex through
the project's parser) and tokenized, so one model serves the whole corpus; the format token
keeps the source format promptable. A piece with no notes after conversion is counted
(``conversion_failed``), and its document holds only the two special tokens (the shards step
leaves such documents out and counts them as ``documents_without_events``).

Bits per byte: event tokens have no UTF-8 bytes. :meth:`EventCodec.token_bytes` gives every
token the number of *base* event tokens it stands for (1 without BPE, the merge length with
BPE; 0 for special tokens), so ``val_bpb`` of an event model reads as bits per base event
token: it compares across BPE and no-BPE of one kind, not with text models (bits per note
does that).

With ``bpe=True`` miditok's ``train()`` (Hugging Face BPE, split per bar) learns merges on the
train split's scores. Saved as miditok's JSON (``tokenizer.json``, loadable by miditok's own
``params=``) plus the project's ``tokenizer_info.json``; never pickle.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import symusic

from musicml.lake import sha256_bytes, write_json, write_text
from musicml.tokenizers import Codec

EVENT_KINDS = {"remi": "REMI", "tsd": "TSD", "midilike": "MIDILike", "structured": "Structured"}
MULTI_VOCAB_KINDS = {"cpword": "CPWord", "octuple": "Octuple", "mumidi": "MuMIDI"}
UNSUPPORTED_KINDS = {"mmm": "MMM", "pertok": "PerTok", "beat": "BEAT"}
FORMATS = ("atex", "abc", "midi")
BOS = "BOS_None"
PAD = "PAD_None"


def format_token(fmt: str) -> str:
    return f"Fmt_{fmt}"


@dataclass(frozen=True)
class EventSettings:
    """The miditok configuration of an event tokenizer (defaults: the project's MIDI grid)."""

    positions_per_beat: int = 4  # 16th notes, as the project's MIDI text (grid=4)
    max_duration_beats: int = 16  # longer notes are cut to 4 bars of 4/4
    num_velocities: int = 32
    use_tempos: bool = True
    num_tempos: int = 32
    tempo_min: int = 40
    tempo_max: int = 250
    use_time_signatures: bool = True  # Structured has none; miditok switches it off there
    # the meters of the corpora (folk ABC's 2/2, 6/8, 9/8 ...); others decode as 4/4 (miditok's loss)
    time_signatures: str = "2/2 3/2 4/2 1/4 2/4 3/4 4/4 5/4 6/4 7/4 3/8 5/8 6/8 7/8 9/8 12/8"
    pitch_min: int = 0
    pitch_max: int = 127


def check_kind(kind: str) -> str:
    """The miditok class name of ``kind``; ``ValueError`` naming why for the kinds left out."""
    if kind in EVENT_KINDS:
        return EVENT_KINDS[kind]
    if kind in MULTI_VOCAB_KINDS:
        raise ValueError(f"tokenizer kind {kind!r} ({MULTI_VOCAB_KINDS[kind]}) stacks several vocabularies per "
                         f"step and needs one embedding per vocabulary; the models take one sequence: choose one "
                         f"of {sorted(EVENT_KINDS)}")
    if kind in UNSUPPORTED_KINDS:
        raise ValueError(f"tokenizer kind {kind!r} ({UNSUPPORTED_KINDS[kind]}) is not supported (see "
                         f"musicml.tokenizers.events); choose one of {sorted(EVENT_KINDS)}")
    raise ValueError(f"unknown event tokenizer kind {kind!r}; choose one of {sorted(EVENT_KINDS)}")


def miditok_config(settings: EventSettings = EventSettings()):
    """The ``miditok.TokenizerConfig`` of ``settings``."""
    from miditok import TokenizerConfig

    s = settings
    return TokenizerConfig(
        pitch_range=(s.pitch_min, s.pitch_max),
        beat_res={(0, s.max_duration_beats): s.positions_per_beat},
        num_velocities=s.num_velocities,
        special_tokens=["PAD", "BOS", *(format_token(f) for f in FORMATS)],
        use_tempos=s.use_tempos, num_tempos=s.num_tempos, tempo_range=(s.tempo_min, s.tempo_max),
        use_time_signatures=s.use_time_signatures, time_signature_range=_meters(s.time_signatures),
        use_programs=True, one_token_stream_for_programs=True,
    )


def _meters(spec: str) -> dict[int, list[int]]:
    """``"3/4 6/8"`` as miditok's ``{denominator: [numerators]}``."""
    out: dict[int, list[int]] = {}
    for item in spec.split():
        num, _, den = item.partition("/")
        if not (num.isdigit() and den.isdigit()):
            raise ValueError(f"not a time signature: {item!r} (write e.g. '6/8')")
        out.setdefault(int(den), []).append(int(num))
    return out


def text_to_score(fmt: str, text: str) -> symusic.Score | None:
    """The notes of a piece's canonical text as a Score (the project's readers); None if none."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; event tokens read {FORMATS}")
    try:
        if fmt == "midi":
            from musicml.formats.midi import text as miditext

            score = miditext.decode(text)
        elif fmt == "abc":
            from musicml.formats.abc import Tune, parse_tune

            score = parse_tune(Tune(index=0, line=1, text=text), "<piece>").score
        else:
            from musicml.formats import alphatex

            result = alphatex.parse(text, "<piece>")
            score = alphatex.to_score(result.ast) if result.ok else None
    except Exception:  # a piece the reader cannot turn into notes is counted, not fatal
        return None
    return score if score is not None and score.note_num() else None


@dataclass
class DecodeResult:
    """What :meth:`EventCodec.decode_score` made of generated ids: a Score, or why not."""

    score: symusic.Score | None
    error: str = ""
    token_errors: float = 0.0  # miditok's ratio of ill-typed successions (0 is well formed)

    @property
    def ok(self) -> bool:
        return self.score is not None


class EventCodec(Codec):
    """A miditok tokenizer behind the project's ``Codec`` interface (see the module docstring)."""

    decodes_to_score = True

    def __init__(self, tok, info: dict):
        self.tok, self.info = tok, info
        self.kind = info["kind"]
        self.conversion_failed = 0
        self.decode_failed = 0

    # ids ------------------------------------------------------------------------------------
    def _special_id(self, token: str) -> int:
        base = self.tok.vocab[token]
        if not self.tok.is_trained:
            return base
        return int(self.tok._model.token_to_id(self.tok._vocab_base_id_to_byte[base]))

    # encoding -------------------------------------------------------------------------------
    def encode_score(self, score: symusic.Score) -> list[int]:
        """Event ids of ``score`` (BPE applied when trained), without BOS and format token."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seq = self.tok.encode(score.copy())  # miditok preprocesses in place
        return [int(i) for i in seq.ids]

    def encode_documents(self, formats: Sequence[str], texts: Sequence[str]) -> list[list[int]]:
        fmt_ids = {f: int(i) for f, i in self.info["format_ids"].items()}
        out = []
        for fmt, text in zip(formats, texts):
            score = text_to_score(fmt, text)
            if score is None:
                self.conversion_failed += 1
                out.append([self.bos_id, fmt_ids[fmt]])
                continue
            out.append([self.bos_id, fmt_ids[fmt], *self.encode_score(score)])
        return out

    def prompt_ids(self, fmt: str, text: str = "") -> list[int]:
        """``BOS Fmt_<fmt>`` then ``text`` read as whitespace-separated base token names (base ids
        are valid ids of a BPE vocabulary too, which keeps the first ids of the base tokens)."""
        ids = [self.bos_id, int(self.info["format_ids"][fmt])]
        names = text.split()
        unknown = [n for n in names if n not in self.tok.vocab]
        if unknown:
            raise ValueError(f"not {self.kind} event tokens: {unknown[:5]} (a prompt is base token names, "
                             f"e.g. 'Bar_None Position_0')")
        return ids + [int(self.tok.vocab[n]) for n in names]

    # decoding -------------------------------------------------------------------------------
    def _event_ids(self, ids: Sequence[int]) -> list[int]:
        specials = set(self.info["special_ids"])
        return [int(i) for i in ids if int(i) not in specials]

    def base_tokens(self, ids: Sequence[int]) -> list[str]:
        """Base token names of event ids (BPE undone); raises on ids outside the vocabulary."""
        ids = self._event_ids(ids)
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids outside the vocabulary of {self.vocab_size}: {bad[:5]}")
        if not self.tok.is_trained:
            return [self.tok[i] for i in ids]
        out: list[str] = []
        for i in ids:
            out += self.tok._vocab_learned_bytes_to_tokens[self.tok._model.id_to_token(i)]
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """Base token names separated by spaces (special tokens dropped)."""
        return " ".join(self.base_tokens(ids))

    def decode_score(self, ids: Sequence[int]) -> DecodeResult:
        """Generated ids to a Score through miditok; any failure or an empty result is counted in
        ``decode_failed`` and returned as an error, never raised (generated sequences may be
        ill-formed)."""
        try:
            names = self.base_tokens(ids)
            if not names:
                raise ValueError("no event tokens")
            base_ids = [self.tok.vocab[n] for n in names]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                errors = float(self.tok.tokens_errors(list(base_ids)))
                score = self.tok.decode(list(base_ids))
            if score.note_num() == 0:
                raise ValueError("decoded to no notes")
            return DecodeResult(score, "", errors)
        except Exception as err:
            self.decode_failed += 1
            return DecodeResult(None, f"{type(err).__name__}: {err}")

    # bytes, saving --------------------------------------------------------------------------
    def token_bytes(self) -> np.ndarray:
        """Base event tokens per id (0 for special tokens): bits per base event token in bpb.
        BPE's lone bar marker ``▁`` stands for no base token but counts 1, so its loss is scored."""
        specials = set(self.info["special_ids"])
        out = np.zeros(self.vocab_size, dtype=np.int32)
        for i in range(self.vocab_size):
            if i in specials:
                continue
            if self.tok.is_trained:
                out[i] = max(1, len(self.tok._vocab_learned_bytes_to_tokens[self.tok._model.id_to_token(i)]))
            else:
                out[i] = 1
        return out

    def save(self, directory: Path) -> Path:
        """miditok's JSON (what its ``save`` writes, written atomically) and tokenizer_info.json."""
        directory = Path(directory)
        path = directory / "tokenizer.json"
        # miditok's own layout: keys unsorted (its time-signature table's order defines ids)
        write_text(path, json.dumps(self.tok.to_dict(), indent=4))
        write_json(directory / "tokenizer_info.json", self.info)
        return path

    # construction ---------------------------------------------------------------------------
    @classmethod
    def _from_tokenizer(cls, tok, kind: str, info: dict) -> EventCodec:
        codec = cls(tok, {**info, "kind": kind})
        specials = [PAD, BOS, *(format_token(f) for f in FORMATS)]
        codec.info.update({
            "vocab_size": len(tok),
            "bos_id": codec._special_id(BOS),
            "format_ids": {f: codec._special_id(format_token(f)) for f in FORMATS},
            "special_ids": sorted(codec._special_id(s) for s in specials),
            "digest": sha256_bytes(json.dumps(_stable(tok.to_dict())).encode()),
        })
        return codec

    @classmethod
    def train(cls, formats: Sequence[str], texts: Sequence[str], *, kind: str = "remi", bpe: bool = False,
              vocab_size: int = 8192, settings: EventSettings = EventSettings()) -> EventCodec:
        """A ``kind`` tokenizer; with ``bpe`` miditok's BPE trained on these (train split) pieces."""
        import miditok

        tok = getattr(miditok, check_kind(kind))(miditok_config(settings))
        base_size = len(tok)
        info: dict = {}
        if bpe and vocab_size > base_size:  # without BPE the vocabulary is the config's: no pass
            scores = [text_to_score(f, t) for f, t in zip(formats, texts)]
            kept = [s for s in scores if s is not None]
            info = {"train_scores": len(kept), "conversion_failed": len(scores) - len(kept)}
            if kept:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tok.train(vocab_size=vocab_size, model="BPE", iterator=_BarBytes(tok, kept))
        info.update({
            "requested_vocab_size": vocab_size, "base_vocab_size": base_size, "bpe": bool(tok.is_trained),
            "pretokenizer": "bar" if tok.is_trained else "none", "miditok_class": type(tok).__name__,
            "settings": asdict(settings), "train_docs": len(texts),
            "train_bytes": sum(len(t.encode("utf-8")) for t in texts),
            "token_bytes_unit": "base event tokens (val_bpb = bits per base event token)",
        })
        return cls._from_tokenizer(tok, kind, info)

    @classmethod
    def load(cls, directory: Path) -> EventCodec:
        import miditok

        directory = Path(directory)
        info = json.loads((directory / "tokenizer_info.json").read_text())
        tok = getattr(miditok, check_kind(info["kind"]))(params=directory / "tokenizer.json")
        codec = cls._from_tokenizer(tok, info["kind"], info)
        if codec.info["digest"] != info["digest"]:
            raise ValueError(f"{directory}: tokenizer.json does not match tokenizer_info.json's digest")
        return codec


def _stable(d: dict) -> dict:
    """miditok's dict without its version strings (same vocabulary → same digest)."""
    return {k: v for k, v in d.items() if not k.endswith("_version")}


class _BarBytes:
    """miditok's training input from Scores in memory: one byte string per bar (its ``bar`` split),
    as ``miditok.TokTrainingIterator`` does for files."""

    def __init__(self, tok, scores: Sequence[symusic.Score]):
        self.tok, self.scores = tok, scores

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self):
        for score in self.scores:
            seq = self.tok.encode(score, encode_ids=False)
            bars = [s for s in seq.split_per_bars() if len(s) > 0]
            yield self.tok._ids_to_bytes([s.ids for s in bars], as_one_str=True)
