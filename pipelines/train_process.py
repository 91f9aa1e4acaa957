"""Training as its own process, launched by the ``trained_model`` asset through Dagster Pipes.

Logs and metrics stream back to the Dagster run; metrics also go straight to the MLflow run whose
id the asset passes in; the result lands in a JSON file the asset reads. Because it is a plain
process with a JSON contract, the same command can be sent to another machine (a GPU box, a
Kubernetes pod) by swapping the Pipes client.
"""

from __future__ import annotations

from musicml.threads import limit_threads

# before torch and polars are imported: their pools (and OpenMP's wait policy) are fixed then
limit_threads()

import json  # noqa: E402
from pathlib import Path  # noqa: E402

from dagster_pipes import open_dagster_pipes  # noqa: E402

from musicml import workflow  # noqa: E402
from musicml.lake import write_json  # noqa: E402
from musicml.train import TrainConfig  # noqa: E402


def main() -> None:
    from musicml.lifeline import die_with_parent

    die_with_parent()  # never outlive the Dagster step that launched this trainer
    with open_dagster_pipes() as pipes:
        extras = pipes.extras
        cfg = TrainConfig.from_dict(json.loads(Path(extras["config"]).read_text()))

        def log(step: int, metrics: dict) -> None:
            if step % 25 == 0 or "val_bpb_estimate" in metrics:
                pipes.log.info(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

        result = workflow.train_tracked(cfg, Path(extras["shards"]), Path(extras["out"]), int(extras["bos_id"]),
                                        Path(extras["token_bytes"]), extras["tracking_uri"],
                                        extras["mlflow_run_id"], log)
        write_json(Path(extras["result"]), result)
        pipes.log.info(f"done: {result['steps']} steps, val_bpb {result['val_bpb']}")


if __name__ == "__main__":
    main()
