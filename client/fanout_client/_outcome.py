"""How a search ended, in scikit-learn's words: its failed fits as `_warn_or_raise_about_fit_failures` reports
them (a FitFailedWarning, or a ValueError when every fit failed or error_score='raise'), a cancelled or failed
search as a RuntimeError."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

from ._errors import FanoutError
from ._http import Session

DELIMITER = "-" * 80 + "\n"


@dataclass(frozen=True)
class Failure:
    message: str  # the error of the fit (its last line, as the server groups them)
    count: int


def parse_summary(error: str) -> list[Failure]:
    """The server's one-line summary, `every fit failed: 15× ValueError: …; 3× …`, as failures."""
    _, _, rest = error.partition(": ") if error.startswith("every fit failed") else ("", "", "")
    found = [re.match(r"(\d+)× (.*)", part, flags=re.DOTALL) for part in re.split(r"; (?=\d+× )", rest)]
    return [Failure(m.group(2), int(m.group(1))) for m in found if m]


def failures_of(session: Session, search: dict[str, Any]) -> list[Failure]:
    """The search's failed fits grouped by error: the search's own `failures` list, else
    `GET /searches/{id}/failures`, else what the server's error summary says."""
    found = search.get("failures")
    if found is None:
        try:
            found = session.get(f"/searches/{search['id']}/failures")
        except FanoutError as exc:
            if exc.status not in (404, 405):
                raise
    if isinstance(found, dict):
        found = found.get("items")
    if isinstance(found, list) and found:
        return [Failure(str(f.get("message", "")), int(f.get("count", 1))) for f in found if isinstance(f, dict)]
    return parse_summary(str(search.get("error") or ""))


def _summary(failures: list[Failure]) -> str:
    if not failures:
        return "(the server gave no details; the search's page lists them)"
    return "\n".join(f"{DELIMITER}{f.count} fits failed with the following error:\n{f.message}" for f in failures)


@dataclass(frozen=True)
class Outcome:
    failures: list[Failure]
    no_model: bool = False  # the server kept no model although refit was asked for (see check_outcome)


def check_outcome(session: Session, search: dict[str, Any], error_score: Any, page: str) -> Outcome:
    """Raise as scikit-learn would for a search that is over: every fit failed, a fit failed with
    error_score='raise'; and a RuntimeError for a cancelled or failed search.

    The server calls a search whose every candidate has a NaN mean score "failed" ("every fit failed") even
    when no fit failed (a scorer that gives NaN on tiny folds, such as R² on one sample); scikit-learn ranks
    such candidates all first and refits the first one. Its results are loaded, without a model."""
    sid, status, error = search.get("id"), search.get("status"), str(search.get("error") or "")
    n_fits, n_failed = int(search.get("n_fits") or 0), int(search.get("n_fits_failed") or 0)
    if status == "cancelled":
        raise RuntimeError(f"Fanout search {sid} was cancelled: {error or 'no reason given'} ({page})")
    failures = failures_of(session, search) if n_failed else []
    if status == "failed" and n_fits and n_failed == n_fits:
        raise ValueError(
            f"\nAll the {n_fits} fits failed.\nIt is very likely that your model is misconfigured.\nYou can try to "
            "debug the error by setting error_score='raise'.\n\nBelow are more details about the failures (Fanout "
            f"search {sid}, {page}):\n{_summary(failures)}"
        )
    all_nan = status == "failed" and error.startswith("every fit failed")
    if status == "failed" and not all_nan:
        raise RuntimeError(f"Fanout search {sid} failed: {error or 'no reason given'} ({page})")
    if n_failed and error_score == "raise":
        first = failures[0].message if failures else "(the search's page lists the errors)"
        raise ValueError(
            f"{first}\n\n{n_failed} of the {n_fits} fits of Fanout search {sid} failed and error_score='raise' "
            f"(the search ran to its end on the server: {page}). All the errors:\n{_summary(failures)}"
        )
    return Outcome(failures, no_model=all_nan)


def warn_failures(search: dict[str, Any], failures: list[Failure], error_score: Any) -> None:
    n_fits, n_failed = search.get("n_fits"), int(search.get("n_fits_failed") or 0)
    if not n_failed:
        return
    from sklearn.exceptions import FitFailedWarning

    warnings.warn(
        f"\n{n_failed} fits failed out of a total of {n_fits}.\nThe score on these train-test partitions for these "
        f"parameters will be set to {error_score}.\nIf these failures are not expected, you can try to debug them "
        f"by setting error_score='raise'.\n\nBelow are more details about the failures:\n{_summary(failures)}",
        FitFailedWarning,
        stacklevel=5,  # the user's fit, refresh or attach
    )
