"""The ``orders`` environment: a stateful customer-service back office (after tau-bench retail).

Success = the canonical projection of the end state (orders, items, addresses, refunds) equals
the expected one exactly, with no policy violation and no wrong write. Some tasks ask for
something the policy forbids: their expected end state is the initial one, so only refusing
succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import ValidationError

from gate.config.schema import Fixture, ToolCall
from gate.environments.base import Environment, EnvOutcome, ToolResult
from gate.environments.common import evidence_found, unknown_tool_messages, validation_messages
from gate.environments.orders import rules
from gate.environments.orders.model import Address, Order, OrdersExpected, OrdersState, Refund
from gate.environments.orders.projection import (
    address,
    expected_problems,
    expected_projection,
    project,
)

Handler = Callable[["OrdersEnvironment", dict[str, Any]], ToolResult]
MAX_SEARCH_RESULTS = 8


def _order_view(state: OrdersState, order: Order) -> dict[str, Any]:
    items = [i.model_dump(mode="json", exclude_none=True, exclude={"product"}) for i in order.items]
    return {
        **order.model_dump(mode="json", exclude={"items"}),
        "items": items,
        "total_cents": order.total_cents,
        "refunded_cents": state.refunded_cents(order.order_id),
    }


def _address(raw: Any) -> Address | None:
    try:
        return Address.model_validate(raw)
    except ValidationError:
        return None


def _missing(what: str, key: str) -> ToolResult:
    return ToolResult(content=None, error=f"no {what} {key!r}")


class OrdersEnvironment(Environment):
    name: ClassVar[str] = "orders"
    tool_names: ClassVar[frozenset[str]] = frozenset(
        {
            "find_customer_by_email",
            "get_customer",
            "list_orders",
            "get_order",
            "get_policy",
            "search_catalog",
            "cancel_order",
            "refund_item",
            "update_shipping_address",
            "update_customer_address",
            "exchange_item",
        }
    )

    def __init__(self, fixture: Fixture, seed: int) -> None:
        super().__init__(fixture, seed)  # nothing here is random: the seed is not needed
        initial = OrdersState.model_validate(fixture.initial_state)
        self.expected = OrdersExpected.model_validate(fixture.expected)
        self.target = expected_projection(initial, self.expected)
        self.initial = project(initial)
        self.state = initial.model_copy(deep=True)
        self.calls: list[ToolCall] = []
        self.violations: list[dict[str, Any]] = []
        self.wrong_writes: list[dict[str, Any]] = []

    @classmethod
    def check_fixture(cls, fixture: Fixture) -> list[str]:
        problems = unknown_tool_messages(fixture, cls.tool_names)
        try:
            initial = OrdersState.model_validate(fixture.initial_state)
        except ValidationError as exc:
            initial = None
            problems += validation_messages("initial_state", exc)
        try:
            expected = OrdersExpected.model_validate(fixture.expected)
        except ValidationError as exc:
            return problems + validation_messages("expected", exc)
        return problems if initial is None else problems + expected_problems(initial, expected)

    def call(self, tool: str, args: dict[str, Any]) -> ToolResult:
        self.calls.append(ToolCall(tool=tool, args=dict(args)))
        handler = _HANDLERS.get(tool)
        if handler is None:
            return ToolResult(content=None, error=f"unknown tool {tool!r}")
        return handler(self, args)

    # --- read tools ------------------------------------------------------------------------

    def _find_customer_by_email(self, args: dict[str, Any]) -> ToolResult:
        email = str(args["email"]).strip().casefold()
        for c in self.state.customers:
            if c.email.casefold() == email:
                return ToolResult(content={"customer_id": c.customer_id, "name": c.name})
        return _missing("customer with email", str(args["email"]))

    def _get_customer(self, args: dict[str, Any]) -> ToolResult:
        customer = self.state.customer(args["customer_id"])
        if customer is None:
            return _missing("customer", args["customer_id"])
        orders = [o.order_id for o in self.state.orders if o.customer_id == customer.customer_id]
        return ToolResult(content={**customer.model_dump(mode="json"), "order_ids": orders})

    def _list_orders(self, args: dict[str, Any]) -> ToolResult:
        if self.state.customer(args["customer_id"]) is None:
            return _missing("customer", args["customer_id"])
        rows = [
            {
                "order_id": o.order_id,
                "status": o.status,
                "placed_on": o.placed_on.isoformat(),
                "items": len(o.items),
                "total_cents": o.total_cents,
            }
            for o in self.state.orders
            if o.customer_id == args["customer_id"]
        ]
        return ToolResult(content={"customer_id": args["customer_id"], "orders": rows})

    def _get_order(self, args: dict[str, Any]) -> ToolResult:
        order = self.state.order(args["order_id"])
        if order is None:
            return _missing("order", args["order_id"])
        return ToolResult(content=_order_view(self.state, order))

    def _get_policy(self, args: dict[str, Any]) -> ToolResult:
        policy = self.state.policy.model_dump(mode="json")
        return ToolResult(
            content={
                "today": self.state.today.isoformat(),
                **policy,
                "rules": rules.rules_text(self.state),
            }
        )

    def _search_catalog(self, args: dict[str, Any]) -> ToolResult:
        query = " ".join(str(args["query"]).split()).casefold()
        hits = [
            e.model_dump(mode="json")
            for e in self.state.catalog
            if query in e.product.casefold() or query in e.name.casefold()
        ]
        return ToolResult(content={"results": hits[:MAX_SEARCH_RESULTS], "total": len(hits)})

    # --- write tools -----------------------------------------------------------------------

    def _cancel_order(self, args: dict[str, Any]) -> ToolResult:
        order = self.state.order(args["order_id"])
        if order is None:
            return _missing("order", args["order_id"])
        if order.status == "cancelled":
            return ToolResult(content=None, error=f"order {order.order_id} is already cancelled")
        broken = rules.not_owner(self.state, order.customer_id) or rules.cancel_rule(
            self.state, order
        )
        order.status = "cancelled"
        intended = self._target_order(order.order_id)["status"] == "cancelled"
        return self._written({"order_id": order.order_id, "status": "cancelled"}, broken, intended)

    def _refund_item(self, args: dict[str, Any]) -> ToolResult:
        order = self.state.order(args["order_id"])
        if order is None:
            return _missing("order", args["order_id"])
        item = order.item(args["item_id"])
        if item is None:
            return _missing(f"item in order {order.order_id} with id", args["item_id"])
        broken = rules.not_owner(self.state, order.customer_id) or rules.refund_rule(
            self.state, order, item
        )
        refund = Refund(
            refund_id=f"R-{len(self.state.refunds) + 1:04d}",
            order_id=order.order_id,
            item_id=item.item_id,
            amount_cents=item.line_total,
            reason=str(args["reason"]),
        )
        self.state.refunds.append(refund)
        item.status = "refunded"
        row = [order.order_id, item.item_id, item.line_total]
        intended = self.target["refunds"].count(row) >= project(self.state)["refunds"].count(row)
        return self._written(refund.model_dump(mode="json"), broken, intended)

    def _update_shipping_address(self, args: dict[str, Any]) -> ToolResult:
        order = self.state.order(args["order_id"])
        if order is None:
            return _missing("order", args["order_id"])
        new = _address(args["address"])
        if new is None:
            return ToolResult(
                content=None, error="the address needs line1, city, postal_code, country"
            )
        broken = rules.not_owner(self.state, order.customer_id) or rules.address_rule(
            self.state, order
        )
        order.shipping_address = new
        intended = self._target_order(order.order_id)["shipping_address"] == address(new)
        content = {"order_id": order.order_id, "shipping_address": new.model_dump()}
        return self._written(content, broken, intended)

    def _update_customer_address(self, args: dict[str, Any]) -> ToolResult:
        customer = self.state.customer(args["customer_id"])
        if customer is None:
            return _missing("customer", args["customer_id"])
        new = _address(args["address"])
        if new is None:
            return ToolResult(
                content=None, error="the address needs line1, city, postal_code, country"
            )
        broken = rules.not_owner(self.state, customer.customer_id)
        customer.address = new
        target = self.target["customers"][customer.customer_id]["address"]
        content = {"customer_id": customer.customer_id, "address": new.model_dump()}
        return self._written(content, broken, target == address(new))

    def _exchange_item(self, args: dict[str, Any]) -> ToolResult:
        order = self.state.order(args["order_id"])
        if order is None:
            return _missing("order", args["order_id"])
        item = order.item(args["item_id"])
        entry = next((e for e in self.state.catalog if e.sku == args["new_sku"]), None)
        if item is None:
            return _missing(f"item in order {order.order_id} with id", args["item_id"])
        if entry is None:
            return _missing("sku", args["new_sku"])
        if not entry.in_stock:
            return ToolResult(content=None, error=f"sku {entry.sku} is out of stock")
        broken = rules.not_owner(self.state, order.customer_id) or rules.exchange_rule(
            self.state, order, item, entry
        )
        item.status, item.exchange_sku = "exchange_requested", entry.sku
        want = self._target_order(order.order_id)["items"][item.item_id]
        content = {"order_id": order.order_id, "item_id": item.item_id, "new_sku": entry.sku}
        return self._written(content, broken, want["exchange_sku"] == entry.sku)

    # --- bookkeeping -----------------------------------------------------------------------

    def _target_order(self, order_id: str) -> dict[str, Any]:
        order: dict[str, Any] = self.target["orders"][order_id]
        return order

    def _written(self, content: dict[str, Any], broken: str | None, intended: bool) -> ToolResult:
        where = len(self.calls) - 1
        if broken is not None:
            self.violations.append({"call": where, "rule": broken})
        if not intended:
            self.wrong_writes.append({"call": where, "tool": self.calls[-1].tool})
        return ToolResult(content=content, wrong_fix=not intended, policy_violation=broken)

    # --- judgement -------------------------------------------------------------------------

    def outcome(self) -> EnvOutcome:
        found = evidence_found(self.fixture.required_evidence, self.calls)
        evidence = sum(found) / len(found)
        current = project(self.state)
        keys = _entity_keys(self.initial, self.target, current)
        wrong = [k for k in keys if _entity(self.target, k) != _entity(current, k)]
        state_score = 1.0 - len(wrong) / len(keys) if keys else 1.0
        clean = not self.violations and not self.wrong_writes
        success = current == self.target and clean
        raw = 0.3 * evidence + 0.7 * state_score
        reward = 1.0 if success else round(min(raw, 0.95) * (1.0 if clean else 0.5), 4)
        detail = {
            "evidence_coverage": round(evidence, 4),
            "state_matches": current == self.target,
            "mismatched": wrong[:10],
            "policy_violations": [v["rule"] for v in self.violations][:10],
            "wrong_writes": len(self.wrong_writes),
        }
        return EnvOutcome(success=success, reward=reward, detail=detail)

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": project(self.state),
            "refunds": [r.model_dump(mode="json") for r in self.state.refunds],
            "violations": list(self.violations),
            "wrong_writes": list(self.wrong_writes),
            "calls": len(self.calls),
        }


def _entity(proj: dict[str, Any], key: str) -> Any:
    kind, _, ident = key.partition(":")
    return proj["refunds"] if kind == "refunds" else proj[kind].get(ident)


def _entity_keys(*projs: dict[str, Any]) -> list[str]:
    """Entities (customers, orders, the refund list) that differ between any two projections."""
    keys = [f"{kind}:{ident}" for kind in ("customers", "orders") for ident in projs[0][kind]]
    keys.append("refunds:")
    return [k for k in keys if len({repr(_entity(p, k)) for p in projs}) > 1]


_HANDLERS: dict[str, Handler] = {
    "find_customer_by_email": OrdersEnvironment._find_customer_by_email,
    "get_customer": OrdersEnvironment._get_customer,
    "list_orders": OrdersEnvironment._list_orders,
    "get_order": OrdersEnvironment._get_order,
    "get_policy": OrdersEnvironment._get_policy,
    "search_catalog": OrdersEnvironment._search_catalog,
    "cancel_order": OrdersEnvironment._cancel_order,
    "refund_item": OrdersEnvironment._refund_item,
    "update_shipping_address": OrdersEnvironment._update_shipping_address,
    "update_customer_address": OrdersEnvironment._update_customer_address,
    "exchange_item": OrdersEnvironment._exchange_item,
}
