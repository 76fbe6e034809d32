"""Metadata query terms for ``dcreg list``: ``field OP value`` (e.g. ``ipc<=10``, ``dataset=cifar10``).

Fields (:data:`QUERY_FIELDS`, the one field map: the local index has a column per field, the
Hub store matches the same values in Python): ``name``, ``version``, ``digest``, ``dataset``,
``method``, ``ipc``, ``num_classes``, ``label_kind``, ``pixel`` (the pixel-space kind),
``seed``, ``license``, ``created_at`` (when the version was pushed) and ``made_at`` (the
artifact's own ``metadata.created_at``). Operators: ``=`` (also ``==``), ``!=``, ``<``, ``<=``,
``>``, ``>=``. Integer fields compare as numbers; text fields compare as strings (ISO dates
order correctly, so ``created_at>=2026-01`` works); ``=``/``!=`` on a text value containing
``*``, ``?`` or ``[`` is a glob as SQLite has it (``name=lab/*``). A version without a value
for the field satisfies only a plain ``!=``. :meth:`Term.sql` (the index) and
:meth:`Term.matches` (a version in hand) are the same condition.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..errors import BadQueryError
from ..refs import text_problem

__all__ = [
    "QueryField",
    "QUERY_FIELDS",
    "FIELDS",
    "INT_FIELDS",
    "TEXT_FIELDS",
    "ALIASES",
    "Queryable",
    "Term",
    "field_value",
    "glob_match",
    "parse_term",
    "parse_terms",
]


class Queryable(Protocol):
    """What a query reads of a version (an index row, a :class:`~.base.VersionInfo`)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def digest(self) -> str: ...

    @property
    def created_at(self) -> str | None: ...  # when the version was pushed

    @property
    def metadata(self) -> Mapping[str, Any]: ...


def _md(key: str) -> Callable[[Queryable], object]:
    return lambda r: (r.metadata or {}).get(key)


def _pixel(r: Queryable) -> object:
    ps = (r.metadata or {}).get("pixel_space")
    return ps.get("kind") if isinstance(ps, dict) else None


@dataclass(frozen=True)
class QueryField:
    """A queryable field: its kind and where a version's value comes from."""

    kind: Literal["int", "text"]
    get: Callable[[Queryable], object]
    required: bool = False  # every version has one (NOT NULL in the index)

    def value(self, record: Queryable) -> int | str | None:
        """The field's value for ``record`` as the index stores it and queries compare it:
        an int field's value is an int (not a bool), a text field's a str, else None."""
        v = self.get(record)
        if self.kind == "int":
            return v if isinstance(v, int) and not isinstance(v, bool) else None
        return v if isinstance(v, str) else None


#: The one field map of ``dcreg list`` queries: the local index has a column per field (filled
#: by :meth:`QueryField.value`), the Hub store matches the same values in Python
#: (:meth:`Term.matches`). Integer fields first, then text fields (the order messages list them).
QUERY_FIELDS: dict[str, QueryField] = {
    "version": QueryField("int", lambda r: r.version, required=True),
    "ipc": QueryField("int", _md("ipc")),
    "num_classes": QueryField("int", _md("num_classes")),
    "seed": QueryField("int", _md("seed")),
    "name": QueryField("text", lambda r: r.name, required=True),
    "digest": QueryField("text", lambda r: r.digest, required=True),
    "dataset": QueryField("text", _md("dataset")),
    "method": QueryField("text", _md("method")),
    "label_kind": QueryField("text", _md("label_kind")),
    "pixel": QueryField("text", _pixel),  # the pixel-space kind
    "license": QueryField("text", _md("license")),
    "created_at": QueryField("text", lambda r: r.created_at),  # when the version was pushed
    "made_at": QueryField("text", _md("created_at")),  # the artifact's own metadata.created_at
}
INT_FIELDS = tuple(f for f, q in QUERY_FIELDS.items() if q.kind == "int")
TEXT_FIELDS = tuple(f for f, q in QUERY_FIELDS.items() if q.kind == "text")
FIELDS = tuple(QUERY_FIELDS)
ALIASES = {
    "pixel_space": "pixel",
    "labels": "label_kind",
    "k": "ipc",
    "classes": "num_classes",
    "v": "version",
}
_OPS = ("<=", ">=", "!=", "==", "=", "<", ">")
_TERM_RE = re.compile(r" *([a-z_]+) *(<=|>=|!=|==|=|<|>) *(.*?) *")
_INT_RE = re.compile(r"[+-]?[0-9]{1,200}")
#: SQLite integers are signed 64-bit.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
MAX_TERM_LEN = 1024


def field_value(field: str, record: Queryable) -> int | str | None:
    """The value of query field ``field`` for ``record`` (KeyError for an unknown field)."""
    return QUERY_FIELDS[field].value(record)


@dataclass(frozen=True)
class Term:
    """One parsed query term. :meth:`sql` and :meth:`matches` are the same condition, in SQL on
    the local index and in Python on a version: a missing value (NULL) satisfies only a plain
    ``!=``; ``=``/``!=`` with ``*``, ``?`` or ``[`` in a text value is a glob."""

    field: str
    op: str  # one of = != < <= > >=
    value: str | int

    @property
    def is_glob(self) -> bool:
        return isinstance(self.value, str) and self.op in ("=", "!=") and any(c in self.value for c in "*?[")

    def sql(self) -> tuple[str, list[str | int]]:
        """A SQL condition on the index (column names are from a fixed list) and its parameter."""
        if self.is_glob:
            return (f"{'NOT ' if self.op == '!=' else ''}{self.field} GLOB ?", [self.value])
        if self.op == "!=":
            return (f"({self.field} IS NULL OR {self.field} != ?)", [self.value])
        return (f"{self.field} {self.op} ?", [self.value])

    def matches(self, record: Queryable) -> bool:
        """Whether ``record`` satisfies the term (what :meth:`sql` selects in the index)."""
        have = field_value(self.field, record)
        want = self.value
        if have is None:  # NULL: only `IS NULL OR ... != ?` holds (NOT NULL GLOB is NULL too)
            return self.op == "!=" and not self.is_glob
        if self.is_glob:
            hit = glob_match(str(want), str(have))
            return hit if self.op == "=" else not hit
        if isinstance(have, int) != isinstance(want, int):
            return False  # parse_term gives an int field an int value, a text field a str
        return _compare(self.op, have, want)

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.value}"


def glob_match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches ``pattern`` as SQLite's GLOB has it (case-sensitive; ``*`` any
    run, ``?`` one character, ``[...]`` one of a set with ``a-z`` ranges, ``[^...]`` one not in
    it, ``]`` first in a set is literal; a pattern with an unclosed ``[`` matches nothing).
    Linear in ``len(text)`` times the pattern's length (no backtracking)."""
    tokens = _glob_tokens(pattern)
    if tokens is None:
        return False

    def closure(states: set[int]) -> set[int]:
        todo, out = list(states), set(states)
        while todo:
            i = todo.pop()
            if i < len(tokens) and tokens[i] is None and i + 1 not in out:  # '*' may match nothing
                out.add(i + 1)
                todo.append(i + 1)
        return out

    states = closure({0})
    for ch in text:
        nxt = set()
        for i in states:
            if i < len(tokens):
                tok = tokens[i]
                if tok is None:
                    nxt.add(i)
                elif tok(ch):
                    nxt.add(i + 1)
        if not nxt:
            return False
        states = closure(nxt)
    return len(tokens) in states


def _glob_tokens(pattern: str) -> list[Callable[[str], bool] | None] | None:
    """The pattern as one matcher per character it consumes (None for ``*``), or None when it
    holds an unclosed ``[``."""
    tokens: list[Callable[[str], bool] | None] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            tokens.append(None)
        elif c == "?":
            tokens.append(_any_char)
        elif c == "[":
            invert = i < n and pattern[i] == "^"
            i += invert
            chars: set[str] = set()
            ranges: list[tuple[str, str]] = []
            if i < n and pattern[i] == "]":
                chars.add("]")
                i += 1
            prior = ""
            while i < n and pattern[i] != "]":
                c = pattern[i]
                if c == "-" and prior and i + 1 < n and pattern[i + 1] != "]":
                    ranges.append((prior, pattern[i + 1]))
                    prior = ""
                    i += 2
                else:
                    chars.add(c)
                    prior = c
                    i += 1
            if i >= n:
                return None
            i += 1  # the closing ']'
            tokens.append(_char_set(frozenset(chars), tuple(ranges), invert))
        else:
            tokens.append(c.__eq__)
    return tokens


def _any_char(ch: str) -> bool:
    return True


def _char_set(
    chars: frozenset[str], ranges: tuple[tuple[str, str], ...], invert: bool
) -> Callable[[str], bool]:
    def match(ch: str) -> bool:
        return (ch in chars or any(lo <= ch <= hi for lo, hi in ranges)) != invert

    return match


def _compare(op: str, a: Any, b: Any) -> bool:
    """``a OP b`` (KeyError for an operator parse_term never makes)."""
    return bool({"=": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])


def parse_term(text: str) -> Term:
    """Parse ``field OP value``; raise BadQueryError naming the allowed fields/operators."""
    if not isinstance(text, str):
        raise BadQueryError(f"bad query {text!r}: not text")
    if len(text) > MAX_TERM_LEN:
        raise BadQueryError(f"bad query of {len(text)} characters: at most {MAX_TERM_LEN}")
    problem = text_problem(text)
    if problem:
        raise BadQueryError(f"bad query {text!r}: {problem}")
    m = _TERM_RE.fullmatch(text)
    if not m:
        raise BadQueryError(
            f"bad query {text!r}: write FIELD OP VALUE like ipc<=10 or dataset=cifar10 "
            f"(operators {' '.join(_OPS)})"
        )
    field, op, value = m.group(1), m.group(2), m.group(3)
    field = ALIASES.get(field, field)
    if field not in FIELDS:
        raise BadQueryError(f"bad query {text!r}: unknown field {field!r} (fields: {', '.join(FIELDS)})")
    if op == "==":
        op = "="
    if value == "":
        raise BadQueryError(f"bad query {text!r}: missing value after {op!r}")
    if field in INT_FIELDS:
        v = value[1:] if field == "version" and value.startswith("v") else value
        if not _INT_RE.fullmatch(v):
            raise BadQueryError(f"bad query {text!r}: {field} takes an integer, got {value!r}")
        number = int(v)
        if not INT_MIN <= number <= INT_MAX:
            raise BadQueryError(f"bad query {text!r}: {number} is out of range (integers are 64-bit)")
        return Term(field, op, number)
    if field == "digest":  # digest=<hex prefix> matches by prefix
        if not value.startswith(("sha256:", "*")):
            value = "sha256:" + value
        if op in ("=", "!=") and not any(c in value for c in "*?["):
            value += "*"
    return Term(field, op, value)


def parse_terms(terms: Sequence[str | Term] | str) -> list[Term]:
    """Parse several terms (a single string may hold several separated by spaces)."""
    if isinstance(terms, str):
        terms = terms.split()
    return [t if isinstance(t, Term) else parse_term(t) for t in terms]
