"""The export of a finished search: metadata plus `cv_results` (JSON), or one row per candidate (CSV).

`search_export_chunks` yields the file a piece at a time (JSON from the encoder's `iterencode`, CSV a few hundred
rows at a time), for a streamed response: the file's text is never whole in memory, whatever the search's size."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from search.models import Search
from search.selectors.models import model_of
from search.selectors.results import search_cv_results


def search_export(*, search: Search) -> dict[str, Any]:
    """Metadata plus `cv_results` in scikit-learn's layout (null where a score is NaN)."""
    units = search.units.order_by("index")
    return {
        "search": {
            "id": search.pk,
            "name": search.name,
            "status": search.status,
            "estimator": search.estimator,
            "strategy": search.strategy,
            "schedule": search.schedule or None,
            "task": search.task,
            "dataset": {"id": search.dataset_id, "name": search.dataset.name, "kind": search.dataset.kind},
            "spec": search.spec,
            "n_candidates": search.n_candidates,
            "n_splits": search.n_splits,
            "n_fits": search.n_fits,
            "n_fits_done": search.n_fits_done,
            "n_fits_failed": search.n_fits_failed,
            "fits_saved": search.fits_saved,  # path reuse: fits scored from a model grown for a larger one
            "fits_reused": search.fits_reused,  # copied from identical fits of earlier searches
            "metrics": search.metrics,
            "refit_metric": search.refit_metric,
            "best_index": search.best_index,
            "best_params": search.best_params,
            "best_score": search.best_score,
            "cores_used": search.cores_used,
            "busy_time": search.busy_time,
            "speedup": search.speedup,
            "efficiency": search.efficiency,
            "accounting": search.accounting,
            "warnings": search.warnings,
            "created_at": search.created_at.isoformat(),
            "started_at": search.started_at.isoformat() if search.started_at else None,
            "finished_at": search.finished_at.isoformat() if search.finished_at else None,
            "wall_time": search.wall_time,
            "versions": search.versions,
            "refit": search.stored.refit,
            "refit_time": search.refit_time,
            "refit_error": search.refit_error or None,
            "holdout": search.holdout,
            "model": fitted.card if (fitted := model_of(search)) is not None else None,
            "units": [
                {
                    "index": u.index,
                    "status": u.status,
                    "host": u.host,
                    "attempt": u.attempt,
                    "n_jobs_requested": u.n_jobs_requested,
                    "n_jobs_effective": u.n_jobs_effective,
                    "processes_used": u.processes_used,
                    "cpu_count": u.cpu_count,
                    "kind": u.kind,
                }
                for u in units
            ],
        },
        "cv_results": search_cv_results(search=search),
    }


class NotExportable(Exception):
    """The search has fits missing; its message says how many."""


def search_export_text(*, search: Search, fmt: str) -> str:
    """The export file's text: JSON (metadata + cv_results) or CSV (one row per candidate)."""
    return "".join(search_export_chunks(search=search, fmt=fmt))


CSV_ROWS_PER_CHUNK = 500


def search_export_chunks(*, search: Search, fmt: str) -> Iterator[str]:
    """The export file (as `search_export_text`) in pieces. Raises NotExportable before the first piece, so a
    caller can still answer with an error."""
    payload = search_export(search=search)
    if payload["cv_results"] is None:
        raise NotExportable(
            f"search {search.pk} is {search.status} with {search.n_fits_done}/{search.n_fits} fits stored; "
            "results can be exported once every fit is in"
        )
    return _json_chunks(payload) if fmt == "json" else _csv_chunks(payload["cv_results"])


def _json_chunks(payload: dict[str, Any]) -> Iterator[str]:
    encoder = json.JSONEncoder(indent=2, allow_nan=False)  # the same bytes as json.dumps(payload, indent=2)
    buf: list[str] = []
    size = 0
    for piece in encoder.iterencode(payload):
        buf.append(piece)
        size += len(piece)
        if size >= 64 * 1024:
            yield "".join(buf)
            buf, size = [], 0
    yield "".join(buf) + "\n"


def _csv_chunks(results: dict[str, list[Any]]) -> Iterator[str]:
    columns = cv_results_columns(results)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for i in range(len(results["params"])):
        writer.writerow([_csv_cell(results[c][i], c == "params") for c in columns])
        if (i + 1) % CSV_ROWS_PER_CHUNK == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _csv_cell(value: Any, as_json: bool) -> Any:
    if as_json or isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value


def cv_results_columns(results: dict[str, list[Any]]) -> list[str]:
    """Column order for CSV: params, param_*, then scikit-learn's keys as they come."""
    keys = list(results)
    first = ["params"] + [k for k in keys if k.startswith("param_")]
    return first + [k for k in keys if k not in first]
