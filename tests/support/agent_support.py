"""Helpers for the agent-program tests: a small copy of the repository's project whose
gate.yaml runs a given program, and checks that no process or port is left behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

import yaml
from paths import PROGRAMS, REPO

EXAMPLE = REPO / "examples" / "agents" / "openai_mcp_agent.py"
TASKS = ("incident/incident-easy-01-cache-crashed.yaml",
         "orders/orders-easy-01-cancel-pending-order.yaml",
         "incident/incident-hard-02-retry-storm-two-faults.yaml")


def make_project(dest: Path, *, tasks: tuple[str, ...] = TASKS, agent: Any = None,
                 overrides: dict[str, Any] | None = None, mock: dict[str, Any] | None = None,
                 run: dict[str, Any] | None = None, max_rounds: int | None = None) -> Path:
    """A project in ``dest`` with only ``tasks``; returns its gate.yaml."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("models.yaml", "prompts", "tools", "fixtures"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    for task in tasks:
        (dest / "tasks" / task).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / "tasks" / task, dest / "tasks" / task)
    config = yaml.safe_load((REPO / "gate.yaml").read_text())
    if agent is not None:
        config["agent"] = agent
    if overrides is not None:
        config["agent_overrides"] = overrides
    config["providers"]["mock"].update(mock or {})
    config["run"].update(run or {})
    if max_rounds is not None:
        config["statistics"]["max_rounds"] = max_rounds
    (dest / "gate.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest / "gate.yaml"


def program(*args: str, timeout_s: float = 60) -> dict[str, Any]:
    return {"command": [sys.executable, *args], "timeout_s": timeout_s}


def scripted(mode: str, timeout_s: float = 60) -> dict[str, Any]:
    return program(str(PROGRAMS / "scripted.py"), mode, timeout_s=timeout_s)


def agent_log(project: Path, task_id: str) -> dict[str, Any]:
    return json.loads((project / "agent-log" / f"{task_id}.json").read_text())  # type: ignore[no-any-return]


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def port_of(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])
