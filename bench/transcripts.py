"""What the per-trial transcripts cost on disk.

Runs the repository's suite on the simulated models (``gate run``, in-process mock provider)
into a temporary directory and prints, from the files it wrote: trials, the size of
transcripts.jsonl.gz and of the uncompressed lines, per-trial mean and max, how many were
capped, and the size of trials.jsonl and audit.jsonl for comparison.

    .venv/bin/python bench/transcripts.py [--model mock/expert@0.8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from gate.cli import main as gate  # noqa: E402
from gate.engine.transcripts import TRANSCRIPTS  # noqa: E402
from gate.records import Transcript  # noqa: E402
from gate.rundir.jsonl import read_compressed_jsonl  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mock/expert@0.8")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = gate(["run", "--config", str(REPO / "gate.yaml"), "--model", args.model,
                         "--rounds", str(args.rounds), "--out", str(out)])
        if code not in (0, 3):
            print(f"gate run exited {code}", file=sys.stderr)
            return 1
        path = out / TRANSCRIPTS
        records = read_compressed_jsonl(path, Transcript)
        raw = len(gzip.decompress(path.read_bytes()))
        packed = path.stat().st_size
        sizes = [r.original_bytes for r in records]
        print(f"model {args.model}, {args.rounds} rounds: {len(records)} transcripts")
        print(f"{TRANSCRIPTS}: {packed} bytes ({raw} uncompressed, ratio {raw / packed:.1f}x)")
        print(f"per trial: mean {packed / len(records):.0f} bytes compressed, "
              f"{sum(sizes) / len(sizes):.0f} uncompressed, max {max(sizes)}; "
              f"capped {sum(r.capped for r in records)} (cap {records[0].cap_bytes} bytes)")
        for name in ("trials.jsonl", "audit.jsonl"):
            print(f"{name}: {(out / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
