"""The run directory: every file name of a run, and its typed reader and writer.

| file                      | record (gate.records)          | written by                     |
|---------------------------|--------------------------------|--------------------------------|
| ``manifest.json``         | ``Manifest``                   | the run, before any call       |
| ``audit.jsonl``           | ``AuditAttempt`` (two-phase)   | the provider path, per attempt |
| ``trials.jsonl``          | ``Trial``                      | the engine, per finished trial |
| ``heartbeat.jsonl``       | ``Heartbeat``                  | the engine, at an interval     |
| ``stop.json``             | ``Stop`` (halt, stop reason)   | the run, when it stops         |
| ``results.json``          | ``Results``                    | derived from the files above   |
| ``PARTIAL-RESULTS.json``  | ``PartialResults``             | instead, when halted or paused |
| ``smoke.json``            | ``Smoke``                      | ``gate smoke``                 |
| ``shard.json``            | ``ShardInfo``                  | ``gate sweep --shard``         |
| ``stages.json``           | ``Stages``                     | ``gate merge``                 |
| ``report.md``             | text                           | ``gate report``, run and sweep |
| ``earlier-run.json``      | ``EarlierVerdict``             | a sweep or merge the ledger    |
|                           |                                | refused (an earlier verdict)   |

No other module names these files: it asks a ``RunDir``.

    jsonl   append-only JSON-lines files that survive a crash (JsonlWriter, read_jsonl)
    audit   audit.jsonl's two phases folded into one record per attempt
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gate.records import (
    AuditAttempt,
    AuditLine,
    EarlierVerdict,
    HaltRecord,
    Heartbeat,
    Manifest,
    PartialResults,
    Results,
    ShardInfo,
    Smoke,
    Stages,
    Stop,
    Trial,
    read_record,
    write_record,
)
from gate.rundir.audit import read_audit, read_audit_lines
from gate.rundir.jsonl import JsonlWriter, read_jsonl

MANIFEST = "manifest.json"
AUDIT = "audit.jsonl"
TRIALS = "trials.jsonl"
HEARTBEAT = "heartbeat.jsonl"
STOP = "stop.json"
RESULTS = "results.json"
PARTIAL = "PARTIAL-RESULTS.json"
SMOKE = "smoke.json"
SHARD = "shard.json"
STAGES = "stages.json"
REPORT = "report.md"
EARLIER = "earlier-run.json"  # the comparison ledger refused: an earlier run decided it
TRANSCRIPTS = "transcripts.jsonl.gz"  # one compressed line per trial (gate.engine.transcripts)


SMOKE_RUNS = ("expert", "random", "breaker")
"""The runs of a smoke, each in the subdirectory of its name."""


class RunDir:
    """One run directory (which need not exist yet)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        """The path of one of the files named above (``RunDir.file(TRIALS)``)."""
        return self.path / name

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def trials_path(self) -> Path:
        return self.path / TRIALS

    @property
    def audit_path(self) -> Path:
        return self.path / AUDIT

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    @property
    def smoke_path(self) -> Path:
        return self.path / SMOKE

    def holds_run(self) -> bool:
        """A run was started here (a manifest or a trial written)."""
        return self.manifest_path.exists() or self.trials_path.exists()

    def has_manifest(self) -> bool:
        return self.manifest_path.is_file()

    # --- manifest, trials, audit, heartbeat ------------------------------------------------

    def manifest(self) -> Manifest:
        return read_record(self.manifest_path, Manifest)

    def write_manifest(self, manifest: Manifest) -> None:
        write_record(self.manifest_path, manifest)

    def trials(self) -> list[Trial]:
        return read_jsonl(self.trials_path, Trial)

    def audit(self) -> list[AuditAttempt]:
        """One validated record per attempt (a start without an outcome is ``interrupted``)."""
        return read_audit(self.audit_path)

    def audit_lines(self) -> list[AuditLine]:
        """audit.jsonl's lines as written (both phases), each validated by its shape."""
        return read_audit_lines(self.audit_path)

    def heartbeats(self) -> list[Heartbeat]:
        return read_jsonl(self.file(HEARTBEAT), Heartbeat)

    def trials_writer(self) -> JsonlWriter[Trial]:
        return JsonlWriter(self.trials_path, Trial)

    def audit_writer(self) -> JsonlWriter[AuditLine]:
        return JsonlWriter(self.audit_path, AuditLine)

    def heartbeat_writer(self) -> JsonlWriter[Heartbeat]:
        return JsonlWriter(self.file(HEARTBEAT), Heartbeat, fsync=False)

    def spent_usd(self) -> float:
        """What the run has paid so far: the computed cost of its own attempts (reused trials
        were paid by the run they came from)."""
        return sum(a.cost_computed_usd for a in self.audit() if a.reused_from is None)

    # --- stop and results ------------------------------------------------------------------

    def stop(self) -> Stop:
        """Why the run stopped; a run without stop.json ran to its end (no halt, no reason)."""
        path = self.file(STOP)
        return read_record(path, Stop) if path.exists() else Stop(halt=None, stopped=None)

    def write_stop(self, halt: HaltRecord | None, stopped: str | None) -> None:
        write_record(self.file(STOP), Stop(halt=halt, stopped=stopped))

    def results_path(self, status: str) -> Path:
        """results.json for a finished run, PARTIAL-RESULTS.json for a halted or paused one."""
        return self.path / (RESULTS if status in ("complete", "inconclusive") else PARTIAL)

    def stored_results_path(self) -> Path | None:
        """The results file the run holds, or None."""
        return next((p for p in (self.file(RESULTS), self.file(PARTIAL)) if p.exists()), None)

    def results(self) -> Results:
        """The stored results (results.json or PARTIAL-RESULTS.json, each by its own model)."""
        path = self.stored_results_path() or self.file(RESULTS)
        return read_results(path)

    def write_results(self, results: Results) -> Path:
        """results.json for finished runs; PARTIAL-RESULTS.json (saying what is missing) else;
        the other one is removed."""
        path = self.results_path(results.status)
        other = self.file(PARTIAL if path.name == RESULTS else RESULTS)
        write_record(path, as_written(results))
        if other.exists():
            other.unlink()
        return path

    # --- smoke, shard, stages, report ------------------------------------------------------

    def smoke(self) -> Smoke:
        return read_record(self.smoke_path, Smoke)

    def write_smoke(self, smoke: Smoke) -> None:
        write_record(self.smoke_path, smoke)

    def drop_smoke(self) -> None:
        self.smoke_path.unlink(missing_ok=True)

    def clear_smoke(self) -> None:
        """Ready for a smoke: the directory made, its runs and its smoke.json removed (a smoke
        redoes them each time)."""
        self.path.mkdir(parents=True, exist_ok=True)
        for sub in SMOKE_RUNS:
            shutil.rmtree(self.path / sub, ignore_errors=True)
        self.drop_smoke()

    def shard(self) -> ShardInfo | None:
        path = self.file(SHARD)
        return read_record(path, ShardInfo) if path.exists() else None

    def write_shard(self, info: ShardInfo) -> None:
        write_record(self.file(SHARD), info)

    def stages(self) -> Stages | None:
        path = self.file(STAGES)
        return read_record(path, Stages) if path.exists() else None

    def write_stages(self, stages: Stages) -> None:
        write_record(self.file(STAGES), stages)

    def write_report(self, text: str) -> Path:
        self.report_path.write_text(text, encoding="utf-8")
        return self.report_path

    def earlier(self) -> EarlierVerdict | None:
        """earlier-run.json, when the ledger refused this directory's run, else None."""
        path = self.file(EARLIER)
        return read_record(path, EarlierVerdict) if path.exists() else None

    def write_earlier(self, record: EarlierVerdict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_record(self.file(EARLIER), record)

    def clear_earlier(self) -> None:
        """A run made here after all (--force-restart): no refusal stands beside it."""
        self.file(EARLIER).unlink(missing_ok=True)


def read_results(path: Path) -> Results:
    """results.json or PARTIAL-RESULTS.json, each validated against its own model."""
    return read_record(path, PartialResults if path.name == PARTIAL else Results)


def as_written(results: Results) -> Results:
    """The record as it is written: a ``PartialResults`` saying what is missing when the run
    did not finish, the ``Results`` themselves otherwise."""
    if RunDir(".").results_path(results.status).name == RESULTS:
        return results
    counts = results.scope.counts
    missing = (f"{counts.not_run} of {results.scope.planned} planned cells were not run "
               f"({results.status}); resume with --resume to complete them")
    return PartialResults(**dict(results), missing=missing)
