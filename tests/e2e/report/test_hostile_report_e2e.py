"""End to end: a provider's 402 message and a model's final answers, hostile, through
``gate run`` -> ``gate report`` -> report.md -> ``gate comment`` -> the posted PR comment."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fake_github import FakeGitHub, pull_event, use_fake_github
from hostile_corpus import HOSTILE, assert_inert
from paths import REPO

from gate.cli import main

pytestmark = pytest.mark.slow  # end to end: the fast loop (pytest -m "not slow") skips it

ANSWERS = 6  # completions answered (hostile final answers), then 402 with a hostile message
MESSAGE_402 = " ".join(HOSTILE[:14])


class HostileProvider(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    calls = 0
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _json(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        self._json(404, {"error": {"message": "not here"}})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with HostileProvider.lock:
            HostileProvider.calls += 1
            n = HostileProvider.calls
        if n > ANSWERS:
            self._json(402, {"error": {"code": 402, "message": MESSAGE_402}})
            return
        answer = HOSTILE[n % len(HOSTILE)]
        self._json(200, {
            "id": f"gen-hostile-{n}",
            "model": "evil/model",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5},
        })


@pytest.fixture
def provider_url() -> Iterator[str]:
    HostileProvider.calls = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), HostileProvider)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def add_provider(project_dir: Path, url: str) -> None:
    cfg = project_dir / "gate.yaml"
    block = (
        "providers:\n"
        "  evil:\n"
        "    type: openai\n"
        f"    base_url: {url}\n"
        "    api_key_env: EVIL_KEY\n"
        "    pricing: table\n"
        "    concurrency: 1\n"
        "    prices:\n"
        "      evil/model: {prompt: 0.000001, completion: 0.000002}\n"
        "    retry: {max_attempts: 1, initial_wait_s: 0, max_wait_s: 0, jitter_s: 0}\n"
    )
    cfg.write_text(cfg.read_text().replace("providers:\n", block, 1))




def test_hostile_provider_and_model_text_is_inert_in_report_and_comment(
    project_dir: Path, provider_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_provider(project_dir, provider_url)
    monkeypatch.setenv("EVIL_KEY", "sk-test-hostile")
    out = tmp_path / "run"
    code = main(["run", "--config", str(project_dir / "gate.yaml"), "--model", "evil/model",
                 "--provider", "evil", "--rounds", "1", "--out", str(out)])
    assert code == 2, capsys.readouterr().err  # the 402 halted the run
    partial = json.loads((out / "PARTIAL-RESULTS.json").read_text())
    assert "@octocat" in json.dumps(partial)  # the raw message is kept as evidence on disk

    assert main(["report", "--run", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "\uff20octocat" in report  # the provider's message is shown, neutralised
    assert_inert(report)

    with FakeGitHub() as gh:
        gh.add_token("ghp_e2e", "gate-bot")
        gh.add_repo("acme/agents")
        gh.add_pull("acme/agents", 3, "carol", "b" * 40, "c" * 40)
        event = pull_event("pull_request.opened", repo="acme/agents", number=3, author="carol",
                           base_sha="b" * 40, head_sha="c" * 40)
        use_fake_github(monkeypatch, gh, tmp_path, token="ghp_e2e", repo="acme/agents",
                        event=event)
        from gate.github.comment import run_comment

        assert run_comment([str(out)], None, None) == 0
        (comment,) = gh.comments("acme/agents", 3)
    assert comment.body.startswith("<!-- gate-report -->\n")
    assert_inert(comment.body)
    assert_inert((tmp_path / "summary.md").read_text())


@pytest.fixture(scope="module")
def mock_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run on the simulated provider, reused: its JSON is then made hostile."""
    import shutil

    root = REPO
    project = tmp_path_factory.mktemp("project")
    for name in ("gate.yaml", "models.yaml", "prompts", "tools", "tasks", "fixtures"):
        src = root / name
        if src.is_dir():
            shutil.copytree(src, project / name)
        else:
            shutil.copy2(src, project / name)
    out = tmp_path_factory.mktemp("runs") / "run"
    code = main(["run", "--config", str(project / "gate.yaml"), "--model", "mock/expert@0.8",
                 "--rounds", "1", "--out", str(out)])
    assert code == 0
    return out


@pytest.mark.parametrize("text", HOSTILE)
def test_every_untrusted_field_of_the_report_is_inert(
    mock_run: Path, tmp_path: Path, text: str
) -> None:
    # Task ids and model ids come from a PR's files; status reasons and halt reasons from
    # providers. Plant the hostile text in each, render, and check the report.
    import shutil

    from gate.report.render import render_markdown

    run = tmp_path / "run"
    shutil.copytree(mock_run, run)
    results = json.loads((run / "results.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    for task in results["tasks"]:
        task["task"] = text
    results["status_reasons"] = [text]
    for arm in results["arms"].values():  # an environment's exception: a PR's code raised it
        arm["environment_errors"] = {"total": 1, "examples": [
            {"trial_id": text, "environment": text, "phase": "call", "type": text,
             "message": text, "file": text, "line": 7}]}
    for arm in manifest["arms"]:
        arm["model"] = text
        arm["prompts_tools"] = text
    (run / "results.json").write_text(json.dumps(results))
    (run / "manifest.json").write_text(json.dumps(manifest))
    report = render_markdown(run)
    assert_inert(report)
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    header_cells = rows[0].count(" | ")
    arm_row = rows[1]
    assert arm_row.replace("\\|", "").count(" | ") == header_cells  # no cell break-out
