"""The ``orders`` environment (see ``env``): customers, orders, refunds and a policy."""

from gate.environments.orders.env import OrdersEnvironment

__all__ = ["OrdersEnvironment"]
