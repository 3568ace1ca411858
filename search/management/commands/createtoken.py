"""`python manage.py createtoken USERNAME [--name LABEL]`: a new API token for a user, printed once, alone on
the last line (so `| tail -n 1` gives just the token)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from search.services.tokens import token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print it (it is shown this once; only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label to tell the user's tokens apart")

    def handle(self, *args: Any, **opts: Any) -> None:
        username = opts["username"]
        try:
            user = get_user_model()._default_manager.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {username!r}", returncode=2) from None
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive: a token of theirs would not authenticate", returncode=2)
        try:
            _token, plaintext = token_create(user=user, name=opts["name"])
        except ValueError as exc:
            raise CommandError(f"--name: {exc}", returncode=2) from None
        self.stdout.write(f"API token for {username} (shown once; store it now):")
        self.stdout.write(plaintext)
