"""Helpers of the traffic tests: run the CLI in a directory, list every written file."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # traffic_sessions, instrumented_agent
