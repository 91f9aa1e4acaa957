"""Recursive-descent alphaTex parser with error recovery.

The grammar follows alphaTab's ``AlphaTexParser`` (1.7/1.8):

    score    := bar*
    bar      := (metadata | '.')* beat* '|'?
    metadata := TAG [values] [props] | TAG props [values]
    values   := '(' (IDENT|STRING|NUMBER)* ')' | typed values read by the tag's signature
    beat     := [':' NUMBER [props]] (('r' | note | '(' note* ')') ['.' NUMBER] ['*' NUMBER] [props])?
    note     := (NUMBER | STRING | IDENT) ['.' NUMBER] [props]      (string only after numbers, x, -)
    props    := '{' (IDENT values?)* '}'

then groups the flat bars into tracks, staves and voices the way alphaTab's importer does
(``\\track``, ``\\staff`` and ``\\voice`` start new ones; score-level tags go to the score,
staff-level tags to the current staff). Where alphaTab aborts at the first error, this parser
reports the error and resynchronizes (at the next ``}``, ``|``, metadata tag or beat), so one
run reports every error in a file. A semantic pass then checks what alphaTab's importer
checks: note kinds per staff (fretted, pitched, percussion), string numbers against the
tuning, durations, tuplets, time signatures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from musicml.formats.alphatex import signatures as S
from musicml.formats.alphatex.ast import (
    Bar,
    Beat,
    DurationChange,
    Ident,
    MetaData,
    Note,
    Property,
    Score,
    Staff,
    Track,
    Value,
    Voice,
)
from musicml.formats.alphatex.diagnostics import ERROR, WARNING, Diagnostic
from musicml.formats.alphatex.lexer import (
    COLON,
    DOT,
    EOF,
    IDENT,
    KIND_NAMES,
    LBRACE,
    LPAREN,
    NUMBER,
    PIPE,
    RBRACE,
    RPAREN,
    STAR,
    STRING,
    TAG,
    tokenize,
)

_MISSING = object()
_STOP_WORDS = frozenset({"piano", "none", "voice", "defaults"})
_KIND_LETTER = {IDENT: "i", STRING: "s", NUMBER: "n"}


@dataclass
class ParseResult:
    """Outcome of :func:`parse`: the tree (always present) and every diagnostic found."""

    ast: Score
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: str = "<string>"

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not any(d.severity == ERROR for d in self.diagnostics)


def _describe(tok) -> str:
    kind = tok[0]
    if kind in (IDENT, NUMBER):
        return f"{KIND_NAMES[kind]} '{tok[1]}'"
    if kind == TAG:
        return f"metadata tag '\\{tok[1]}'"
    if kind == STRING:
        return "string"
    return KIND_NAMES[kind]


def _sig_text(sig) -> str:
    names = {"i": "identifier", "s": "string", "n": "number", "l": "list"}
    out = []
    for ov in sig:
        if ov and ov[0] == S.STRICT:
            ov = ov[1:]
        parts = []
        for types, mode, allowed, _reserved in ov:
            if allowed and len(allowed) <= 8:
                p = "|".join(sorted(allowed))
            elif allowed:
                p = "|".join(sorted(allowed)[:6]) + "|..."
            else:
                p = "|".join(names[t] for t in sorted(types))
            if mode in (S.OPT, S.OPTF):
                p += "?"
            if mode in (S.LIST, S.REQLIST):
                p += "..."
            parts.append(p)
        out.append("(" + " ".join(parts) + ")")
    return " or ".join(out)



# -- overload resolution (read_typed) ---------------------------------------------------------
def _overloads(sig) -> list[tuple[tuple, bool]]:
    """``(parameters, strict)`` per overload of a signature (a strict one takes one value)."""
    return [(ov[1:], True) if ov and ov[0] == S.STRICT else (ov, False) for ov in sig]


def _complete(cand: dict[int, int], overloads) -> bool:
    """Whether some candidate overload has read all its parameters."""
    return any(pi == len(overloads[k][0]) for k, pi in cand.items())


def _param_takes(param, tok, letter: str | None) -> bool:
    """Whether parameter ``param`` (types, mode, allowed words, reserved words) takes ``tok``."""
    types, mode, allowed, reserved = param
    if letter is not None:
        match = letter in types
    else:
        match = tok[0] == LPAREN and ("l" in types or mode == S.LIST or mode == S.REQLIST)
    if match and (tok[0] == IDENT or tok[0] == STRING):
        low = tok[1].lower()
        if allowed is not None:
            match = low in allowed
        elif reserved is not None and tok[0] == IDENT:
            match = low not in reserved
    return match


def _next_param(params, strict: bool, pi: int, tok, letter: str | None) -> tuple[int, object, bool]:
    """Walk one overload from parameter ``pi`` to the one that takes ``tok``, skipping optional
    ones. Returns ``(next pi, the taking parameter's mode, False)``, or ``(pi, None, True)``
    when the overload cannot take it (no parameter left, a strict overload's second value, or a
    required parameter that does not match)."""
    while True:
        if pi >= len(params) or (strict and pi > 0):
            return pi, None, True
        mode = params[pi][1]
        if _param_takes(params[pi], tok, letter):
            return (pi if mode == S.LIST else pi + 1), mode, False
        if mode == S.REQ or mode == S.REQF:
            return pi, None, True
        pi += 1  # optional, list end or missing value list: try the next parameter


def _drop_unfinished(cand: dict[int, int], overloads) -> None:
    """Drop the candidate overloads that still need required values."""
    for k in list(cand):
        params, _strict = overloads[k]
        if any(mode in (S.REQ, S.REQF, S.REQLIST) for _types, mode, _a, _r in params[cand[k]:]):
            cand.pop(k)


class _Parser:
    def __init__(self, tokens, source: str, diags: list[Diagnostic]):
        self.toks = tokens
        self.i = 0
        self.source = source
        self.diags = diags

    # -- helpers -----------------------------------------------------------------------------
    def error(self, tok, message: str) -> None:
        self.diags.append(Diagnostic(ERROR, tok[4], tok[5], message, self.source))

    def warn(self, tok, message: str) -> None:
        self.diags.append(Diagnostic(WARNING, tok[4], tok[5], message, self.source))

    def _float_at(self, i: int):
        """(value, tokens consumed) for a NUMBER at i, joined with '.digits' when written tight."""
        toks = self.toks
        t = toks[i]
        if i + 2 < len(toks):
            d = toks[i + 1]
            f = toks[i + 2]
            if d[0] == DOT and d[2] == t[3] and f[0] == NUMBER and f[2] == d[3] and f[1][0] != "-":
                v = float(t[1] + "." + f[1])
                if not math.isfinite(v):
                    return int(t[1]), 3
                return (int(v) if v.is_integer() else v), 3
        return int(t[1]), 1

    # -- values ------------------------------------------------------------------------------
    def value_list(self) -> list[Value]:
        """A parenthesized list; numbers are read as floats where written so."""
        toks = self.toks
        open_tok = toks[self.i]
        self.i += 1
        values: list[Value] = []
        while True:
            tok = toks[self.i]
            kind = tok[0]
            if kind == RPAREN:
                self.i += 1
                return values
            if kind == NUMBER:
                v, n = self._float_at(self.i)
                values.append(v)
                self.i += n
            elif kind == IDENT:
                values.append(Ident(tok[1]))
                self.i += 1
            elif kind == STRING:
                values.append(tok[1])
                self.i += 1
            elif kind in (EOF, TAG, PIPE, LBRACE, RBRACE, LPAREN):
                self.error(
                    open_tok,
                    f"unclosed '(': expected ')' before {_describe(tok)} at {tok[4]}:{tok[5]}",
                )
                return values
            else:
                self.error(
                    tok,
                    f"unexpected {_describe(tok)} in value list, expected identifier, string or number",
                )
                self.i += 1

    def read_typed(self, sig, name: str, in_props: bool) -> list[Value]:
        """Values written without parentheses, read by the tag's/property's signature
        (alphaTab's overload resolution): every overload still possible walks its parameters
        token by token until one overload is complete and no other remains."""
        overloads = _overloads(sig)
        values: list[Value] = []
        start = self.toks[self.i]
        cand = dict.fromkeys(range(len(overloads)), 0)  # overload -> index of its next parameter
        while len(cand) > 1 or (cand and not _complete(cand, overloads)):
            tok = self.toks[self.i]
            if tok[0] == EOF or tok[0] == TAG or not self._advance(tok, overloads, cand, values):
                break
        _drop_unfinished(cand, overloads)
        if not cand:
            got = "no value" if not values else f"{len(values)} value(s)"
            self.error(
                start,
                f"invalid values for '{name}': got {got} before {_describe(self.toks[self.i])}; "
                f"expected {_sig_text(sig)}",
            )
        if in_props:
            self._trailing_values(values)
        return values

    def _advance(self, tok, overloads, cand: dict[int, int], values: list[Value]) -> bool:
        """Offer ``tok`` to every candidate overload: the first that takes it reads it into
        ``values``; overloads that cannot take it are dropped. False when none takes it (then
        nothing is dropped)."""
        letter = _KIND_LETTER.get(tok[0])
        removed = []
        found = False
        for k in list(cand):
            params, strict = overloads[k]
            cand[k], mode, out = _next_param(params, strict, cand[k], tok, letter)
            if out:
                removed.append(k)
            elif not found:
                found = True
                self._take_value(tok, mode, values)
        if found:
            for k in removed:
                cand.pop(k, None)
        return found

    def _take_value(self, tok, mode, values: list[Value]) -> None:
        """Read the value starting at ``tok`` as a parameter of ``mode`` wants it."""
        kind = tok[0]
        if kind == NUMBER:
            if mode == S.REQF or mode == S.OPTF:
                v, n = self._float_at(self.i)
            else:
                v, n = int(tok[1]), 1
            values.append(v)
            self.i += n
        elif kind == IDENT:
            values.append(Ident(tok[1]))
            self.i += 1
        elif kind == STRING:
            values.append(tok[1])
            self.i += 1
        else:
            values.extend(self.value_list())

    def _trailing_values(self, values: list[Value]) -> None:
        """alphaTab reads any further numbers/strings up to the next property name or '}'."""
        toks = self.toks
        while True:
            tok = toks[self.i]
            kind = tok[0]
            if kind == NUMBER:
                values.append(int(tok[1]))
                self.i += 1
            elif kind == STRING:
                values.append(tok[1])
                self.i += 1
            elif kind == LPAREN:
                values.extend(self.value_list())
            else:
                break

    def properties(self, table, context: str) -> list[Property]:
        """``{ name values ... }``; table None: any property name is accepted."""
        toks = self.toks
        open_tok = toks[self.i]
        self.i += 1
        props: list[Property] = []
        while True:
            tok = toks[self.i]
            kind = tok[0]
            if kind == IDENT:
                self.i += 1
                props.append(self._property(tok, table, context))
            elif kind == RBRACE:
                self.i += 1
                return props
            elif kind in (EOF, TAG, PIPE, LBRACE) or not self._closing_brace_ahead():
                self._unclosed_brace(open_tok, tok)
                return props
            else:
                self.error(
                    tok,
                    f"unexpected {_describe(tok)} in {context} properties, expected a property name or '}}'",
                )
                self.i += 1
                if self._skip_to_property():
                    return props

    def _property(self, tok, table, context: str) -> Property:
        """The values of property ``tok`` (its name, already consumed), by its signature."""
        name = tok[1].lower()
        sig = table.get(name, _MISSING) if table is not None else None
        if self.toks[self.i][0] == LPAREN:
            if sig is _MISSING:  # as without parentheses (else its canonical form, bare, is refused)
                self.error(tok, f"unknown {context} property '{tok[1]}'")
            values = self.value_list()
        elif sig is _MISSING:
            self.error(tok, f"unknown {context} property '{tok[1]}'")
            values = self._skip_values()
        elif table is None:
            values = self._skip_values()
        elif sig is not None:
            values = self.read_typed(sig, name, True)
        else:
            values = self._skip_values(strict=True)
        return Property(name, values, (tok[4], tok[5]))

    def _unclosed_brace(self, open_tok, tok) -> None:
        self.error(open_tok, f"unclosed '{{': expected '}}' before {_describe(tok)} at {tok[4]}:{tok[5]}")

    def _closing_brace_ahead(self) -> bool:
        """Whether a '}' comes before a token that cannot be inside properties (resynchronizing)."""
        toks = self.toks
        j = self.i
        while toks[j][0] not in (RBRACE, EOF, TAG, PIPE, LBRACE):
            j += 1
        return toks[j][0] == RBRACE

    def _skip_to_property(self) -> bool:
        """Skip to the next property name (False) or past the closing '}' (True)."""
        while True:
            t = self.toks[self.i][0]
            if t == RBRACE:
                self.i += 1
                return True
            if t == IDENT:
                return False
            self.i += 1

    def _skip_values(self, strict: bool = False) -> list[Value]:
        """Values after a property that takes none (strict) or an unknown one."""
        toks = self.toks
        values: list[Value] = []
        while True:
            tok = toks[self.i]
            kind = tok[0]
            if kind == NUMBER:
                if strict:
                    # alphaTab reads nothing for a value-less property; a number here is an error
                    return values
                values.append(int(tok[1]))
            elif kind == STRING:
                if strict:
                    return values
                values.append(tok[1])
            elif kind == LPAREN:
                values.extend(self.value_list())
                continue
            else:
                return values
            self.i += 1

    # -- metadata ----------------------------------------------------------------------------
    def metadata(self) -> MetaData:
        toks = self.toks
        tok = toks[self.i]
        self.i += 1
        name = tok[1].lower()
        pos = (tok[4], tok[5])
        sig = S.ALL_TAGS.get(name, _MISSING)
        if sig is _MISSING:
            self.error(tok, f"unknown metadata tag '\\{tok[1]}'")
        prop_table = S.METADATA_PROPERTIES.get(name)
        values: list[Value] = []
        props = None
        nxt = toks[self.i][0]
        if (
            name in ("tuning", "articulation")
            and nxt in (IDENT, STRING)
            and toks[self.i][1].lower() in _STOP_WORDS
        ):
            # \tuning piano|none|voice and \articulation defaults stand alone (alphaTab's OptionalAndStop)
            t = toks[self.i]
            self.i += 1
            values = [Ident(t[1]) if t[0] == IDENT else t[1]]
            if toks[self.i][0] == LBRACE:
                props = self._meta_props(name, prop_table, sig)
        elif nxt == LBRACE:
            props = self._meta_props(name, prop_table, sig)
            if toks[self.i][0] == LPAREN and sig is not None:
                values = self.value_list()
            elif sig is not _MISSING and sig is not None:
                values = self.read_typed(sig, "\\" + name, False)
        else:
            if nxt == LPAREN and sig is not None:
                values = self.value_list()
            elif sig is not _MISSING and sig is not None:
                values = self.read_typed(sig, "\\" + name, False)
            if toks[self.i][0] == LBRACE:
                props = self._meta_props(name, prop_table, sig)
        return MetaData(name, values, props, pos)

    def _meta_props(self, name, prop_table, sig):
        if prop_table is None and sig is not _MISSING:
            self.error(self.toks[self.i], f"metadata '\\{name}' takes no properties")
            self.properties(prop_table, f"'\\{name}'")
            return None  # read past and left out of the tree (the tag never has any)
        return self.properties(prop_table, f"'\\{name}'")

    # -- beats -------------------------------------------------------------------------------
    def note(self) -> Note:
        toks = self.toks
        tok = toks[self.i]
        kind = tok[0]
        self.i += 1
        if kind == NUMBER:
            value: Value = int(tok[1])
            can_string = True
        elif kind == IDENT:
            value = Ident(tok[1])
            can_string = tok[1] == "x" or tok[1] == "-"
        else:  # STRING
            value = tok[1]
            can_string = tok[1] == "x" or tok[1] == "-"
        string = None
        if can_string and toks[self.i][0] == DOT:
            after = toks[self.i + 1]
            if after[0] == NUMBER:
                string = int(after[1])
                self.i += 2
            elif after[0] == TAG or after[0] == EOF:
                pass  # a separator dot before metadata (sync points) or at the end
            else:
                self.error(after, f"expected a string number after '.', found {_describe(after)}")
                self.i += 1
        effects: list[Property] = []
        if toks[self.i][0] == LBRACE:
            effects = self.properties(S.NOTE_OR_BEAT_PROPERTIES, "note")
        return Note(value, string, effects, (tok[4], tok[5]))

    def beat(self) -> Beat | None:
        toks = self.toks
        tok = toks[self.i]
        kind = tok[0]
        beat = Beat(pos=(tok[4], tok[5]))
        if kind == COLON:
            self.i += 1
            num = toks[self.i]
            if num[0] == NUMBER:
                self.i += 1
                dc = DurationChange(int(num[1]), [], (tok[4], tok[5]))
                if toks[self.i][0] == LBRACE:
                    dc.properties = self.properties(S.DURATION_CHANGE_PROPERTIES, "duration")
                beat.duration_change = dc
            else:
                self.error(tok, f"missing duration after ':', found {_describe(num)}")
            tok = toks[self.i]
            kind = tok[0]
            beat.pos = (tok[4], tok[5]) if beat.duration_change is None else beat.pos
        # content
        if kind == IDENT and tok[1] == "r":
            self.i += 1
            beat.rest = True
        elif kind == NUMBER or kind == IDENT or kind == STRING:
            beat.notes = [self.note()]
        elif kind == LPAREN:
            self.i += 1
            notes: list[Note] = []
            while True:
                t = toks[self.i]
                k = t[0]
                if k == RPAREN:
                    self.i += 1
                    break
                if k == NUMBER or k == IDENT or k == STRING:
                    notes.append(self.note())
                    continue
                if k in (EOF, TAG, PIPE, LPAREN, COLON):
                    self.error(
                        tok,
                        f"unclosed '(' of a chord: expected ')' before {_describe(t)} at {t[4]}:{t[5]}",
                    )
                    break
                self.error(t, f"unexpected {_describe(t)} in chord, expected a note or ')'")
                self.i += 1
            beat.notes = notes
        else:
            if beat.duration_change is not None:
                return beat
            if kind != EOF:
                self.error(
                    tok, f"unexpected {_describe(tok)}, expected a note, rest, chord or metadata"
                )
                self.i += 1
            return None
        # duration
        if toks[self.i][0] == DOT:
            after = toks[self.i + 1]
            if after[0] == NUMBER:
                beat.duration = int(after[1])
                self.i += 2
            elif after[0] == TAG:
                pass
            elif after[0] == EOF:
                self.i += 1
            else:
                self.error(after, f"expected a duration after '.', found {_describe(after)}")
                self.i += 1
        if toks[self.i][0] == STAR:
            star = toks[self.i]
            self.i += 1
            if toks[self.i][0] == NUMBER:
                beat.multiplier = int(toks[self.i][1])
                self.i += 1
            else:
                self.error(
                    star, f"missing beat multiplier after '*', found {_describe(toks[self.i])}"
                )
        if toks[self.i][0] == LBRACE:
            beat.effects = self.properties(S.BEAT_PROPERTIES, "beat")
        return beat

    # -- bars --------------------------------------------------------------------------------
    def flat_bars(self):
        """alphaTab's flat bar list: (metadata, beats, pos, had_pipe) tuples."""
        toks = self.toks
        bars = []
        while True:
            tok = toks[self.i]
            if tok[0] == EOF:
                return bars
            pos = (tok[4], tok[5])
            meta: list[MetaData] = []
            beats: list[Beat] = []
            while True:
                k = toks[self.i][0]
                if k == TAG:
                    meta.append(self.metadata())
                elif k == DOT:
                    self.i += 1
                else:
                    break
            while True:
                k = toks[self.i][0]
                if k == PIPE or k == DOT or k == TAG or k == EOF:
                    break
                b = self.beat()
                if b is not None:
                    if beats and not beats[-1].has_content and b.duration_change is None:
                        # a lone ':d' (its beat lost to an error) applies to the next beat
                        b.duration_change = beats.pop().duration_change
                    beats.append(b)
            pipe = False
            if toks[self.i][0] == PIPE:
                self.i += 1
                pipe = True
            if meta or beats or pipe:
                bars.append((meta, beats, pos, pipe))


def _track_empty(track: Track) -> bool:
    return track.tag is None and all(_staff_empty(s) for s in track.staves)


def _staff_empty(staff: Staff) -> bool:
    return staff.tag is None and not staff.metadata and all(not v.bars for v in staff.voices)


class _ScoreBuilder:
    """Groups flat bars into tracks, staves and voices as alphaTab's importer does: ``\\track``,
    ``\\staff`` and ``\\voice`` start new ones (or name the current one while it is still
    empty), score-level tags go to the score, staff-level tags to the current staff."""

    def __init__(self) -> None:
        self.score = Score()
        self.track: Track | None = None
        self.staff: Staff | None = None
        self.voice: Voice | None = None

    def build(self, flat_bars) -> Score:
        for meta, beats, pos, pipe in flat_bars:
            bar_meta = [m for m in meta if self._place(m)]
            if bar_meta or beats or pipe:
                self.ensure_voice().bars.append(Bar(bar_meta, beats, pos))
        return self.score

    def _place(self, m: MetaData) -> bool:
        """File a tag where it belongs; True for a bar-level tag (it stays with its bar)."""
        kind = S.TAG_KIND.get(m.tag, "bar")
        if kind == "bar":
            return True
        if kind == "score":
            self.score.metadata.append(m)
        elif kind == "staff":
            self.ensure_staff().metadata.append(m)
        elif m.tag == "track":
            self._start_track(m)
        elif m.tag == "staff":
            self._start_staff(m)
        elif m.tag == "voice":
            self._start_voice()
        return False

    def ensure_track(self) -> Track:
        if self.track is None:
            self.track = Track()
            self.score.tracks.append(self.track)
            self.staff = self.voice = None
        return self.track

    def ensure_staff(self) -> Staff:
        if self.staff is None:
            track = self.ensure_track()
            self.staff = Staff()
            track.staves.append(self.staff)
            self.voice = None
        return self.staff

    def ensure_voice(self) -> Voice:
        if self.voice is None:
            staff = self.ensure_staff()
            self.voice = Voice()
            staff.voices.append(self.voice)
        return self.voice

    def _start_track(self, m: MetaData) -> None:
        t = self.track
        if t is not None and _track_empty(t):
            t.tag = m
            t.staves.clear()
        else:
            t = Track(tag=m)
            self.score.tracks.append(t)
        self.track, self.staff, self.voice = t, None, None

    def _start_staff(self, m: MetaData) -> None:
        track = self.ensure_track()
        s = self.staff
        if s is not None and _staff_empty(s):
            s.tag = m
            s.voices.clear()
        else:
            s = Staff(tag=m)
            track.staves.append(s)
        self.staff, self.voice = s, None

    def _start_voice(self) -> None:
        staff = self.ensure_staff()
        v = self.voice
        if v is None or v.bars:
            v = Voice()
            staff.voices.append(v)
        self.voice = v


def build_score(flat_bars) -> Score:
    """Group alphaTab's flat bars into score / tracks / staves / voices (:class:`_ScoreBuilder`)."""
    return _ScoreBuilder().build(flat_bars)


def parse(text: str, source: str = "<string>", *, semantic: bool = True) -> ParseResult:
    """Parse alphaTex text into a :class:`Score` and every diagnostic (never raises)."""
    tokens, diags = tokenize(text, source)
    parser = _Parser(tokens, source, diags)
    flat = parser.flat_bars()
    score = build_score(flat)
    if semantic:
        from musicml.formats.alphatex.semantics import check_score

        diags.extend(check_score(score, source))
    diags.sort(key=lambda d: (d.line, d.col))
    return ParseResult(score, diags, source)
