"""Synthetic production traffic for the traffic tests: a small support desk whose agent reads
orders and customers and refunds or cancels orders. Every session is an OpenAI chat transcript
with tool calls and results, as the plain JSONL format documents it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ORDERS = {f"A-{100 + i}": {"id": f"A-{100 + i}", "customer": f"c{i % 4}",
                           "total": 20.0 + 7 * i, "status": "delivered" if i % 3 else "shipped"}
          for i in range(12)}


def _call(cid: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"id": cid, "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}


def session(i: int, *, label: str | None = "good", extra_user: str = "",
            result_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Session ``i``: even ones refund an order, every third cancels, others only read."""
    order = ORDERS[f"A-{100 + i % 12}"]
    kind = "refund" if i % 2 == 0 else "cancel" if i % 3 == 0 else "status"
    ask = {"refund": f"Please refund order {order['id']}, it arrived broken.",
           "cancel": f"Cancel order {order['id']} please, I ordered it twice.",
           "status": f"Where is my order {order['id']}?"}[kind] + extra_user
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are the support agent of Acme. Be brief."},
        {"role": "user", "content": ask},
        {"role": "assistant", "content": None,
         "tool_calls": [_call("c1", "get_order", {"order_id": order["id"]})]},
        {"role": "tool", "tool_call_id": "c1",
         "content": json.dumps({**order, **(result_extra or {})})},
        {"role": "assistant", "content": None,
         "tool_calls": [_call("c2", "get_customer", {"customer_id": order["customer"]})]},
        {"role": "tool", "tool_call_id": "c2",
         "content": json.dumps({"id": order["customer"], "tier": "gold"})},
    ]
    if kind == "refund":
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [_call(
                "c3", "refund_order", {"order_id": order["id"], "amount": order["total"],
                                       "reason": "damaged"})]},
            {"role": "tool", "tool_call_id": "c3", "content": json.dumps({"refunded": True})},
        ]
    elif kind == "cancel":
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [_call(
                "c3", "cancel_order", {"order_id": order["id"]})]},
            {"role": "tool", "tool_call_id": "c3", "content": json.dumps({"cancelled": True})},
        ]
    messages.append({"role": "assistant", "content": f"Done: {kind} for {order['id']}."})
    out: dict[str, Any] = {"id": f"s-{i}", "started_at": f"2026-11-{1 + i % 28:02d}T10:00:00Z",
                           "messages": messages, "latency_s": 1.0 + i, "cost_usd": 0.001 * (i + 1)}
    if label is not None:
        out["label"] = label
    return out


def write_jsonl(path: Path, sessions: list[dict[str, Any]], *, extra_lines: tuple[str, ...] = ()
                ) -> Path:
    lines = [json.dumps(s) for s in sessions] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
