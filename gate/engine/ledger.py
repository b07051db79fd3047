"""One ledger per comparison: ``gate sweep --ledger FILE``.

A comparison is the candidate and baseline arms (model, provider, prompts and tools), the
configuration and every hashed file. Running a comparison again after an unwelcome verdict,
with a new plan, and keeping whichever verdict one likes is repeated testing: its error rate
grows with the number of runs. The ledger (a JSONL file; in CI it lives with the PR's cached
runs, and ``gate merge --ledger`` keeps it for sharded sweeps) records every run of every
comparison. A new sweep of a comparison the ledger already holds is refused: a decided one
is reported (its verdict and exit code stand), an undecided one is to be continued
(``--resume --max-rounds``). ``--force-restart`` runs it again anyway; the manifest then
records which run of the comparison it is and the runs before it, and the report says so
("3rd run of this comparison"). A shard (``gate sweep --shard --ledger``) reads the ledger
and never writes it (``check_shard``): the merge records the merged run, once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gate.errors import ConfigError
from gate.records import ArmSpec, Comparison, EarlierVerdict, Manifest, Results
from gate.rundir import RunDir


def comparison_key(manifest: Manifest) -> str:
    """What makes two runs the same comparison (never the plan salt, the run id or the seed)."""
    payload = {"arms": [a.to_json() for a in manifest.arms],
               "config_sha256": manifest.config_sha256,
               "files_sha256": manifest.files_sha256}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    run_id: str
    out: str
    verdict: str | None  # None until the run finished
    plan_salt: str | None = None  # the run's plan (every shard and stage of a sweep shares it)
    slos_met: bool | None = None  # a decided run: were its SLOs met (a pass with a breach: exit 1)


def entries(ledger: Path, key: str) -> list[Entry]:
    """The runs of comparison ``key``, oldest first (the last line per run wins)."""
    if not ledger.exists():
        return []
    runs: dict[str, Entry] = {}
    for n, line in enumerate(ledger.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if row["key"] == key:
                runs[row["run_id"]] = Entry(row["run_id"], row["out"], row.get("verdict"),
                                            row.get("plan_salt"), row.get("slos_met"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError.one(str(ledger), n, f"not a ledger line: {exc}") from exc
    return list(runs.values())


DECIDED = ("pass", "regression")


class EarlierRun(Exception):
    """The comparison was decided by an earlier run: its verdict stands."""

    def __init__(self, entry: Entry, number: int, arms: list[ArmSpec]) -> None:
        breach = " with an SLO breached" if entry.slos_met is False else ""
        super().__init__(f"this comparison was decided by run {entry.run_id} ({entry.out}): "
                         f"{entry.verdict}{breach}; that verdict stands ({number} run(s) in "
                         "the ledger; --force-restart runs it again, recorded)")
        self.entry = entry
        self.number = number  # runs of this comparison in the ledger
        self.arms = arms  # the refused run's arms (the same comparison as the earlier run's)

    def record(self) -> EarlierVerdict:
        """What the refused command writes beside its report (earlier-run.json): only what
        the ledger line and the refused run's own arms hold."""
        # check() raises only for a decided run: its verdict is one of DECIDED
        verdict: Literal["pass", "regression"] = (
            "regression" if self.entry.verdict == "regression" else "pass")
        return EarlierVerdict(run_id=self.entry.run_id, out=self.entry.out, verdict=verdict,
                              slos_met=self.entry.slos_met, runs=self.number, arms=self.arms)


def check(ledger: Path, manifest: Manifest, force: bool) -> Comparison:
    """The comparison record of a new run, or why it may not start (EarlierRun, ConfigError)."""
    key = comparison_key(manifest)
    before = entries(ledger, key)
    if before and not force:
        decided = [e for e in before if e.verdict in DECIDED]
        if decided:
            raise EarlierRun(decided[-1], len(before), manifest.arms)
        last = before[-1]
        raise ConfigError.one(str(ledger), None, (
            f"this comparison already ran ({last.run_id} in {last.out}, "
            f"{last.verdict or 'unfinished'}): continue it with --resume (and --max-rounds) "
            "there, or pass --force-restart (recorded)"))
    return Comparison(key=key, number=len(before) + 1, previous=[e.run_id for e in before],
                      forced=bool(before))


def check_shard(ledger: Path, manifest: Manifest, force: bool) -> None:
    """A shard's check, read-only and before any call: as ``check`` for a new run of the
    comparison (EarlierRun, ConfigError). A shard of the run the ledger holds undecided (the
    same plan salt: a later stage of that sweep, or a shard of it resumed) continues that
    run and may go on."""
    key = comparison_key(manifest)
    own = [e for e in entries(ledger, key)
           if manifest.plan_salt is not None and e.plan_salt == manifest.plan_salt]
    if own and own[-1].verdict not in DECIDED:
        return
    check(ledger, manifest, force)


def record(ledger: Path, manifest: Manifest, out: Path, results: Results | None) -> None:
    """Append the run's line (at its start with no results: no verdict; at its end with its
    verdict and whether its SLOs were met, what its exit code is made of)."""
    if manifest.comparison is None:
        return
    ledger.parent.mkdir(parents=True, exist_ok=True)
    slos = None if results is None else results.slos
    line = {"key": manifest.comparison.key, "run_id": manifest.run_id, "out": str(out),
            "verdict": None if results is None else results.verdict,
            "slos_met": None if slos is None else slos.met, "plan_salt": manifest.plan_salt}
    with open(ledger, "a", encoding="utf-8") as f:
        f.write(json.dumps(line, sort_keys=True) + "\n")


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def record_merged(ledger: Path, out: Path, results: Results) -> None:
    """``gate merge --ledger``: the merged run's line after each stage (its manifest holds
    the comparison ``check`` gave it when the merged run was made)."""
    record(ledger, RunDir(out).manifest(), out, results)
