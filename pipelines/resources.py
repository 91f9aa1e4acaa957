"""Resources: where the lake is and where MLflow tracks."""

from __future__ import annotations

import dagster as dg

from musicml import tracking
from musicml.lake import Lake


class LakeResource(dg.ConfigurableResource):
    """The data lake. Empty fields fall back to ``MUSICML_LAKE`` / ``MUSICML_RAW_DIR`` (``musicml.env``)."""

    root: str = ""  # lake root; empty: $MUSICML_LAKE, else data_lake
    raw_dir: str = ""  # drop zone; empty: $MUSICML_RAW_DIR, else <lake>/raw

    def lake(self) -> Lake:
        return Lake.from_env(self.root or None, self.raw_dir or None)


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking. Empty ``tracking_uri`` means ``MLFLOW_TRACKING_URI`` or ``sqlite:///<lake>/mlflow.db``."""

    tracking_uri: str = ""
    experiment: str = tracking.DEFAULT_EXPERIMENT

    def uri(self, lake: Lake) -> str:
        return self.tracking_uri or lake.mlflow_uri
