"""Hostile YAML in a project: ``gate validate`` exits 4 naming the file and line, before anything
big is constructed (the loader's limits themselves: tests/unit/config/test_yaml_limits.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import validate
from hostile_corpus import billion_laughs

from gate.config.yamlio import LIMITS


@pytest.mark.parametrize("relpath", [
    "models.yaml", "gate.yaml", "tasks/orders/orders-easy-02-refund-damaged-blender.yaml",
    "fixtures/orders/refund-damaged-blender.yaml",
])
def test_billion_laughs_anywhere_is_refused_with_file_and_line(
    project_dir: Path, capsys: pytest.CaptureFixture[str], relpath: str
) -> None:
    path = project_dir / relpath
    assert path.exists()
    path.write_text(billion_laughs() + path.read_text())
    code, err = validate(capsys, project_dir)
    assert code == 4
    name = Path(relpath).name
    line = next(x for x in err.splitlines() if name in x and "aliases expand" in x)
    assert f"{name}:5: " in line  # lol4 (66430 nodes expanded) is the first past the limit


def test_a_parser_refusal_is_exit_4_with_file_and_line(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whoever stops a hostile file first (gate's bounds or the YAML parser's), `gate validate`
    refuses it the same way: exit 4, the file and its line."""
    models = project_dir / "models.yaml"
    models.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n" + models.read_text())
    code, err = validate(capsys, project_dir)
    assert code == 4
    assert re.search(r"models\.yaml:1: ", err), err


def test_huge_file_on_disk_is_not_read_whole(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = project_dir / "models.yaml"
    with models.open("a") as fh:
        fh.write("# " + "x" * (8 * LIMITS.max_bytes) + "\n")
    code, err = validate(capsys, project_dir)
    assert code == 4
    assert "models.yaml:" in err
    assert "bytes" in err
