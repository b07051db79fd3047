"""Command-line entry point. Each command lives in the module of its concept; this file only
wires them together and turns ``GateError``s into messages and exit codes (never a traceback
for invalid input)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from gate.errors import ConfigError, GateError

EXIT_INVALID = 4

# Modules that contribute subcommands: each has ``register(subparsers)`` which adds parsers
# whose ``func`` default is ``Callable[[argparse.Namespace], int]``.
COMMAND_MODULES = (
    "gate.commands",
    "gate.engine.sweep",
    "gate.engine.shard",
    "gate.report.cli",
    "gate.providers.cli",
    "gate.github.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gate", description="A CI gate for LLM agents.")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"gate: {len(exc.problems)} problem(s); invalid input", file=sys.stderr)
        return EXIT_INVALID
    except GateError as exc:  # refused resume, refused registry write, ...: a message, not a trace
        print(f"gate: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("gate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
