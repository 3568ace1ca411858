"""`python manage.py exportsearch ID --format json|csv [-o FILE]`: results in `cv_results_` layout."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from search import services
from search.models import Search


class Command(BaseCommand):
    help = "Export a finished search's results in scikit-learn's cv_results_ layout (JSON or CSV)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("search_id", type=int)
        parser.add_argument("--format", choices=["json", "csv"], default="json")
        parser.add_argument("-o", "--output", help="write to this file instead of standard output")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            search = Search.objects.select_related("dataset").get(pk=opts["search_id"])
        except Search.DoesNotExist:
            raise CommandError(f"search {opts['search_id']} does not exist", returncode=2) from None
        text = export_text(search, opts["format"])
        if opts["output"]:
            try:
                with open(opts["output"], "w", encoding="utf-8", newline="") as f:
                    f.write(text)
            except OSError as exc:
                raise CommandError(f"{opts['output']}: {exc.strerror}", returncode=2) from None
        else:
            self.stdout.write(text, ending="")


def export_text(search: Search, fmt: str) -> str:
    payload = services.search_export(search=search)
    if payload["cv_results"] is None:
        raise CommandError(
            f"search {search.pk} is {search.status} with {search.n_fits_done}/{search.n_fits} fits stored; "
            "results can be exported once every fit is in",
            returncode=2,
        )
    if fmt == "json":
        return json.dumps(payload, indent=2, allow_nan=False) + "\n"
    results = payload["cv_results"]
    columns = services.cv_results_columns(results)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for i in range(len(results["params"])):
        writer.writerow(
            [json.dumps(results[c][i], sort_keys=True) if c == "params" else _cell(results[c][i]) for c in columns]
        )
    return buf.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value
