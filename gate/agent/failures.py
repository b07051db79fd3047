"""An agent program's own failures, named before any task is blamed.

A trial whose program exited non-zero or timed out says nothing about the task or the model: the
smoke test and every report state it first, as "the agent program exited 2 in 3 of 3 trials:
<last stderr line>". The stderr line is the program's text: untrusted, cut short here, and
neutralised by whatever renders it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from gate.records import Trial

LINE_CHARS = 200


def program_failure(agent: dict[str, Any] | None) -> str | None:
    """``"exit N"`` or ``"timeout"`` when this trial's program failed, else None."""
    if not agent or agent.get("kind") != "program":
        return None
    if agent.get("timed_out"):
        return "timeout"
    code = agent.get("exit_code")
    if isinstance(code, int) and code != 0:
        return f"exit {code}"
    return None


def last_stderr_line(agent: dict[str, Any]) -> str:
    tail = str(agent.get("stderr_tail") or "")
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    return lines[-1][:LINE_CHARS] if lines else "(nothing on stderr)"


def program_failures(trials: Iterable[Trial]) -> list[str]:
    """One sentence per way the program failed (most frequent first), over the trials a program
    ran; empty when it never failed."""
    ran = [t for t in trials if t.agent and t.agent.get("kind") == "program"]
    kinds: Counter[str] = Counter()
    last: dict[str, dict[str, Any]] = {}
    for t in ran:
        kind = program_failure(t.agent)
        if kind is not None and t.agent is not None:
            kinds[kind] += 1
            last[kind] = t.agent
    out = []
    for kind, k in kinds.most_common():
        what = "timed out" if kind == "timeout" else f"exited {kind.split()[1]}"
        out.append(f"the agent program {what} in {k} of {len(ran)} trials: "
                   f"{last_stderr_line(last[kind])}")
    return out
