"""Reads of a search's model: the stored one, or why there is none."""

from __future__ import annotations

from typing import Any

from search.models import FittedModel, Prediction, Search, Status, WorkUnit


def model_of(search: Search) -> FittedModel | None:
    return FittedModel.objects.filter(search=search).first()


def refitting(search: Search) -> bool:
    """Whether the search's refit unit is queued or running."""
    return WorkUnit.objects.filter(search=search, kind=WorkUnit.Kind.REFIT, status__in=Status.ACTIVE).exists()


def no_model_reason(search: Search) -> str:
    """Why `search` has no model (to say so on the page, in `exportmodel` and `predict`)."""
    if search.stored.refit is False:
        return f"search {search.pk} was run with refit: false, so no model was fitted; rerun it with refit on"
    if search.refit_error:
        return f"search {search.pk} has no model: {search.refit_error}"
    if search.status in (Status.FAILED, Status.CANCELLED):
        return f"search {search.pk} is {search.status}, so no model was fitted"
    if search.status == Status.DONE:
        return f"search {search.pk} finished before Fanout kept models; rerun it to get one"
    if refitting(search):
        return f"search {search.pk} is refitting its best candidate; the model is there once it is done"
    fits = f"{search.n_fits_done}/{search.n_fits} fits"
    return f"search {search.pk} is {search.status} ({fits}); its model is fitted once every fit is in"


def model_panel(search: Search) -> dict[str, Any]:
    """What the detail page shows of the model: the model and its card, or why there is none, and per metric
    the best candidate's CV mean and std beside its held-out score (None where there is none)."""
    fitted = model_of(search) if search.is_finished else None
    holdout = search.holdout or {}
    held = holdout.get("scores") or {}
    best = search.candidates.filter(index=search.best_index).first() if search.best_index is not None else None
    rows = [
        {
            "metric": m,
            "cv_mean": (best.mean_test or {}).get(m) if best else None,
            "cv_std": (best.std_test or {}).get(m) if best else None,
            "holdout": held.get(m),
        }
        for m in search.metrics
    ]
    return {
        "fitted": fitted,
        "card": fitted.card if fitted else None,
        "no_model": "" if fitted else no_model_reason(search),
        "holdout": holdout or None,
        "scores": rows,
    }


def predictions_of(search: Search, *, limit: int = 100) -> list[Prediction]:
    """The search's newest predictions, for its predict page."""
    return list(Prediction.objects.filter(search=search).order_by("-created_at", "-id")[:limit])
