"""A char-LSTM run's samples through the ``generated_samples`` asset: text -> MIDI, piano roll and
WAV; the MLflow run tagged ``audio_renderer``, the Dagster metadata previewing the first sample."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest
import symusic

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.filterwarnings("ignore::UserWarning")]


def expected_renderer() -> str:
    from musicml.render import SoundFontError, _fluidsynth_api, find_soundfont

    try:
        _fluidsynth_api()
    except SoundFontError:
        return "additive"
    return "soundfont" if find_soundfont() else "additive"


def test_char_lstm_samples_asset(derived, tmp_path, monkeypatch):
    from musicml import tracking, workflow
    from musicml.curate.augment import AugmentConfig
    from musicml.generate import samples as samples_lib
    from musicml.lake import Lake
    from musicml.train import TrainConfig
    from pipelines.assets.model import generated_samples
    from pipelines.resources import LakeResource, MlflowResource

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MUSICML_SOUNDFONT", raising=False)
    lake = Lake(root=tmp_path / "lake", raw_dir=tmp_path / "lake" / "raw")
    lake.raw_dir.mkdir(parents=True)
    for p in derived.abc_files[:4]:
        shutil.copy(p, lake.raw_dir / p.name)
    workflow.ingest_step(lake, seed_default_corpus=False)
    workflow.parse_step(lake)
    workflow.dedup_step(lake)
    workflow.augment_step(lake, AugmentConfig(min_shift=0, max_shift=0))
    workflow.split_step(lake)
    codec = workflow.tokenizer_step(lake, kind="char")
    workflow.shards_step(lake)
    uri = f"sqlite:///{lake.root / 'mlflow.db'}"
    cfg = TrainConfig(family="lstm", model={"embed_dim": 16, "hidden_dim": 32}, seq_len=64,
                      device_batch_size=2, max_steps=2, eval_every=2, eval_tokens=128, checkpoint_every=2,
                      device="cpu")
    workflow.train_step(lake, cfg, tracking_uri=uri)

    # a 2-step LSTM writes noise; here it "writes" a real tune, so the rendering path has music
    tune = derived.abc_files[0].read_text(encoding="utf-8")

    def a_real_tune(model, ids, **kw):
        return codec.prompt_ids("abc", tune)[len(ids):] + [codec.bos_id]

    monkeypatch.setattr(samples_lib, "generate", a_real_tune)
    result = dg.materialize(
        [generated_samples], resources={"lake": LakeResource(root=str(lake.root), raw_dir=str(lake.raw_dir)),
                                        "mlflow": MlflowResource(tracking_uri=uri)},
        run_config={"ops": {"generated_samples": {"config": {"per_prompt": 1, "device": "cpu"}}}},
    )
    assert result.success
    meta = result.asset_materializations_for_node("generated_samples")[0].metadata
    renderer = expected_renderer()
    assert meta["audio_renderer"].value == renderer
    assert meta["piano_roll"].value.startswith("![piano roll of abc_p0_0](data:image/png;base64,")
    wav, midi = meta["first_sample_wav"].value, meta["first_sample_midi"].value
    assert wav.endswith("abc_p0_0.wav") and midi.endswith("abc_p0_0.mid")
    assert symusic.Score(midi).note_num() >= 40
    assert f"| {renderer} |" in meta["table"].value

    run_id = meta["mlflow_run_id"].value
    client = tracking.client(uri)
    assert client.get_run(run_id).data.tags["audio_renderer"] == renderer
    logged = {a.path for a in client.list_artifacts(run_id, "samples")}
    assert {"samples/abc_p0_0.wav", "samples/abc_p0_0.mid", "samples/abc_p0_0.png"} <= logged
