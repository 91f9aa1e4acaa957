"""Settings of the automation around the graph: the data guarantee checked before training."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DataChecksConfig:
    min_valid_files: int = 3  # ingested files below which the blocking check enough_valid_files stops the graph (train, valid and test each need a work)
