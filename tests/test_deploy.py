"""deploy/: every file parses, and what each one says is checked against the code it drives
(Dagster's instance schema, torchrun's and musicml.train's own argument parsers, pyproject), and
against what a cluster would get: the K8sRunLauncher the chart configures from helm-values.yaml
(:mod:`helm_chart`) launching ``train_job`` runs, the Jobs it would send to the Kubernetes API
captured, and the manifests of deploy/k8s read as the Kubernetes client's API models."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import helm_chart
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
    extras = _pyproject()["project"]["optional-dependencies"]
    (postgres,) = [r for r in extras["postgres"] if r.startswith("dagster-postgres==")]
    version = postgres.split("==")[1]
    assert extras["k8s"] == [f"dagster-k8s=={version}"]
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert '".[postgres,s3,k8s]"' in dockerfile
    deps = _pyproject()["project"]["dependencies"]
    dagster = next(r for r in deps if r.startswith("dagster=="))
    import importlib.metadata as md

    assert md.version("dagster") == dagster.split("==")[1]
    for library in ("dagster-postgres", "dagster-k8s"):  # the releases that go with that dagster
        assert md.version(library) == version, library


# -- what the chart and the K8sRunLauncher make of deploy/: the Jobs a cluster would be sent -----------

KUBECONFIG = {"apiVersion": "v1", "kind": "Config", "current-context": "test",  # (no server is contacted)
              "clusters": [{"name": "test", "cluster": {"server": "https://127.0.0.1:6443"}}],
              "users": [{"name": "test", "user": {"token": "test"}}],
              "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}]}


@pytest.fixture
def k8s():
    """dagster-k8s (the ``k8s`` extra, installed by .ci/setup) with the Kubernetes client."""
    return pytest.importorskip("dagster_k8s")


def _values() -> tuple[dict, dict]:
    (values,) = _load("helm-values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return values, deployment


def _tags_command_output() -> str:
    """What the command in train-run-tags.yaml's comment prints (run from the repository root)."""
    text = (DEPLOY / "k8s" / "train-run-tags.yaml").read_text(encoding="utf-8")
    (code,) = re.findall(r"python -c '([^']*)'", text)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout


def _local_launcher(tmp_path: Path) -> dict:
    """The run launcher the chart configures from helm-values.yaml, reading a kubeconfig of a
    cluster on 127.0.0.1 instead of the in-cluster config (no cluster is reached)."""
    launcher = helm_chart.run_launcher(_values()[0])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(KUBECONFIG), encoding="utf-8")
    launcher["config"] |= {"load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    return launcher


def _launch(tmp_path: Path, tags: dict[str, str], job_name: str = "train_job"):
    """Launch a ``job_name`` run through the K8sRunLauncher the chart configures from
    helm-values.yaml, from the code location it deploys (image, container context), with ``tags``:
    the Job sent to the Kubernetes API (captured, never sent) and its namespace (:func:`_local_launcher`)."""
    from unittest import mock

    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.launcher import LaunchRunContext
    from dagster._core.test_utils import create_run_for_test, instance_for_test

    _, deployment = _values()
    launcher = _local_launcher(tmp_path)
    batch = mock.MagicMock()
    with mock.patch("kubernetes.client.BatchV1Api", return_value=batch), \
            instance_for_test(overrides={"run_launcher": launcher}) as instance:
        location = ReconstructableRepository.for_module(_pyproject()["tool"]["dagster"]["module_name"], "defs",
                                                        working_directory=str(REPO))
        origin = location.get_reconstructable_job(job_name).get_python_origin()
        origin = origin._replace(repository_origin=origin.repository_origin._replace(
            container_image=helm_chart.container_image(deployment),
            container_context=helm_chart.container_context(deployment)))
        run = create_run_for_test(instance, job_name=job_name, job_code_origin=origin, tags=tags)
        instance.run_launcher.launch_run(LaunchRunContext(run, None))
    ((_, _, kwargs),) = [c for c in batch.method_calls if c[0] == "create_namespaced_job"]
    return kwargs["body"], kwargs["namespace"]


def _env(container) -> dict[str, str]:
    return {e.name: e.value for e in container.env if e.value is not None}


def test_helm_values_use_only_settings_the_chart_reads() -> None:
    values, deployment = _values()
    helm_chart.run_launcher(values)
    helm_chart.container_context(deployment)
    typo = yaml.safe_load(yaml.safe_dump(values))
    typo["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["jobSpec"] = {"backoffLimit": 0}
    with pytest.raises(KeyError, match="jobSpec"):
        helm_chart.run_launcher(typo)
    with pytest.raises(KeyError, match="volumeMount"):
        helm_chart.container_context({**deployment, "volumeMount": deployment["volumeMounts"]})


def test_the_run_launcher_the_chart_configures_is_a_valid_k8s_run_launcher(k8s, tmp_path) -> None:
    from dagster._core.test_utils import instance_for_test

    launcher = _local_launcher(tmp_path)
    with instance_for_test(overrides={"run_launcher": launcher}) as instance:
        assert isinstance(instance.run_launcher, k8s.K8sRunLauncher)  # its config checked by Dagster
        assert instance.run_launcher.env_secrets == ["musicml-env"]
    launcher["config"]["env_secret"] = ["musicml-env"]
    with pytest.raises(DagsterInvalidConfigError), instance_for_test(overrides={"run_launcher": launcher}) as instance:
        instance.run_launcher  # noqa: B018 (made on first use)


def test_the_gpu_tags_command_prints_tags_dagster_accepts() -> None:
    tags = json.loads(_tags_command_output())
    assert set(tags) == {"dagster-k8s/config"}
    assert all(isinstance(v, str) for v in tags.values())  # what `dagster job launch --tags` checks
    (raw,) = _load("k8s/train-run-tags.yaml")
    assert json.loads(tags["dagster-k8s/config"]) == raw["dagster-k8s/config"]


def test_a_training_run_with_the_gpu_tags_is_a_gpu_pod_with_the_lake(k8s, tmp_path) -> None:
    """The Job the K8sRunLauncher would create for ``train_job`` launched with the tags of
    train-run-tags.yaml: the code location's image, the GPU, the node pool, the lake, the secrets."""
    import kubernetes

    job, namespace = _launch(tmp_path, json.loads(_tags_command_output()))
    assert isinstance(job, kubernetes.client.V1Job) and namespace == helm_chart.NAMESPACE
    values, deployment = _values()
    pod = job.spec.template.spec
    (container,) = pod.containers
    assert container.image == helm_chart.container_image(deployment)
    assert container.args[:3] == ["dagster", "api", "execute_run"]
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert container.resources.requests == {"cpu": "4", "memory": "16Gi"}  # the tags' over the launcher's
    assert container.resources.limits["memory"] == "32Gi"
    assert pod.node_selector == {"musicml/pool": "gpu"}
    assert [(t.key, t.effect) for t in pod.tolerations] == [("nvidia.com/gpu", "NoSchedule")]
    (pvc,) = _load("k8s/lake-pvc.yaml")
    assert {v.name: v.persistent_volume_claim.claim_name for v in pod.volumes} == {"lake": pvc["metadata"]["name"]}
    assert {m.name: m.mount_path for m in container.volume_mounts} == {"lake": "/lake"}
    assert _env(container)["MUSICML_LAKE"] == "/lake" and _env(container)["DAGSTER_HOME"] == helm_chart.DAGSTER_HOME
    assert "musicml-env" in [s.secret_ref.name for s in container.env_from if s.secret_ref]
    assert job.spec.backoff_limit == 0 and job.spec.ttl_seconds_after_finished == 86400
    assert pod.restart_policy == "Never"


def test_a_run_without_the_tags_gets_the_launchers_resources_and_no_gpu(k8s, tmp_path) -> None:
    job, _ = _launch(tmp_path, {})
    (container,) = job.spec.template.spec.containers
    assert container.resources.requests == {"cpu": "2", "memory": "8Gi"}
    assert container.resources.limits == {"memory": "16Gi"}
    assert not job.spec.template.spec.node_selector


def test_each_bucket_of_an_ingestion_backfill_is_a_pod_of_its_own_on_the_lake(k8s, tmp_path) -> None:
    """A backfill of ``ingest_buckets_job`` is one run per partition: each its own Job (named by its
    run), all on the one lake volume."""
    from musicml.ingest.buckets import BUCKETS

    jobs = [_launch(tmp_path, {"dagster/partition": f"{b}-of-{BUCKETS}"}, "ingest_buckets_job")[0] for b in (0, 3)]
    assert len({j.metadata.name for j in jobs}) == 2
    for job in jobs:
        assert job.metadata.labels["dagster/job"] == "ingest_buckets_job"
        (container,) = job.spec.template.spec.containers
        assert {m.name: m.mount_path for m in container.volume_mounts} == {"lake": "/lake"}
        assert "nvidia.com/gpu" not in (container.resources.limits or {})


def test_a_misspelled_pod_setting_in_the_tags_fails_the_launch(k8s, tmp_path) -> None:
    config = {"container_config": {"resource": {"limits": {"nvidia.com/gpu": 1}}}}
    with pytest.raises(Exception, match="resource"):
        _launch(tmp_path, {"dagster-k8s/config": json.dumps(config)})


_KINDS = {"Job": "V1Job", "Service": "V1Service", "PersistentVolumeClaim": "V1PersistentVolumeClaim"}


def _as_k8s_object(doc: dict):
    """``doc`` (a manifest) as the Kubernetes client's model of its kind (the API's schema as the
    installed ``kubernetes`` client has it): every key known, every value of its type, the
    required fields there; raises otherwise (dagster-k8s's strict reading, as for run pods)."""
    import kubernetes
    from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict

    model = getattr(kubernetes.client, _KINDS[doc["kind"]])
    return k8s_model_from_dict(model, k8s_snake_case_dict(model, doc))


@pytest.mark.parametrize("name", ["k8s/torchrun-job.yaml", "k8s/lake-pvc.yaml"])
def test_manifests_are_valid_kubernetes_objects(k8s, name) -> None:
    docs = _load(name)
    assert docs
    for doc in docs:
        obj = _as_k8s_object(doc)
        assert obj.kind == doc["kind"] and obj.metadata.name == doc["metadata"]["name"]


@pytest.mark.parametrize("break_it", ["misspelled", "wrong type", "missing"])
def test_a_broken_manifest_is_not_a_kubernetes_object(k8s, break_it) -> None:
    _, job = _torchrun_job()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    if break_it == "misspelled":
        container["volumeMount"] = container.pop("volumeMounts")
    elif break_it == "wrong type":
        job["spec"]["completions"] = "two"
    else:
        del container["name"]
    with pytest.raises(Exception, match="volumeMount|two|name"):
        _as_k8s_object(job)


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
