"""A training run cut off mid-way resumes as the same MLflow run, its loss curve continuing.

End to end through ``musicml.workflow.train_step`` with the in-process launcher: a tiny lake
(synthetic ABC texts -> char tokenizer -> shards, written by the workflow's own steps), a
1-layer GPT, and a sqlite MLflow store per lake. A kill is simulated the way
``tests/test_train.py`` does it: the launcher's ``log`` callback raises ``KeyboardInterrupt``
right after a step is logged.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from musicml import tracking, workflow
from musicml.lake import Lake, read_json, write_parquet
from musicml.train import TrainConfig

MAX_STEPS, CKPT_EVERY = 24, 8
CFG = TrainConfig(family="gpt", model={"n_layer": 1, "n_embd": 32, "n_head": 2}, seq_len=64,
                  device_batch_size=4, max_steps=MAX_STEPS, eval_every=8, eval_tokens=512,
                  checkpoint_every=CKPT_EVERY, keep_last=2, device="cpu", window_docs=32)
# MetricsLogger flushes every 50 metrics (val_bpb@0 + 4 metrics/step on CPU reach 50 at step 12)
# and at every checkpoint: a cut at 15 has flushed steps past its last checkpoint (8), a cut at 19
# has buffered steps since the flush at its last checkpoint (16). Both must resume to 1..24, once.
CUTS = [15, 19]
# log_dataset's schema and dataset-source hints are noise here
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning:mlflow"),
              pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    """An empty, initialized MLflow sqlite store; copied per lake (creating tables is slow)."""
    root = tmp_path_factory.mktemp("mlflow-template")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # MLflow's default artifact root is ./mlruns: keep it out of the repo
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracking.client(f"sqlite:///{root / 'mlflow.db'}").search_experiments()
    return root / "mlflow.db"


def make_lake(root: Path, template_db: Path) -> tuple[Lake, str]:
    """A tiny lake with tokenizer and shards, and its own MLflow store; ``(lake, uri)``."""
    lake = Lake(root=root.resolve(), raw_dir=root.resolve() / "raw")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        bars = " ".join("".join(rng.choice(list("CDEFGABcdefg"), 4))
                        for _ in range(int(rng.integers(6, 20))))
        text = f"X:{i}\nK:C\n|{bars}|\n"
        rows.append({"aug_id": f"a{i:03d}", "piece_id": f"p{i:03d}", "work_id": f"w{i:03d}",
                     "format": "abc", "shift": 0, "text": text, "text_bytes": len(text)})
    aug = pl.DataFrame(rows, schema_overrides={"shift": pl.Int8})
    write_parquet(lake.path("curated", "augmented.parquet"), aug)
    splits = ["train"] * 48 + ["valid"] * 6 + ["test"] * 6
    write_parquet(lake.path("curated", "splits.parquet"),
                  pl.DataFrame({"row_id": aug["aug_id"], "kind": ["augmented"] * 60,
                                "split": splits}))
    workflow.tokenizer_step(lake, kind="char")
    workflow.shards_step(lake)
    shutil.copy(template_db, lake.root / "mlflow.db")
    return lake, f"sqlite:///{lake.root / 'mlflow.db'}"


def killing_launcher(cut: int) -> workflow.Launcher:
    """The in-process launcher, killed right after step ``cut`` is logged."""

    def log(step: int, metrics: dict) -> None:
        if "train_loss" in metrics and step == cut:
            raise KeyboardInterrupt("simulated kill")

    return workflow.inprocess_launcher(log)


def history(uri: str, run_id: str) -> list[tuple[int, float]]:
    """``(step, value)`` of train_loss in the order it was logged."""
    metrics = tracking.client(uri).get_metric_history(run_id, "train_loss")
    return [(m.step, m.value) for m in sorted(metrics, key=lambda m: (m.timestamp, m.step))]


def status(uri: str, run_id: str) -> str:
    return tracking.client(uri).get_run(run_id).info.status


@pytest.fixture(scope="module")
def reference(tmp_path_factory, template_db) -> dict[int, float]:
    """train_loss per step of an uninterrupted run, in its own lake and store."""
    root = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        lake, uri = make_lake(root / "lake", template_db)
        run = workflow.train_step(lake, CFG, tracking_uri=uri)
    steps = history(uri, run.mlflow_run_id)
    assert [s for s, _ in steps] == list(range(1, MAX_STEPS + 1))
    return dict(steps)


@pytest.fixture(scope="module", params=CUTS, ids=[f"cut{c}" for c in CUTS])
def cut_run(request, tmp_path_factory, template_db) -> dict:
    """Kill a run after step ``cut``, snapshot MLflow and the run dir, then resume it."""
    cut = request.param
    root = tmp_path_factory.mktemp(f"cut{cut}")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        lake, uri = make_lake(root / "lake", template_db)
        with pytest.raises(KeyboardInterrupt):
            workflow.train_step(lake, CFG, tracking_uri=uri, launcher=killing_launcher(cut))
        (run_dir,) = (lake.root / "models").iterdir()
        killed_id = read_json(run_dir / "run.json")["mlflow_run_id"]
        killed = {"run_id": killed_id, "status": status(uri, killed_id),
                  "history": history(uri, killed_id),
                  "checkpoints": sorted(p.name for p in (run_dir / "checkpoints").iterdir()),
                  "latest_exists": (lake.root / "models" / "latest.json").exists()}
        resumed = workflow.train_step(lake, CFG, tracking_uri=uri)
    return {"cut": cut, "lake": lake, "uri": uri, "run_dir": run_dir, "killed": killed,
            "resumed": resumed, "history": history(uri, resumed.mlflow_run_id)}


def test_cut_off_run_is_killed_with_checkpoints(cut_run):
    cut, killed = cut_run["cut"], cut_run["killed"]
    assert killed["status"] == "KILLED"
    assert all(step <= cut for step, _ in killed["history"])  # nothing past the cut
    last_ckpt = cut // CKPT_EVERY * CKPT_EVERY
    assert killed["checkpoints"][-1] == f"step_{last_ckpt:06d}.pt"
    assert not killed["latest_exists"]  # models/latest.json is written only on success


def test_resume_continues_the_same_mlflow_run(cut_run):
    cut, uri, resumed = cut_run["cut"], cut_run["uri"], cut_run["resumed"]
    assert resumed.mlflow_run_id == cut_run["killed"]["run_id"]
    assert read_json(cut_run["run_dir"] / "run.json")["mlflow_run_id"] == resumed.mlflow_run_id
    assert status(uri, resumed.mlflow_run_id) == "FINISHED"
    from_step = resumed.result["resumed_from_step"]
    assert from_step == cut // CKPT_EVERY * CKPT_EVERY > 0
    assert resumed.result["steps"] == MAX_STEPS
    steps = {s for s, _ in cut_run["history"]}
    assert set(range(from_step + 1, MAX_STEPS + 1)) <= steps  # the resumed part, all logged
    assert max(steps) == MAX_STEPS
    latest = read_json(cut_run["lake"].root / "models" / "latest.json")
    assert latest["mlflow_run_id"] == resumed.mlflow_run_id


def test_resumed_losses_match_an_uninterrupted_run(cut_run, reference):
    # train.py checkpoints model, optimizers, data position and RNG: bitwise on CPU
    for step, value in cut_run["history"]:
        assert value == pytest.approx(reference[step], abs=1e-4), step
    assert cut_run["resumed"].result["train_loss"] == pytest.approx(reference[MAX_STEPS],
                                                                     abs=1e-4)


def test_resumed_metric_history_is_complete_without_duplicates(cut_run, reference):
    # logged order: strictly increasing steps 1..max_steps, each once, equal to the reference
    steps = [s for s, _ in cut_run["history"]]
    assert steps == list(range(1, MAX_STEPS + 1))
    assert dict(cut_run["history"]) == pytest.approx(reference, abs=1e-4)


def test_fresh_starts_a_new_mlflow_run(tmp_path, template_db, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lake, uri = make_lake(tmp_path / "lake", template_db)
    with pytest.raises(KeyboardInterrupt):
        workflow.train_step(lake, CFG, tracking_uri=uri, launcher=killing_launcher(10))
    (run_dir,) = (lake.root / "models").iterdir()
    killed_id = read_json(run_dir / "run.json")["mlflow_run_id"]
    run = workflow.train_step(lake, CFG, tracking_uri=uri, fresh=True)
    assert run.mlflow_run_id != killed_id and run.run_dir == run_dir
    assert run.result["resumed_from_step"] is None and run.result["steps"] == MAX_STEPS
    assert read_json(run_dir / "run.json")["mlflow_run_id"] == run.mlflow_run_id
    assert status(uri, killed_id) == "KILLED" and status(uri, run.mlflow_run_id) == "FINISHED"
    assert [s for s, _ in history(uri, run.mlflow_run_id)] == list(range(1, MAX_STEPS + 1))
