"""The built-in ``replay`` environment (see ``env``): production sessions replayed from their
recorded tool results, writes graded against a labelled session's writes."""

from gate.environments.replay.env import ReplayEnvironment

__all__ = ["ReplayEnvironment"]
