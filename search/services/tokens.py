"""API tokens: made and shown once, stored as their sha256, revoked by a conditional UPDATE, found from an
`Authorization: Bearer <token>` header, and rate-limited per token in the shared cache.

A token sees exactly what its user sees: the API passes the user it gets here to the same selectors the
pages use. The API's entry point is meant to read:

    found = token_lookup(header=request.headers.get("Authorization"))
    if found is None:
        ...  # 401
    user, token = found
    if wait := token_throttle(token=token):
        ...  # 429 with Retry-After: wait
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from search.counters import cache_count, cache_uncount
from search.models import ApiToken

TOKEN_START = "fanout_"
SHOWN = len(TOKEN_START) + 8  # what `ApiToken.prefix` keeps: "fanout_" and 8 of the random characters
LAST_USED_EVERY = timedelta(minutes=1)  # a burst of requests writes `last_used_at` once, not once each
THROTTLE_PREFIX = "fanout-api"


class TokenAuth(NamedTuple):
    """Who a valid header stands for, and the token it carried (to throttle per token)."""

    user: User
    token: ApiToken


def token_digest(plaintext: str) -> str:
    """What is stored of a token: the sha256 of the whole of it, in hex."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def token_create(*, user: User, name: str = "") -> tuple[ApiToken, str]:
    """A new token for `user`: its row and its plaintext. The plaintext is returned this once and stored nowhere.

    Raises ValueError, with a message to show, for a name that cannot be stored."""
    name = name.strip()
    if len(name) > ApiToken.NAME_MAX_LENGTH:
        raise ValueError(f"a token's name is at most {ApiToken.NAME_MAX_LENGTH} characters; this one has {len(name)}")
    if "\x00" in name:
        raise ValueError("a token's name cannot contain a NUL character")
    plaintext = TOKEN_START + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=plaintext[:SHOWN], digest=token_digest(plaintext))
    return token, plaintext


def token_revoke(*, token: ApiToken) -> bool:
    """Revoke a token from now on; True if this call revoked it, False if it was revoked already."""
    changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])
    return bool(changed)


def _bearer(header: str | None) -> str | None:
    """The token of an `Authorization` header of exactly the form `Bearer <token>` (any case of "Bearer")."""
    parts = (header or "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    token = parts[1]
    return token if token.startswith(TOKEN_START) and token.isascii() else None


def token_lookup(*, header: str | None) -> TokenAuth | None:
    """The user and token of an `Authorization` header value, or None: no header, another scheme, an unknown
    or revoked token, or an inactive user. Found by the digest (a unique index), so the plaintext is never
    compared with anything; marks the token used, at most once per LAST_USED_EVERY."""
    plaintext = _bearer(header)
    if plaintext is None:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(plaintext), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY)
    if ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now):
        token.last_used_at = now
    return TokenAuth(token.user, token)


def token_authenticate(*, header: str | None) -> User | None:
    """The user an `Authorization` header value stands for, or None (see `token_lookup`)."""
    found = token_lookup(header=header)
    return None if found is None else found.user


def token_throttle(*, token: ApiToken) -> int | None:
    """Count one request of `token`; None while it is within FANOUT_API_RATE requests per
    FANOUT_API_RATE_WINDOW_SECONDS, else the whole seconds to wait (the 429's Retry-After).

    As for logins (search/views/accounts.py): two fixed buckets, this one and the one before, so no span of
    one window holds more than the limit. A refused request is handed back, so a client that keeps trying
    while refused is not kept out longer than the wait it was told."""
    window = max(1, int(settings.FANOUT_API_RATE_WINDOW_SECONDS))
    rate = int(settings.FANOUT_API_RATE)
    now = time.time()
    bucket = int(now // window)
    key = f"{THROTTLE_PREFIX}:{token.digest}"
    current = cache_count(f"{key}:{bucket}", window)
    if current + int(cache.get(f"{key}:{bucket - 1}", 0)) <= rate:
        return None
    cache_uncount(f"{key}:{bucket}")
    # Allowed again once the bucket before no longer counts: at the next bucket if this one's requests leave
    # room for one more, else at the one after.
    until = (bucket + (1 if current - 1 < rate else 2)) * window
    return max(1, math.ceil(until - now))
