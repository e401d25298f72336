"""A second kind of key: the latest price of each product, products keyed by UUID.

Declared over tables made here (``uuid`` keys, a ``valid_from`` timestamp, a
price to show), the machinery keeps its state for UUID keys (the install
retypes it, and retypes it back for the example's integers afterwards), and
every read strategy, every page, the BI view, the API, the order page and the
dashboard answer exactly as the brute force over the prices says.
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import reverse

from reporting import selectors, services, source_install
from reporting.choices import RefreshOutcome
from tests.brute_force import brute_force_lists
from tests.sources import STRATEGIES, Shape, assert_exact, expected, raw_rows, shape_declared

PRICES_DDL = """
CREATE TABLE product (id uuid PRIMARY KEY, added timestamptz NOT NULL);
CREATE TABLE price (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id uuid NOT NULL REFERENCES product (id),
    valid_from timestamptz NOT NULL,
    state text NOT NULL,
    amount numeric(10, 2) NOT NULL
);
CREATE INDEX price_latest ON price (product_id, valid_from DESC, id DESC);
"""
STATES = ["listed", "on_sale", "withdrawn"]
PRICES = Shape(
    name="prices",
    declaration={
        "history": "public.price",
        "key": "product_id",
        "latest_by": ["-valid_from", "-id"],
        "status": "state",
        "statuses": STATES,
        "parent": "public.product",
        "parent_key": "id",
        "parent_created": "added",
        "columns": ["amount"],
    },
    ddl=PRICES_DDL,
    drop="DROP TABLE price, product",
    rows_sql="SELECT id, product_id, valid_from, state FROM price",
    keys_sql="SELECT id FROM product",
    insert_key_sql="INSERT INTO product (id, added) VALUES (%s, %s) ON CONFLICT DO NOTHING",
    insert_row_sql="INSERT INTO price (product_id, valid_from, state, amount) VALUES (%s, %s, %s, 1)",
    reset_sql="TRUNCATE price, product",
    key=lambda i: uuid.UUID(int=i + 1),
    values=tuple(STATES),
)
T0 = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _amounts() -> dict[int, decimal.Decimal]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, amount FROM price")
        return dict(cursor.fetchall())


def _products() -> list[uuid.UUID]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM product ORDER BY added")
        return [row[0] for row in cursor.fetchall()]


def _amount(rng: random.Random) -> decimal.Decimal:
    return decimal.Decimal(rng.randint(1, 99999)) / 100


def _write(cursor, rng: random.Random, products: list[uuid.UUID], count: int) -> None:
    """Prices at random: ties on valid_from, backdated prices, a state set twice."""
    for _ in range(count):
        valid_from = T0 + dt.timedelta(hours=rng.choice([0, 1, 1, 24, 240]) + rng.randint(0, 2))
        cursor.execute(
            "INSERT INTO price (product_id, valid_from, state, amount) VALUES (%s, %s, %s, %s)",
            [
                rng.choice(products),
                valid_from,
                rng.choice(STATES),
                decimal.Decimal(rng.randint(1, 9999)).scaleb(-2),
            ],
        )


@pytest.fixture
def prices(transactional_db, settings):
    """Products and their prices declared as the source; the example's declaration after."""
    rng = random.Random(5)
    products = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(40)]
    with shape_declared(PRICES, settings):
        with connection.cursor() as cursor:
            assert source_install.installed_key_types(cursor) == {"uuid"}
            for i, product in enumerate(products):
                cursor.execute("INSERT INTO product VALUES (%s, %s)", [product, T0 + dt.timedelta(hours=i)])
            _write(cursor, rng, products[:32], 200)  # the last 8 products have no price yet
        assert services.views_refresh(force=True).outcome == RefreshOutcome.OK
        yield rng
    with connection.cursor() as cursor:
        assert source_install.installed_key_types(cursor) == {"bigint"}


def _assert_exact(strategies: tuple[str, ...]) -> None:
    """Every strategy, page walk and SQL view exact (:func:`tests.sources.assert_exact`), and the
    amount each row shows is its latest price's."""
    assert_exact(PRICES, strategies)
    want = expected(PRICES)
    amounts = _amounts()
    for strategy in strategies:
        for state in STATES:
            rows = list(selectors.order_iter_by_status(status=state, strategy=strategy))
            assert [row.columns for row in rows] == [{"amount": amounts[t[1]]} for t in want.rows(state)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT order_id, status, amount FROM reporting.order_latest_row_live")
        assert sorted(cursor.fetchall()) == sorted(
            (key, row.status, amounts[row.id]) for key, row in want.latest.items()
        )


def test_every_strategy_and_every_page_reads_the_latest_price_of_each_product(prices):
    rng = prices
    products = _products()
    _assert_exact(STRATEGIES)
    with connection.cursor() as cursor:
        _write(cursor, rng, products, 60)
    # Folded into the overlay, then more changes on top (the tail).
    assert services.overlay_fold().orders > 0
    _assert_exact(("live", "realtime"))
    with connection.cursor() as cursor:
        _write(cursor, rng, products, 30)
        new = uuid.UUID(int=rng.getrandbits(128), version=4)
        cursor.execute("INSERT INTO product VALUES (%s, %s)", [new, T0])
        # A product's latest price withdrawn from the table, another moved to the new product.
        cursor.execute(
            "DELETE FROM price WHERE id = (SELECT id FROM price WHERE product_id = %s "
            "ORDER BY valid_from DESC, id DESC LIMIT 1)",
            [products[0]],
        )
        cursor.execute("UPDATE price SET product_id = %s WHERE id = (SELECT min(id) FROM price)", [new])
    _assert_exact(("live", "realtime"))
    assert services.overlay_fold().orders > 0
    assert services.views_refresh().outcome == RefreshOutcome.OK
    _assert_exact(STRATEGIES)


def test_the_api_the_order_page_and_the_dashboard_take_uuid_keys(prices, client):
    user = get_user_model().objects.create_user("prices", password="prices-password-1")
    user.user_permissions.add(Permission.objects.get(codename="view_reports"))
    client.force_login(user)
    expected = brute_force_lists(raw_rows(PRICES), STATES)["on_sale"]
    amounts = _amounts()
    walked, after = [], None
    while True:
        params = {"status": "on_sale", "limit": 4, **({"after": after} if after else {})}
        body = client.get(reverse("api-orders"), params).json()
        walked += [(row["order_id"], row["amount"]) for row in body["orders"]]
        after = body["next_after"]
        if after is None:
            break
    assert walked == [(str(t[0]), str(amounts[t[1]])) for t in expected]

    product = expected[0][0]
    detail = client.get(reverse("api-order", args=[product]))
    assert detail.status_code == 200, detail.content
    body = detail.json()
    assert body["order_id"] == str(product)
    assert {seen["status"] for seen in body["status"].values()} == {"on_sale"}
    # Its history, each price with the amount it declares to show, in the order of "latest".
    history = sorted((p for p in raw_rows(PRICES) if p.order_id == product), key=lambda p: (p.created, p.id))
    assert [(e["status_id"], e["columns"]) for e in body["history"]] == [
        (p.id, {"amount": str(amounts[p.id])}) for p in history
    ]
    # A key of the other kind, or no product's key: no such order.
    for missing in (12, uuid.UUID(int=1)):
        answer = client.get(reverse("api-order", args=[missing]))
        assert answer.status_code == 404, answer.content
        assert "unknown order" in answer.json()["error"]
    page = client.get(reverse("order", args=[product]))
    assert page.status_code == 200
    assert str(product) in page.content.decode()
    assert f'<span class="muted" data-column="amount">amount: {amounts[history[-1].id]}</span>' in (
        page.content.decode()
    )
    dashboard = client.get(reverse("dashboard"), {"status": "on_sale"})
    assert dashboard.status_code == 200, dashboard.content[:2000]
    # Linked as they are: no thousands separators in the digits a UUID starts with.
    assert f'href="{reverse("order", args=[product])}">{product}</a>' in dashboard.content.decode()


def test_retyped_keys_keep_the_change_log_uncompressed(prices):
    """A retype brings the new type's default storage; the change log's key arrays stay EXTERNAL."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT format_type(atttypid, atttypmod), attstorage FROM pg_attribute "
            "WHERE attrelid = 'reporting_orderchange'::regclass AND attname = 'order_ids'"
        )
        assert cursor.fetchone() == ("uuid[]", "e")
