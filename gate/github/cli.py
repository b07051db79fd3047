"""Subcommands ``gate changes``, ``gate comment`` and ``gate guard`` (GitHub integration).

The command modules (and PyGithub behind them) are imported when their command runs, so other
commands do not pay for them.
"""

from __future__ import annotations

import argparse
import os
import re

from gate.cliargs import CONFIG
from gate.report.states import NO_REPORT

_SHA = re.compile(r"[0-9a-fA-F]{40}")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _changes(args: argparse.Namespace) -> int:
    from gate.github.changes import run_changes

    return run_changes(args.config, args.base, args.head)


def _sha(text: str) -> str:
    if not _SHA.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not a 40-hex-digit commit sha: {text[:50]!r}")
    return text.lower()


def _comment(args: argparse.Namespace) -> int:
    from gate.github.comment import run_comment

    if args.runs_in is not None and None in (args.pr, args.head_sha, args.head_repo,
                                             args.head_branch):
        args.parser.error("--runs-in needs --pr, --head-sha, --head-repo and --head-branch (an "
                          "artifact's reports are posted only on the PR whose head is the run's)")
    state = args.evaluating or args.no_report is not None
    if state and args.head_sha and args.pr is None and None in (args.head_repo,
                                                                args.head_branch):
        args.parser.error("--evaluating/--no-report with --head-sha and no --pr need "
                          "--head-repo and --head-branch (the PR is the one open PR with that "
                          "head)")
    return run_comment(args.run, args.pr, args.author, args.runs_in, args.head_sha,
                       args.head_repo, args.head_branch, evaluating=args.evaluating,
                       changes=args.changes, no_report=args.no_report)


def _guard(args: argparse.Namespace) -> int:
    from gate.github.guard import run_guard

    return run_guard(args.config, args.pr, args.protected_branch)


def _plan(args: argparse.Namespace) -> int:
    from gate.github.stages import run_plan

    return run_plan(args.sweeps, args.shards, args.pr_budget_usd, args.go_on == "true",
                    args.runs)


def _budget(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number >= 0")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "changes",
        parents=[CONFIG],
        help="JSON: changed prompts, tools, model entries, tasks, and the sweeps they require",
        description="Compare two git refs; print what changed and the sweeps required "
        "(`matrix` is ready for a GitHub Actions matrix). Exit 0.",
    )
    p.add_argument("--base", required=True, metavar="REF", help="base ref (branch, tag, sha)")
    p.add_argument("--head", default="HEAD", metavar="REF", help="head ref (default: HEAD)")
    p.set_defaults(func=_changes)

    p = sub.add_parser(
        "comment",
        parents=[CONFIG],
        help="create or update the single PR comment with DIR/report.md",
        description="Post DIR/report.md as the PR's single gate comment (found by a hidden "
        "marker and the token's own login; updated in place) and append it to the job "
        "summary; or a state without a report (--evaluating, --no-report). Needs GITHUB_TOKEN "
        "and GITHUB_REPOSITORY. Exit 0 posted (or nothing to post), 1 failed or refused.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", action="append", metavar="DIR",
                        help="run directory holding report.md; repeat to post several reports")
    source.add_argument("--runs-in", metavar="DIR",
                        help="post DIR/*/report.md from another run's artifact, read as "
                        "untrusted data (exact layout, no links, size caps; anything else "
                        "refuses); needs --pr and --head-sha")
    source.add_argument("--evaluating", action="store_true",
                        help="post the 'evaluating' state (which sweeps run, on which head), "
                        "replaced by the result when the run ends")
    source.add_argument("--no-report", metavar="REASON", choices=sorted(NO_REPORT),
                        help="post the state of a gate run that ended without a report, for "
                        f"REASON: {', '.join(sorted(NO_REPORT))} (the hyphen-free ones are "
                        "GitHub's run conclusions; see docs/github.md)")
    p.add_argument("--changes", metavar="FILE",
                   help="with --evaluating: the `gate changes` JSON naming the sweeps")
    p.add_argument("--pr", type=_positive, metavar="N",
                   help="PR number (default: from GITHUB_EVENT_PATH, else DIR/pr.json)")
    p.add_argument("--head-sha", type=_sha, metavar="SHA",
                   help="post only if PR N's head commit (from the API) is SHA, the commit "
                   "the reports were made for (workflow_run: the run's head_sha); else exit 1. "
                   "With --evaluating/--no-report and no --pr: post on the one open PR whose "
                   "head is SHA, --head-repo and --head-branch (none or several: nothing "
                   "posted, exit 0)")
    p.add_argument("--head-repo", metavar="OWNER/NAME",
                   help="post only if PR N's head repository is this (workflow_run: the run's "
                   "head_repository.full_name)")
    p.add_argument("--head-branch", metavar="BRANCH",
                   help="post only if PR N's head branch is this (workflow_run: the run's "
                   "head_branch)")
    p.add_argument("--author", metavar="LOGIN", default=os.environ.get("GATE_COMMENT_AUTHOR"),
                   help="login the token posts as, when GET /user cannot tell (GitHub App: "
                   "'<app-slug>[bot]'; default: GET /user, else github-actions[bot])")
    p.set_defaults(func=_comment, parser=p)

    p = sub.add_parser(
        "plan",
        help="the next stage of a PR's sweeps as an Actions matrix (matrix=..., any=...)",
        description="Plan one stage of the sweeps `gate changes` asked for: stage 1 at once, a "
        "later stage only with --continue true; one PR budget split over the sweeps. Prints "
        "matrix=<json> and any=<bool> for $GITHUB_OUTPUT. Exit 0, 4 invalid input.",
    )
    p.add_argument("--sweeps", required=True, metavar="JSON",
                   help="gate changes' matrix: {\"include\": [...]}")
    p.add_argument("--shards", type=_positive, required=True, metavar="N",
                   help="shard jobs per stage (each sweep's stage is dealt to N jobs)")
    p.add_argument("--pr-budget-usd", type=_budget, required=True, metavar="X",
                   help="one budget for the whole PR, split evenly over its sweeps")
    p.add_argument("--continue", dest="go_on", choices=("true", "false"), default="false",
                   help="the PR has the gate:continue label (default: false)")
    p.add_argument("--runs", default="runs", metavar="DIR",
                   help="restored run directories, DIR/<id>/stages.json (default: runs)")
    p.set_defaults(func=_plan)

    p = sub.add_parser(
        "guard",
        parents=[CONFIG],
        help="adoption guard: a model becoming adopted needs a code owner's approval",
        description="Publish commit status gate/adoption-guard on the PR head: pending first, "
        "then the verdict, if nothing changed meanwhile. Only open PRs into the default branch "
        "(or a --protected-branch) are judged; for others nothing is published (exit 0). "
        "Exit 0 allowed, 1 blocked.",
    )
    p.add_argument("--pr", type=_positive, metavar="N",
                   help="PR number (default: from GITHUB_EVENT_PATH)")
    p.add_argument("--protected-branch", action="append", default=[], metavar="NAME",
                   help="a branch besides the default branch whose PRs are judged; repeat")
    p.set_defaults(func=_guard)
