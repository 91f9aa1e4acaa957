"""``python -m musicml.train``: flags generated from TrainConfig, presets, and a lake as the default input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from musicml import workflow
from musicml.curate.augment import AugmentConfig
from musicml.curate.splits import SplitConfig
from musicml.ingest.corpus import music21_abc_files
from musicml.lake import Lake, read_json
from musicml.shards import read_manifest
from musicml.train import PRESETS, TrainConfig, preset_config
from musicml.train.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--model", '{"n_layer": 1, "n_embd": 32, "n_head": 2}', "--seq-len", "32", "--device-batch-size", "2",
        "--eval-tokens", "128", "--device", "cpu", "--window-docs", "16"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    """A small real lake (music21's smallest ABC tunes) up to its char tokenizer and shards."""
    root = tmp_path_factory.mktemp("cli-lake").resolve()
    lk = Lake(root=root, raw_dir=root / "raw")
    lk.raw_dir.mkdir()
    for f in sorted(music21_abc_files(), key=lambda p: (p.stat().st_size, p.name))[:12]:
        shutil.copy(f, lk.raw_dir / f.name)
    workflow.ingest_step(lk, seed_default_corpus=False)
    workflow.parse_step(lk)
    workflow.dedup_step(lk)
    workflow.augment_step(lk, AugmentConfig(min_shift=0, max_shift=0))
    workflow.split_step(lk, SplitConfig(valid_ratio=0.2, test_ratio=0.2, min_valid_works=1, min_test_works=1))
    workflow.tokenizer_step(lk, kind="char")
    workflow.shards_step(lk)
    return lk


def dry_run(capsys, *argv: str) -> dict:
    assert main([*argv, "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


def test_help_lists_the_presets_and_every_train_config_field(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--preset {auto,gpu,cpu}" in out
    for name, values in PRESETS.items():
        assert f"{name:4} {json.dumps(values)}" in out
    for field in TrainConfig.__dataclass_fields__:
        assert "--" + field.replace("_", "-") in out
    assert "tokens per training row (default: 256)" in out  # help from the field's comment


def test_lake_supplies_shards_bos_token_bytes_and_run_folder(lake, capsys) -> None:
    got = dry_run(capsys, "--lake", str(lake.root), "--preset", "cpu")
    info = read_json(lake.path("tokenizer", "tokenizer_info.json"))
    assert got["bos_id"] == info["bos_id"]
    assert got["shards"] == str(lake.path("shards"))
    assert got["token_bytes"] == str(lake.path("tokenizer", "token_bytes.npy"))
    cfg = preset_config("cpu")
    assert got["config"] == cfg.to_dict()
    name = workflow.run_name(cfg, read_manifest(lake.path("shards"))["digest"])
    assert got["out"] == str(lake.path("models", "cli", name))


def test_lake_defaults_to_musicml_lake(lake, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MUSICML_LAKE", str(lake.root))
    monkeypatch.delenv("MUSICML_RAW_DIR", raising=False)
    assert dry_run(capsys, "--preset", "cpu")["shards"] == str(lake.path("shards"))


def test_config_order_defaults_preset_file_flags(lake, capsys, tmp_path) -> None:
    gpu = dry_run(capsys, "--lake", str(lake.root), "--preset", "gpu", "--max-steps", "7",
                  "--model", '{"n_layer": 6}')["config"]
    assert gpu["seq_len"] == 512 and gpu["total_batch_tokens"] == 4096 and gpu["max_steps"] == 7
    assert gpu["model"] == {"n_layer": 6, "n_embd": 128, "n_head": 2}  # merged into the preset's shape
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"family": "bigram", "seq_len": 64, "max_steps": 9}))
    as_is = dry_run(capsys, "--lake", str(lake.root), "--config", str(cfg_file), "--seed", "3")["config"]
    assert as_is == TrainConfig(family="bigram", seq_len=64, max_steps=9, seed=3).to_dict()  # no preset
    with_preset = dry_run(capsys, "--lake", str(lake.root), "--config", str(cfg_file), "--preset", "gpu")["config"]
    assert with_preset["seq_len"] == 64 and with_preset["total_batch_tokens"] == 4096
    assert with_preset["model"] == {}  # the preset's GPT shape does not apply to the bigram
    none = dry_run(capsys, "--lake", str(lake.root), "--preset", "gpu", "--total-batch-tokens", "none")["config"]
    assert none["total_batch_tokens"] is None  # "none" sets a nullable field to None


def test_trains_from_a_lake_into_a_run_folder_the_same_command_finds_again(lake, capsys) -> None:
    argv = ["--lake", str(lake.root), "--preset", "cpu", *TINY, "--max-steps", "2", "--eval-every", "0",
            "--checkpoint-every", "0"]
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    result = lines[-1]["result"]
    assert result["steps"] == 2 and result["resumed_from_step"] is None
    assert [e["step"] for e in lines if "train_loss" in e] == [1, 2]
    assert Path(result["checkpoint"]).parents[2] == lake.path("models", "cli")
    assert main(argv) == 0  # the same command again: the same run folder, resumed (already finished)
    again = json.loads(capsys.readouterr().out.splitlines()[-1])["result"]
    assert again["resumed_from_step"] == 2 and again["steps"] == 2
    assert again["checkpoint"] == result["checkpoint"]


def test_warm_start_latest_from_the_command_line(lake, capsys) -> None:
    base = ["--lake", str(lake.root), "--preset", "cpu", *TINY, "--eval-every", "0", "--checkpoint-every", "0"]
    assert main([*base, "--max-steps", "3"]) == 0
    source = json.loads(capsys.readouterr().out.splitlines()[-1])["result"]
    info = read_json(lake.path("tokenizer", "tokenizer_info.json"))
    latest = {"run_dir": str(Path(source["checkpoint"]).parents[1]), "checkpoint": source["checkpoint"],
              "tokenizer_digest": info["digest"], "name": "source"}  # as train_step records a finished run
    lake.path("models", "latest.json").write_text(json.dumps(latest))
    try:
        assert main([*base, "--max-steps", "2", "--warm-start", "latest"]) == 0
        result = json.loads(capsys.readouterr().out.splitlines()[-1])["result"]
    finally:
        lake.path("models", "latest.json").unlink()
    assert result["warm_started_from"] == source["checkpoint"] and result["steps"] == 2
    assert Path(result["checkpoint"]).parents[1] != Path(source["checkpoint"]).parents[1]  # its own run


def test_module_command_works_as_written(lake, tmp_path) -> None:
    """The README's form, in a fresh process: ``python -m musicml.train --lake DIR --preset cpu ...``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "musicml.train", "--lake", str(lake.root), "--preset", "cpu", *TINY,
           "--max-steps", "2", "--eval-every", "1", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])["result"]
    assert result["steps"] == 2 and result["val_bpb"] > 0
    assert (out / "checkpoints" / "step_000002.pt").is_file()
    assert "training gpt" in proc.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--preset", "tpu"], "invalid choice: 'tpu'"),
        (["--model", "[1, 2]"], "expected a JSON object"),
        (["--model", "{not json"], "invalid _json_object value"),
        (["--max-steps", "many"], "invalid int value"),
        (["--shards", "somewhere"], "--shards needs --bos, --token-bytes, --out"),
    ],
)
def test_bad_flags_are_refused(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--dry-run"])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_config_file_keys_are_refused(tmp_path, capsys) -> None:
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"depth": 4}))  # depth lives in model now
    with pytest.raises(SystemExit):
        main(["--config", str(cfg_file), "--lake", str(tmp_path), "--dry-run"])
    assert "unknown TrainConfig keys: ['depth']" in capsys.readouterr().err


def test_a_lake_without_shards_is_refused_with_what_to_do(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--lake", str(tmp_path / "empty"), "--dry-run"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "no shards and tokenizer in the lake" in err and "+token_shards" in err
