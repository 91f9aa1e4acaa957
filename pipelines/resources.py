"""Resources: where the lake is and where MLflow tracks."""

from __future__ import annotations

import dagster as dg

from musicml import tracking
from musicml.lake import Lake


class LakeResource(dg.ConfigurableResource):
    """The data lake. Empty fields fall back to ``MUSICML_LAKE`` / ``MUSICML_RAW_DIR`` (``musicml.env``).

    A lake on object storage (an fsspec URL) is pulled into its local copy when the resource is
    set up and pushed back when it is torn down: per step under the multiprocess executor, per
    run in process (``musicml.lake_sync``). (With these hooks, a test that builds a sensor
    context with this resource opens it as a context manager: ``with build_sensor_context(...)``.)"""

    root: str = ""  # lake root; empty: $MUSICML_LAKE, else data_lake
    raw_dir: str = ""  # drop zone; empty: $MUSICML_RAW_DIR, else <lake>/raw

    def lake(self) -> Lake:
        return Lake.from_env(self.root or None, self.raw_dir or None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.dagster_run is not None:  # in a run (a sensor pulls only what it reads)
            self.lake().pull()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if context.dagster_run is not None:
            self.lake().push()


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking. Empty ``tracking_uri`` means ``MLFLOW_TRACKING_URI`` or ``sqlite:///<lake>/mlflow.db``."""

    tracking_uri: str = ""
    experiment: str = tracking.DEFAULT_EXPERIMENT

    def uri(self, lake: Lake) -> str:
        return self.tracking_uri or lake.mlflow_uri
