"""API tokens: stored as their hash only, found from an `Authorization` header, revoked once, throttled per token."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from search.models import ApiToken
from search.services.tokens import token_authenticate, token_create, token_lookup, token_revoke, token_throttle

pytestmark = pytest.mark.django_db
_caches = itertools.count()


@pytest.fixture(autouse=True)
def _own_cache(settings: Any) -> None:
    """A private in-memory cache per test (the file cache is shared with other runs)."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"tokens-{next(_caches)}"}
    }


def test_create_stores_the_digest_and_never_the_token(owner: User) -> None:
    token, plaintext = token_create(user=owner, name="  laptop  ")
    assert plaintext.startswith("fanout_") and len(plaintext) == len("fanout_") + 43
    row = ApiToken.objects.values().get(pk=token.pk)
    assert row["digest"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert row["name"] == "laptop" and row["prefix"] == plaintext[:15] and row["user_id"] == owner.pk
    assert row["last_used_at"] is None and row["revoked_at"] is None
    assert not [column for column, value in row.items() if isinstance(value, str) and plaintext in value]
    assert token_create(user=owner)[1] != plaintext


@pytest.mark.parametrize("bad", ["x" * 101, "a\x00b"])
def test_a_name_that_cannot_be_stored_is_refused_with_a_message(owner: User, bad: str) -> None:
    with pytest.raises(ValueError, match=r"a token's name (is at most 100 characters|cannot contain)"):
        token_create(user=owner, name=bad)
    assert ApiToken.objects.count() == 0


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_right_header_authenticates_and_marks_the_token_used(owner: User, scheme: str) -> None:
    token, plaintext = token_create(user=owner)
    assert token_authenticate(header=f"{scheme} {plaintext}") == owner
    token.refresh_from_db()
    assert token.last_used_at is not None and timezone.now() - token.last_used_at < timedelta(seconds=10)
    found = token_lookup(header=f"Bearer {plaintext}")
    assert found is not None
    user, looked_up = found
    assert user == owner and looked_up.pk == token.pk


def _headers(plaintext: str) -> list[str | None]:
    return [
        None, "", "Bearer", "Bearer ", f"Token {plaintext}", f"Basic {plaintext}", plaintext, f"Bearer  {plaintext} x",
        f"Bearer {plaintext}x", f"Bearer {plaintext[:-1]}", f"Bearer {plaintext.upper()}", "Bearer fanout_",
        "Bearer fanout_\u00e9\u00e9", "Bearer \x00\x01", "Bearer " + "fanout_" + "A" * 10_000,
    ]  # fmt: skip


def test_a_wrong_scheme_garbage_or_an_unknown_token_is_refused(owner: User) -> None:
    token, plaintext = token_create(user=owner)
    for header in _headers(plaintext):
        assert token_lookup(header=header) is None, header
        assert token_authenticate(header=header) is None, header
    token.refresh_from_db()
    assert token.last_used_at is None


def test_a_revoked_token_is_refused_and_revoking_twice_changes_nothing(owner: User) -> None:
    token, plaintext = token_create(user=owner)
    assert token_revoke(token=token) is True and token.revoked_at is not None
    revoked_at = token.revoked_at
    assert token_revoke(token=token) is False
    token.refresh_from_db()
    assert token.revoked_at == revoked_at
    assert token_authenticate(header=f"Bearer {plaintext}") is None


def test_an_inactive_users_token_is_refused(owner: User) -> None:
    _token, plaintext = token_create(user=owner)
    User.objects.filter(pk=owner.pk).update(is_active=False)
    assert token_authenticate(header=f"Bearer {plaintext}") is None


def test_each_token_is_its_own_users(owner: User, other: User) -> None:
    _mine, mine = token_create(user=owner)
    _theirs, theirs = token_create(user=other)
    assert token_authenticate(header=f"Bearer {mine}") == owner
    assert token_authenticate(header=f"Bearer {theirs}") == other


def test_last_used_is_written_at_most_once_a_minute(owner: User) -> None:
    token, plaintext = token_create(user=owner)
    header = f"Bearer {plaintext}"
    token_authenticate(header=header)
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    for _ in range(5):
        token_authenticate(header=header)
    token.refresh_from_db()
    assert token.last_used_at == first
    earlier = timezone.now() - timedelta(seconds=61)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=earlier)
    token_authenticate(header=header)
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_at > earlier + timedelta(seconds=60)


def test_throttle_allows_the_rate_then_says_how_long_to_wait(owner: User, settings: Any) -> None:
    settings.FANOUT_API_RATE = 3
    settings.FANOUT_API_RATE_WINDOW_SECONDS = 60
    token, _plaintext = token_create(user=owner)
    other_token, _ = token_create(user=owner)
    assert [token_throttle(token=token) for _ in range(3)] == [None, None, None]
    for _ in range(3):  # refused requests are handed back: the wait does not grow while a client retries
        wait = token_throttle(token=token)
        assert wait is not None and 1 <= wait <= 120
    assert token_throttle(token=other_token) is None  # per token
