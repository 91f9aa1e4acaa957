"""Dagster ``Config`` classes generated from the library's settings dataclasses.

Each asset's run config is ``dagster_config(SomeLibraryConfig)``: the same fields, types and
defaults, the field comments as descriptions (what the launchpad shows), so no setting is
copied by hand. Dagster-only knobs (``launcher``, ``fresh``, ``seed_default_corpus``) come in
through ``extra``. Tuples become lists (Dagster config has no tuples) and back.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

import dagster as dg
import pydantic

from musicml import settings


class LibraryConfig(dg.Config):
    """Base of the generated classes: knows its library dataclass."""

    library: ClassVar[type]
    optional_fields: ClassVar[frozenset[str]] = frozenset()

    def library_fields(self) -> dict[str, Any]:
        """The dataclass fields' values; optional fields left at None are left out."""
        types_ = settings.field_types(self.library)
        out = {}
        for f in dataclasses.fields(self.library):
            value = getattr(self, f.name)
            if value is None and f.name in self.optional_fields:
                continue
            tp, _ = settings.optional_inner(types_[f.name])
            if value is not None and (typing.get_origin(tp) or tp) is tuple:
                value = tuple(value)
            out[f.name] = value
        return out

    def build(self, **overrides: Any):
        """The library config these fields describe."""
        return self.library(**{**self.library_fields(), **overrides})


def _dagster_type(tp: Any) -> Any:
    """The type Dagster config accepts for a dataclass field's type."""
    inner, nullable = settings.optional_inner(tp)
    origin = typing.get_origin(inner) or inner
    if origin is tuple:
        (item, *_) = typing.get_args(inner) or (str,)
        inner = list[item]
    elif origin is dict:
        inner = dict[str, Any]
    return inner | None if nullable else inner


def _dagster_default(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def dagster_config(cls: type, *, name: str | None = None, optional: typing.Iterable[str] = (),
                   optional_note: str = "", extra: dict[str, tuple[Any, Any, str]] | None = None,
                   doc: str | None = None) -> type[LibraryConfig]:
    """A ``dagster.Config`` subclass with the fields of dataclass ``cls``.

    ``optional`` fields become ``T | None = None`` (None: decided elsewhere, e.g. by a preset;
    ``optional_note`` says by what). ``extra`` adds Dagster-only fields as
    ``{name: (type, default, description)}``.
    """
    docs, types_ = settings.field_docs(cls), settings.field_types(cls)
    optional = frozenset(optional)
    unknown = optional - set(types_)
    if unknown:
        raise ValueError(f"{cls.__name__} has no fields {sorted(unknown)}")
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        default = settings.field_default(f)
        if default is dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name} has no default; a run config field needs one")
        tp = _dagster_type(types_[f.name])
        description = docs.get(f.name, "")
        if f.name in optional:
            tp = tp | None if not settings.optional_inner(tp)[1] else tp
            description = " ".join(x for x in (description, optional_note) if x)
            default = None
        fields[f.name] = (tp, pydantic.Field(default=_dagster_default(default), description=description or None))
    for key, (tp, default, description) in (extra or {}).items():
        if key in fields:
            raise ValueError(f"extra field {key!r} is already a field of {cls.__name__}")
        fields[key] = (tp, pydantic.Field(default=default, description=description))
    model = pydantic.create_model(name or cls.__name__, __base__=LibraryConfig, __module__=__name__, **fields)
    model.__doc__ = doc or f"Settings of ``{cls.__module__}.{cls.__name__}`` (defaults defined there)."
    model.library = cls
    model.optional_fields = optional
    return model
