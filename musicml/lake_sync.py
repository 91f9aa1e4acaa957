"""A lake on object storage: the lake root is an fsspec URL (``s3://bucket/lake``,
``gs://...``, ``memory://...``), and each process works on a local copy of it, synced both ways.

Every asset reads and writes plain local files (the DuckDB catalog, the Arrow parse cache, shard
memory maps, checkpoints, locks), so rather than teaching each of them object storage, the
remote lake is mirrored: :func:`pull` brings the objects that changed there since this copy last
synced (and removes what was deleted there), :func:`push` sends the files that changed here (and
deletes there what was deleted here). Changes are found by the local file's size and mtime and
the object's listing entry (ETag, size, time: whatever the store reports), kept in
``.sync/state.json`` of the copy, so a sync costs one listing of each side plus the changed
bytes. The Dagster layer pulls when a step's lake resource is set up and pushes when it is torn
down (per step under the multiprocess executor, per run in process); the training CLI does alike.

Not synced: lock files and temporary files of atomic writes (local to a machine), this module's
state, and ``catalog.duckdb`` (its views name local paths: each copy refreshes its own). One
writer at a time per remote lake: two machines writing the same object concurrently keep the last
push. Where several write at once, track with PostgreSQL (``MLFLOW_TRACKING_URI``) and put MLflow
artifacts on the store (``MUSICML_ARTIFACTS``) rather than in the lake's SQLite file.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
from dataclasses import dataclass
from pathlib import Path

from musicml.lake import atomic_path, write_json

STATE = (".sync", "state.json")
NOT_SYNCED = ("catalog.duckdb",)  # top-level names kept local


@dataclass
class SyncResult:
    """What one sync moved (relative paths)."""

    copied: list[str]
    deleted: list[str]

    def __bool__(self) -> bool:
        return bool(self.copied or self.deleted)


def synced(rel: str) -> bool:
    """Whether a lake-relative path travels to and from the remote."""
    parts = rel.split("/")
    name = parts[-1]
    if parts[0] in (STATE[0], *NOT_SYNCED) or ".." in parts or rel.startswith("/"):
        return False  # (an object key with ``..`` would land outside the copy: never pulled)
    if name.endswith(".lock") or (name.startswith(".") and ".tmp" in name):  # locks; atomic writes' temps
        return False
    return True


def _fs(remote: str):
    from fsspec.core import url_to_fs

    fs, base = url_to_fs(remote)
    return fs, base.rstrip("/")


def _token(info: dict) -> str:
    """A digest of an object's listing entry: changes whenever the object is rewritten."""
    items = sorted((k, str(v)) for k, v in info.items() if k != "name")
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:24]


def remote_files(remote: str) -> dict[str, str]:
    """``rel -> token`` of every object under ``remote``."""
    fs, base = _fs(remote)
    if not fs.exists(base):
        return {}
    out = {}
    for path, info in fs.find(base, detail=True, withdirs=False).items():
        rel = posixpath.relpath(path.rstrip("/"), base)
        if info.get("type", "file") == "file" and synced(rel):
            out[rel] = _token(info)
    return out


def local_files(root: Path) -> dict[str, list[int]]:
    """``rel -> [size, mtime_ns]`` of every regular file of the local copy (links not followed)."""
    out = {}
    root = Path(root)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for name in files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            st = os.lstat(path)
            if synced(rel) and not os.path.islink(path):
                out[rel] = [st.st_size, st.st_mtime_ns]
    return out


def _load_state(root: Path) -> dict[str, dict]:
    path = Path(root).joinpath(*STATE)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _inside(root: Path, rel: str) -> Path:
    from musicml.lake import safe_join

    return safe_join(root, *rel.split("/"))


def pull(remote: str, root: Path, prefixes: tuple[str, ...] | None = None) -> SyncResult:
    """Bring the local copy ``root`` up to ``remote`` (only paths under ``prefixes`` when given):
    objects new or changed there are downloaded (the remote wins over a local change), files
    whose objects were deleted there are removed when unchanged here. A file changed or deleted
    here, its object unchanged there, stays as it is until :func:`push` sends it."""
    from musicml.locks import file_lock

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    fs, base = _fs(remote)

    def wanted(rel: str) -> bool:
        return prefixes is None or any(rel == p.rstrip("/") or rel.startswith(p.rstrip("/") + "/") for p in prefixes)

    with file_lock(root.joinpath(STATE[0], "sync.lock")):
        state, here = _load_state(root), local_files(root)
        there = {rel: tok for rel, tok in remote_files(remote).items() if wanted(rel)}
        copied, deleted, forgotten = [], [], False
        for rel, tok in sorted(there.items()):
            was = state.get(rel)
            if was and was["remote"] == tok:
                continue  # unchanged there (a change or deletion here goes out with the next push)
            target = _inside(root, rel)
            with atomic_path(target) as tmp, fs.open(f"{base}/{rel}", "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)  # streamed (``get_file`` asks the store for info first)
            st = target.stat()
            state[rel] = {"local": [st.st_size, st.st_mtime_ns], "remote": tok}
            copied.append(rel)
        for rel in sorted(r for r in list(state) if wanted(r) and r not in there):
            if here.get(rel) == state[rel]["local"]:
                _inside(root, rel).unlink(missing_ok=True)
                deleted.append(rel)
            if here.get(rel) is None or rel in deleted:
                del state[rel]
                forgotten = True
        if copied or deleted or forgotten:
            write_json(root.joinpath(*STATE), state)
    return SyncResult(copied, deleted)


def push(remote: str, root: Path) -> SyncResult:
    """Send the local copy's changes to ``remote``: files new or changed since the last sync are
    uploaded (one whole object each: readers never see a partial one), objects of files deleted
    here are deleted there (unless rewritten there since this copy saw them)."""
    from musicml.locks import file_lock

    root = Path(root)
    fs, base = _fs(remote)
    with file_lock(root.joinpath(STATE[0], "sync.lock")):
        state, here = _load_state(root), local_files(root)
        copied, deleted = [], []
        for rel, stat in sorted(here.items()):
            if state.get(rel, {}).get("local") == stat:
                continue
            target = f"{base}/{rel}"
            fs.makedirs(posixpath.dirname(target), exist_ok=True)
            try:
                fs.put_file(str(_inside(root, rel)), target)
            except FileNotFoundError:  # replaced or removed since the listing: the next push
                continue
            state[rel] = {"local": stat, "remote": ""}
            copied.append(rel)
        gone = sorted(r for r in state if r not in here)
        if copied or gone:  # the objects' entries as a pull's listing will show them
            fs.invalidate_cache()
            there = remote_files(remote)
            for rel in copied:
                state[rel]["remote"] = there.get(rel, "")
        for rel in gone:  # only the object this copy last saw: one rewritten there since is kept
            if rel in there and there[rel] == state[rel]["remote"]:
                fs.rm_file(f"{base}/{rel}")
                deleted.append(rel)
            del state[rel]
        if copied or gone:
            write_json(root.joinpath(*STATE), state)
    return SyncResult(copied, deleted)
