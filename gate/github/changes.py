"""``gate changes``: what a pull request changes, and the sweeps those changes require.

An arm is a model together with the prompt set and tool set it runs with (README, "Concepts"):

* a new model entry, or one whose status moves to ``pending-evaluation`` / ``in-progress``:
  sweep (that model, head prompts/tools) against (the registry's adopted model at base, same
  prompts/tools);
* a changed prompt or tool file: sweep (adopted model, head prompts/tools) against (the same
  adopted model, prompts/tools at the base sha), one sweep per model adopted at base;
* a status flip to ``adopted`` needs no sweep; it is reported under ``adoptions`` (the adoption
  guard decides whether it may merge);
* changed task files are reported; every sweep runs the head suite anyway, and the smoke test
  checks them.

When several models are adopted at base, the first one in registry order is the baseline of a
new model (another adopted model when the candidate is itself adopted at base; no baseline when
there is none, and ``gate sweep`` uses its default). The output is JSON on stdout; ``matrix``
is ``{"include": sweeps}`` for ``strategy.matrix: ${{ fromJSON(...) }}``. Under Actions,
``matrix``, ``has_sweeps`` and ``adoptions`` are also written to ``$GITHUB_OUTPUT``.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gate.config.schema import ModelEntry, ProviderConfig, Registry, SuiteConfig
from gate.config.yamlio import YamlDoc, model_from_doc, parse_yaml
from gate.errors import ConfigError
from gate.github.context import load_suite, set_output
from gate.gitref import changed_files, read_text_at, resolve
from gate.report.neutralize import neutralize

SWEEP_STATUSES = ("pending-evaluation", "in-progress")
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Sweep:
    id: str
    candidate: str
    baseline: str | None
    baseline_ref: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        """``reason`` is display text (the workflow writes it to the job summary): it names
        model ids and paths from the PR's files, so it is neutralised as markdown. ``candidate``
        and ``baseline`` stay exact: they are arguments, passed through env, never rendered."""
        return {
            "id": self.id,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "baseline_ref": self.baseline_ref,
            "reason": neutralize(self.reason, limit=1000),
        }


def slug(text: str) -> str:
    """Something safe in an artifact name and a directory name."""
    return _SLUG.sub("-", text.lower()).strip("-")[:60] or "x"


def load_registry_at(ref: str, sha: str, path: str, root: Path) -> Registry:
    """The registry at a ref; an absent file is an empty registry."""
    text = read_text_at(sha, path, root)
    if text is None:
        return Registry(models=[])
    return model_from_doc(Registry, parse_yaml(text, f"{path} (at {ref})"))


def _entry_json(entry: ModelEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json", exclude_none=True)


def compare_registries(base: Registry, head: Registry) -> list[dict[str, Any]]:
    """One object per model entry that was added, removed or modified."""
    before = {m.id: m for m in base.models}
    after = {m.id: m for m in head.models}
    out: list[dict[str, Any]] = []
    for entry in head.models:
        old = before.get(entry.id)
        if old is None:
            out.append({
                "id": entry.id,
                "change": "added",
                "status": {"from": None, "to": entry.evaluation_status},
                "fields": {},
                "entry": _entry_json(entry),
            })
            continue
        fields = {
            name: {"from": getattr(old, name), "to": getattr(entry, name)}
            for name in type(entry).model_fields
            if name not in ("id", "evaluation_status")
            and getattr(old, name) != getattr(entry, name)
        }
        status_changed = old.evaluation_status != entry.evaluation_status
        if status_changed or fields:
            out.append({
                "id": entry.id,
                "change": "modified",
                "status": (
                    {"from": old.evaluation_status, "to": entry.evaluation_status}
                    if status_changed else None
                ),
                "fields": fields,
            })
    for entry in base.models:
        if entry.id not in after:
            out.append({
                "id": entry.id,
                "change": "removed",
                "status": {"from": entry.evaluation_status, "to": None},
                "fields": {},
                "entry": _entry_json(entry),
            })
    return out


UNPROTECTED_FIELDS = ("notes", "last_run")


def adoption_changes(base: Registry, head: Registry) -> list[tuple[str, str]]:
    """``(model id, what happens)`` for each entry change that needs a code owner's approval.

    An entry adopted at head needs it when it was not adopted at base (a new entry, a renamed
    id, or a status flip), and when it was adopted but any field other than ``notes`` and
    ``last_run`` changed (swapping the provider of an adopted model is a new adoption). An
    entry adopted at base needs it when it is no longer adopted at head, or is removed: both
    change what production runs."""
    before = {m.id: m for m in base.models}
    after = {m.id: m for m in head.models}
    out: list[tuple[str, str]] = []
    for entry in head.models:
        if entry.evaluation_status != "adopted":
            continue
        old = before.get(entry.id)
        if old is None or old.evaluation_status != "adopted":
            out.append((entry.id, "becomes adopted"))
            continue
        changed = [
            name for name in type(entry).model_fields
            if name not in UNPROTECTED_FIELDS and getattr(old, name) != getattr(entry, name)
        ]
        if changed:
            out.append((entry.id, f"is adopted and changes {', '.join(changed)}"))
    for entry in base.models:
        if entry.evaluation_status != "adopted":
            continue
        new = after.get(entry.id)
        if new is None:
            out.append((entry.id, "is adopted and is removed"))
        elif new.evaluation_status != "adopted":
            out.append((entry.id, f"is no longer adopted ({new.evaluation_status})"))
    return out


ROUTE_FIELDS = ("type", "base_url", "api_key_env")


def providers_of(doc: YamlDoc) -> dict[str, Any]:
    """``providers`` of a parsed gate.yaml, read leniently (a mapping, or empty)."""
    data = doc.data if isinstance(doc.data, dict) else {}
    found = data.get("providers")
    return found if isinstance(found, dict) else {}


def _route(providers: dict[str, Any], name: str) -> dict[str, Any] | None:
    """Where a provider's calls go and with what key; None when gate.yaml does not define it."""
    spec = providers.get(name)
    if not isinstance(spec, dict):
        return None
    defaults = {"type": ProviderConfig.model_fields["type"].default}
    return {key: spec.get(key, defaults.get(key)) for key in ROUTE_FIELDS}


def provider_changes(base_providers: dict[str, Any], head_providers: dict[str, Any],
                     base: Registry, head: Registry) -> list[tuple[str, str]]:
    """``(model id, what happens)`` for each entry adopted at base and at head, with the same
    provider name, whose provider in gate.yaml now sends its calls elsewhere or with another
    key (``type``, ``base_url``, ``api_key_env``): by the rule above, a new adoption."""
    before = {m.id: m for m in base.models if m.evaluation_status == "adopted"}
    out: list[tuple[str, str]] = []
    for entry in head.models:
        old = before.get(entry.id)
        if entry.evaluation_status != "adopted" or old is None or old.provider != entry.provider:
            continue
        was, now = _route(base_providers, entry.provider), _route(head_providers, entry.provider)
        if was == now:
            continue
        if was is None or now is None:
            fields = ["definition"]
        else:
            fields = [key for key in ROUTE_FIELDS if was[key] != now[key]]
        name = neutralize(entry.provider, context="plain", limit=40)
        out.append((entry.id, f"is adopted and its provider {name} changes {', '.join(fields)}"))
    return out


def registry_path_of(doc: YamlDoc, config_path: str) -> str:
    """``suite.registry`` of a parsed gate.yaml as a repository path (default models.yaml).

    Read leniently (only that key), so that a gate.yaml using settings newer than this gate
    still names its registry. ConfigError when it is not a string or leaves the repository."""
    data = doc.data if isinstance(doc.data, dict) else {}
    found = data.get("suite")
    suite = found if isinstance(found, dict) else {}
    raw = suite.get("registry", SuiteConfig.model_fields["registry"].default)
    line = doc.line_of(("suite", "registry"))
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError.one(doc.path, line, "suite.registry must be a non-empty string")
    if ".." in raw.replace("\\", "/").split("/"):
        raise ConfigError.one(doc.path, line, f"suite.registry {raw!r} has a `..` component "
                              "(a symbolic link before it would take it elsewhere)")
    parent = posixpath.dirname(config_path)
    joined = posixpath.normpath(posixpath.join(parent, raw))
    if joined == ".." or joined.startswith("../") or raw.startswith("/"):
        raise ConfigError.one(doc.path, line, f"suite.registry {raw!r} is outside the repository")
    return joined


def _adopted(registry: Registry) -> list[str]:
    return [m.id for m in registry.models if m.evaluation_status == "adopted"]


def plan_sweeps(
    model_changes: list[dict[str, Any]],
    prompt_tool_changes: list[dict[str, str]],
    base: Registry,
    head: Registry,
    base_sha: str,
) -> list[Sweep]:
    adopted_at_base = _adopted(base)
    in_head = {m.id for m in head.models}
    sweeps: list[Sweep] = []
    used: set[str] = set()

    def add(prefix: str, candidate: str, base_model: str | None, ref: str | None,
            reason: str) -> None:
        ident = f"{prefix}-{slug(candidate)}"
        n = 2
        while ident in used:
            ident = f"{prefix}-{slug(candidate)}-{n}"
            n += 1
        used.add(ident)
        sweeps.append(Sweep(ident, candidate, base_model, ref, reason))

    for change in model_changes:
        status = change["status"]
        to = status["to"] if status else None
        if change["change"] == "added" and to in SWEEP_STATUSES:
            why = f"new model entry {change['id']} ({to})"
        elif change["change"] == "modified" and status and to in SWEEP_STATUSES:
            why = f"{change['id']}: evaluation_status {status['from']} -> {to}"
        else:
            continue
        others = [m for m in adopted_at_base if m != change["id"]]
        baseline = others[0] if others else None
        if baseline is None:
            why += "; no other model is adopted at base, so no baseline"
        else:
            why += f"; baseline: {baseline} (adopted at base)"
        add("model", change["id"], baseline, None, why)

    if prompt_tool_changes:
        files = ", ".join(f"{c['path']} ({c['change']})" for c in prompt_tool_changes)
        for model in adopted_at_base:
            if model not in in_head:
                continue
            add("prompts", model, model, base_sha,
                f"prompts/tools changed: {files}; {model} with head prompts/tools vs base")
    return sweeps


def _dirs(suite: SuiteConfig) -> dict[str, str]:
    return {"prompts": suite.prompts_dir, "tools": suite.tools_dir, "tasks": suite.tasks_dir}


def compute_changes(config: str, base_ref: str, head_ref: str = "HEAD") -> dict[str, Any]:
    suite = load_suite(config)
    root = Path(config).parent
    base_sha = resolve(base_ref, root)
    head_sha = resolve(head_ref, root)
    registry_path = posixpath.normpath(suite.registry)
    base_path = _registry_path_at(base_ref, base_sha, Path(config).name, root) or registry_path
    base_reg = load_registry_at(base_ref, base_sha, base_path, root)
    head_reg = load_registry_at(head_ref, head_sha, registry_path, root)
    models = compare_registries(base_reg, head_reg)
    protected = [f"{ident} {what}" for ident, what in adoption_changes(base_reg, head_reg)]
    config_name = Path(config).name
    protected += [f"{ident} {what}" for ident, what in provider_changes(
        _providers_at(base_ref, base_sha, config_name, root),
        _providers_at(head_ref, head_sha, config_name, root), base_reg, head_reg)]
    if base_path != registry_path:
        protected.append(f"suite.registry moves from {base_path} to {registry_path}")
    if read_text_at(head_sha, registry_path, root) is None and base_reg.models:
        protected.append(f"{registry_path} is missing at {head_ref} (renamed or deleted)")

    files: dict[str, list[dict[str, str]]] = {}
    for kind, directory in _dirs(suite).items():
        files[kind] = [
            {"path": path, "change": change}
            for change, path in changed_files(base_sha, head_sha, [directory], root)
        ]
    sweeps = plan_sweeps(models, files["prompts"] + files["tools"], base_reg, head_reg, base_sha)
    adopted_at_head = set(_adopted(head_reg))
    adoptions = [ident for ident, _what in adoption_changes(base_reg, head_reg)
                 if ident in adopted_at_head]
    sweep_json = [s.as_json() for s in sweeps]
    return {
        "base": {"ref": base_ref, "sha": base_sha},
        "head": {"ref": head_ref, "sha": head_sha},
        "registry": registry_path,
        "registry_base": base_path,
        "needs_code_owner": protected,
        "models": models,
        "prompts": files["prompts"],
        "tools": files["tools"],
        "tasks": files["tasks"],
        "adoptions": adoptions,
        "sweeps": sweep_json,
        "matrix": {"include": sweep_json},
    }


def _registry_path_at(ref: str, sha: str, config_name: str, root: Path) -> str | None:
    """The registry path gate.yaml names at a ref; None when gate.yaml is absent there."""
    text = read_text_at(sha, config_name, root)
    if text is None:
        return None
    return registry_path_of(parse_yaml(text, f"{config_name} (at {ref})"), config_name)


def _providers_at(ref: str, sha: str, config_name: str, root: Path) -> dict[str, Any]:
    text = read_text_at(sha, config_name, root)
    if text is None:
        return {}
    return providers_of(parse_yaml(text, f"{config_name} (at {ref})"))


def run_changes(config: str, base: str, head: str) -> int:
    result = compute_changes(config, base, head)
    print(json.dumps(result, indent=2, sort_keys=False))
    set_output("matrix", json.dumps(result["matrix"], separators=(",", ":")))
    set_output("has_sweeps", "true" if result["sweeps"] else "false")
    set_output("adoptions", json.dumps(result["adoptions"], separators=(",", ":")))
    return 0
