"""One registry of environments for everyone: configuration loading, the runner, the mock
models and the smoke test all resolve an environment's name here.

Three sources, one door:

- gate's own ``incident``, ``orders`` and ``replay``: entry points of gate's distribution in
  the group ``gate.environments`` (``pyproject.toml``); listed in ``BUILTIN`` too, so a
  source checkout whose installed metadata is stale still finds them;
- entry points of any other installed distribution in the same group (entry name =
  environment name);
- ``gate.yaml``: ``environments: {NAME: "package.module:ClassName"}``, imported with the
  directory holding gate.yaml first on ``sys.path``.

Nothing is imported until a name is resolved (no import side effects). A broken declaration
(module not found, class missing, not an ``Environment`` subclass, a name declared twice) is a
``ConfigError`` naming gate.yaml and the line of the declaration (exit 4).

A user's module is imported once per (project root, spec). Its top-level package name (often
``environments``) may be the same in two projects loaded by one process, so before importing
for a root, modules of that name loaded from elsewhere are evicted from ``sys.modules``; the
classes already resolved keep working, and ``sys.path`` is restored after the import.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Literal

from gate.config.schema import Fixture
from gate.environments.base import Environment, EnvOutcome, ToolResult
from gate.errors import ConfigError, Problem

GROUP = "gate.environments"
GATE_DIST = "gate"
BUILTIN: dict[str, str] = {
    "incident": "gate.environments.incident.env:IncidentEnvironment",
    "orders": "gate.environments.orders.env:OrdersEnvironment",
    "replay": "gate.environments.replay.env:ReplayEnvironment",
}
BUILTIN_WHERE = "gate (built-in)"
_SPEC = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

Source = Literal["builtin", "entry point", "gate.yaml"]


@dataclass(frozen=True)
class Declaration:
    """Where an environment's name comes from. ``where`` is shown in messages."""

    name: str
    spec: str  # "package.module:ClassName"
    source: Source
    where: str  # "gate.yaml:12", "entry point of mypkg 1.0", "gate (built-in)"
    path: str | None = None  # gate.yaml declarations: the config file and line
    line: int | None = None

    def problem(self, message: str) -> Problem:
        if self.path is not None:
            return Problem(self.path, self.line, f"environments.{self.name}: {message}")
        return Problem(self.where, None, f"environment {self.name!r}: {message}")


@dataclass(frozen=True)
class LoadedEnvironment:
    """A resolved environment class and the directory its code lives in (for tracebacks)."""

    name: str
    cls: type[Environment]
    declaration: Declaration
    home: Path  # user frames in a traceback are the ones under this directory


_CACHE: dict[tuple[str, str], LoadedEnvironment] = {}


def discover_entry_points() -> list[Declaration]:
    """Every entry point of the group, gate's own marked as built-in."""
    found = []
    for ep in entry_points(group=GROUP):
        dist = ep.dist
        dist_name = dist.name if dist is not None else "unknown distribution"
        builtin = dist_name == GATE_DIST and BUILTIN.get(ep.name) == ep.value
        where = BUILTIN_WHERE if builtin else f"entry point of {dist_name}"
        if dist is not None and not builtin:
            where += f" {dist.version}"
        found.append(Declaration(ep.name, ep.value, "entry point", where))
    return found


class EnvironmentRegistry:
    """Names -> declarations, resolved lazily to ``Environment`` subclasses."""

    def __init__(
        self,
        root: Path,
        declared: Mapping[str, tuple[str, int | None]],
        config_path: str,
        entry_point_decls: list[Declaration] | None = None,
    ) -> None:
        self.root = root.resolve()
        self.problems: list[Problem] = []
        self._decls: dict[str, Declaration] = {}
        eps = discover_entry_points() if entry_point_decls is None else entry_point_decls
        own = [d for d in eps if d.where == BUILTIN_WHERE]
        for name, spec in BUILTIN.items():  # gate's own first: a clash blames the newcomer
            found = [d for d in own if d.name == name]
            self._add(found[0] if found else Declaration(name, spec, "builtin", BUILTIN_WHERE))
        for decl in eps:
            if decl.where != BUILTIN_WHERE:
                self._add(decl)
        for name, (spec, line) in declared.items():
            self._add(Declaration(name, spec, "gate.yaml", f"{config_path}:{line}",
                                  config_path, line))

    def _add(self, decl: Declaration) -> None:
        if not _NAME.match(decl.name):
            self.problems.append(decl.problem(f"name must match {_NAME.pattern}"))
            return
        if not _SPEC.match(decl.spec):
            self.problems.append(decl.problem(
                f"{decl.spec!r} is not of the form 'package.module:ClassName'"))
            return
        other = self._decls.get(decl.name)
        if other is not None:  # blame the gate.yaml side: it has a file and a line
            blamed, also = (other, decl) if other.source == "gate.yaml" else (decl, other)
            self.problems.append(blamed.problem(
                f"name clash: {decl.name!r} is also declared by {also.where}"))
            return
        self._decls[decl.name] = decl

    # --- queries ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._decls)

    def declared_in_config(self) -> list[str]:
        return sorted(n for n, d in self._decls.items() if d.source == "gate.yaml")

    def __contains__(self, name: object) -> bool:
        return name in self._decls

    def declaration(self, name: str) -> Declaration:
        return self._decls[name]

    def source(self, name: str) -> Source:
        return self._decls[name].source

    def get(self, name: str) -> type[Environment]:
        """The class of environment ``name``. Raises ConfigError when it cannot be loaded."""
        return self.load(name).cls

    def load(self, name: str) -> LoadedEnvironment:
        decl = self._decls.get(name)
        if decl is None:
            raise KeyError(name)
        root = str(self.root) if decl.source == "gate.yaml" else ""
        key = (root, f"{decl.name}={decl.spec}")
        hit = _CACHE.get(key)
        if hit is None:
            hit = _import(decl, self.root if decl.source == "gate.yaml" else None)
            _CACHE[key] = hit
        return hit


# --- importing -----------------------------------------------------------------------------


def _import(decl: Declaration, root: Path | None) -> LoadedEnvironment:
    module_name, _, attr = decl.spec.partition(":")
    with _import_path(root, module_name.split(".")[0]):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
                where = f" under {root}" if root is not None else ""
                raise ConfigError([decl.problem(
                    f"module {module_name!r} not found{where}")]) from None
            raise ConfigError([decl.problem(_import_failure(exc, root))]) from None
        except Exception as exc:  # the user's module failed while being imported
            raise ConfigError([decl.problem(_import_failure(exc, root))]) from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise ConfigError([decl.problem(f"module {module_name!r} has no attribute {attr!r}")])
    if not (isinstance(cls, type) and issubclass(cls, Environment)):
        raise ConfigError([decl.problem(
            f"{decl.spec} is not a subclass of gate.environments.Environment")])
    problem = _contract_problem(cls)
    if problem:
        raise ConfigError([decl.problem(problem)])
    home = root if root is not None else _package_home(module_name)
    return LoadedEnvironment(decl.name, cls, decl, home)


def _contract_problem(cls: type[Environment]) -> str | None:
    if getattr(cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        return f"{cls.__name__} does not implement {missing}"
    names = getattr(cls, "tool_names", None)
    if not isinstance(names, frozenset | set) or not all(isinstance(n, str) for n in names):
        return f"{cls.__name__}.tool_names must be a frozenset of tool names"
    return None


def _package_home(module_name: str) -> Path:
    """The top-level package's directory (or the module file itself when it is no package)."""
    top = sys.modules.get(module_name.split(".")[0])
    paths = list(getattr(top, "__path__", []) or [])
    if paths:
        return Path(paths[0]).resolve()
    file = getattr(top, "__file__", None)
    return Path(file).resolve() if file else Path.cwd()


def _import_failure(exc: BaseException, root: Path | None) -> str:
    where = user_frame(exc, root) if root is not None else None
    at = f" at {where[0]}:{where[1]}" if where else ""
    return f"importing failed: {type(exc).__name__}: {_short(str(exc))}{at}"


@contextmanager
def _import_path(root: Path | None, top: str) -> Iterator[None]:
    """``root`` first on sys.path during the import; stale modules named ``top`` evicted."""
    if root is None:
        yield
        return
    if top != "gate" and ((root / top).is_dir() or (root / f"{top}.py").is_file()):
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            module = sys.modules[name]
            file = getattr(module, "__file__", None)
            paths = [*([file] if file else []), *(getattr(module, "__path__", None) or [])]
            if not any(_is_under(Path(p), root) for p in paths):
                del sys.modules[name]  # the same name from another project: not ours
    entry = str(root)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        if entry in sys.path:
            sys.path.remove(entry)


def _is_under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


# --- exceptions raised by environment code -------------------------------------------------


def _short(text: str, limit: int = 200) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def user_frame(exc: BaseException, home: Path | None) -> tuple[str, int] | None:
    """The innermost traceback frame under ``home`` as (path shown, line), else the innermost."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return None
    chosen = frames[-1]
    if home is not None:
        mine = [f for f in frames if _is_under(Path(f.filename), home)
                and "site-packages" not in Path(f.filename).parts]
        if mine:
            chosen = mine[-1]
    shown = Path(chosen.filename)
    if home is not None and _is_under(shown, home):
        shown = shown.resolve().relative_to(home.resolve())
    return shown.as_posix(), chosen.lineno or 0


@dataclass(frozen=True)
class EnvironmentFault:
    """An exception raised by environment code, described for a record or a message."""

    environment: str
    phase: str  # "constructor" | "call" | "outcome" | "snapshot" | "check_fixture"
    type: str
    message: str  # short; untrusted text: neutralise before rendering
    file: str | None
    line: int | None

    @classmethod
    def of(cls, env: LoadedEnvironment, phase: str, exc: BaseException) -> EnvironmentFault:
        where = user_frame(exc, env.home)
        return cls(env.name, phase, type(exc).__name__, _short(str(exc)),
                   where[0] if where else None, where[1] if where else None)

    def describe(self, place: bool = True) -> str:
        at = f" at {self.file}:{self.line}" if self.file and place else ""
        return (f"environment {self.environment!r} raised {self.type} in {self.phase}: "
                f"{self.message}{at}")

    def as_record(self) -> dict[str, object]:
        return {"environment": self.environment, "phase": self.phase, "type": self.type,
                "message": self.message, "file": self.file, "line": self.line}


class EnvironmentCodeError(Exception):
    """Raised by the harness around environment code: carries the fault (not a GateError:
    the trial is recorded as ``environment_error`` and the run goes on)."""

    def __init__(self, fault: EnvironmentFault) -> None:
        self.fault = fault
        super().__init__(fault.describe())


def guarded(env: LoadedEnvironment, phase: str) -> _Guard:
    """``with guarded(env, "call"): ...`` turns any exception into EnvironmentCodeError."""
    return _Guard(env, phase)


class _Guard:
    def __init__(self, env: LoadedEnvironment, phase: str) -> None:
        self.env = env
        self.phase = phase

    def __enter__(self) -> None:
        return None

    def __exit__(self, tp: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, EnvironmentCodeError):
            raise EnvironmentCodeError(EnvironmentFault.of(self.env, self.phase, exc)) from exc


def _contract_fault(env: LoadedEnvironment, phase: str, message: str) -> EnvironmentCodeError:
    return EnvironmentCodeError(EnvironmentFault(env.name, phase, "TypeError", message, None, None))


class GuardedEnvironment(Environment):
    """What the harness runs: delegates to the environment and turns any exception raised by
    its code, or a value breaking the contract, into ``EnvironmentCodeError``."""

    tool_names: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, env: LoadedEnvironment, fixture: Fixture, seed: int) -> None:
        super().__init__(fixture, seed)
        self.loaded = env
        with guarded(env, "constructor"):
            self.inner = env.cls(fixture, seed)

    @classmethod
    def check_fixture(cls, fixture: Fixture) -> list[str]:
        return []

    def call(self, tool: str, args: dict[str, Any]) -> ToolResult:
        with guarded(self.loaded, "call"):
            result = self.inner.call(tool, args)
        if not isinstance(result, ToolResult):
            raise _contract_fault(self.loaded, "call",
                                  f"call({tool!r}) returned {type(result).__name__}, "
                                  "not a ToolResult")
        try:
            json.dumps(result.content)
        except (TypeError, ValueError) as exc:
            raise _contract_fault(self.loaded, "call", f"call({tool!r}) content is not "
                                  f"JSON-serializable: {_short(str(exc))}") from exc
        return result

    def outcome(self) -> EnvOutcome:
        with guarded(self.loaded, "outcome"):
            result = self.inner.outcome()
        if not isinstance(result, EnvOutcome):
            raise _contract_fault(self.loaded, "outcome",
                                  f"outcome() returned {type(result).__name__}, not an EnvOutcome")
        try:
            json.dumps(result.detail)
        except (TypeError, ValueError) as exc:
            raise _contract_fault(self.loaded, "outcome", "outcome().detail is not "
                                  f"JSON-serializable: {_short(str(exc))}") from exc
        return result

    def snapshot(self) -> dict[str, Any]:
        with guarded(self.loaded, "snapshot"):
            state = self.inner.snapshot()
        try:
            json.dumps(state)
        except (TypeError, ValueError) as exc:
            raise _contract_fault(self.loaded, "snapshot", "snapshot() is not "
                                  f"JSON-serializable: {_short(str(exc))}") from exc
        return state
