"""The canonical projection of an orders database that grading compares, and fixture checks."""

from __future__ import annotations

from typing import Any

from gate.environments.orders.model import Address, OrdersExpected, OrdersState


def _text(value: str) -> str:
    return " ".join(value.split()).casefold()


def address(a: Address) -> dict[str, str]:
    """An address compared without regard to case or repeated spaces."""
    return {k: _text(v) for k, v in sorted(a.model_dump().items())}


def project(state: OrdersState) -> dict[str, Any]:
    """Customers' addresses, orders (status, address, items) and refunds (ids left out)."""
    return {
        "customers": {c.customer_id: {"address": address(c.address)} for c in state.customers},
        "orders": {
            o.order_id: {
                "status": o.status,
                "shipping_address": address(o.shipping_address),
                "items": {
                    i.item_id: {"status": i.status, "exchange_sku": i.exchange_sku} for i in o.items
                },
            }
            for o in state.orders
        },
        "refunds": sorted([r.order_id, r.item_id, r.amount_cents] for r in state.refunds),
    }


def expected_projection(initial: OrdersState, expected: OrdersExpected) -> dict[str, Any]:
    """The initial projection with ``expected``'s changes applied (call only on a checked pair)."""
    proj = project(initial)
    for cid, cpatch in expected.customers.items():
        proj["customers"][cid]["address"] = address(cpatch.address)
    for oid, opatch in expected.orders.items():
        order = proj["orders"][oid]
        if opatch.status is not None:
            order["status"] = opatch.status
        if opatch.shipping_address is not None:
            order["shipping_address"] = address(opatch.shipping_address)
        for iid, ipatch in opatch.items.items():
            order["items"][iid].update(ipatch.model_dump(exclude_none=True))
    new = [[r.order_id, r.item_id, r.amount_cents] for r in expected.new_refunds]
    proj["refunds"] = sorted(proj["refunds"] + new)
    return proj


def expected_problems(initial: OrdersState, expected: OrdersExpected) -> list[str]:
    """References in ``expected`` to customers, orders, items or skus that do not exist."""
    problems = [
        f"expected.customers.{cid}: no such customer"
        for cid in expected.customers
        if initial.customer(cid) is None
    ]
    skus = {c.sku for c in initial.catalog}
    for oid, opatch in expected.orders.items():
        order = initial.order(oid)
        if order is None:
            problems.append(f"expected.orders.{oid}: no such order")
            continue
        for iid, ipatch in opatch.items.items():
            if order.item(iid) is None:
                problems.append(f"expected.orders.{oid}.items.{iid}: no such item")
            if ipatch.exchange_sku is not None and ipatch.exchange_sku not in skus:
                problems.append(f"expected.orders.{oid}.items.{iid}: sku not in catalog")
    for i, r in enumerate(expected.new_refunds):
        order = initial.order(r.order_id)
        if order is None or order.item(r.item_id) is None:
            problems.append(f"expected.new_refunds.{i}: no such order item")
    return problems
