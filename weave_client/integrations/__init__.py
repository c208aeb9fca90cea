"""LLM SDK calls traced without decorators: ``openai`` (1.x) and ``anthropic``.

A client activates the integrations when it starts (``autopatch=True``, the
default). An SDK already imported is patched at once; one imported later is
patched right after its import (an import hook), so an SDK is never imported
by weave_client itself. Patched methods record a call only while a client is
current, so patching is harmless otherwise.

Opt out with ``autopatch=False`` (client keyword), ``WEAVE_AUTOPATCH=false``, or
name the integrations to patch: ``autopatch=["openai"]`` /
``WEAVE_AUTOPATCH=openai``. ``unpatch()`` (all, or one by name) restores the
SDKs' own methods; ``patch(name)`` patches one explicitly.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import threading
from collections.abc import Collection, Sequence
from types import ModuleType
from typing import Any

__all__ = ["INTEGRATIONS", "activate", "is_patched", "patch", "resolve_autopatch", "unpatch"]

logger = logging.getLogger("weave_client")

INTEGRATIONS: tuple[str, ...] = ("openai", "anthropic")
ENV_AUTOPATCH = "WEAVE_AUTOPATCH"

_lock = threading.RLock()
# Integrations waiting for their SDK's import (the hook patches them then).
_pending: set[str] = set()
_FALSE = frozenset({"0", "false", "no", "off", "none"})
_TRUE = frozenset({"1", "true", "yes", "on", "all"})


def _module(name: str) -> ModuleType:
    if name not in INTEGRATIONS:
        raise ValueError(
            f"unknown integration {name!r}: expected one of {', '.join(INTEGRATIONS)}"
        )
    return importlib.import_module(f"{__name__}.{name}")


def resolve_autopatch(autopatch: bool | Collection[str] | None) -> tuple[str, ...]:
    """The integrations to activate: the ``autopatch`` argument, else ``WEAVE_AUTOPATCH``
    (``true``/``false`` or a comma-separated list of names), else all of them."""
    if autopatch is None:
        raw = os.environ.get(ENV_AUTOPATCH, "").strip().lower()
        if not raw or raw in _TRUE:
            return INTEGRATIONS
        if raw in _FALSE:
            return ()
        names: Sequence[str] = [n.strip() for n in raw.split(",") if n.strip()]
        source = f"{ENV_AUTOPATCH}={raw!r}"
    elif isinstance(autopatch, bool):
        return INTEGRATIONS if autopatch else ()
    elif isinstance(autopatch, str) or not isinstance(autopatch, Collection):
        raise TypeError(
            f"autopatch must be a bool or a collection of integration names, got {autopatch!r}"
        )
    else:
        names, source = list(autopatch), f"autopatch={autopatch!r}"
    unknown = [n for n in names if n not in INTEGRATIONS]
    if unknown:
        from .._errors import InvalidSettingError

        raise InvalidSettingError(
            f"{source}: unknown integration(s) {', '.join(map(repr, unknown))};"
            f" expected {', '.join(INTEGRATIONS)}"
        )
    return tuple(n for n in INTEGRATIONS if n in names)


def activate(names: Collection[str]) -> None:
    """Patch these integrations now if their SDK is imported, else once it is."""
    with _lock:
        for name in names:
            if name in sys.modules:
                _patch_quietly(name)
            else:
                _pending.add(name)
        if _pending:
            _install_hook()


def patch(name: str) -> None:
    """Patch one integration now (imports its SDK; ImportError when not installed)."""
    with _lock:
        _module(name).patch()


def unpatch(name: str | None = None) -> None:
    """Restore the SDKs' own methods: every integration, or the one named."""
    with _lock:
        for each in INTEGRATIONS if name is None else (name,):
            _pending.discard(each)
            if f"{__name__}.{each}" in sys.modules or name is not None:
                _module(each).unpatch()


def is_patched(name: str) -> bool:
    """True while the named integration's SDK is patched."""
    if f"{__name__}.{name}" not in sys.modules:
        _module(name)  # validates the name
        return False
    return bool(_module(name).is_patched())


def _patch_quietly(name: str) -> None:
    try:
        _module(name).patch()
    except Exception:
        logger.warning(
            "weave_client: could not patch the %s SDK; its calls are not traced", name,
            exc_info=True,
        )


# --- the import hook ---------------------------------------------------------------


class _PatchingLoader(importlib.abc.Loader):
    """The SDK's own loader; patches the integration once the module has run."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        # The module is whole now; put its own loader back and patch.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with _lock:
            if self._name in _pending:
                _pending.discard(self._name)
                _patch_quietly(self._name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._loader, attr)


class _ImportHook(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of a pending SDK's top-level module."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _pending:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader, fullname)
                return spec
        return None


_hook = _ImportHook()


def _install_hook() -> None:
    if _hook not in sys.meta_path:
        sys.meta_path.insert(0, _hook)
