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
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One drop-zone entry: ``rel`` is its display path (always valid UTF-8), ``problem`` why it
    cannot be read as a score (None for a readable regular file, or a link to one in the zone)."""

    path: Path
    rel: str
    size: int
    problem: str | None = None


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


def classify(path: Path, rel: str, raw_dir: Path) -> Entry:
    """What ``path`` is, from ``lstat`` and (for links) the resolved target, opening nothing."""
    shown = display_name(rel)
    if shown != rel:
        return Entry(path, shown, 0, "file name is not valid UTF-8")
    try:
        st = os.lstat(path)
    except OSError as err:
        return Entry(path, rel, 0, f"cannot stat: {err.strerror or err}")
    if stat.S_ISLNK(st.st_mode):
        return _classify_link(path, rel, raw_dir)
    kind = _kind(st.st_mode)
    if kind:
        return Entry(path, rel, 0, f"{kind}, not a regular file (not opened)")
    return Entry(path, rel, st.st_size)


def _classify_link(path: Path, rel: str, raw_dir: Path) -> Entry:
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
    return Entry(path, rel, st.st_size)


def scan(raw_dir: Path) -> list[Entry]:
    """Every entry under ``raw_dir`` except folders (which are walked, never followed when they
    are links), dotfiles included, sorted by display path."""
    raw_dir = Path(raw_dir)
    entries: list[Entry] = []
    walk_errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(raw_dir, followlinks=False, onerror=walk_errors.append):
        base = Path(dirpath)
        kept = []
        for d in dirnames:
            p = base / d
            if p.is_symlink():  # os.walk lists links to folders as folders: give them a row
                entries.append(classify(p, p.relative_to(raw_dir).as_posix(), raw_dir))
            else:
                kept.append(d)
        dirnames[:] = sorted(kept)
        for f in filenames:
            p = base / f
            entries.append(classify(p, p.relative_to(raw_dir).as_posix(), raw_dir))
    for err in walk_errors:
        if err.filename and Path(err.filename) != raw_dir:
            p = Path(err.filename)
            entries.append(Entry(p, display_name(p.relative_to(raw_dir).as_posix()), 0,
                                 f"cannot list folder: {err.strerror or err}"))
    return sorted(entries, key=lambda e: e.rel)


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file, at most ``max_bytes + 1`` of them (so an oversized file is
    noticed without reading it whole). Raises OSError for anything that is not a regular file
    at open time: FIFOs are opened non-blocking and refused on ``fstat``."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{_kind(st.st_mode)}, not a regular file")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
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
            st = os.lstat(e.path)
            h.update(f"{e.rel}\0{st.st_size}\0{st.st_mtime_ns}\0{e.problem or ''}\n".encode())
        except OSError:
            h.update(f"{e.rel}\0gone\n".encode())
    return h.hexdigest()
