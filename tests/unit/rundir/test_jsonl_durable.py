"""JsonlWriter in the event loop: fsync off the loop's thread, a record durable before awrite
returns, concurrent syncs sharing one fsync."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from gate.records import Record
from gate.rundir.jsonl import JsonlWriter, read_jsonl


class I(Record):  # noqa: E742  (a one-field test record)
    i: int


class A(Record):
    a: int


class FsyncSpy:
    """Records, per fsync, the calling thread and how many lines the file held."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls: list[tuple[int, int]] = []
        self.real = os.fsync

    def __call__(self, fd: int) -> None:
        lines = self.path.read_bytes().count(b"\n")
        self.calls.append((threading.get_ident(), lines))
        self.real(fd)


@pytest.fixture
def spy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FsyncSpy:
    spy = FsyncSpy(tmp_path / "trials.jsonl")
    monkeypatch.setattr(os, "fsync", spy)
    return spy


def test_awrite_returns_after_an_fsync_that_covers_the_record_off_the_loop_thread(
    spy: FsyncSpy,
) -> None:
    async def go() -> tuple[int, list[int]]:
        seen = []
        with JsonlWriter(spy.path, I) as w:
            for i in range(3):
                await w.awrite(I(i=i))
                seen.append(max(lines for _, lines in spy.calls))
        return threading.get_ident(), seen

    loop_thread, covered = asyncio.run(go())
    assert covered == [1, 2, 3]  # when awrite(i) returned, an fsync had seen line i
    assert spy.calls
    assert all(thread != loop_thread for thread, _ in spy.calls)
    assert [r["i"] for r in read_jsonl(spy.path)] == [0, 1, 2]


def test_concurrent_writers_share_fsyncs_and_each_waits_for_its_own(spy: FsyncSpy) -> None:
    async def go() -> list[int]:
        with JsonlWriter(spy.path, I) as w:
            async def one(i: int) -> int:
                await w.awrite(I(i=i))
                return max(lines for _, lines in spy.calls)

            return list(await asyncio.gather(*(one(i) for i in range(20))))

    covered = asyncio.run(go())
    assert all(c == 20 or c >= i + 1 for i, c in enumerate(covered))
    assert 1 <= len(spy.calls) < 20  # group commit: fewer fsyncs than records


def test_appended_lines_are_durable_after_sync_and_at_close(spy: FsyncSpy) -> None:
    async def go() -> int:
        w = JsonlWriter(spy.path, A)
        w.append(A(a=1))
        w.append(A(a=2))
        assert spy.calls == []  # append alone never fsyncs
        await w.sync()
        covered = max(lines for _, lines in spy.calls)
        w.append(A(a=3))
        w.close()
        return covered

    assert asyncio.run(go()) == 2
    assert spy.calls[-1][1] == 3  # close made the last appended line durable


def test_without_fsync_sync_is_free(spy: FsyncSpy) -> None:
    async def go() -> None:
        with JsonlWriter(spy.path, A, fsync=False) as w:
            await w.awrite(A(a=1))

    asyncio.run(go())
    assert spy.calls == []
    assert read_jsonl(spy.path) == [{"a": 1}]


def test_commit_after_makes_the_first_file_durable_before_the_record_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A trial line is written only once its audit lines are on disk, then made durable;
    concurrent trials share the fsyncs (one batch)."""
    audit_path, trials_path = tmp_path / "audit.jsonl", tmp_path / "trials.jsonl"
    seen: list[tuple[str, int, int]] = []  # per fsync: which file, audit lines, trial lines
    real = os.fsync

    def spy(fd: int) -> None:
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        seen.append((name, audit_path.read_bytes().count(b"\n"),
                     trials_path.read_bytes().count(b"\n") if trials_path.exists() else 0))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)

    async def go() -> None:
        with JsonlWriter(audit_path, A) as audit, JsonlWriter(trials_path, I) as trials:
            audit.append(A(a=1))
            await trials.commit_after(audit, I(i=1))
            assert seen == [("audit.jsonl", 1, 0), ("trials.jsonl", 1, 1)]
            seen.clear()

            async def one(i: int) -> None:
                audit.append(A(a=i))
                await trials.commit_after(audit, I(i=i))

            await asyncio.gather(*(one(i) for i in range(2, 12)))

    asyncio.run(go())
    assert seen[0] == ("audit.jsonl", 11, 1)  # every audit line durable, no new trial yet
    assert seen[1] == ("trials.jsonl", 11, 11)
    assert len(seen) == 2  # ten trials, one batch
    assert [r["i"] for r in read_jsonl(trials_path)] == list(range(1, 12))
