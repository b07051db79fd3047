"""Strict models of the orders environment's fixture data. Money is in integer cents."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from gate.environments.common import StateModel

OrderStatus = Literal["pending", "processing", "shipped", "delivered", "cancelled"]
ItemStatus = Literal["active", "refunded", "exchange_requested"]


class Address(StateModel):
    line1: str = Field(min_length=1)
    city: str = Field(min_length=1)
    postal_code: str = Field(min_length=1)
    country: str = Field(min_length=2)


class Item(StateModel):
    item_id: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    name: str = Field(min_length=1)
    product: str = Field(min_length=1, description="product family; exchanges stay within it")
    price_cents: int = Field(ge=0)
    qty: int = Field(1, ge=1)
    final_sale: bool = False
    status: ItemStatus = "active"
    exchange_sku: str | None = None

    @property
    def line_total(self) -> int:
        return self.price_cents * self.qty


class Order(StateModel):
    order_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    status: OrderStatus
    placed_on: date
    delivered_on: date | None = None
    shipping_address: Address
    items: list[Item] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Order:
        if (self.status == "delivered") != (self.delivered_on is not None):
            raise ValueError("delivered_on is set exactly when status is delivered")
        ids = [i.item_id for i in self.items]
        if len(ids) != len(set(ids)):
            raise ValueError("item ids must be unique within an order")
        return self

    @property
    def total_cents(self) -> int:
        return sum(i.line_total for i in self.items)

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.item_id == item_id), None)


class Customer(StateModel):
    customer_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    email: str = Field(min_length=3)
    address: Address


class CatalogEntry(StateModel):
    sku: str = Field(min_length=1)
    product: str = Field(min_length=1)
    name: str = Field(min_length=1)
    price_cents: int = Field(ge=0)
    in_stock: bool


class Policy(StateModel):
    refund_window_days: int = Field(ge=0, description="days after delivery a refund is allowed")
    exchange_window_days: int = Field(ge=0)
    max_refund_pct: int = Field(
        ge=1, le=100, description="all refunds of one order together: at most this % of its total"
    )
    cancellable_statuses: list[OrderStatus]
    address_change_statuses: list[OrderStatus]
    final_sale_refundable: bool = False


class Refund(StateModel):
    refund_id: str = Field(min_length=1)
    order_id: str
    item_id: str
    amount_cents: int = Field(ge=0)
    reason: str = Field(min_length=1)


class OrdersState(StateModel):
    today: date
    caller_customer_id: str = Field(description="the authenticated customer; hidden from tools")
    policy: Policy
    customers: list[Customer] = Field(min_length=1)
    orders: list[Order] = Field(min_length=1)
    catalog: list[CatalogEntry] = Field(default_factory=list)
    refunds: list[Refund] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> OrdersState:
        customers = {c.customer_id for c in self.customers}
        _unique("customer_id", [c.customer_id for c in self.customers])
        _unique("order_id", [o.order_id for o in self.orders])
        _unique("sku", [c.sku for c in self.catalog])
        _unique("refund_id", [r.refund_id for r in self.refunds])
        if self.caller_customer_id not in customers:
            raise ValueError(f"caller_customer_id {self.caller_customer_id!r} is no customer")
        for order in self.orders:
            if order.customer_id not in customers:
                raise ValueError(f"order {order.order_id}: no customer {order.customer_id!r}")
        orders = {o.order_id: o for o in self.orders}
        for refund in self.refunds:
            owner = orders.get(refund.order_id)
            if owner is None or owner.item(refund.item_id) is None:
                raise ValueError(f"refund {refund.refund_id}: no such order item")
        return self

    def order(self, order_id: str) -> Order | None:
        return next((o for o in self.orders if o.order_id == order_id), None)

    def customer(self, customer_id: str) -> Customer | None:
        return next((c for c in self.customers if c.customer_id == customer_id), None)

    def refunded_cents(self, order_id: str) -> int:
        return sum(r.amount_cents for r in self.refunds if r.order_id == order_id)


def _unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ValueError(f"duplicate {what} {v!r}")
        seen.add(v)


# --- expected ------------------------------------------------------------------------------


class ItemPatch(StateModel):
    status: ItemStatus | None = None
    exchange_sku: str | None = None


class OrderPatch(StateModel):
    status: OrderStatus | None = None
    shipping_address: Address | None = None
    items: dict[str, ItemPatch] = Field(default_factory=dict)


class CustomerPatch(StateModel):
    address: Address


class RefundSpec(StateModel):
    order_id: str
    item_id: str
    amount_cents: int = Field(ge=0)


class OrdersExpected(StateModel):
    """The end state, as changes to the initial one. All empty = nothing may change (refusal)."""

    orders: dict[str, OrderPatch] = Field(default_factory=dict)
    customers: dict[str, CustomerPatch] = Field(default_factory=dict)
    new_refunds: list[RefundSpec] = Field(default_factory=list)
