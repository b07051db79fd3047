"""``gate report``, ``gate verify``, ``gate show`` and ``gate export-otel``."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from gate.cliargs import CONFIG, run_dir
from gate.report.states import NO_REPORT
from gate.rundir import RunDir

_SHA = re.compile(r"[0-9a-fA-F]{7,40}")


def register(sub: Any) -> None:
    p = sub.add_parser("report", parents=[CONFIG],
                       help="render the report of a run directory (also writes DIR/report.md)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=run_dir, metavar="DIR", help="run directory")
    source.add_argument("--no-report", metavar="REASON", choices=sorted(NO_REPORT),
                        help="print the report.md of a PR (or one sweep, --sweep) that has no "
                        "sweep report, for REASON: " + ", ".join(sorted(NO_REPORT)))
    p.add_argument("--sweep", metavar="NAME", help="with --no-report: the sweep it is about")
    p.add_argument("--head-sha", metavar="SHA", help="with --no-report: the PR's head commit")
    p.add_argument("--format", choices=("md", "json"), default="md",
                   help="md (default; also writes DIR/report.md) or json (the results)")
    p.add_argument("--changes", type=Path, metavar="FILE",
                   help="the `gate changes` JSON of the PR: the report says what the PR changed")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("verify", parents=[CONFIG],
                       help="re-derive results from trials, audit and manifest")
    p.add_argument("--run", required=True, type=run_dir, metavar="DIR",
                   help="run directory to check (exit 4 when there is no run)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("show", parents=[CONFIG],
                       help="print trial transcripts: what the model saw and said")
    p.add_argument("--run", required=True, type=run_dir, metavar="DIR", help="run directory")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trial", metavar="ID", default=None,
                       help="one trial, by id (<arm>/<task>/r<round>)")
    which.add_argument("--failed", action="store_true",
                       help="only the trials that failed or were not scored")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export-otel", parents=[CONFIG],
                       help="send a run as OpenTelemetry GenAI spans over OTLP/HTTP "
                            "(needs the extra gate[otel])")
    p.add_argument("--run", required=True, type=run_dir, metavar="DIR",
                   help="the run directory")
    p.add_argument("--endpoint", default=None,
                   help="the OTLP/HTTP traces URL (default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "
                        "or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces)")
    p.add_argument("--timeout-s", type=float, default=10.0, help="per request (default 10)")
    p.set_defaults(func=cmd_export_otel)


def cmd_report(args: argparse.Namespace) -> int:
    from gate.report.render import load_run, render_markdown

    if args.no_report is not None:
        from gate.report.states import no_report

        head = args.head_sha if args.head_sha and _SHA.fullmatch(args.head_sha) else None
        sys.stdout.write(no_report(args.no_report, head, args.sweep))
        return 0
    if args.format == "json":
        _manifest, results = load_run(args.run)
        print(json.dumps(results.to_json(), indent=2, sort_keys=True))
        return 0
    text = render_markdown(args.run, args.changes)
    RunDir(args.run).write_report(text)
    sys.stdout.write(text)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from gate.engine.verify import verify_run

    problems = verify_run(args.run)
    for p in problems:
        print(f"MISMATCH {p}")
    if problems:
        print(f"verify: {len(problems)} difference(s): the results are not what the artifacts "
              "say")
        return 1
    print(f"verify: results re-derived from the artifacts in {args.run}: identical")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from gate.report.show import show

    shown = show(args.run, args.trial, args.failed)
    if shown == 0:
        print("show: no trial matches", file=sys.stderr)
    return 0


def cmd_export_otel(args: argparse.Namespace) -> int:
    from gate.report.otel import ENDPOINT_VARS, export_run, refusal_text

    if args.endpoint is None and not any(os.environ.get(v) for v in ENDPOINT_VARS):
        print("gate: export-otel needs --endpoint or OTEL_EXPORTER_OTLP_ENDPOINT",
              file=sys.stderr)
        return 4
    summary = export_run(args.run, endpoint=args.endpoint, timeout_s=args.timeout_s)
    print(f"export-otel: {summary.traces} trial traces, {summary.chat_spans} chat spans, "
          f"{summary.tool_spans} tool spans, {summary.evaluation_events} evaluation events"
          f"{'' if summary.ok else '; ' + refusal_text(summary)}")
    return 0 if summary.ok else 1
