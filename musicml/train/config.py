"""Training settings: :class:`TrainConfig` (every knob with its default) and the presets.

    cfg = preset_config("gpu", max_steps=200)      # the nanochat alphaTex run's d4, 200 steps
    cfg = TrainConfig(model={"n_layer": 1, "n_embd": 32, "n_head": 2}, seq_len=64)

The model's size is set one way: ``model``, the family's own config fields (``musicml.models``:
GPT ``n_layer`` / ``n_embd`` / ``n_head``, or ``depth`` for nanochat's single dial; LSTM
``embed_dim`` / ``hidden_dim``). The Dagster ``TrainingConfig`` and the ``python -m
musicml.train`` flags are generated from these fields.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from musicml import settings
from musicml.shards.packing import DEFAULT_WINDOW_DOCS


@dataclass
class TrainConfig:
    family: str = "gpt"  # model family: gpt | lstm | bigram
    model: dict[str, Any] = field(default_factory=dict)  # the family's config fields, e.g. {"n_layer": 4, "n_embd": 128, "n_head": 2} or {"depth": 4}; {}: the family's defaults (GPT: depth 4)
    seq_len: int = 256  # tokens per training row
    device_batch_size: int = 8  # rows per micro-batch per rank
    total_batch_tokens: int | None = None  # global tokens per step; None: one micro-batch per rank
    max_steps: int = 300  # optimizer steps
    time_budget_s: float | None = None  # wall-clock cap of this invocation (checkpoints, stops)
    lr_schedule: str = "steps"  # steps: warmdown over max_steps; time: over time_budget_s
    lr: float = 3e-3  # AdamW lr of non-GPT families
    matrix_lr: float = 0.02  # GPT: Muon lr of block matrices
    embedding_lr: float = 0.2  # GPT: AdamW lr of the token embedding
    unembedding_lr: float = 0.004  # GPT: AdamW lr of the lm_head
    weight_decay: float = 0.0  # AdamW weight decay
    grad_clip: float = 0.0  # max global grad norm; 0 disables
    warmup_steps: int = 0  # linear lr warmup steps
    warmdown_frac: float = 0.2  # fraction of the schedule spent decaying the lr
    final_lr_frac: float = 0.0  # lr at the end, as a fraction of the peak
    eval_every: int = 100  # steps between val bpb evaluations; 0: only at the end
    eval_tokens: int = 2**16  # target positions per val evaluation
    checkpoint_every: int = 100  # steps between checkpoints; 0: only at the end
    keep_last: int = 2  # checkpoints kept
    seed: int = 42  # seed of weights, data order and sampling
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    compile: str = "auto"  # torch.compile: auto (on CUDA) | on | off
    dtype: str = "auto"  # autocast dtype: auto (bf16 on CUDA) | bf16 | fp16 | fp32
    window_docs: int = DEFAULT_WINDOW_DOCS  # packing window in documents (musicml.shards.packing)
    warm_start: str = "none"  # none | latest (models/latest.json's checkpoint) | champion (the registry's, this modality): initial weights only (not optimizer, not step), when shape and tokenizer match; else fresh, reason logged

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """From a plain dict; unknown keys raise ``ValueError``."""
        return settings.from_dict(cls, d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))

    def model_config(self, vocab_size: int) -> dict:
        """The full model config (plain dict) for ``vocab_size`` tokens."""
        from musicml.models import model_config

        return model_config(self.family, vocab_size, self.seq_len, **self.model)


# Presets: named overrides of the TrainConfig defaults. "model" applies to the GPT family only.
PRESETS: dict[str, dict[str, Any]] = {
    # the nanochat alphaTex seed run's d4: 4 layers, 128 wide, seq 512, 4,096-token batches, 1,000 steps
    "gpu": {"model": {"n_layer": 4, "n_embd": 128, "n_head": 2}, "seq_len": 512,
            "total_batch_tokens": 4096, "max_steps": 1000},
    # a CPU-sized GPT: 2 layers, 128 wide; otherwise the defaults (seq 256, 8 rows = 2,048 tokens a step, 300 steps)
    "cpu": {"model": {"n_layer": 2, "n_embd": 128, "n_head": 2}},
}
PRESET_CHOICES = ("auto", *PRESETS)
WARM_START_CHOICES = ("none", "latest", "champion")


def resolve_preset(preset: str = "auto", device: str = "auto") -> str:
    """``auto`` is ``gpu`` when CUDA is there (and ``device`` allows it), else ``cpu``."""
    if preset == "auto":
        import torch

        return "gpu" if torch.cuda.is_available() and device.split(":")[0] in ("auto", "cuda") else "cpu"
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {list(PRESET_CHOICES)}")
    return preset


def preset_config(preset: str = "auto", **overrides: Any) -> TrainConfig:
    """The defaults, then the preset, then ``overrides``. ``model`` overrides are merged key by
    key into the preset's GPT shape, unless they hold ``depth`` (which sets the whole shape)."""
    name = resolve_preset(preset, str(overrides.get("device", "auto")))
    values = copy.deepcopy(PRESETS[name])
    preset_shape = values.pop("model", {})
    shape = preset_shape if overrides.get("family", "gpt") == "gpt" else {}
    model = overrides.pop("model", None)
    if model is not None:
        shape = dict(model) if "depth" in model else {**shape, **model}
    return TrainConfig.from_dict({**values, **overrides, "model": shape})


def describe_presets() -> str:
    """One line per preset (for ``--help`` and the Dagster field description)."""
    return "; ".join(f"{name}: {json.dumps(values, separators=(',', ':'))}" for name, values in PRESETS.items())
