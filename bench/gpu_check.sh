#!/usr/bin/env bash
# The prepared GPU check: one JSON object on stdout (and in $OUT/gpu_check.json when OUT is set):
#   throughput   tokens/s and MFU of the GPT d4 and d12 (bf16 autocast, torch.compile) beside the
#                minimal reference loop (bench/bench_train.py)
#   time_to_target  training seconds to val bpb 0.6 on the shared alphaTex corpus at the seed
#                run's schedule: 4 layers x 128, seq 512, 4,096-token batches, 1,000 steps
#                (bench/bench_time_to_target.py)
#   fractal      the FractalGen-MIDI piano-roll model's ~29M `gpu` configuration: training
#                cells/s and sampling seconds per sample per num_iter (bench/bench_fractal.py)
#
#   bash bench/gpu_check.sh                              # on a GPU machine (< 8 min on one H200)
#   bash bench/gpu_check.sh --device cpu --tiny          # dry run of every path on a CPU
#   bash bench/gpu_check.sh --data DIR                   # prebuilt shards (default data_lake/gpu_check)
#
# The data folder comes from `python bench/bench_time_to_target.py --build-only data_lake/gpu_check`
# (run where ../shared/corpora/alphatex is; this script does it when the folder is missing and the
# corpus is there). Training needs only torch, numpy and pyarrow, so a GPU machine's own python3
# works without the project's .venv: the interpreter is $PYTHON, else .venv/bin/python when its
# torch sees CUDA (or --device cpu), else python3. Where that python lacks polars, the wheels in
# .whl/ are installed first (pip download --no-deps --only-binary=:all: --python-version 3.12
# --platform manylinux_2_17_x86_64 -d .whl polars==2.1.0 polars-runtime-32==2.1.0).
set -euo pipefail
cd "$(dirname "$0")/.."
device=auto tiny=0 data=data_lake/gpu_check
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --tiny) tiny=1; shift ;;
    --data) data=$2; shift 2 ;;
    *) echo "gpu_check: unknown argument $1 (--device D, --tiny, --data DIR)" >&2; exit 2 ;;
  esac
done
export PYTHONUNBUFFERED=1
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ] && { [ "$device" = cpu ] || .venv/bin/python -c \
    'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; }; then PY=.venv/bin/python
else PY=python3
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
log() { echo "gpu_check: $*" >&2; }
# polars (imported by musicml.evaluate) is not in a bare GPU image: install carried wheels
if ! "$PY" -c 'import polars' 2>/dev/null; then
  if ls .whl/polars*.whl >/dev/null 2>&1; then
    log "polars missing: installing .whl/polars*.whl into $work/site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$work/site" .whl/polars*.whl >&2
    export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
  else
    log "polars missing and no .whl/polars*.whl to install (see the header)"; exit 3
  fi
fi
if [ ! -f "$data/data.json" ]; then
  log "no $data/data.json: building it from ../shared/corpora/alphatex"
  "$PY" bench/bench_time_to_target.py --build-only "$data" --work "$work/build" >&2
fi
if [ "$tiny" = 1 ]; then  # every path, tiny shapes: a dry run, not a measurement
  train_args=(--depths 1 2 --seq-len 64 --batch 2 --vocab 128 --steps 2 --warmup 1 --compile on
              --quality-steps 3 --quality-depth 1 --eval-tokens 256 --data "$data")
  target_args=(--depth 1 --steps 12 --eval-every 6 --seq-len 64 --batch-tokens 256 --eval-tokens 1024)
else
  train_args=(--depths 4 12 --compile on --quality-steps 0)
  target_args=(--depth 4 --steps 1000 --eval-every 50)
fi
log "python $("$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())')"
t0=$(date +%s)
log "throughput: bench/bench_train.py ${train_args[*]}"
"$PY" bench/bench_train.py --device "$device" "${train_args[@]}" >"$work/throughput.json"
t1=$(date +%s)
log "time to target: bench/bench_time_to_target.py ${target_args[*]} ($((t1 - t0)) s so far)"
"$PY" bench/bench_time_to_target.py --data "$data" --target 0.6 --device "$device" \
  --work "$work/target" "${target_args[@]}" >"$work/target.json"
t2=$(date +%s)
if [ "$tiny" = 1 ]; then fractal_args=(--preset tiny --train-steps 2 --repeats 1 --batch 2)
else fractal_args=(--preset gpu --train-steps 20 --repeats 2 --batch 16)
fi
log "fractal: bench/bench_fractal.py ${fractal_args[*]} ($((t2 - t0)) s so far)"
"$PY" bench/bench_fractal.py --device "$device" "${fractal_args[@]}" >"$work/fractal.json"
"$PY" - "$work" "$((t1 - t0))" "$((t2 - t1))" "$tiny" "$(($(date +%s) - t2))" <<'EOF'
import json, os, sys
from pathlib import Path

work, s_throughput, s_target, tiny = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
tp = json.loads((work / "throughput.json").read_text())
tt = json.loads((work / "target.json").read_text())
fr = json.loads((work / "fractal.json").read_text())
out = {
    "benchmark": "gpu_check", "tiny_dry_run": tiny, "device": tp["device"], "device_name": tp["device_name"],
    "torch": tp["torch"], "compile": tp["compile"], "autocast": tp["autocast"],
    "throughput": [{k: r.get(k) for k in ("depth", "n_layer", "n_embd", "seq_len", "batch", "vocab_size",
                                          "params", "project_mfu", "ratio_project_over_reference")}
                   | {"tokens_per_s": r["project"]["tokens_per_s"],
                      "reference_tokens_per_s": r["reference"]["tokens_per_s"]} for r in tp["results"]],
    "time_to_target": {k: tt[k] for k in ("target_val_bpb", "depth", "reached", "final_val_bpb", "steps",
                                          "train_tokens_per_s", "wall_s", "curve")},
    "quality_at_equal_tokens": tp.get("quality_at_equal_tokens"),
    "fractal": fr,
    "seconds": {"throughput": s_throughput, "time_to_target": s_target, "fractal": int(sys.argv[5])},
}
text = json.dumps(out, indent=1)
print(text)
if os.environ.get("OUT"):
    Path(os.environ["OUT"], "gpu_check.json").write_text(text + "\n")
EOF
rm -rf "$work"
