"""Scanning the drop zone: every entry found gets one :class:`Entry`, and nothing is opened.

Real drop zones hold more than scores: dotfiles, FIFOs, sockets, device nodes, symbolic links
(dangling, looping, or pointing outside), names that are not valid UTF-8. The scan classifies
each entry with ``lstat`` alone (a FIFO is never opened, so it cannot block the run), and
:func:`read_regular` opens only regular files, re-checking the type on the open descriptor so
that an entry swapped for a FIFO or a device between scan and read is still refused.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple


class Entry(NamedTuple):
    """One drop-zone entry: ``rel`` is its display path (always valid UTF-8), ``problem`` why it
    cannot be read as a score (None for a readable regular file, or a link to one in the zone);
    ``mtime_ns`` the modification time of what it is (the target, for a link; None with a problem).
    ``fspath`` is where it is (a string, and a named tuple: cheap for each of a large scan)."""

    fspath: str
    rel: str
    size: int
    problem: str | None = None
    mtime_ns: int | None = None

    @property
    def path(self) -> Path:
        return Path(self.fspath)


def display_name(rel: str) -> str:
    """``rel`` as valid UTF-8 text: undecodable bytes of a file name shown as ``\\xNN``."""
    try:
        rel.encode("utf-8")
        return rel
    except UnicodeEncodeError:
        return os.fsencode(rel).decode("utf-8", errors="backslashreplace")


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


def _kind(mode: int) -> str | None:
    """None for a regular file, else what the entry is."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def classify(path: str | os.PathLike, rel: str, raw_dir: Path) -> Entry:
    """What ``path`` is, from ``lstat`` and (for links) the resolved target, opening nothing."""
    path = os.fspath(path)
    shown = display_name(rel)
    if shown != rel:
        return Entry(path, shown, 0, "file name is not valid UTF-8")
    try:
        st = os.lstat(path)
    except OSError as err:
        return Entry(path, rel, 0, f"cannot stat: {err.strerror or err}")
    if stat.S_ISREG(st.st_mode):
        return Entry(path, rel, st.st_size, None, st.st_mtime_ns)
    if stat.S_ISLNK(st.st_mode):
        return _classify_link(path, rel, raw_dir)
    kind = _kind(st.st_mode)
    if kind:
        return Entry(path, rel, 0, f"{kind}, not a regular file (not opened)")
    return Entry(path, rel, st.st_size, None, st.st_mtime_ns)


def _classify_link(path: str, rel: str, raw_dir: Path) -> Entry:
    try:
        target = Path(os.path.realpath(path, strict=True))
        st = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return Entry(path, rel, 0, "symbolic link loop")
        if err.errno == errno.ENOENT:
            return Entry(path, rel, 0, f"dangling symbolic link (target {os.readlink(path)!r} does not exist)")
        return Entry(path, rel, 0, f"cannot follow symbolic link: {err.strerror or err}")
    except RuntimeError:  # pathlib/realpath loop detection on some Pythons
        return Entry(path, rel, 0, "symbolic link loop")
    root = Path(os.path.realpath(raw_dir))
    if root not in target.parents:
        return Entry(path, rel, 0, "symbolic link pointing outside the drop zone (not followed)")
    if stat.S_ISDIR(st.st_mode):
        return Entry(path, rel, 0, "symbolic link to a folder (not followed)")
    kind = _kind(st.st_mode)
    if kind:
        return Entry(path, rel, 0, f"symbolic link to {kind} (not opened)")
    return Entry(path, rel, st.st_size, None, st.st_mtime_ns)


def scan(raw_dir: Path, assume: Mapping[str, tuple[int, int | None]] | None = None) -> list[Entry]:
    """Every entry under ``raw_dir`` except folders (which are walked, never followed when they
    are links), dotfiles included, sorted by display path. One ``lstat`` per entry, no more
    (``os.scandir`` with string paths: a listing of 3,000 files costs milliseconds).

    ``assume``: ``{rel: (size, mtime_ns)}`` of entries known to be regular files (the rows an
    ingestion request carries over): one whose directory entry still says "regular file"
    takes these values without an ``lstat`` (the listing proves it exists)."""
    raw_dir = Path(raw_dir)
    assume = assume or {}
    entries: list[Entry] = []
    folders = [("", os.fspath(raw_dir))]  # (display prefix, folder path)
    while folders:
        prefix, folder = folders.pop()
        try:
            with os.scandir(folder) as it:
                items = list(it)
        except OSError as err:
            if prefix:  # the drop zone itself missing or unlistable: no entries
                entries.append(Entry(folder, display_name(prefix[:-1]), 0,
                                     f"cannot list folder: {err.strerror or err}"))
            continue
        for item in items:
            rel = prefix + item.name
            try:
                is_folder = item.is_dir(follow_symlinks=False)  # a link to a folder gets a row
            except OSError:
                is_folder = False
            if is_folder:
                folders.append((rel + "/", item.path))
            elif rel in assume and _regular_by_listing(item):
                entries.append(Entry(item.path, rel, assume[rel][0], None, assume[rel][1]))
            else:
                entries.append(classify(item.path, rel, raw_dir))
    entries.sort(key=lambda e: e.rel)
    return entries


def _regular_by_listing(item: os.DirEntry) -> bool:
    """Whether the directory entry says it is a regular file, not a link (no ``stat`` where the
    file system gives entry types, as Linux's do)."""
    try:
        return item.is_file(follow_symlinks=False)
    except OSError:
        return False


def read_regular(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of a regular file, at most ``max_bytes + 1`` of them (so an oversized file is
    noticed without reading it whole). Raises OSError for anything that is not a regular file
    at open time: FIFOs are opened non-blocking and refused on ``fstat``."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{_kind(st.st_mode)}, not a regular file")
        chunks, left = [], max_bytes + 1
        want = min(left, st.st_size + 1)  # the whole file in one read, as its size says (it may grow)
        while left > 0:
            chunk = os.read(fd, want)
            chunks.append(chunk)
            left -= len(chunk)
            if len(chunk) < want:  # a short read of a regular file: its end
                break
            want = min(left, 1 << 20)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def fingerprint(raw_dir: Path) -> str:
    """A cheap digest of the drop zone (paths, sizes, mtimes from ``lstat``): it changes when a
    file is added, removed or rewritten, and never raises on links, FIFOs or odd names."""
    import hashlib

    h = hashlib.sha256()
    raw_dir = Path(raw_dir)
    if not raw_dir.exists():
        return ""
    for e in scan(raw_dir):
        try:
            st = os.lstat(e.fspath)
            h.update(f"{e.rel}\0{st.st_size}\0{st.st_mtime_ns}\0{e.problem or ''}\n".encode())
        except OSError:
            h.update(f"{e.rel}\0gone\n".encode())
    return h.hexdigest()
