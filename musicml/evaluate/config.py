"""Evaluation settings (asset ``model_evaluation``), each with its default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvaluationConfig:
    max_tokens: int | None = None  # target tokens per split (None: the whole split; bits per note needs it)
    batch_size: int = 8  # rows per evaluation batch
    validity_samples: int = 8  # generated per format to measure syntax validity
    max_new_tokens: int = 384  # tokens per validity sample
    device: str = "auto"  # auto | cpu | cuda | mps
    reference_pieces: int = 500  # test and valid pieces whose musical metrics the samples are compared with
