"""Bounded JSON parsing for every file that comes from outside (headers, manifests, metadata).

``json.loads`` recurses once per nesting level, so a few kilobytes of ``[[[[...`` raise
``RecursionError`` (a crash, exit 2), and Python refuses integers above 4300 digits with a bare
``ValueError``. ``loads_bounded`` measures nesting depth without recursing, refuses duplicate
keys (two readers could pick different values) and NaN/Infinity (not JSON), and turns every
failure into one ``JSONFormatError`` naming the document.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from .errors import JSONFormatError

#: Nesting deeper than this is refused. dcreg documents nest at most ~6 levels (metadata ->
#: method_config -> ... ); 64 leaves room for user metadata while staying far from recursion limits.
MAX_DEPTH = 64
#: Default cap on a document's size in bytes (UTF-8). Callers with a tighter bound pass their own.
MAX_BYTES = 64 * 1024 * 1024

# A JSON string literal (the "unrolled loop" form: runs of plain characters between escapes),
# linear in the input with no backtracking blow-up on hostile input.
_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET_RE = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# An escaped UTF-16 surrogate; only then can a parsed string hold a lone surrogate, which is not
# Unicode text (it cannot be encoded as UTF-8, and other JSON parsers refuse it).
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")


def nesting_depth(text: str) -> int:
    """Maximum bracket nesting of ``text`` (exact for valid JSON), computed without recursion."""
    brackets = _NOT_BRACKET_RE.sub("", _STRING_RE.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(Exception):
    pass


def _no_constant(name: str) -> Any:
    raise _BadConstant(name)


class _BadConstant(Exception):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _BadConstant(f"the number {text[:40]} (too large for a float)")
    return value


def _has_lone_surrogate(obj: Any) -> bool:
    """Whether any string (key or value) in ``obj`` holds an unpaired surrogate (depth is bounded)."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(obj, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_has_lone_surrogate(v) for v in obj)
    return False


def loads_bounded(
    text: str | bytes, what: str, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES
) -> Any:
    """Parse JSON from an untrusted source; raise JSONFormatError (a UserError) naming ``what``.

    Refuses: invalid UTF-8 or JSON, more than ``max_bytes`` bytes, nesting deeper than
    ``max_depth``, duplicate object keys, NaN/Infinity (also as an overflowing number),
    integers Python will not parse, unpaired surrogate escapes.
    """
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise JSONFormatError(
            what, f"is {size} bytes, above the {max_bytes}-byte cap", "the file is corrupt or hostile"
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONFormatError(what, f"is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JSONFormatError(
            what,
            f"nests {depth} levels deep, above the limit of {max_depth}",
            "the file is corrupt or hostile",
        )
    try:
        obj = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_float=_finite_float
        )
    except json.JSONDecodeError as exc:
        raise JSONFormatError(
            what, f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except _DuplicateKey as exc:
        raise JSONFormatError(what, f"has the key {exc.args[0]!r} twice") from None
    except _BadConstant as exc:
        raise JSONFormatError(what, f"contains {exc.args[0]}, which is not JSON") from None
    except RecursionError:  # backstop: the depth scan above should make this unreachable
        raise JSONFormatError(what, "nests too deeply", "the file is corrupt or hostile") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python's 4300-digit limit
        raise JSONFormatError(what, f"is not valid JSON ({str(exc).split(';')[0][:120]})") from None
    if _SURROGATE_ESCAPE_RE.search(text) and _has_lone_surrogate(obj):
        raise JSONFormatError(what, "contains an unpaired UTF-16 surrogate escape, which is not text")
    return obj
