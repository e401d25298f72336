"""The JSON API's reads: the counts, a status's pages and their cursor, freshness; and its JSON
answers to whatever else comes (odd parameters, other methods, unknown paths, failures, timeouts)."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection
from django.urls import reverse

from examples.shop import services as shop_services
from reporting import selectors, services
from tests.factories import EPOCH
from tests.helpers import ENDPOINTS, api_get, raw_connect


def test_status_counts(api, seeded):
    for strategy in ("live", "snapshot", "realtime"):
        response = api_get(api, "api-status-counts", strategy=strategy)
        assert response.status_code == 200
        body = response.json()
        assert body["counts"] == selectors.order_status_counts(strategy="live").as_dict()
        assert body["total"] == 400
        assert body["freshness"]["strategy"] == strategy
    assert api_get(api, "api-status-counts").json()["freshness"]["strategy"] == "realtime", "the default"


def test_orders_page_and_cursor(api, seeded):
    expected = [r.order_id for r in selectors.order_iter_by_status(status="cancelled", strategy="live")]
    first = api_get(api, "api-orders", status="cancelled", limit=10).json()
    assert [o["order_id"] for o in first["orders"]] == expected[:10]
    assert set(first["orders"][0]) == {"order_id", "status_id", "status", "status_created", "status_since"}
    assert first["freshness"]["strategy"] == "realtime"
    second = api_get(api, "api-orders", status="cancelled", limit=10, after=first["next_after"]).json()
    assert [o["order_id"] for o in second["orders"]] == expected[10:20]


def test_freshness(api, seeded):
    body = api_get(api, "api-freshness").json()
    assert set(body) == {
        "as_of",
        "checked_at",
        "age_seconds",
        "changes_since",
        "folded_at",
        "overlay_orders",
        "on_replica",
        "replay_lag_seconds",
        "runs",
    }
    assert (body["on_replica"], body["replay_lag_seconds"]) == (False, None)
    assert body["overlay_orders"] == 0


@pytest.mark.django_db(transaction=True)
def test_freshness_lists_refresh_runs(client, reader):
    client.force_login(reader)
    shop_services.orders_seed(orders=20, seed=1, until=EPOCH)
    result = services.views_refresh()
    body = api_get(client, "api-freshness", runs=3).json()
    assert result.snapshot_at is not None
    assert body["as_of"] == result.snapshot_at.isoformat()
    assert body["changes_since"] == 0
    assert body["runs"][0]["outcome"] == "ok"
    assert body["runs"][0]["rows"] == 20
    assert body["folded_at"] == body["as_of"], "before any fold, the overlay is as of the refresh"
    shop_services.order_create()
    assert services.overlay_fold().outcome == "ok"
    body = api_get(client, "api-freshness").json()
    assert (body["overlay_orders"], body["changes_since"]) == (1, 2)
    assert body["folded_at"] > body["as_of"]


@pytest.mark.parametrize(
    ("name", "params", "parameter"),
    [
        ("api-orders", {"status": "failed"}, "status"),
        ("api-orders", {}, "status"),
        ("api-orders", {"status": "cancelled", "after": "abc"}, "after"),
        ("api-orders", {"status": "cancelled", "after": "-1"}, "after"),
        ("api-orders", {"status": "cancelled", "after": "1.5"}, "after"),
        ("api-orders", {"status": "cancelled", "after": "999999999"}, "after"),
        ("api-orders", {"status": "cancelled", "limit": "0"}, "limit"),
        ("api-orders", {"status": "cancelled", "limit": "1001"}, "limit"),
        ("api-orders", {"status": "cancelled", "limit": "ten"}, "limit"),
        ("api-orders", {"status": "cancelled", "strategy": "fastest"}, "strategy"),
        ("api-status-counts", {"strategy": "cached"}, "strategy"),
        ("api-orders-csv", {"status": "failed"}, "status"),
        ("api-orders-csv", {"status": "cancelled", "strategy": "x"}, "strategy"),
        ("api-freshness", {"runs": "0"}, "runs"),
        ("api-freshness", {"runs": "101"}, "runs"),
        ("api-orders-stuck", {"hours": str(24 * 366 + 1)}, "hours"),
        ("api-orders-stuck", {"limit": "1001"}, "limit"),
    ],
)
def test_bad_parameters_get_400_naming_the_parameter_and_valid_values(api, name, params, parameter):
    response = api_get(api, name, **params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["parameter"] == parameter
    assert body["valid"], "the valid values are named"
    if parameter == "status":
        assert body["valid"] == "pending, complete, cancelled"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options", "trace"])
@pytest.mark.parametrize("name", ENDPOINTS)
def test_every_other_method_gets_a_json_405_naming_the_allowed_ones(api, seeded, method, name):
    response = getattr(api, method)(reverse(name))
    assert response.status_code == 405, "not a CSRF 403, not an empty 405"
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == "GET, HEAD"
    assert method.upper() in response.json()["error"]


def test_head_answers_like_get_without_a_body(api, seeded):
    response = api.head(reverse("api-status-counts"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("name", "params", "parameter"),
    [
        # str.isdigit() takes these; int() refuses the first two and reads the others.
        ("api-orders", "status=cancelled&limit=%C2%B2", "limit"),  # superscript two
        ("api-orders", "status=cancelled&after=%E2%81%B5", "after"),  # superscript five
        ("api-orders", "status=cancelled&limit=%D9%A3", "limit"),  # Arabic-Indic three
        ("api-orders", "status=cancelled&limit=%EF%BC%95", "limit"),  # full-width five
        ("api-freshness", "runs=%C2%B2", "runs"),
        ("api-orders", "status=cancelled&limit=" + "9" * 5000, "limit"),
        ("api-orders", "status=cancelled&after=" + "1" * 20, "after"),
        ("api-orders", "status=failed&status=cancelled", "status"),  # repeated
        ("api-orders", "status=cancelled&limit=5&limit=6", "limit"),
        ("api-orders", "status=cancelled&stauts=pending", "parameter"),  # unknown
        ("api-status-counts", "strategy=live&strategy=snapshot", "strategy"),
    ],
)
def test_odd_numbers_and_parameters_get_a_json_400(api, seeded, name, params, parameter):
    response = api.get(f"{reverse(name)}?{params}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["parameter"] == parameter
    assert len(body["error"]) < 300, "a long value is not echoed whole"


def test_too_many_parameters_get_a_json_400(api, seeded):
    query = "&".join(f"x{i}=1" for i in range(1100))
    response = api.get(f"{reverse('api-status-counts')}?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["error"]


@pytest.mark.parametrize("path", ["/api/nothing-here", "/api", "/api/"])
def test_an_unknown_api_path_gets_a_json_404(api, seeded, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == f"no API endpoint at {path!r}"


@pytest.mark.parametrize(
    ("error", "status"),
    [(OperationalError("the server closed the connection"), 503), (RuntimeError("a bug"), 500)],
)
def test_a_failure_behind_an_endpoint_is_still_a_json_answer(api, seeded, monkeypatch, error, status):
    def fail(**kwargs):
        raise error

    monkeypatch.setattr(selectors, "order_status_counts", fail)
    response = api.get(reverse("api-status-counts"))
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert "a bug" not in response.json()["error"], "internals are logged, not shown"


@pytest.mark.django_db(transaction=True)
def test_walking_every_page_while_writes_happen_gives_the_full_list_once(client, reader):
    client.force_login(reader)
    shop_services.orders_seed(orders=600, seed=4, until=EPOCH)
    services.views_refresh()
    expected = [r.order_id for r in selectors.order_iter_by_status(status="cancelled", strategy="live")]
    pending = [r.order_id for r in selectors.order_iter_by_status(status="pending", strategy="live")]
    seen: list[int] = []
    after = None
    page = 0
    while True:
        params = {"status": "cancelled", "limit": 13, **({"after": after} if after else {})}
        body = api_get(client, "api-orders", **params).json()
        seen += [o["order_id"] for o in body["orders"]]
        # Between pages: new cancellations (newer than every listed row, so they belong
        # before the cursor), completions of pending orders, and a refresh now and then.
        if len(pending) >= 2:
            shop_services.order_status_record(order_id=pending.pop(), status="cancelled")
            shop_services.order_status_record(order_id=pending.pop(), status="complete")
        if page % 5 == 4:
            services.views_refresh()
        page += 1
        after = body["next_after"]
        if after is None:
            break
    assert len(seen) == len(set(seen)), "no duplicates"
    assert seen == expected, "no gaps: every order cancelled at the start, once, in order"


@pytest.mark.django_db(transaction=True)
def test_a_web_read_over_the_statement_timeout_gets_a_json_504(client, reader, settings):
    client.force_login(reader)
    shop_services.orders_seed(orders=50, seed=2, until=EPOCH)
    services.views_refresh()
    settings.REPORTING_WEB_STATEMENT_TIMEOUT = "0.2"
    blocker = raw_connect(autocommit=False)
    blocker.execute("LOCK TABLE reporting_example_orderstatus IN ACCESS EXCLUSIVE MODE")
    try:
        response = api_get(client, "api-status-counts", strategy="live")
        dashboard = client.get(reverse("dashboard"))
    finally:
        blocker.rollback()
        blocker.close()
    assert response.status_code == 504
    assert "REPORTING_WEB_STATEMENT_TIMEOUT" in response.json()["error"]
    assert dashboard.status_code == 503
    # The limit was the request's: the connection is back to no limit.
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("0",)
    assert api_get(client, "api-status-counts", strategy="live").status_code == 200
