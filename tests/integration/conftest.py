"""The integration tier: gate against another process (a server on 127.0.0.1, git, a linter),
without running gate's CLI. Every test starts without proxy variables, so a loopback request
never goes through a proxy of the machine running the tests (a test sets the ones it needs)."""

from __future__ import annotations

import pytest

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
              "http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test without proxy variables (each sets the ones it needs)."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
