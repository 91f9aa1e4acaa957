"""Sampling settings (asset ``generated_samples``), each with its default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SamplesConfig:
    per_prompt: int = 2  # samples per prompt and format
    max_new_tokens: int = 512  # tokens per sample
    temperature: float = 0.9  # softmax temperature
    top_k: int | None = 50  # keep the k likeliest tokens (None: all)
    top_p: float | None = None  # nucleus sampling mass (None: off)
    seed: int = 0  # sampling seed
    device: str = "auto"  # auto | cpu | cuda | mps
