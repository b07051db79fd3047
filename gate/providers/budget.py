"""The budget circuit breaker: no call is sent whose projected cost could cross the ceiling.

Before each call the provider projects its worst case (``project_cost``: prompt tokens estimated
from the request JSON, ``max_tokens`` completion tokens, the per-request price) and ``reserve``s
it. If money spent + reservations in flight + this projection would exceed the ceiling, the call
is refused with ``CircuitBreakerError`` and nothing reaches the provider. A finished call
``settle``s its reservation at the actual cost; a failed one ``release``s it.

The ceiling is the configured ``budget.ceiling_usd``, lowered to the provider's remaining credit
when the provider reports one (``apply_balance``); ``source`` says which applied.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from dataclasses import dataclass
from typing import Any, Literal

from gate.config.schema import Price
from gate.errors import CircuitBreakerError
from gate.providers.base import ChatRequest

BudgetSource = Literal["config", "provider_balance"]

CHARS_PER_TOKEN = 3  # deliberately pessimistic: real tokenisers average about 4 chars per token


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """Upper-side estimate of the prompt tokens of ``request``: JSON length / 3, rounded up."""
    return tokens_of_chars(len(json.dumps(request.body(), separators=(",", ":"))))


def tokens_of_chars(chars: int) -> int:
    """Upper-side estimate of the tokens of a request ``chars`` characters long (JSON)."""
    return math.ceil(chars / CHARS_PER_TOKEN)


def project_cost(request: ChatRequest, price: Price) -> float:
    """Worst-case USD cost of one call: estimated prompt, ``max_tokens`` completion, request."""
    return worst_case_cost(estimate_prompt_tokens(request), request.max_tokens, price)


def worst_case_cost(prompt_tokens_estimate: int, max_tokens: int, price: Price) -> float:
    """Worst-case USD cost of one call of any wire: the prompt estimate, every completion token
    the request allows, and the per-request price."""
    return (
        prompt_tokens_estimate * price.prompt
        + max_tokens * price.completion
        + price.request
    )


def usd(amount: float) -> str:
    """Dollar amounts in messages: four decimals (calls cost fractions of a cent)."""
    return f"${amount:.4f}"


@dataclass(frozen=True)
class Reservation:
    """A projected cost held against the ceiling while its call is in flight."""

    id: int
    amount: float


class Budget:
    """Spent and in-flight money against one ceiling. Safe across threads and tasks."""

    def __init__(self, ceiling_usd: float) -> None:
        if ceiling_usd < 0 or not math.isfinite(ceiling_usd):
            raise ValueError("ceiling_usd must be a finite number >= 0")
        self.configured_usd = ceiling_usd
        self.ceiling_usd = ceiling_usd
        self.source: BudgetSource = "config"
        self.provider_remaining_usd: float | None = None
        self.spent_usd = 0.0
        self._held: dict[int, float] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def in_flight_usd(self) -> float:
        with self._lock:
            return sum(self._held.values())

    def apply_balance(self, limit_remaining: float | None) -> None:
        """Lower the ceiling to the provider's remaining credit (``None`` = unlimited key)."""
        with self._lock:
            self.provider_remaining_usd = limit_remaining
            if limit_remaining is not None and limit_remaining < self.configured_usd:
                self.ceiling_usd = max(0.0, limit_remaining)
                self.source = "provider_balance"
            else:
                self.ceiling_usd = self.configured_usd
                self.source = "config"

    def reserve(self, projected_usd: float) -> Reservation:
        """Hold ``projected_usd`` for one call, or raise ``CircuitBreakerError`` (nothing sent)."""
        with self._lock:
            in_flight = sum(self._held.values())
            if self.spent_usd + in_flight + projected_usd > self.ceiling_usd:
                raise CircuitBreakerError(self._refusal(in_flight, projected_usd))
            reservation = Reservation(next(self._ids), projected_usd)
            self._held[reservation.id] = projected_usd
            return reservation

    def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """The call finished: drop its hold and count what it actually cost."""
        with self._lock:
            self._held.pop(reservation.id, None)
            self.spent_usd += max(0.0, actual_usd)

    def release(self, reservation: Reservation) -> None:
        """The call failed without cost: drop its hold (a no-op once settled)."""
        with self._lock:
            self._held.pop(reservation.id, None)

    def snapshot(self) -> dict[str, Any]:
        """The effective budget, for manifest.json and the report."""
        with self._lock:
            return {
                "ceiling_usd": self.ceiling_usd,
                "configured_usd": self.configured_usd,
                "provider_remaining_usd": self.provider_remaining_usd,
                "source": self.source,
                "spent_usd": self.spent_usd,
            }

    def _refusal(self, in_flight: float, projected: float) -> str:
        where = " (the provider's remaining balance)" if self.source == "provider_balance" else ""
        return (
            f"budget ceiling {usd(self.ceiling_usd)}{where} would be exceeded: "
            f"spent {usd(self.spent_usd)}, in flight {usd(in_flight)}, next call {usd(projected)}"
        )
