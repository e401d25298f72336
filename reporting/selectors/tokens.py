"""Reads of API tokens: which exist, whose they are, when they were last used (never the tokens)."""

from __future__ import annotations

__all__ = ["TokenInfo", "api_token_list", "token_user"]

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from reporting.exceptions import ReportingError
from reporting.models import ApiToken


@dataclass(frozen=True)
class TokenInfo:
    """A token as ``api_token list`` shows it (never the token itself)."""

    id: int
    username: str
    name: str
    created: dt.datetime
    expires: dt.datetime | None
    last_used: dt.datetime | None

    @property
    def expired(self) -> bool:
        return self.expires is not None and self.expires <= timezone.now()


def token_user(username: str) -> Any:
    """The user named ``username``, or ``ReportingError`` naming the missing one."""
    user_model = get_user_model()
    try:
        return user_model.objects.get(**{user_model.USERNAME_FIELD: username})
    except user_model.DoesNotExist:
        raise ReportingError(f"no user named {username!r}") from None


def api_token_list(*, username: str | None = None) -> list[TokenInfo]:
    """The tokens of ``username``, or of every user, oldest first."""
    user_model = get_user_model()
    tokens = ApiToken.objects.select_related("user").order_by("id")
    if username is not None:
        tokens = tokens.filter(user=token_user(username))
    return [
        TokenInfo(
            id=t.pk,
            username=getattr(t.user, user_model.USERNAME_FIELD),
            name=t.name,
            created=t.created,
            expires=t.expires,
            last_used=t.last_used,
        )
        for t in tokens
    ]
