"""Load and validate a whole gate project: gate.yaml, models.yaml, prompts/, tools/, tasks/,
fixtures/. Every problem in every file is collected (not just the first) and raised together
as one ``ConfigError``; every file read is hashed (SHA-256) for the run manifest.

Prompts and tools can be read from a git ref instead of the work tree (``source``), so a
changed prompt can be compared against the base branch's version.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from gate.config.schema import Fixture, GateConfig, Registry, Subset, Task, ToolCall, ToolDef
from gate.config.yamlio import YamlDoc, parse_yaml, validation_problems
from gate.environments.registry import (
    EnvironmentCodeError,
    EnvironmentRegistry,
    GuardedEnvironment,
    LoadedEnvironment,
    guarded,
)
from gate.errors import ConfigError, Problem
from gate.gitref import checkout_differs
from gate.project.provider_check import loop_environments, provider_field_problems
from gate.project.schema_check import schema_problems, validate

M = TypeVar("M", bound=BaseModel)
NEEDS_LABEL = "needs_label"  # a task tag: listed by validate, never run until a person labels it


class FileSource(Protocol):
    """Where prompt and tool files come from: the work tree or a git ref."""

    @property
    def label(self) -> str: ...

    def read(self, relpath: str) -> bytes | None: ...

    def list(self, directory: str) -> list[str]: ...


def escapes(root: Path, relpath: str) -> Path | None:
    """Where ``relpath`` really leads when that is outside ``root`` (symlinks followed, ``..``
    and absolute paths included); None when it stays inside."""
    base = root.resolve()
    target = (base / relpath).resolve()
    return None if target == base or target.is_relative_to(base) else target


@dataclass(frozen=True)
class WorkTree:
    """Files of the work tree under ``root`` (the directory holding gate.yaml). A path that
    resolves outside ``root`` is never read (``escapes``): the loader reports it instead."""

    root: Path
    label: str = "worktree"

    def read(self, relpath: str) -> bytes | None:
        if escapes(self.root, relpath) is not None:
            return None
        try:
            return (self.root / relpath).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def list(self, directory: str) -> list[str]:
        base = self.root / directory
        if escapes(self.root, directory) is not None or not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())


@dataclass(frozen=True)
class LoadedTask:
    task: Task
    fixture: Fixture
    task_path: str
    fixture_path: str
    id_line: int | None = None


@dataclass
class Project:
    root: Path
    config_path: str
    config: GateConfig
    registry: Registry
    tools: dict[str, list[ToolDef]]
    prompts: dict[str, str]
    tasks: list[LoadedTask]
    hashes: dict[str, str] = field(default_factory=dict)
    agent_distributions: dict[str, list[str]] = field(default_factory=dict)
    config_sha256: str = ""
    prompt_tool_source: str = "worktree"
    environments: EnvironmentRegistry | None = None  # resolves every environment name
    # tasks tagged ``needs_label`` (imported traffic nobody has judged yet): (file, id); they
    # are listed by ``gate validate`` and never loaded into ``tasks``, so never run
    needs_label: list[tuple[str, str]] = field(default_factory=list)
    subset: Subset | None = None  # set by select_tasks: a run over part of the suite

    def environment(self, name: str) -> LoadedEnvironment:
        """The loaded environment ``name`` (already imported and checked by load_project)."""
        if self.environments is None:
            raise KeyError(name)
        return self.environments.load(name)

    def openai_tools(self, environment: str) -> list[dict[str, Any]]:
        return [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description,
                             "parameters": t.parameters},
            }
            for t in self.tools.get(environment, [])
        ]

    def tool_schemas(self, environment: str) -> dict[str, dict[str, Any]]:
        return {t.name: t.parameters for t in self.tools.get(environment, [])}

    def task(self, task_id: str) -> LoadedTask:
        for lt in self.tasks:
            if lt.task.id == task_id:
                return lt
        raise KeyError(task_id)


def select_tasks(project: Project, patterns: list[str] | None,
                 environments: list[str] | None) -> Project:
    """The project with only the tasks ``--task`` (ids, shell-style globs) and ``--env`` select;
    the project itself when neither is given. A pattern or environment that selects nothing is
    refused naming its flag and the closest names (exit 4), never silently an empty run."""
    patterns, environments = patterns or [], environments or []
    if not patterns and not environments:
        return project
    ids = [lt.task.id for lt in project.tasks]
    envs = sorted({lt.task.environment for lt in project.tasks})
    problems = [_nothing_selected("--env", e, envs) for e in environments if e not in envs]
    problems += [_nothing_selected("--task", p, ids) for p in patterns
                 if not fnmatch.filter(ids, p)]
    if problems:
        raise ConfigError(problems)
    chosen = [lt for lt in project.tasks
              if (not environments or lt.task.environment in environments)
              and (not patterns or any(fnmatch.fnmatchcase(lt.task.id, p) for p in patterns))]
    if not chosen:
        raise ConfigError.one("--task", None, "--task and --env together select no task")
    subset = Subset(task_patterns=patterns, environments=environments,
                    tasks=[lt.task.id for lt in chosen], suite_tasks=len(ids))
    return dataclasses.replace(project, tasks=chosen, subset=subset)


def _nothing_selected(flag: str, value: str, names: list[str]) -> Problem:
    stem = value
    for i, char in enumerate(value):
        if char in "*?[":  # a glob: suggest globs on the names' prefixes of the same length
            stem = value[:i]
            names = sorted({n[:i] + value[i:] for n in names})
            break
    close = difflib.get_close_matches(value, names, n=3, cutoff=0.5) if stem else []
    hint = f"; closest: {', '.join(close)}" if close else ""
    return Problem(flag, None, f"{value!r} selects no task{hint}")


def display_path(path: Path) -> str:
    rel = os.path.relpath(path)
    return path.as_posix() if rel.startswith("..") else Path(rel).as_posix()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Collector:
    """Reads files, hashes them, and gathers problems instead of stopping at the first."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.hashes: dict[str, str] = {}
        self.distributions: dict[str, list[str]] = {}  # a Python agent program's, by where
        # (environment, tool) implemented but declared by no tool file -> (where, consequences)
        self.undeclared: dict[tuple[str, str], tuple[str, int]] = {}
        self.needs_label: list[tuple[str, str]] = []  # (task file, task id): never run

    def name(self, relpath: str, source: FileSource | None = None) -> str:
        shown = display_path(self.root / relpath)
        if source is not None and source.label != "worktree":
            return f"{source.label}:{relpath}"
        return shown

    def outside(self, relpath: str, source: FileSource, name: str) -> bool:
        """Report (and say True for) a work-tree path that resolves outside the repository."""
        if not isinstance(source, WorkTree):
            return False  # a git ref: gate.gitref refuses ``..`` and absolute paths itself
        target = escapes(source.root, relpath)
        if target is None:
            return False
        self.add(name, None, f"refused: resolves outside the repository ({target})")
        return True

    def read(self, relpath: str, source: FileSource) -> tuple[str, str] | None:
        name = self.name(relpath, source)
        if self.outside(relpath, source, name):
            return None
        raw = source.read(relpath)
        if raw is None:
            self.problems.append(Problem(name, None, "file not found"))
            return None
        self.hashes[relpath if source.label == "worktree" else f"{source.label}:{relpath}"] = (
            sha256_bytes(raw)
        )
        try:
            return name, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problems.append(Problem(name, None, f"not UTF-8: {exc}"))
            return None

    def yaml(self, relpath: str, source: FileSource) -> YamlDoc | None:
        got = self.read(relpath, source)
        if got is None:
            return None
        try:
            return parse_yaml(got[1], got[0])
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return None

    def model(self, model: type[M], doc: YamlDoc | None) -> M | None:
        if doc is None:
            return None
        if doc.data is None:
            self.problems.append(Problem(doc.path, None, "empty document"))
            return None
        try:
            return model.model_validate(doc.data)
        except ValidationError as exc:
            self.problems.extend(validation_problems(doc, exc))
            return None

    def add(self, path: str, line: int | None, message: str) -> None:
        self.problems.append(Problem(path, line, message))

    def consequence_of_undeclared(self, environment: str, tool: str) -> bool:
        """Count a problem caused by an undeclared tool instead of reporting it on its own."""
        cause = self.undeclared.get((environment, tool))
        if cause is None:
            return False
        self.undeclared[(environment, tool)] = (cause[0], cause[1] + 1)
        return True

    def add_undeclared(self) -> None:
        """Each undeclared tool once, its consequences (fixtures calling it) folded into it."""
        for (env_name, tool), (where, more) in sorted(self.undeclared.items()):
            folded = f" (and {more} more problems caused by this: fixtures call {tool!r})"
            self.add(where, None, f"environment {env_name!r} implements {tool!r} but no tool "
                     f"file declares it{folded if more else ''}")


def load_project(
    config_path: str | Path = "gate.yaml",
    *,
    prompt_tool_source: Callable[[Path], FileSource] | None = None,
) -> Project:
    """Load and fully validate a project. Raises ConfigError with every problem found."""
    cfg_file = Path(config_path).resolve()
    root = cfg_file.parent
    work = WorkTree(root)
    col = _Collector(root)
    cfg_doc, config, envs = _read_config(col, config_path, work)
    _check_agent(col, cfg_doc, config, root, envs)
    pt_source = prompt_tool_source(root) if prompt_tool_source else work
    _check_protected_paths(col, root, cfg_file.name, config.suite.registry, cfg_doc)
    registry_doc = col.yaml(config.suite.registry, work)
    registry = col.model(Registry, registry_doc)
    if registry is not None and registry_doc is not None:
        _check_registry(col, config, registry, registry_doc)
    tools = _load_tools(col, config, pt_source, envs)
    prompts = _load_prompts(col, config, pt_source, set(tools))
    tasks = _load_tasks(col, config, work, tools, envs)
    _check_provider_fields(col, cfg_doc, config, tasks)
    _hash_environment_code(col, envs, work)
    col.add_undeclared()
    if col.problems or registry is None:
        raise ConfigError(col.problems)
    return Project(
        root=root,
        config_path=display_path(cfg_file),
        config=config,
        registry=registry,
        tools=tools,
        prompts=prompts,
        tasks=tasks,
        hashes=dict(sorted(col.hashes.items())),
        agent_distributions=col.distributions,
        config_sha256=col.hashes[cfg_file.name],
        prompt_tool_source=pt_source.label,
        environments=envs,
        needs_label=sorted(col.needs_label),
    )


def _read_config(col: _Collector, config_path: str | Path, work: WorkTree
                 ) -> tuple[YamlDoc, GateConfig, EnvironmentRegistry]:
    """gate.yaml read and validated, with its environments' registry; ConfigError when it
    cannot be read or validated (the registry's problems go to ``col``)."""
    cfg_file = Path(config_path).resolve()
    if not cfg_file.is_file():
        raise ConfigError.one(display_path(cfg_file), None, "configuration file not found")
    if Path(config_path).is_symlink():  # the adoption guard never follows one (docs/github.md)
        raise ConfigError.one(str(config_path), None, "refused: a symbolic link (gate reads "
                              "its configuration only as a file of the repository)")
    cfg_doc = col.yaml(cfg_file.name, work)
    config = col.model(GateConfig, cfg_doc)
    if config is None or cfg_doc is None:
        raise ConfigError(col.problems)
    return cfg_doc, config, _environment_registry(col, col.root, config, cfg_doc)


def checked_agents(config_path: str | Path = "gate.yaml") -> GateConfig | None:
    """gate.yaml's configuration when it and its agent programs pass ``load_project``'s checks
    of them, else None (``load_project`` then says what is wrong). A command that will run the
    programs may start them on this while the rest of the project loads."""
    from gate.project.agent_check import agent_problems

    col = _Collector(Path(config_path).resolve().parent)
    try:
        _, config, envs = _read_config(col, config_path, WorkTree(col.root))
    except ConfigError:
        return None
    if col.problems or agent_problems(config, col.root, envs.names()):
        return None
    return config


def _check_protected_paths(col: _Collector, root: Path, config_name: str, registry: str,
                           cfg_doc: YamlDoc) -> None:
    """gate.yaml and the registry are read as the adoption guard judged them: the registry path
    has no ``..`` and no symbolic link on the way (the guard, reading through the API, could not
    follow either), and neither file's checkout differs from its committed bytes."""
    name = col.name(config_name)
    line = cfg_doc.line_of(("suite", "registry"))
    parts = registry.replace("\\", "/").split("/")
    if ".." in parts:
        col.add(name, line, f"suite.registry {registry!r} refused: a `..` component (a "
                "symbolic link before it would take it elsewhere)")
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            shown = current.relative_to(root).as_posix()
            col.add(name, line, f"suite.registry {registry!r} refused: {shown} is a symbolic "
                    "link (the adoption guard cannot follow it)")
            break
    inside = [p for p in (config_name, registry)
              if ".." not in p.replace("\\", "/").split("/") and not p.startswith("/")]
    for path, why in checkout_differs(root, inside):
        col.add(col.name(path), None, why)


def _check_registry(
    col: _Collector, config: GateConfig, registry: Registry, doc: YamlDoc
) -> None:
    for i, entry in enumerate(registry.models):
        if entry.provider not in config.providers:
            col.add(doc.path, doc.line_of(("models", i, "provider")),
                    f"models[{i}] {entry.id}: unknown provider {entry.provider!r}; "
                    f"{config.suite.registry} may name {sorted(config.providers)} "
                    "(the providers of gate.yaml)")


def _environment_registry(
    col: _Collector, root: Path, config: GateConfig, cfg_doc: YamlDoc
) -> EnvironmentRegistry:
    declared = {name: (spec, cfg_doc.line_of(("environments", name)))
                for name, spec in config.environments.items()}
    envs = EnvironmentRegistry(root, declared, cfg_doc.path)
    col.problems.extend(envs.problems)
    return envs


def _check_agent(
    col: _Collector, doc: YamlDoc, config: GateConfig, root: Path, envs: EnvironmentRegistry
) -> None:
    from gate.project.agent_check import agent_problems, program_files, programs
    from gate.project.distributions import python_distributions

    for loc, message in agent_problems(config, root, envs.names()):
        col.add(doc.path, doc.line_of(loc), message)
    for relpath in program_files(config, root):
        col.read(relpath, WorkTree(root))  # hashed for the manifest
    if col.problems:
        return
    for where, program in programs(config):
        listed = python_distributions(program, root)
        if listed is not None:  # hashed like a file: an upgrade invalidates a smoke test
            col.distributions[where] = listed
            col.hashes[f"{where}:python-distributions"] = sha256_bytes(
                "\n".join(listed).encode())


def _check_provider_fields(col: _Collector, doc: YamlDoc, config: GateConfig,
                           tasks: list[LoadedTask]) -> None:
    loop_envs = loop_environments(config, (lt.task.environment for lt in tasks))
    for loc, message in provider_field_problems(config, loop_envs):
        col.add(doc.path, doc.line_of(loc), message)


def _hash_environment_code(col: _Collector, envs: EnvironmentRegistry, work: WorkTree) -> None:
    """The repository's own environment code is hashed like its data files: a smoke test
    vouches for it, and a sweep refuses a smoke of different code."""
    for name in envs.declared_in_config():
        top = envs.declaration(name).spec.split(":")[0].split(".")[0]
        for relpath in [f"{top}.py", *work.list(top)]:
            if relpath.endswith(".py") and (work.root / relpath).is_file():
                col.read(relpath, work)


def _resolve(col: _Collector, envs: EnvironmentRegistry, name: str) -> LoadedEnvironment | None:
    try:
        return envs.load(name)
    except ConfigError as exc:
        for problem in exc.problems:
            if problem not in col.problems:
                col.problems.append(problem)
        return None


def _tool_dirs(config: GateConfig, source: FileSource) -> set[str]:
    """Names of the subdirectories of the tools directory that hold files."""
    prefix = config.suite.tools_dir.rstrip("/") + "/"
    rests = (p[len(prefix):] for p in source.list(config.suite.tools_dir) if p.startswith(prefix))
    return {rest.split("/", 1)[0] for rest in rests if "/" in rest}


def _load_tools(
    col: _Collector, config: GateConfig, source: FileSource, envs: EnvironmentRegistry
) -> dict[str, list[ToolDef]]:
    """Tools of every environment in use: one with a tools/NAME directory or declared in
    gate.yaml. Environments nobody uses are never imported."""
    tools: dict[str, list[ToolDef]] = {}
    top = config.suite.tools_dir
    if col.outside(top, source, col.name(top, source)):
        return tools
    for env_name in sorted(_tool_dirs(config, source) | set(envs.declared_in_config())):
        directory = f"{config.suite.tools_dir}/{env_name}"
        if col.outside(directory, source, col.name(directory, source)):
            continue
        if env_name not in envs:
            col.add(col.name(directory, source), None,
                    f"no environment {env_name!r} is registered for these tools; declare it "
                    f"in gate.yaml (environments: {{{env_name}: \"package.module:Class\"}})")
            continue
        loaded = _resolve(col, envs, env_name)
        if loaded is not None:
            tools[env_name] = _load_env_tools(col, source, directory, loaded)
    return tools


def _load_env_tools(
    col: _Collector, source: FileSource, directory: str, env: LoadedEnvironment
) -> list[ToolDef]:
    env_name, implemented = env.name, env.cls.tool_names
    defs: list[ToolDef] = []
    if env.cls.tools_from_files:  # a generic world (replay): its tools are the files'
        implemented = frozenset(_tool_names(source, directory))
    for relpath in source.list(directory):
        if not relpath.endswith((".yaml", ".yml")):
            continue
        doc = col.yaml(relpath, source)
        tool = col.model(ToolDef, doc)
        if tool is None or doc is None:
            continue
        for msg in schema_problems(tool.parameters):
            col.add(doc.path, doc.line_of(("parameters",)), msg)
        if tool.parameters.get("type") != "object":
            col.add(doc.path, doc.line_of(("parameters",)), "parameters: type must be object")
        if tool.name not in implemented:
            col.add(doc.path, doc.line_of(("name",)),
                    f"tool {tool.name!r} has no implementation in environment {env_name!r}")
        defs.append(tool)
    declared = {t.name for t in defs}
    for missing in sorted(implemented - declared):
        col.undeclared[(env_name, missing)] = (col.name(directory, source), 0)
    return sorted(defs, key=lambda t: t.name)


def _tool_names(source: FileSource, directory: str) -> list[str]:
    """The ``name:`` of every tool file (problems are reported when each is loaded)."""
    names = []
    for relpath in source.list(directory):
        raw = source.read(relpath) if relpath.endswith((".yaml", ".yml")) else None
        try:
            data = parse_yaml(raw.decode("utf-8"), relpath).data if raw is not None else None
        except (ConfigError, UnicodeDecodeError):
            continue
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            names.append(data["name"])
    return names


def _load_prompts(
    col: _Collector, config: GateConfig, source: FileSource, envs: set[str]
) -> dict[str, str]:
    prompts: dict[str, str] = {}
    for env_name in sorted(envs):
        relpath = f"{config.suite.prompts_dir}/{env_name}.md"
        got = col.read(relpath, source)
        if got is None:
            continue
        if not got[1].strip():
            col.add(got[0], 1, "system prompt is empty")
        prompts[env_name] = got[1]
    return prompts


def _load_tasks(
    col: _Collector, config: GateConfig, work: WorkTree, tools: dict[str, list[ToolDef]],
    envs: EnvironmentRegistry,
) -> list[LoadedTask]:
    loaded: list[LoadedTask] = []
    seen: dict[str, str] = {}
    instructions: dict[tuple[str, str], str] = {}
    used_fixtures: set[str] = set()
    if col.outside(config.suite.tasks_dir, work, col.name(config.suite.tasks_dir)):
        return loaded
    for relpath in work.list(config.suite.tasks_dir):
        if not relpath.endswith((".yaml", ".yml")):
            continue
        doc = col.yaml(relpath, work)
        task = col.model(Task, doc)
        if task is None or doc is None:
            continue
        id_line = doc.line_of(("id",))
        if task.id in seen:
            col.add(doc.path, id_line, f"duplicate task id {task.id!r} (also in {seen[task.id]})")
            continue
        seen[task.id] = doc.path
        if NEEDS_LABEL in task.tags:
            col.needs_label.append((doc.path, task.id))
            continue
        said = (task.environment, task.instruction.strip())
        if said in instructions:
            col.add(doc.path, doc.line_of(("instruction",)),
                    f"task {task.id!r} has the same instruction as {instructions[said]} in "
                    f"environment {task.environment!r}: the simulated models tell tasks apart "
                    "by their instruction")
            continue
        instructions[said] = doc.path
        if task.environment not in envs:
            col.add(doc.path, doc.line_of(("environment",)),
                    f"unknown environment {task.environment!r}; known: {envs.names()} "
                    f"(declare yours in gate.yaml: environments:)")
            continue
        if task.environment not in tools:
            if _resolve(col, envs, task.environment) is not None:
                col.add(doc.path, doc.line_of(("environment",)),
                        f"environment {task.environment!r} has no tool files "
                        f"({config.suite.tools_dir}/{task.environment}/*.yaml)")
            continue
        fixture_rel = f"{config.suite.fixtures_dir}/{task.fixture}"
        target = escapes(work.root, fixture_rel)
        if target is not None:
            col.add(doc.path, doc.line_of(("fixture",)),
                    f"fixture {task.fixture!r} refused: resolves outside the repository "
                    f"({target})")
            continue
        if work.read(fixture_rel) is None:
            col.add(doc.path, doc.line_of(("fixture",)),
                    f"fixture {task.fixture!r} not found ({col.name(fixture_rel)})")
            continue
        used_fixtures.add(fixture_rel)
        fdoc = col.yaml(fixture_rel, work)
        fixture = col.model(Fixture, fdoc)
        if fixture is None or fdoc is None:
            continue
        schemas = {t.name: t.parameters for t in tools.get(task.environment, [])}
        env = envs.load(task.environment)
        if _check_fixture(col, task, fixture, fdoc, env, schemas):
            loaded.append(LoadedTask(task, fixture, doc.path, fdoc.path, id_line))
    return sorted(loaded, key=lambda lt: lt.task.id)


def _check_fixture(
    col: _Collector,
    task: Task,
    fixture: Fixture,
    fdoc: YamlDoc,
    env: LoadedEnvironment,
    schemas: dict[str, dict[str, Any]],
) -> bool:
    """Environment checks, call validity, and that the reference reaches the expected state."""
    ok = True
    try:
        with guarded(env, "check_fixture"):
            messages = list(env.cls.check_fixture(fixture))
    except EnvironmentCodeError as exc:
        col.add(*_fault_where(exc, fdoc),
                f"{exc.fault.describe(place=False)} (checking {fdoc.path})")
        return False
    for msg in messages:
        col.add(fdoc.path, _line_for_message(fdoc, str(msg)), str(msg))
        ok = False
    for key in ("required_evidence", "distractors", "reference_trajectory"):
        calls: list[ToolCall] = getattr(fixture, key)
        for i, call in enumerate(calls):
            line = fdoc.line_of((key, i))
            if call.tool not in schemas:
                if not col.consequence_of_undeclared(task.environment, call.tool):
                    col.add(fdoc.path, line, f"{key}[{i}]: unknown tool {call.tool!r}")
                ok = False
                continue
            for err in validate(call.args, schemas[call.tool], f"{key}[{i}].args"):
                col.add(fdoc.path, line, err)
                ok = False
    if len(fixture.reference_trajectory) >= task.step_limit:
        col.add(fdoc.path, fdoc.line_of(("reference_trajectory",)),
                f"reference trajectory has {len(fixture.reference_trajectory)} steps; "
                f"task {task.id} allows {task.step_limit}")
        ok = False
    if ok:
        ok = _replay_reference(col, task, fixture, fdoc, env)
    return ok


def _fault_where(exc: EnvironmentCodeError, fdoc: YamlDoc) -> tuple[str, int | None]:
    """The environment's own file and line when the traceback has one, else the fixture."""
    fault = exc.fault
    if fault.file is None:
        return fdoc.path, None
    return fault.file, fault.line


def _replay_reference(
    col: _Collector, task: Task, fixture: Fixture, fdoc: YamlDoc, env: LoadedEnvironment
) -> bool:
    """Run the reference trajectory through the environment's own code, as a trial would."""
    try:
        world = GuardedEnvironment(env, fixture, 0)
        for call in fixture.reference_trajectory:
            world.call(call.tool, dict(call.args))
        outcome = world.outcome()
        world.snapshot()
    except EnvironmentCodeError as exc:  # reported with the environment's file and line
        col.add(*_fault_where(exc, fdoc),
                f"{exc.fault.describe(place=False)} (replaying the reference trajectory of "
                f"{fdoc.path}, "
                f"task {task.id})")
        return False
    if not outcome.success:
        col.add(fdoc.path, fdoc.line_of(("reference_trajectory",)),
                f"reference trajectory does not reach the expected end state "
                f"(task {task.id}; reward {outcome.reward:.2f}; {outcome.detail})")
        return False
    return True


def _line_for_message(doc: YamlDoc, message: str) -> int | None:
    """Best-effort line for an environment message that starts with a dotted path."""
    head = message.split(":", 1)[0].strip()
    loc: tuple[str | int, ...] = tuple(
        int(p) if p.isdigit() else p for p in head.split(".") if p
    )
    return doc.line_of(loc)
