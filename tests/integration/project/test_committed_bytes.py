"""The loader reads gate.yaml and the registry as the adoption guard judged them (issue 21,
classes 2 and 4): no checkout rewritten by .gitattributes, no `..` and no symbolic link in
suite.registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import git

from gate.errors import ConfigError
from gate.project.load import load_project

GATE_YAML = "version: 1\nproviders:\n  mock:\n    type: mock\nsuite:\n  registry: {path}\n"
MODELS = "models:\n  - id: mock/expert\n    provider: mock\n    evaluation_status: {status}\n"


def project(tmp_path: Path, registry: str = "models.yaml") -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "gate.yaml").write_text(GATE_YAML.format(path=registry))
    return root


def problems(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_project(root / "gate.yaml")
    return [f"{p.path}:{p.line}: {p.message}" for p in exc.value.problems]


def test_class2_checkout_rewritten_by_working_tree_encoding_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / ".gitattributes").write_text("models.yaml working-tree-encoding=SHIFT-JIS\n")
    # committed (UTF-8 blob) with a yen sign, which Shift-JIS checks out as a backslash
    text = MODELS.format(status="pending-evaluation") + '# a\u00a5\n'
    (root / "models.yaml").write_bytes(text.encode("shift_jis"))
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "one")
    assert (root / "models.yaml").read_bytes() != text.encode("utf-8")  # what git checked out
    found = problems(root)
    assert any("models.yaml:None: refused: .gitattributes sets "
               "working-tree-encoding=SHIFT-JIS" in p for p in found), found


def test_class2_ident_attribute_with_matching_bytes_loads(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / ".gitattributes").write_text("*.yaml ident\n")
    (root / "models.yaml").write_text(MODELS.format(status="adopted"))
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "one")
    # no $Id$ in the files: the checkout is the committed bytes, so the project loads
    assert load_project(root / "gate.yaml").registry.models[0].id == "mock/expert"
    (root / "models.yaml").write_text(MODELS.format(status="adopted") + "# $Id$\n")
    assert any("refused: .gitattributes sets ident=set" in p for p in problems(root))


def test_class4_dotdot_in_the_registry_path_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path, "lnk/../models.yaml")
    (root / "sub" / "dir").mkdir(parents=True)
    (root / "lnk").symlink_to("sub/dir")
    (root / "sub" / "models.yaml").write_text(MODELS.format(status="adopted"))
    (root / "models.yaml").write_text(MODELS.format(status="pending-evaluation"))
    found = problems(root)
    assert any("suite.registry 'lnk/../models.yaml' refused: a `..` component" in p
               for p in found), found


def test_class4_symlinked_directory_in_the_registry_path_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path, "reg/models.yaml")
    (root / "real").mkdir()
    (root / "real" / "models.yaml").write_text(MODELS.format(status="adopted"))
    (root / "reg").symlink_to("real")
    found = problems(root)
    assert any("refused: reg is a symbolic link" in p for p in found), found


def test_class4_symlinked_gate_yaml_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "models.yaml").write_text(MODELS.format(status="adopted"))
    (root / "real.yaml").write_text((root / "gate.yaml").read_text())
    (root / "gate.yaml").unlink()
    (root / "gate.yaml").symlink_to("real.yaml")
    assert any("refused: a symbolic link" in p for p in problems(root))
