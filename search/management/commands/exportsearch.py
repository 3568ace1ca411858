"""`python manage.py exportsearch ID --format json|csv [-o FILE]`: results in `cv_results_` layout."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from search.models import Search
from search.selectors.export import NotExportable, search_export_chunks


class Command(BaseCommand):
    help = "Export a finished search's results in scikit-learn's cv_results_ layout (JSON or CSV)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("search_id", type=int)
        parser.add_argument("--format", choices=["json", "csv"], default="json")
        parser.add_argument("-o", "--output", help="write to this file instead of standard output")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            search = Search.objects.select_related("dataset").defer("dataset__content").get(pk=opts["search_id"])
        except Search.DoesNotExist:
            raise CommandError(f"search {opts['search_id']} does not exist", returncode=2) from None
        try:
            chunks = search_export_chunks(search=search, fmt=opts["format"])
        except NotExportable as exc:
            raise CommandError(str(exc), returncode=2) from None
        if opts["output"]:
            try:
                with open(opts["output"], "w", encoding="utf-8", newline="") as f:
                    f.writelines(chunks)
            except OSError as exc:
                raise CommandError(f"{opts['output']}: {exc.strerror}", returncode=2) from None
        else:
            for chunk in chunks:
                self.stdout.write(chunk, ending="")
