"""The hot commands' event loop: uvloop where installed, the stdlib loop when asked for (or without it)."""

from __future__ import annotations

import asyncio

import pytest

from tower import eventloop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_runs_the_hot_commands_where_installed(monkeypatch):
    pytest.importorskip("uvloop")
    monkeypatch.delenv("TOWER_EVENT_LOOP", raising=False)
    assert eventloop.run(_loop_module()).startswith("uvloop")


def test_the_stdlib_loop_when_asked_for(monkeypatch):
    monkeypatch.setenv("TOWER_EVENT_LOOP", "asyncio")
    assert eventloop.run(_loop_module()).startswith("asyncio")
