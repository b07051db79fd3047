"""Argument types and the parser class shared by every ``gate`` subcommand.

A bad flag is invalid input like any other: one line naming the flag, exit 4 (never argparse's
exit 2, which means "halted" to gate's callers, and never a traceback).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import NoReturn

from gate.errors import EXIT_INVALID
from gate.rundir import RunDir

EXIT_CODES_HELP = """\
exit codes:
  0  ok: checks passed, no regression and SLOs met, results identical, change allowed
  1  a verdict against the change: regression or SLO breach, a smoke check failed,
     verify found a mismatch, the adoption guard blocked, a comment could not be posted
  2  halted or paused ([CIRCUIT BREAKER]: budget ceiling, HTTP 402, ...)
  3  inconclusive: provider errors dominate, or the round or budget limit came first
  4  invalid input: a bad flag, configuration file or run directory (one line each)
"""


class GateArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit 4."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument "):  # "argument --out: ..." -> "--out: ..."
            message = message.removeprefix("argument ")
        self.exit(EXIT_INVALID, f"{self.prog}: {message} (see {self.prog} --help)\n")


def config_parent() -> argparse.ArgumentParser:
    """The parent parser of every subcommand that reads a project: ``--config PATH``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", default="gate.yaml", metavar="PATH",
                        help="gate configuration (default: gate.yaml)")
    return parent


CONFIG = config_parent()
"""``sub.add_parser(NAME, parents=[CONFIG], ...)`` gives a subcommand ``--config``."""


def positive_int(text: str) -> int:
    """An integer >= 1 (rounds, round limits)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (seeds)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_usd(text: str) -> float:
    """A finite amount of US dollars above 0 (a ceiling of 0 or less would spend nothing)."""
    value = _float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive amount of USD, got {text}")
    return value


def non_negative_days(text: str) -> float:
    """A finite number of days >= 0 (the oldest reused baseline trial)."""
    value = _float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of days, 0 or more, got {text}")
    return value


def out_dir(text: str) -> Path:
    """A directory to write a run into: it may not exist yet, but it may not be a file."""
    path = Path(text)
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise argparse.ArgumentTypeError(f"{candidate} is a file, not a directory")
            break
    return path


def run_dir(text: str) -> Path:
    """An existing run directory (one holding manifest.json)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no run at {text}")
    run = RunDir(path)
    if not run.has_manifest():
        raise argparse.ArgumentTypeError(f"no run at {text} (no {run.manifest_path.name})")
    return path


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
