"""Wall time of `gate smoke` over the whole suite (target: at most 10 s on 2 cores).

Runs the real command in a subprocess, as a user would, several times, and prints each wall
time and the median. Usage: python bench/smoke_time.py [--repeat 3] [--config gate.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--config", default="gate.yaml")
    args = parser.parse_args()
    times = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "gate.cli", "smoke", "--config", args.config,
                 "--out", str(Path(tmp) / "smoke")],
                capture_output=True, text=True)
            elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr)
            print(f"gate smoke failed (exit {proc.returncode})")
            return 1
        summary = proc.stdout.strip().splitlines()[-1]
        times.append(elapsed)
        print(f"run {i + 1}: {elapsed:.2f} s wall ({summary})")
    median = statistics.median(times)
    print(f"gate smoke wall time: median {median:.2f} s over {args.repeat} runs "
          f"(target <= 10 s): {'OK' if median <= 10 else 'OVER TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
