"""The registry status writer: the only code in gate that writes models.yaml.

It can write ``pending-evaluation``, ``in-progress`` or ``pending-human-review`` and nothing
else. The guarantee does not rest on the argument check alone: before the file is replaced,
the new text is parsed and compared with the old, and the write is refused if any entry's
status would become anything outside the allowed set, or any other field would change
(other than ``last_run`` of the entry being written). So no call path (a crafted string, a
YAML injection, a future caller) can write ``adopted``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gate.config.schema import Registry
from gate.config.yamlio import model_from_doc, parse_yaml
from gate.errors import ConfigError, RegistryWriteError

WRITABLE: frozenset[str] = frozenset({"pending-evaluation", "in-progress", "pending-human-review"})


def write_status(
    registry_path: Path, model_id: str, status: str, run_id: str | None = None
) -> None:
    """Set ``model_id``'s evaluation_status (and last_run). Raises RegistryWriteError."""
    if not isinstance(status, str) or status not in WRITABLE:
        raise RegistryWriteError(
            f"refusing to write status {status!r}: gate may only write {sorted(WRITABLE)}; "
            "adoption is a human's PR approved by a code owner")
    old_text = registry_path.read_text(encoding="utf-8")
    doc = parse_yaml(old_text, str(registry_path))
    old = model_from_doc(Registry, doc)
    index = next((i for i, m in enumerate(old.models) if m.id == model_id), None)
    if index is None:
        raise RegistryWriteError(f"{registry_path}: no model {model_id!r} in the registry")
    if old.models[index].evaluation_status not in WRITABLE:
        raise RegistryWriteError(
            f"refusing to change {model_id!r}: its status is "
            f"{old.models[index].evaluation_status!r}, which only a human may change")
    lines = old_text.splitlines(keepends=True)
    status_line = doc.lines[("models", index, "evaluation_status")] - 1
    lines[status_line] = _replace_value(lines[status_line], "evaluation_status", status)
    if run_id is not None:
        lines = _set_last_run(lines, doc.lines, index, run_id)
    new_text = "".join(lines)
    _check_postcondition(registry_path, old, new_text, model_id, status)
    tmp = registry_path.with_name(registry_path.name + ".tmp")
    tmp.write_text(new_text, encoding="utf-8")
    os.replace(tmp, registry_path)


def _replace_value(line: str, key: str, value: str) -> str:
    head, sep, _rest = line.partition(f"{key}:")
    if not sep:
        raise RegistryWriteError(f"cannot find {key!r} on its line; edit models.yaml by hand")
    ending = "\n" if line.endswith("\n") else ""
    return f"{head}{key}: {json.dumps(value)}{ending}"


def _set_last_run(
    lines: list[str], line_map: dict[tuple[str | int, ...], int], index: int, run_id: str
) -> list[str]:
    existing = line_map.get(("models", index, "last_run"))
    if existing is not None:
        lines[existing - 1] = _replace_value(lines[existing - 1], "last_run", run_id)
        return lines
    status_line = line_map[("models", index, "evaluation_status")] - 1
    indent = lines[status_line][: len(lines[status_line]) - len(lines[status_line].lstrip())]
    lines.insert(status_line + 1, f"{indent}last_run: {json.dumps(run_id)}\n")
    return lines


def _check_postcondition(
    path: Path, old: Registry, new_text: str, model_id: str, status: str
) -> None:
    try:
        new = model_from_doc(Registry, parse_yaml(new_text, str(path)))
    except ConfigError as exc:
        raise RegistryWriteError(f"refusing to write: the result would be invalid: {exc}") from None
    if [m.id for m in new.models] != [m.id for m in old.models]:
        raise RegistryWriteError("refusing to write: the set of models would change")
    for before, after in zip(old.models, new.models, strict=True):
        if after.evaluation_status != before.evaluation_status and (
            after.evaluation_status not in WRITABLE or after.id != model_id
        ):
            raise RegistryWriteError(
                f"refusing to write: {after.id!r} would become {after.evaluation_status!r}")
        changed = {
            k for k in type(before).model_fields
            if getattr(before, k) != getattr(after, k)
        } - ({"evaluation_status", "last_run"} if after.id == model_id else set())
        if changed:
            raise RegistryWriteError(f"refusing to write: {after.id!r} fields {sorted(changed)} "
                                     "would change")
    target = next(m for m in new.models if m.id == model_id)
    if target.evaluation_status != status:
        raise RegistryWriteError("refusing to write: the status did not land as requested")
