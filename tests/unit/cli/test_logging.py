"""Logging: library loggers only; no record of a ``gate.*`` logger, a child created after the
key was registered included, can carry a registered key, whatever handler receives it."""

from __future__ import annotations

import ast
import io
import logging

import pytest
from paths import PACKAGE

from gate.cli import configure_logging
from gate.providers.redact import in_scope, register_secret

KEY = "sk-or-v1-LOGTEST-0123456789abcdef"


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def root_handler() -> ListHandler:
    handler = ListHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    loggers = [root, *(logging.getLogger(n) for n in ("gate", "httpx", "httpcore"))]
    levels = [lg.level for lg in loggers]
    for lg in loggers:  # an earlier gate.cli.main() in this process may have raised them
        lg.setLevel(logging.DEBUG)
    yield handler  # type: ignore[misc]
    root.removeHandler(handler)
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)


def test_a_new_child_logger_is_redacted_on_any_handler(root_handler: ListHandler) -> None:
    """The application's own handler on the root logger: no gate handler in between."""
    register_secret(KEY)
    child = logging.getLogger("gate.something.new")  # created after the key was registered
    child.warning("calling with key %s", KEY)
    child.debug(f"header Authorization: Bearer {KEY}")
    logging.getLogger("httpcore.http11").debug("send %r", {"auth": KEY})
    assert root_handler.lines == ["calling with key ***", "header Authorization: Bearer ***",
                                  "send {'auth': '***'}"]


def test_the_cli_handler_redacts_too() -> None:
    register_secret(KEY)
    stream = io.StringIO()
    handler = configure_logging(verbose=True, stream=stream)
    try:
        logging.getLogger("gate.another.child").warning("key %s", KEY)
    finally:
        for name in ("gate", "httpx", "httpcore"):
            logging.getLogger(name).removeHandler(handler)
    assert stream.getvalue() == "WARNING gate.another.child: key ***\n"


def test_other_loggers_are_left_alone(root_handler: ListHandler) -> None:
    register_secret(KEY)
    logging.getLogger("gatekeeper.app").warning("mine %s", KEY)  # not below "gate"
    assert root_handler.lines == [f"mine {KEY}"]
    assert in_scope("gate")
    assert in_scope("gate.a.b")
    assert not in_scope("gatekeeper")


def test_modules_use_library_loggers_only() -> None:
    """``logging.getLogger(__name__)`` only; nothing configures logging but gate.cli."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            where = path.relative_to(PACKAGE).as_posix()
            by_name = len(node.args) == 1 and ast.unparse(node.args[0]) == "__name__"
            if name == "getLogger" and not by_name and where != "cli.py":
                bad.append(f"{where}: getLogger({', '.join(ast.unparse(a) for a in node.args)})")
            configures = name in ("basicConfig", "setLogRecordFactory", "addHandler")
            if configures and where not in ("cli.py", "providers/redact.py"):
                bad.append(f"{where}: {name}")
    assert bad == []
