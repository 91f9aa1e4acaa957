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

import dagster as dg
import pytest
from browser_helpers import browser_missing, chromium, free_port, server, wait_for_text

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")]


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("MUSICML_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
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
    from pipelines.definitions import defs

    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.materialize([*defs.assets, *defs.asset_checks], run_config=TINY_RUN,
                                resources=defs.resources, instance=instance)
    assert result.success
    yield root, home, defs, result
    mp.undo()


def _env(root: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MUSICML_RAW_DIR", "MLFLOW_TRACKING_URI")}
    return {**env, "MUSICML_LAKE": str(root), "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def test_dagster_ui_shows_every_asset_and_the_latest_metadata(run_lake, browser, screenshots, tmp_path):
    root, home, defs, result = run_lake
    keys = sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())
    port = free_port()
    cmd = [str(BIN / "dagster-webserver"), "-m", "pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)]
    with server(cmd, "/server_info", port, tmp_path / "dagster.log", _env(root, home)) as base:
        browser.get(base + "/asset-groups")
        wait_for_text(browser, keys, shot=lambda: browser.save_screenshot(str(screenshots / "dagster_graph_failed.png")))
        browser.save_screenshot(str(screenshots / "dagster_asset_graph.png"))
        browser.get(base + "/assets/model_evaluation")
        wait_for_text(browser, ["val_bpb", "test_bpb"], shot=lambda: browser.save_screenshot(str(screenshots / "dagster_asset_failed.png")))
        browser.save_screenshot(str(screenshots / "dagster_model_evaluation.png"))
