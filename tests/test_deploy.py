"""deploy/: every file parses, and what each one says is checked against the code it drives
(Dagster's instance schema, torchrun's and musicml.train's own argument parsers, pyproject)."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from test_train import BOS, TOKEN_BYTES, shards, tiny_cfg  # noqa: F401 (shards: a fixture)

from musicml.train import cli

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
YAML_FILES = sorted(DEPLOY.rglob("*.yaml"))


def _load(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text(encoding="utf-8")) if d is not None]


def _pyproject() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _validate_instance(tmp_path: Path, config: dict) -> dict:
    """Dagster's own validation of an instance config (no storage is opened)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return dagster_instance_config(str(home))[0]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_every_yaml_file_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs)
    assert path.relative_to(DEPLOY).as_posix() in (DEPLOY / "README.md").read_text(encoding="utf-8")


def test_postgres_instance_config_is_valid_dagster_config(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", "postgresql+psycopg2://u@127.0.0.1:5432/dagster")
    (config,) = _load("dagster-postgres.yaml")
    checked = _validate_instance(tmp_path, config)
    assert checked["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_POSTGRES_URL"}
    assert checked["run_monitoring"]["enabled"] and checked["run_retries"]["enabled"]


def test_instance_validation_rejects_a_misspelled_setting(tmp_path) -> None:
    with pytest.raises(DagsterInvalidConfigError):
        _validate_instance(tmp_path, {"run_monitoring": {"enabledd": True}})


def test_helm_values_launch_runs_on_kubernetes_from_the_code_location(tmp_path) -> None:
    (values,) = _load("helm-values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    module = args[args.index("-m") + 1]
    assert module == _pyproject()["tool"]["dagster"]["module_name"]
    __import__(module)  # the code location the chart serves is importable
    assert deployment["includeConfigInLaunchedRuns"]["enabled"]
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]
    mounts = {m["name"]: m["mountPath"] for m in deployment["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in deployment["volumes"]}
    (pvc,) = _load("k8s/lake-pvc.yaml")
    assert claims["lake"] == pvc["metadata"]["name"] and "ReadWriteMany" in pvc["spec"]["accessModes"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["MUSICML_LAKE"] == mounts["lake"]


def test_helm_daemon_settings_are_valid_instance_settings(tmp_path) -> None:
    """The chart writes dagsterDaemon.runMonitoring / runRetries as run_monitoring / run_retries."""
    (values,) = _load("helm-values.yaml")
    daemon = values["dagsterDaemon"]
    assert daemon["runMonitoring"]["enabled"] and daemon["runRetries"]["enabled"]
    config = {_snake(key): {_snake(k): v for k, v in daemon[key].items()} for key in ("runMonitoring", "runRetries")}
    checked = _validate_instance(tmp_path, config)
    assert checked["run_retries"]["max_retries"] == 2
    assert checked["run_retries"]["retry_on_asset_or_op_failure"] is False


def _torchrun_job() -> tuple[dict, dict]:
    docs = _load("k8s/torchrun-job.yaml")
    service = next(d for d in docs if d["kind"] == "Service")
    job = next(d for d in docs if d["kind"] == "Job")
    return service, job


def _command(container: dict, index: int = 0, **overrides: str) -> list[str]:
    """The container's shell command with its env vars (and the pod's index) filled in."""
    env = {e["name"]: e["value"] for e in container["env"]} | {"JOB_COMPLETION_INDEX": str(index), **overrides}
    (script,) = container["args"]
    words = shlex.split(script)
    assert words[0] == "exec"
    return [re.sub(r"\$(\w+)", lambda m: env[m.group(1)], w) for w in words[1:]]


def test_torchrun_job_arguments_parse_with_torchrun_and_musicml_train() -> None:
    from torch.distributed.run import get_args_parser

    service, job = _torchrun_job()
    spec = job["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    command = _command(container)
    assert command[0] == "torchrun"
    split = command.index("-m")
    torchrun = get_args_parser().parse_args([*command[1:split], "-m", "musicml.train"])
    assert torchrun.training_script == "musicml.train" and torchrun.module
    env = {e["name"]: e["value"] for e in container["env"]}
    nnodes, per_node = int(env["NNODES"]), int(env["GPUS_PER_NODE"])
    assert torchrun.nnodes == str(nnodes) and torchrun.nproc_per_node == str(per_node)
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == nnodes
    assert container["resources"]["limits"]["nvidia.com/gpu"] == per_node
    # pod 0 is the rendezvous host, reachable through the headless Service
    assert service["spec"]["clusterIP"] == "None" and pod["subdomain"] == service["metadata"]["name"]
    host, port = torchrun.rdzv_endpoint.split(":")
    assert host == f"{job['metadata']['name']}-0.{service['metadata']['name']}"
    assert int(port) in [p["port"] for p in service["spec"]["ports"]]
    # the trainer's own parser accepts the rest, and the lake is the mounted volume
    args = cli.parser().parse_args(command[split + 2:])
    cfg = cli.resolve_config(args)
    assert args.preset == "gpu" and cfg.max_steps == 5000
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert args.lake == mounts["lake"] == env["MUSICML_LAKE"]
    (pvc,) = _load("k8s/lake-pvc.yaml")
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
    assert claims["lake"] == pvc["metadata"]["name"]


def test_torchrun_job_uses_the_code_location_image() -> None:
    (values,) = _load("helm-values.yaml")
    image = values["dagster-user-deployments"]["deployments"][0]["image"]
    _, job = _torchrun_job()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"


def test_training_run_tags_ask_for_a_gpu() -> None:
    (tags,) = _load("k8s/train-run-tags.yaml")
    config = tags["dagster-k8s/config"]
    assert set(config) <= {"container_config", "pod_spec_config", "pod_template_spec_metadata",
                           "job_spec_config", "job_metadata"}
    assert config["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_image_pins_the_dagster_libraries_of_pyproject() -> None:
    extras = _pyproject()["project"]["optional-dependencies"]["postgres"]
    pinned = next(r for r in extras if r.startswith("dagster-postgres=="))
    version = pinned.split("==")[1]
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert f'"dagster-k8s=={version}"' in dockerfile and '".[postgres,s3]"' in dockerfile
    deps = _pyproject()["project"]["dependencies"]
    dagster = next(r for r in deps if r.startswith("dagster=="))
    import importlib.metadata as md

    assert md.version("dagster") == dagster.split("==")[1]
    assert md.version("dagster-postgres") == version  # the release that goes with that dagster


@pytest.mark.slow
def test_torchrun_job_command_trains_across_two_nodes(shards, tmp_path) -> None:  # noqa: F811
    """The Job's torchrun flags, as two 'nodes' of one CPU process each on 127.0.0.1 (c10d
    rendezvous on pod 0's address replaced by a free local port): both join, rank 0 trains and
    checkpoints, every step logged once."""
    service, job = _torchrun_job()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = tmp_path / "cfg.json"
    cfg.write_text(tiny_cfg(device_batch_size=2, total_batch_tokens=64, max_steps=3, eval_every=3,
                            checkpoint_every=3).to_json())
    np.save(tmp_path / "tb.npy", TOKEN_BYTES)
    out = tmp_path / "run"
    endpoint = f"{job['metadata']['name']}-0.{service['metadata']['name']}:29500"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    procs = []
    for node in range(2):
        words = _command(container, node, NNODES="2", GPUS_PER_NODE="1")
        flags = [f"127.0.0.1:{port}" if w == endpoint else w for w in words[1:words.index("-m")]]
        cmd = [sys.executable, "-m", "torch.distributed.run", *flags, "-m", "musicml.train",
               "--config", str(cfg), "--shards", str(shards), "--out", str(out), "--bos", str(BOS),
               "--token-bytes", str(tmp_path / "tb.npy")]
        procs.append(subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=240))
        finally:
            if proc.poll() is None:
                proc.kill()
    for proc, (stdout, stderr) in zip(procs, outputs):
        assert proc.returncode == 0, stdout[-2000:] + stderr[-4000:]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert sorted(e["step"] for e in log if "train_loss" in e) == [1, 2, 3]
    assert json.loads(outputs[0][0].strip().splitlines()[-1])["result"]["steps"] == 3
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_000003.pt"]
