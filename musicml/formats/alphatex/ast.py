"""The typed alphaTex syntax tree.

Structure (what alphaTab builds from its flat list of bars):
``Score(metadata, tracks) > Track(tag, staves) > Staff(tag, metadata, voices) > Voice(bars)
> Bar(metadata, beats) > Beat(notes, ...) > Note``.

Names of tags and properties are stored lower-case (alphaTex is case-insensitive there);
values keep their case. A value is an ``int``, a ``float``, a ``str`` (a quoted string) or an
:class:`Ident` (a bare word). Source positions (``pos``: ``(line, col)``) take no part in
equality, so two texts that differ only in layout or comments give equal trees.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ident:
    """A bare word value (``mf``, ``E4``, ``acousticguitarsteel``), as opposed to a quoted string."""

    text: str

    def __str__(self) -> str:
        return self.text


Value = int | float | str | Ident

_NOPOS = (0, 0)


def _pos():
    return field(default=_NOPOS, compare=False, repr=False)


@dataclass
class Property:
    """``name values`` inside braces: a beat/note effect or a metadata property."""

    name: str
    values: list[Value] = field(default_factory=list)
    pos: tuple[int, int] = _pos()


@dataclass
class MetaData:
    """A metadata tag ``\\name values {properties}``."""

    tag: str
    values: list[Value] = field(default_factory=list)
    properties: list[Property] | None = None
    pos: tuple[int, int] = _pos()


@dataclass
class Note:
    """``value[.string]{effects}``: value is a fret/articulation number, a pitch or
    articulation name (Ident or str), ``x`` (dead) or ``-`` (tie)."""

    value: Value
    string: int | None = None
    effects: list[Property] = field(default_factory=list)
    pos: tuple[int, int] = _pos()


@dataclass
class DurationChange:
    """``:duration {properties}`` before a beat: the default duration from here on."""

    value: int
    properties: list[Property] = field(default_factory=list)
    pos: tuple[int, int] = _pos()


@dataclass
class Beat:
    """One beat: notes (a chord when several), a rest, or nothing (only a duration change).

    ``notes`` is None for a rest or an empty beat; ``duration`` None means the current default.
    """

    notes: list[Note] | None = None
    rest: bool = False
    duration: int | None = None
    multiplier: int | None = None
    effects: list[Property] = field(default_factory=list)
    duration_change: DurationChange | None = None
    pos: tuple[int, int] = _pos()

    @property
    def has_content(self) -> bool:
        return self.rest or self.notes is not None


@dataclass
class Bar:
    metadata: list[MetaData] = field(default_factory=list)
    beats: list[Beat] = field(default_factory=list)
    pos: tuple[int, int] = _pos()


@dataclass
class Voice:
    bars: list[Bar] = field(default_factory=list)


@dataclass
class Staff:
    """A staff: its ``\\staff`` tag (None when implicit), staff metadata (tuning, capo,
    chords, instrument, lyrics, articulations, ...) and voices."""

    tag: MetaData | None = None
    metadata: list[MetaData] = field(default_factory=list)
    voices: list[Voice] = field(default_factory=list)


@dataclass
class Track:
    tag: MetaData | None = None
    staves: list[Staff] = field(default_factory=list)

    @property
    def name(self) -> str | None:
        if self.tag and self.tag.values and isinstance(self.tag.values[0], str):
            return self.tag.values[0]
        return None

    def property(self, name: str) -> Property | None:
        for p in (self.tag.properties or []) if self.tag else []:
            if p.name == name:
                return p
        return None


@dataclass
class Score:
    metadata: list[MetaData] = field(default_factory=list)
    tracks: list[Track] = field(default_factory=list)

    def meta(self, tag: str) -> MetaData | None:
        for m in self.metadata:
            if m.tag == tag:
                return m
        return None
