"""`createtoken` as users call it: the token alone on the last line, one-line errors with exit code 2."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from search.models import ApiToken
from search.services.tokens import token_authenticate
from tests.conftest import manage

pytestmark = pytest.mark.django_db


def test_the_last_line_is_a_token_that_authenticates(owner: User) -> None:
    out = io.StringIO()
    call_command("createtoken", "owner", "--name", "ci", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "API token for owner (shown once; store it now):"
    assert token_authenticate(header=f"Bearer {lines[-1]}") == owner
    assert ApiToken.objects.get(user=owner).name == "ci"


@pytest.mark.parametrize(
    ("username", "active", "message"),
    [("nobody", True, "no user named 'nobody'"), ("owner", False, "user 'owner' is inactive")],
)
def test_an_unknown_or_inactive_user_exits_2_with_one_line(
    owner: User, username: str, active: bool, message: str
) -> None:
    User.objects.filter(pk=owner.pk).update(is_active=active)
    with pytest.raises(CommandError) as info:
        call_command("createtoken", username, stdout=io.StringIO())
    assert info.value.returncode == 2 and message in str(info.value) and "\n" not in str(info.value)
    assert ApiToken.objects.count() == 0


def test_a_name_too_long_exits_2(owner: User) -> None:
    with pytest.raises(CommandError, match=r"--name: a token's name is at most 100 characters") as info:
        call_command("createtoken", "owner", "--name", "x" * 101, stdout=io.StringIO())
    assert info.value.returncode == 2 and ApiToken.objects.count() == 0


@pytest.mark.django_db(transaction=True)  # the child process reads the rows this test commits
def test_as_a_process_the_token_is_alone_on_the_last_line_and_errors_exit_2(owner: User) -> None:
    done = manage("createtoken", "owner", timeout=120)
    assert done.returncode == 0, done.stderr
    assert token_authenticate(header=f"Bearer {done.stdout.splitlines()[-1]}") == owner
    missing = manage("createtoken", "nobody", timeout=120)
    assert missing.returncode == 2 and missing.stderr.strip() == "CommandError: no user named 'nobody'"
    assert "Traceback" not in missing.stderr
