"""Evaluation (asset ``model_evaluation``): bits per byte, baselines, validity of samples."""

from __future__ import annotations

from musicml.evaluate.bpb import (  # noqa: F401
    bits_per_byte,
    loss_and_bytes,
    token_counts,
    unigram_bpb,
)
