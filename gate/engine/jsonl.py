"""Append-only JSON-lines files that survive a crash.

Each record is written as one line and flushed (and fsynced) before the call returns, so a
kill -9 loses at most the line being written. A torn last line (no newline, or not JSON) is
detected on reading and dropped, never misread; a bad line in the middle is an error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gate.errors import ConfigError


class JsonlWriter:
    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        _truncate_torn_tail(path)
        self._fh = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any], *, sync: bool | None = None) -> None:
        """Append one record, flushed to the OS (it survives a kill -9 of this process) and,
        when ``sync`` (default: the writer's ``fsync``), fsynced (it survives a power cut)."""
        line = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
        self._fh.write(line + "\n")
        self._fh.flush()
        if self._fsync if sync is None else sync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _truncate_torn_tail(path: Path) -> None:
    """Cut a last line that has no newline (a write torn by a crash) before appending."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with path.open("r+b") as fh:
            fh.truncate(keep)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read every complete record; drop a torn last line; fail on corruption elsewhere."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline, else a torn line
    del tail
    out: list[dict[str, Any]] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            if number == len(lines):
                break  # a torn line that happened to end in a newline: drop it
            raise ConfigError.one(str(path), number, "corrupt record (not JSON)") from None
        if not isinstance(record, dict):
            raise ConfigError.one(str(path), number, "corrupt record (not an object)")
        out.append(record)
    return out
