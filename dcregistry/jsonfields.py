"""Typed reads of one JSON object's fields, for the records' ``from_json`` (torch-free).

Every error is a :class:`~dcregistry.records.RecordError` naming ``where.field`` and what is
wrong (missing, wrong type, not finite, unknown), so a reader of a stored document reports one
line instead of a ``KeyError``. Numbers are returned as they were stored (an int stays an int),
so that ``to_json(from_json(d)) == d`` holds exactly for what the producers write.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeGuard, TypeVar

from .records import RecordError

T = TypeVar("T")


def is_number(v: Any) -> bool:
    """A finite JSON number (int or float, never a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_int(v: Any) -> TypeGuard[int]:
    """A JSON integer (never a bool)."""
    return isinstance(v, int) and not isinstance(v, bool)


class Fields:
    """The fields of JSON object ``d`` found at ``where``.

    ``known``: the field names the record defines; any other key is refused (an unknown key is a
    misspelt or foreign document, not something to drop silently). Optional getters (``opt_*``)
    return None for a missing or null field.
    """

    def __init__(self, d: Any, where: str, known: Iterable[str] | None = None):
        if not isinstance(d, Mapping):
            raise RecordError(where, f"must be an object, got {type(d).__name__}")
        self.d = d
        self.where = where
        if known is not None:
            unknown = sorted(str(k) for k in d if k not in set(known))
            if unknown:
                raise RecordError(f"{where}.{unknown[0]}", "is not a field of this record")

    def has(self, key: str) -> bool:
        return key in self.d

    def _field(self, key: str) -> str:
        return f"{self.where}.{key}"

    def _req(self, key: str) -> Any:
        if key not in self.d:
            raise RecordError(self._field(key), "is missing")
        return self.d[key]

    def _check(self, key: str, v: Any, ok: Callable[[Any], bool], what: str) -> Any:
        if not ok(v):
            raise RecordError(self._field(key), f"must be {what}, got {v!r}"[:300])
        return v

    # --- required -------------------------------------------------------------------------------

    def string(self, key: str) -> str:
        v: str = self._check(key, self._req(key), lambda x: isinstance(x, str), "a string")
        return v

    def integer(self, key: str) -> int:
        v: int = self._check(key, self._req(key), is_int, "an integer")
        return v

    def number(self, key: str) -> float:
        v: float = self._check(key, self._req(key), is_number, "a finite number")
        return v

    def boolean(self, key: str) -> bool:
        v: bool = self._check(key, self._req(key), lambda x: isinstance(x, bool), "true or false")
        return v

    def mapping(self, key: str) -> dict[str, Any]:
        v = self._check(key, self._req(key), lambda x: isinstance(x, Mapping), "an object")
        return dict(v)

    def array(self, key: str, item: Callable[[Any], bool] = lambda x: True, what: str = "") -> list[Any]:
        """A list whose every element passes ``item`` (``what`` describes the elements)."""
        v = self._check(
            key,
            self._req(key),
            lambda x: isinstance(x, list) and all(item(e) for e in x),
            f"a list{' of ' + what if what else ''}",
        )
        return list(v)

    # --- optional (missing or null -> None) ----------------------------------------------------

    def _opt(self, key: str, get: Callable[[str], T]) -> T | None:
        if self.d.get(key) is None:
            return None
        return get(key)

    def opt_string(self, key: str) -> str | None:
        return self._opt(key, self.string)

    def opt_integer(self, key: str) -> int | None:
        return self._opt(key, self.integer)

    def opt_number(self, key: str) -> float | None:
        return self._opt(key, self.number)

    def opt_boolean(self, key: str) -> bool | None:
        return self._opt(key, self.boolean)

    def opt_mapping(self, key: str) -> dict[str, Any] | None:
        return self._opt(key, self.mapping)

    def opt_array(
        self, key: str, item: Callable[[Any], bool] = lambda x: True, what: str = ""
    ) -> list[Any] | None:
        return self._opt(key, lambda k: self.array(k, item, what))


def is_point(v: Any) -> bool:
    """``[iteration, value]``: an integer and a finite number (curves of losses and accuracies)."""
    return isinstance(v, list) and len(v) == 2 and is_int(v[0]) and is_number(v[1])
