"""Append-only JSON-lines files that survive a crash.

``write`` writes one line, flushes and fsyncs it before it returns, so a kill -9 loses at most
the line being written. In the event loop, ``append`` writes and flushes a line (no fsync) and
``await sync()`` makes every line appended so far durable: the fsync runs in a worker thread,
never on the loop's thread, and concurrent ``sync`` calls share one fsync (group commit).
``await awrite(record)`` is ``append`` then ``sync``: the record is on disk when it returns.
``await trials.commit_after(audit, record)`` orders two files: the record is written only once
every audit line appended so far is on disk, and is on disk when it returns; concurrent calls
are committed together, one worker-thread call per batch.
A torn last line (no newline, or not JSON) is detected on reading and dropped, never misread;
a bad line in the middle is an error. Every line is a record of gate.records, validated on
reading (``path:line: message``, exit 4).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, Generic, overload

from gate.errors import RecordError
from gate.records import R, parse_record


class JsonlWriter(Generic[R]):
    """Appends records of one model to a JSON-lines file."""

    def __init__(self, path: Path, model: type[R], *, fsync: bool = True) -> None:
        self.path = path
        self.model = model
        self._fsync = fsync
        _truncate_torn_tail(path)
        self._fh = path.open("ab", buffering=0)  # each line is one write(2): nothing held back
        self._appended = 0  # lines appended (and flushed) so far
        self._synced = 0  # lines known to be on disk
        self._syncing: asyncio.Future[None] | None = None
        self._batch: list[bytes] = []  # commit_after: lines waiting for the next group commit
        self._batch_done: asyncio.Future[None] | None = None
        self._committer: asyncio.Future[None] | None = None

    def write(self, record: R) -> None:
        """Append ``record`` and fsync it now (blocking: not for the event loop's hot path)."""
        self.append(record)
        if self._fsync:
            os.fsync(self._fh.fileno())
            self._synced = self._appended

    def append(self, record: R) -> None:
        """Append ``record`` as one line and flush it to the OS; durable after ``sync``."""
        self._write(self._encode(record))
        self._appended += 1

    def _encode(self, record: R) -> bytes:
        if not isinstance(record, self.model):
            raise TypeError(f"{self.path.name} holds {self.model.__name__} records, "
                            f"not {type(record).__name__}")
        line = json.dumps(record.to_json(), sort_keys=True, separators=(",", ":"),
                          allow_nan=False)
        return (line + "\n").encode()

    def _write(self, data: bytes) -> None:
        if self._fh.write(data) != len(data):  # a regular file takes it whole, or raises
            raise OSError(f"{self.path}: short write")

    async def commit_after(self, before: JsonlWriter[Any], record: R) -> None:
        """Append ``record`` only once every line appended to ``before`` so far is on disk, and
        return once ``record`` is on disk too (a trial after its audit lines).

        Group commit: the records of concurrent calls are written together, and each batch
        costs one worker-thread call (fsync ``before``, write the batch here, fsync here), not
        two per record. Without fsync (either file), the record is appended at once."""
        line = self._encode(record)
        if not (self._fsync and before._fsync):
            self._write(line)
            self._appended += 1
            return
        if self._batch_done is None:
            self._batch_done = asyncio.get_running_loop().create_future()
        done = self._batch_done
        self._batch.append(line)
        if self._committer is None:
            self._committer = asyncio.ensure_future(self._commit_batches(before))
        await asyncio.shield(done)

    async def _commit_batches(self, before: JsonlWriter[Any]) -> None:
        try:
            while self._batch:
                lines, done = self._batch, self._batch_done
                self._batch, self._batch_done = [], None
                assert done is not None
                upto = before._appended  # every line of `before` written so far
                try:
                    await asyncio.to_thread(self._durable_after, before, b"".join(lines))
                except BaseException as exc:
                    done.set_exception(exc)
                    continue
                before._synced = max(before._synced, upto)
                self._appended += len(lines)
                self._synced = self._appended
                done.set_result(None)
        finally:
            self._committer = None

    def _durable_after(self, before: JsonlWriter[Any], data: bytes) -> None:
        """In the worker thread: ``before`` on disk, then ``data`` written here and on disk."""
        os.fsync(before._fh.fileno())
        self._write(data)
        os.fsync(self._fh.fileno())

    async def sync(self) -> None:
        """Return once every line appended before this call is on disk (fsync off the loop)."""
        target = self._appended
        while self._fsync and self._synced < target:
            if self._syncing is None:
                self._syncing = asyncio.ensure_future(self._fsync_once())
            await asyncio.shield(self._syncing)

    async def awrite(self, record: R) -> None:
        """Append ``record`` and return once it is on disk."""
        self.append(record)
        await self.sync()

    async def _fsync_once(self) -> None:
        upto = self._appended
        try:
            await asyncio.to_thread(os.fsync, self._fh.fileno())
            self._synced = max(self._synced, upto)
        finally:
            self._syncing = None

    def close(self) -> None:
        if self._fsync and self._synced < self._appended and not self._fh.closed:
            os.fsync(self._fh.fileno())
            self._synced = self._appended
        self._fh.close()

    def __enter__(self) -> JsonlWriter[R]:
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


@overload
def read_jsonl(path: Path) -> list[dict[str, Any]]: ...


@overload
def read_jsonl(path: Path, model: type[R]) -> list[R]: ...


def read_jsonl(path: Path, model: type[R] | None = None) -> list[R] | list[dict[str, Any]]:
    """Read every complete record; drop a torn last line; fail on corruption elsewhere.

    With ``model`` each line is validated as that record (gate reads its run files so, always);
    without, the JSON objects come back as they are (for logs that are no record of a run,
    such as the mock server's fault log, and for tools).
    """
    raw = read_lines(path)
    if model is None:
        return [obj for _number, obj in raw]
    return [parse_record(model, obj, str(path), number) for number, obj in raw]


def read_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline, else a torn line
    del tail
    out: list[tuple[int, dict[str, Any]]] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            if number == len(lines):
                break  # a torn line that happened to end in a newline: drop it
            raise RecordError.one(str(path), number, "corrupt record (not JSON)") from None
        if not isinstance(record, dict):
            raise RecordError.one(str(path), number, "corrupt record (not an object)")
        out.append((number, record))
    return out
