"""The event loop of the hot commands: uvloop where it is installed (a libuv loop: cheaper callbacks and
socket reads than the stdlib's), the stdlib loop otherwise or when `TOWER_EVENT_LOOP=asyncio` asks."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def uvloop_module():
    """uvloop, or None when it is not installed or the environment asks for the stdlib loop."""
    if os.environ.get("TOWER_EVENT_LOOP", "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


def run(main: Coroutine[Any, Any, T]) -> T:
    uv = uvloop_module()
    return uv.run(main) if uv is not None else asyncio.run(main)
