from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

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


@pytest.fixture
def refreshed():
    """Refresh the reporting views (plainly: fastest, and fine inside a test transaction)."""
    from reporting import services

    def refresh() -> None:
        services.views_refresh(concurrently=False)

    return refresh
