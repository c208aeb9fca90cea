"""The generated sync twin has exactly the public surface of the async source.

Walks every module of ``weave_client._async`` and its ``_sync`` twin: the same
public classes and functions (under their mapped names), the same methods,
parameter names, kinds and defaults; coroutine functions map to plain functions,
async generators to generators, ``__aiter__``/``__anext__`` to ``__iter__``/``__next__``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import unasync_rules  # noqa: E402

import weave_client._async  # noqa: E402
import weave_client._sync  # noqa: E402

DUNDER_MAP = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
}


def sync_name(name: str) -> str:
    if name in DUNDER_MAP:
        return DUNDER_MAP[name]
    if name in unasync_rules.REPLACEMENTS:
        return unasync_rules.REPLACEMENTS[name]
    if len(name) > 5 and name.startswith("Async") and name[5].isupper():
        return "Sync" + name[5:]
    return name


def modules(package: ModuleType) -> dict[str, ModuleType]:
    found = {}
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        found[info.name.split(".", 2)[2]] = importlib.import_module(info.name)
    return found


ASYNC_MODULES = modules(weave_client._async)
SYNC_MODULES = modules(weave_client._sync)


def public_members(module: ModuleType) -> dict[str, Any]:
    return {
        name: obj
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == module.__name__
    }


def methods(cls: type) -> dict[str, Any]:
    out = {}
    for name, obj in vars(cls).items():
        dunder = name in DUNDER_MAP or name in DUNDER_MAP.values()
        if name.startswith("_") and not dunder and name != "__init__":
            continue
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if isinstance(obj, property):
            out[name] = obj
        elif inspect.isfunction(obj):
            out[name] = obj
    return out


def signature_shape(fn: Any) -> list[tuple[str, str, str]]:
    sig = inspect.signature(fn)
    return [
        (p.name, str(p.kind), repr(p.default) if p.default is not p.empty else "-")
        for p in sig.parameters.values()
    ]


def kind(fn: Any) -> str:
    if isinstance(fn, property):
        return "property"
    if inspect.isasyncgenfunction(fn):
        return "generator"
    if inspect.isgeneratorfunction(fn):
        return "generator"
    if inspect.iscoroutinefunction(fn):
        return "function"
    return "function"


def test_every_async_module_has_a_twin() -> None:
    assert ASYNC_MODULES, "weave_client._async has no modules"
    assert sorted(ASYNC_MODULES) == sorted(SYNC_MODULES)


@pytest.mark.parametrize("module_name", sorted(ASYNC_MODULES))
def test_module_parity(module_name: str) -> None:
    a_mod, s_mod = ASYNC_MODULES[module_name], SYNC_MODULES[module_name]
    a_members = public_members(a_mod)
    s_members = public_members(s_mod)
    assert sorted(sync_name(n) for n in a_members) == sorted(s_members)
    for name, a_obj in a_members.items():
        s_obj = s_members[sync_name(name)]
        if inspect.isclass(a_obj):
            a_methods, s_methods = methods(a_obj), methods(s_obj)
            assert sorted(sync_name(n) for n in a_methods) == sorted(s_methods), name
            for m_name, a_m in a_methods.items():
                s_m = s_methods[sync_name(m_name)]
                assert kind(a_m) == kind(s_m), f"{name}.{m_name}"
                if not isinstance(a_m, property):
                    assert not inspect.iscoroutinefunction(s_m), f"{name}.{m_name}"
                    assert not inspect.isasyncgenfunction(s_m), f"{name}.{m_name}"
                    assert signature_shape(a_m) == signature_shape(s_m), f"{name}.{m_name}"
        else:
            assert kind(a_obj) == kind(s_obj), name
            assert not inspect.iscoroutinefunction(s_obj), name
            assert signature_shape(a_obj) == signature_shape(s_obj), name


def test_parity_detects_drift() -> None:
    """The comparison itself can fail: a changed default is caught."""

    async def a(x: int, y: int = 1) -> int:
        return x + y

    def s(x: int, y: int = 2) -> int:
        return x + y

    assert signature_shape(a) != signature_shape(s)
