from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers import REPLICA_ALIAS

# Database examples are slow and their timing noisy: no deadline. CI runs the
# "ci" profile; HYPOTHESIS_PROFILE=thorough runs many more examples locally.
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# tests/oscar/ runs under the Oscar example's settings, in a run of its own
# (make test runs both): its apps are not installed in the main suite's.
OSCAR_SETTINGS = "examples.oscar_shop.settings"
collect_ignore = [] if os.environ.get("DJANGO_SETTINGS_MODULE") == OSCAR_SETTINGS else ["oscar"]


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings as django_settings

    django_settings.DATABASES[REPLICA_ALIAS] = {
        **django_settings.DATABASES["default"],
        "TEST": {"MIRROR": "default"},
    }


@pytest.fixture
def refreshed():
    """Refresh the reporting views plainly, inside the test's transaction.

    The refresh service itself needs autocommit (it commits and vacuums); tests of
    it use ``transaction=True``. This is for tests that only need the view filled.
    """
    from django.db import connection

    from reporting import services

    def refresh() -> None:
        with connection.cursor() as cursor:
            for view in services.reporting_views():
                cursor.execute(f"REFRESH MATERIALIZED VIEW {view._meta.db_table}")

    return refresh


@pytest.fixture
def reader(db):
    """A reports user (the ``reporting.view_reports`` permission) who may read live too."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from reporting import services

    services.reports_user_ensure(username="reader", password="reader-password-1")
    user = get_user_model().objects.get(username="reader")
    user.user_permissions.add(Permission.objects.get(codename="read_live"))
    return get_user_model().objects.get(username="reader")  # fresh: permissions are cached


@pytest.fixture
def plain_reader(db):
    """A reports user without the permission for live reads."""
    from django.contrib.auth import get_user_model

    from reporting import services

    services.reports_user_ensure(username="plain", password="plain-password-1")
    return get_user_model().objects.get(username="plain")


@pytest.fixture
def api(client, reader):
    """The test client, logged in as :func:`reader`."""
    client.force_login(reader)
    return client


@pytest.fixture
def seeded(db, refreshed):
    """400 orders of the example shop seeded up to ``tests.factories.EPOCH``, the views refreshed."""
    from examples.shop import services as shop_services
    from tests.factories import EPOCH

    shop_services.orders_seed(orders=400, seed=9, until=EPOCH)
    refreshed()
