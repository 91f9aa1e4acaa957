"""Seen as a user sees it: the Dagster UI and the MLflow UI in headless Chromium, after a real run.

The whole graph is materialized once (tiny config, mixed real corpus) into a temp lake, recorded in
a temp ``DAGSTER_HOME``; then ``dagster-webserver`` and ``mlflow ui`` are started on free ports on
127.0.0.1 and read through Debian's Chromium (Selenium). Screenshots go to ``$MUSICML_SCREENSHOTS``
(default: ``screenshots/`` under pytest's temp folder).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import browser_helpers
import dagster as dg
import pytest
from browser_helpers import browser_missing, chromium, free_port, servers, wait_for_text, wait_http

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MISSING = browser_missing()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    env = os.environ.get("MUSICML_SCREENSHOTS")
    folder = Path(env) if env else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def run_lake(tmp_path_factory, derived):
    """The whole graph materialized into a temp lake, recorded in a temp DAGSTER_HOME."""
    from test_pipeline import TINY_RUN, build_drop_zone

    root = tmp_path_factory.mktemp("browser_lake")
    home = tmp_path_factory.mktemp("browser_dagster_home")
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    (root / "raw").mkdir()
    build_drop_zone(root / "raw", derived)
    mp = pytest.MonkeyPatch()
    mp.setenv("MUSICML_LAKE", str(root))
    mp.setenv("DAGSTER_HOME", str(home))
    mp.delenv("MUSICML_RAW_DIR", raising=False)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    from pipelines.definitions import defs, main_assets

    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.materialize([*main_assets(defs), *defs.asset_checks], run_config=TINY_RUN,
                                resources=defs.resources, instance=instance)
    assert result.success
    yield root, home, defs, result
    mp.undo()


@pytest.fixture(scope="module")
def uis(run_lake, tmp_path_factory):
    """(Dagster UI URL, MLflow UI URL): both servers on free 127.0.0.1 ports, started at once."""
    root, home, *_ = run_lake
    logs = tmp_path_factory.mktemp("ui_logs")
    env = {k: v for k, v in os.environ.items() if k not in ("MUSICML_RAW_DIR", "MLFLOW_TRACKING_URI")}
    env.update(MUSICML_LAKE=str(root), DAGSTER_HOME=str(home), PYTHONPATH=str(REPO_ROOT))
    dagster_port, mlflow_port = free_port(), free_port()
    specs = [
        ([str(BIN / "dagster-webserver"), "-m", "pipelines.definitions", "-h", "127.0.0.1",
          "-p", str(dagster_port)], "/server_info", dagster_port, logs / "dagster-webserver.log"),
        ([str(BIN / "mlflow"), "ui", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
          "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"],
         "/health", mlflow_port, logs / "mlflow-ui.log"),
    ]
    with servers(specs, env) as bases:
        yield bases[0], bases[1]


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def _page(driver, url: str, texts: list[str], shot: Path) -> str:
    """Open ``url``, wait until it shows every one of ``texts``, screenshot it; returns its text."""
    driver.get(url)
    body = wait_for_text(driver, texts, timeout=120,
                         shot=lambda: driver.save_screenshot(str(shot.with_suffix(".failed.png"))))
    driver.save_screenshot(str(shot))
    return body


@pytest.mark.browser
@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_dagster_ui_shows_every_asset_and_the_latest_metadata(run_lake, uis, browser, screenshots):
    _, _, defs, result = run_lake
    graph = defs.resolve_asset_graph()
    keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
    assert {"raw_scores", "generated_samples", "model_evaluation"} <= set(keys)
    groups = sorted({graph.get(k).group_name for k in graph.get_all_asset_keys()})
    # every group expanded (the graph collapses groups by default): the UI's own ?expanded= state,
    # in both forms of its group ids (global, and per code location)
    expanded = ",".join([f"global@global:{g}" for g in groups]
                        + [f"__repository__@pipelines.definitions:{g}" for g in groups])
    dagster, _ = uis
    browser.get(dagster + "/asset-groups?expanded=" + expanded)
    wait_for_text(browser, ["Global asset lineage", *groups], timeout=120)
    for skip in browser.find_elements("xpath", "//button[normalize-space()='Skip']"):
        skip.click()  # the first-visit "Join the Dagster community" dialog
    _page(browser, browser.current_url, keys, screenshots / "dagster_asset_graph.png")
    meta = result.asset_materializations_for_node("model_evaluation")[0].metadata
    # the latest materialization's metadata: names and the values this run recorded
    _page(browser, dagster + "/assets/model_evaluation",
          ["Latest materialization", "Metadata", "val_bpb", "test_bpb", "unigram_val_bpb",
           str(meta["val_bpb"].value), str(meta["test_bpb"].value)],
          screenshots / "dagster_model_evaluation.png")


@pytest.mark.browser
@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_mlflow_ui_shows_the_run_metrics_samples_and_champion(run_lake, uis, browser, screenshots):
    root, _, defs, _ = run_lake
    from mlflow.tracking import MlflowClient

    latest = json.loads((root / "models" / "latest.json").read_text())
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    run = client.get_run(latest["mlflow_run_id"])
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == "musicml"
    assert any(k.startswith("system/") for k in run.data.metrics), sorted(run.data.metrics)  # system metrics
    _, mlflow = uis
    base = f"{mlflow}/#/experiments/{exp.experiment_id}"
    # the experiment's link opens the model-training view on its runs table, no tab clicked (a fresh
    # browser without the link's query opens MLflow 3's GenAI overview whatever the experiment's kind)
    from musicml import tracking

    body = _page(browser, tracking.experiment_url(f"sqlite:///{root / 'mlflow.db'}", ui=mlflow),
                 ["musicml", "Run Name", run.info.run_name], screenshots / "mlflow_experiment.png")
    assert f"/experiments/{exp.experiment_id}/runs?workflowType=machine_learning" in browser.current_url
    assert "Judges" not in body and "Agent versions" not in body  # none of the GenAI view's tabs
    run_page = f"{base}/runs/{run.info.run_id}"
    _page(browser, run_page, [run.info.run_name, "val_bpb", "test_bpb"], screenshots / "mlflow_run.png")
    _page(browser, run_page + "/artifacts", ["samples", "checkpoints"], screenshots / "mlflow_artifacts.png")
    if dg.AssetKey("registered_model") not in defs.resolve_asset_graph().get_all_asset_keys():
        pytest.skip("no registered_model asset in the definitions: the champion page is not checked")
    models = [m for m in client.search_registered_models() if "champion" in m.aliases]
    assert models, "the run registered no model with the champion alias"
    model = models[0]
    body = _page(browser, f"{mlflow}/#/models/{model.name}", [model.name, "champion"],
                 screenshots / "mlflow_registered_model.png")
    assert f"Version {model.aliases['champion']}" in body


def test_without_chromium_the_skip_reason_is_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(browser_helpers, "CHROMIUM", tmp_path / "no-chromium")
    assert browser_missing() == "apt-get install chromium chromium-driver"


def test_a_server_that_dies_before_it_is_ready_fails_with_its_log(tmp_path):
    log = tmp_path / "server.log"
    proc = browser_helpers.launch([sys.executable, "-c", "print('bad config'); raise SystemExit(3)"], log)
    with pytest.raises(RuntimeError, match=r"(?s)exited with 3.*bad config"):
        wait_http(f"http://127.0.0.1:{free_port()}/", proc, log, timeout=30)
