"""The ``incident`` environment (see ``env``): five services, faults, distractors."""

from gate.environments.incident.env import IncidentEnvironment

__all__ = ["IncidentEnvironment"]
