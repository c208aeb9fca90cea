"""Service routes: ``/health`` and ``/server_info``."""

from __future__ import annotations

from fastapi import APIRouter

from ... import _routes as routes
from ..._models import ServerInfoRes

__all__ = ["MIN_REQUIRED_WEAVE_PYTHON_VERSION", "router"]

# What weave's reference server reports; weave's own client checks it.
MIN_REQUIRED_WEAVE_PYTHON_VERSION = "0.0.1"


def router() -> APIRouter:
    """The service routes (no store)."""
    r = APIRouter()

    @r.get(routes.HEALTH)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @r.get(routes.SERVER_INFO)
    def server_info() -> ServerInfoRes:
        return ServerInfoRes(min_required_weave_python_version=MIN_REQUIRED_WEAVE_PYTHON_VERSION)

    return r
