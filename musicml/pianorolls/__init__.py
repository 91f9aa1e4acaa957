"""Piano rolls: scores as pitch x time matrices on a 16th-note grid."""

from __future__ import annotations

from musicml.pianorolls.grid import (  # noqa: F401
    from_pianoroll,
    to_pianoroll,
)
