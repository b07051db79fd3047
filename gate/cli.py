"""Command-line entry point. Each command lives in the module of its concept; this file only
wires them together and turns ``GateError``s into messages and exit codes (never a traceback
for invalid input). The exit code of each error type comes from the one table,
``gate.errors.EXIT_CODES``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from gate import __version__
from gate.cliargs import EXIT_CODES_HELP, GateArgumentParser
from gate.errors import CircuitBreakerError, ConfigError, GateError, exit_code_for
from gate.providers.redact import HIERARCHIES, RedactingFilter

_HANDLER_NAME = "gate-cli"
OTLP_EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http"  # the OTel extra's exporter

# Modules that contribute subcommands: each has ``register(subparsers)`` which adds parsers
# whose ``func`` default is ``Callable[[argparse.Namespace], int]``.
COMMAND_MODULES = (
    "gate.commands",
    "gate.report.cli",
    "gate.simulate.cli",
    "gate.github.cli",
    "gate.scaffold",
    "gate.traffic.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = GateArgumentParser(
        prog="gate", description="A CI gate for LLM agents.", epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"gate {__version__}",
                        help="print the version and exit")
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


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record arrives (it may be replaced)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(*, verbose: bool, stream: TextIO | None = None) -> logging.Handler:
    """One stderr handler, with the secret-redacting filter, on the ``gate``, ``httpx`` and
    ``httpcore`` loggers (children included, by propagation). The root logger is left alone;
    calling this again replaces the handler instead of adding a second one."""
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    handler.set_name(_HANDLER_NAME)
    for name in HIERARCHIES:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    # gate reports an export the collector refused, with its status and reason; the OTLP
    # exporter's own "Failed to export spans batch code: 422" says less, so only with -v.
    logging.getLogger(OTLP_EXPORTER_LOGGER).setLevel(
        logging.NOTSET if verbose else logging.CRITICAL)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(verbose=args.verbose)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"gate: {len(exc.problems)} problem(s); invalid input", file=sys.stderr)
        return exit_code_for(exc)
    except CircuitBreakerError as exc:  # the engine reports its own; this one escaped it
        print(f"[CIRCUIT BREAKER] {exc.reason} at task -, round 0", file=sys.stderr)
        return exit_code_for(exc)
    except GateError as exc:  # refused resume, refused registry write, ...: a message, not a trace
        print(f"gate: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print("gate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
