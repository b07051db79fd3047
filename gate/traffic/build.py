"""Imported sessions -> a replay suite: redaction, episodes, dedup, tools, tasks, fixtures and
the coverage summary. Pure: returns the files to write (``gate.traffic.write`` writes them)."""

from __future__ import annotations

import fnmatch
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from gate.environments.common import canonical_json, stable_int
from gate.environments.replay.model import ExpectedWrite, Rule, canonical_args, write_matches
from gate.errors import Problem
from gate.project.load import NEEDS_LABEL
from gate.traffic.redact import Redactor
from gate.traffic.session import Call, Episode, Session, episode
from gate.traffic.summary import coverage
from gate.traffic.tools import call_problems, recorded_definitions, tool_files

DEFAULT_WRITES = (
    "create_*", "update_*", "delete_*", "set_*", "cancel_*", "refund_*", "send_*", "issue_*",
    "close_*", "assign_*", "add_*", "remove_*", "submit_*", "approve_*", "reject_*", "write_*",
    "restart_*", "rollback_*", "route_*", "escalate_*", "scale_*", "post_*", "merge_*",
)
MAX_DISTRACTORS = 4
MAX_CALLS = 97  # a task's step_limit is at most 100 and must exceed the reference's length
DEFAULT_PROMPT = ("You are the agent whose production sessions these tasks replay. Use the tools "
                  "to do what the user asks, then answer briefly.")


@dataclass(frozen=True)
class ImportOptions:
    env: str
    writes: tuple[str, ...] = DEFAULT_WRITES  # tool name patterns (fnmatch)
    match: dict[tuple[str, str], Rule] = field(default_factory=dict)  # (tool, arg) -> rule
    redact: tuple[re.Pattern[str], ...] = ()
    limit: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    good_score: float = 0.5  # a score at or above this labels a session good
    assume_good: bool = False  # the team vouches for every session
    tool_files: dict[str, dict[str, Any]] = field(default_factory=dict)  # --tools: name -> def


@dataclass
class Suite:
    files: dict[str, Any]  # relative path -> content (written as YAML by gate.traffic.write)
    summary: dict[str, Any]
    problems: list[Problem]
    system_prompt: str = DEFAULT_PROMPT


@dataclass
class _Task:
    ep: Episode
    good: bool
    merged: int = 0


def select(sessions: list[Session], opts: ImportOptions) -> tuple[list[Session], Counter[str]]:
    """``--since/--until`` (sessions without a start time are left out when either is given),
    ordered by start time, then ``--limit``."""
    dropped: Counter[str] = Counter()
    kept = []
    for s in sessions:
        if opts.since is not None or opts.until is not None:
            if s.started_at is None:
                dropped["no start time"] += 1
                continue
            if (opts.since and s.started_at < opts.since) or (
                    opts.until and s.started_at >= opts.until):
                dropped["outside --since/--until"] += 1
                continue
        kept.append(s)
    kept.sort(key=lambda s: (s.started_at is None, s.started_at or datetime.min))
    if opts.limit is not None and len(kept) > opts.limit:
        dropped["beyond --limit"] += len(kept) - opts.limit
        kept = kept[: opts.limit]
    return kept, dropped


def redact_session(session: Session, patterns: tuple[re.Pattern[str], ...]) -> tuple[
        Session, Counter[str]]:
    r = Redactor(patterns)
    out = replace(session, id=r.text(session.id), messages=r.value(session.messages),
                  tools=r.value(session.tools) if session.tools is not None else None)
    return out, r.counts


def normal_form(text: str) -> str:
    """Near-identical instructions share this: case, spacing and punctuation ignored."""
    return " ".join(re.sub(r"[^\w<>]+", " ", text.lower()).split())


def is_good(s: Session, opts: ImportOptions) -> bool:
    if opts.assume_good or s.label == "good":
        return True
    return s.label is None and s.score is not None and s.score >= opts.good_score


def build_suite(sessions: list[Session], opts: ImportOptions,
                unreadable: list[Problem] | None = None) -> Suite:
    """``unreadable``: what the reader skipped (counted in the summary, returned first)."""
    problems: list[Problem] = list(unreadable or [])
    chosen, dropped = select(sessions, opts)
    tasks, episodes, redactions = _merged_episodes(chosen, opts, problems)
    writes = _write_tools([c for t in tasks.values() for c in t.ep.calls], opts.writes)
    defs = {**recorded_definitions(d for t in tasks.values() for d in (t.ep.session.tools or [])),
            **opts.tool_files}  # the team's own tool files win over what traces carry
    tools = tool_files([c for t in tasks.values() for c in t.ep.calls], defs, writes)
    fitting = _fitting(list(tasks.values()), tools, problems)
    fit = {id(t.ep.session) for t in fitting}
    imported = [ep for ep in episodes if not _skipped(ep, tasks, fit)]
    labels = Counter("good" if is_good(ep.session, opts) else ep.session.label or "unlabelled"
                     for ep in imported)
    summary = coverage(sessions, chosen, dropped, imported,
                       [(t.ep, t.good, t.merged) for t in fitting], problems, redactions, writes,
                       labels)
    prompts = Counter(t.ep.system for t in fitting if t.ep.system and t.ep.system.strip())
    prompt = prompts.most_common(1)[0][0] if prompts else DEFAULT_PROMPT
    return Suite(_files(fitting, tools, writes, opts), summary, problems, prompt)


def _merged_episodes(chosen: list[Session], opts: ImportOptions, problems: list[Problem]
                     ) -> tuple[dict[str, _Task], list[Episode], Counter[str]]:
    """Each session redacted and read into calls; near-identical instructions merged into one
    task (a session labelled good replaces one that is not)."""
    redactions: Counter[str] = Counter()
    tasks: dict[str, _Task] = {}
    episodes: list[Episode] = []
    for raw in chosen:
        s, counts = redact_session(raw, opts.redact)
        redactions.update(counts)
        ep, problem = episode(s)
        if ep is None:
            if problem is not None:
                problems.append(problem)
            continue
        episodes.append(ep)
        key = normal_form(ep.instruction)
        kept = tasks.get(key)
        if kept is None:
            tasks[key] = _Task(ep, is_good(s, opts))
            continue
        kept.merged += 1
        if not kept.good and is_good(s, opts):
            tasks[key] = _Task(ep, True, kept.merged)
    return tasks, episodes, redactions


def _fitting(tasks: list[_Task], tools: dict[str, dict[str, Any]], problems: list[Problem]
             ) -> list[_Task]:
    """The tasks whose every call fits its tool's schema and a task's step limit."""
    fitting = []
    for t in tasks:
        bad = [p for c in t.ep.calls for p in call_problems(c, tools)]
        if len(t.ep.calls) > MAX_CALLS:
            bad.insert(0, f"{len(t.ep.calls)} calls, more than a task's step limit allows")
        if bad:
            path, line = t.ep.session.where
            problems.append(Problem(path, line, f"session {t.ep.session.id}: {bad[0]}; "
                                    "skipped"))
            continue
        fitting.append(t)
    return fitting


def _skipped(ep: Episode, tasks: dict[str, _Task], fit: set[int]) -> bool:
    """True when the task ``ep`` was merged into was skipped (its calls did not fit)."""
    kept = tasks[normal_form(ep.instruction)]
    return id(kept.ep.session) not in fit


def _write_tools(calls: list[Call], patterns: tuple[str, ...]) -> set[str]:
    return {c.tool for c in calls if any(fnmatch.fnmatchcase(c.tool, p) for p in patterns)}


def _clean(args: dict[str, Any]) -> dict[str, Any]:
    return canonical_args(args)


def difficulty(steps: int) -> str:
    """From the observed steps (assistant turns, the final answer included)."""
    return "easy" if steps <= 4 else "medium" if steps <= 7 else "hard"


def step_limit(ep: Episode) -> int:
    """Observed steps with a margin (half again, plus two), above the reference's length."""
    return min(100, max(len(ep.calls) + 2, math.ceil(max(ep.steps, 1) * 1.5) + 2))


def _slug(text: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:40].strip("-") or "session"


def _files(tasks: list[_Task], tools: dict[str, dict[str, Any]], writes: set[str],
           opts: ImportOptions) -> dict[str, Any]:
    env = opts.env
    out: dict[str, Any] = {f"tools/{env}/{name}.yaml": tool for name, tool in tools.items()}
    pool = _Pool.of(tasks, writes)
    for i, t in enumerate(tasks):
        task_id = f"{env}-{i + 1:03d}-{_slug(t.ep.instruction)}"
        fixture = _fixture(t, i, pool, writes, opts)
        tags = ["imported"] + ([] if t.good else [NEEDS_LABEL])
        out[f"tasks/{env}/{task_id}.yaml"] = {
            "id": task_id, "environment": env, "difficulty": difficulty(t.ep.steps),
            "title": " ".join(t.ep.instruction.split())[:70], "instruction": t.ep.instruction,
            "fixture": f"{env}/{task_id}.yaml", "step_limit": step_limit(t.ep), "tags": tags,
        }
        out[f"fixtures/{env}/{task_id}.yaml"] = fixture
    return out


def _fixture(t: _Task, index: int, pool: _Pool, writes: set[str],
             opts: ImportOptions) -> dict[str, Any]:
    calls = t.ep.calls
    recorded = [{"tool": c.tool, "args": _clean(c.args), "result": c.result,
                 **({"error": c.error} if c.error is not None else {})} for c in calls]
    expected = [_expected(c, opts) for c in calls if c.tool in writes and c.error is None]
    reads = _distinct([{"tool": c.tool, "args": _clean(c.args)} for c in calls
                       if c.tool not in writes])
    evidence = reads or [{"tool": calls[0].tool, "args": _clean(calls[0].args)}]
    return {
        "initial_state": {"writes": sorted(writes), "recorded": recorded},
        "required_evidence": evidence,
        "expected": {"writes": expected},
        "distractors": _distractors(index, t, pool, expected),
        "reference_trajectory": [{"tool": c.tool, "args": _clean(c.args)} for c in calls],
        "reference_output": t.ep.final or "(the session ended without a final message)",
    }


def _expected(c: Call, opts: ImportOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"tool": c.tool, "args": _clean(c.args)}
    rules = {arg: rule for (tool, arg), rule in opts.match.items() if tool == c.tool}
    if rules:
        out["match"] = {a: (r if isinstance(r, str) else r.model_dump())
                        for a, r in sorted(rules.items())}
    return out


def _distinct(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for c in calls:
        seen.setdefault(canonical_json(c), c)
    return list(seen.values())


@dataclass(frozen=True)
class _Pool:
    """Every distinct call of the traffic, writes and reads apart, each list in a fixed
    pseudo-random order (so picking is O(distractors) per task, not O(traffic))."""

    writes: list[tuple[str, dict[str, Any]]]
    reads: list[tuple[str, dict[str, Any]]]

    @classmethod
    def of(cls, tasks: list[_Task], writes: set[str]) -> _Pool:
        seen: dict[str, dict[str, Any]] = {}
        for t in tasks:
            for c in t.ep.calls:
                seen.setdefault(canonical_json([c.tool, _clean(c.args)]),
                                {"tool": c.tool, "args": _clean(c.args)})
        ordered = sorted(seen.items(), key=lambda kv: stable_int(kv[0]))
        return cls([kv for kv in ordered if kv[1]["tool"] in writes],
                   [kv for kv in ordered if kv[1]["tool"] not in writes])


def _distractors(index: int, t: _Task, pool: _Pool, expected: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    """Calls recorded in other sessions that this one never made: writes first (a wrong
    write fails the trial), then reads (answered as unrecorded); from a place in each list
    that depends on the task."""
    own = {canonical_json([c.tool, _clean(c.args)]) for c in t.ep.calls}
    wanted = [ExpectedWrite.model_validate(e) for e in expected]
    picked: list[dict[str, Any]] = []
    for candidates in (pool.writes, pool.reads):
        start = stable_int(index)
        for j in range(len(candidates)):
            if len(picked) == MAX_DISTRACTORS:
                return picked
            key, call = candidates[(start + j) % len(candidates)]
            if key in own or any(write_matches(w, call["tool"], call["args"]) for w in wanted):
                continue
            picked.append(call)
    return picked
