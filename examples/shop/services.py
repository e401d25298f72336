"""Writes of the example shop: orders, their statuses, and generated histories."""

from __future__ import annotations

from examples.shop.orders import order_create, order_status_record
from examples.shop.seeding import (
    SEED_SPAN,
    SeedResult,
    orders_seed,
    orders_seed_if_empty,
    orders_seed_progress,
)

__all__ = [
    "SEED_SPAN",
    "SeedResult",
    "order_create",
    "order_status_record",
    "orders_seed",
    "orders_seed_if_empty",
    "orders_seed_progress",
]
