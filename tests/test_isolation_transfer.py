"""The files' bytes go to an ingestion worker unframed after their header (``_write_all`` and
``receive_files``): every byte arrives, in order, whatever the sizes, and a worker whose other
end closes early gets an ``EOFError`` (its batch is then answered as lost), never a short buffer."""

from __future__ import annotations

import json
import os
import threading
from multiprocessing import Pipe

import pytest

from musicml.ingest.isolation import _read_exactly, _write_all, receive_files


def test_every_byte_arrives_in_order_through_partial_writes() -> None:
    parent, child = Pipe(duplex=True)
    files = [b"", os.urandom(300_000), b"x", os.urandom(5 << 20), b"", os.urandom(70_001)]
    header = {"files": [{"size": len(f)} for f in files]}
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(bytes(receive_files(child, json.loads(child.recv_bytes())))))
    reader.start()
    parent.send_bytes(json.dumps(header).encode())
    _write_all(parent.fileno(), files)  # (more than the socket's buffer: the writes are partial)
    reader.join(30)
    assert got == [b"".join(files)]
    parent.send_bytes(b"after")  # the connection's own messages still frame right after the bytes
    assert child.recv_bytes() == b"after"


def test_a_batch_of_no_bytes_reads_nothing() -> None:
    parent, child = Pipe(duplex=True)
    _write_all(parent.fileno(), [b"", b""])
    assert receive_files(child, {"files": [{"size": 0}, {"size": 0}]}).nbytes == 0


def test_the_other_end_closing_early_is_an_eof_not_a_short_buffer() -> None:
    parent, child = Pipe(duplex=True)
    _write_all(parent.fileno(), [b"abc"])
    parent.close()
    with pytest.raises(EOFError, match="after 3 of 10 bytes"):
        _read_exactly(child.fileno(), 10)
