"""What a user sees of a training in MLflow without a browser: the experiment link's view, and
system metrics on every training run, however short (the browser test opens the link)."""

from __future__ import annotations

import pytest

from musicml import tracking

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:mlflow")


@pytest.fixture(scope="module")
def uri(tmp_path_factory) -> str:
    """One fresh store for the module (creating its tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def test_experiment_link_opens_the_model_training_view(uri):
    url = tracking.experiment_url(uri, ui="http://127.0.0.1:5123/")
    c = tracking.client(uri)
    exp = c.get_experiment_by_name(tracking.DEFAULT_EXPERIMENT)
    assert url == f"http://127.0.0.1:5123/#/experiments/{exp.experiment_id}?workflowType=machine_learning"
    assert exp.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    assert tracking.experiment_url(uri).startswith("http://127.0.0.1:5000/#/experiments/")


def test_a_training_shorter_than_the_sampling_interval_still_logs_system_metrics(uri):
    pytest.importorskip("psutil", reason="MLflow's system metrics need psutil (a dependency in pyproject.toml)")
    c = tracking.client(uri)
    run_id = c.create_run(tracking.experiment_id(c)).info.run_id
    with tracking.system_metrics(uri, run_id) as on:  # the default 10 s interval, a block far shorter
        pass
    assert on
    history = c.get_metric_history(run_id, "system/cpu_utilization_percentage")
    assert [m.step for m in history] == [0]
    with tracking.system_metrics(uri, run_id):  # a resumed training continues the steps
        pass
    assert sorted(m.step for m in c.get_metric_history(run_id, "system/cpu_utilization_percentage")) == [0, 1]
    assert "system/system_memory_usage_megabytes" in c.get_run(run_id).data.metrics
