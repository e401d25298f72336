"""/metrics: its permission, the numbers that move with refreshes, and a project without the
metrics extra."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from examples.shop import services as shop_services
from reporting import services
from tests.factories import EPOCH
from tests.helpers import api_get


def metric(text: str, name: str, labels: str = "") -> float | None:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


@pytest.mark.django_db(transaction=True)
def test_metrics_need_their_permission_and_move_with_refreshes(client, reader):
    assert client.get("/metrics").status_code == 401
    client.force_login(reader)
    assert client.get("/metrics").status_code == 403, "reading reports does not mean reading metrics"
    reader.user_permissions.add(Permission.objects.get(codename="view_metrics"))
    client.force_login(get_user_model().objects.get(pk=reader.pk))
    shop_services.orders_seed(orders=40, seed=3, until=EPOCH)
    services.views_refresh()
    api_get(client, "api-status-counts")
    first = client.get("/metrics")
    assert first.status_code == 200
    assert first["Content-Type"].startswith("text/plain")
    text = first.content.decode()
    assert metric(text, "reporting_database_up") == 1
    assert metric(text, "reporting_changes_pending") == 0
    assert metric(text, "reporting_refresh_lock_held") == 0
    last_success = metric(text, "reporting_last_refresh_success_timestamp_seconds")
    assert last_success is not None
    assert metric(text, "reporting_state_age_seconds") is not None
    requests = metric(
        text, "reporting_api_request_duration_seconds_count", '{endpoint="status_counts",status="200"}'
    )
    assert requests is not None and requests >= 1

    shop_services.order_status_record(order_id=1, status="cancelled")
    assert metric(client.get("/metrics").content.decode(), "reporting_changes_pending") == 1
    services.views_refresh()
    after = client.get("/metrics").content.decode()
    assert metric(after, "reporting_changes_pending") == 0
    moved = metric(after, "reporting_last_refresh_success_timestamp_seconds")
    assert moved is not None and moved > last_success


# As in a project that installed the app without the metrics extra.
WITHOUT_PROMETHEUS = """
import json, socket, sys
sys.modules["prometheus_client"] = None  # import prometheus_client now raises ImportError
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import setup_test_environment
from reporting import metrics
from scheduler import runner  # counts its jobs through metrics

setup_test_environment()
client = Client()
client.force_login(get_user_model().objects.create_superuser("admin", password="an admin password"))
answers = {path: client.get(path) for path in ("/metrics", "/api/status-counts")}
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
print(json.dumps({
    "metrics": [answers["/metrics"].status_code, answers["/metrics"].json()],
    "counts": answers["/api/status-counts"].status_code,
    "served": metrics.serve("127.0.0.1", port),
}))
"""


@pytest.mark.django_db(transaction=True)
def test_without_the_metrics_extra_metrics_answer_501_with_the_pip_line_and_the_rest_works():
    import json
    import subprocess
    import sys

    from tests.helpers import subprocess_env

    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PROMETHEUS],
        env=subprocess_env() | {"DJANGO_SETTINGS_MODULE": "demo_project.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    status, body = answer["metrics"]
    assert status == 501, body
    assert "pip install 'order-status-reporting[metrics]'" in body["error"], body
    assert answer["counts"] == 200, "the API works without metrics"
    assert answer["served"] is False, "the scheduler's metrics port stays closed"
