"""One home for every setting: library dataclasses, the presets, and the Dagster configs built from them."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

import dagster as dg
import pytest

from musicml import settings, workflow
from musicml.curate.augment import AugmentConfig
from musicml.curate.splits import SplitConfig
from musicml.evaluate.config import EvaluationConfig
from musicml.generate.config import SamplesConfig
from musicml.ingest import IngestConfig
from musicml.lake import Lake
from musicml.pianorolls.dataset import PianoRollConfig
from musicml.shards.config import ShardsConfig
from musicml.tokenizers import TokenizerConfig
from musicml.train import PRESETS, TrainConfig, preset_config, resolve_preset
from pipelines.assets.model import TrainingConfig
from pipelines.config import dagster_config
from pipelines.definitions import defs

# asset -> (library dataclass, Dagster-only fields)
ASSET_CONFIGS = {
    "raw_scores": (IngestConfig, {"seed_default_corpus"}),
    "raw_score_buckets": (IngestConfig, set()),
    "augmented_scores": (AugmentConfig, set()),
    "splits": (SplitConfig, set()),
    "tokenizer": (TokenizerConfig, set()),
    "token_shards": (ShardsConfig, set()),
    "trained_model": (TrainConfig, {"preset", "launcher", "fresh"}),
    "model_evaluation": (EvaluationConfig, set()),
    "generated_samples": (SamplesConfig, set()),
    "piano_rolls": (PianoRollConfig, set()),
}


@dataclass
class Knobs:
    rate: float = 0.5  # how fast
    name: str = "x"
    tags: tuple[str, ...] = ("a", "b")  # labels
    extra: dict = field(default_factory=dict, metadata={"doc": "free-form"})
    limit: int | None = None  # cap; None: none
    on: bool = False  # switch


# --- the library side ----------------------------------------------------------------------------


def test_field_docs_come_from_comments_and_metadata() -> None:
    assert settings.field_docs(Knobs) == {"rate": "how fast", "tags": "labels", "extra": "free-form",
                                          "limit": "cap; None: none", "on": "switch"}
    assert settings.field_docs(TrainConfig)["seq_len"] == "tokens per training row"


def test_merged_applies_overrides_and_refuses_unknown_keys() -> None:
    assert settings.merged(Knobs, None, {"rate": 1.0}) == Knobs(rate=1.0)
    assert settings.merged(Knobs, Knobs(name="y"), {}) == Knobs(name="y")
    with pytest.raises(TypeError, match=r"unknown Knobs settings: \['speed'\]"):
        settings.merged(Knobs, None, {"speed": 2})
    with pytest.raises(TypeError, match="expected a Knobs"):
        settings.merged(Knobs, SplitConfig(), {})
    with pytest.raises(ValueError, match=r"unknown Knobs keys: \['nope'\]"):
        settings.from_dict(Knobs, {"nope": 1})


def test_workflow_steps_take_config_objects_or_keywords_and_refuse_unknown_ones(tmp_path) -> None:
    lake = Lake(root=tmp_path, raw_dir=tmp_path / "raw")
    for step in (workflow.evaluate_step, workflow.samples_step):
        with pytest.raises(TypeError, match="unknown .* settings: \\['bogus'\\]"):
            step(lake, tracking_uri="sqlite:///unused.db", bogus=1)
    with pytest.raises(TypeError, match="unknown ShardsConfig settings"):
        workflow.shards_step(lake, ShardsConfig(), tokens_per_shrd=5)


def test_cli_flags_from_a_dataclass() -> None:
    p = argparse.ArgumentParser()
    settings.add_arguments(p, Knobs)
    args = p.parse_args(["--rate", "2", "--tags", "c", "d", "--extra", '{"k": 1}', "--limit", "none", "--on"])
    assert settings.overrides_from_args(args, Knobs) == {"rate": 2.0, "tags": ("c", "d"), "extra": {"k": 1},
                                                         "limit": None, "on": True}
    assert settings.overrides_from_args(p.parse_args([]), Knobs) == {}  # nothing given: nothing overridden
    assert settings.overrides_from_args(p.parse_args(["--no-on"]), Knobs) == {"on": False}
    assert "how fast (default: 0.5)" in p.format_help()


def test_presets() -> None:
    gpu = preset_config("gpu")
    assert (gpu.model, gpu.seq_len, gpu.total_batch_tokens, gpu.max_steps) == (
        {"n_layer": 4, "n_embd": 128, "n_head": 2}, 512, 4096, 1000)
    assert gpu.device_batch_size * gpu.seq_len == gpu.total_batch_tokens  # one micro-batch a step
    cpu = preset_config("cpu")
    assert cpu == TrainConfig(model={"n_layer": 2, "n_embd": 128, "n_head": 2})  # otherwise the defaults
    assert cpu.model_config(100)["n_layer"] == 2
    assert preset_config("gpu", model={"n_layer": 6}).model == {"n_layer": 6, "n_embd": 128, "n_head": 2}
    assert preset_config("gpu", model={"depth": 2}).model == {"depth": 2}  # the dial sets the whole shape
    assert preset_config("gpu", family="lstm").model == {}  # the GPT shape is for GPTs
    assert preset_config("gpu", family="lstm").seq_len == 512
    with pytest.raises(ValueError, match="unknown preset 'tpu'"):
        preset_config("tpu")


def test_auto_preset_follows_cuda(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_preset("auto") == "gpu" and resolve_preset("auto", device="cuda:1") == "gpu"
    assert resolve_preset("auto", device="cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_preset("auto") == "cpu"


def test_train_config_defaults_agree_everywhere() -> None:
    """The issue's disagreements (eval_every 250/100, checkpoint_every 500/100, eval_tokens 2**17/2**16) are gone."""
    fields = defs.resolve_assets_def("trained_model").op.config_schema.as_field().config_type.fields
    for name in ("eval_every", "checkpoint_every", "eval_tokens", "keep_last", "lr", "seed"):
        assert fields[name].default_value == getattr(TrainConfig(), name), name


# --- the Dagster side ----------------------------------------------------------------------------


def test_every_asset_with_a_config_is_listed_here() -> None:
    with_config = {a.key.to_user_string() for a in defs.assets
                   if getattr(a.op.config_schema.as_field().config_type, "fields", None)}
    assert with_config == set(ASSET_CONFIGS)


@pytest.mark.parametrize("asset", sorted(ASSET_CONFIGS))
def test_every_asset_config_is_its_library_dataclass(asset: str) -> None:
    cls, dagster_only = ASSET_CONFIGS[asset]
    fields = defs.resolve_assets_def(asset).op.config_schema.as_field().config_type.fields
    names = [f.name for f in dataclasses.fields(cls)]
    assert set(fields) == set(names) | dagster_only
    docs = settings.field_docs(cls)
    optional = set(PRESETS["gpu"]) | set(PRESETS["cpu"]) if cls is TrainConfig else set()
    for f in dataclasses.fields(cls):
        default = settings.field_default(f)
        expected = None if f.name in optional else (list(default) if isinstance(default, tuple) else default)
        got = fields[f.name].default_value if fields[f.name].default_provided else None
        assert got == expected, f.name
        if f.name in docs:
            assert fields[f.name].description.startswith(docs[f.name]), f.name


def test_generated_config_builds_the_library_dataclass() -> None:
    Ingest = dagster_config(IngestConfig, extra={"seed_default_corpus": (bool, True, "seed")})
    built = Ingest(formats=["abc"], max_file_bytes=10).build()
    assert isinstance(built, IngestConfig) and built.formats == ("abc",) and built.max_file_bytes == 10
    assert Ingest().build() == IngestConfig()


def test_training_config_resolves_like_the_library() -> None:
    assert TrainingConfig(preset="gpu", max_steps=5).resolve() == preset_config("gpu", max_steps=5)
    assert TrainingConfig(preset="cpu").resolve() == preset_config("cpu")
    shaped = TrainingConfig(preset="cpu", model={"n_layer": 1, "n_embd": 64, "n_head": 1}, seq_len=128)
    assert shaped.resolve() == preset_config("cpu", model={"n_layer": 1, "n_embd": 64, "n_head": 1}, seq_len=128)
    with pytest.raises(ValueError, match="unknown preset"):
        TrainingConfig(preset="tpu").resolve()


@pytest.mark.parametrize(
    "bad",
    [
        {"trained_model": {"config": {"n_layer": 1}}},  # the GPT shape is set in `model` now
        {"trained_model": {"config": {"depth": 4}}},
        {"token_shards": {"config": {"tokens_per_shard": "many"}}},
        {"augmented_scores": {"config": {"formats": "abc"}}},
    ],
)
def test_bad_run_config_is_refused(bad: dict) -> None:
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(defs.resolve_job_def("main_job"), {"ops": bad})


def test_generator_refuses_what_it_cannot_express() -> None:
    @dataclass
    class NoDefault:
        x: int

    with pytest.raises(TypeError, match="has no default"):
        dagster_config(NoDefault)
    with pytest.raises(ValueError, match="has no fields"):
        dagster_config(Knobs, optional=["missing"])
    with pytest.raises(ValueError, match="already a field"):
        dagster_config(Knobs, extra={"rate": (float, 1.0, "dup")})
