"""Writes: users who may see the reports."""

from __future__ import annotations

__all__ = ["reports_user_ensure"]

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction

# What a reports user may see: the reports, and in the admin (read-only) the
# views behind them and the refresh log.
REPORTS_PERMISSIONS = [
    "view_reports",
    "view_orderlateststatus",
    "view_orderlateststatuslive",
    "view_refreshrun",
]


@transaction.atomic
def reports_user_ensure(*, username: str, password: str, staff: bool = True) -> None:
    """Create or update a user who may see the reports, and their views and the refresh log in the admin.

    Args:
        username: the login name.
        password: set (or reset) as the user's password.
        staff: may log in through the admin's login page, which the dashboard uses.
    """
    user_model = get_user_model()
    lookup: dict[str, Any] = {user_model.USERNAME_FIELD: username}
    user, _ = user_model.objects.get_or_create(**lookup)
    user.set_password(password)
    user.is_staff = staff
    user.is_active = True
    user.save()
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="reporting", codename__in=REPORTS_PERMISSIONS)
    )
