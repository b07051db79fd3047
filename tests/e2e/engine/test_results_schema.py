"""results.json and PARTIAL-RESULTS.json match the JSON Schema published in the package."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from gate.cli import main

pytestmark = pytest.mark.slow  # end to end: the fast loop (pytest -m "not slow") skips it


@pytest.fixture(scope="module")
def schema() -> dict:  # type: ignore[type-arg]
    text = resources.files("gate").joinpath("schemas/results.schema.json").read_text()
    data = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(data)
    return data  # type: ignore[no-any-return]


def test_sweep_and_halted_run_match_the_schema(schema: dict, project_dir: Path,  # type: ignore[type-arg]
                                               tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    main(["sweep", "--config", str(project_dir / "gate.yaml"), "--candidate", "mock/expert@0.8",
          "--baseline", "mock/expert", "--out", str(sweep)])
    jsonschema.validate(json.loads((sweep / "results.json").read_text()), schema)
    pause = tmp_path / "PAUSE"
    pause.touch()
    paused = tmp_path / "paused"
    main(["sweep", "--config", str(project_dir / "gate.yaml"), "--candidate", "mock/expert",
          "--baseline", "mock/expert", "--out", str(paused), "--pause-file", str(pause)])
    partial = json.loads((paused / "PARTIAL-RESULTS.json").read_text())
    jsonschema.validate(partial, schema)
    broken = {**partial, "status": "done"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
