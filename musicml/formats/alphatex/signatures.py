"""Which metadata tags and properties exist and how their unparenthesized values are read.

Transcribed from alphaTab's ``AlphaTex1LanguageDefinitions`` (the generated signature tables
of alphaTab 1.7/1.8). A signature is a list of overloads; an overload a list of parameters
``(types, mode, allowed_values, reserved_identifiers)`` with types from ``i`` (identifier),
``s`` (string), ``n`` (number), ``l`` (a parenthesized list). ``None`` as signature: the tag
or property takes no values. An overload whose first element is ``STRICT`` only applies to
parenthesized value lists (alphaTab's ``isStrict``).
"""

from __future__ import annotations

REQ, OPT, REQF, OPTF, REQLIST, LIST = 0, 1, 2, 3, 4, 5
STRICT = "strict"

ALIGN = ("left", "center", "right")


def _p(types: str, mode: int, allowed=None, reserved=None):
    return (
        frozenset(types),
        mode,
        frozenset(allowed) if allowed else None,
        frozenset(reserved) if reserved else None,
    )


_SCORE_INFO = [[_p("si", REQ), _p("s", OPT), _p("is", OPT, ALIGN)]]
_SCORE_TEMPLATE = [[_p("s", REQ), _p("is", OPT, ALIGN)]]
_NUM = [[_p("n", REQ)]]
_NUM_LIST = [[_p("n", LIST)]]


def _enum(*values):
    return [[_p("is", REQ, values)]]


_INSTRUMENT = [[_p("n", REQ)], [_p("si", REQ)], [_p("i", REQ, ["percussion"])]]

SCORE_TAGS = {
    "title": _SCORE_INFO,
    "subtitle": _SCORE_INFO,
    "artist": _SCORE_INFO,
    "album": _SCORE_INFO,
    "words": _SCORE_INFO,
    "music": _SCORE_INFO,
    "wordsandmusic": _SCORE_TEMPLATE,
    "copyright": _SCORE_INFO,
    "copyright2": _SCORE_TEMPLATE,
    "instructions": [[_p("si", REQ)]],
    "notices": [[_p("si", REQ)]],
    "tab": _SCORE_INFO,
    "systemslayout": _NUM_LIST,
    "defaultsystemslayout": _NUM,
    "showdynamics": None,
    "hidedynamics": None,
    "usesystemsignseparator": None,
    "tuningdisplaymode": _enum("score", "staff"),
    "multibarrest": None,
    "bracketextendmode": _enum("nobrackets", "groupstaves", "groupsimilarinstruments"),
    "singletracktracknamepolicy": _enum("hidden", "firstsystem", "allsystems"),
    "multitracktracknamepolicy": _enum("hidden", "firstsystem", "allsystems"),
    "firstsystemtracknamemode": _enum("fullname", "shortname"),
    "othersystemstracknamemode": _enum("fullname", "shortname"),
    "firstsystemtracknameorientation": _enum("horizontal", "vertical"),
    "othersystemstracknameorientation": _enum("horizontal", "vertical"),
    "extendbarlines": None,
    "chorddiagramsinscore": [[_p("i", OPT, ["true", "false"])]],
    "hideemptystaves": None,
    "hideemptystavesinfirstsystem": None,
    "showsinglestaffbrackets": None,
    "defaultbarnumberdisplay": _enum("allbars", "firstofsystem", "hide"),
}

STAFF_TAGS = {
    "tuning": [[_p("is", REQ, ["piano", "none", "voice"])], [_p("is", LIST)]],
    "chord": [[_p("si", REQ), _p("isn", LIST)]],
    "capo": _NUM,
    "lyrics": [[_p("s", REQ)], [_p("n", REQ), _p("s", REQ)]],
    "articulation": [[_p("i", REQ, ["defaults"])], [_p("si", REQ), _p("n", REQ)]],
    "displaytranspose": _NUM,
    "transpose": _NUM,
    "instrument": _INSTRUMENT,
}

STRUCTURAL_TAGS = {
    "track": [[_p("s", OPT), _p("s", OPT)]],
    "staff": None,
    "voice": None,
}

_BARLINES = (
    "automatic",
    "dashed",
    "dotted",
    "heavy",
    "heavyheavy",
    "heavylight",
    "lightheavy",
    "lightlight",
    "none",
    "regular",
    "short",
    "tick",
)
_KEYS = (
    "cb",
    "gb",
    "db",
    "ab",
    "eb",
    "bb",
    "f",
    "c",
    "g",
    "d",
    "a",
    "e",
    "b",
    "f#",
    "c#",
    "cbmajor",
    "abminor",
    "gbmajor",
    "ebminor",
    "dbmajor",
    "bbminor",
    "abmajor",
    "fminor",
    "ebmajor",
    "cminor",
    "bbmajor",
    "gminor",
    "fmajor",
    "dminor",
    "cmajor",
    "aminor",
    "gmajor",
    "eminor",
    "dmajor",
    "bminor",
    "amajor",
    "f#minor",
    "emajor",
    "c#minor",
    "bmajor",
    "g#minor",
    "f#major",
    "d#minor",
    "c#major",
    "a#minor",
)
_OTTAVA = ("15ma", "8va", "regular", "8vb", "15mb")
_TRIPLET_FEEL = (
    "none",
    "triplet16th",
    "triplet8th",
    "dotted16th",
    "dotted8th",
    "scottish16th",
    "scottish8th",
    "no",
    "notripletfeel",
    "t16",
    "triplet-16th",
    "t8",
    "triplet-8th",
    "d16",
    "dotted-16th",
    "d8",
    "dotted-8th",
    "s16",
    "scottish-16th",
    "s8",
    "scottish-8th",
)
_JUMPS = (
    "fine",
    "segno",
    "segnosegno",
    "coda",
    "doublecoda",
    "dacapo",
    "dacapoalcoda",
    "dacapoaldoublecoda",
    "dacapoalfine",
    "dalsegno",
    "dalsegnoalcoda",
    "dalsegnoaldoublecoda",
    "dalsegnoalfine",
    "dalsegnosegno",
    "dalsegnosegnoalcoda",
    "dalsegnosegnoaldoublecoda",
    "dalsegnosegnoalfine",
    "dacoda",
    "dadoublecoda",
)

BAR_TAGS = {
    "ts": [[_p("is", REQ, ["common"])], [_p("n", REQ), _p("n", REQ)]],
    "ro": None,
    "rc": _NUM,
    "ae": [[_p("nl", REQLIST)]],
    "ks": [[_p("is", REQ, _KEYS)]],
    "clef": [
        [
            _p(
                "ins",
                REQ,
                ["neutral", "c3", "c4", "f4", "g2", "n", "alto", "tenor", "bass", "treble"],
            )
        ]
    ],
    "ottava": [[_p("is", REQ, _OTTAVA)]],
    "tempo": [
        [_p("n", REQF), _p("s", OPT)],
        [STRICT, _p("n", REQF), _p("s", REQ), _p("n", OPT), _p("i", OPT, ["hide"])],
    ],
    "tf": [[_p("ins", REQ, _TRIPLET_FEEL)]],
    "ac": None,
    "section": [[_p("si", REQ)], [_p("si", REQ), _p("si", REQ, None, ["x", "-", "r"])]],
    "jump": [[_p("is", REQ, _JUMPS)]],
    "ft": None,
    "simile": _enum("none", "simple", "firstofdouble", "secondofdouble"),
    "barlineleft": [[_p("is", REQ, _BARLINES)]],
    "barlineright": [[_p("is", REQ, _BARLINES)]],
    "scale": [[_p("n", REQF)]],
    "width": [[_p("n", REQF)]],
    "sync": [[_p("n", REQ), _p("n", REQ), _p("n", REQ), _p("n", OPTF)]],
    "accidentals": _enum("auto", "explicit"),
    "spd": [[_p("n", REQF)]],
    "sph": [[_p("n", REQF)]],
    "spu": [[_p("n", REQF)]],
    "db": None,
    "voicemode": _enum("staffwise", "barwise"),
    "barnumberdisplay": _enum("allbars", "firstofsystem", "hide"),
    "beaming": [[_p("n", REQ), _p("n", LIST)]],
}

ALL_TAGS: dict[str, object] = {}
TAG_KIND: dict[str, str] = {}
for _kind, _table in (
    ("score", SCORE_TAGS),
    ("staff", STAFF_TAGS),
    ("structural", STRUCTURAL_TAGS),
    ("bar", BAR_TAGS),
):
    for _name, _sig in _table.items():
        if _name not in ALL_TAGS:  # lookup order as alphaTab: score, staff, structural, bar
            ALL_TAGS[_name] = _sig
            TAG_KIND[_name] = _kind

_BOOL_OPT = [
    [],
    [_p("s", REQ, ["true", "false"])],
    [_p("i", REQ, ["true", "false"])],
    [_p("n", REQ, ["1", "0"])],
]

METADATA_PROPERTIES: dict[str, dict[str, object]] = {
    "track": {
        "color": [[_p("s", REQ)]],
        "systemslayout": _NUM_LIST,
        "defaultsystemslayout": _NUM,
        "solo": None,
        "mute": None,
        "volume": _NUM,
        "balance": _NUM,
        "instrument": _INSTRUMENT,
        "bank": _NUM,
        "multibarrest": None,
    },
    "staff": {"score": [[_p("n", OPT)]], "tabs": None, "slash": None, "numbered": None},
    "tuning": {"hide": None, "label": [[_p("s", REQ)]]},
    "chord": {
        "firstfret": _NUM,
        "barre": _NUM_LIST,
        "showdiagram": _BOOL_OPT,
        "showfingering": _BOOL_OPT,
        "showname": _BOOL_OPT,
    },
}

_TUPLET = [[_p("n", REQ, ["3", "5", "6", "7", "9", "10", "12"])], [_p("n", REQ), _p("n", REQ)]]
DURATION_CHANGE_PROPERTIES = {"tu": _TUPLET}

_WHAMMY = ("custom", "dive", "dip", "hold", "predive", "predivedive")
_BEND_STYLE = ("default", "gradual", "fast")
_BEND = (
    "custom",
    "bend",
    "release",
    "bendrelease",
    "hold",
    "prebend",
    "prebendbend",
    "prebendrelease",
)
_DYNAMICS = (
    "ppp",
    "pp",
    "p",
    "mp",
    "mf",
    "f",
    "ff",
    "fff",
    "pppp",
    "ppppp",
    "pppppp",
    "ffff",
    "fffff",
    "ffffff",
    "sf",
    "sfp",
    "sfpp",
    "fp",
    "rf",
    "rfz",
    "sfz",
    "sffz",
    "fz",
    "n",
    "pf",
    "sfzp",
)
_RASG = (
    "ii",
    "mi",
    "miitriplet",
    "miianapaest",
    "pmptriplet",
    "pmpanapaest",
    "peitriplet",
    "peianapaest",
    "paitriplet",
    "paianapaest",
    "amitriplet",
    "amianapaest",
    "ppp",
    "amii",
    "amip",
    "eami",
    "eamii",
    "peami",
)


def _bend_sig(kinds):
    return [
        [_p("n", LIST)],
        [_p("is", REQ, kinds), _p("n", LIST)],
        [_p("is", REQ, _BEND_STYLE), _p("n", LIST)],
        [_p("is", REQ, kinds), _p("is", REQ, _BEND_STYLE), _p("n", LIST)],
    ]


BEAT_PROPERTIES: dict[str, object] = {
    **{
        name: None
        for name in (
            "f",
            "fo",
            "vs",
            "v",
            "vw",
            "s",
            "p",
            "tt",
            "d",
            "dd",
            "su",
            "sd",
            "cre",
            "dec",
            "spd",
            "sph",
            "spu",
            "spe",
            "slashed",
            "ds",
            "glpf",
            "glpt",
            "waho",
            "wahc",
            "legatoorigin",
            "timer",
        )
    },
    "tu": _TUPLET,
    "txt": [[_p("si", REQ)]],
    "lyrics": [[_p("s", REQ)], [_p("n", REQ), _p("s", REQ)]],
    "tb": _bend_sig(_WHAMMY),
    "tbe": _bend_sig(_WHAMMY),
    "bu": [[_p("n", OPT)]],
    "bd": [[_p("n", OPT)]],
    "au": [[_p("n", OPT)]],
    "ad": [[_p("n", OPT)]],
    "ch": [[_p("si", REQ)]],
    "gr": [[_p("is", OPT, ["onbeat", "beforebeat", "bendgrace", "ob", "bb", "b"])]],
    "dy": [[_p("is", REQ, _DYNAMICS)]],
    "tempo": [
        [_p("n", REQ), _p("i", OPT, ["hide"])],
        [_p("n", REQ), _p("s", REQ), _p("i", OPT, ["hide"])],
    ],
    "volume": _NUM,
    "balance": _NUM,
    "tp": [[_p("n", REQ), _p("is", OPT, ["default", "buzzroll"])]],
    "barre": [[_p("n", REQ), _p("is", OPT, ["full", "half"])]],
    "rasg": [[_p("is", REQ, _RASG)]],
    "ot": [[_p("is", REQ, _OTTAVA)]],
    "instrument": _INSTRUMENT,
    "bank": _NUM,
    "fermata": [[_p("is", REQ, ["short", "medium", "long"]), _p("n", OPTF)]],
    "beam": [[_p("is", REQ, ["invert", "up", "down", "auto", "split", "merge", "splitsecondary"])]],
    "restdisplaypitch": [[_p("i", REQ)]],
}

NOTE_PROPERTIES: dict[str, object] = {
    "nh": None,
    "ah": [[_p("n", OPT)]],
    "th": [[_p("n", OPT)]],
    "ph": [[_p("n", OPT)]],
    "sh": [[_p("n", OPT)]],
    "fh": [[_p("n", OPT)]],
    **{
        name: None
        for name in (
            "v",
            "vw",
            "sl",
            "ss",
            "sib",
            "sia",
            "sou",
            "sod",
            "psu",
            "psd",
            "h",
            "lht",
            "g",
            "ac",
            "hac",
            "ten",
            "pm",
            "st",
            "lr",
            "x",
            "t",
            "turn",
            "iturn",
            "umordent",
            "lmordent",
            "string",
            "hide",
            "-",
        )
    },
    "tr": [[_p("n", REQ), _p("n", OPT, ["16", "32", "64"])]],
    "b": _bend_sig(_BEND),
    "be": _bend_sig(_BEND),
    "lf": [[_p("n", REQ, ["1", "2", "3", "4", "5"])]],
    "rf": [[_p("n", REQ, ["1", "2", "3", "4", "5"])]],
    "acc": [
        [
            _p(
                "is",
                REQ,
                (
                    "default",
                    "forcenone",
                    "forcenatural",
                    "forcesharp",
                    "forcedoublesharp",
                    "forceflat",
                    "forcedoubleflat",
                    "d",
                    "-",
                    "n",
                    "#",
                    "##",
                    "x",
                    "b",
                    "bb",
                ),
            )
        ]
    ],
    "slur": [[_p("s", REQ)], [_p("i", REQ)]],
}

# a note's braces accept note properties and beat properties (alphaTab applies the latter to the beat)
NOTE_OR_BEAT_PROPERTIES = {**BEAT_PROPERTIES, **NOTE_PROPERTIES}

VALID_DURATIONS = frozenset({-4, -2, 1, 2, 4, 8, 16, 32, 64, 128, 256})
