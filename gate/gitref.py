"""Read files as they are at a git ref, through the ``git`` command (no shell, no checkout).

Paths are relative to ``repo`` (the directory holding gate.yaml, which may be a subdirectory of
the git work tree) and use forward slashes. ``ref`` is anything ``git rev-parse`` understands
(a branch, a tag, a sha, ``HEAD~1``, ``origin/main``).

    read_bytes_at(ref, path, repo)  -> bytes | None   (None when absent at that ref)
    read_text_at(ref, path, repo)   -> str | None
    list_files_at(ref, directory, repo) -> list[str]  (files under directory, recursive, sorted)
    resolve(ref, repo)              -> full sha of the commit
    GitRefSource(root, ref)         -> a ``FileSource`` (gate.project.load) reading at that ref
    checkout_differs(repo, paths)   -> [(path, why)] for files whose checkout git may have
                                       changed (.gitattributes) and that differ from HEAD

An unknown ref, or a directory that is not in a git repository, raises ``GitRefError`` (a
``ConfigError``: the CLI prints it and exits 4).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath

from gate.errors import GitRefError

__all__ = [
    "GitRefError",
    "GitRefSource",
    "changed_files",
    "checkout_differs",
    "git_source",
    "list_files_at",
    "read_bytes_at",
    "read_text_at",
    "resolve",
]

_TIMEOUT_S = 60.0


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            check=False,
            timeout=_TIMEOUT_S,
        )
    except FileNotFoundError:
        raise GitRefError(str(repo), "the git command is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitRefError(str(repo), f"git {args[0]} timed out after {_TIMEOUT_S:.0f} s") from None
    if check and proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = err[-1] if err else f"exit code {proc.returncode}"
        raise GitRefError(str(repo), f"git {args[0]} failed: {detail}")
    return proc


def _check_ref(ref: str) -> None:
    if not ref or ref.startswith("-") or any(c in ref for c in "\0\n\r"):
        raise GitRefError(f"git ref {ref!r}", "not a valid git ref")


def _norm(path: str) -> str:
    """A path relative to repo, as git's ``./``-relative tree path (``ref:./prompts/a.md``)."""
    p = PurePosixPath(path.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise GitRefError(path, "path must be relative to the repository and stay inside it")
    text = p.as_posix()
    return "" if text == "." else text


def resolve(ref: str, repo: Path = Path(".")) -> str:
    """The full sha of the commit ``ref`` names. GitRefError when it names none."""
    _check_ref(ref)
    proc = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}",
                check=False)
    sha = proc.stdout.decode().strip()
    if proc.returncode != 0 or not sha:
        inside = _git(repo, "rev-parse", "--is-inside-work-tree", check=False)
        if inside.returncode != 0:
            raise GitRefError(str(repo), "not inside a git repository")
        raise GitRefError(
            f"git ref {ref!r}",
            "unknown ref (no such branch, tag or commit; in CI, check out with fetch-depth: 0)",
        )
    return sha


def read_bytes_at(ref: str, path: str, repo: Path = Path(".")) -> bytes | None:
    """The content of ``path`` at ``ref``; None when the path is absent there (or a directory)."""
    sha = resolve(ref, repo)
    rel = _norm(path)
    obj = f"{sha}:./{rel}"
    kind = _git(repo, "cat-file", "-t", obj, check=False)
    if kind.returncode != 0 or kind.stdout.decode().strip() != "blob":
        return None
    return _git(repo, "cat-file", "blob", obj).stdout


def read_text_at(ref: str, path: str, repo: Path = Path(".")) -> str | None:
    """The UTF-8 text of ``path`` at ``ref``; None when absent. GitRefError if not UTF-8."""
    data = read_bytes_at(ref, path, repo)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise GitRefError(f"{ref}:{path}", "not UTF-8 text") from None


def list_files_at(ref: str, directory: str, repo: Path = Path(".")) -> list[str]:
    """Files under ``directory`` at ``ref`` (recursive), relative to repo, sorted.

    An absent directory gives an empty list."""
    sha = resolve(ref, repo)
    rel = _norm(directory)
    spec = f"./{rel}/" if rel else "."
    out = _git(repo, "ls-tree", "-r", "-z", "--name-only", sha, "--", spec).stdout
    names = [n for n in out.decode("utf-8", "surrogateescape").split("\0") if n]
    return sorted(names)


def changed_files(base: str, head: str, directories: list[str],
                  repo: Path = Path(".")) -> list[tuple[str, str]]:
    """``(change, path)`` for each file under ``directories`` that differs between two refs.

    ``change`` is ``added``, ``removed`` or ``modified`` (renames count as removed + added;
    mode-only changes count as modified). Paths are relative to repo, sorted."""
    base_sha, head_sha = resolve(base, repo), resolve(head, repo)
    specs = [f"./{_norm(d)}" if _norm(d) else "." for d in directories]
    if not specs:
        return []
    out = _git(repo, "diff", "--no-renames", "--no-ext-diff", "--relative", "--name-status",
               "-z", base_sha, head_sha, "--", *specs).stdout
    fields = [f for f in out.decode("utf-8", "surrogateescape").split("\0") if f]
    kinds = {"A": "added", "D": "deleted", "M": "modified", "T": "modified"}
    result: list[tuple[str, str]] = []
    for status, path in zip(fields[0::2], fields[1::2], strict=True):
        kind = kinds.get(status[:1], "modified")
        result.append(("removed" if kind == "deleted" else kind, path))
    return sorted(result, key=lambda item: item[1])


@dataclass(frozen=True)
class GitRefSource:
    """A ``gate.project.load.FileSource`` that reads files at a git ref instead of the work tree.

    The ref is resolved once, at construction, so every read sees the same commit."""

    root: Path
    ref: str
    sha: str = field(init=False)
    label: str = field(init=False)

    def __post_init__(self) -> None:
        sha = resolve(self.ref, self.root)
        object.__setattr__(self, "sha", sha)
        object.__setattr__(self, "label", f"{self.ref}@{sha[:12]}")

    def read(self, relpath: str) -> bytes | None:
        return _read_cached(self.root, self.sha, relpath)

    def list(self, directory: str) -> list[str]:
        return list_files_at(self.sha, directory, self.root)


@cache
def _read_cached(root: Path, sha: str, relpath: str) -> bytes | None:
    # Content at a full sha never changes, so caching by (root, sha, path) is safe.
    return read_bytes_at(sha, relpath, root)


def git_source(ref: str) -> Callable[[Path], GitRefSource]:
    """For ``load_project(..., prompt_tool_source=git_source("origin/main"))``."""

    def make(root: Path) -> GitRefSource:
        return GitRefSource(root, ref)

    return make


BYTE_CHANGING = ("working-tree-encoding", "filter", "ident", "eol", "crlf")


def _applied(repo: Path, paths: list[str]) -> dict[str, list[str]]:
    """path -> the byte-changing attributes git applies to it on checkout (``git check-attr``,
    git's own reading of every .gitattributes); empty outside a git work tree."""
    proc = _git(repo, "check-attr", "-z", *BYTE_CHANGING, "--", *paths, check=False)
    if proc.returncode != 0:
        return {}
    fields = proc.stdout.split(b"\0")
    out: dict[str, list[str]] = {}
    for path, attr, value in zip(fields[0::3], fields[1::3], fields[2::3], strict=False):
        if value not in (b"unspecified", b"unset"):
            out.setdefault(path.decode("utf-8", "replace"), []).append(
                f"{attr.decode()}={value.decode('utf-8', 'replace')}")
    return out


def checkout_differs(repo: Path, paths: list[str]) -> list[tuple[str, str]]:
    """``(path, why)`` for each of ``paths`` (relative to ``repo``) that a .gitattributes
    attribute lets git rewrite on checkout (``working-tree-encoding``, ``filter``, ``ident``,
    ``eol``, ``crlf``) and whose bytes on disk are not its committed bytes at HEAD. The adoption
    guard judged the committed bytes; gate must not run on anything else."""
    out: list[tuple[str, str]] = []
    for path, attrs in _applied(repo, paths).items():
        try:
            committed = read_bytes_at("HEAD", path, repo)
        except GitRefError:
            committed = None
        on_disk = (repo / path).read_bytes() if (repo / path).is_file() else None
        if committed is None or committed != on_disk:
            out.append((path, f"refused: .gitattributes sets {', '.join(attrs)} for it and the "
                        "checkout is not its committed bytes (gate reads gate.yaml and the "
                        "registry only as committed)"))
    return out
