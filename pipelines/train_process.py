"""Training as its own process, launched by the ``trained_model`` asset through Dagster Pipes.

Logs and metrics stream back to the Dagster run; metrics also go straight to the MLflow run whose
id the asset passes in; the result lands in a JSON file the asset reads. Because it is a plain
process with a JSON contract, the same command can be sent to another machine (a GPU box, a
Kubernetes pod) by swapping the Pipes client.
"""

from __future__ import annotations

import json
from pathlib import Path

from dagster_pipes import open_dagster_pipes

from musicml import workflow
from musicml.lake import write_json
from musicml.train import TrainConfig


def main() -> None:
    with open_dagster_pipes() as pipes:
        extras = pipes.extras
        cfg = TrainConfig.from_dict(json.loads(Path(extras["config"]).read_text()))

        def log(step: int, metrics: dict) -> None:
            if step % 25 == 0 or "val_bpb" in metrics:
                pipes.log.info(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

        result = workflow.train_tracked(cfg, Path(extras["shards"]), Path(extras["out"]), int(extras["bos_id"]),
                                        Path(extras["token_bytes"]), extras["tracking_uri"],
                                        extras["mlflow_run_id"], log)
        write_json(Path(extras["result"]), result)
        pipes.log.info(f"done: {result['steps']} steps, val_bpb {result['val_bpb']}")


if __name__ == "__main__":
    main()
