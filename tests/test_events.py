"""miditok event tokens (musicml.tokenizers.events): round trips on real MIDI within miditok's
documented loss, save/load, BPE, counted decode failures, and a tiny MIDI lake end to end."""

from __future__ import annotations

import json
import shutil
import warnings
from collections import Counter
from fractions import Fraction

import miditok
import numpy as np
import pyarrow.parquet as pq
import pytest
import symusic
from conftest import shared_files

from musicml.formats import alphatex
from musicml.formats.midi import text as miditext
from musicml.tokenizers import EVENT_KINDS, load_codec, save_codec, train_codec
from musicml.tokenizers.events import EventCodec, EventSettings, text_to_score

POSITIONS = EventSettings().positions_per_beat  # per beat of the time signature: 16ths in x/4


def grid_steps(codec: EventCodec, score: symusic.Score) -> tuple[Fraction, Fraction]:
    """(finest, coarsest) grid step in quarter notes: miditok's positions count per beat of the
    time signature (a 2/2 bar has 4 per half note, so its grid is 8ths; 6/8 gives 32nds);
    kinds without time signatures (Structured) count in 4/4."""
    dens = [ts.denominator for ts in score.time_signatures] if codec.tok.config.use_time_signatures else []
    dens = dens or [4]
    return Fraction(4, max(dens) * POSITIONS), Fraction(4, min(dens) * POSITIONS)


def note_rows(score: symusic.Score, *, durations: bool = True) -> list[tuple]:
    """(onset, [duration,] pitch, velocity, program) of every note, in beats, sorted."""
    tpq = score.ticks_per_quarter
    rows = []
    for t in score.tracks:
        program = -1 if t.is_drum else t.program
        for n in t.notes:
            row = (Fraction(n.time, tpq), Fraction(n.duration, tpq), n.pitch, n.velocity, program)
            rows.append(row if durations else row[:1] + row[2:])
    return sorted(rows)


def assert_round_trip(codec: EventCodec, score: symusic.Score) -> None:
    """Decoded == miditok's preprocessed score (its documented loss), and that loss is only the
    grid, the velocity bins and same-program track merging."""
    decoded = codec.decode_score(codec.encode_score(score))
    assert decoded.ok, decoded.error
    assert decoded.token_errors == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = codec.tok.preprocess_score(score.copy())
    out = decoded.score
    # MIDILike closes a note with NoteOff: overlapping notes of one pitch can swap their ends
    # (miditok's docs); every other kind gives back exactly the preprocessed notes.
    exact = codec.kind != "midilike"
    assert note_rows(out, durations=exact) == note_rows(expected, durations=exact)
    if not exact:
        same = Counter(note_rows(out)) & Counter(note_rows(expected))
        assert sum(same.values()) >= 0.9 * out.note_num()
    # against the original file: same notes and pitches, onsets moved by at most half a grid step
    assert out.note_num() == score.note_num()
    orig, dec = note_rows(score), note_rows(out)
    assert sorted(r[2] for r in orig) == sorted(r[2] for r in dec)
    finest, coarsest = grid_steps(codec, score)
    assert all(r[0] % finest == 0 for r in dec)
    onsets_o = np.array(sorted(float(r[0]) for r in orig))
    onsets_d = np.array(sorted(float(r[0]) for r in dec))
    assert np.abs(onsets_o - onsets_d).max() <= float(coarsest) / 2 + 1e-9
    bins = set(int(v) for v in codec.tok.velocities)
    assert {r[3] for r in dec} <= bins
    assert {r[4] for r in dec} == {-1 if t.is_drum else t.program for t in score.tracks if t.note_num()}


@pytest.fixture(scope="module")
def codecs() -> dict[str, EventCodec]:
    return {kind: EventCodec.train([], [], kind=kind) for kind in EVENT_KINDS}


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_round_trip_pop909(codecs, derived, kind):
    # POP909 001 and 123 (3 piano tracks; 4 tempo changes) with the shared corpora, else music21's
    # multi-voice tunes as MIDI (2-3 tracks)
    for path in shared_files("midi", "pop909", names=["001.mid", "123.mid"]) or derived.multitrack:
        assert_round_trip(codecs[kind], symusic.Score(str(path)))


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_round_trip_music21_midi(codecs, derived, kind):
    """MIDI written from music21's ABC corpus: one-track tunes and a band with programs and drums."""
    for path in (*derived.midi[:3], derived.band):
        assert_round_trip(codecs[kind], symusic.Score(str(path)))


def test_round_trip_keeps_tempo_and_time_signature(codecs, derived):
    score = symusic.Score(str(derived.midi[0]))
    out = codecs["remi"].decode_score(codecs["remi"].encode_score(score)).score
    assert [(t.numerator, t.denominator) for t in out.time_signatures] == \
        [(t.numerator, t.denominator) for t in score.time_signatures]
    assert abs(out.tempos[0].qpm - score.tempos[0].qpm) <= (250 - 40) / 31 / 2 + 1e-6  # one tempo bin


def _train_texts(derived) -> tuple[list[str], list[str]]:
    texts = [miditext.encode(symusic.Score(str(p))) for p in (*derived.midi, *derived.multitrack)]
    return ["midi"] * len(texts), texts


@pytest.mark.parametrize("bpe", [False, True])
def test_train_save_load_same_ids(derived, tmp_path, bpe):
    formats, texts = _train_texts(derived)
    codec = train_codec(texts[:-2], kind="remi", formats=formats[:-2], miditok_bpe=bpe, vocab_size=700)
    assert codec.info["bpe"] is bpe
    ids = codec.encode_documents(formats[-2:], texts[-2:])
    path = save_codec(codec, tmp_path)
    assert path.name == "tokenizer.json" and (tmp_path / "token_bytes.npy").exists()
    loaded = load_codec(tmp_path)
    assert isinstance(loaded, EventCodec)
    assert loaded.encode_documents(formats[-2:], texts[-2:]) == ids
    assert loaded.digest == codec.digest and loaded.vocab_size == codec.vocab_size
    assert all(doc[0] == loaded.bos_id and doc[1] == loaded.info["format_ids"]["midi"] for doc in ids)
    # miditok reads the file by itself (its own JSON, no pickle) and encodes the same ids
    own = miditok.REMI(params=tmp_path / "tokenizer.json")
    score = text_to_score("midi", texts[-1])
    assert [int(i) for i in own.encode(score).ids] == ids[-1][2:]
    # saving again gives the same bytes
    first = path.read_bytes()
    save_codec(loaded, tmp_path)
    assert path.read_bytes() == first


def test_bpe_merges_and_decodes_to_the_same_notes(derived):
    formats, texts = _train_texts(derived)
    base = train_codec(texts, kind="tsd", formats=formats)
    bpe = train_codec(texts, kind="tsd", formats=formats, miditok_bpe=True, vocab_size=800)
    assert base.vocab_size == bpe.info["base_vocab_size"] < bpe.vocab_size <= 800
    score = symusic.Score(str(derived.midi[0]))
    short, long = bpe.encode_score(score), base.encode_score(score)
    assert len(short) < len(long)
    assert bpe.decode(short) == base.decode(long)
    assert note_rows(bpe.decode_score(short).score) == note_rows(base.decode_score(long).score)
    tb = bpe.token_bytes()
    assert len(tb) == bpe.vocab_size
    assert tb[np.array(short)].sum() == len(long)  # bytes of a BPE sequence = its base tokens
    assert all(tb[i] == 0 for i in bpe.info["special_ids"])


def test_bpe_below_base_vocabulary_is_not_trained(derived):
    formats, texts = _train_texts(derived)
    codec = train_codec(texts, kind="remi", formats=formats, miditok_bpe=True, vocab_size=100)
    assert not codec.info["bpe"] and codec.vocab_size == codec.info["base_vocab_size"]
    bpe = train_codec([*texts, "X:1\nK:C\n"], kind="remi", formats=[*formats, "abc"], miditok_bpe=True,
                      vocab_size=600)
    assert bpe.info["bpe"] and bpe.info["train_scores"] == len(texts) and bpe.info["conversion_failed"] == 1


def test_token_bytes_and_special_tokens(codecs):
    codec = codecs["remi"]
    tb = codec.token_bytes()
    assert len(tb) == codec.vocab_size and tb.dtype == np.int32
    specials = codec.info["special_ids"]
    assert codec.bos_id in specials and set(codec.info["format_ids"].values()) <= set(specials)
    assert tb[specials].sum() == 0 and set(np.delete(tb, specials).tolist()) == {1}
    assert codec.tok[codec.bos_id] == "BOS_None"
    assert codec.tok[codec.info["format_ids"]["abc"]] == "Fmt_abc"


def test_abc_and_alphatex_pieces_are_tokenized_too(codecs, derived):
    """One model per corpus: ABC and alphaTex pieces become Scores through the project's readers."""
    codec = EventCodec.train([], [], kind="remi")
    abc = derived.abc_files[0].read_text(encoding="utf-8")
    atex = derived.atex[0].read_text(encoding="utf-8")
    docs = codec.encode_documents(["abc", "atex", "abc", "atex"],
                                  [abc, atex, "X:1\nT:none\nK:C\n", "\\title 'x' ."])
    assert docs[0][:2] == [codec.bos_id, codec.info["format_ids"]["abc"]] and len(docs[0]) > 20
    assert docs[1][:2] == [codec.bos_id, codec.info["format_ids"]["atex"]] and len(docs[1]) > 20
    assert docs[2] == [codec.bos_id, codec.info["format_ids"]["abc"]]  # no notes: counted
    assert docs[3] == [codec.bos_id, codec.info["format_ids"]["atex"]]
    assert codec.conversion_failed == 2
    notes = codec.decode_score(docs[1]).score.note_num()
    assert notes == alphatex.to_score(alphatex.parse(atex).ast).note_num()


def test_garbage_ids_are_counted_not_raised(codecs):
    codec = EventCodec.train([], [], kind="remi")
    rng = np.random.default_rng(0)
    bad = [
        [],  # nothing
        [codec.bos_id, codec.info["format_ids"]["midi"]],  # specials only
        [codec.vocab_size + 5, 3],  # outside the vocabulary
        [-1],
        [codec.tok.vocab["Bar_None"]] * 4,  # well-typed but no notes
    ]
    for ids in bad:
        result = codec.decode_score(ids)
        assert not result.ok and result.error
    assert codec.decode_failed == len(bad)
    for _ in range(20):  # random ids never raise; they decode or are counted
        result = codec.decode_score(rng.integers(0, codec.vocab_size, 200).tolist())
        assert result.ok or result.error
    assert codec.decode_failed >= len(bad)


def test_prompts(codecs):
    codec = codecs["remi"]
    assert codec.prompt_ids("abc") == [codec.bos_id, codec.info["format_ids"]["abc"]]
    ids = codec.prompt_ids("midi", "Bar_None Position_0")
    assert codec.decode(ids) == "Bar_None Position_0"
    with pytest.raises(ValueError, match="not remi event tokens"):
        codec.prompt_ids("midi", "X:1\nT:")


@pytest.mark.parametrize("kind,match", [("cpword", "vocabularies"), ("octuple", "vocabularies"),
                                        ("mmm", "not supported"), ("pertok", "not supported")])
def test_refused_kinds(kind, match):
    with pytest.raises(ValueError, match=match):
        train_codec(["x"], kind=kind, formats=["midi"])


def test_event_kind_needs_formats():
    with pytest.raises(ValueError, match="formats"):
        train_codec(["MIDI grid=4"], kind="remi")
    with pytest.raises(ValueError, match="1 formats for 2 texts"):
        train_codec(["a", "b"], kind="remi", formats=["midi"])
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        train_codec(["a"], kind="words")


def test_bad_settings_and_formats():
    from musicml.tokenizers.events import miditok_config

    with pytest.raises(ValueError, match="not a time signature: '6-8'"):
        miditok_config(EventSettings(time_signatures="3/4 6-8"))
    with pytest.raises(ValueError, match="unknown format 'mp3'"):
        text_to_score("mp3", "x")
    assert text_to_score("midi", "not midi text at all") is None


def test_load_refuses_a_tampered_tokenizer(codecs, tmp_path):
    save_codec(codecs["tsd"], tmp_path)
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    data["config"]["num_velocities"] = 8
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="digest"):
        load_codec(tmp_path)


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_midi_lake_end_to_end_with_remi(derived, tmp_path, monkeypatch):
    """The workflow's own steps on a small MIDI lake (plus one ABC file) with ``kind="remi"``:
    shards -> 5 training steps -> evaluation -> samples decoded back to MIDI."""
    from musicml import shards, workflow
    from musicml.curate.augment import AugmentConfig
    from musicml.lake import Lake
    from musicml.train import TrainConfig

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root
    lake = Lake(root=tmp_path / "lake", raw_dir=tmp_path / "lake" / "raw")
    lake.raw_dir.mkdir(parents=True)
    for p in (*derived.midi, *derived.multitrack, derived.abc_files[0]):
        shutil.copy(p, lake.raw_dir / p.name)
    workflow.ingest_step(lake, seed_default_corpus=False)
    workflow.parse_step(lake)
    workflow.dedup_step(lake)
    workflow.augment_step(lake, AugmentConfig(min_shift=-1, max_shift=1))
    workflow.split_step(lake)
    codec = workflow.tokenizer_step(lake, kind="remi")
    assert isinstance(codec, EventCodec) and codec.info["train_docs"] > 0
    manifest = workflow.shards_step(lake)
    assert manifest["documents_without_events"] == 0 and manifest["bos_id"] == codec.bos_id
    rows = pq.read_table(shards.shard_paths(lake.path("shards"), "train")[0]).column("tokens").to_pylist()
    assert all(r[0] == codec.bos_id for r in rows) and max(max(r) for r in rows) < codec.vocab_size
    uri = f"sqlite:///{lake.root / 'mlflow.db'}"
    cfg = TrainConfig(family="gpt", model={"n_layer": 1, "n_embd": 32, "n_head": 2}, seq_len=64,
                      device_batch_size=2, max_steps=5, eval_every=5, eval_tokens=256, checkpoint_every=5,
                      device="cpu")
    run = workflow.train_step(lake, cfg, tracking_uri=uri)
    assert run.result["steps"] == 5
    metrics = workflow.evaluate_step(lake, tracking_uri=uri, max_tokens=1024, validity_samples=1,
                                     max_new_tokens=32, device="cpu")
    assert np.isfinite(metrics["val_bpb"])  # bits per base event token
    generated, _, out_dir, _ = workflow.samples_step(lake, tracking_uri=uri, per_prompt=2, max_new_tokens=48,
                                                     device="cpu")
    assert {s.format for s in generated} == set(manifest["formats"])
    for s in generated:
        assert (out_dir / f"{s.name}.remi.txt").exists()
        assert s.decode_failed or s.files.get("midi"), s
    decoded = [s for s in generated if not s.decode_failed]
    for s in decoded:
        assert symusic.Score(s.files["midi"]).note_num() == s.notes > 0


def test_event_sample_saves_tokens_and_counts_failures(codecs, derived, tmp_path):
    from musicml.generate.samples import event_sample, render

    codec = codecs["tsd"]
    ids = codec.prompt_ids("midi") + codec.encode_score(symusic.Score(str(derived.midi[1])))
    good, score = event_sample(codec, "good", "midi", "", ids, tmp_path)
    assert good.syntax_ok and not good.decode_failed and good.notes == score.note_num() > 0
    assert (tmp_path / "good.tsd.txt").read_text().split()[0].startswith("TimeSig_")
    files = render(score, tmp_path / "good", "good", media=False)
    assert symusic.Score(files["midi"]).note_num() == good.notes
    bad, none = event_sample(codec, "bad", "midi", "", [codec.vocab_size + 1], tmp_path)
    assert none is None and bad.decode_failed and not bad.syntax_ok and bad.notes == 0
    assert bad.problems[0].startswith("decode failed: ")
    assert (tmp_path / "bad.tsd.txt").read_text().startswith("# ids outside the vocabulary")
