"""``gate init [DIR]``: scaffold a repository that works at once.

The template (``gate/scaffold/template/``, shipped as package data) holds gate.yaml, models.yaml,
the workflows, CODEOWNERS, and one small example environment (helpdesk ticket triage) with its
tools, tasks, fixtures and prompt. ``dot-github`` in the template is written as ``.github``.
The workflows are thin callers (copies of gate's own, test-enforced) of the reusable workflows
in gate's repository, pinned by commit sha: a fix reaches a team when it moves that one pin.
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
    where = pin()
    for rel in [r for r in out if r.startswith(".github/workflows/")]:
        out[rel] = for_user_repository(out[rel], where)
    return out


PLACEHOLDER = ("your-org/gate", "0" * 40)  # the workflow fails to start until it is set
_LOCAL = b"uses: ./.github/workflows/"
_OWN_REPO = b"gate-repository: ${{ github.repository }}"
_OWN_SHA = b"gate-sha: ${{ github.sha }}"


def for_user_repository(workflow: bytes, where: tuple[str, str] | None = None) -> bytes:
    """gate's own thin callers as a team's repository runs them: the reusable workflows are
    called from gate's repository pinned by commit sha, and gate is installed from that same
    commit. In gate's own repository they call the local files at the caller's own commit."""
    repo, sha = where or PLACEHOLDER
    out = workflow
    while _LOCAL in out:
        head, rest = out.split(_LOCAL, 1)
        name, tail = rest.split(b"\n", 1)
        out = head + f"uses: {repo}/.github/workflows/{name.decode()}@{sha}  # gate\n".encode() \
            + tail
    out = out.replace(_OWN_REPO, f"gate-repository: {repo}".encode())
    return out.replace(_OWN_SHA, f"gate-sha: {sha}".encode())


def pin() -> tuple[str, str] | None:
    """(owner/name, commit) of the gate this is, when pip recorded that it was installed from a
    GitHub repository at a commit; None otherwise (a local directory, an editable install, a
    wheel), and the scaffold then writes a placeholder pin."""
    import json
    import re
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        raw = distribution("gate").read_text("direct_url.json")
    except PackageNotFoundError:
        return None
    if not raw:
        return None
    info = json.loads(raw)
    url, vcs = str(info.get("url", "")), info.get("vcs_info") or {}
    found = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?", url)
    commit = str(vcs.get("commit_id", ""))
    if vcs.get("vcs") == "git" and found and re.fullmatch(r"[0-9a-f]{40}", commit):
        return found[1], commit
    return None


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
    where = pin()
    shown = f"{where[0]}@{where[1][:12]}" if where else "a placeholder: set it"
    print("then: replace the placeholder owner in .github/CODEOWNERS; the workflows call gate's "
          f"reusable workflows pinned by commit ({shown}); see gate's docs/github.md")
    return 0
