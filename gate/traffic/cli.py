"""``gate import-traces``: production traces in, a replayable suite out (docs/traffic.md)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gate.config.schema import ToolDef
from gate.config.yamlio import parse_yaml, validation_problems
from gate.environments.replay.model import Rule, Tolerance
from gate.errors import EXIT_OK, ConfigError, Problem
from gate.traffic.build import DEFAULT_WRITES, ImportOptions, build_suite
from gate.traffic.jsonl import read_jsonl_sessions
from gate.traffic.session import Session
from gate.traffic.summary import render
from gate.traffic.write import SUMMARY_FILE, project_files, write_suite

_ENV = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def register(sub: Any) -> None:
    p = sub.add_parser("import-traces", help="production traces (OTLP/JSON or JSONL sessions) "
                       "to tasks of a replay environment; redacts by default")
    p.add_argument("--from", dest="source", required=True, type=Path, metavar="FILE",
                   help="OTLP/JSON (collector file exporter) or JSONL sessions")
    p.add_argument("--env", required=True, type=_env_name, metavar="NAME",
                   help="environment name of the imported tasks (tools/NAME, tasks/NAME, ...)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="new directory to write the suite into (never overwritten)")
    p.add_argument("--redact", action="append", default=[], metavar="REGEX",
                   help="also replace matches of this pattern (repeatable)")
    p.add_argument("--writes", action="append", default=None, metavar="GLOB",
                   help="tool names that change the world, graded (repeatable; default: "
                        "create_*, update_*, refund_*, ... see docs/traffic.md)")
    p.add_argument("--match", action="append", default=[], metavar="TOOL.ARG=RULE",
                   help="how an argument of a write is compared: exact, set, ignore, or a "
                        "number (tolerance)")
    p.add_argument("--limit", type=_positive, metavar="N", help="at most N sessions (earliest)")
    p.add_argument("--since", type=_when, metavar="ISO", help="sessions starting at or after")
    p.add_argument("--until", type=_when, metavar="ISO", help="sessions starting before")
    p.add_argument("--good-score", type=float, default=0.5, metavar="X",
                   help="an evaluation score at or above X labels a session good (default 0.5)")
    p.add_argument("--tools", type=Path, metavar="DIR",
                   help="tool files you already have (*.yaml, gate's tool format): used "
                        "instead of inferring those tools from the calls")
    p.add_argument("--assume-good", action="store_true",
                   help="label every session good (you vouch for this traffic)")
    p.set_defaults(func=cmd_import_traces)


def _env_name(value: str) -> str:
    if not _ENV.match(value):
        raise argparse.ArgumentTypeError(f"must match {_ENV.pattern}")
    return value


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError("must be an integer of at least 1")
    return n


def _when(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError("must be an ISO 8601 date or time") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError("needs a time zone (e.g. 2026-11-01T00:00:00Z)")
    return when


def parse_match(raw: list[str]) -> dict[tuple[str, str], Rule]:
    rules: dict[tuple[str, str], Rule] = {}
    for item in raw:
        target, _, rule = item.partition("=")
        tool, _, arg = target.partition(".")
        if not tool or not arg or not rule:
            raise ConfigError.one("--match", None, f"{item!r}: expected TOOL.ARG=RULE")
        if rule in ("exact", "set", "ignore"):
            rules[(tool, arg)] = rule  # type: ignore[assignment]  # checked just above
            continue
        try:
            rules[(tool, arg)] = Tolerance(tolerance=float(rule))
        except ValueError:
            raise ConfigError.one("--match", None, f"{item!r}: RULE is exact, set, ignore "
                                  "or a non-negative number") from None
    return rules


def read_tool_files(directory: Path) -> dict[str, dict[str, Any]]:
    """``--tools DIR``: every ``*.yaml`` under it, validated as a gate tool file."""
    if not directory.is_dir():
        raise ConfigError.one(str(directory), None, "--tools: not a directory")
    problems: list[Problem] = []
    tools: dict[str, dict[str, Any]] = {}
    for path in sorted([*directory.rglob("*.yaml"), *directory.rglob("*.yml")]):
        try:
            doc = parse_yaml(path.read_text(encoding="utf-8"), str(path))
            tool = ToolDef.model_validate(doc.data)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        except ValidationError as exc:
            problems.extend(validation_problems(doc, exc))
            continue
        tools[tool.name] = tool.model_dump()
    if problems:
        raise ConfigError(problems)
    return tools


def read_sessions(path: Path) -> tuple[list[Session], list[Problem]]:
    """Sessions from either format (OTLP/JSON when the first record has resourceSpans)."""
    shown = str(path)
    if not path.is_file():
        raise ConfigError.one(shown, None, "no such file")
    if _looks_otlp(path):
        from gate.traffic.otlp import read_otlp_sessions

        return read_otlp_sessions(path, shown)
    return read_jsonl_sessions(path, shown)


def _looks_otlp(path: Path) -> bool:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    first = json.loads(raw)
                except ValueError:
                    return '"resourceSpans"' in raw
                return isinstance(first, dict) and "resourceSpans" in first
    return False


def cmd_import_traces(args: argparse.Namespace) -> int:
    try:
        patterns = tuple(re.compile(p) for p in args.redact)
    except re.error as exc:
        raise ConfigError.one("--redact", None, f"not a regular expression: {exc}") from None
    opts = ImportOptions(
        env=args.env, writes=tuple(args.writes) if args.writes else DEFAULT_WRITES,
        match=parse_match(args.match), redact=patterns, limit=args.limit, since=args.since,
        until=args.until, good_score=args.good_score, assume_good=args.assume_good,
        tool_files=read_tool_files(args.tools) if args.tools else {})
    sessions, unreadable = read_sessions(args.source)
    suite = build_suite(sessions, opts, unreadable)
    problems = suite.problems
    for problem in problems:
        print(problem, file=sys.stderr)
    if not suite.summary["tasks"]:
        raise ConfigError.one(str(args.source), None, "no session could be imported "
                              f"({len(sessions)} read, {len(problems)} skipped)")
    files = {**project_files(args.env, suite.system_prompt), **suite.files,
             SUMMARY_FILE: suite.summary}
    write_suite(args.out, files)
    for line in render(suite.summary):
        print(line)
    print(f"wrote {suite.summary['tasks']} tasks to {args.out} (summary: "
          f"{args.out / SUMMARY_FILE})")
    return EXIT_OK
