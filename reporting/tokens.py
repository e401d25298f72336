"""API tokens: ``Authorization: Bearer <token>`` for scripts and BI connectors over HTTP.

Only a SHA-256 digest of each token is stored; the token itself is shown once,
when it is created (``manage.py api_token create USERNAME``). A token acts as
its user, with that user's permissions.
"""

from __future__ import annotations

__all__ = ["api_token_create", "api_token_revoke", "api_token_user"]

import hashlib
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from reporting.exceptions import ReportingError
from reporting.models import ApiToken

PREFIX = "rpt_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(*, username: str, name: str = "") -> str:
    """Create a token for ``username`` and return it; it cannot be shown again.

    Raises:
        ReportingError: no such user.
    """
    user_model = get_user_model()
    try:
        user = user_model.objects.get(**{user_model.USERNAME_FIELD: username})
    except user_model.DoesNotExist:
        raise ReportingError(f"no user named {username!r}") from None
    token = PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, name=name, digest=_digest(token))
    return token


def api_token_revoke(*, username: str) -> int:
    """Delete every token of ``username``; return how many there were."""
    user_model = get_user_model()
    deleted, _ = ApiToken.objects.filter(**{f"user__{user_model.USERNAME_FIELD}": username}).delete()
    return deleted


def api_token_user(authorization: str) -> Any | None:
    """The active user of a ``Bearer`` token, or ``None`` (no token, unknown token, inactive user)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip().startswith(PREFIX):
        return None
    found = ApiToken.objects.select_related("user").filter(digest=_digest(token.strip())).first()
    if found is None or not found.user.is_active:
        return None
    ApiToken.objects.filter(pk=found.pk).update(last_used=timezone.now())
    return found.user
