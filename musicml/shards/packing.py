"""Token shards -> training batches: BOS-aligned best-fit packing, deterministic and resumable.

Shards are ``<shard_dir>/<split>/shard_00000.parquet`` with a ``tokens`` column (list<int32>),
one document per row, each starting with BOS.

Packing (nanochat's BOS-aligned best-fit, over fixed windows so that resuming is exact, and
without dropping tokens): the document stream (shards in the given order, rows in order,
repeated every epoch) is cut into windows of ``window_docs`` documents. Each window is packed
into rows of ``seq_len + 1`` tokens: a row starts at a document start and is filled by
repeatedly taking the largest remaining document of the window that fits the space left; when
none fits, the shortest one is split (nanochat crops it; here its tail, overlapping by one
token, goes back into the window as a continuation piece). A document longer than a row is
first cut into row-length pieces overlapping by one token. So rows begin at a document start
or, rarely, at a continuation piece; rows are full except the last of a window (padding,
targets ``-1``, ignored by the loss; so is the target of a continuation piece's first token
when the piece starts mid-row, as that token was already the last target of its previous
piece); and every transition inside every document is a target
exactly once per epoch, which also makes evaluation score each target exactly once.

The packed rows form one global stream. With ``world_size`` ranks, global batch ``j`` is rows
``[j * world_size * B, (j + 1) * world_size * B)`` and rank ``r`` takes every ``world_size``-th
row from ``r``: the ranks together see exactly the rows one process sees with the same global
batch. ``DataPosition`` (epoch, first document of the window, rows of it consumed) is the same
on every rank after each batch, is JSON-serializable, and resumes the stream exactly.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

DEFAULT_WINDOW_DOCS = 1000


@dataclass(frozen=True)
class DataPosition:
    """Where the global row stream stands: window starting at document ``doc`` of epoch
    ``epoch``, of which ``row`` packed rows were consumed."""

    epoch: int = 0
    doc: int = 0
    row: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> DataPosition:
        return cls(**d) if d else cls()


def read_documents(path: str | Path) -> list[np.ndarray]:
    """All documents of one shard as int64 arrays."""
    col = pq.read_table(path, columns=["tokens"]).column("tokens").combine_chunks()
    offsets = col.offsets.to_numpy()
    values = col.values.to_numpy(zero_copy_only=False).astype(np.int64)
    return [values[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def _documents_from(paths: Sequence[Path], start: int) -> Iterator[np.ndarray]:
    """Documents of the stream from global index ``start`` (reads one shard at a time)."""
    seen = 0
    for path in paths:
        n = pq.ParquetFile(path).metadata.num_rows
        if seen + n <= start:
            seen += n
            continue
        docs = read_documents(path)
        yield from docs[max(0, start - seen):]
        seen += n


def split_long(doc: np.ndarray, row_len: int) -> list[np.ndarray]:
    """``doc`` itself if it fits a row, else row-length pieces overlapping by one token (the
    last token of a piece is the first, input-only, token of the next)."""
    if len(doc) <= row_len:
        return [doc]
    return [doc[s:s + row_len] for s in range(0, len(doc) - 1, row_len - 1)]


def pack_window(docs: Sequence[np.ndarray], row_len: int
                ) -> list[tuple[np.ndarray, int, list[int]]]:
    """Best-fit pack ``docs`` into rows of ``row_len`` tokens: (row, filled length, positions
    where a continuation piece starts mid-row) triples. The token at such a position was
    already a target at the end of its previous piece, so it is an input only (its target
    index ``pos - 1`` is masked). Deterministic: ties go to the earlier piece."""
    pieces: list[np.ndarray] = []
    continuation: list[bool] = []
    for d in docs:
        for j, p in enumerate(split_long(d, row_len)):
            pieces.append(p)
            continuation.append(j > 0)
    # sorted keys (length, -index): the largest key <= (space, 1) is the longest piece that
    # fits, the earliest among equal lengths
    keys = sorted((len(p), -i) for i, p in enumerate(pieces) if len(p) > 0)
    rows = []
    while keys:
        row = np.zeros(row_len, dtype=np.int64)
        filled, starts = 0, []
        while keys:
            space = row_len - filled
            k = bisect.bisect_right(keys, (space, 1)) - 1
            if k >= 0:  # the longest piece that fits
                length, neg_i = keys.pop(k)
                take = length
            elif space >= 2:  # none fits: the shortest fills the row, its tail goes back
                _, neg_i = keys.pop(0)
                take = space
            else:
                break  # one slot left: padding
            piece = pieces[-neg_i]
            if continuation[-neg_i] and filled > 0:
                starts.append(filled)
            row[filled:filled + take] = piece[:take]
            filled += take
            if take < len(piece):  # overlap one token: no target is lost or repeated
                pieces.append(piece[take - 1:])
                continuation.append(True)
                bisect.insort(keys, (len(pieces[-1]), -(len(pieces) - 1)))
        rows.append((row, filled, starts))
    return rows


def _global_rows(paths: Sequence[Path], row_len: int, start: DataPosition, window_docs: int,
                 epochs: int | None) -> Iterator[tuple[tuple, DataPosition]]:
    """Packed rows of the whole stream from ``start``, each with the position after it."""
    paths = [Path(p) for p in paths]
    epoch, doc, skip = start.epoch, start.doc, start.row
    while epochs is None or epoch < epochs:
        stream = _documents_from(paths, doc)
        produced = False
        while True:
            window = [d for _, d in zip(range(window_docs), stream)]
            if not window:
                break
            produced = True
            rows = pack_window(window, row_len)
            for k in range(skip, len(rows)):
                yield rows[k], DataPosition(epoch, doc, k + 1)
            doc, skip = doc + len(window), 0
        if not produced and doc == 0:
            raise ValueError(f"no documents in shards {[str(p) for p in paths]}")
        epoch, doc, skip = epoch + 1, 0, 0


def _to_batch(rows: list[tuple], device) -> tuple[torch.Tensor, torch.Tensor]:
    buf = np.stack([r[0] for r in rows])
    x = torch.from_numpy(buf[:, :-1].copy())
    y = torch.from_numpy(buf[:, 1:].copy())
    for i, (_, filled, starts) in enumerate(rows):
        if filled < buf.shape[1]:
            y[i, max(0, filled - 1):] = -1
        for pos in starts:
            y[i, pos - 1] = -1
    device = torch.device(device)
    if device.type == "cuda":
        return (x.pin_memory().to(device, non_blocking=True),
                y.pin_memory().to(device, non_blocking=True))
    return x.to(device), y.to(device)


def iter_batches(shard_paths: Sequence[str | Path], batch_size: int, seq_len: int, *,
                 rank: int = 0, world_size: int = 1, start: DataPosition | dict | None = None,
                 device: str | torch.device = "cpu", window_docs: int = DEFAULT_WINDOW_DOCS,
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor, DataPosition]]:
    """Endless ``(x, y, position)`` batches of this rank: x, y int64 (batch_size, seq_len),
    ``y == -1`` where there is no target (row padding). ``position`` resumes the stream right after this
    global batch (``iter_batches(..., start=position)``)."""
    if isinstance(start, dict):
        start = DataPosition.from_dict(start)
    rows = _global_rows(shard_paths, seq_len + 1, start or DataPosition(), window_docs, None)
    group = batch_size * world_size
    while True:
        chunk = [next(rows) for _ in range(group)]
        x, y = _to_batch([row for row, _ in chunk[rank::world_size]], device)
        yield x, y, chunk[-1][1]


def eval_batches(shard_paths: Sequence[str | Path], batch_size: int, seq_len: int, *,
                 rank: int = 0, world_size: int = 1, device: str | torch.device = "cpu",
                 max_tokens: int | None = None, window_docs: int = DEFAULT_WINDOW_DOCS,
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One fixed, finite pass over the split, packed as in training: this rank's ``(x, y)``
    batches (the last one may have fewer rows). ``max_tokens`` caps the global number of rows
    at ``ceil(max_tokens / seq_len)``."""
    max_rows = None if max_tokens is None else -(-max_tokens // seq_len)
    mine: list[tuple] = []
    for g, (row, _) in enumerate(
            _global_rows(shard_paths, seq_len + 1, DataPosition(), window_docs, epochs=1)):
        if max_rows is not None and g >= max_rows:
            break
        if g % world_size == rank:
            mine.append(row)
            if len(mine) == batch_size:
                yield _to_batch(mine, device)
                mine = []
    if mine:
        yield _to_batch(mine, device)
