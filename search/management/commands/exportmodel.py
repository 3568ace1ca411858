"""`python manage.py exportmodel ID -o FILE [--format skops|joblib]`: the search's refitted model as a file."""

from __future__ import annotations

import shutil
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from search.models import Search
from search.selectors.models import model_of, no_model_reason

JOBLIB_NOTE = (
    "note: a joblib file is a pickle: loading it runs code, so load it only where you trust its source. "
    "The skops file (the default) loads without running any: skops.io.load(path, trusted=[...])."
)


class Command(BaseCommand):
    help = "Write a search's refitted model to a file: skops (loading it runs no pickle; default) or joblib."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("search_id", type=int)
        parser.add_argument("-o", "--output", required=True, help="the file to write")
        parser.add_argument("--format", choices=["skops", "joblib"], default="skops")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            search = Search.objects.get(pk=opts["search_id"])
        except Search.DoesNotExist:
            raise CommandError(f"search {opts['search_id']} does not exist", returncode=2) from None
        fitted = model_of(search)
        if fitted is None:
            raise CommandError(no_model_reason(search), returncode=2)
        stored = fitted.skops_file if opts["format"] == "skops" else fitted.joblib_file
        try:
            src = stored.open("rb")
        except FileNotFoundError:
            raise CommandError(
                f"the model file {stored.name} is missing from the model storage", returncode=2
            ) from None
        with src:
            try:
                with open(opts["output"], "wb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
            except OSError as exc:
                raise CommandError(f"{opts['output']}: {exc.strerror}", returncode=2) from None
        if opts["format"] == "joblib":
            self.stderr.write(JOBLIB_NOTE)
        size = fitted.size if opts["format"] == "skops" else fitted.card.get("joblib_size")
        self.stdout.write(
            f"model of search {search.pk} ({search.estimator}) written to {opts['output']} ({size} bytes)"
        )
