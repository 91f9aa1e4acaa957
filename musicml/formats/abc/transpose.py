"""Fast, key-aware, text-level transposition of ABC tunes, in the style of ``abc2abc -t``.

No maintained Python library transposes ABC *text* (music21 and symusic go through a score and
write the tune back in their own style; abc2abc is a C program), so this is written by hand
against the ABC 2.1 standard, and checked against symusic's ABC reader (abc2midi) in the tests.

The tune keeps its layout: only key fields (``K:`` lines and inline ``[K:...]``), notes and
chord symbols change. The new key is the enharmonic spelling of the moved tonic with the fewest
accidentals for the mode (ties at six: the spelling whose letter interval matches the shift,
e.g. F +1 -> Gb, E +2 -> F#; then the side of the old key). Notes move diatonically by the letter
distance between the old and the new tonic; their octave marks are recomputed. The pitch each
note sounds (key signature, explicit accidental, accidentals carried to the end of the bar, as
abc2midi reads them: for every octave of the letter) is tracked in the old and in the new text,
so a note gets an explicit accidental exactly when it needs one: notes written without one stay
without one in ordinary keys, notes with one keep one (``=`` for a natural), and where that would
take more than a double accidental the note is respelled on the nearest letter.

Chord symbols (quoted text made of chord names: ``"Am7/G"``, ``"Bb"``, ``"G D"``) move with the
notes, root and bass spelled in the new key (single accidentals at most). Quoted text that starts
with A-G but does not read as chords (``"Fine"``, ``"D.C."``, ``"Coda"``) is kept, as is lowercase
text such as the dynamics ``"f"`` (abc2midi plays both as chords; the standard calls them text).

Left alone: header fields other than ``K:``, ``%`` comments and ``%%`` directives, lyrics, other
field lines and inline fields, annotations (``"^..."`` etc.), decorations ``!...!``/``+...+``
(paired on one line, as abc2midi pairs them), rests, and any text after the tune's first empty
line or inside ``%%begintext``/``%%endtext``.

Returns ``None`` rather than a doubtful tune: no ``K:`` field, ``K:none``, highland-pipe keys
(``K:HP``/``K:Hp``), an unknown mode, microtonal accidentals, or a note moved outside MIDI 0..127.
"""

from __future__ import annotations

import re

__all__ = ["transpose_abc", "transpose_key"]

_LETTERS = "CDEFGAB"
_INDEX = {c: i for i, c in enumerate(_LETTERS)}
_NATURAL = (0, 2, 4, 5, 7, 9, 11)
_FIFTHS = (0, 2, 4, -1, 1, 3, 5)  # C D E F G A B on the circle of fifths (C major = 0)
_SHARP_ORDER = (3, 0, 4, 1, 5, 2, 6)  # F C G D A E B
_FLAT_ORDER = (6, 2, 5, 1, 4, 0, 3)  # B E A D G C F
_MODES = {
    "maj": 0, "ion": 0, "mix": -1, "dor": -2, "aeo": -3, "min": -3, "phr": -4, "loc": -5,
    "lyd": 1,
}  # fmt: skip
_ACC_VALUE = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}
_ACC_TEXT = {2: "^^", 1: "^", 0: "=", -1: "_", -2: "__"}
_TONIC_ACC = {"#": 1, "b": -1, "": 0}
_TONIC_TEXT = {1: "#", -1: "b", 0: ""}
# letter steps of the plainest interval for each shift (a tritone is 3 or 4 steps)
_STEPS = {1: (1,), 2: (1,), 3: (2,), 4: (2,), 5: (3,), 6: (3, 4), 7: (4,), 8: (5,), 9: (5,),
          10: (6,), 11: (6,)}  # fmt: skip

_KEY = re.compile(
    r"(?P<pre>\s*)(?P<tonic>[A-G])(?P<tacc>[#b]?)(?P<sp>\s*)(?P<mode>[A-Za-z]*)(?P<rest>.*)",
    re.S,
)
_KEY_ACC = re.compile(r"(\^\^|\^|__|_|=)([A-Ga-g])")
_KEY_ACC_TOKEN = re.compile(r"(?:(?:\^\^|\^|__|_|=)[A-Ga-g])+")
_FIELD_LINE = re.compile(r"([A-Za-z+]):(.*)", re.S)
_MUSIC = re.compile(
    r"""(?P<cm>%.*)
    |(?P<st>"[^"]*(?:"|$))
    |(?P<dc>![^!]*!|\+[^+]*\+)
    |(?P<fd>\[(?P<fl>[A-Za-z]):(?P<fv>[^\]]*)\])
    |(?P<nt>(?P<acc>\^\^|\^|__|_|=)?(?P<let>[A-Ga-g])(?P<oc>[,']*))
    |(?P<mt>[\^_][0-9/]+[A-Ga-g])
    |(?P<bar>\||::)""",
    re.X,
)
_KEY_SETTING = re.compile(
    r"[A-Za-z]+=\S*|(?:treble|bass|alto|tenor|baritone|soprano|mezzosoprano|perc)[0-9+\-]*"
    r"|[+\-]8(?:va|vb)?"
)
_QUALITY = r"(?:maj|min|dim|aug|sus|add|/[0-9]+|[mMo+\-#b()0-9\u00b0\u00f8^])*"
_CHORD = rf"[A-G][#b]?{_QUALITY}(?:/[A-Ga-g][#b]?)?"
_CHORD_SYMBOL = re.compile(rf"\s*{_CHORD}(?:\s+{_CHORD})*\s*")
_CHORD_TOKEN = re.compile(rf"([A-G])([#b]?)({_QUALITY})(?:/([A-Ga-g])([#b]?))?")


class _Fail(Exception):
    """The tune cannot be transposed safely."""


class _Key:
    """A parsed ``K:`` value: tonic letter and accidental, mode offset, accidental per letter."""

    __slots__ = ("letter", "acc", "mode", "sig", "m")

    def __init__(self, value: str):
        m = _KEY.fullmatch(value)
        if m is None:
            raise _Fail(value)
        word = m["mode"]
        mode = _mode_offset(word)
        rest = m["rest"]
        if mode is None:
            if not word or not m["sp"]:
                raise _Fail(value)  # an unknown mode glued to the tonic: "Bn", "Fbass"
            mode = 0  # a clef or other token after a space: "G bass", "D exp ^f"
        self.m = m
        self.letter = _INDEX[m["tonic"]]
        self.acc = _TONIC_ACC[m["tacc"]]
        self.mode = mode
        tail = rest if _mode_offset(word) is not None else m["sp"] + word + rest
        tokens = tail.split()
        sig = [0] * 7
        if "exp" not in (t.lower() for t in tokens):
            sf = _FIFTHS[self.letter] + 7 * self.acc + mode
            if not -7 <= sf <= 7:
                raise _Fail(value)
            order = _SHARP_ORDER if sf > 0 else _FLAT_ORDER
            for i in order[: abs(sf)]:
                sig[i] = 1 if sf > 0 else -1
        for token in tokens:
            if _KEY_ACC_TOKEN.fullmatch(token):
                for acc, letter in _KEY_ACC.findall(token):
                    sig[_INDEX[letter.upper()]] = _ACC_VALUE[acc]
        self.sig = sig

    @property
    def fifths(self) -> int:
        return _FIFTHS[self.letter] + 7 * self.acc + self.mode


def _mode_offset(word: str) -> int | None:
    if not word:
        return 0
    low = word.lower()
    if low == "m":
        return -3
    return _MODES.get(low[:3])


def _plan(key: _Key, k: int) -> tuple[int, int, int]:
    """New tonic (letter, accidental) and the letter shift in diatonic steps for ``k`` semitones."""
    if k % 12 == 0:
        return key.letter, key.acc, 7 * (k // 12)
    pc = _NATURAL[key.letter] + key.acc
    best = None
    for letter in range(7):
        for acc in (-1, 0, 1):
            if (_NATURAL[letter] + acc - pc - k) % 12:
                continue
            sf = _FIFTHS[letter] + 7 * acc + key.mode
            step = (letter - key.letter) % 7
            rank = (abs(sf), step not in _STEPS[k % 12], (sf < 0) != (key.fifths < 0))
            if best is None or rank < best[0]:
                best = (rank, letter, acc)
    _, letter, acc = best
    r = (letter - key.letter) % 7
    semis = _NATURAL[(key.letter + r) % 7] + 12 * ((key.letter + r) // 7) - _NATURAL[key.letter]
    semis += acc - key.acc
    return letter, acc, r + 7 * ((k - semis) // 12)


def _abs(n: int) -> int:
    """Semitones of the natural note ``n`` diatonic steps above middle C."""
    return 12 * (n // 7) + _NATURAL[n % 7]


def _spell(n: int, need: int, limit: int) -> tuple[int, int]:
    """(letter shift -1/0/+1, accidental) spelling ``need`` semitones off natural note ``n``."""
    if -limit <= need <= limit:
        return 0, need
    for shift in (-1, 1):
        delta = _abs(n + shift) - _abs(n)
        if -limit <= need - delta <= limit:
            return shift, need - delta
    raise _Fail(f"cannot spell {need}")


def _move_key(value: str, k: int) -> tuple[str, _Key, _Key, int]:
    """Transposed ``K:`` value, old and new parsed keys, letter shift."""
    old = _Key(value)
    letter, acc, steps = _plan(old, k)
    m = old.m

    def acc_token(t: re.Match) -> str:
        idx = _INDEX[t[2].upper()]
        n = idx + steps
        need = _NATURAL[idx] + _ACC_VALUE[t[1]] + k - _abs(n)
        shift, a = _spell(n, need, 2)
        name = _LETTERS[(n + shift) % 7]
        return _ACC_TEXT[a] + (name.lower() if t[2].islower() else name)

    parts = re.split(r"(\s+)", m["rest"])  # "Dmix=c": a token may be glued to the mode
    for i, part in enumerate(parts):
        if _KEY_ACC_TOKEN.fullmatch(part):
            parts[i] = _KEY_ACC.sub(acc_token, part)
    tonic = _LETTERS[letter] + _TONIC_TEXT[acc]
    new_value = m["pre"] + tonic + m["sp"] + m["mode"] + "".join(parts)
    new = _Key(new_value)
    return new_value, old, new, steps


def transpose_key(key_field: str, semitones: int) -> str | None:
    """Move a ``K:`` field (``"K:D mix"`` or just ``"D mix"``) by ``semitones``; None if unsafe.

    The new tonic is spelled with the fewest accidentals for the mode; clef and other tokens are
    kept; explicit accidentals (``K:D exp ^f _b``) are moved like notes.
    """
    prefix = ""
    value = key_field
    if value.startswith("K:"):
        prefix, value = "K:", value[2:]
    value, comment = _split_comment(value)
    try:
        return prefix + _move_key(value, semitones)[0] + comment
    except _Fail:
        return None


def _split_comment(value: str) -> tuple[str, str]:
    cut = value.find("%")
    return (value, "") if cut < 0 else (value[:cut], value[cut:])


def _has_tonic(value: str) -> bool:
    return bool(re.match(r"\s*[A-G]", value))


class _Voice:
    __slots__ = ("old", "new", "steps", "bar_old", "bar_new", "cache")

    def __init__(self, old: _Key, new: _Key, steps: int):
        self.old, self.new, self.steps = old, new, steps
        self.bar_old: dict[int, int] = {}
        self.bar_new: dict[int, int] = {}
        self.cache: dict[str, tuple] = {}


class _Transposer:
    def __init__(self, k: int, old: _Key, new: _Key, steps: int):
        self.k = k
        self.header = (old, new, steps)
        self.voices: dict[str, _Voice] = {}
        self.voice = _Voice(old, new, steps)

    # -- fields -----------------------------------------------------------------------------
    def key_field(self, value: str) -> str:
        body, comment = _split_comment(value)
        if not _has_tonic(body):
            if not all(_KEY_SETTING.fullmatch(t) for t in body.split()):
                raise _Fail(value)  # "none", "HP", accidentals without a tonic
            return value  # only a clef or other settings: the key stays
        new_value, old, new, steps = _move_key(body, self.k)
        v = self.voice
        v.old, v.new, v.steps = old, new, steps
        v.cache = {}
        return new_value + comment

    def voice_field(self, value: str) -> None:
        name = value.split()[0] if value.split() else ""
        if name not in self.voices:
            self.voices[name] = _Voice(*self.header)
        self.voice = self.voices[name]

    # -- music ------------------------------------------------------------------------------
    def token(self, m: re.Match) -> str:
        kind = m.lastgroup
        if kind == "nt":
            return self.note(m)
        if kind == "bar":
            v = self.voice
            v.bar_old.clear()
            v.bar_new.clear()
            return m[0]
        if kind == "st":
            return self.chord_symbol(m[0])
        if kind == "fd":
            label = m["fl"]
            if label == "K":
                return "[K:" + self.key_field(m["fv"]) + "]"
            if label == "V":
                self.voice_field(m["fv"])
            return m[0]
        if kind == "mt":
            raise _Fail("microtonal accidental")
        return m[0]  # comment, decoration

    def note(self, m: re.Match) -> str:
        v = self.voice
        text = m[0]
        hit = v.cache.get(text)
        if hit is not None:  # same token, same key: same answer unless the bar says otherwise
            out, idx, old_acc, nidx, need = hit
            if old_acc is not None:
                v.bar_old[idx] = old_acc
                v.bar_new[nidx] = need
                return out
            if idx not in v.bar_old and nidx not in v.bar_new:
                return out
        let = m["let"]
        idx = _INDEX[let.upper()]
        oc = m["oc"]
        octave = (1 if let.islower() else 0) + oc.count("'") - oc.count(",")
        acc = m["acc"]
        if acc:
            old_acc = _ACC_VALUE[acc]
            v.bar_old[idx] = old_acc
        else:
            old_acc = v.bar_old.get(idx, v.old.sig[idx])
        pitch = 60 + 12 * octave + _NATURAL[idx] + old_acc + self.k
        if not 0 <= pitch <= 127:
            raise _Fail("out of range")
        n = 7 * octave + idx + v.steps
        need = pitch - 60 - _abs(n)
        nidx = n % 7
        if not acc and need == v.bar_new.get(nidx, v.new.sig[nidx]):
            out = _name(n)
            if idx not in v.bar_old and nidx not in v.bar_new:
                v.cache[text] = (out, idx, None, nidx, need)
            return out
        shift, need = _spell(n, need, 2)
        n += shift
        v.bar_new[n % 7] = need
        out = _ACC_TEXT[need] + _name(n)
        if acc:
            v.cache[text] = (out, idx, old_acc, n % 7, need)
        return out

    def chord_symbol(self, text: str) -> str:
        if len(text) < 2 or text[1] not in "ABCDEFG":
            return text  # annotation ("^...", "_...", "<...", ">...", "@...") or other text
        closed = len(text) > 2 and text.endswith('"')
        inner = text[1:-1] if closed else text[1:]
        if not _CHORD_SYMBOL.fullmatch(inner):
            return text  # "Fine", "D.C.", "Coda", "Gaily": text, not a chord
        return '"' + _CHORD_TOKEN.sub(self.chord_token, inner) + ('"' if closed else "")

    def chord_token(self, t: re.Match) -> str:
        out = self.chord_note(t[1], t[2]) + t[3]
        return out + "/" + self.chord_note(t[4], t[5]) if t[4] else out

    def chord_note(self, letter: str, acc: str) -> str:
        idx = _INDEX[letter.upper()]
        n = idx + self.voice.steps
        need = (_NATURAL[idx] + _TONIC_ACC[acc] + self.k - _NATURAL[n % 7] + 6) % 12 - 6
        shift, need = _spell(n % 7, need, 1)
        name = _LETTERS[(n + shift) % 7]
        return (name if letter.isupper() else name.lower()) + _TONIC_TEXT[need]


def _name(n: int) -> str:
    octave, idx = divmod(n, 7)
    if octave >= 1:
        return _LETTERS[idx].lower() + "'" * (octave - 1)
    return _LETTERS[idx] + "," * -octave


def transpose_abc(text: str, semitones: int) -> str | None:
    """The ABC tune ``text`` (one ``X:`` tune) moved by ``semitones``; None if it cannot be.

    See the module docstring for what changes and what is kept verbatim.
    """
    lines = text.split("\n")
    head = next((i for i, line in enumerate(lines) if line.startswith("K:")), None)
    if head is None:
        return None
    if semitones == 0:  # any tune stays itself, even in a key this transposer cannot move
        return text
    value, comment = _split_comment(lines[head][2:])
    try:
        new_value, old, new, steps = _move_key(value, semitones)
    except _Fail:
        return None
    if semitones == 0:
        return text
    out = lines[:head] + ["K:" + new_value + comment]
    tr = _Transposer(semitones, old, new, steps)
    sub = _MUSIC.sub
    token = tr.token
    in_text = False
    try:
        for i in range(head + 1, len(lines)):
            line = lines[i]
            if in_text:
                in_text = not line.startswith("%%endtext")
                out.append(line)
            elif not line.strip():
                out.extend(lines[i:])  # the tune ends at its first empty line
                break
            elif line.startswith("%"):
                in_text = line.startswith("%%begintext")
                out.append(line)
            elif (f := _FIELD_LINE.match(line)) is not None:
                if f[1] == "K":
                    out.append("K:" + tr.key_field(f[2]))
                else:
                    if f[1] == "V":
                        tr.voice_field(f[2])
                    out.append(line)
            else:
                out.append(sub(token, line))
    except _Fail:
        return None
    return "\n".join(out)
