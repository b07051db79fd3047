"""The store's policy, as checks of one intended write. Each returns the rule broken, or None.

The back office executes any well-formed write on existing records (as a real admin tool
does); enforcing the policy is the agent's job, so a write that breaks it is performed *and*
recorded as a policy violation, which fails the task.
"""

from __future__ import annotations

from gate.environments.orders.model import CatalogEntry, Item, Order, OrdersState


def rules_text(state: OrdersState) -> list[str]:
    """The policy in words, as ``get_policy`` shows it."""
    p = state.policy
    refundable = "" if p.final_sale_refundable else "; final-sale items are never refunded"
    return [
        "act only on the orders and profile of the customer you are talking to",
        f"cancel only orders whose status is one of: {', '.join(p.cancellable_statuses)}",
        "change a shipping address only while the order status is one of: "
        f"{', '.join(p.address_change_statuses)}",
        f"refund only items of delivered orders, within {p.refund_window_days} days of delivery"
        f", each item at most once{refundable}",
        f"all refunds of one order together may not exceed {p.max_refund_pct}% of its total",
        f"exchange only delivered, non-final-sale items within {p.exchange_window_days} days of "
        "delivery, for an in-stock variant of the same product at the same price",
    ]


def not_owner(state: OrdersState, customer_id: str) -> str | None:
    if customer_id != state.caller_customer_id:
        return "acted on another customer's records"
    return None


def cancel_rule(state: OrdersState, order: Order) -> str | None:
    if order.status not in state.policy.cancellable_statuses:
        return f"cancelled an order whose status is {order.status}"
    return None


def address_rule(state: OrdersState, order: Order) -> str | None:
    if order.status not in state.policy.address_change_statuses:
        return f"changed the address of an order whose status is {order.status}"
    return None


def _days_since_delivery(state: OrdersState, order: Order) -> int | None:
    if order.status != "delivered" or order.delivered_on is None:
        return None
    return (state.today - order.delivered_on).days


def refund_rule(state: OrdersState, order: Order, item: Item) -> str | None:
    policy = state.policy
    days = _days_since_delivery(state, order)
    if days is None:
        return f"refunded an item of an order whose status is {order.status}"
    if days > policy.refund_window_days:
        return f"refunded {days} days after delivery (window {policy.refund_window_days})"
    if item.final_sale and not policy.final_sale_refundable:
        return "refunded a final-sale item"
    if item.status != "active":
        return f"refunded an item whose status is {item.status}"
    cap = order.total_cents * policy.max_refund_pct // 100
    if state.refunded_cents(order.order_id) + item.line_total > cap:
        return f"refunds of order {order.order_id} would exceed {policy.max_refund_pct}% cap"
    return None


def exchange_rule(state: OrdersState, order: Order, item: Item, entry: CatalogEntry) -> str | None:
    days = _days_since_delivery(state, order)
    if days is None:
        return f"exchanged an item of an order whose status is {order.status}"
    if days > state.policy.exchange_window_days:
        return f"exchanged {days} days after delivery"
    if item.final_sale:
        return "exchanged a final-sale item"
    if item.status != "active":
        return f"exchanged an item whose status is {item.status}"
    if entry.product != item.product or entry.price_cents != item.price_cents:
        return "exchanged for a different product or price"
    return None
