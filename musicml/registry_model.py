"""The MLflow pyfunc of a registered musicml model, logged as code ("models from code").

MLflow stores this file beside the model's artifacts (``checkpoint.pt``: a weights-only state
dict with its family and config; the tokenizer's JSON files; ``config.json``) instead of a
pickled Python object, so ``mlflow.pyfunc.load_model`` rebuilds the model with
``torch.load(weights_only=True)``. ``predict`` takes prompts (strings) and returns samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class MusicmlModel(mlflow.pyfunc.PythonModel):
    """A musicml checkpoint and its tokenizer; ``predict(prompts)`` samples text after each."""

    def load_context(self, context) -> None:
        from musicml.checkpoint import load_model

        self.model, self.meta = load_model(context.artifacts["checkpoint"])
        self.codec = None
        cfg = Path(context.artifacts.get("config", ""))
        self.formats = json.loads(cfg.read_text()).get("formats", ["abc"]) if cfg.is_file() else ["abc"]
        tok = Path(context.artifacts["tokenizer"]) if "tokenizer" in context.artifacts else None
        if tok is not None and (tok / "tokenizer_info.json").exists():
            from musicml.tokenizers import load_codec

            self.codec = load_codec(tok)

    # pd.DataFrame: a hint MLflow infers no signature from (the logged one, with the sampling
    # params, stays), and without any hint it warns on every load
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> list[str]:
        """Samples (the prompt and what follows) for a column of prompts."""
        from musicml.generate.sampling import generate

        if self.codec is None:
            raise ValueError("this model has no tokenizer: sample it with python -m musicml.generate")
        p = {"max_new_tokens": 256, "temperature": 1.0, "seed": 0, **(params or {})}
        p["format"] = p.get("format") or self.formats[0]
        prompts = list(model_input.iloc[:, 0]) if hasattr(model_input, "iloc") else list(model_input)
        out = []
        for i, prompt in enumerate(prompts):
            ids = self.codec.prompt_ids(str(p["format"]), str(prompt))
            new = generate(self.model, ids, max_new_tokens=int(p["max_new_tokens"]),
                           temperature=float(p["temperature"]), seed=int(p["seed"]) + i)
            out.append(self.codec.decode(ids[1:] + new))
        return out


set_model(MusicmlModel())
