"""A child process that dies with its launcher, and stops cleanly when asked to.

The training process started by the ``trained_model`` asset must not outlive the Dagster step
that launched it: a killed CLI would otherwise leave a trainer writing into the run folder a
rerun will use. :func:`die_with_parent` asks Linux to send SIGTERM when the parent dies
(``PR_SET_PDEATHSIG``) and, as a portable fallback, watches the parent pid; SIGTERM becomes
:class:`KeyboardInterrupt` so the training loop's cut-off path runs (metrics flushed, the run
marked KILLED) instead of the process vanishing mid-write.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


def die_with_parent(poll_s: float = 1.0) -> None:
    """Stop this process (SIGTERM, as KeyboardInterrupt) as soon as its parent process is gone."""
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _sigterm)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="musicml-lifeline", daemon=True).start()
