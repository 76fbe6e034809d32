"""The one name -> entry registry, for networks, augmentations, datasets, methods, strategies and
import/export formats alike.

An entry registers itself with one line in its own file (timm style): ``REG.register("name", obj)``
or ``@REG.register("name")``. A registry built with ``lazy={"name": "module"}`` knows its names
without importing anything (the CLI builds ``--format`` choices without numpy or torch) and
imports an entry's module the first time that name is used.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar, overload

from .errors import UnknownNameError

T = TypeVar("T")

__all__ = ["Registry", "Factory"]


class Registry(Mapping[str, T]):
    """Canonical lowercase names -> entries (usually factories); unknown names get close matches.

    ``lazy`` maps each name to the module that registers it (relative to ``package`` when given):
    then only those names may be registered, ``names()`` keeps the table's order, and getting an
    entry imports its module first.
    """

    def __init__(self, kind: str, *, lazy: Mapping[str, str] | None = None, package: str | None = None):
        self.kind = kind
        self._modules = {k.lower(): v for k, v in (lazy or {}).items()}
        self._lazy = lazy is not None
        self._package = package
        self._entries: dict[str, T] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T) -> T: ...
    def register(self, name: str, obj: T | None = None) -> T | Callable[[T], T]:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator."""

        def add(o: T) -> T:
            key = name.lower()
            if self._lazy and key not in self._modules:
                raise ValueError(f"{self.kind} {key!r} is not in the module table of {self._package}")
            if key in self._entries and self._entries[key] is not o:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = o
            return o

        return add(obj) if obj is not None else add

    def get(self, name: str) -> T:  # type: ignore[override]  # raises instead of a default
        """Return the entry for ``name`` or raise UnknownNameError with close matches."""
        key = name.lower() if isinstance(name, str) else name
        if key not in self:
            known = self.names()
            close = difflib.get_close_matches(str(key), known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(known)})")
        if key not in self._entries:  # a lazy name whose module is not imported yet
            module = self._modules[key]
            importlib.import_module(f"{self._package}.{module}" if self._package else module)
            if key not in self._entries:  # a table entry whose module forgot its line: a bug
                raise RuntimeError(f"{module} did not register {self.kind} {key!r}")
        return self._entries[key]

    def names(self) -> list[str]:
        """Registered names: the module table's order for a lazy registry, else sorted."""
        return list(self._modules) if self._lazy else sorted(self._entries)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return key in self._modules if self._lazy else key in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


Factory = Callable[..., T]
