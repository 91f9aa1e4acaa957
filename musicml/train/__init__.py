"""Training (asset ``trained_model``): the loop, its config and presets, optimizers; ``python -m musicml.train``."""

from __future__ import annotations

from musicml.train.cli import main  # noqa: F401
from musicml.train.config import (  # noqa: F401
    PRESETS,
    TrainConfig,
    preset_config,
    resolve_preset,
)
from musicml.train.loop import (  # noqa: F401
    TrainResult,
    train,
)
