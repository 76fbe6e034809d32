"""Check the *shape* of a pickle before any unpickler builds it, by parsing opcodes only.

Even an unpickler that refuses every global builds containers, and some containers are costly to
use: a key that is a tuple nested 200,000 deep crashes CPython while the dict hashes it (the C
stack overflows: a segfault, not an exception), and tuples that share children through the memo
(``t = (u, u)``, ``u = (v, v)`` ...) are tiny on disk but take 2^depth steps to hash, print or
convert. :func:`pickle_shape_problem` simulates the unpickler's stack with ``pickletools.genops``
(which executes nothing), tracking each object's nesting depth and expanded size, and reports
the first object over the limits.
"""

from __future__ import annotations

import io
import pickletools
from typing import cast

#: Deepest container nesting accepted (torch checkpoints and CIFAR batches nest < 15).
MAX_DEPTH = 100
#: Largest expanded size (objects counted once per reference) of any object, relative to the
#: number of opcodes: sharing may repeat an object, but not blow it up exponentially.
EXPANSION = 64
_MIN_NODES = 1 << 20

# Opcodes that add their arguments to the object below them instead of making a new object.
_MUTATORS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}
_MEMO_PUT = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_MEMO_GET = {"GET", "BINGET", "LONG_BINGET"}
# Opcodes that only push one new leaf or empty container (ints, strings, EMPTY_LIST ...): the
# common case, handled without the generic stack bookkeeping.
_LEAVES = {
    op.name
    for op in pickletools.opcodes
    if not op.stack_before
    and len(op.stack_after) == 1
    and op.stack_after[0] is not pickletools.markobject
    and op.name not in _MEMO_GET
}


def pickle_shape_problem(data: bytes, max_depth: int = MAX_DEPTH) -> str | None:
    """None if the first pickle in ``data`` builds only bounded objects, else what is wrong.

    Unparseable bytes also return None: the real unpickler will refuse them with its own error."""
    # Each object is a mutable [depth, expanded size] record shared by the stack and the memo,
    # so appending to a memoized list updates every reference to it (as in the real unpickler).
    stack: list[list[int] | None] = []  # None marks a MARK
    memo: dict[int, list[int]] = {}
    ops = 0
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            ops += 1
            name = op.name
            if name in _LEAVES:
                stack.append([0, 1])
                continue
            if name == "MARK":
                stack.append(None)
                continue
            if name == "STOP":
                break
            # genops gives each argument untyped; those of the memo opcodes are ints (their
            # ArgumentDescriptor's obtype), MEMOIZE has none
            if name in _MEMO_PUT:
                if stack and stack[-1] is not None:
                    key = cast(int, arg) if name != "MEMOIZE" else len(memo)
                    memo[key] = stack[-1]
                continue
            if name in _MEMO_GET:
                stack.append(memo.get(cast(int, arg), [0, 1]))
                continue
            # Pop what the opcode consumes (to the MARK for 'stackslice' opcodes).
            popped: list[list[int]] = []
            for item in reversed(op.stack_before):
                if item is pickletools.markobject:
                    continue
                if item is pickletools.stackslice:
                    while stack and stack[-1] is not None:
                        popped.append(stack.pop())  # type: ignore[arg-type]
                    if stack:
                        stack.pop()  # the MARK
                    continue
                if stack and stack[-1] is not None:
                    popped.append(stack.pop())  # type: ignore[arg-type]
            result: list[int] | None
            if name in _MUTATORS:
                # popped[-1] is the container (deepest on the stack); the rest go into it.
                if not popped:
                    continue
                result = popped[-1]
                for d, n in popped[:-1]:
                    result[0] = max(result[0], d + 1)
                    result[1] += n
            elif op.stack_after:
                result = [1 + max((d for d, _ in popped), default=-1), 1 + sum(n for _, n in popped)]
            else:
                result = None
            if result is not None:
                max_nodes = max(_MIN_NODES, EXPANSION * ops)
                if result[0] > max_depth:
                    return f"objects nested more than {max_depth} levels deep"
                if result[1] > max_nodes:
                    return f"objects that expand to more than {max_nodes} elements through shared references"
                for _ in op.stack_after:
                    stack.append(result)
    except Exception:  # not a (complete) pickle: the unpickler reports it
        return None
    return None
