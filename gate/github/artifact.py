"""Reports handed over by another workflow run as an artifact, read as untrusted data.

``gate.yml`` runs on ``pull_request``: the PR's own copy of the workflow file runs, so
everything it produces may have been written by the PR. It uploads the reports to post as the
artifact ``gate-comment``; ``gate-comment.yml`` (the default branch's copy, on
``workflow_run``) downloads it and runs ``gate comment --runs-in DIR``. Before anything is
posted, the layout is checked, and anything unexpected refuses the whole artifact:

- ``DIR`` is a real directory (not a symbolic link);
- each entry of ``DIR`` is a real directory with a plain name (letters, digits, ``.``, ``_``,
  ``-``; no ``..``), holding exactly one entry: ``report.md``, a regular file (no symbolic
  link, no hard-linked file, nothing deeper);
- at most ``MAX_REPORTS`` reports, each at most ``REPORT_MAX_BYTES``, valid UTF-8.

Each report is opened with ``O_NOFOLLOW`` relative to its checked directory and judged on the
open descriptor (``fstat``), so a link swapped in after the listing is refused as well. The
text then goes through the same neutralising as every report (``gate.github.comment``).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from gate.errors import UntrustedArtifactError
from gate.rundir import REPORT

REPORT_NAME = REPORT
REPORT_MAX_BYTES = 512 * 1024  # GitHub keeps 65,536 characters of a comment; the rest is cut
MAX_REPORTS = 32
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _show(name: str) -> str:
    """A name from the artifact, safe to print (no control character, bounded)."""
    return repr(name[:80])


def _read_report(dir_fd: int, where: str) -> str:
    try:
        fd = os.open(REPORT_NAME, os.O_RDONLY | _NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:  # ELOOP: a symbolic link
        raise UntrustedArtifactError(f"{where}/{REPORT_NAME}: cannot open as a regular file "
                                     f"({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UntrustedArtifactError(f"{where}/{REPORT_NAME}: not a regular file")
        if info.st_nlink != 1:
            raise UntrustedArtifactError(f"{where}/{REPORT_NAME}: a hard link")
        if info.st_size > REPORT_MAX_BYTES:
            raise UntrustedArtifactError(
                f"{where}/{REPORT_NAME}: {info.st_size} bytes, more than {REPORT_MAX_BYTES}")
        chunks: list[bytes] = []
        size = 0
        while size <= REPORT_MAX_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > REPORT_MAX_BYTES:  # grew after fstat
            raise UntrustedArtifactError(
                f"{where}/{REPORT_NAME}: more than {REPORT_MAX_BYTES} bytes")
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise UntrustedArtifactError(f"{where}/{REPORT_NAME}: not UTF-8") from None


def read_untrusted_reports(root: Path) -> list[str]:
    """The reports in ``root/<name>/report.md``, sorted by name; raises UntrustedArtifactError
    (saying why, nothing is posted) for anything but that exact layout."""
    try:
        return _read(root)
    except OSError as exc:  # e.g. a directory swapped for a link after it was checked
        raise UntrustedArtifactError(
            f"{root}: cannot read as a plain directory tree ({exc.strerror})") from None


def _read(root: Path) -> list[str]:
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise UntrustedArtifactError(f"{root}: not a directory (a symbolic link or a file)")
    root_fd = os.open(root, os.O_RDONLY | _DIRECTORY | _NOFOLLOW)
    try:
        names = sorted(os.listdir(root_fd))
        if not names:
            raise UntrustedArtifactError(f"{root}: no report")
        if len(names) > MAX_REPORTS:
            raise UntrustedArtifactError(
                f"{root}: {len(names)} entries, more than {MAX_REPORTS} reports")
        reports = []
        for name in names:
            if not _NAME.fullmatch(name):  # no "..", no separator, no control character
                raise UntrustedArtifactError(f"{root}: unexpected name {_show(name)}")
            where = f"{root}/{name}"
            entry = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
            if not stat.S_ISDIR(entry.st_mode):
                raise UntrustedArtifactError(
                    f"{where}: not a directory (a symbolic link or a file)")
            dir_fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=root_fd)
            try:
                inside = os.listdir(dir_fd)
                if inside != [REPORT_NAME]:
                    extra = sorted(set(inside) - {REPORT_NAME})
                    raise UntrustedArtifactError(
                        f"{where}: must hold {REPORT_NAME} and nothing else"
                        + (f" (found {', '.join(_show(n) for n in extra[:5])})" if extra
                           else f" ({REPORT_NAME} missing)"))
                reports.append(_read_report(dir_fd, where))
            finally:
                os.close(dir_fd)
        return reports
    finally:
        os.close(root_fd)
