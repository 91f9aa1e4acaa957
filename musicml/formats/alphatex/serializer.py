"""Canonical alphaTex text for a tree: one layout, no comments, lower-case tag and property
names, values in parentheses where written bare they would read differently.

The layout follows alphaTab's exporter (``\\track ("name" "short") { ... }``, ``\\staff { ... }``,
``\\tuning (E4 B3 G3 D3 A2 E2)``, one bar a line ending in ``|``) so that normalized text looks
like the alphaTex found in the wild. ``parse(serialize(ast)).ast == ast`` for every tree the
parser builds.
"""

from __future__ import annotations

import re
from decimal import Decimal

from musicml.formats.alphatex.ast import (
    Bar,
    Beat,
    Ident,
    MetaData,
    Note,
    Property,
    Score,
    Value,
)

_STR_ESC = re.compile(r'[\\"\n\r\t]')
_STR_MAP = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(s: str) -> str:
    return '"' + _STR_ESC.sub(lambda m: _STR_MAP[m.group()], s) + '"'


def _number(v) -> str:
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e15:
            return str(int(v))
        r = repr(v)
        if "e" in r or "E" in r:
            r = format(Decimal(r), "f")
        return r
    return str(v)


def value_text(v: Value) -> str:
    if isinstance(v, Ident):
        return v.text
    if isinstance(v, str):
        return _string(v)
    return _number(v)


def _values_paren(values) -> str:
    return "(" + " ".join(value_text(v) for v in values) + ")"


# --- is a single value safe to write without parentheses? -----------------------------------
# Decided by parsing the candidate text followed by a sample of the token that really follows
# it in the output (results cached), so the rule is exactly the parser's.
_bare_cache: dict = {}
_CACHE_LIMIT = 200_000


def _bare_meta_ok(tag: str, value: Value, follower: str) -> bool:
    key = ("m", tag, type(value), value, follower)
    ok = _bare_cache.get(key)
    if ok is None:
        from musicml.formats.alphatex.lexer import tokenize
        from musicml.formats.alphatex.parser import _Parser

        prefix = f"\\{tag} {value_text(value)}"
        toks, _ = tokenize(f"{prefix} {follower}")
        diags: list = []
        parser = _Parser(toks, "", diags)
        m = parser.metadata()
        ok = (
            m.values == [value]
            and type(m.values[0]) is type(value)
            and parser.i == len(tokenize(prefix)[0]) - 3  # nothing of the follower was taken
            and not any(d.severity == "error" for d in diags)  # nor read with an error (\\ts 4: no overload)
        )
        _bare_cache[key] = ok
    return ok


def _empty_ok(tag: str, follower: str) -> bool:
    key = ("e", tag, follower)
    ok = _bare_cache.get(key)
    if ok is None:
        from musicml.formats.alphatex.lexer import tokenize
        from musicml.formats.alphatex.parser import _Parser

        toks, _ = tokenize(f"\\{tag} {follower}")
        diags: list = []
        parser = _Parser(toks, "", diags)
        values = parser.metadata().values
        # bare is safe only when the follower is neither read as values nor refused as them
        ok = (values == [] and parser.i == (3 if follower.startswith("{} ") else 1)
              and not any(d.severity == "error" for d in diags))
        _bare_cache[key] = ok
    return ok


def _empty_prop_ok(table, table_key: str, name: str, follower: str) -> bool:
    key = ("ep", table_key, name, follower)
    ok = _bare_cache.get(key)
    if ok is None:
        from musicml.formats.alphatex.lexer import tokenize
        from musicml.formats.alphatex.parser import _Parser

        toks, _ = tokenize(f"{{{name} {follower}")
        props = _Parser(toks, "", []).properties(table, "x")
        ok = bool(props) and props[0].values == []
        _bare_cache[key] = ok
    return ok


def _bare_prop_ok(table, table_key: str, name: str, value: Value, follower: str) -> bool:
    key = ("p", table_key, name, type(value), value, follower)
    ok = _bare_cache.get(key)
    if ok is None:
        from musicml.formats.alphatex.lexer import tokenize
        from musicml.formats.alphatex.parser import _Parser

        toks, _ = tokenize(f"{{{name} {value_text(value)} {follower}")
        props = _Parser(toks, "", []).properties(table, "x")
        ok = bool(props) and props[0].values == [value] and type(props[0].values[0]) is type(value)
        _bare_cache[key] = ok
    return ok


def _props_inner(props: list[Property], table, table_key: str) -> list[str]:
    parts = []
    for i, p in enumerate(props):
        follower = props[i + 1].name + "}" if i + 1 < len(props) else "}"
        if not p.values:
            if follower != "}" and not _empty_prop_ok(table, table_key, p.name, follower):
                parts.append(f"{p.name} ()")  # the next property name would be read as a value
            else:
                parts.append(p.name)
            continue
        if len(p.values) == 1 and _bare_prop_ok(table, table_key, p.name, p.values[0], follower):
            parts.append(f"{p.name} {value_text(p.values[0])}")
        else:
            parts.append(f"{p.name} {_values_paren(p.values)}")
    return parts


def _props(props: list[Property], table_key: str) -> str:
    from musicml.formats.alphatex import signatures as S

    return "{" + " ".join(_props_inner(props, getattr(S, table_key), table_key)) + "}"


def metadata_text(m: MetaData, follower: str = "", indent: str = "") -> str:
    """``follower``: a sample of the text that follows (decides whether values need parentheses)."""
    from musicml.formats.alphatex import signatures as S

    out = "\\" + m.tag
    if not m.values and follower:
        probe = follower if m.properties is None else "{} " + follower
        if not _empty_ok(m.tag, probe):
            out += " ()"  # stop the next beat from being read as this tag's values
    if m.values:
        nxt = "{}" if m.properties is not None else follower
        if len(m.values) == 1 and _bare_meta_ok(m.tag, m.values[0], nxt):
            out += " " + value_text(m.values[0])
        else:
            out += " " + _values_paren(m.values)
    if m.properties is not None:
        table = S.METADATA_PROPERTIES.get(m.tag)
        parts = _props_inner(m.properties, table, "meta:" + m.tag)
        if m.tag in ("track", "staff", "tuning", "chord") and parts:
            inner = "\n".join(f"{indent}  {x}" for x in parts)
            out += " {\n" + inner + "\n" + indent + "}"
        else:
            out += " {" + " ".join(parts) + "}"
    return out


def _beat_sample(b: Beat) -> str:
    """The start of a beat's text (what a preceding tag could read as values)."""
    if b.duration_change is not None:
        return ":4"
    if b.rest:
        return "r"
    if b.notes is None:
        return "|"
    text = beat_text(b)
    return text if len(text) <= 40 else text[:40]


def _bar_sample(bar: Bar) -> str:
    if bar.metadata:
        return "\\ts"
    if bar.beats:
        return _beat_sample(bar.beats[0])
    return "|"


def note_text(n: Note) -> str:
    v = n.value
    out = value_text(v)
    if n.string is not None:
        out += f".{n.string}"
    if n.effects:
        out += _props(n.effects, "NOTE_OR_BEAT_PROPERTIES")
    return out


def _needs_group(b: Beat) -> bool:
    """A stringless number (or x, -) before '.duration' would read the duration as its string;
    beat effects right after a note (no duration, no multiplier) would read as note effects."""
    n = b.notes[0]
    if b.effects and b.duration is None and b.multiplier is None:
        return True
    if n.value == Ident("r"):  # a note named r (an error) is not a rest
        return True
    if n.string is not None or b.duration is None or n.effects:
        return False
    v = n.value
    return isinstance(v, int) or str(v) in ("x", "-")


def beat_text(b: Beat) -> str:
    parts = []
    dc = b.duration_change
    if dc is not None:
        t = f":{dc.value}"
        if dc.properties:
            t += " " + _props(dc.properties, "DURATION_CHANGE_PROPERTIES")
        parts.append(t)
    if b.rest or b.notes is not None:
        if b.rest:
            t = "r"
        elif len(b.notes) == 1 and not _needs_group(b):
            t = note_text(b.notes[0])
        else:
            t = "(" + " ".join(note_text(n) for n in b.notes) + ")"
        if b.duration is not None:
            t += f".{b.duration}"
        if b.multiplier is not None:
            t += f"*{b.multiplier}"
        if b.effects:
            t += _props(b.effects, "BEAT_PROPERTIES")
        parts.append(t)
    return " ".join(parts)


def bar_text(bar: Bar) -> str:
    parts = []
    meta = bar.metadata
    for i, m in enumerate(meta):
        if i + 1 < len(meta):
            follower = "\\ts"
        elif bar.beats:
            follower = _beat_sample(bar.beats[0])
        else:
            follower = "|"
        parts.append(metadata_text(m, follower))
    parts.extend(beat_text(b) for b in bar.beats)
    parts.append("|")
    return " ".join(parts)


def _items(ast: Score):
    """The document as a sequence of metadata and bars, in output order."""
    yield from ast.metadata
    for track in ast.tracks:
        if track.tag is not None:
            yield track.tag
        for staff in track.staves:
            if staff.tag is not None:
                yield staff.tag
            yield from staff.metadata
            many = len(staff.voices) > 1 or (len(staff.voices) == 1 and not staff.voices[0].bars)
            for voice in staff.voices:
                if many:
                    yield MetaData("voice")
                yield from voice.bars


def serialize(ast: Score) -> str:
    """Canonical alphaTex text of a tree (ends with a newline)."""
    if len(_bare_cache) > _CACHE_LIMIT:
        _bare_cache.clear()
    items = list(_items(ast))
    lines: list[str] = []
    for i, item in enumerate(items):
        if isinstance(item, Bar):
            lines.append(bar_text(item))
            continue
        if i + 1 < len(items):
            nxt = items[i + 1]
            follower = "\\ts" if isinstance(nxt, MetaData) else _bar_sample(nxt)
        else:
            follower = ""
        lines.append(metadata_text(item, follower))
    return "\n".join(lines) + "\n"
