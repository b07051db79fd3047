"""The orders environment: policy rules, refusals, end-state grading, robustness."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from envsuite_helpers import case, fixture_words, random_value, task_ids, tasks, tools

from gate.config.schema import Fixture
from gate.environments.orders import OrdersEnvironment

CAP = "orders-hard-01-refund-cap-priority"
ADDRESS = "orders-easy-03-address-before-shipping"
ADDR = {"line1": "88  queen street e", "city": "TORONTO", "postal_code": "M5C 1S1", "country": "CA"}


def env_for(task_id: str) -> OrdersEnvironment:
    _, fixture = case(task_id)
    return OrdersEnvironment(fixture, 1)


def refund(env: OrdersEnvironment, order_id: str, item_id: str) -> Any:
    return env.call("refund_item", {"order_id": order_id, "item_id": item_id, "reason": "damaged"})


@pytest.mark.parametrize(
    ("task_id", "tool", "args", "rule"),
    [
        (
            "orders-medium-02-refuse-refund-late",
            "refund_item",
            {"order_id": "O-5801", "item_id": "L1", "reason": "defective"},
            "days after delivery",
        ),
        (
            "orders-medium-01-refund-skip-final-sale",
            "refund_item",
            {"order_id": "O-5701", "item_id": "L1", "reason": "damaged"},
            "final-sale",
        ),
        (
            "orders-medium-06-skip-already-refunded",
            "refund_item",
            {"order_id": "O-6201", "item_id": "L1", "reason": "damaged"},
            "status is refunded",
        ),
        (CAP, "refund_item", {"order_id": "O-6401", "item_id": "L1", "reason": "damaged"}, "cap"),
        (
            "orders-easy-04-refuse-cancel-shipped",
            "cancel_order",
            {"order_id": "O-5301", "reason": "customer_request"},
            "status is shipped",
        ),
        (
            "orders-medium-05-profile-yes-shipped-no",
            "update_shipping_address",
            {"order_id": "O-6101", "address": ADDR},
            "address of an order",
        ),
        (
            "orders-hard-04-order-id-belongs-to-someone-else",
            "cancel_order",
            {"order_id": "O-6702", "reason": "customer_request"},
            "another customer",
        ),
        (
            "orders-medium-07-refuse-exchange-price",
            "exchange_item",
            {"order_id": "O-6301", "item_id": "L1", "new_sku": "SH-TR-43W"},
            "different product",
        ),
        (
            "orders-easy-02-refund-damaged-blender",
            "cancel_order",
            {"order_id": "O-5101", "reason": "customer_request"},
            "status is delivered",
        ),
    ],
)
def test_policy_violations_are_flagged_and_fail(
    task_id: str, tool: str, args: dict[str, Any], rule: str
) -> None:
    _, fixture = case(task_id)
    env = OrdersEnvironment(fixture, 1)
    result = env.call(tool, args)
    assert result.policy_violation is not None
    assert rule in result.policy_violation
    assert result.wrong_fix
    for call in fixture.reference_trajectory:
        env.call(call.tool, call.args)
    outcome = env.outcome()
    assert not outcome.success
    assert outcome.detail["policy_violations"]
    assert outcome.reward <= 0.5


REFUSALS = [t.id for _, t, _ in tasks() if t.environment == "orders" and "refusal" in t.tags]


def test_there_are_pure_refusal_tasks() -> None:
    assert len(REFUSALS) >= 3


@pytest.mark.parametrize("task_id", REFUSALS)
def test_refusal_tasks_fail_if_the_forbidden_action_is_taken(task_id: str) -> None:
    _, fixture = case(task_id)
    assert fixture.expected == {"orders": {}, "customers": {}, "new_refunds": []}
    for forbidden in fixture.distractors:
        env = OrdersEnvironment(fixture, 1)
        first = env.call(forbidden.tool, forbidden.args)
        for call in fixture.reference_trajectory:
            env.call(call.tool, call.args)
        if first.wrong_fix or first.policy_violation:
            assert not env.outcome().success, forbidden


def test_doing_nothing_succeeds_only_on_refusals() -> None:
    for task_id in task_ids():
        task, fixture = case(task_id)
        if task.environment != "orders":
            continue
        outcome = OrdersEnvironment(fixture, 1).outcome()
        assert outcome.success == ("refusal" in task.tags), task_id


def test_cap_counts_refunds_already_made() -> None:
    env = env_for(CAP)
    assert refund(env, "O-6401", "L2").policy_violation is None  # 32.00
    assert refund(env, "O-6401", "L3").policy_violation is None  # 149.99, total 181.99
    order = env.call("get_order", {"order_id": "O-6401"}).content
    assert order["refunded_cents"] == 18199
    assert env.outcome().success


def test_refunding_the_wrong_item_is_a_wrong_write_without_violation() -> None:
    env = env_for("orders-easy-02-refund-damaged-blender")
    result = refund(env, "O-5101", "L2")
    assert result.wrong_fix
    assert result.policy_violation is None
    refund(env, "O-5101", "L1")
    outcome = env.outcome()
    assert not outcome.success
    assert outcome.detail["mismatched"] == ["orders:O-5101", "refunds:"]


def test_addresses_compare_without_case_or_extra_spaces() -> None:
    env = env_for(ADDRESS)
    result = env.call("update_shipping_address", {"order_id": "O-5201", "address": ADDR})
    assert not result.wrong_fix
    assert env.outcome().success


def test_unknown_records_are_errors_and_change_nothing() -> None:
    env = env_for(ADDRESS)
    before = env.snapshot()
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_order", {"order_id": "O-9999"}),
        ("cancel_order", {"order_id": "nope", "reason": "customer_request"}),
        ("refund_item", {"order_id": "O-5202", "item_id": "L9", "reason": "damaged"}),
        ("exchange_item", {"order_id": "O-5202", "item_id": "L1", "new_sku": "NOPE"}),
        ("update_customer_address", {"customer_id": "C-0", "address": ADDR}),
        ("find_customer_by_email", {"email": "who@example.com"}),
        ("list_orders", {"customer_id": "C-0"}),
        ("get_customer", {"customer_id": "C-0"}),
    ]
    for tool, args in calls:
        result = env.call(tool, args)
        assert result.content is None, tool
        assert result.error, tool
    assert env.snapshot()["state"] == before["state"]


def test_out_of_stock_exchange_is_refused_by_the_system() -> None:
    env = env_for("orders-medium-04-exchange-else-refund")
    args = {"order_id": "O-6001", "item_id": "L1", "new_sku": "JK-RN-M"}
    assert env.call("exchange_item", args).error == "sku JK-RN-M is out of stock"


def test_read_tools_show_what_a_decision_needs() -> None:
    env = env_for(CAP)
    policy = env.call("get_policy", {}).content
    assert policy["today"] == "2024-06-10"
    assert policy["max_refund_pct"] == 50
    assert any("50%" in rule for rule in policy["rules"])
    found = env.call("find_customer_by_email", {"email": " Aisha.Bello@example.org"}).content
    assert found == {"customer_id": "C-1003", "name": "Aisha Bello"}
    hits = env.call("search_catalog", {"query": "trail runner"}).content
    assert hits["total"] == 4


def _with(fixture: Fixture, **changes: Any) -> Fixture:
    data = fixture.model_dump()
    data.update(changes)
    return Fixture.model_validate(data)


def test_check_fixture_reports_bad_data_without_raising() -> None:
    _, fixture = case(CAP)
    state = json.loads(json.dumps(fixture.initial_state, default=str))
    state["orders"][0]["placed_on"] = "last tuesday"
    state["orders"][0]["items"][0]["colour"] = "red"
    messages = OrdersEnvironment.check_fixture(_with(fixture, initial_state=state))
    assert any(m.startswith("initial_state.orders.0.placed_on") for m in messages), messages
    assert any(m.startswith("initial_state.orders.0.items.0.colour") for m in messages)


def test_check_fixture_reports_dangling_expected_references() -> None:
    _, fixture = case(CAP)
    expected = {
        "orders": {
            "O-0": {"status": "cancelled"},
            "O-6401": {"items": {"L9": {"status": "refunded"}}},
        },
        "new_refunds": [{"order_id": "O-6401", "item_id": "L7", "amount_cents": 1}],
    }
    messages = OrdersEnvironment.check_fixture(_with(fixture, expected=expected))
    assert messages == [
        "expected.orders.O-0: no such order",
        "expected.orders.O-6401.items.L9: no such item",
        "expected.new_refunds.0: no such order item",
    ]


def test_check_fixture_reports_inconsistent_state() -> None:
    _, fixture = case(CAP)
    state = json.loads(json.dumps(fixture.initial_state, default=str))
    state["orders"][0]["delivered_on"] = None
    state["caller_customer_id"] = "C-404"
    messages = OrdersEnvironment.check_fixture(_with(fixture, initial_state=state))
    assert messages
    assert all(m.startswith("initial_state") for m in messages)


@pytest.mark.parametrize("task_id", [t for t in task_ids() if t.startswith("orders-")][::4])
def test_random_schema_valid_calls_never_raise_and_rarely_succeed(task_id: str) -> None:
    task, fixture = case(task_id)
    defs = tools("orders")
    words = fixture_words(fixture)
    rng = random.Random(task_id)
    successes = 0
    for _ in range(15):
        env = OrdersEnvironment(fixture, 1)
        for _ in range(12):
            tool = rng.choice(sorted(defs))
            json.dumps(env.call(tool, random_value(defs[tool].parameters, rng, words)).content)
        successes += env.outcome().success
    if "refusal" not in task.tags:
        assert successes <= 1


def test_an_incomplete_address_is_an_error_not_a_crash() -> None:
    env = env_for(ADDRESS)
    result = env.call("update_shipping_address", {"order_id": "O-5201", "address": {"city": "X"}})
    assert result.error is not None
    assert env.snapshot()["wrong_writes"] == []
