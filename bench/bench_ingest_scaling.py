"""MIDI ingestion throughput per core and with all cores, beside symusic's raw parse of the same files.

    python bench/bench_ingest_scaling.py [--corpora ../shared/corpora] [--limit 0] [--rounds 2] [--stages]

The files are POP909 and its versions (2,898 MIDI files; ``--limit`` takes the first N). Each
round, in this one process and alternating so that a loaded machine slows all alike, times:

* ``symusic``: ``symusic.Score.from_midi`` on every file's bytes (the raw parse rate, one core);
* ``in_process``: ingestion with ``isolate=False`` (one core does everything: hashing, parsing,
  MIDI text, note tables, batched cache writes: each batch's pieces and notes as parquet parts
  of the lake's pieces and note tables), then the ``parsed_scores`` step
  (:func:`musicml.workflow.parse_step`: the parts published from the cache as they are, their
  texts unread, :mod:`musicml.ingest.parsed`);
* ``workers_N``: a first ingestion on a fresh lake with N isolated reader processes, for N = 1 and
  every core (``available_cores()``), and its ``parsed_scores`` step.

Prints JSON: files/s of each (best round), ``x_symusic`` = symusic's rate over that rate (how many
times slower than the raw parse; the goal is 5 or less per core), ``cpu_us_per_file`` and
``cpu_x_symusic`` (the CPU time of the ingestion, this process and its workers together, per
file and over symusic's CPU time: the cost per core, which a machine's other load disturbs less
than wall time), and ``speedup`` of all cores over one worker. ``*_with_parsed_scores`` are the
same with the ``parsed_scores`` step added (the whole path from raw MIDI to the lake's parsed
notes and training text), and ``parsed_scores`` that step alone (in this process). Every ingestion must give the same rows (asserted; ``status`` and ``rejected``
say what they were).

``--stages`` adds ``stages``: one worker's path taken apart, in this process's CPU time (what a
loaded machine disturbs least), batch by batch interleaved with symusic's parse of the same files,
best of ``--rounds``: microseconds per file and times symusic's parse for the parse, the note
columns, the MIDI text, the note table arrays (each piece's notes sorted), the piece statistics and
the batch's notes as one Arrow table (``notes_table``) and that table written as its parquet part
(``notes_part_write``: ``write_notes_part``, as ``batch_write`` does), then ``batch_add`` (all of a worker's
per-file work: reading, checks, text, tables) and ``batch_write`` (the cache batch written: the
notes' table and its parquet part with ``NOTES_PART_PARQUET``, the pieces' part with
``PIECES_PARQUET``, :mod:`musicml.ingest.files`), and
``add_rest``: ``batch_add`` less the parse, columns, text, note arrays and statistics (the checks,
the title, the piece rows).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import tempfile
import time
from pathlib import Path

import psutil
import symusic

from musicml import workflow
from musicml.formats.midi.columns import note_columns
from musicml.formats.midi.text import encode
from musicml.ingest import IngestConfig, files_table_path, ingest
from musicml.ingest.files import BATCH_FILES, CacheBatch, warm_up, write_notes_part
from musicml.ingest.isolation import pool
from musicml.ingest.note_table import notes_part_table, piece_stats, sorted_note_arrays
from musicml.lake import Lake, sha256_bytes, write_parquet
from musicml.threads import available_cores, pool_workers

ROOT = Path(__file__).resolve().parents[1]


def midi_files(corpora: Path, limit: int) -> list[Path]:
    files = sorted((corpora / "midi" / "pop909").glob("*.mid")) + sorted(
        (corpora / "midi" / "pop909-versions").rglob("*.mid"))
    return files[:limit] if limit else files


def symusic_seconds(datas: list[bytes]) -> tuple[float, float]:
    """(wall, CPU) seconds of symusic's parse of every file."""
    t0, c0 = time.perf_counter(), time.process_time()
    for d in datas:
        symusic.Score.from_midi(d)
    return time.perf_counter() - t0, time.process_time() - c0


def workers_cpu(config: IngestConfig) -> float:
    """CPU seconds used so far by the idle workers of the pool ``config`` ingests with."""
    if not config.isolate:
        return 0.0
    workers = pool(pool_workers(config.workers, 1 << 30), config.max_memory_bytes).idle
    return sum(sum(psutil.Process(w.proc.pid).cpu_times()[:2]) for w in workers)


def ingest_seconds(raw: Path, work: Path, config: IngestConfig) -> tuple[float, float, dict, list[str], float, float]:
    """(ingest seconds, ``parsed_scores`` seconds, status counts, reject reasons, CPU seconds of the
    ingestion in this process and its workers together, CPU seconds of ``parsed_scores``) of a
    first ingestion on a fresh lake, then its ``parsed_scores`` step."""
    lake_root = Path(tempfile.mkdtemp(dir=work))
    lake = Lake.from_env(lake_root, raw)
    c0, w0 = time.process_time(), workers_cpu(config)
    result = ingest(lake, config)
    write_parquet(files_table_path(lake), result.files)  # the raw_scores asset's files table
    cpu = time.process_time() - c0 + workers_cpu(config) - w0
    t0, c0 = time.perf_counter(), time.process_time()
    pieces, notes = workflow.parse_step(lake)
    t_parse, c_parse = time.perf_counter() - t0, time.process_time() - c0
    assert len(pieces) and notes.rows
    shutil.rmtree(lake_root)
    reasons = sorted(result.files.filter(result.files["status"] == "rejected")["reason"].to_list())
    return result.seconds, t_parse, result.counts(), reasons, cpu, c_parse


def stage_costs(files: list[Path], datas: list[bytes], rounds: int, work: Path) -> dict:
    """One worker's path taken apart (see the module docstring); CPU seconds, best per batch."""
    scores = [symusic.Score.from_midi(d) for d in datas]
    keep = [i for i, s in enumerate(scores) if s.note_num()]
    cols = {i: note_columns(scores[i]) for i in keep}
    arrays = {i: sorted_note_arrays(scores[i], cols[i]) for i in keep}
    digests = [sha256_bytes(d) for d in datas]
    config = IngestConfig().to_dict()
    batches = [list(range(k, min(k + BATCH_FILES, len(datas)))) for k in range(0, len(datas), BATCH_FILES)]
    added: dict[int, CacheBatch] = {}
    tables: dict[int, object] = {}
    work.mkdir(parents=True, exist_ok=True)
    fresh = itertools.count()

    def add(batch: list[int], j: int) -> None:
        added[j] = CacheBatch(str(work), config)
        for i in batch:
            added[j].add(datas[i], "midi", files[i].name, digests[i])

    stages = {
        "symusic_parse": lambda b, j: [symusic.Score.from_midi(datas[i]) for i in b],
        "note_columns": lambda b, j: [note_columns(scores[i]) for i in b if i in cols],
        "midi_text": lambda b, j: [encode(scores[i], columns=cols[i]) for i in b if i in cols],
        "note_arrays": lambda b, j: [sorted_note_arrays(scores[i], cols[i]) for i in b if i in cols],
        "piece_stats": lambda b, j: [piece_stats(scores[i], cols[i]) for i in b if i in cols],
        "notes_table": lambda b, j: tables.__setitem__(j, notes_part_table([digests[i] for i in b if i in arrays],
                                                                           [arrays[i] for i in b if i in arrays])),
        "notes_part_write": lambda b, j: write_notes_part(work / f"part{next(fresh)}.parquet", tables.pop(j),
                                                          [digests[i] for i in b if i in arrays]),  # (a new file, as ingestion writes)
        "batch_add": add,
        "batch_write": lambda b, j: added.pop(j).write(),
    }
    best = {k: [float("inf")] * len(batches) for k in stages}
    for _ in range(rounds):
        for j, batch in enumerate(batches):
            for name, fn in stages.items():
                t0 = time.process_time()
                fn(batch, j)
                best[name][j] = min(best[name][j], time.process_time() - t0)
    total = {k: sum(v) for k, v in best.items()}
    n = len(datas)
    out = {k: {"us_per_file": round(1e6 * v / n, 1), "x_symusic": round(v / total["symusic_parse"], 2)}
           for k, v in total.items()}
    rest = total["batch_add"] - sum(total[k] for k in ("symusic_parse", "note_columns", "midi_text", "note_arrays",
                                                       "piece_stats"))
    out["add_rest"] = {"us_per_file": round(1e6 * rest / n, 1), "x_symusic": round(rest / total["symusic_parse"], 2)}
    path = total["batch_add"] + total["batch_write"]
    out["worker_path"] = {"us_per_file": round(1e6 * path / n, 1), "x_symusic": round(path / total["symusic_parse"], 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    ap.add_argument("--limit", type=int, default=0, help="first N files only (0: all 2,898)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--stages", action="store_true", help="also take one worker's path apart (CPU time)")
    args = ap.parse_args()
    if not (args.corpora / "midi" / "pop909").exists():
        raise SystemExit(f"POP909 not found under {args.corpora}/midi")
    files = midi_files(args.corpora, args.limit)
    datas = [f.read_bytes() for f in files]
    cores = available_cores()
    counts = sorted({1, cores})
    runs: dict[str, list[float]] = {"symusic": [], "parsed_scores": []}
    cpu: dict[str, list[float]] = {"symusic": [], "parsed_scores": []}  # CPU seconds (this process + workers)
    for name in ("in_process", *(f"workers_{w}" for w in counts)):
        for key in (name, f"{name}_with_parsed_scores"):
            runs[key], cpu[key] = [], []
    outcomes: set[str] = set()  # every ingestion must give the same rows
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        raw = work / "raw"
        raw.mkdir()
        for i, (f, d) in enumerate(zip(files, datas)):
            (raw / f"{i:05d}_{f.name}").write_bytes(d)
        warm = work / "warm"
        warm.mkdir()
        for f in files[:4]:
            shutil.copyfile(f, warm / f.name)
        warm_up(freeze=False)  # this process's compiled kernels, loaded once (not per-file work)
        for w in counts:  # start the worker pools (process start-up is not per-file work)
            ingest_seconds(warm, work, IngestConfig(workers=w))
        configs = {"in_process": IngestConfig(isolate=False), **{f"workers_{w}": IngestConfig(workers=w) for w in counts}}
        for _ in range(args.rounds):
            for name, config in configs.items():
                t_sym, c_sym = symusic_seconds(datas)
                runs["symusic"].append(t_sym)
                cpu["symusic"].append(c_sym)
                t, t_parse, status, reasons, c, c_parse = ingest_seconds(raw, work, config)
                outcomes.add(json.dumps([status, reasons], sort_keys=True))
                runs[name].append(t)
                runs[f"{name}_with_parsed_scores"].append(t + t_parse)
                runs["parsed_scores"].append(t_parse)
                cpu[name].append(c)
                cpu[f"{name}_with_parsed_scores"].append(c + c_parse)
                cpu["parsed_scores"].append(c_parse)
        stages = stage_costs(files, datas, args.rounds, work / "stages") if args.stages else None
    assert len(outcomes) == 1, outcomes
    status, reasons = json.loads(outcomes.pop())
    n = len(files)
    sym_rate = n / min(runs["symusic"])
    out: dict = {"files": n, "mb": round(sum(map(len, datas)) / 1e6, 2), "cores": cores, "rounds": args.rounds,
                 "status": status, "rejected": reasons, "symusic_files_per_s": round(sym_rate, 1)}
    for name, secs in runs.items():
        if name == "symusic":
            continue
        rate = n / min(secs)
        out[name] = {"seconds": round(min(secs), 3), "files_per_s": round(rate, 1),
                     "x_symusic": round(sym_rate / rate, 2)}
        if name in cpu:  # CPU per file, all processes together, over symusic's CPU per file: cost per core
            out[name]["cpu_us_per_file"] = round(1e6 * min(cpu[name]) / n, 1)
            out[name]["cpu_x_symusic"] = round(min(cpu[name]) / min(cpu["symusic"]), 2)
    if cores > 1:
        out["speedup"] = round(min(runs["workers_1"]) / min(runs[f"workers_{cores}"]), 2)
        out["speedup_with_parsed_scores"] = round(
            min(runs["workers_1_with_parsed_scores"]) / min(runs[f"workers_{cores}_with_parsed_scores"]), 2)
    if stages:
        out["stages"] = stages
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
