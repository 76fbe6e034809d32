"""Format registries: name -> reader/writer, with each format's module imported on first use.

Listing format names reads a static name -> module table and imports nothing, so the CLI can
build its ``--format`` choices without numpy, torch or PIL. A format's module registers its
function with one line (``IMPORTERS.register("npz", read_npz)``); the table says which module to
import when that name is first used.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, overload

from ..errors import UnknownNameError

#: The kind of function a registry holds (readers, writers).
_Fn = TypeVar("_Fn", bound=Callable[..., Any])


class FormatRegistry(Mapping[str, _Fn]):
    """A read-only mapping of format names to functions, loading format modules lazily."""

    def __init__(self, kind: str, package: str, modules: Mapping[str, str]):
        self.kind = kind
        self.package = package
        self._modules = dict(modules)
        self._entries: dict[str, _Fn] = {}

    @property
    def names(self) -> tuple[str, ...]:
        """Every format name, in table order (imports nothing)."""
        return tuple(self._modules)

    @overload
    def register(self, name: str, fn: _Fn) -> _Fn: ...

    @overload
    def register(self, name: str, fn: None = None) -> Callable[[_Fn], _Fn]: ...

    def register(self, name: str, fn: _Fn | None = None) -> _Fn | Callable[[_Fn], _Fn]:
        """Register ``fn`` under ``name`` (listed in the module table); without ``fn``, a decorator."""

        def add(f: _Fn) -> _Fn:
            if name not in self._modules:
                raise ValueError(f"{self.kind} {name!r} is not in the module table of {self.package}")
            if name in self._entries and self._entries[name] is not f:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = f
            return f

        return add(fn) if fn is not None else add

    def __getitem__(self, name: str) -> _Fn:
        if name not in self._modules:
            close = difflib.get_close_matches(str(name), self._modules, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self._modules)})")
        if name not in self._entries:
            importlib.import_module(f"{self.package}.{self._modules[name]}")
            if name not in self._entries:  # a table entry whose module forgot its line: a bug
                raise RuntimeError(
                    f"{self.package}.{self._modules[name]} did not register {self.kind} {name!r}"
                )
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)
