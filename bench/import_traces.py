"""How `gate import-traces` scales with the traffic: N synthetic JSONL sessions (each a
distinct support request: two reads, then a refund or a cancellation, an e-mail address in
the message) read, redacted, built into a suite and written; wall time and sessions per
second per N. Distractors are drawn in time independent of the traffic's size.

    .venv/bin/python bench/import_traces.py [--sizes 250 1000 4000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))

from traffic_sessions import session  # noqa: E402

from gate.cli import main  # noqa: E402


def traffic(n: int, path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            s = session(i, extra_user=f" Ticket {i}, from user{i}@example.com.")
            fh.write(json.dumps(s) + "\n")


def main_bench() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 4000])
    args = ap.parse_args()
    print(f"{'sessions':>9} {'seconds':>9} {'sessions/s':>11}")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "traffic.jsonl"
            traffic(n, src)
            started = time.perf_counter()
            code = _quiet(src, tmp)
            took = time.perf_counter() - started
            assert code == 0
        print(f"{n:>9} {took:>9.2f} {n / took:>11.0f}")


def _quiet(src: Path, tmp: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(["import-traces", "--from", str(src), "--env", "support",
                     "--out", str(Path(tmp) / "suite")])


if __name__ == "__main__":
    main_bench()
