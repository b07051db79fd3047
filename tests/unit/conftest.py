"""The unit tier: gate's functions and objects in this process. A unit test that connects or
listens on a network socket, or starts a child process, fails here: it belongs to
tests/integration (docs/design.md, "Tests")."""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import pytest

NETWORK = (socket.AF_INET, socket.AF_INET6)


def _refuse(what: str) -> AssertionError:
    return AssertionError(f"a unit test {what}: it belongs to tests/integration "
                          "(docs/design.md, Tests)")


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network socket and no child process (asyncio's own socketpair is fine)."""
    connect, bind = socket.socket.connect, socket.socket.bind

    def guarded(real: Any, what: str) -> Any:
        def call(self: socket.socket, *args: Any) -> Any:
            if self.family in NETWORK:
                raise _refuse(what)
            return real(self, *args)
        return call

    def no_child(*_args: Any, **_kwargs: Any) -> None:
        raise _refuse("started a child process")

    monkeypatch.setattr(socket.socket, "connect", guarded(connect, "opened a connection"))
    monkeypatch.setattr(socket.socket, "bind", guarded(bind, "listened on a socket"))
    monkeypatch.setattr(subprocess.Popen, "_execute_child", no_child)
