"""What the official Dagster chart (``dagster/dagster`` 1.13) makes of ``deploy/helm-values.yaml``
for the run pods, without helm (not installed, and the chart cannot be fetched offline).

Two renderings, written here from the chart's templates for the settings they read:

- the K8sRunLauncher's config in the instance ConfigMap (``templates/helpers/instance/_run-launcher.tpl``);
- the container context a code location hands to every run it launches when
  ``includeConfigInLaunchedRuns`` is on (``charts/dagster-user-deployments``:
  ``DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT``), which the launcher merges over its own config.

A value the templates do not read raises here: the chart would drop it without a word, so a
misspelled setting fails the tests instead of silently never reaching the cluster.
"""

from __future__ import annotations

RELEASE = NAMESPACE = "musicml"  # as deploy/README.md installs it: helm upgrade --install musicml ... -n musicml
FULLNAME = f"{RELEASE}-dagster"  # dagster.fullname: the release name, then the chart's
DAGSTER_HOME = "/opt/dagster/dagster_home"  # global.dagsterHome's default
PG_SECRET = "dagster-postgresql-secret"  # global.postgresqlSecretName's default
USER_SERVICE_ACCOUNT = f"{FULLNAME}-user-deployments-user-deployments"  # the subchart's default

# runLauncher.config.k8sRunLauncher: the settings the template reads, and what each becomes
_LAUNCHER_AS_IS = {"kubeconfigFile": "kubeconfig_file", "envVars": "env_vars", "volumeMounts": "volume_mounts",
                   "volumes": "volumes", "labels": "labels", "resources": "resources",
                   "schedulerName": "scheduler_name", "securityContext": "security_context"}
_LAUNCHER_KEYS = {*_LAUNCHER_AS_IS, "loadInclusterConfig", "jobNamespace", "imagePullPolicy", "image",
                  "envConfigMaps", "envSecrets", "failPodOnRunFailure", "runK8sConfig"}
_RUN_K8S_CONFIG = {"containerConfig": "container_config", "podSpecConfig": "pod_spec_config",
                   "podTemplateSpecMetadata": "pod_template_spec_metadata", "jobSpecConfig": "job_spec_config",
                   "jobMetadata": "job_metadata"}
# a dagster-user-deployments deployment: what the container context takes of it, and what else the
# subchart's deployment-user.yaml reads of it (for the code server's own pod)
_CONTEXT_AS_IS = {"volumeMounts": "volume_mounts", "volumes": "volumes", "labels": "labels",
                  "resources": "resources", "schedulerName": "scheduler_name"}
_DEPLOYMENT_KEYS = {*_CONTEXT_AS_IS, "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "port", "env",
                    "envConfigMaps", "envSecrets", "includeConfigInLaunchedRuns", "annotations",
                    "sidecarContainers", "initContainers", "nodeSelector", "affinity", "tolerations",
                    "podSecurityContext", "securityContext", "livenessProbe", "readinessProbe", "startupProbe"}


def _known(values: dict, keys: set[str], where: str) -> None:
    unknown = sorted(set(values) - keys)
    if unknown:
        raise KeyError(f"{where}: the chart's templates read no {unknown}")


def _names(refs: list[dict]) -> list[str]:
    """``envSecrets`` / ``envConfigMaps`` entries (``{name: ...}``) as the names the templates write."""
    return [r["name"] for r in refs if "name" in r]


def run_launcher(values: dict) -> dict:
    """The ``run_launcher`` block of the instance the chart writes (module, class, config)."""
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher", launcher["type"]
    k = launcher["config"]["k8sRunLauncher"]
    _known(k, _LAUNCHER_KEYS, "runLauncher.config.k8sRunLauncher")
    config = {"load_incluster_config": k.get("loadInclusterConfig", True),  # (the chart's defaults)
              "job_namespace": k.get("jobNamespace") or NAMESPACE,
              "image_pull_policy": k.get("imagePullPolicy", "Always"),
              "service_account_name": FULLNAME, "dagster_home": DAGSTER_HOME,
              "instance_config_map": f"{FULLNAME}-instance", "postgres_password_secret": PG_SECRET}
    config |= {new: k[old] for old, new in _LAUNCHER_AS_IS.items() if k.get(old)}
    if "image" in k:
        config["job_image"] = f"{k['image']['repository']}:{k['image']['tag']}"
    if k.get("envConfigMaps"):
        config["env_config_maps"] = _names(k["envConfigMaps"])
    if k.get("envSecrets"):
        config["env_secrets"] = _names(k["envSecrets"])
    if k.get("failPodOnRunFailure"):
        config["fail_pod_on_run_failure"] = True
    if k.get("runK8sConfig"):
        _known(k["runK8sConfig"], set(_RUN_K8S_CONFIG), "runLauncher.config.k8sRunLauncher.runK8sConfig")
        config["run_k8s_config"] = {new: k["runK8sConfig"][old] for old, new in _RUN_K8S_CONFIG.items()
                                    if k["runK8sConfig"].get(old)}
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def container_image(deployment: dict) -> str:
    image = deployment["image"]
    return f"{image['repository']}:{image['tag']}"


def container_context(deployment: dict) -> dict:
    """What the code location of ``deployment`` (an entry of ``dagster-user-deployments.deployments``)
    hands to the runs it launches (its env var ``DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT``)."""
    _known(deployment, _DEPLOYMENT_KEYS, f"dagster-user-deployments.deployments[{deployment.get('name')}]")
    assert deployment["includeConfigInLaunchedRuns"]["enabled"]
    k8s = {"image_pull_policy": deployment["image"]["pullPolicy"],
           "env_config_maps": [f"{FULLNAME}-{deployment['name']}-user-env", *_names(deployment.get("envConfigMaps", []))],
           "namespace": NAMESPACE, "service_account_name": USER_SERVICE_ACCOUNT}
    if deployment.get("envSecrets"):
        k8s["env_secrets"] = _names(deployment["envSecrets"])
    k8s |= {new: deployment[old] for old, new in _CONTEXT_AS_IS.items() if deployment.get(old)}
    if isinstance(deployment.get("env"), list) and deployment["env"]:
        k8s["env"] = deployment["env"]
    pod_spec = {"automount_service_account_token": True}
    if deployment.get("sidecarContainers"):
        pod_spec["containers"] = deployment["sidecarContainers"]
    if deployment.get("initContainers"):
        pod_spec["init_containers"] = deployment["initContainers"]
    k8s["run_k8s_config"] = {"pod_spec_config": pod_spec}
    if deployment.get("annotations"):
        k8s["run_k8s_config"]["pod_template_spec_metadata"] = {"annotations": deployment["annotations"]}
    return {"k8s": k8s}
