"""Model Registry: every model logged (no pickle) and registered; ``champion`` moves only when better.

A tiny lake (the workflow's own steps, as in ``tests/test_workflow_resume.py``) trained once for
a few steps; its checkpoint is registered several times with evaluation figures chosen to be
worse, better or on another test split, so every decision is exercised without retraining.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from test_workflow_resume import make_lake, template_db  # noqa: F401  (template_db: a fixture)

from musicml import registry, tracking, workflow
from musicml.checkpoint import load_model
from musicml.lake import read_json, write_json
from musicml.train import TrainConfig

CFG = TrainConfig(family="gpt", model={"n_layer": 1, "n_embd": 16, "n_head": 2}, seq_len=32,
                  device_batch_size=2, max_steps=2, eval_every=0, eval_tokens=128,
                  checkpoint_every=2, keep_last=1, device="cpu", window_docs=8)
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, template_db):  # noqa: F811
    lake, uri = make_lake(tmp_path_factory.mktemp("lake"), template_db)
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
        warnings.simplefilter("ignore")
        mp.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.05")  # the training lasts about a second
        workflow.train_step(lake, CFG, tracking_uri=uri)
    return lake, uri, read_json(lake.path("models", "latest.json"))


def register(trained, value: float, digest: str | None = None, metric: str = "test_bpn") -> dict:
    lake, uri, run = trained
    return registry.log_and_register(uri, run["mlflow_run_id"], run["checkpoint"], lake.path("tokenizer"),
                                     run["train_config"], {metric: value, "test_bpb": value / 10},
                                     digest or registry.test_split_digest(lake), formats=["abc"])


def champion(c) -> str:
    return str(c.get_model_version_by_alias("musicml-abc", "champion").version)


def test_champion_moves_only_when_better_on_the_same_split(trained):
    lake, uri, _ = trained
    c = tracking.client(uri)
    first = register(trained, 2.0)
    assert first["decision"] == registry.FIRST and first["name"] == "musicml-abc"
    assert champion(c) == first["version"]

    worse = register(trained, 2.5)
    assert worse["decision"] == registry.KEPT
    assert champion(c) == first["version"]
    tags = c.get_model_version("musicml-abc", worse["version"]).tags
    assert (float(tags["musicml.value"]), float(tags["musicml.champion_value"])) == (2.5, 2.0)
    assert tags["musicml.decision"] == "kept champion" and tags["musicml.metric"] == "test_bpn"
    assert tags["musicml.champion_version"] == first["version"]

    equal = register(trained, 2.0)  # a tie is not better
    assert equal["decision"] == registry.KEPT

    better = register(trained, 1.5)
    assert better["decision"] == registry.PROMOTED and better["champion_value"] == 2.0
    assert champion(c) == better["version"]

    other_split = register(trained, 0.1, digest="0" * 16)
    assert other_split["decision"] == registry.NOT_COMPARABLE
    assert champion(c) == better["version"]
    assert c.get_model_version("musicml-abc", other_split["version"]).tags["musicml.champion_value"] == ""

    # the same split but scored only in bits per byte: not the champion's metric
    other_metric = registry.log_and_register(
        uri, trained[2]["mlflow_run_id"], trained[2]["checkpoint"], lake.path("tokenizer"),
        trained[2]["train_config"], {"test_bpb": 0.01}, registry.test_split_digest(lake))
    assert other_metric["decision"] == registry.NOT_COMPARABLE
    assert c.get_run(trained[2]["mlflow_run_id"]).data.tags["musicml.split_digest"] == first["split_digest"]

    # a champion set by hand (no figures on it) is never replaced automatically
    hand = c.create_model_version("musicml-abc", source=c.get_logged_model(first["model_id"]).artifact_location,
                                  run_id=trained[2]["mlflow_run_id"])
    c.set_registered_model_alias("musicml-abc", "champion", hand.version)
    assert register(trained, 0.01)["decision"] == registry.NOT_COMPARABLE
    assert champion(c) == str(hand.version)
    c.set_registered_model_alias("musicml-abc", "champion", better["version"])


def test_champion_loads_with_the_checkpoints_logits_and_nothing_pickled(trained, tmp_path):
    lake, uri, run = trained
    register(trained, 3.0)
    model, codec, meta = registry.load("models:/musicml-abc@champion", uri)
    ref, _ = load_model(run["checkpoint"])
    x = torch.tensor([[codec.bos_id, 3, 4, 5, 6]])
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))
    assert meta["family"] == "gpt" and "optimizers" not in meta
    ckpt, tok = registry.resolve_model(f"runs:/{run['mlflow_run_id']}", uri, tmp_path / "dl")
    files = [p for p in (tmp_path / "dl").rglob("*") if p.is_file()]
    assert ckpt.is_file() and (tok / "tokenizer.json").is_file()
    assert {p.name for p in files} >= {"MLmodel", "registry_model.py", "checkpoint.pt", "config.json"}
    assert not [p for p in files if p.suffix in (".pkl", ".pickle", ".cloudpickle")]
    mlmodel = next(p for p in files if p.name == "MLmodel")
    assert "python_model.pkl" not in mlmodel.read_text() and "model_code_path" in mlmodel.read_text()
    torch.load(ckpt, weights_only=True)
    # the pyfunc written as code loads and samples from the same folder
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(str(mlmodel.parent))
    out = pyfunc.predict(["X:1\n"], params={"max_new_tokens": 8, "seed": 1})
    longer = pyfunc.predict(["X:1\n"], params={"max_new_tokens": 40, "seed": 1})
    assert len(out) == 1 and out[0].startswith("X:1") and len(out[0]) < len(longer[0])


def test_register_latest_uses_the_evaluation_and_the_test_split(trained):
    lake, uri, run = trained
    write_json(lake.path("models", run["name"], "evaluation.json"), {"test_bpn": 9.0, "test_bpb": 1.0})
    out = registry.register_latest(lake, tracking_uri=uri)
    assert out["metric"] == "test_bpn" and out["value"] == 9.0
    assert out["split_digest"] == registry.test_split_digest(lake)
    assert out["decision"] in (registry.KEPT, registry.FIRST)


@pytest.mark.parametrize("uri", ["models:/musicml-none@champion", "models:/musicml-abc/999", "runs:/nope",
                                 "models:/m-0000", "models:/musicml-abc@no-such-alias"])
def test_bad_model_uris_are_refused(trained, uri):
    with pytest.raises(FileNotFoundError, match="no such model"):
        registry.resolve_model(uri, trained[1])


def test_a_uri_of_another_scheme_is_refused(trained):
    with pytest.raises(ValueError, match="not a models:/ or runs:/ URI"):
        registry.resolve_model("file:///x", trained[1])


def test_generate_command_samples_the_champion(trained, tmp_path, capsys):
    import json

    from musicml.generate.__main__ import main

    _, uri, _ = trained
    register(trained, 5.0)
    out = tmp_path / "tune.mid"
    assert main(["--model", "models:/musicml-abc@champion", "--steps", "24", "--out", str(out),
                 "--tracking-uri", uri, "--seed", "3"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["family"] == "gpt" and line["format"] == "abc" and line["tokens"] >= 1
    assert Path(line["text"]).read_text().strip()
    assert ("midi" in line) == out.exists()
    with pytest.raises(SystemExit):
        main(["--model", "models:/musicml-abc@champion", "--steps", "4", "--out", str(out), "--tracking-uri", uri,
              "--format", "atex"])
    assert "trained on ['abc']" in capsys.readouterr().err


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="none of"):
        registry.comparison_metric({"val_bpb": 1.0})
    with pytest.raises(ValueError, match="empty"):
        registry.split_digest([])
    with pytest.raises(ValueError, match="format"):
        registry.modality_name([])
    assert registry.modality_name(["midi", "abc", "abc"]) == "musicml-abc-midi"
    assert registry.modality_name([], "fractal") == "musicml-pianoroll"
    assert registry.split_digest(["b", "a"]) == registry.split_digest(["a", "b", "a"])


def test_experiment_opens_in_the_model_training_view_and_runs_log_system_metrics(trained):
    import time

    _, uri, run = trained
    c = tracking.client(uri)
    exp = c.get_experiment(c.get_run(run["mlflow_run_id"]).info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    pytest.importorskip("psutil", reason="MLflow's system metrics need psutil (a dependency in pyproject.toml)")
    if run["result"]["elapsed_s"] > 2 * tracking.SYSTEM_METRICS_INTERVAL_S:  # a sample every interval
        assert "system/cpu_utilization_percentage" in c.get_run(run["mlflow_run_id"]).data.metrics
    run_id = c.create_run(exp.experiment_id).info.run_id
    with tracking.system_metrics(uri, run_id, interval_s=0.2) as on:
        time.sleep(1.5)
    assert on
    keys = c.get_run(run_id).data.metrics
    assert "system/cpu_utilization_percentage" in keys and "system/system_memory_usage_megabytes" in keys


def test_registered_model_asset_records_the_decision_in_dagster(trained):
    import dagster as dg

    from pipelines.assets.registry import registered_model
    from pipelines.resources import LakeResource, MlflowResource

    lake, uri, run = trained
    write_json(lake.path("models", run["name"], "evaluation.json"), {"test_bpn": 0.5, "test_bpb": 0.05})
    resources = {"lake": LakeResource(root=str(lake.root)), "mlflow": MlflowResource(tracking_uri=uri)}
    result = dg.materialize([registered_model], resources=resources)
    meta = result.asset_materializations_for_node("registered_model")[0].metadata
    assert meta["decision"].value in (registry.PROMOTED, registry.FIRST)
    assert meta["metric"].value == "test_bpn" and meta["value"].value == 0.5
    assert meta["champion_uri"].value == "models:/musicml-abc@champion"
    assert meta["mlflow_url"].value.endswith(f"/versions/{meta['version'].value}")
    if meta["decision"].value == registry.PROMOTED:
        assert meta["champion_value"].value > 0.5
    assert champion(tracking.client(uri)) == meta["version"].value
