"""Helpdesk ticket triage: an example gate environment, written only against gate's public API.

The world is a small helpdesk queue: tickets, the customers who opened them, and a written
triage policy. The agent reads tickets, looks up customers and the policy, then routes each
ticket to a team with a priority, or closes it (spam, duplicates). It is graded on the queue's
end state, never on the wording of its answer:

- success: every ticket ends exactly as ``expected`` says (tickets not named there unchanged)
  and no write along the way was wrong;
- reward (partial credit): 0.3 x the share of required evidence looked at + 0.7 x the share of
  tickets in the right end state, halved when a wrong write happened.

Declared in gate.yaml as ``environments: {tickets: "environments.tickets:Tickets"}``; the tool
files are tools/tickets/*.yaml, the tasks tasks/tickets/*.yaml, the fixtures
fixtures/tickets/*.yaml and the system prompt prompts/tickets.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from gate.environments import Environment, EnvOutcome, Fixture, ToolCall, ToolResult

Team = Literal["accounts", "billing", "infra"]
Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal["open", "routed", "closed"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ticket(_Strict):
    id: str
    customer_id: str
    subject: str
    body: str
    status: Status = "open"
    team: Team | None = None
    priority: Priority | None = None
    close_reason: str | None = None


class Customer(_Strict):
    id: str
    name: str
    plan: Literal["free", "pro", "enterprise"]


class Queue(_Strict):
    """``fixture.initial_state``."""

    policy: list[str]
    customers: list[Customer]
    tickets: list[Ticket]


class Wanted(_Strict):
    """How one ticket must end (a ticket closed unrouted keeps team and priority unset)."""

    status: Status
    team: Team | None = None
    priority: Priority | None = None


class Expected(_Strict):
    """``fixture.expected``: ticket id -> how it must end; every other ticket stays as it is."""

    tickets: dict[str, Wanted]


def _key(ticket: Ticket) -> tuple[str, str | None, str | None]:
    """What triage changes about a ticket (the part that is graded)."""
    return ticket.status, ticket.team, ticket.priority


def _matches(wanted: ToolCall, call: ToolCall) -> bool:
    """Same tool, and every argument the fixture names has the same value in the call."""
    return wanted.tool == call.tool and all(
        call.args.get(k) == v for k, v in wanted.args.items())


class Tickets(Environment):
    """One helpdesk queue, built from a fixture; deterministic (nothing here is random)."""

    tool_names: ClassVar[frozenset[str]] = frozenset(
        {"get_policy", "list_tickets", "get_ticket", "get_customer", "route_ticket",
         "close_ticket"})

    def __init__(self, fixture: Fixture, seed: int) -> None:
        super().__init__(fixture, seed)
        queue = Queue.model_validate(fixture.initial_state)
        self.policy = queue.policy
        self.customers = {c.id: c for c in queue.customers}
        self.tickets = {t.id: t for t in queue.tickets}
        expected = Expected.model_validate(fixture.expected)
        self.target = {tid: _key(t) for tid, t in self.tickets.items()}
        for tid, want in expected.tickets.items():
            self.target[tid] = (want.status, want.team, want.priority)
        self.calls: list[ToolCall] = []
        self.wrong_writes: list[str] = []

    @classmethod
    def check_fixture(cls, fixture: Fixture) -> list[str]:
        problems: list[str] = []
        try:
            queue = Queue.model_validate(fixture.initial_state)
        except ValidationError as exc:
            return [f"initial_state.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                    for e in exc.errors()]
        try:
            expected = Expected.model_validate(fixture.expected)
        except ValidationError as exc:
            return [f"expected.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        ids = {t.id for t in queue.tickets}
        customers = {c.id for c in queue.customers}
        for i, t in enumerate(queue.tickets):
            if t.customer_id not in customers:
                problems.append(f"initial_state.tickets.{i}.customer_id: unknown customer "
                                f"{t.customer_id!r}")
        for tid, want in expected.tickets.items():
            if tid not in ids:
                problems.append(f"expected.tickets.{tid}: no such ticket in initial_state")
            if want.status == "routed" and (want.team is None or want.priority is None):
                problems.append(f"expected.tickets.{tid}: a routed ticket needs team and priority")
        return problems

    # --- tools: each returns a ToolResult; a failed action in the world is an error result ---

    def call(self, tool: str, args: dict[str, Any]) -> ToolResult:
        self.calls.append(ToolCall(tool=tool, args=dict(args)))
        return _TOOLS[tool](self, args)

    def _get_policy(self, args: dict[str, Any]) -> ToolResult:
        return ToolResult(content={"rules": self.policy})

    def _list_tickets(self, args: dict[str, Any]) -> ToolResult:
        rows = [{"id": t.id, "customer_id": t.customer_id, "subject": t.subject,
                 "status": t.status}
                for t in self.tickets.values()
                if args.get("status") in (None, t.status)
                and args.get("customer_id") in (None, t.customer_id)]
        return ToolResult(content={"tickets": rows})

    def _get_ticket(self, args: dict[str, Any]) -> ToolResult:
        ticket = self.tickets.get(args["ticket_id"])
        if ticket is None:
            return ToolResult(content=None, error=f"no ticket {args['ticket_id']!r}")
        return ToolResult(content=ticket.model_dump())

    def _get_customer(self, args: dict[str, Any]) -> ToolResult:
        customer = self.customers.get(args["customer_id"])
        if customer is None:
            return ToolResult(content=None, error=f"no customer {args['customer_id']!r}")
        return ToolResult(content=customer.model_dump())

    def _route_ticket(self, args: dict[str, Any]) -> ToolResult:
        ticket = self.tickets.get(args["ticket_id"])
        if ticket is None:
            return ToolResult(content=None, error=f"no ticket {args['ticket_id']!r}")
        if ticket.status == "closed":
            return ToolResult(content=None, error=f"ticket {ticket.id} is closed")
        ticket.status, ticket.team, ticket.priority = "routed", args["team"], args["priority"]
        return self._written(ticket)

    def _close_ticket(self, args: dict[str, Any]) -> ToolResult:
        ticket = self.tickets.get(args["ticket_id"])
        if ticket is None:
            return ToolResult(content=None, error=f"no ticket {args['ticket_id']!r}")
        ticket.status, ticket.close_reason = "closed", str(args["reason"])
        return self._written(ticket)

    def _written(self, ticket: Ticket) -> ToolResult:
        """A write that does not leave the ticket as expected is a wrong write (it fails the
        task even if a later call repairs it: a reckless agent must not score)."""
        wrong = _key(ticket) != self.target[ticket.id]
        if wrong:
            self.wrong_writes.append(ticket.id)
        return ToolResult(content=ticket.model_dump(), wrong_fix=wrong)

    # --- judgement -----------------------------------------------------------------------

    def outcome(self) -> EnvOutcome:
        required = self.fixture.required_evidence
        seen = sum(1 for r in required if any(_matches(r, c) for c in self.calls))
        evidence = seen / len(required)
        right = [tid for tid, t in self.tickets.items() if _key(t) == self.target[tid]]
        state = len(right) / len(self.tickets)
        success = state == 1.0 and not self.wrong_writes
        reward = 1.0 if success else round(
            min(0.3 * evidence + 0.7 * state, 0.95) * (0.5 if self.wrong_writes else 1.0), 4)
        detail = {"evidence_coverage": round(evidence, 4), "tickets_right": len(right),
                  "tickets": len(self.tickets), "wrong_writes": self.wrong_writes[:10]}
        return EnvOutcome(success=success, reward=reward, detail=detail)

    def snapshot(self) -> dict[str, Any]:
        return {"tickets": [t.model_dump() for t in self.tickets.values()],
                "calls": len(self.calls), "wrong_writes": list(self.wrong_writes)}


_TOOLS: dict[str, Callable[[Tickets, dict[str, Any]], ToolResult]] = {
    "get_policy": Tickets._get_policy,
    "list_tickets": Tickets._list_tickets,
    "get_ticket": Tickets._get_ticket,
    "get_customer": Tickets._get_customer,
    "route_ticket": Tickets._route_ticket,
    "close_ticket": Tickets._close_ticket,
}
