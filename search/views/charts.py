"""A search's charts as Plotly figure JSON, one URL per chart kind.

`CHARTS` maps each kind to (reader, builder): the reader asks the selectors for what the chart needs and
returns the builder's arguments, the builder (a pure function of `search.charts`) draws them. A reader that
finds nothing to draw raises `NothingToDraw`, answered with an empty figure and its message; an unknown kind
is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from search.charts import accuracy, speedup
from search.charts._utils import Figure, empty_figure
from search.models import Search, Status
from search.selectors.results import binned_busy, computed_count, labelled_spans, process_busy, process_count
from search.selectors.searches import candidate_rows, halving_rounds, search_for, varied_params
from search.selectors.studies import study_counts, study_points

Reader = Callable[[Search, HttpRequest], tuple[Any, ...]]
UTILISATION_BINS = 200  # as engine.speedup.utilisation
Builder = Callable[..., Figure]


class NothingToDraw(Exception):
    """The chart is an empty figure with this message (no study yet, not finished, nothing varies…)."""


# --- readers: the builder's arguments, from the selectors -------------------------------------------------------


def _candidates(search: Search, request: HttpRequest) -> tuple[list[accuracy.CandidateRow], str, list[str]]:
    """Rows of the chosen metric (`?metric=`, the refit metric by default), its label and the varied parameters;
    accuracy charts need every fit in."""
    metric = request.GET.get("metric") or search.refit_metric
    if metric not in search.metrics:
        raise Http404("unknown metric")
    if search.status in (Status.CANCELLED, Status.FAILED):
        raise NothingToDraw(f"This search {search.status} before every fit was in: no charts.")
    if search.status != Status.DONE:
        raise NothingToDraw("Charts appear when every fit is in.")
    rows = candidate_rows(search, metric)
    label = (metric != "score" and metric) or search.stored.scoring_label or metric
    return rows, label, varied_params(search) or []  # asked of the database, not of 20,000 rows here


def _param(search: Search, request: HttpRequest) -> tuple[Any, ...]:
    rows, label, varied = _candidates(search, request)
    param = request.GET.get("param") or (varied[0] if varied else "")
    if param not in varied:
        raise NothingToDraw("No parameter varies.")
    return rows, param, label


def _heatmap(search: Search, request: HttpRequest) -> tuple[Any, ...]:
    rows, label, varied = _candidates(search, request)
    x, y = request.GET.get("x", ""), request.GET.get("y", "")
    if len(varied) < 2:
        raise NothingToDraw("A heatmap needs two parameters that vary.")
    x, y = (x if x in varied else varied[0]), (y if y in varied else varied[1])
    if x == y:
        raise NothingToDraw("Pick two different parameters.")
    return rows, x, y, label


def _parallel(search: Search, request: HttpRequest) -> tuple[Any, ...]:
    rows, label, varied = _candidates(search, request)
    if not varied:
        raise NothingToDraw("No parameter varies.")
    return rows, varied, label


def _train_test(search: Search, request: HttpRequest) -> tuple[Any, ...]:
    rows, label, _ = _candidates(search, request)
    return rows, label


def _rounds(search: Search, request: HttpRequest) -> tuple[Any, ...]:
    if search.strategy != "halving" or search.stored.halving is None:
        raise NothingToDraw("Only successive-halving searches have rounds.")
    return halving_rounds(search), search.refit_metric, search.stored.halving.resource


# Timeline, utilisation and busy time are drawn from the fits stored so far (live while running). Above
# speedup.BAR_LIMIT fits the timeline is a busy-fraction heatmap (no labels read); utilisation is binned; busy
# time is summed per process in the database.
def _timeline(search: Search, request: HttpRequest) -> tuple[Any, ...]:
    if computed_count(search) > speedup.BAR_LIMIT:
        binned = binned_busy(search, speedup.MAX_BINS, per_lane=True)
        return {lane: v for lane, v in binned.busy.items() if lane is not None}, binned.width, binned.n_fits
    return labelled_spans(search)


def _draw_timeline(*args: Any) -> Figure:
    return speedup.timeline_binned(*args) if isinstance(args[0], dict) else speedup.timeline(*args)


def _utilisation(search: Search, request: HttpRequest) -> tuple[Any, ...]:
    binned = binned_busy(search, UTILISATION_BINS, per_lane=False)
    running = [v / binned.width for v in binned.busy.get(None, [])]
    times = [round((b + 0.5) * binned.width, 6) for b in range(len(running))]
    return times, running, search.cores_used or process_count(search)


def _busy(search: Search, request: HttpRequest) -> tuple[Any, ...]:
    return (process_busy(search),)


def _scaling(search: Search, request: HttpRequest) -> tuple[Any, ...]:
    study = search.studies.order_by("-pk").first()
    if study is None:
        raise NothingToDraw("No scaling study yet: start one with the button above.")
    return study_points(study), study.serial_fraction, max(study_counts(study)), study.axis


def _train_vs_test(rows: list[accuracy.CandidateRow], label: str) -> Figure:
    return accuracy.train_vs_test(rows, label) or empty_figure("This search did not score the training folds.")


CHARTS: dict[str, tuple[Reader, Builder]] = {
    "param": (_param, accuracy.score_vs_param),
    "heatmap": (_heatmap, accuracy.heatmap),
    "parallel": (_parallel, accuracy.parallel_coordinates),
    "train-test": (_train_test, _train_vs_test),
    "rounds": (_rounds, accuracy.halving_rounds),
    "timeline": (_timeline, _draw_timeline),
    "utilisation": (_utilisation, speedup.utilisation_figure),
    "busy": (_busy, speedup.process_busy_figure),
    "scaling": (_scaling, speedup.scaling_figure),
}


@require_GET
@login_required
def search_chart(request: HttpRequest, pk: int, kind: str) -> JsonResponse:
    search = search_for(request.user, pk)
    if kind not in CHARTS:
        raise Http404("unknown chart")
    read, draw = CHARTS[kind]
    try:
        args = read(search, request)
    except NothingToDraw as nothing:
        figure = empty_figure(str(nothing))
    else:
        figure = draw(*args)
    return JsonResponse(figure, json_dumps_params={"allow_nan": False})
