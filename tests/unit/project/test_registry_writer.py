from __future__ import annotations

from pathlib import Path

import pytest

from gate.config.schema import Registry
from gate.config.yamlio import load_yaml, model_from_doc
from gate.errors import RegistryWriteError
from gate.project.registry import write_status

TEXT = """\
# registry comment kept
models:
  - id: prod/model
    provider: mock
    evaluation_status: adopted
  - id: new/model
    provider: mock
    evaluation_status: pending-evaluation  # trailing
"""


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(TEXT)
    return path


def _statuses(path: Path) -> dict[str, str]:
    reg = model_from_doc(Registry, load_yaml(path))
    return {m.id: m.evaluation_status for m in reg.models}


def test_writes_allowed_status_and_run_id_keeping_comments(registry: Path) -> None:
    write_status(registry, "new/model", "pending-human-review", run_id="run-1")
    assert _statuses(registry) == {"prod/model": "adopted", "new/model": "pending-human-review"}
    text = registry.read_text()
    assert "# registry comment kept" in text
    assert 'last_run: "run-1"' in text
    write_status(registry, "new/model", "in-progress", run_id="run-2")
    assert 'last_run: "run-2"' in registry.read_text()
    assert "run-1" not in registry.read_text()


@pytest.mark.parametrize(
    "status",
    [
        "adopted",
        "Adopted",
        " adopted",
        "rejected",
        "rejected-inconclusive",
        'pending-evaluation"\n    evaluation_status: "adopted',
        "pending-evaluation\n  - id: x\n    provider: mock\n    evaluation_status: adopted",
    ],
)
def test_refuses_anything_but_the_three_statuses(registry: Path, status: str) -> None:
    before = registry.read_text()
    with pytest.raises(RegistryWriteError):
        write_status(registry, "new/model", status)
    assert registry.read_text() == before


def test_postcondition_refuses_adopted_text_whatever_produced_it(registry: Path) -> None:
    """The file-level check alone refuses: even a caller that built the text itself."""
    from gate.project.registry import _check_postcondition

    old = model_from_doc(Registry, load_yaml(registry))
    forged = registry.read_text().replace("pending-evaluation  # trailing", "adopted")
    with pytest.raises(RegistryWriteError, match="would become 'adopted'"):
        _check_postcondition(registry, old, forged, "new/model", "adopted")
    renamed = registry.read_text().replace("provider: mock\n    evaluation_status: adopted",
                                           "provider: other\n    evaluation_status: adopted")
    with pytest.raises(RegistryWriteError, match="fields"):
        _check_postcondition(registry, old, renamed, "new/model", "pending-evaluation")


def test_refuses_to_touch_an_adopted_entry(registry: Path) -> None:
    with pytest.raises(RegistryWriteError, match="only a human"):
        write_status(registry, "prod/model", "pending-human-review")


def test_unknown_model(registry: Path) -> None:
    with pytest.raises(RegistryWriteError, match="no model"):
        write_status(registry, "nope", "in-progress")
