"""A shop's orders and the lifecycle events they produce, drawn under the world seed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["DELIVERY_STATUSES", "EventKind", "Order", "OrderBook", "OrderEvent", "now_iso"]

EventKind = Literal["created", "updated", "cancelled", "fulfilled"]
Draw = Callable[[str], float]

DELIVERY_STATUSES = frozenset(
    {"accepted", "assigned", "picked_up", "in_transit", "delivered", "failed", "cancelled"}
)

_CUSTOMERS = (
    "Ada Byron", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov",
    "Donald Knuth", "Frances Allen", "Ken Thompson", "Radia Perlman", "John McCarthy",
)  # fmt: skip
_STREETS = ("Harbour Rd", "Mill Lane", "High St", "Station Ave", "Quay St", "Park Row")
_ITEMS = (
    ("PZ-MARG", "Margherita pizza", 1150), ("NOO-PAD", "Pad thai", 1290),
    ("SAL-CSR", "Caesar salad", 890), ("BUR-CLS", "Classic burger", 1050),
    ("DRK-LEM", "Lemonade", 350), ("DES-TIR", "Tiramisu", 620),
)  # fmt: skip
_MAX_OPEN = 40


def now_iso() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Order:
    """One order as the platform stores it."""

    id: str
    number: int
    customer: str
    address: str
    items: list[tuple[str, str, int, int]]  # sku, title, quantity, unit price in cents
    created_at: str
    updated_at: str
    state: Literal["open", "cancelled", "fulfilled"] = "open"
    note: str = ""
    delivery_status: str | None = None
    driver_id: str | None = None
    version: int = 1
    sync_version: int = 0  # the highest status-update version applied

    @property
    def total_cents(self) -> int:
        return sum(qty * price for _, _, qty, price in self.items)


@dataclass(frozen=True)
class OrderEvent:
    """One lifecycle event of one order; `body` is fixed once so re-sends are byte-identical."""

    id: str
    seq: int
    kind: EventKind
    order_id: str
    body: bytes = field(repr=False)


@dataclass
class OrderBook:
    """Every order of one shop; `next_change` advances the simulated business."""

    order_id: Callable[[int], str]
    orders: dict[str, Order] = field(default_factory=dict)
    _open: list[str] = field(default_factory=list)

    def next_change(self, seq: int, draw: Draw) -> tuple[EventKind, Order]:
        """Create an order or move an open one forward; reproducible from (seq, draw)."""
        roll = draw(f"evt|{seq}|kind")
        if not self._open or (roll < 0.45 and len(self._open) < _MAX_OPEN):
            return "created", self._create(seq, draw)
        order = self.orders[self._open[int(draw(f"evt|{seq}|pick") * len(self._open))]]
        order.updated_at = now_iso()
        order.version += 1
        step = draw(f"evt|{seq}|step")
        if step < 0.45:
            order.note = f"Please ring the bell (change {order.version})"
            return "updated", order
        self._open.remove(order.id)
        if step < 0.85:
            order.state = "fulfilled"
            return "fulfilled", order
        order.state = "cancelled"
        return "cancelled", order

    def _create(self, seq: int, draw: Draw) -> Order:
        number = 1001 + len(self.orders)
        lines = 1 + int(draw(f"evt|{seq}|lines") * 3)
        items = []
        for i in range(lines):
            sku, title, price = _ITEMS[int(draw(f"evt|{seq}|item{i}") * len(_ITEMS))]
            items.append((sku, title, 1 + int(draw(f"evt|{seq}|qty{i}") * 3), price))
        street = _STREETS[int(draw(f"evt|{seq}|street") * len(_STREETS))]
        stamp = now_iso()
        order = Order(
            id=self.order_id(number),
            number=number,
            customer=_CUSTOMERS[int(draw(f"evt|{seq}|customer") * len(_CUSTOMERS))],
            address=f"{1 + int(draw(f'evt|{seq}|house') * 200)} {street}",
            items=items,
            created_at=stamp,
            updated_at=stamp,
        )
        self.orders[order.id] = order
        self._open.append(order.id)
        return order
