"""Builds a gate repository in a temporary directory, as a team would write it: its own
environment, written only against gate's public API, its own tools, tasks and fixtures."""

from __future__ import annotations

import textwrap
from pathlib import Path

LAMPS_ENV = '''
"""A room of lamps: the agent switches lamps until the room matches the fixture's expectation."""

from __future__ import annotations

from typing import Any, ClassVar

from gate.environments import Environment, EnvOutcome, Fixture, ToolCall, ToolResult


class Lamps(Environment):
    tool_names: ClassVar[frozenset[str]] = frozenset({"list_lamps", "switch"})

    def __init__(self, fixture: Fixture, seed: int) -> None:
        super().__init__(fixture, seed)
        self.lamps: dict[str, bool] = dict(fixture.initial_state["lamps"])
        self.wrong = 0
        self.calls: list[ToolCall] = []

    @classmethod
    def check_fixture(cls, fixture: Fixture) -> list[str]:
        lamps = fixture.initial_state.get("lamps")
        if not isinstance(lamps, dict):
            return ["initial_state.lamps: a mapping of lamp id to on/off is required"]
        return [f"expected.lamps.{k}: no such lamp" for k in fixture.expected["lamps"]
                if k not in lamps]

    def call(self, tool: str, args: dict[str, Any]) -> ToolResult:
        self.calls.append(ToolCall(tool=tool, args=dict(args)))
        if tool == "list_lamps":
            return ToolResult(content=dict(self.lamps))
        lamp = args["lamp"]
        if lamp not in self.lamps:
            return ToolResult(content=None, error=f"no lamp {lamp!r}")
        RAISE_HOOK
        self.lamps[lamp] = args["state"]
        wrong = self.fixture.expected["lamps"].get(lamp, not args["state"]) != args["state"]
        self.wrong += wrong
        return ToolResult(content={lamp: args["state"]}, wrong_fix=wrong)

    def outcome(self) -> EnvOutcome:
        want = {**self.lamps, **self.fixture.expected["lamps"]}
        right = sum(self.lamps[k] == v for k, v in want.items()) / len(want)
        success = right == 1.0 and not self.wrong
        return EnvOutcome(success=success, reward=1.0 if success else round(0.9 * right, 4),
                          detail={"right": right, "wrong": self.wrong})

    def snapshot(self) -> dict[str, Any]:
        return {"lamps": dict(self.lamps)}
'''

GATE_YAML = """\
version: 1
environments:
  lamps: "environments.lamps:Lamps"
providers:
  mock:
    type: mock
    retry: {max_attempts: 3, initial_wait_s: 0.01, max_wait_s: 0.02, jitter_s: 0.0,
            cooldown_after: 3, cooldown_s: 0.01}
statistics:
  max_rounds: 40
"""

TOOLS = {
    "list_lamps": "name: list_lamps\ndescription: Every lamp and whether it is on.\n"
                  "parameters: {type: object, properties: {}, additionalProperties: false}\n",
    "switch": "name: switch\ndescription: Switch one lamp on or off.\nparameters:\n"
              "  type: object\n  properties:\n    lamp: {type: string, minLength: 1}\n"
              "    state: {type: boolean}\n  required: [lamp, state]\n"
              "  additionalProperties: false\n",
}


def fixture(lamps: dict[str, bool], want: dict[str, bool]) -> str:
    def flow(d: dict[str, bool]) -> str:
        return "{" + ", ".join(f"{k}: {str(v).lower()}" for k, v in d.items()) + "}"

    switches = "\n".join(f"- {{tool: switch, args: {{lamp: {k}, state: {str(v).lower()}}}}}"
                         for k, v in want.items())
    wrong = "\n".join(f"- {{tool: switch, args: {{lamp: {k}, state: {str(not v).lower()}}}}}"
                      for k, v in want.items())
    return (f"initial_state:\n  lamps: {flow(lamps)}\nrequired_evidence:\n- {{tool: list_lamps}}\n"
            f"expected:\n  lamps: {flow(want)}\ndistractors:\n{wrong}\n"
            f"reference_trajectory:\n- {{tool: list_lamps}}\n{switches}\n"
            "reference_output: Done, the lamps are set as asked.\n")


TASKS = {
    "hall": ({"hall": False, "desk": True}, {"hall": True, "desk": False}),
    "porch": ({"porch": False, "door": False, "shed": True}, {"porch": True, "shed": False}),
    "all": ({"a": False, "b": False, "c": False}, {"a": True, "b": True, "c": True}),
}


def build(root: Path, *, raise_hook: str = "", gate_yaml: str = GATE_YAML) -> Path:
    """Write the repository under ``root``; returns the path of its gate.yaml."""
    (root / "environments").mkdir(parents=True)
    (root / "environments" / "__init__.py").write_text("")
    env = LAMPS_ENV.replace("RAISE_HOOK", raise_hook or "pass")
    (root / "environments" / "lamps.py").write_text(textwrap.dedent(env).lstrip())
    (root / "gate.yaml").write_text(gate_yaml)
    (root / "models.yaml").write_text(
        "models:\n- {id: mock/expert, provider: mock, evaluation_status: adopted}\n")
    (root / "prompts").mkdir()
    (root / "prompts" / "lamps.md").write_text("Switch the lamps as the user asks.\n")
    for sub in ("tools", "tasks", "fixtures"):
        (root / sub / "lamps").mkdir(parents=True)
    for name, text in TOOLS.items():
        (root / "tools" / "lamps" / f"{name}.yaml").write_text(text)
    for name, (lamps, want) in TASKS.items():
        (root / "fixtures" / "lamps" / f"{name}.yaml").write_text(fixture(lamps, want))
        (root / "tasks" / "lamps" / f"{name}.yaml").write_text(
            f"id: lamps-{name}\nenvironment: lamps\ndifficulty: easy\ntitle: Lamps {name}\n"
            f"instruction: Set the lamps of room {name}.\nfixture: lamps/{name}.yaml\n"
            "step_limit: 8\n")
    return root / "gate.yaml"
