"""Training (asset ``trained_model``): the loop, its config, optimizers; ``python -m musicml.train``."""

from __future__ import annotations

from musicml.train.loop import (  # noqa: F401
    TrainConfig,
    TrainResult,
    main,
    train,
)
