"""This repository's own gate environments (declared in gate.yaml under `environments:`)."""
