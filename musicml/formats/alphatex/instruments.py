"""General MIDI programs, default tunings and percussion articulations as alphaTab knows them."""

from __future__ import annotations

import re

_GM = """Acoustic Grand Piano|Bright Acoustic Piano|Electric Grand Piano|Honky-tonk Piano|
Electric Piano 1|Electric Piano 2|Harpsichord|Clavinet|Celesta|Glockenspiel|Music Box|Vibraphone|
Marimba|Xylophone|Tubular Bells|Dulcimer|Drawbar Organ|Percussive Organ|Rock Organ|Church Organ|
Reed Organ|Accordion|Harmonica|Tango Accordion|Acoustic Guitar (nylon)|Acoustic Guitar (steel)|
Electric Guitar (jazz)|Electric Guitar (clean)|Electric Guitar (muted)|Overdriven Guitar|
Distortion Guitar|Guitar Harmonics|Acoustic Bass|Electric Bass (finger)|Electric Bass (pick)|
Fretless Bass|Slap Bass 1|Slap Bass 2|Synth Bass 1|Synth Bass 2|Violin|Viola|Cello|Contrabass|
Tremolo Strings|Pizzicato Strings|Orchestral Harp|Timpani|String Ensemble 1|String Ensemble 2|
Synth Strings 1|Synth Strings 2|Choir Aahs|Voice Oohs|Synth Voice|Orchestra Hit|Trumpet|Trombone|
Tuba|Muted Trumpet|French Horn|Brass Section|Synth Brass 1|Synth Brass 2|Soprano Sax|Alto Sax|
Tenor Sax|Baritone Sax|Oboe|English Horn|Bassoon|Clarinet|Piccolo|Flute|Recorder|Pan Flute|
Blown Bottle|Shakuhachi|Whistle|Ocarina|Lead 1 (square)|Lead 2 (sawtooth)|Lead 3 (calliope)|
Lead 4 (chiff)|Lead 5 (charang)|Lead 6 (voice)|Lead 7 (fifths)|Lead 8 (bass + lead)|Pad 1 (new age)|
Pad 2 (warm)|Pad 3 (polysynth)|Pad 4 (choir)|Pad 5 (bowed)|Pad 6 (metallic)|Pad 7 (halo)|
Pad 8 (sweep)|FX 1 (rain)|FX 2 (soundtrack)|FX 3 (crystal)|FX 4 (atmosphere)|FX 5 (brightness)|
FX 6 (goblins)|FX 7 (echoes)|FX 8 (sci-fi)|Sitar|Banjo|Shamisen|Koto|Kalimba|Bagpipe|Fiddle|Shanai|
Tinkle Bell|Agogo|Steel Drums|Woodblock|Taiko Drum|Melodic Tom|Synth Drum|Reverse Cymbal|
Guitar Fret Noise|Breath Noise|Seashore|Bird Tweet|Telephone Ring|Helicopter|Applause|Gunshot"""

_NORM = re.compile(r"[^a-z0-9]")


def normalize_name(name: str) -> str:
    return _NORM.sub("", name.lower())


GM_NAMES: list[str] = [normalize_name(n) for n in _GM.replace("\n", "").split("|")]
assert len(GM_NAMES) == 128
GM_PROGRAMS: dict[str, int] = {n: i for i, n in enumerate(GM_NAMES)}
GM_PROGRAMS.setdefault("honkytonkpiano", 3)
GM_PROGRAMS.setdefault("synthvoice", 54)
GM_PROGRAMS.setdefault("bassandlead", 87)

DEFAULT_PROGRAM = 25  # alphaTab's default track: acoustic guitar (steel)

STANDARD_TUNING = (64, 59, 55, 50, 45, 40)  # E4 B3 G3 D3 A2 E2, string 1 first


def program_of(value) -> int | None:
    """GM program of an ``instrument`` value (number or name); None if unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        v = int(value)
        return v if 0 <= v <= 127 else None
    return GM_PROGRAMS.get(normalize_name(str(value)))


def program_or_default(value) -> int:
    """alphaTab's reading of an instrument value: unknown names give program 0."""
    p = program_of(value)
    return 0 if p is None else p


def default_tuning(program: int) -> tuple[int, ...]:
    """alphaTab's tuning for a staff without ``\\tuning`` (``detectTuningForStaff``)."""
    if program == 15 or 24 <= program <= 31:
        return STANDARD_TUNING
    if 32 <= program <= 39 or program == 43:
        return (43, 38, 33, 28)
    if program in (40, 44, 45, 48, 49, 50, 51):
        return (52, 57, 50, 43)
    if program == 41:
        return (57, 50, 43, 36)
    if program == 42:
        return (45, 38, 31, 24)
    if program == 105:
        return (50, 47, 43, 38, 55)
    if program == 106:
        return (57, 52, 45)
    if program == 107:
        return (52, 45, 38, 31)
    if program == 110:
        return (64, 57, 50, 43)
    return ()


_PITCH = re.compile(r"([a-gA-G])(bb|b|##|#|x)?(-?[0-9]+)")
_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_ACC = {None: 0, "#": 1, "##": 2, "x": 2, "b": -1, "bb": -2}


def parse_pitch(text: str) -> int | None:
    """MIDI number of a pitch name such as ``E4``, ``C#5``, ``Bb2`` (C4 = 60); None if not one."""
    m = _PITCH.fullmatch(text)
    if not m:
        return None
    pitch = (int(m.group(3)) + 1) * 12 + _PC[m.group(1).lower()] + _ACC[m.group(2)]
    return pitch if 0 <= pitch <= 127 else None


_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def pitch_name(pitch: int) -> str:
    return f"{_NAMES[pitch % 12]}{pitch // 12 - 1}"


# alphaTab's PercussionMapper: articulation names -> articulation ids (input MIDI numbers),
# the current Guitar Pro names plus the historical ones alphaTab still accepts
_ARTICULATIONS = """Snare (hit)=38|Snare (side stick)=37|Snare (rim shot)=91|Hi-Hat (closed)=42|
Hi-Hat (half)=92|Hi-Hat (open)=46|Pedal Hi-Hat (hit)=44|Kick (hit)=35|Kick (hit) 2=36|
High Floor Tom (hit)=50|High Tom (hit)=48|Mid Tom (hit)=47|Low Tom (hit)=45|Very Low Tom (hit)=43|
Ride (edge)=93|Ride (middle)=51|Ride (bell)=53|Ride (choke)=94|Splash (hit)=55|Splash (choke)=95|
China (hit)=52|China (choke)=96|Crash high (hit)=49|Crash high (choke)=97|Crash medium (hit)=57|
Crash medium (choke)=98|Cowbell low (hit)=99|Cowbell low (tip)=100|Cowbell medium (hit)=56|
Cowbell medium (tip)=101|Cowbell high (hit)=102|Cowbell high (tip)=103|Woodblock low (hit)=77|
Woodblock high (hit)=76|Bongo High (hit)=60|Bongo High (mute)=104|Bongo High (slap)=105|
Bongo Low (hit)=61|Bongo Low (mute)=106|Bongo Low (slap)=107|Timbale low (hit)=66|
Timbale high (hit)=65|Agogo low (hit)=68|Agogo high (hit)=67|Conga low (hit)=64|
Conga low (slap)=108|Conga low (mute)=109|Conga high (hit)=63|Conga high (slap)=110|
Conga high (mute)=62|Whistle low (hit)=72|Whistle high (hit)=71|Guiro (hit)=73|
Guiro (scrap-return)=74|Surdo (hit)=86|Surdo (mute)=87|Tambourine (hit)=54|Tambourine (return)=111|
Tambourine (roll)=112|Tambourine (hand)=113|Cuica (open)=79|Cuica (mute)=78|Vibraslap (hit)=58|
Triangle (hit)=81|Triangle (mute)=80|Grancassa (hit)=114|Piatti (hit)=115|Piatti (hand)=116|
Cabasa (hit)=69|Cabasa (return)=117|Castanets (hit)=85|Claves (hit)=75|Left Maraca (hit)=70|
Left Maraca (return)=118|Right Maraca (hit)=119|Right Maraca (return)=120|Shaker (hit)=82|
Shaker (return)=122|Bell Tree (hit)=84|Bell Tree (return)=123|Jingle Bell (hit)=83|
Tinkle Bell (hit)=83|Golpe (thumb)=124|Golpe (finger)=125|Hand Clap (hit)=39|
Electric Snare (hit)=40|Snare (side stick) 2=31|Low Floor Tom (hit)=41|Ride (edge) 2=59|
Ride (middle) 2=126|Ride (bell) 2=127|Ride (choke) 2=29|Reverse Cymbal (hit)=30|
Metronome (hit)=33|Metronome (bell)=34|Hand (hit)=61|Tinkle Bell (hat)=83|Cymbal (hit)=30|
Snare (side stick) 3=37|Snare (hit) 2=38|Snare (hit) 3=40|Agogo tow (hit)=68|Triangle (rnute)=80|
Hand (mute)=104|Hand (slap)=105|Hand (mute) 2=106|Hand (slap) 2=107|Piatti (hat)=115|
Bell Tee (return)=123"""

ARTICULATION_NAMES: dict[str, int] = {}
for _item in _ARTICULATIONS.replace("\n", "").split("|"):
    _name, _id = _item.rsplit("=", 1)
    ARTICULATION_NAMES[_name.lower()] = int(_id)
# the same names written without spaces and punctuation ("KickHit", "HiHatOpen": the
# names `\articulation defaults` brings in), compared case-insensitively
ARTICULATION_KEYS: dict[str, int] = {normalize_name(k): v for k, v in ARTICULATION_NAMES.items()}


def articulation_id(name: str) -> int | None:
    """Articulation id of a percussion articulation name (case and punctuation ignored)."""
    v = ARTICULATION_NAMES.get(name.lower())
    if v is None:
        v = ARTICULATION_KEYS.get(normalize_name(name))
    return v


# articulation id -> sounding GM drum note, where they differ (alphaTab's outputMidiNumber;
# ids 105-118 and 121 approximated from their names)
_ARTICULATION_OUTPUT = {
    29: 59,
    30: 49,
    31: 40,
    33: 37,
    34: 38,
    94: 51,
    91: 38,
    92: 46,
    93: 51,
    95: 55,
    96: 52,
    97: 49,
    98: 57,
    99: 56,
    100: 56,
    101: 56,
    102: 56,
    103: 56,
    104: 60,
    105: 60,
    106: 61,
    107: 61,
    108: 64,
    109: 64,
    110: 63,
    111: 54,
    112: 54,
    113: 54,
    114: 36,
    115: 49,
    116: 49,
    117: 69,
    118: 70,
    119: 70,
    120: 70,
    121: 70,
    122: 54,
    123: 53,
    124: 62,
    125: 62,
    126: 59,
    127: 59,
}
ARTICULATION_IDS = frozenset(ARTICULATION_NAMES.values()) | frozenset(range(27, 88))


def articulation_output(articulation: int) -> int:
    """The GM drum note an articulation id sounds as."""
    return _ARTICULATION_OUTPUT.get(articulation, articulation)
