"""FractalGen-MIDI as a model family: the issue's checks, on real MIDI.

Real music comes from POP909 (``../shared/corpora``, skipped when absent) and from music21's ABC
corpus made into MIDI with symusic (always there). Models are micro-sized (roll_len 32).
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import polars as pl
import pytest
import torch
from conftest import derived_corpus
from symusic import Note, Score, Tempo, Track

from musicml import tracking, workflow
from musicml.checkpoint import load_model
from musicml.ingest import IngestConfig
from musicml.ingest.corpus import music21_abc_files
from musicml.lake import Lake
from musicml.models import build_model
from musicml.models.fractal import (
    FractalConfig,
    FractalGen,
    Level,
    count_parameters,
    guided_logits,
    to_classes,
)
from musicml.pianorolls.dataset import PianoRollConfig, build_piano_rolls, note_events
from musicml.pianorolls.grid import from_pianoroll, to_pianoroll
from musicml.pianorolls.loader import RollSet
from musicml.pianorolls.samples import classes_to_velocity, midi_to_classes, write_gif
from musicml.pianorolls.train import (
    FractalTrainConfig,
    baseline_bits,
    class_frequencies,
    evaluate_rolls,
    train_fractal,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
MICRO = {"roll_len": 32, "widths": [32, 16, 16], "depths": [1, 1, 1], "heads": [2, 2, 2], "num_iter": [2, 2, 2]}


def micro(**kw) -> FractalGen:
    torch.manual_seed(0)
    return FractalGen(FractalConfig.from_dict({**MICRO, **kw})).eval()


def abc_score(i: int = 0) -> Score:
    """A real tune (music21's ABC corpus) as a symusic score: MIDI without ../shared."""
    small = sorted(music21_abc_files(), key=lambda p: (p.stat().st_size, p.name))
    return Score.from_abc(small[i].read_text(encoding="utf-8", errors="replace"))


def real_roll(steps: int, bins: int = 8) -> torch.Tensor:
    """Class roll ``(128, steps)`` of a real tune, looped to ``steps``."""
    vel = to_pianoroll(abc_score(3), velocity=True)
    reps = -(-steps // vel.shape[1])
    return to_classes(torch.from_numpy(np.tile(vel, reps)[:, :steps] / 127.0), bins)


# ---- the grid ---------------------------------------------------------------------------------


@pytest.mark.parametrize("qpm", [120.0, 90.0])
def test_a_quarter_note_occupies_four_steps(qpm):
    s = Score(480)
    s.tempos.append(Tempo(0, qpm=qpm))
    t = Track("p", 0, False)
    t.notes.append(Note(480, 480, 60, 90))  # one quarter note, starting on beat 2
    s.tracks.append(t)
    roll = to_pianoroll(s)
    assert roll[60].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    from musicml.ingest.note_table import note_table

    ev = note_events(note_table(s, "p").with_columns(pl.lit(False).alias("is_drum")))
    assert ev.select("onset_step", "dur_step").row(0) == (4, 4)
    back = from_pianoroll(roll, tempo=120)  # written at 120 BPM: 4 steps = 0.5 s
    assert back.tracks[0].notes[0].duration == back.tpq
    assert math.isclose(back.to("second").tracks[0].notes[0].duration, 0.5)


def test_written_and_reread_roll_keeps_onsets(tmp_path):
    for score in (Score(str(derived_corpus().band)), abc_score(5)):  # three tracks with drums; a tune
        roll = to_pianoroll(score, velocity=True)
        path = tmp_path / "roll.mid"
        from_pianoroll(roll).dump_midi(str(path))
        again = to_pianoroll(Score(str(path)), velocity=True, length=roll.shape[1])
        assert (again == roll).all()
        onsets = lambda r: {(p, t) for p, t in zip(*np.nonzero(np.diff(np.pad(r, ((0, 0), (1, 0))), axis=1)))  # noqa: E731
                            if r[p, t] > 0}
        assert onsets(again) == onsets(roll) and len(onsets(roll)) > 50


# ---- the data asset ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def abc_lake(tmp_path_factory) -> Lake:
    """A lake built by the workflow's own steps from 40 real ABC tunes, with piano rolls."""
    root = tmp_path_factory.mktemp("fractal-lake")
    lake = Lake(root=root, raw_dir=root / "raw")
    lake.raw_dir.mkdir(parents=True)
    for p in sorted(music21_abc_files(), key=lambda p: (p.stat().st_size, p.name))[:40]:
        shutil.copyfile(p, lake.raw_dir / p.name)
    workflow.ingest_step(lake, IngestConfig(isolate=False), seed_default_corpus=False)
    workflow.parse_step(lake)
    workflow.dedup_step(lake)
    workflow.augment_step(lake)
    workflow.split_step(lake)
    build_piano_rolls(lake)
    return lake


def test_rolls_follow_the_splits_and_shifts(abc_lake):
    rolls = pl.read_parquet(abc_lake.path("pianorolls", "rolls.parquet"))
    splits = pl.read_parquet(abc_lake.path("curated", "splits.parquet"))
    joined = rolls.join(splits.select(pl.col("row_id").alias("roll_id"), pl.col("split").alias("s2")), on="roll_id")
    assert joined.height == rolls.height and (joined["split"] == joined["s2"]).all()
    assert set(rolls["split"]) == {"train", "valid", "test"}
    assert (rolls.filter(pl.col("split") != "train")["shift"] == 0).all()  # eval splits: originals only
    assert rolls.filter(pl.col("split") == "train")["shift"].n_unique() > 1
    events = pl.read_parquet(abc_lake.path("pianorolls", "events.parquet"))
    assert set(events.columns) == {"piece_id", "pitch", "onset_step", "dur_step", "velocity"}
    assert events["dur_step"].min() >= 1


def test_loader_densifies_crops_with_shift_and_padding(abc_lake):
    train = RollSet.load(abc_lake.path("pianorolls"), "train")
    r = train.rolls.with_row_index("i")
    row = r.filter(pl.col("shift") != 0).row(0, named=True)
    base = r.filter((pl.col("piece_id") == row["piece_id"]) & (pl.col("shift") == 0)).row(0, named=True)
    steps = row["steps"]
    a, real, onsets = train.crop(row["i"], 0, steps + 20)
    b, _, _ = train.crop(base["i"], 0, steps + 20)
    k = row["shift"]
    assert np.array_equal(np.roll(b, k, axis=0), a) and a.max() <= 1.0 and a.max() > 0
    assert real[:, :steps].all() and not real[:, steps:].any()
    assert onsets == row["notes"]
    vel, real, labels = train.random_batch(4, crop=32, rng=np.random.default_rng(0))
    assert vel.shape == real.shape == (4, 128, 32) and labels.tolist() == [2, 2, 2, 2]  # abc
    with pytest.raises(FileNotFoundError):
        RollSet.load(abc_lake.path("nowhere"), "train")


def test_drums_left_out_by_default():
    notes = pl.DataFrame({"piece_id": ["p", "p"], "pitch": [36, 60], "onset": [0, 0], "duration": [6, 6],
                          "velocity": [100, 80], "is_drum": [True, False]})
    assert note_events(notes)["pitch"].to_list() == [60]
    assert sorted(note_events(notes, include_drums=True)["pitch"].to_list()) == [36, 60]
    assert PianoRollConfig().include_drums is False


# ---- the model --------------------------------------------------------------------------------


def test_sizes_are_as_documented():
    assert count_parameters(FractalGen(FractalConfig.preset("tiny"))) == 271_689
    assert count_parameters(FractalGen(FractalConfig.preset("gpu"))) == 29_284_361


def test_bad_configs_and_inputs():
    with pytest.raises(ValueError, match="multiple of 16"):
        FractalConfig(roll_len=40)
    with pytest.raises(ValueError, match="mar"):
        FractalConfig(kinds=["mar", "diffusion", "ar"])
    with pytest.raises(ValueError, match="unknown FractalConfig"):
        FractalConfig.from_dict({"width": 3})
    with pytest.raises(ValueError, match="unknown fractal preset"):
        FractalConfig.preset("huge")
    m = micro()
    with pytest.raises(ValueError, match="multiple of 16"):
        m(torch.zeros(1, 128, 20, dtype=torch.long))
    with pytest.raises(ValueError, match="steps"):
        m.sample(0)
    with pytest.raises(ValueError, match="temperature"):
        m.sample(16, temperature=0)
    with pytest.raises(ValueError, match="known"):
        m.sample(16, roll=torch.zeros(128, 16, dtype=torch.long))


def test_padding_changes_no_loss():
    m = micro().train()
    roll = real_roll(32)[None].repeat(2, 1, 1)
    real = torch.ones_like(roll, dtype=torch.bool)
    real[:, :, 20:] = False
    garbage = roll.clone()
    garbage[:, :, 20:] = torch.randint(0, 9, (2, 128, 12))
    losses = []
    for r in (roll, garbage):
        torch.manual_seed(1)
        out = m(r, real, torch.ones(2, dtype=torch.long))
        losses.append((float(out["loss_sum"].detach()), float(out["cells"])))
    assert losses[0] == losses[1]
    assert 0 < losses[0][1] <= int(real.sum())


def test_every_item_gets_loss_even_when_nearly_all_padding():
    m = micro().train()
    roll = real_roll(32)[None]
    real = torch.zeros_like(roll, dtype=torch.bool)
    real[:, :, :1] = True  # one real column
    torch.manual_seed(0)
    out = m(roll, real)
    assert 0 < float(out["cells"]) <= 128


def test_cfg_zero_and_one_are_the_unconditional_and_conditional_distributions():
    c, u = torch.randn(5, 9), torch.randn(5, 9)
    assert torch.equal(guided_logits(c, u, 0.0), u) and torch.allclose(guided_logits(c, u, 1.0), c)
    m = micro()
    with torch.no_grad():
        m.levels[0].label.weight[1] += 3.0 * torch.randn(32)  # make the condition matter
    draws = {}
    for name, cfg, label in (("cfg0", 0.0, 1), ("uncond", 1.0, 0), ("cond", 1.0, 1)):
        torch.manual_seed(7)
        draws[name] = m.sample(32, batch=2, labels=torch.full((2,), label), cfg=cfg)
    assert torch.equal(draws["cfg0"], draws["uncond"])  # guided branch at cfg 0 = unconditional
    roll = real_roll(32)[None]
    nll = []
    for label in (0, 1):  # and the condition changes the distribution (the original's was inert)
        torch.manual_seed(0)
        nll.append(float(m.nll(roll, labels=torch.tensor([label]))))
    assert abs(nll[0] - nll[1]) > 1e-3


def test_condition_dropout_trains_the_unconditional_token():
    for drop, trained, untouched in ((1.0, 0, 1), (0.0, 1, 0)):
        m = micro(cond_drop=drop).train()
        m(real_roll(32)[None], labels=torch.ones(1, dtype=torch.long))["loss"].backward()
        g = m.levels[0].label.weight.grad
        assert g[trained].abs().sum() > 0 and g[untouched].abs().sum() == 0


def test_sparsity_bias_and_temperature_act_on_the_logits():
    m = micro()
    torch.manual_seed(0)
    assert (m.sample(32, sparsity_bias=50.0) == 0).all()
    torch.manual_seed(0)
    assert (m.sample(32, sparsity_bias=-50.0) > 0).all()
    torch.manual_seed(0)
    cold = m.sample(32, batch=2, temperature=0.05)
    torch.manual_seed(1)
    cold2 = m.sample(32, batch=2, temperature=0.05)
    torch.manual_seed(0)
    hot = m.sample(32, batch=2, temperature=20.0)
    assert (cold != cold2).float().mean() < (hot != cold).float().mean()


@pytest.mark.parametrize("kinds", [["mar", "mar", "mar"], ["ar", "mar", "mar"]])
@pytest.mark.parametrize("steps", [32, 37, 70])
def test_prefix_comes_back_unchanged(kinds, steps):
    m = micro(kinds=kinds, num_iter=[2, 1, 1])
    roll = real_roll(steps)
    known = torch.zeros_like(roll, dtype=torch.bool)
    known[:, :19] = True  # a prefix that is not a multiple of 16
    torch.manual_seed(0)
    out = m.sample(steps, roll=roll, known=known)
    assert out.shape == (1, 128, steps)
    assert torch.equal(out[0, :, :19], roll[:, :19])


@pytest.mark.parametrize("steps", [32, 45])
def test_inpainting_keeps_everything_outside_the_range(steps):
    m = micro()
    roll = real_roll(steps)
    known = torch.ones_like(roll, dtype=torch.bool)
    known[:, 5:27] = False
    torch.manual_seed(0)
    out = m.sample(steps, roll=roll[None].repeat(2, 1, 1), known=known, sparsity_bias=-2.0)[0]
    assert torch.equal(out[known], roll[known])
    assert not torch.equal(out[:, 5:27], roll[:, 5:27])  # the range was regenerated


def test_prefix_conditions_the_continuation():
    """The prefix is context, not pasted over an unconditional sample: the continuation's
    likelihood changes with the prefix, and samples keep the prefix."""
    m = micro(kinds=["ar", "mar", "mar"])
    known = torch.zeros(1, 128, 32, dtype=torch.bool)
    known[..., :16] = True
    cont = real_roll(32)[None]
    nll = []
    for prefix in (real_roll(48)[:, 16:], torch.zeros(128, 16, dtype=torch.long)):
        roll = cont.clone()
        roll[0, :, :16] = prefix[:, :16]
        torch.manual_seed(3)
        nll.append(float(m.nll(roll, known=known)))
    assert abs(nll[0] - nll[1]) > 1e-3


def test_ar_scan_is_time_causal():
    """Column-major: a time column's outputs do not depend on any later column's content."""
    cfg = FractalConfig.from_dict({**MICRO, "kinds": ["ar", "mar", "mar"]})
    torch.manual_seed(0)
    level = Level(cfg, 0).eval()
    u = 8 * 2  # 8 pitch patches x 2 time columns
    vals = torch.rand(1, u, 256)
    later = vals.clone()
    later[:, 8:] = torch.rand(1, 8, 256)  # change the second time column only
    cond = level.label(torch.ones(1, dtype=torch.long))[:, None]
    ones, vis = torch.ones(1, u, 256), torch.ones(1, u, dtype=torch.bool)
    a, b = level(vals, ones, vis, cond), level(later, ones, vis, cond)
    assert torch.allclose(a[:, :9], b[:, :9], atol=1e-6)  # unit 8 sees columns < it: only column 0
    assert not torch.allclose(a[:, 9:], b[:, 9:])


def test_frames_show_every_level_refining():
    m = micro()
    frames = []
    torch.manual_seed(0)
    out = m.sample(32, on_frame=frames.append)
    per_level = 2 * (1 + 2 * (1 + 2))  # L0 steps x (1 + L1 steps x (1 + L2 steps))
    assert len(frames) == per_level
    undone = [int((f < 0).sum()) for f in frames]
    assert undone == sorted(undone, reverse=True) and undone[-1] == 0
    assert torch.equal(frames[-1], out)


# ---- training, likelihood, baseline -----------------------------------------------------------


def test_nll_scores_only_real_cells():
    m = micro()
    roll = real_roll(32)[None]
    real = torch.ones_like(roll, dtype=torch.bool)
    nll = m.nll(roll, real)
    assert nll.shape == (1,) and float(nll) > 0
    padded = real.clone()
    padded[..., 16:] = False
    assert float(m.nll(roll, padded)) < float(nll)  # padding is not scored


def train_cfg(steps: int, **kw) -> FractalTrainConfig:
    return FractalTrainConfig(preset="tiny", model=dict(MICRO, **kw.pop("model", {})), max_steps=steps,
                              batch_size=8, lr=3e-3, warmup_steps=5, eval_every=0, eval_windows=4,
                              checkpoint_every=kw.pop("checkpoint_every", 0), device="cpu", **kw)


def test_training_lowers_held_out_bits_and_resumes(abc_lake, tmp_path):
    rolls = abc_lake.path("pianorolls")
    valid = RollSet.load(rolls, "valid")
    torch.manual_seed(0)
    before = evaluate_rolls(FractalGen(train_cfg(1).model_config()), valid, max_windows=8)
    logged = []
    r = train_fractal(train_cfg(24, checkpoint_every=12), rolls, tmp_path / "run",
                      log=lambda s, m: logged.append((s, m)))
    model, meta = load_model(r["checkpoint"])
    after = evaluate_rolls(model, valid, max_windows=8)
    assert after["bpc"] < before["bpc"]
    assert meta["family"] == "fractal" and meta["step"] == 24
    assert {"level0_mask_ratio", "level1_units", "level2_units", "cells_per_s"} <= set(logged[-1][1])
    # resuming a finished run trains no more; a longer max_steps continues from the checkpoint
    r2 = train_fractal(train_cfg(28, checkpoint_every=12), rolls, tmp_path / "run")
    assert r2["resumed_from_step"] == 24 and r2["steps"] == 28
    with pytest.raises(ValueError, match="another model config"):
        train_fractal(train_cfg(60, model={"widths": [32, 32, 16]}), rolls, tmp_path / "run")


@pytest.mark.slow
def test_tiny_model_beats_the_silence_baseline(abc_lake, tmp_path):
    rolls = abc_lake.path("pianorolls")
    r = train_fractal(train_cfg(300), rolls, tmp_path / "run")
    model, _ = load_model(r["checkpoint"])
    valid, train = RollSet.load(rolls, "valid"), RollSet.load(rolls, "train")
    freq = class_frequencies(train, 8, 32)
    base = baseline_bits(freq, valid, 8, 32, max_windows=32)
    got = evaluate_rolls(model, valid, max_windows=32)
    assert got["bpc"] < base["bpc"]


# ---- generation command, samples, workflow ----------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(abc_lake, tmp_path_factory):
    r = train_fractal(train_cfg(3), abc_lake.path("pianorolls"), tmp_path_factory.mktemp("ck"))
    return r["checkpoint"]


def test_generate_command_three_modes(checkpoint, tmp_path, capsys):
    from musicml.generate.__main__ import main

    midi = tmp_path / "in.mid"
    abc_score(3).dump_midi(str(midi))
    src = midi_to_classes(midi, 8, steps=40)
    base = ["--model", checkpoint, "--num-iter", "2"]
    assert main(base + ["--mode", "unconditional", "--steps", "40", "--out", str(tmp_path / "u.mid"), "--render"]) == 0
    assert {p.suffix for p in tmp_path.iterdir()} >= {".mid", ".png", ".wav", ".gif"}
    assert main(base + ["--mode", "prefix", "--midi", str(midi), "--end", "19", "--steps", "40",
                        "--out", str(tmp_path / "p.mid")]) == 0
    out = midi_to_classes(tmp_path / "p.mid", 8, steps=40)
    assert torch.equal(out[:, :19], src[:, :19])
    assert main(base + ["--mode", "inpaint", "--midi", str(midi), "--start", "8", "--end", "24", "--steps", "40",
                        "--out", str(tmp_path / "i.mid")]) == 0
    out = midi_to_classes(tmp_path / "i.mid", 8, steps=40)
    keep = torch.ones(128, 40, dtype=torch.bool)
    keep[:, 8:24] = False
    assert torch.equal(out[keep], src[keep])
    assert '"mode": "inpaint"' in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--mode", "prefix", "--end", "4"], "needs --midi"),
    (["--mode", "inpaint", "--midi", "x.mid", "--end", "4"], "inpaint needs"),
    (["--model", "models:/fractal@best"], "no such model"),
    (["--model", "runs:/no-such-run"], "no such model"),
    (["--model", "no-such-run"], "neither a checkpoint"),
])
def test_generate_command_bad_input(checkpoint, tmp_path, capsys, args, message):
    from musicml.generate.__main__ import main

    midi = tmp_path / "x.mid"
    abc_score(3).dump_midi(str(midi))
    args = [str(midi) if a == "x.mid" else a for a in args]
    model = [] if "--model" in args else ["--model", checkpoint]
    with pytest.raises(SystemExit):
        main(model + args + ["--steps", "16", "--out", str(tmp_path / "o.mid"),
                             "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert message in capsys.readouterr().err


def test_gif_and_velocity_bins(tmp_path):
    from PIL import Image

    frames = [torch.full((128, 16), -1), torch.zeros(128, 16, dtype=torch.long), torch.full((128, 16), 8)]
    info = write_gif(frames, tmp_path / "g.gif", bins=8)
    assert info["frames"] == 3 and Image.open(tmp_path / "g.gif").n_frames == 3
    assert classes_to_velocity(np.arange(9), 8).tolist() == [0, 8, 24, 40, 56, 71, 87, 103, 119]
    with pytest.raises(ValueError):
        write_gif([], tmp_path / "e.gif", bins=8)


def test_registry_builds_and_workflow_runs_fractal(abc_lake, tmp_path, monkeypatch):
    """trained_model -> model_evaluation -> generated_samples for family fractal, through the workflow."""
    assert isinstance(build_model("fractal", MICRO), FractalGen)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = workflow.train_step(abc_lake, train_cfg(4), tracking_uri=uri)
    assert run.result["steps"] == 4 and run.name.startswith("fractal-")
    logged = tracking.client(uri).get_run(run.mlflow_run_id).data.metrics
    assert "system/cpu_utilization_percentage" in logged and "system/system_memory_usage_megabytes" in logged
    metrics = workflow.evaluate_step(abc_lake, tracking_uri=uri, device="cpu")
    assert {"val_bpn", "test_bpn", "val_bpc", "baseline_val_bpn", "baseline_test_bpc"} <= set(metrics)
    assert metrics["val_notes"] > 0
    made, summary, out_dir, _ = workflow.samples_step(abc_lake, tracking_uri=uri, per_prompt=1, device="cpu")
    assert [s.prompt for s in made] == ["unconditional", "prefix", "inpaint"]
    assert all({"midi", "png", "wav", "gif"} <= set(s.files) for s in made)
    assert summary["samples"] == 3
    from musicml.generate.__main__ import resolve_checkpoint

    assert resolve_checkpoint(run.mlflow_run_id, uri).suffix == ".pt"  # an MLflow run id works as --model
