"""The API tokens page and the admin's tokens, as the owner, another user, staff and an anonymous visitor use them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from search.models import ApiToken
from search.services.tokens import token_authenticate, token_create

pytestmark = pytest.mark.django_db
TOKEN = re.compile(r"fanout_[A-Za-z0-9_-]{43}")


def test_the_page_needs_a_login(client_for: Any) -> None:
    anonymous = client_for(None)
    for response in (
        anonymous.get(reverse("token-list")),
        anonymous.post(reverse("token-list"), {"name": "x"}),
        anonymous.post(reverse("token-revoke", args=[1])),
    ):
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert ApiToken.objects.count() == 0


def test_the_account_menu_links_to_the_page(web: Client) -> None:
    body = web.get(reverse("search-list")).content.decode()
    assert f'<a href="{reverse("token-list")}">API tokens</a>' in body


def test_a_new_token_is_shown_once_and_authenticates(web: Client, owner: User) -> None:
    assert "No tokens yet." in web.get(reverse("token-list")).content.decode()
    response = web.post(reverse("token-list"), {"name": "laptop"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    body = response.content.decode()
    shown = TOKEN.findall(body)
    assert len(set(shown)) == 1 and "shown this once" in body
    token = ApiToken.objects.get(user=owner)
    assert token.name == "laptop" and token_authenticate(header=f"Bearer {shown[0]}") == owner
    reload = web.get(reverse("token-list"))
    assert "no-store" in reload["Cache-Control"]
    again = reload.content.decode()
    assert not TOKEN.search(again) and token.prefix in again and "laptop" in again
    assert not [m for m in reload.context["messages"] if shown[0] in str(m)]
    assert shown[0] not in str(dict(web.session))


def test_a_name_too_long_is_a_message_on_the_form(web: Client) -> None:
    response = web.post(reverse("token-list"), {"name": "x" * 101})
    assert response.status_code == 200 and ApiToken.objects.count() == 0
    body = response.content.decode()
    assert "a token&#x27;s name is at most 100 characters; this one has 101" in body and not TOKEN.search(body)


def test_the_owner_revokes_a_token(web: Client, owner: User) -> None:
    token, plaintext = token_create(user=owner, name="ci")
    response = web.post(reverse("token-revoke", args=[token.pk]), follow=True)
    assert response.status_code == 200 and "Revoked token" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None and token_authenticate(header=f"Bearer {plaintext}") is None
    again = web.post(reverse("token-revoke", args=[token.pk]), follow=True)
    assert "was revoked already" in again.content.decode()
    assert web.get(reverse("token-revoke", args=[token.pk])).status_code == 405


def test_another_users_tokens_are_neither_listed_nor_revocable(client_for: Any, owner: User, other: User) -> None:
    token, plaintext = token_create(user=owner, name="owners-laptop")
    theirs = client_for(other)
    body = theirs.get(reverse("token-list")).content.decode()
    assert token.prefix not in body and "owners-laptop" not in body and "No tokens yet." in body
    assert theirs.post(reverse("token-revoke", args=[token.pk])).status_code == 404
    assert theirs.post(reverse("token-revoke", args=[token.pk + 1000])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None and token_authenticate(header=f"Bearer {plaintext}") == owner


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "a-long-test-password"))
    return client


def test_the_admin_lists_and_revokes_tokens_and_adds_none(staff_client: Client, owner: User) -> None:
    token, plaintext = token_create(user=owner, name="ci")
    done, _ = token_create(user=owner)
    done.revoked_at = done.created_at
    done.save()
    changelist = reverse("admin:search_apitoken_changelist")
    body = staff_client.get(changelist).content.decode()
    assert token.prefix in body and '<td class="field-name">ci</td>' in body
    assert plaintext not in body and token.digest not in body
    assert staff_client.get(reverse("admin:search_apitoken_add")).status_code == 403
    detail = staff_client.get(reverse("admin:search_apitoken_change", args=[token.pk])).content.decode()
    assert token.prefix in detail and token.digest not in detail and 'name="name"' not in detail  # read-only
    response = staff_client.post(changelist, {"action": "revoke", "_selected_action": [token.pk, done.pk]}, follow=True)
    assert "Revoked 1 token, 1 revoked already" in response.content.decode()
    assert token_authenticate(header=f"Bearer {plaintext}") is None


def test_staff_without_the_change_permission_cannot_revoke(owner: User) -> None:
    from django.contrib.auth.models import Permission

    staff = User.objects.create_user("viewer", password="a-long-test-password", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    client = Client()
    client.force_login(staff)
    token, _ = token_create(user=owner)
    changelist = reverse("admin:search_apitoken_changelist")
    assert client.get(changelist).status_code == 200
    client.post(changelist, {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is None
