"""Parsing in worker processes, in batches of files, each file under a time and a memory limit.

A native reader (symusic's MIDI and ABC parsers are C++) can crash, hang or exhaust memory on a
hostile file. Files are therefore parsed in worker processes with ``RLIMIT_DATA`` set (the memory
a worker writes: heap and anonymous mappings, not the address space its libraries map or reserve,
which numba's LLVM and the allocators of polars and Arrow make large and which says nothing about
the file). A worker gets a batch of files in one message and answers it in one (small files
cost no round trip, and wake the parent not once each): it parses the files, writes the batch's
parse cache (atomically, one pieces and one notes file per batch), then sends every file's row
fields as JSON. While it works it keeps its *progress* in memory shared with the parent (the
file it is on and when it began it), so each file still has its own time limit: the parent lets
a file take at most ``timeout_s``; a worker that overruns or dies is killed and replaced, the
file its progress names becomes a ``rejected`` row (a crash is first confirmed by parsing that
file alone), and the batch's other files are parsed again, so a crash or hang costs only that
file's row. Nothing is unpickled.

Workers are started once per process and reused across :func:`parse_isolated` calls (a pool per
worker count), and shut down at exit. This module imports only the standard library at the top:
a worker sets its thread limits before polars or symusic are imported.
"""

from __future__ import annotations

import atexit
import json
import multiprocessing as mp
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from multiprocessing.connection import Connection, wait

READY = b"ready"  # a worker's first message: imports done, the time limits start counting now
STARTUP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Task:
    """One file to parse: where its cache goes, what it is, and its bytes."""

    lake_root: str
    rel: str
    fmt: str
    digest: str
    data: bytes
    config: dict


# A worker's environment, set before its interpreter starts (a spawned child imports the package of
# its target, and so polars, pyarrow and symusic, before the target runs): one thread each, and
# Arrow's system allocator (its default, mimalloc, commits ~1 GB up front), one glibc malloc arena
# (not one per thread, each holding on to 64-128 MB); with these a worker starts with ~0.25 GB
# written instead of ~1.3 GB. And glibc keeps up to 64 MB of freed heap (allocations up to 32 MB
# come from the heap, not from mappings of their own): a batch's arrays of a few MB each are made
# in memory the last batch freed, not in fresh pages the kernel must zero (16 page faults per
# POP909 file before, 0.4 after; the batch's note table 3x faster).
WORKER_ENV = {"POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1",
              "ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "1",
              "MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(64 << 20)}


@contextmanager
def _worker_environment() -> Iterator[None]:
    """``WORKER_ENV`` in this process's environment while a worker is started, then as it was."""
    before = {k: os.environ.get(k) for k in WORKER_ENV}
    os.environ.update(WORKER_ENV)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _no_phantom_main() -> Iterator[None]:
    """While a worker is started: hide a main module's ``__file__`` that names no file (a script
    read from stdin, ``python - < script``, has ``<stdin>``). A spawned child runs the parent's
    main file again before its target; that one's does not exist, so the child would die before
    starting (the workers need nothing of the main module: their target is this module's)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or getattr(main, "__spec__", None) is not None or os.path.exists(path):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


class Progress:
    """Where a worker is in its batch, in memory it shares with the parent: the index of the file
    it is parsing (``RECEIVING`` before the first, the batch's length while it writes the cache)
    and when it began that (``time.monotonic_ns()``, one clock for every process). The worker
    writes the time before the index, and the parent reads the index first, so the time it reads
    is never older than the start of the step whose index it read."""

    RECEIVING = -1

    def __init__(self, shared) -> None:  # a ctypes array of two int64 (``RawArray("q", 2)``)
        self.shared = shared

    def set(self, index: int) -> None:
        self.shared[1] = time.monotonic_ns()
        self.shared[0] = index

    def get(self) -> tuple[int, float]:
        """(index, start in ``time.monotonic()`` seconds)."""
        index = self.shared[0]
        return index, self.shared[1] / 1e9


def _worker_main(conn: Connection, memory_bytes: int, shared) -> None:  # pragma: no cover - runs in a child
    os.environ.update(WORKER_ENV)  # (for what reads them later; the libraries read them at import)
    import resource

    from musicml.ingest.files import CacheBatch, warm_up

    warm_up()  # the MIDI path's compiled kernels, loaded (LLVM can abort under the memory limit)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash is reported at once, not dumped
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))

    progress = Progress(shared)
    conn.send_bytes(READY)
    while True:
        try:
            header = json.loads(conn.recv_bytes())
            blob = receive_files(conn, header)
        except (EOFError, OSError):
            return
        batch, at, replies = CacheBatch(header["lake_root"], header["config"]), 0, []
        for k, f in enumerate(header["files"]):
            progress.set(k)
            data, at = bytes(blob[at:at + f["size"]]), at + f["size"]
            replies.append(batch.add(data, f["fmt"], f["rel"], f["digest"]))
            if batch.out_of_memory:  # a heap at its limit fails the next files too (or hangs a native
                # reader): the files answered so far are told, the others parsed again in a fresh worker
                conn.send_bytes(json.dumps({"replies": replies, "quit": True}).encode("utf-8"))
                return
        progress.set(len(replies))
        written = batch.write()
        conn.send_bytes(json.dumps({"replies": replies, "written": written}).encode("utf-8"))


# The files' bytes go to a worker unframed, straight after the header that gives their sizes: the
# worker reads them into one buffer with ``os.readv`` (``Connection.recv_bytes`` reads a long message
# in chunks into a BytesIO and copies it out again: 11.6 us a file of a 128-file, 1.8 MB batch
# against 2.1, slices into the files' bytes included; measured 2026-12-04), and this process writes
# them with ``os.writev`` (no joined copy).
def _write_all(fd: int, buffers: list[bytes]) -> None:
    """Write every buffer to ``fd``, in order (``os.writev``, resumed after a partial write)."""
    views = deque(memoryview(b) for b in buffers if len(b))
    while views:
        n = os.writev(fd, list(islice(views, 512)))  # (IOV_MAX is 1024 on Linux)
        while n:
            if n >= len(views[0]):
                n -= len(views.popleft())
            else:
                views[0], n = views[0][n:], 0


def receive_files(conn: Connection, header: dict) -> memoryview:
    """The files' bytes of the batch whose header a worker has just received (as
    :meth:`_Worker.send` sends them: one after another, ``header["files"][k]["size"]`` each)."""
    return memoryview(_read_exactly(conn.fileno(), sum(f["size"] for f in header["files"])))


def _read_exactly(fd: int, n: int) -> bytearray:
    """``n`` bytes from ``fd`` into one buffer; ``EOFError`` where the other end closes first."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if k == 0:
            raise EOFError(f"the connection closed after {got} of {n} bytes")
        got += k
    return buf


class _Worker:
    def __init__(self, memory_bytes: int, target: Callable[[Connection, int, object], None]) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe(duplex=True)
        shared = ctx.RawArray("q", 2)
        self.progress = Progress(shared)
        self.proc = ctx.Process(target=target, args=(child, memory_bytes, shared), daemon=True,
                                name="musicml-ingest-worker")
        with _worker_environment(), _no_phantom_main():
            self.proc.start()
        child.close()
        self.ready = False

    def wait_ready(self) -> bool:
        """Block until the worker has started (its imports are not part of any file's time)."""
        if not self.ready:
            try:
                self.ready = self.conn.poll(STARTUP_TIMEOUT_S) and self.conn.recv_bytes() == READY
            except (EOFError, OSError):
                self.ready = False
        return self.ready

    def send(self, batch: list[Task]) -> None:
        """One batch (its tasks share a lake and a config): a JSON header, then the files' bytes.
        Its time starts now (``Progress.RECEIVING``)."""
        self.progress.set(Progress.RECEIVING)
        header = {"lake_root": batch[0].lake_root, "config": batch[0].config,
                  "files": [{"rel": t.rel, "fmt": t.fmt, "digest": t.digest, "size": len(t.data)} for t in batch]}
        self.conn.send_bytes(json.dumps(header).encode("utf-8"))
        _write_all(self.conn.fileno(), [t.data for t in batch])

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()

    def exit_description(self) -> str:
        self.proc.join(5)
        code = self.proc.exitcode
        if code is None:
            return "reader process stopped answering"
        if code < 0:
            import signal

            try:
                return f"reader process killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"reader process killed by signal {-code}"
        return f"reader process exited with code {code}"


class ParserPool:
    """``workers`` reader processes; :meth:`run` yields ``(task, reply)`` as answers come back."""

    def __init__(self, workers: int, memory_bytes: int,
                 target: Callable[[Connection, int, object], None] = _worker_main) -> None:
        self.size = max(1, workers)
        self.memory_bytes = memory_bytes
        self.target = target
        self.idle: list[_Worker] = []

    def _new(self, attempts: int = 3) -> _Worker:
        """A started worker; a start that fails (a busy machine refusing a process or a thread)
        is tried again after a pause before it is an error."""
        for attempt in range(attempts):
            w = _Worker(self.memory_bytes, self.target)
            if w.wait_ready():
                return w
            w.kill()
            if attempt + 1 < attempts:
                time.sleep(1.0 + attempt)
        raise RuntimeError(f"an ingestion worker failed to start {attempts} times: {w.exit_description()}")

    def _start(self, n: int) -> None:
        """Have ``n`` idle workers, starting the missing ones together."""
        fresh = [_Worker(self.memory_bytes, self.target) for _ in range(n - len(self.idle))]
        for w in fresh:
            if not w.wait_ready():
                w.kill()
                w = self._new()
            self.idle.append(w)

    def _take(self) -> _Worker:
        return self.idle.pop() if self.idle else self._new()

    def run(self, tasks: Iterable[Task], timeout_s: float, *, batch_files: int = 1,
            batch_bytes: int = 8 * 1024 * 1024, at_most: int | None = None) -> Iterator[tuple[Task, dict]]:
        """Parse ``tasks`` in batches of at most ``batch_files`` files and ``batch_bytes`` bytes
        (smaller when there are few files, so that every worker gets some: ``at_most`` bounds
        their number where ``tasks`` is an iterator, taken only as workers need batches)."""
        if at_most is None:
            tasks = list(tasks)
            at_most = len(tasks)
        per = max(1, min(batch_files, -(-at_most // (4 * self.size))))
        queue = _Queue(_batches(tasks, per, batch_bytes))
        busy: dict[Connection, _Job] = {}
        self._start(max(1, min(self.size, -(-at_most // per))))
        try:
            while queue or busy:
                yield from self._dispatch(queue, busy, timeout_s)
                if not busy:
                    continue
                queue.prefetch(len(busy))  # the next batches read while the workers parse these
                ready = wait(list(busy), timeout=max(0.0, min(map(_Job.deadline, busy.values())) - time.monotonic()))
                done: list[tuple[Task, dict]] = []  # yielded once idle workers have their next batch
                for conn in ready:
                    job = busy.pop(conn)
                    try:
                        msg = json.loads(conn.recv_bytes())
                    except (EOFError, OSError):
                        job.worker.kill()
                        done += self._lost(job, queue, f"{job.worker.exit_description()} while parsing "
                                                       f"(a crash in a native reader, or memory beyond the "
                                                       f"worker's limit; the file is skipped)", confirm=True)
                        continue
                    replies = msg["replies"]
                    if "written" in msg:  # the batch's cache is written: its answers hold
                        self.idle.append(job.worker)
                        failed = {int(k): reason for k, reason in msg["written"].items()}
                        done += [(job.batch[k], _failure(failed[k]) if k in failed else reply)
                                 for k, reply in enumerate(replies)]
                        continue
                    job.worker.kill()  # it quit (out of memory) after these answers, its cache unwritten
                    done += [(job.batch[k], r) for k, r in enumerate(replies) if r["status"] != "ingested"]
                    again = [t for k, t in enumerate(job.batch) if k >= len(replies) or replies[k]["status"] == "ingested"]
                    if again:
                        queue.appendleft(again)
                now = time.monotonic()
                for conn in [c for c, job in busy.items() if job.deadline() <= now]:
                    job = busy.pop(conn)
                    job.worker.kill()
                    done += self._lost(job, queue, f"reader did not finish within {timeout_s:g} s "
                                                   f"(parse_timeout_s); stopped", confirm=False)
                done += self._dispatch(queue, busy, timeout_s)  # no worker idle while ``done`` is consumed
                yield from done
        finally:
            for job in busy.values():  # the consumer stopped early: these workers are mid-task
                job.worker.kill()

    def _dispatch(self, queue: _Queue, busy: dict[Connection, _Job], timeout_s: float) -> list[tuple[Task, dict]]:
        """Give queued batches to workers until every worker of the pool is busy. A batch that a
        fresh worker dies receiving (its bytes need more memory than the worker's limit) is
        queued again file by file, and such a lone file is rejected: what that costs."""
        lost: list[tuple[Task, dict]] = []
        while queue and len(busy) < self.size:
            w, batch = self._take(), queue.popleft()
            try:
                w.send(batch)
            except (BrokenPipeError, OSError):  # an idle worker that died since, or this batch
                w.kill()
                w = self._new()
                try:
                    w.send(batch)
                except (BrokenPipeError, OSError):
                    w.kill()
                    if len(batch) > 1:
                        queue.extendleft([t] for t in reversed(batch))
                    else:
                        lost.append((batch[0], _receive_failure(batch[0], w)))
                    continue
            busy[w.conn] = _Job(w, batch, timeout_s)
        return lost

    @staticmethod
    def _lost(job: _Job, queue: deque, problem: str, confirm: bool) -> Iterator[tuple[Task, dict]]:
        """A worker died or hung on ``job``: the file its progress names is rejected (a crash in
        a batch is confirmed by parsing that file alone first); the batch's other files are
        queued again (none had its cache written). Where it died receiving the batch or writing
        its cache, each file is tried alone."""
        k, _ = job.worker.progress.get()
        if 0 <= k < len(job.batch):
            culprit = job.batch[k]
            if again := [t for i, t in enumerate(job.batch) if i != k]:
                queue.appendleft(again)
            if confirm and len(job.batch) > 1:
                queue.appendleft([culprit])
            else:
                yield culprit, _failure(f"{culprit.rel}: {problem}")
        elif len(job.batch) > 1:
            queue.extendleft([t] for t in reversed(job.batch))
        elif k == Progress.RECEIVING and confirm:  # it died taking in the file
            yield job.batch[0], _receive_failure(job.batch[0], job.worker)
        else:  # the cache write of a lone file
            yield job.batch[0], _failure(f"{job.batch[0].rel}: {problem}")

    def close(self) -> None:
        for w in self.idle:
            w.kill()
        self.idle.clear()


@dataclass
class _Job:
    """A batch on a worker, and how long each of its files may take."""

    worker: _Worker
    batch: list[Task]
    timeout_s: float

    def deadline(self) -> float:
        """When the step the worker is on (receiving, a file, the cache write) overruns."""
        return self.worker.progress.get()[1] + self.timeout_s


class _Queue(deque):
    """Batches to parse: those put back (files parsed again after a crash: first), then the ones
    still to be made from the tasks' iterator. True while any remains."""

    def __init__(self, fresh: Iterator[list[Task]]) -> None:
        super().__init__()
        self.fresh: Iterator[list[Task]] | None = fresh

    def _fill(self) -> bool:
        if not super().__len__() and self.fresh is not None:
            batch = next(self.fresh, None)
            if batch is None:
                self.fresh = None
            else:
                self.append(batch)
        return super().__len__() > 0

    def __bool__(self) -> bool:
        return self._fill()

    def popleft(self) -> list[Task]:
        self._fill()
        return super().popleft()

    def prefetch(self, n: int) -> None:
        """Have ``n`` batches made (their files read), at most."""
        while super().__len__() < n and self.fresh is not None:
            batch = next(self.fresh, None)
            if batch is None:
                self.fresh = None
            else:
                self.append(batch)


def _batches(tasks: Iterable[Task], per: int, max_bytes: int) -> Iterator[list[Task]]:
    """Consecutive tasks grouped by lake and config, ``per`` files and ``max_bytes`` at most."""
    batch: list[Task] = []
    size = 0
    for t in tasks:
        if batch and (size + len(t.data) > max_bytes or (t.lake_root, t.config) != (batch[0].lake_root, batch[0].config)):
            yield batch
            batch, size = [], 0
        batch.append(t)
        size += len(t.data)
        if len(batch) >= per:  # full: given now, without taking the next task first
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _receive_failure(task: Task, worker: _Worker) -> dict:
    return _failure(f"{task.rel}: {worker.exit_description()} while receiving the file (more memory than the "
                    f"worker's limit allows; the file is skipped)")


def _failure(reason: str) -> dict:
    """A file whose reader never finished (crashed, overran, or could not be started): rejected
    now, and marked ``unfinished`` so the next run tries it again instead of reusing the row (a
    crash may come from the machine, e.g. no thread could be created, not from the file)."""
    return {"status": "rejected", "reason": reason, "encoding": None, "n_pieces": 0, "problems": [],
            "unfinished": True}


_POOLS: dict[tuple[int, int], ParserPool] = {}


def pool(workers: int, memory_bytes: int) -> ParserPool:
    """The process-wide pool for this worker count and memory limit (started lazily)."""
    key = (workers, memory_bytes)
    if key not in _POOLS:
        _POOLS[key] = ParserPool(workers, memory_bytes)
    return _POOLS[key]


@atexit.register
def _close_pools() -> None:
    for p in _POOLS.values():
        p.close()
    _POOLS.clear()
