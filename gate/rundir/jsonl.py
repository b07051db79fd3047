"""Append-only JSON-lines files that survive a crash.

``write`` writes one line, flushes and fsyncs it before it returns, so a kill -9 loses at most
the line being written. In the event loop, ``append`` writes and flushes a line (no fsync) and
``await sync()`` makes every line appended so far durable; ``await awrite(record)`` returns
once the record is on disk; ``await trials.commit_after(audit, record)`` orders two files: the
record is written only once every audit line appended so far is on disk, and is on disk when it
returns. All three go through one group commit: concurrent calls wait for one batch, and each
batch is one call in a worker thread (the fsyncs never run on the loop's thread).
A torn last line (no newline, or not JSON) is detected on reading and dropped, never misread;
a bad line in the middle is an error. Every line is a record of gate.records, validated on
reading (``path:line: message``, exit 4).

``CompressedJsonlWriter`` writes the same lines, each as its own gzip member (a ``.jsonl.gz``
that ``gzip -dc`` reads whole); a torn last member is dropped the same way.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, overload

from gate.errors import RecordError
from gate.records import R, Record, parse_record


@dataclass
class _Batch:
    """One group commit: the lines to write, the files to make durable first, and its end."""

    done: asyncio.Future[None]
    lines: list[bytes] = field(default_factory=list)
    before: set[JsonlWriter[Any]] = field(default_factory=set)


class JsonlWriter(Generic[R]):
    """Appends records of one model to a JSON-lines file."""

    def __init__(self, path: Path, model: type[R], *, fsync: bool = True) -> None:
        self.path = path
        self.model = model
        self._fsync = fsync
        self._repair_tail()
        self._fh = path.open("ab", buffering=0)  # each line is one write(2): nothing held back
        self._appended = 0  # lines appended (and flushed) so far
        self._synced = 0  # lines known to be on disk
        self._batch: _Batch | None = None  # lines waiting for the next group commit
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

    def _repair_tail(self) -> None:
        _truncate_torn_tail(self.path)

    def _encode(self, record: R) -> bytes:
        if not isinstance(record, self.model):
            raise TypeError(f"{self.path.name} holds {self.model.__name__} records, "
                            f"not {type(record).__name__}")
        return encode_line(record)

    def _write(self, data: bytes) -> None:
        if self._fh.write(data) != len(data):  # a regular file takes it whole, or raises
            raise OSError(f"{self.path}: short write")

    async def awrite(self, record: R) -> None:
        """Append ``record`` and return once it is on disk."""
        await self._commit(None, self._encode(record))

    async def commit_after(
        self, before: JsonlWriter[Any] | Sequence[JsonlWriter[Any]], record: R,
    ) -> None:
        """Append ``record`` only once every line appended to ``before`` (one writer or several)
        so far is on disk, and return once ``record`` is on disk too (a trial after its audit
        lines and its transcript)."""
        await self._commit(before, self._encode(record))

    async def sync(self) -> None:
        """Return once every line appended before this call is on disk (fsync off the loop)."""
        await self._commit(None, b"")

    async def _commit(
        self, before: JsonlWriter[Any] | Sequence[JsonlWriter[Any]] | None, line: bytes,
    ) -> None:
        """Group commit: the lines of concurrent calls wait for one batch, and each batch costs
        one worker-thread call (fsync the ``before`` files, write the batch here, fsync here).
        Without fsync (here or in ``before``), the line is appended at once."""
        befores = [before] if isinstance(before, JsonlWriter) else list(before or ())
        if not self._fsync or any(not w._fsync for w in befores):
            if line:
                self._write(line)
                self._appended += 1
            return
        if self._batch is None:
            self._batch = _Batch(asyncio.get_running_loop().create_future())
        batch = self._batch
        batch.before.update(befores)
        if line:
            batch.lines.append(line)
        if self._committer is None:
            self._committer = asyncio.ensure_future(self._commit_batches())
        await asyncio.shield(batch.done)

    async def _commit_batches(self) -> None:
        try:
            while self._batch is not None:
                batch, self._batch = self._batch, None
                upto = self._appended  # lines appended directly so far: this fsync covers them
                befores = {w: w._appended for w in batch.before}
                try:
                    await asyncio.to_thread(self._durable_after, list(befores),
                                            b"".join(batch.lines))
                except BaseException as exc:
                    batch.done.set_exception(exc)
                    continue
                for writer, written in befores.items():
                    writer._synced = max(writer._synced, written)
                self._appended += len(batch.lines)
                self._synced = max(self._synced, upto + len(batch.lines))
                batch.done.set_result(None)
        finally:
            self._committer = None

    def _durable_after(self, before: list[JsonlWriter[Any]], data: bytes) -> None:
        """In the worker thread: ``before`` on disk, then ``data`` written here and on disk."""
        for writer in before:
            os.fsync(writer._fh.fileno())
        if data:
            self._write(data)
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fsync and self._synced < self._appended and not self._fh.closed:
            os.fsync(self._fh.fileno())
            self._synced = self._appended
        self._fh.close()

    def __enter__(self) -> JsonlWriter[R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CompressedJsonlWriter(JsonlWriter[R]):
    """A ``.jsonl.gz``: each record is one line in its own gzip member (durable like any line)."""

    def _repair_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        keep = sum(len(member) for member in _members(data, str(self.path))[0])
        if keep < len(data):
            with self.path.open("r+b") as fh:
                fh.truncate(keep)

    def _encode(self, record: R) -> bytes:
        if not isinstance(record, self.model):
            raise TypeError(f"{self.path.name} holds {self.model.__name__} records, "
                            f"not {type(record).__name__}")
        return compressed_line(record)


def replace_jsonl(path: Path, records: Sequence[Record]) -> None:
    """Write ``records`` as the whole of ``path`` at once (a temporary file renamed over it):
    the files a merge assembles from its shards."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record.to_json(), sort_keys=True) + "\n")
    os.replace(tmp, path)


def encode_line(record: Any) -> bytes:
    """A record's line as every writer writes it (sorted keys, no spaces, newline)."""
    line = json.dumps(record.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return (line + "\n").encode()


def compressed_line(record: Any) -> bytes:
    """A record's line as its own gzip member (a ``.jsonl.gz`` line)."""
    return gzip.compress(encode_line(record), mtime=0)


def line_sha256(record: Any) -> str:
    """The SHA-256 of a record's line (what a trial cites of its transcript)."""
    return hashlib.sha256(encode_line(record)).hexdigest()


def _members(data: bytes, where: str) -> tuple[list[bytes], list[bytes]]:
    """The complete gzip members of ``data`` (raw) and their decompressed text; a torn last
    member is left out, a corrupt one before the end is an error."""
    raw: list[bytes] = []
    text: list[bytes] = []
    pos = 0
    while pos < len(data):
        inflater = zlib.decompressobj(wbits=31)
        try:
            out = inflater.decompress(data[pos:])
        except zlib.error:
            raise RecordError.one(where, len(raw) + 1, "corrupt record (not gzip)") from None
        if not inflater.eof:
            break  # a member torn by a crash: dropped
        end = len(data) - len(inflater.unused_data)
        raw.append(data[pos:end])
        text.append(out)
        pos = end
    return raw, text


def read_compressed_jsonl(path: Path, model: type[R]) -> list[R]:
    """Every complete record of a ``.jsonl.gz`` written by ``CompressedJsonlWriter``."""
    if not path.exists():
        return []
    out = []
    for number, text in enumerate(_members(path.read_bytes(), str(path))[1], start=1):
        try:
            obj = json.loads(text)
        except ValueError:
            raise RecordError.one(str(path), number, "corrupt record (not JSON)") from None
        out.append(parse_record(model, obj, str(path), number))
    return out


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
