"""Helpers over the library's settings dataclasses (one per stage, each field with its default).

The Dagster ``Config`` classes (``pipelines/config.py``) and the ``python -m musicml.train`` flags
are generated from those dataclasses with these helpers, so a setting is written once:

- :func:`field_docs`: each field's description, from ``field(metadata={"doc": ...})`` or the
  ``# comment`` on its line in the class body;
- :func:`defaults`, :func:`from_dict` (refuses unknown keys), :func:`merged` (a config with
  keyword overrides, for the ``workflow`` steps' keyword compatibility);
- :func:`add_arguments` / :func:`overrides_from_args`: argparse flags from the fields.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import json
import tokenize
import types
import typing
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def _fields(cls: type) -> tuple[dataclasses.Field, ...]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    return dataclasses.fields(cls)


@cache
def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of the dataclass fields (``from __future__ import annotations`` safe)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in _fields(cls)}


@cache
def field_docs(cls: type) -> dict[str, str]:
    """``{field: description}`` from ``metadata["doc"]``, else the trailing ``# comment`` of the
    field's line in the class source; fields without either are absent."""
    docs: dict[str, str] = {}
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        source = ""
    names = {f.name for f in _fields(cls)}
    pending: str | None = None  # a field whose line has started, waiting for its comment
    depth = 0
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif tok.type == tokenize.NAME and depth == 0 and tok.start[1] == 4 and tok.string in names:
            pending = tok.string
        elif tok.type == tokenize.COMMENT and pending:
            docs.setdefault(pending, tok.string.lstrip("#").strip())
            pending = None
        elif tok.type == tokenize.NEWLINE:
            pending = None
    for f in _fields(cls):
        if f.metadata.get("doc"):
            docs[f.name] = f.metadata["doc"]
    return docs


def field_default(f: dataclasses.Field) -> Any:
    """The field's default (calling its factory); ``dataclasses.MISSING`` when it has none."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def defaults(cls: type) -> dict[str, Any]:
    """``{field: default}`` of a dataclass whose fields all have defaults."""
    return {f.name: field_default(f) for f in _fields(cls)}


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """``cls(**data)``, refusing unknown keys with a message that lists the known ones."""
    known = [f.name for f in _fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {unknown}; known: {known}")
    return cls(**data)


def merged(cls: type[T], config: T | None, overrides: dict[str, Any]) -> T:
    """``config`` (or the defaults) with ``overrides`` applied; unknown keys raise ``TypeError``."""
    known = {f.name for f in _fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown {cls.__name__} settings: {unknown}; known: {sorted(known)}")
    if config is not None and not isinstance(config, cls):
        raise TypeError(f"expected a {cls.__name__}, got {type(config).__name__}")
    return dataclasses.replace(config if config is not None else cls(), **overrides)


# ---------------------------------------------------------------------------------------------
# argparse from a dataclass


def optional_inner(tp: Any) -> tuple[Any, bool]:
    """``(T, True)`` for ``T | None`` / ``Optional[T]``, else ``(tp, False)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _none_or(parse):
    def convert(text: str):
        return None if text.lower() == "none" else parse(text)

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _json_object(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = (),
                  notes: dict[str, str] | None = None) -> None:
    """One ``--flag`` per field of ``cls`` (``seq_len`` → ``--seq-len``), absent from the namespace unless given,
    help from :func:`field_docs` plus the field's default; ``notes`` add text to a field's help.
    ``T | None`` fields accept ``none``; ``dict`` fields take JSON; ``tuple`` fields take a list."""
    docs, types_, notes = field_docs(cls), field_types(cls), notes or {}
    group = parser.add_argument_group(f"{cls.__name__} fields")
    for f in _fields(cls):
        if f.name in skip:
            continue
        tp, nullable = optional_inner(types_[f.name])
        origin = typing.get_origin(tp) or tp
        default = field_default(f)
        text = " ".join(x for x in (docs.get(f.name, ""), notes.get(f.name, "")) if x)
        help_ = f"{text} (default: {json.dumps(default) if isinstance(default, dict) else default})".strip()
        flag = "--" + f.name.replace("_", "-")
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_.replace("%", "%%")}
        if tp is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
            continue
        if origin is dict:
            kw.update(type=_json_object, metavar="JSON")
        elif origin in (tuple, list):
            (inner, *_) = typing.get_args(tp) or (str,)
            kw.update(type=inner, nargs="+")
        elif tp in (int, float, str):
            kw.update(type=_none_or(tp) if nullable else tp, metavar=tp.__name__.upper())
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: no command-line form for {tp!r}")
        group.add_argument(flag, **kw)


def overrides_from_args(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` given on the command line."""
    out = {}
    given = vars(args)
    for f in _fields(cls):
        if f.name not in given:
            continue
        value = given[f.name]
        tp, _ = optional_inner(field_types(cls)[f.name])
        out[f.name] = tuple(value) if value is not None and (typing.get_origin(tp) or tp) is tuple else value
    return out
