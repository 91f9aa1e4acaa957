"""bench/bench_midi_models.py refuses bad input before any work: no MIDI files, a reused work folder
built from other data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_midi_models.py"


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=120)


def test_no_midi_files_exits_with_reason(tmp_path):
    out = run_bench("--corpus", str(tmp_path), "--work", str(tmp_path / "work"))
    assert out.returncode != 0
    assert "no .mid files" in out.stderr


def test_reused_work_folder_with_other_data_is_refused(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.mid").write_bytes(b"MThd")
    base = tmp_path / "work" / "base"
    base.mkdir(parents=True)
    (base / "bench_data.json").write_text(json.dumps({"key": {"limit": "7"}, "data": {}}))
    out = run_bench("--corpus", str(corpus), "--work", str(tmp_path / "work"), "--prepare-only")
    assert out.returncode != 0
    assert "use another --work" in out.stderr
    assert not (tmp_path / "work" / "rep0").exists()
