"""Writes of API tokens: ``Authorization: Bearer <token>`` for scripts and BI connectors over HTTP.

Only a SHA-256 digest of each token is stored; the token itself is shown once,
when it is created (``manage.py api_token create USERNAME``). A token acts as
its user, with that user's permissions. It has a name (unique per user, so one
token can be revoked by it), may expire, and records when it was last used.
"""

from __future__ import annotations

__all__ = ["MAX_TOKEN_LENGTH", "api_token_authenticate", "api_token_create", "api_token_revoke"]

import datetime as dt
import hashlib
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from reporting.exceptions import InvalidParameterError, InvalidTokenError, ReportingError
from reporting.models import ApiToken
from reporting.selectors.tokens import token_user

PREFIX = "rpt_"
# Ours are 47 characters; anything much longer is not one of ours, and is not hashed.
MAX_TOKEN_LENGTH = 200
MAX_EXPIRY = dt.timedelta(days=3660)
MAX_NAME_LENGTH = ApiToken._meta.get_field("name").max_length or 100


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(*, username: str, name: str = "", expires_in: dt.timedelta | None = None) -> str:
    """Create a token for ``username`` and return it; it cannot be shown again.

    Args:
        username: whose token it is; it acts with that user's permissions.
        name: what it is for, unique among the user's tokens (empty: unnamed).
        expires_in: how long it is valid; ``None``: until revoked.

    Raises:
        ReportingError: no such user, or the user has a token of that name already.
        InvalidParameterError: a name too long, or an expiry that is not in the future.
    """
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameterError("name", name[:20] + "...", f"at most {MAX_NAME_LENGTH} characters")
    if expires_in is not None and not dt.timedelta(0) < expires_in <= MAX_EXPIRY:
        raise InvalidParameterError(
            "expiry", expires_in, f"a positive duration of at most {MAX_EXPIRY.days} days"
        )
    user = token_user(username)
    token = PREFIX + secrets.token_urlsafe(32)
    expires = timezone.now() + expires_in if expires_in is not None else None
    try:
        with transaction.atomic():
            ApiToken.objects.create(user=user, name=name, digest=_digest(token), expires=expires)
    except IntegrityError:
        raise ReportingError(f"{username} has a token named {name!r} already") from None
    return token


def api_token_revoke(
    *, token_id: int | None = None, username: str | None = None, name: str | None = None, every: bool = False
) -> int:
    """Delete one token, by id or by its user and name, or (``every``) all of a user's tokens.

    Returns:
        How many tokens were deleted.

    Raises:
        ReportingError: the arguments do not name one token or one user, or no token matched.
    """
    if token_id is not None:
        if username is not None or name is not None or every:
            raise ReportingError("name a token by its id alone")
        tokens = ApiToken.objects.filter(pk=token_id)
    elif username is not None and (name is not None) != every:
        user = token_user(username)
        tokens = ApiToken.objects.filter(user=user)
        if name is not None:
            tokens = tokens.filter(name=name)
    else:
        raise ReportingError("name a token by --id, or by its user and --name; or a user and --all")
    deleted, _ = tokens.delete()
    if not deleted and not every:
        raise ReportingError("no such token")
    return deleted


def api_token_authenticate(authorization: str) -> ApiToken | None:
    """Return the token of an ``Authorization: Bearer`` header (its ``user`` loaded), or ``None`` without one.

    Raises:
        InvalidTokenError: a token was sent but is unknown, expired, or its user inactive.
    """
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError("invalid API token")
    found = ApiToken.objects.select_related("user").filter(digest=_digest(token)).first()
    if found is None or not found.user.is_active:
        raise InvalidTokenError("invalid API token")
    now = timezone.now()
    if found.expires is not None and found.expires <= now:
        raise InvalidTokenError(f"API token expired at {found.expires.isoformat(timespec='seconds')}")
    ApiToken.objects.filter(pk=found.pk).update(last_used=now)
    return found
