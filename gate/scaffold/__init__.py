"""``gate init [DIR]``: scaffold a repository that works at once.

The template (``gate/scaffold/template/``, shipped as package data) holds gate.yaml, models.yaml,
the workflows, CODEOWNERS, and one small example environment (helpdesk ticket triage) with its
tools, tasks, fixtures and prompt. ``dot-github`` in the template is written as ``.github``.
Nothing is ever overwritten: when any target file exists, nothing is written at all (exit 4).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from gate.errors import ConfigError, Problem

TEMPLATE = "template"
_RENAMES = {"dot-github": ".github"}
_SKIP = {"__pycache__"}


def template_files() -> dict[str, bytes]:
    """Relative target path -> content, for every file of the template."""
    out: dict[str, bytes] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name in _SKIP or child.name.endswith(".pyc"):
                continue
            name = _RENAMES.get(child.name, child.name) if not prefix else child.name
            rel = f"{prefix}{name}"
            if child.is_dir():
                walk(child, rel + "/")
            else:
                out[rel] = child.read_bytes()

    walk(files(__name__).joinpath(TEMPLATE), "")
    for rel in [r for r in out if r.startswith(".github/workflows/")]:
        out[rel] = for_user_repository(out[rel])
    out[REQUIREMENTS] = install_requirements().encode()
    return out


REQUIREMENTS = ".github/gate-requirements.txt"
_OWN_INSTALL = b"run: pip install .\n"  # gate's own workflows install the checkout itself


def for_user_repository(workflow: bytes) -> bytes:
    """gate's own workflows as a user's repository runs them: gate is installed from the pinned
    spec in .github/gate-requirements.txt, not from the repository's checkout."""
    return workflow.replace(_OWN_INSTALL, f"run: pip install -r {REQUIREMENTS}\n".encode())


def install_requirements() -> str:
    """The pip requirement the scaffold's workflows install gate with: the exact source this
    gate came from when pip recorded one (a VCS commit or an archive), else a placeholder that
    installs nothing, so the workflow fails with "gate: command not found" until it is set."""
    head = ("# Where the gate workflows install gate from (pip requirement syntax). Pin it: a\n"
            "# commit, a tag, or a wheel with its hash; never an unpinned name.\n")
    spec = _direct_spec()
    if spec is None:
        return head + "# gate @ git+https://github.com/OWNER/gate@<commit sha>\n"
    return head + spec + "\n"


def _direct_spec() -> str | None:
    import json
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        raw = distribution("gate").read_text("direct_url.json")
    except PackageNotFoundError:
        return None
    if not raw:
        return None
    info = json.loads(raw)
    url, vcs = info.get("url", ""), info.get("vcs_info") or {}
    if vcs.get("vcs") == "git" and vcs.get("commit_id"):
        return f"gate @ git+{url}@{vcs['commit_id']}"
    if (info.get("archive_info") or {}).get("hash") and url.startswith("https://"):
        return f"gate @ {url}"
    return None  # a local directory or an editable install: nothing another machine can use


def scaffold(target: Path) -> list[str]:
    """Write the template into ``target``. Raises ConfigError naming every file that exists."""
    content = template_files()
    existing = [rel for rel in content if (target / rel).exists() or (target / rel).is_symlink()]
    if existing:
        raise ConfigError([Problem((target / rel).as_posix(), None,
                                   "already exists; gate init never overwrites a file")
                           for rel in existing])
    if target.exists() and not target.is_dir():
        raise ConfigError.one(target.as_posix(), None, "not a directory")
    for rel, data in content.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as fh:  # exclusive: never replaces a file created meanwhile
            fh.write(data)
    return sorted(content)


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="scaffold a working gate repository (never overwrites)")
    p.add_argument("dir", nargs="?", default=".", type=Path,
                   help="directory to write into (default: the current one)")
    p.set_defaults(func=cmd_init)


def gate_command() -> str:
    """How to run this very gate from any directory, as a shell word: ``gate`` when that name on
    PATH is this program, else its absolute path (a venv's ``bin/gate`` that is not activated),
    else ``python -m gate`` with this interpreter."""
    me = Path(sys.argv[0])
    if me.name == "gate" and me.is_file():
        found = shutil.which("gate")
        if found and Path(found).resolve() == me.resolve():
            return "gate"
        return shlex.quote(str(me.resolve()))
    return f"{shlex.quote(sys.executable)} -m gate"


def cmd_init(args: argparse.Namespace) -> int:
    target: Path = args.dir
    written = scaffold(target)
    gate = gate_command()
    print(f"gate init: wrote {len(written)} files into {target.as_posix()}")
    print(f"next: cd {shlex.quote(target.as_posix())} && {gate} validate && "
          f"{gate} smoke --out runs/smoke")
    if gate != "gate":
        print(f"(`gate` is not on PATH: run it as above, or activate its venv: "
              f"source {shlex.quote(str(Path(sys.executable).parent / 'activate'))})")
    print("then: replace the placeholder owner in .github/CODEOWNERS, and check where the "
          f"workflows install gate from ({REQUIREMENTS})")
    return 0
