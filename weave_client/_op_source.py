"""An op's definition as weave stores it: its name, parameters, source file and the
Op object saved ahead of its first call (digests computed locally).

I/O-free and flavour-free; runs when an op is decorated or first called, not per call.
"""

from __future__ import annotations

import ast
import inspect
import keyword
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._digest import bytes_digest, json_digest, str_digest
from ._refs import sanitize_object_name

__all__ = [
    "OpSave",
    "inferred_op_name",
    "op_parameters",
    "op_placeholder_source",
    "op_save",
    "op_source",
    "positional_binder",
    "sanitize_name",
]


@dataclass(frozen=True)
class OpSave:
    """An op version to store ahead of its first call: the source file, then the Op object."""

    project_id: str
    name: str
    source: bytes
    val: dict[str, Any]
    digest: str


def op_save(project_id: str, name: str, source: str) -> OpSave:
    """The Op object weave saves for ``source``, with digests computed locally.

    The file digest and the object digest are the ones the server computes, so a
    call can name the op's ref before the save reaches the server.
    """
    content = source.encode("utf-8")
    val = {
        "_type": "CustomWeaveType",
        "files": {"obj.py": bytes_digest(content)},
        "weave_type": {"type": "Op"},
    }
    return OpSave(
        project_id=project_id, name=name, source=content, val=val, digest=json_digest(val)
    )


def op_parameters(
    signature: inspect.Signature,
) -> tuple[tuple[str, ...], dict[str, Any], bool]:
    """Parameter names, their defaults, and whether the fast binding applies
    (only positional-or-keyword parameters)."""
    names = tuple(signature.parameters)
    defaults = {name: p.default for name, p in signature.parameters.items()}
    simple = all(
        p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in signature.parameters.values()
    )
    return names, defaults, simple


def positional_binder(names: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """A function of one argument per parameter returning ``{name: argument}``,
    compiled once per op: binding a call's positional arguments is then one call."""
    for name in names:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"not a parameter name: {name!r}")
    params = ", ".join(f"_a{i}" for i in range(len(names)))
    items = ", ".join(f"{name!r}: _a{i}" for i, name in enumerate(names))
    binder: Callable[..., dict[str, Any]] = eval(f"lambda {params}: {{{items}}}")
    return binder


def inferred_op_name(func: Callable[..., Any]) -> str:
    # Methods are named Class.method, as weave names them; the <locals> prefix of
    # nested definitions is noise.
    params = list(inspect.signature(func).parameters)
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", "op")
    name = qualname if params[:1] == ["self"] else getattr(func, "__name__", qualname)
    return str(name).split(".<locals>.")[-1]


def sanitize_name(name: str) -> str:
    """An op name the server accepts, as weave's sanitize_object_name makes it.

    Raises ``InvalidNameError`` (a ``ValueError``) when nothing is left.
    """
    return sanitize_object_name(name, what="op name")


OP_DECORATORS = frozenset({"async_op", "op"})


def op_placeholder_source(func: Callable[..., Any], name: str) -> str:
    """What is saved for an op when code capture is off (``WEAVE_CAPTURE_CODE=false``).

    As weave: a stub naming the digest of the real source, so versions still
    change when the code does, without the code itself leaving the process.
    """
    try:
        digest = str_digest(inspect.getsource(func))
    except (OSError, TypeError):
        digest = "unavailable"
    return (
        "import weave\n\n@weave.op()\n"
        f"def {name.replace('-', '_').replace('.', '_')}(*args, **kwargs):\n"
        f"    ...  # Code-capture was disabled while saving this op (digest: {digest})\n"
    )


def op_source(func: Callable[..., Any], name: str) -> str:
    """The op's source as weave saves it: ``import weave``, then the function under
    ``@weave.op()`` (our own decorator lines replaced)."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        try:
            signature = str(inspect.signature(func))
        except (TypeError, ValueError):
            signature = "(*args, **kwargs)"
        keyword = "async def" if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func) else "def"
        source = f"{keyword} {name}{signature}:\n    ...  # Code-capture unavailable for this op\n"
        return f"import weave\n\n@weave.op()\n{source}"
    lines = source.splitlines()
    try:
        tree = ast.parse(source)
        node = tree.body[0]
    except (SyntaxError, IndexError):
        return f"import weave\n\n@weave.op()\n{source}"
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        drop: set[int] = set()
        for dec in node.decorator_list:
            target = dec.func if isinstance(dec, ast.Call) else dec
            label = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
            if label in OP_DECORATORS:
                drop.update(range(dec.lineno - 1, (dec.end_lineno or dec.lineno)))
        def_line = node.lineno - 1
        kept = [line for i, line in enumerate(lines[:def_line]) if i not in drop]
        lines = [*kept, "@weave.op()", *lines[def_line:]]
    return "import weave\n\n" + "\n".join(lines) + "\n"
