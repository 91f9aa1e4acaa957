"""The production configuration: Dagster's storage and MLflow's backend store on a real PostgreSQL.

A throwaway server (Debian's ``postgresql`` package, installed by ``.ci/setup``) is started from
its own binaries into a temp folder, on 127.0.0.1 and a free port, and stopped by its PID at the
end. ``DAGSTER_HOME`` gets ``deploy/dagster-postgres.yaml``; the data assets and a tracked training
are materialized against it, and the runs, events, pool slots and the MLflow run are read back
from PostgreSQL with psycopg2.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from test_pipeline import DATA_ASSETS, TINY_RUN

psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2 missing: pip install -e '.[postgres]' (bash .ci/setup)")
pytest.importorskip("dagster_postgres", reason="dagster-postgres missing: pip install -e '.[postgres]' (bash .ci/setup)")

REPO = Path(__file__).resolve().parents[1]
USER = "musicml"


def _bindir() -> Path | None:
    """Folder holding ``initdb`` and ``pg_ctl``: PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return Path(shutil.which("initdb")).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    port: int
    data: Path

    def url(self, db: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{USER}@127.0.0.1:{self.port}/{db}"

    def query(self, db: str, sql: str, *args) -> list[tuple]:
        con = psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, dbname=db)
        try:
            with con.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall()
        finally:
            con.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Server]:
    """A PostgreSQL server of its own, trust auth on 127.0.0.1 only, with databases dagster and mlflow."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: "
                    "apt-get install postgresql (bash .ci/setup does it when run as root)")
    # postgres refuses to run as root: as root, the server runs as Debian's `postgres` user
    as_user: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser: cannot start PostgreSQL as a non-root user")
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no `postgres` user (Debian's postgresql package creates it)")
        as_user = ["runuser", "-u", "postgres", "--"]
    home = Path(tempfile.mkdtemp(prefix="musicml-pg-"))
    if as_user:
        os.chown(home, pw.pw_uid, pw.pw_gid)
    data, port = home / "data", _free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off -c full_page_writes=off"
    start = subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(home / "log"),
                            "-o", options, "-w", "-t", "60", "start"], capture_output=True, text=True)
    pid_file = data / "postmaster.pid"
    pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
    try:
        assert start.returncode == 0, f"pg_ctl start failed: {start.stderr}\n{(home / 'log').read_text()}"
        server = Server(port, data)
        con = psycopg2.connect(host="127.0.0.1", port=port, user=USER, dbname="postgres")
        con.autocommit = True
        with con.cursor() as cur:
            for db in ("dagster", "mlflow"):
                cur.execute(f"CREATE DATABASE {db}")
        con.close()
        yield server
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        if pid is not None:  # still there (pg_ctl failed): stop that one process by its PID
            try:
                os.kill(pid, signal.SIGTERM)
                time.sleep(1)
            except ProcessLookupError:
                pass
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def production(postgres: Server, tmp_path_factory, derived):
    """The data assets and a tracked training materialized on PostgreSQL storage (both stores)."""
    root = tmp_path_factory.mktemp("lake")
    raw = root / "raw"
    raw.mkdir()
    for f in [*derived.abc_files[:3], *derived.midi[:3], derived.corrupt_midi["truncated.mid"]]:
        shutil.copy(f, raw / f.name)
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    mp = pytest.MonkeyPatch()
    mp.setenv("DAGSTER_HOME", str(home))
    mp.setenv("DAGSTER_POSTGRES_URL", postgres.url("dagster"))
    mp.setenv("MLFLOW_TRACKING_URI", postgres.url("mlflow"))
    mp.setenv("MUSICML_LAKE", str(root))
    mp.delenv("MUSICML_RAW_DIR", raising=False)
    mp.delenv("MUSICML_ARTIFACTS", raising=False)
    mp.chdir(root)  # nothing may land in the checkout (MLflow's ./mlruns)
    from pipelines.definitions import defs
    from pipelines.pools import apply_pool_limits

    run_config = {"ops": {k: v for k, v in TINY_RUN["ops"].items() if k in [*DATA_ASSETS, "trained_model"]}}
    train = run_config["ops"]["trained_model"]["config"]
    run_config["ops"]["trained_model"] = {"config": {**train, "launcher": "inprocess"}}
    selection = [a for a in defs.assets if a.key.to_user_string() in [*DATA_ASSETS, "trained_model"]]
    try:
        with dg.DagsterInstance.get() as instance:
            apply_pool_limits(instance)  # the gpu pool's limit, kept in PostgreSQL
            result = dg.materialize(selection, run_config=run_config, resources=defs.resources,
                                    instance=instance)
            yield postgres, root, instance, result
    finally:
        mp.undo()


def test_instance_storage_is_postgres(production) -> None:
    _, _, instance, _ = production
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)


def test_materialization_is_stored_in_postgres(production) -> None:
    server, _, _, result = production
    assert result.success
    runs = server.query("dagster", "SELECT run_id, status FROM runs")
    assert (result.run_id, "SUCCESS") in runs
    keys = {r[0] for r in server.query(
        "dagster", "SELECT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
        result.run_id, "ASSET_MATERIALIZATION")}
    assert {f'["{a}"]' for a in [*DATA_ASSETS, "trained_model"]} <= keys
    limits = dict(server.query("dagster", 'SELECT concurrency_key, "limit" FROM concurrency_limits'))
    assert limits == {"gpu": 1}
    # the training's pool slot was claimed and is free again after the run
    assert server.query("dagster", "SELECT count(*) FROM concurrency_slots WHERE run_id IS NOT NULL") == [(0,)]


def test_tracked_training_is_stored_in_postgres(production) -> None:
    server, root, _, result = production
    md = result.asset_materializations_for_node("trained_model")[0].metadata
    run_id = md["mlflow_run_id"].value
    rows = server.query("mlflow", "SELECT status, artifact_uri FROM runs WHERE run_uuid = %s", run_id)
    assert len(rows) == 1
    status, artifact_uri = rows[0]
    assert status == "FINISHED"
    assert artifact_uri.startswith((root / "mlartifacts").as_uri())  # the lake's, not ./mlruns
    assert not (root / "mlruns").exists()
    steps = server.query("mlflow", "SELECT count(*) FROM metrics WHERE run_uuid = %s AND key = 'train_loss'",
                         run_id)[0][0]
    assert steps == TINY_RUN["ops"]["trained_model"]["config"]["max_steps"]
    tags = dict(server.query("mlflow", "SELECT key, value FROM tags WHERE run_uuid = %s", run_id))
    assert tags["dagster.run_id"] == result.run_id
    checkpoints = list((root / "mlartifacts").rglob("checkpoints/*"))
    assert checkpoints, "the checkpoint artifact was not written under the lake"
