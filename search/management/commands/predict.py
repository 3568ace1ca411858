"""`python manage.py predict ID DATA.csv -o OUT.csv`: predictions of a search's model for a CSV file, made here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from search.engine.predict import PredictError
from search.models import Search
from search.services.predictions import PredictionRefused, model_predict_file


class Command(BaseCommand):
    help = (
        "Predict a CSV file with a search's refitted model, in this process: the file needs a header row naming "
        "the model's feature columns (other columns are ignored). OUT.csv gets a prediction column, plus proba_<class> "
        "columns for a classifier, one line per row; it is written only if every row is predicted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("search_id", type=int)
        parser.add_argument("data", help="the CSV file to predict")
        parser.add_argument("-o", "--output", required=True, help="the CSV file to write")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            search = Search.objects.get(pk=opts["search_id"])
        except Search.DoesNotExist:
            raise CommandError(f"search {opts['search_id']} does not exist", returncode=2) from None
        try:
            n_rows = model_predict_file(search=search, src=Path(opts["data"]), dst=Path(opts["output"]))
        except PredictionRefused as exc:
            raise CommandError(exc.message, returncode=2) from None
        except PredictError as exc:
            raise CommandError(f"{opts['data']}: {exc.message}", returncode=2) from None
        except OSError as exc:
            raise CommandError(f"{opts['output']}: {exc.strerror or exc}", returncode=2) from None
        self.stdout.write(f"{n_rows} predictions written to {opts['output']}")
