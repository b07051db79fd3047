"""The typed records: reading rejects unknown and missing fields with the file and line, and
the shipped JSON Schema of results.json is the one the models generate."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from builders import trial
from paths import PACKAGE

from gate.errors import RecordError
from gate.records import (
    AuditAttempt,
    Heartbeat,
    PartialResults,
    Results,
    Smoke,
    Trial,
    read_record,
    results_json_schema,
    schema_text,
)
from gate.rundir.jsonl import JsonlWriter, read_jsonl


def _trial(n: int) -> Trial:
    return trial("run", "t", n)


def _write(path: Path, records: list[Trial]) -> list[dict[str, object]]:
    with JsonlWriter(path, Trial) as w:
        for r in records:
            w.write(r)
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_record_round_trips_and_every_field_is_written(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    lines = _write(path, [_trial(1), _trial(2)])
    assert set(lines[0]) == set(Trial.model_fields)  # defaults written too
    assert read_jsonl(path, Trial) == [_trial(1), _trial(2)]


def test_unknown_field_is_rejected_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    lines = _write(path, [_trial(1), _trial(2), _trial(3)])
    lines[1]["sucess"] = True
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(RecordError) as err:
        read_jsonl(path, Trial)
    assert str(err.value) == f"{path}:2: unknown field 'sucess'"


def test_missing_field_is_rejected_even_when_it_has_a_default(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    lines = _write(path, [_trial(1), _trial(2)])
    del lines[1]["reward"]  # Trial.reward defaults to None: a writer never leaves it out
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(RecordError) as err:
        read_jsonl(path, Trial)
    assert str(err.value) == f"{path}:2: missing field(s): reward"


def test_wrong_type_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    line = AuditAttempt(ts="t", arm="a", model="m", task="t", round=1, step=1, attempt=1,
                        request_sha256="0" * 64, outcome="ok", http_status=200,
                        response_id="gen-1", tokens_in=1, tokens_out=1,
                        cost_reported_usd=None, cost_computed_usd=0.0, latency_s=0.1).to_json()
    line["tokens_in"] = "many"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(RecordError) as err:
        read_jsonl(path, AuditAttempt)
    assert str(err.value).startswith(f"{path}:1: tokens_in: ")


def test_a_writer_takes_only_its_model(tmp_path: Path) -> None:
    with JsonlWriter(tmp_path / "trials.jsonl", Trial) as w, pytest.raises(TypeError):
        w.write(Heartbeat(ts="t", calls=0, failed_attempts=0, cost_usd=0.0,  # type: ignore[arg-type]
                          trials_done=0))


def test_json_record_files_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "smoke.json"
    path.write_text(json.dumps({"ok": True, "checks": [], "tasks": [], "config_sha256": "x",
                                "files_sha256": {}, "seconds": 1.0, "subset": None,
                                    "extra": 1}))
    with pytest.raises(RecordError, match=r"smoke.json: unknown field 'extra'"):
        read_record(path, Smoke)
    path.write_text("{\n  \"ok\": tru\n}")
    with pytest.raises(RecordError, match=r"smoke.json:2: not JSON"):
        read_record(path, Smoke)


def test_shipped_schema_is_the_generated_one() -> None:
    shipped = resources.files("gate").joinpath("schemas/results.schema.json").read_text()
    assert shipped == schema_text(), (
        "gate/schemas/results.schema.json is stale: "
        "python -m gate.records --schema > gate/schemas/results.schema.json")
    jsonschema.Draft202012Validator.check_schema(json.loads(shipped))


def test_schema_separates_results_from_partial_results() -> None:
    schema = results_json_schema()
    results = {name: f.is_required() for name, f in Results.model_fields.items()}
    assert "missing" not in results
    assert PartialResults.model_fields["missing"].is_required()
    assert {d["$ref"].rsplit("/", 1)[1] for d in schema["anyOf"]} == {"Results",
                                                                      "PartialResults"}


def test_the_product_reads_run_files_through_a_model() -> None:
    """Inside gate/, every ``read_jsonl`` call names the record model it validates against."""
    import ast

    package = PACKAGE
    untyped = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "read_jsonl" and len(node.args) < 2):
                untyped.append(f"{path.relative_to(package)}:{node.lineno}")
    assert untyped == []
