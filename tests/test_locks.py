"""musicml.locks.file_lock: one holder at a time, a waiter is told, a dead holder frees the lock."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from musicml.locks import file_lock


def test_a_free_lock_is_taken_without_waiting(tmp_path):
    calls = []
    with file_lock(tmp_path / "sub" / "x.lock", lambda: calls.append(1)) as path:
        assert path.exists()
    assert calls == []


def test_a_held_lock_calls_waiting_once_then_blocks_until_released(tmp_path):
    lock, order = tmp_path / "x.lock", []
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with file_lock(lock):  # another open file description: flock excludes it like a process
            held.set()
            release.wait(30)
            order.append("released")

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(30)
    with file_lock(lock, lambda: (order.append("waiting"), release.set())):
        order.append("acquired")
    t.join()
    assert order == ["waiting", "released", "acquired"]


def test_a_killed_holder_never_leaves_the_lock_held(tmp_path):
    lock = tmp_path / "x.lock"
    code = ("import sys, time; from musicml.locks import file_lock\n"
            "with file_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        proc.kill()
        proc.wait(30)
        started = time.monotonic()
        with file_lock(lock):
            assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
