"""A child started with ``die_with_parent`` stops when its launcher is killed (SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import sys, time
from musicml.lifeline import die_with_parent
die_with_parent(poll_s=0.2)
open(sys.argv[1], "w").write("started")
try:
    while True:
        time.sleep(0.05)
except KeyboardInterrupt:
    open(sys.argv[1], "w").write("stopped cleanly")
"""

LAUNCHER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
print(child.pid, flush=True)
time.sleep(3600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead too
        return f.read().split(")")[-1].split()[0] != "Z"


def test_child_dies_with_its_launcher(tmp_path: Path) -> None:
    marker = tmp_path / "state"
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, CHILD, str(marker)], stdout=subprocess.PIPE, text=True)
    child_pid = int(launcher.stdout.readline())
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.read_text() == "started"
    launcher.send_signal(signal.SIGKILL)  # as `kill -9` of the CLI
    launcher.wait()
    deadline = time.monotonic() + 30
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child_pid)
    assert marker.read_text() == "stopped cleanly"  # SIGTERM arrived as KeyboardInterrupt
