"""Django admin: every model, read-only where it is a record of what ran, with rerun/cancel actions."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from search.downloads import stored_download
from search.engine.spec import SpecError
from search.models import (
    ApiToken,
    Candidate,
    Dataset,
    FittedModel,
    Prediction,
    Result,
    ScalingStudy,
    Search,
    Status,
    WorkUnit,
)
from search.selectors.queue import queue_by_owner
from search.selectors.studies import study_label
from search.services.scaling import study_create
from search.services.searches import search_cancel, search_rerun
from search.services.tokens import token_revoke

admin.site.site_header = "Fanout"
admin.site.site_title = "Fanout"
admin.site.index_title = "Searches, work units and results"


def _may(request: HttpRequest, *perms: str) -> bool:
    """Django's own permissions (`search.add_search`, …): a superuser has them all, staff only those granted."""
    return request.user.has_perms([f"search.{perm}" for perm in perms])


def why_not_deletable(search: Search) -> str | None:
    """Why deleting `search` would cut into work still going (None: it may go). A search's delete cascades
    into its scaling studies and their runs; deleting a run of a running study takes a run from under it."""
    if search.status in Status.ACTIVE:
        return f"it is {search.status}; cancel it first"
    if search.study_id and ScalingStudy.objects.filter(pk=search.study_id, status__in=Status.ACTIVE).exists():
        return f"it is a run of scaling study {search.study_id}, which is still running; cancel the study's runs first"
    active = ScalingStudy.objects.filter(search=search, status__in=Status.ACTIVE).values_list("pk", flat=True)
    active_runs = Search.objects.filter(study__search=search, status__in=Status.ACTIVE).values_list("study", flat=True)
    if studies := sorted({*active, *active_runs}):
        names = ", ".join(f"scaling study {pk}" for pk in studies)
        return f"its {names} {'is' if len(studies) == 1 else 'are'} still running and would be deleted with it"
    return None


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Rows written by workers: viewable, never edited or added by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # they go with their search


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "kind", "n_samples", "n_features", "owner", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]
    readonly_fields = ["kind", "source", "key", "n_samples", "n_features", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dataset]:
        return super().get_queryset(request).defer("content")  # up to FANOUT_MAX_UPLOAD_MB per row

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # data sets come from a spec or an upload, where they are validated


class CandidateInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Candidate
    fields = readonly_fields = ("index", "params", "score", "rank", "mean_fit_time")
    ordering = ["rank", "index"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Candidate]:
        return super().get_queryset(request).order_by("rank", "index")


class WorkUnitInline(admin.TabularInline):  # type: ignore[type-arg]
    model = WorkUnit
    fields = readonly_fields = (
        "index", "status", "attempt", "host", "n_jobs_effective", "processes_used", "fits_run", "error",
    )  # fmt: skip
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True


@admin.register(Search)
class SearchAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["id", "name", "estimator", "status", "progress_bar", "best", "cores_used", "wall", "created_at"]
    list_display_links = ["id", "name"]
    list_filter = ["status", "estimator", "task"]
    search_fields = ["name", "estimator", "dataset__name"]
    date_hierarchy = "created_at"
    actions = ["rerun", "cancel", "scaling_study", "scaling_study_machines"]
    inlines = [WorkUnitInline, CandidateInline]
    list_per_page = 50
    fields = readonly_fields = (
        "name", "status", "estimator", "task", "dataset", "spec_pretty", "n_candidates", "n_splits", "n_fits",
        "n_fits_done", "n_fits_failed", "metrics", "refit_metric", "n_jobs", "best_index", "best_params",
        "best_score", "cores_used", "error", "refit_time", "refit_error", "holdout", "versions", "rerun_of",
        "created_at", "started_at", "finished_at",
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a search is defined by a spec: `runsearch`, or "rerun" here

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a record of what ran: viewable; the rerun and cancel actions change it

    def has_delete_permission(self, request: HttpRequest, obj: Search | None = None) -> bool:
        # One at a time, with Django's delete permission, and never while workers write to it or its studies.
        return obj is not None and _may(request, "delete_search") and why_not_deletable(obj) is None

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and _may(request, "delete_search") and (why := why_not_deletable(obj)):
            return HttpResponseForbidden(f"{obj} was not deleted: {why}.", content_type="text/plain; charset=utf-8")
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request: HttpRequest, obj: Search) -> None:
        if why := why_not_deletable(obj):  # it started between the confirmation page and the POST
            raise PermissionDenied(f"{obj} was not deleted: {why}.")
        super().delete_model(request, obj)

    # The actions' permissions (`@admin.action(permissions=[name])` asks `has_<name>_permission`): a rerun adds
    # a search, a cancel changes one, a study adds a study and its runs. Only view permission: no action.
    def has_rerun_permission(self, request: HttpRequest) -> bool:
        return _may(request, "add_search")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return _may(request, "change_search")

    def has_study_permission(self, request: HttpRequest) -> bool:
        return _may(request, "add_search", "add_scalingstudy")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, str] | None = None) -> HttpResponse:
        action = request.POST.get("action", "") if request.method == "POST" else ""
        if action in self.actions and action not in self.get_actions(request):
            raise PermissionDenied(f"you may not run {action!r} on searches")  # else a quiet "no action selected"
        return super().changelist_view(request, extra_context)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, set[str], Any]:
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected  # units, candidates and results go with their search

    def get_urls(self) -> list[URLPattern]:
        queue = self.admin_site.admin_view(self.queue_view)  # staff only: others are sent to the admin's login
        return [path("queue/", queue, name="search_search_queue"), *super().get_urls()]

    def queue_view(self, request: HttpRequest) -> HttpResponse:
        """The queue by owner: who has what waiting and running now (services.fairshare hands out the turns)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "title": "Queue by owner", "opts": self.model._meta,
                   "rows": queue_by_owner()}  # fmt: skip
        return TemplateResponse(request, "admin/search/queue_by_owner.html", context)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="progress")
    def progress_bar(self, obj: Search) -> str:
        return format_html(
            '<progress value="{}" max="{}" title="{} of {} fits"></progress> {}/{}',
            obj.n_fits_done, obj.n_fits, obj.n_fits_done, obj.n_fits, obj.n_fits_done, obj.n_fits,
        )  # fmt: skip

    @admin.display(description="best score", ordering="best_score")
    def best(self, obj: Search) -> str:
        return "–" if obj.best_score is None else f"{obj.best_score:.4f}"

    @admin.display(description="wall time")
    def wall(self, obj: Search) -> str:
        return "–" if obj.wall_time is None else f"{obj.wall_time:.1f} s"

    @admin.display(description="spec")
    def spec_pretty(self, obj: Search) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.spec, indent=2))

    @admin.action(permissions=["rerun"], description="Rerun the selected searches (same spec, new search)")
    def rerun(self, request: HttpRequest, queryset: QuerySet[Search]) -> None:
        for search in queryset:
            try:
                new = search_rerun(search=search)
            except SpecError as exc:
                self.message_user(request, f"{search}: cannot rerun: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{search} rerun as {new}", messages.SUCCESS)

    @admin.action(
        permissions=["study"], description="Run a scaling study (1..N processes) of the selected finished searches"
    )
    def scaling_study(self, request: HttpRequest, queryset: QuerySet[Search]) -> None:
        for search in queryset:
            if search.status != "done":
                self.message_user(request, f"{search}: not done, no study started", messages.WARNING)
                continue
            try:
                study = study_create(search=search)
            except ValueError as exc:  # SpecError: the stored spec no longer validates
                self.message_user(request, f"{search}: no study started: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{search}: {study} started at {study.n_jobs_list} processes", messages.SUCCESS)

    @admin.action(
        permissions=["study"], description="Run a scaling study (1..M machines) of the selected finished searches"
    )
    def scaling_study_machines(self, request: HttpRequest, queryset: QuerySet[Search]) -> None:
        for search in queryset:
            if search.status != "done":
                self.message_user(request, f"{search}: not done, no study started", messages.WARNING)
                continue
            try:
                study = study_create(search=search, axis="machines")
            except ValueError as exc:
                self.message_user(request, f"{search}: no study started: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{search}: {study} started at {study_label(study)}", messages.SUCCESS)

    @admin.action(permissions=["cancel"], description="Cancel the selected searches")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Search]) -> None:
        cancelled = [s for s in queryset if search_cancel(search=s)]
        skipped = queryset.count() - len(cancelled)
        self.message_user(
            request, f"cancelled {len(cancelled)} searches" + (f", {skipped} had already finished" if skipped else "")
        )


@admin.register(ScalingStudy)
class ScalingStudyAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "status", "n_jobs_list", "n_candidates", "serial_fraction", "created_at"]
    list_filter = ["status"]


@admin.register(WorkUnit)
class WorkUnitAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "status", "attempt", "host", "cpu_count", "n_jobs_effective", "processes_used",
                    "fits_run", "started_at", "finished_at"]  # fmt: skip
    list_filter = ["status", "timed_out", "host"]
    search_fields = ["search__name", "host"]
    list_select_related = ["search"]


@admin.register(Candidate)
class CandidateAdmin(ReadOnlyAdmin):
    list_display = ["search", "index", "params", "score", "rank", "mean_fit_time"]
    list_filter = ["search__status"]
    search_fields = ["search__name"]
    list_select_related = ["search"]
    ordering = ["search", "rank", "index"]


@admin.register(Result)
class ResultAdmin(ReadOnlyAdmin):
    list_display = ["search", "candidate_index", "fold", "test_scores", "fit_time", "host", "pid", "failed"]
    list_filter = ["host", "search__status"]
    search_fields = ["search__name", "error", "host"]
    list_select_related = ["search", "candidate"]

    @admin.display(description="candidate", ordering="candidate__index")
    def candidate_index(self, obj: Result) -> int:
        return obj.candidate.index

    @admin.display(boolean=True)
    def failed(self, obj: Result) -> bool:
        return bool(obj.error)


@admin.register(FittedModel)
class FittedModelAdmin(ReadOnlyAdmin):
    """The searches' models: size, card and downloads (streamed from the model storage, for staff who may view)."""

    list_display = ["__str__", "estimator", "file_size", "refit_time", "holdout_scores", "created_at"]
    list_select_related = ["search"]
    search_fields = ["search__name", "search__estimator"]
    fields = readonly_fields = ("search", "file_size", "downloads", "card_pretty", "created_at")

    @admin.display(description="estimator", ordering="search__estimator")
    def estimator(self, obj: FittedModel) -> str:
        return obj.search.estimator

    @admin.display(description="size", ordering="size")
    def file_size(self, obj: FittedModel) -> str:
        return filesizeformat(obj.size)

    @admin.display(description="refit time (s)")
    def refit_time(self, obj: FittedModel) -> float | None:
        return obj.search.refit_time

    @admin.display(description="held-out scores")
    def holdout_scores(self, obj: FittedModel) -> str:
        return json.dumps((obj.card.get("holdout") or {}).get("scores"))

    @admin.display(description="card")
    def card_pretty(self, obj: FittedModel) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.card, indent=2))

    @admin.display(description="download")
    def downloads(self, obj: FittedModel) -> str:
        links = [
            (reverse("admin:search_fittedmodel_download", args=[obj.pk, fmt]), label)
            for fmt, label in (("skops", "model.skops"), ("joblib", "model.joblib (a pickle: loading it runs code)"),
                               ("json", "card.json"))
        ]  # fmt: skip
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    def get_urls(self) -> list[URLPattern]:
        download = self.admin_site.admin_view(self.download_view)
        return [
            path("<int:pk>/download/<str:fmt>/", download, name="search_fittedmodel_download"),
            *super().get_urls(),
        ]

    def download_view(self, request: HttpRequest, pk: int, fmt: str) -> FileResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        fitted = FittedModel.objects.filter(pk=pk).first()
        if fitted is None or fmt not in FittedModel.DOWNLOADS:
            raise Http404("no such model file")
        return stored_download(*fitted.download(fmt))


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "status", "input_name", "n_rows", "host", "created_at", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["search"]
    search_fields = ["search__name", "input_name", "error"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Users' API tokens: viewable and revocable, never added here (the tokens page and `createtoken` make them,
    and show them once); only their prefix and hash are stored."""

    list_display = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "name", "prefix"]
    list_select_related = ["user"]
    fields = readonly_fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a token is revoked, never edited

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return _may(request, "change_apitoken")

    @admin.action(permissions=["revoke"], description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = sum(token_revoke(token=t) for t in queryset)
        skipped = queryset.count() - revoked
        message = f"revoked {revoked} token{'s' * (revoked != 1)}"
        self.message_user(request, message + (f", {skipped} revoked already" if skipped else ""))
