"""Writing an imported suite: all or nothing. Every file is written into a temporary
directory beside the target, which is renamed into place at the end; a failure leaves no
partial suite. The target must not exist (or be an empty directory): nothing is overwritten."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from gate.errors import ConfigError

SUMMARY_FILE = "traffic-summary.json"
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when built with it: 10x faster
_HEADER = "# written by `gate import-traces` (docs/traffic.md); edit freely\n"


def project_files(env: str, system_prompt: str) -> dict[str, str]:
    """gate.yaml, models.yaml and the prompt of a stand-alone imported suite."""
    declare = "" if env == "replay" else (
        f"environments:\n  {env}: \"gate.environments.replay:ReplayEnvironment\"\n\n")
    gate_yaml = (
        _HEADER + "version: 1\n\n" + declare +
        "providers:\n  mock:\n    type: mock\n    concurrency: 8\n    timeout_s: 2\n"
        "    retry: {max_attempts: 5, initial_wait_s: 0.01, max_wait_s: 0.05, jitter_s: 0.01,\n"
        "            cooldown_after: 3, cooldown_s: 0.1}\n\n"
        "statistics:\n  schedule: iid\n  max_rounds: 60\n\n"
        "budget:\n  ceiling_usd: 2.00\n\nslos:\n  provider_error_share_max: 0.20\n")
    models_yaml = (
        _HEADER + "models:\n  - id: mock/expert\n    provider: mock\n"
        "    evaluation_status: adopted\n"
        "    notes: replays each imported session's production trajectory\n")
    return {"gate.yaml": gate_yaml, "models.yaml": models_yaml,
            f"prompts/{env}.md": system_prompt.strip() + "\n"}


def dump(relpath: str, content: Any) -> str:
    if isinstance(content, str):
        return content
    if relpath.endswith(".json"):
        return json.dumps(content, indent=2, sort_keys=True) + "\n"
    return _HEADER + yaml.dump(content, Dumper=_DUMPER, sort_keys=False, allow_unicode=True,
                               width=100)


def write_suite(out: Path, files: dict[str, Any]) -> None:
    """Write ``files`` (relative path -> content) as the new directory ``out``, atomically."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError.one(str(out), None, "exists and is not empty; import-traces never "
                              "overwrites (choose a new --out)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for relpath, content in sorted(files.items()):
            target = tmp / relpath
            if not target.resolve().is_relative_to(tmp.resolve()):
                raise ConfigError.one(str(out), None, f"refused to write {relpath[:80]!r}: "
                                      "outside the output directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(dump(relpath, content), encoding="utf-8")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
