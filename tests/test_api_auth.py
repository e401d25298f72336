"""Who may read the reports on the web: a login and the permission, live reads' own permission,
API tokens (expiry, names, revocation, the api_token command) and a failure while authenticating."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from reporting import selectors, services
from reporting.exceptions import ReportingError
from reporting.models import ApiToken
from tests.helpers import ENDPOINTS, api_get


@pytest.mark.parametrize("name", ENDPOINTS)
def test_anonymous_calls_get_401_json_not_a_redirect(client, db, name):
    response = api_get(client, name, status="cancelled")
    assert response.status_code == 401
    assert response.json()["error"].startswith("authentication required")
    assert "Location" not in response


@pytest.mark.parametrize("name", ENDPOINTS)
def test_users_without_the_permission_get_403(client, db, name):
    user = get_user_model().objects.create_user("nobody", password="nobody-password")
    client.force_login(user)
    response = api_get(client, name, status="cancelled")
    assert response.status_code == 403
    assert "reporting.view_reports" in response.json()["error"]


def test_api_tokens(client, reader, seeded):
    token = services.api_token_create(username="reader", name="script")
    response = client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["total"] == 400
    bad = client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION="Bearer rpt_not-a-token")
    assert bad.status_code == 401
    reader.is_active = False
    reader.save()
    assert client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_tokens_expire_have_names_and_are_revoked_one_by_one(client, reader, seeded):
    long_lived = services.api_token_create(username="reader", name="nightly export")
    short = services.api_token_create(username="reader", name="one day", expires_in=dt.timedelta(days=1))
    assert client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {short}").status_code == 200
    with pytest.raises(ReportingError, match="has a token named 'nightly export' already"):
        services.api_token_create(username="reader", name="nightly export")
    listed = {t.name: t for t in selectors.api_token_list(username="reader")}
    assert set(listed) == {"nightly export", "one day"}
    assert listed["one day"].last_used is not None and listed["nightly export"].last_used is None
    assert listed["one day"].expires is not None and listed["nightly export"].expires is None

    ApiToken.objects.filter(name="one day").update(expires=timezone.now() - dt.timedelta(seconds=1))
    expired = client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {short}")
    assert expired.status_code == 401
    assert expired.json()["error"].startswith("API token expired at")
    out = StringIO()
    call_command("api_token", "list", "reader", stdout=out)
    assert "'one day'" in out.getvalue() and "(expired)" in out.getvalue()
    assert long_lived not in out.getvalue()

    call_command("api_token", "revoke", "reader", "--name", "one day", stdout=StringIO())
    assert [t.name for t in selectors.api_token_list(username="reader")] == ["nightly export"]
    ok = client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {long_lived}")
    assert ok.status_code == 200, "revoking one token leaves the others"
    with pytest.raises(CommandError, match="no such token"):
        call_command("api_token", "revoke", "reader", "--name", "one day", stdout=StringIO())
    with pytest.raises(CommandError, match="--id"):
        call_command("api_token", "revoke", "reader", stdout=StringIO())
    call_command("api_token", "revoke", "--id", str(listed["nightly export"].id), stdout=StringIO())
    assert selectors.api_token_list() == []
    gone = client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {long_lived}")
    assert gone.status_code == 401


@pytest.mark.parametrize("header", ["Bearer rpt_" + "x" * 5000, "Bearer not-ours", "Bearer "])
def test_a_bad_bearer_token_is_a_401_even_with_a_session(api, seeded, header):
    response = api.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid API token"


@pytest.mark.parametrize("name", ["api-status-counts", "api-orders", "api-orders-csv"])
def test_live_reads_need_their_own_permission(client, plain_reader, seeded, name, settings):
    client.force_login(plain_reader)
    extra = {} if name == "api-status-counts" else {"status": "cancelled"}
    response = api_get(client, name, strategy="live", **extra)
    assert response.status_code == 403
    assert "reporting.read_live" in response.json()["error"]
    assert api_get(client, name, strategy="realtime", **extra).status_code == 200
    settings.REPORTING_DEFAULT_STRATEGY = "live"
    assert api_get(client, name, **extra).status_code == 403, "the default counts too"
    settings.REPORTING_WEB_LIVE_FOR_ALL = "1"
    assert api_get(client, name, strategy="live", **extra).status_code == 200


def test_a_database_failure_while_authenticating_is_a_json_503(client, reader, seeded, monkeypatch):
    token = services.api_token_create(username="reader", name="t")

    def down(authorization):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "api_token_authenticate", down)
    response = client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"


def test_api_token_commands_refuse_odd_input_with_one_line(reader):
    with pytest.raises(CommandError, match="at most 3660 days"):
        call_command("api_token", "create", "reader", "--expires-in-days", "3000000", stdout=StringIO())
    with pytest.raises(CommandError, match="--id, or by its user and --name"):
        call_command("api_token", "revoke", stdout=StringIO())
    assert selectors.api_token_list() == []
