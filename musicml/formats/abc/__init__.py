"""ABC notation: tunes read with symusic, transposed as text."""

from __future__ import annotations

from musicml.formats.abc.reader import (  # noqa: F401
    Tune,
    parse_tune,
    read_abc,
    shift_key_signatures,
    split_tunes,
    transpose_tune,
)
from musicml.formats.abc.transpose import (  # noqa: F401
    transpose_abc,
    transpose_key,
)
