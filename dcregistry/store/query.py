"""Metadata query terms for ``dcreg list``: ``field OP value`` (e.g. ``ipc<=10``, ``dataset=cifar10``).

Fields (the SQLite index columns): ``name``, ``version``, ``digest``, ``dataset``, ``method``,
``ipc``, ``num_classes``, ``label_kind``, ``pixel`` (the pixel-space kind), ``seed``,
``license``, ``created_at`` (when the version was pushed) and ``made_at`` (the artifact's own
``metadata.created_at``). Operators: ``=`` (also ``==``), ``!=``, ``<``, ``<=``, ``>``, ``>=``.
Integer fields compare as numbers; text fields compare as strings (ISO dates order correctly,
so ``created_at>=2026-01`` works); ``=``/``!=`` on a text value containing ``*`` or ``?`` is a
glob (``name=lab/*``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import BadQueryError
from ..refs import text_problem

INT_FIELDS = ("version", "ipc", "num_classes", "seed")
TEXT_FIELDS = (
    "name",
    "digest",
    "dataset",
    "method",
    "label_kind",
    "pixel",
    "license",
    "created_at",
    "made_at",
)
FIELDS = INT_FIELDS + TEXT_FIELDS
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


@dataclass(frozen=True)
class Term:
    """One parsed query term."""

    field: str
    op: str  # one of = != < <= > >=
    value: str | int

    def sql(self) -> tuple[str, list[str | int]]:
        """A SQL condition on the index (column names are from a fixed list) and its parameter."""
        if isinstance(self.value, str) and self.op in ("=", "!=") and any(c in self.value for c in "*?["):
            return (f"{'NOT ' if self.op == '!=' else ''}{self.field} GLOB ?", [self.value])
        if self.op == "!=":
            return (f"({self.field} IS NULL OR {self.field} != ?)", [self.value])
        return (f"{self.field} {self.op} ?", [self.value])

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.value}"


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
