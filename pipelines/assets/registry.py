"""The Model Registry asset: the evaluated model logged, registered, and ``champion`` only if better."""


import dagster as dg

from musicml import registry
from pipelines.assets.model import model_evaluation, training_of_this_run
from pipelines.resources import LakeResource, MlflowResource

GROUP = "model"


def registry_url(name: str, version: str) -> str:
    """Where a model version is in the MLflow UI (``mlflow ui`` on its default 127.0.0.1:5000)."""
    return f"http://127.0.0.1:5000/#/models/{name}/versions/{version}"


@dg.asset(group_name=GROUP, deps=[model_evaluation], kinds={"mlflow"})
def registered_model(context: dg.AssetExecutionContext, lake: LakeResource, mlflow: MlflowResource
                     ) -> dg.MaterializeResult:
    """This run's trained model (the lake's latest when it trained none) as an MLflow LoggedModel (weights-only checkpoint, tokenizer,
    config; nothing pickled), a new version of its modality's registered model; the alias
    ``champion`` moves to it only when it beats the champion on the same metric and test split."""
    lk = lake.lake()
    d = registry.register_latest(lk, tracking_uri=mlflow.uri(lk), run=training_of_this_run(context, lk))
    context.log.info(f"{d['name']} v{d['version']}: {d['decision']} ({d['metric']} {d['value']:.4f}"
                     + (f" vs champion v{d['champion_version']} {d['champion_value']:.4f})"
                        if d["champion_value"] is not None else ")"))
    metadata = {
        "decision": d["decision"], "registered_model": d["name"], "version": d["version"],
        "metric": d["metric"], "value": d["value"], "split_digest": d["split_digest"],
        "model_uri": d["model_uri"], "champion_uri": f"models:/{d['name']}@{registry.CHAMPION}",
        "mlflow_url": dg.MetadataValue.url(registry_url(d["name"], d["version"])),
    }
    if d["champion_value"] is not None:
        metadata["champion_value"] = d["champion_value"]
    if d["champion_version"] is not None:
        metadata["champion_version"] = d["champion_version"]
    return dg.MaterializeResult(metadata=metadata)
