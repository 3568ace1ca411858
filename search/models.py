"""Fanout's own record of every search: the truth, whatever the broker did (docs/traps.md, at-least-once
delivery; docs/traps.md, a killed worker).

Rows follow scikit-learn's vocabulary (`cv_results_`); one `Result` per (candidate, fold), guarded
by a unique constraint so a fit delivered twice is stored once.
"""

from __future__ import annotations

import hashlib
import os
import time
from enum import nonmember
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils.functional import cached_property

from search.engine.stored import StoredSpec


class Dataset(models.Model):
    class Kind(models.TextChoices):
        BUILTIN = "builtin", "bundled with scikit-learn"
        GENERATOR = "generator", "scikit-learn generator"
        CSV = "csv", "CSV file"
        NPZ = "npz", "NumPy .npz arrays"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    source = models.JSONField(
        default=dict,
        help_text="name + options, the CSV target column, or an .npz's file name and whether it has groups",
    )
    content = models.BinaryField(null=True, blank=True, editable=False)
    key = models.CharField(max_length=64, db_index=True, help_text="sha256 of the source or content")
    n_samples = models.PositiveIntegerField(default=0)
    n_features = models.PositiveIntegerField(default=0)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_groups(self) -> bool:
        """Whether the rows carry group labels (an .npz with a `groups` array), for `cv: {"groups": true}`."""
        return bool(self.source.get("groups"))

    def data_source(self) -> dict[str, Any]:
        """The engine's description of where the rows come from (see `engine.run.load_data`)."""
        if self.kind == self.Kind.CSV:
            return {"kind": "csv", "path": self.local_path(), "target": self.source["target"]}
        if self.kind == self.Kind.NPZ:
            return {"kind": "npz", "path": self.local_path()}
        return {"kind": self.kind, "name": self.source["name"], "options": self.source.get("options", {})}

    def local_path(self) -> str | None:
        """A CSV or .npz data set's bytes as a local file (`<key>.csv`, `<key>.npz`), cached per machine by the
        data set's key (the hash of its bytes, and a CSV's target column; written once, atomically); None for
        bundled and generated data.

        `content` (up to FANOUT_MAX_UPLOAD_MB) is read only when this machine has no copy yet: a row loaded
        with `defer("content")` loads it then, on access, and never while the file exists."""
        if self.kind not in (self.Kind.CSV, self.Kind.NPZ):
            return None
        cache: Path = settings.FANOUT_CACHE_DIR
        cache.mkdir(parents=True, exist_ok=True)
        named = len(self.key) == 64 and all(c in "0123456789abcdef" for c in self.key)
        content = None if named else bytes(self.content or b"")
        path = cache / f"{self.key if named else hashlib.sha256(content or b'').hexdigest()}.{self.kind}"
        if not path.exists():
            tmp = path.with_suffix(f".{time.time_ns()}.{os.getpid()}.tmp")
            tmp.write_bytes(bytes(self.content or b"") if content is None else content)
            tmp.replace(path)
        return str(path)


class Status(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    # The two groups every query of "still going" or "over" uses, named once.
    ACTIVE = nonmember((QUEUED, RUNNING))
    FINISHED = nonmember((DONE, FAILED, CANCELLED))


class SearchQuerySet(models.QuerySet["Search"]):
    def active(self) -> SearchQuerySet:
        return self.filter(status__in=Status.ACTIVE)


class Search(models.Model):
    name = models.CharField(max_length=200, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    spec = models.JSONField(help_text="the canonical spec (see README: spec format)")
    estimator = models.CharField(max_length=300)
    steps = models.JSONField(default=list, help_text="[class name, module] per step, resolved from the registry")
    task = models.CharField(max_length=16)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="searches")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    n_candidates = models.PositiveIntegerField()
    n_splits = models.PositiveIntegerField()
    n_fits = models.PositiveIntegerField()
    n_fits_done = models.PositiveIntegerField(default=0)
    n_fits_failed = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(help_text="metric keys as in cv_results_ ('score' for one scorer)")
    refit_metric = models.CharField(max_length=100)
    n_jobs = models.IntegerField(default=-1)
    best_index = models.IntegerField(null=True, blank=True)
    best_params = models.JSONField(null=True, blank=True)
    best_score = models.FloatField(null=True, blank=True)
    cores_used = models.PositiveIntegerField(null=True, blank=True, help_text="most worker processes one unit used")
    error = models.TextField(blank=True)
    versions = models.JSONField(default=dict)
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    # Parallel accounting, stored at the end (see selectors.results.search_accounting): wall time is the span
    # from the first fit's start to the last fit's end; busy time the sum of fit + score times.
    busy_time = models.FloatField(null=True, blank=True, help_text="sum of fit + score times (s)")
    speedup = models.FloatField(null=True, blank=True, help_text="busy time / wall time")
    efficiency = models.FloatField(null=True, blank=True, help_text="speedup / processes used")
    accounting = models.JSONField(default=dict, blank=True, help_text="per machine and per process busy time")
    warnings = models.JSONField(default=list, blank=True, help_text="oversubscription and other run warnings")
    study = models.ForeignKey(
        "ScalingStudy", null=True, blank=True, on_delete=models.CASCADE, related_name="runs",
        help_text="the scaling study this run belongs to",
    )  # fmt: skip
    study_n_jobs = models.IntegerField(null=True, blank=True, help_text="processes this study run was given")
    max_machines = models.PositiveIntegerField(
        null=True, blank=True, help_text="machines (clusters) this run may use; empty = every attached one"
    )
    strategy = models.CharField(max_length=16, default="grid", help_text="grid, random or halving")
    round = models.PositiveIntegerField(default=0, help_text="the halving round being run")
    schedule = models.JSONField(default=dict, blank=True, help_text="halving: resources and candidates per round")
    fits_saved = models.PositiveIntegerField(default=0, help_text="fits not run thanks to path reuse")
    fits_reused = models.PositiveIntegerField(default=0, help_text="fits copied from identical earlier fits")
    pilot = models.JSONField(
        null=True, blank=True, help_text="with no past fits to estimate from: the pilot's estimate (services.estimates)"
    )
    refit_time = models.FloatField(null=True, blank=True, help_text="seconds the refit of the best candidate took")
    refit_error = models.TextField(blank=True, help_text="why the refit failed (the CV results are kept)")
    holdout = models.JSONField(
        null=True,
        blank=True,
        help_text="the held-out split: test_size, random_state, stratify, n_train, n_test, scores",
    )
    candidates_stored = models.PositiveIntegerField(
        null=True, blank=True, help_text="preparing: how many of round 0's candidates are stored (search_prepare)"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = SearchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "searches"

    def __str__(self) -> str:
        return f"search {self.pk}" + (f" ({self.name})" if self.name else "")

    @cached_property
    def stored(self) -> StoredSpec:
        """The typed view of `spec` (read once per row)."""
        return StoredSpec.from_dict(self.spec)

    def spec_to_replan(self) -> dict[str, Any]:
        """The stored spec as `plan_search` takes it again (rerun, scaling study): a stored CSV data set
        points at the cached copy of its bytes; `{"id": N}` stays (resolved with the search's owner)."""
        raw = dict(self.spec)
        if "dataset_id" in raw["dataset"]:
            raw["dataset"] = {"csv": self.dataset.local_path(), "target": raw["dataset"]["target"]}
        return raw

    @property
    def progress(self) -> float:
        return self.n_fits_done / self.n_fits if self.n_fits else 0.0

    @property
    def is_finished(self) -> bool:
        return self.status in Status.FINISHED

    @property
    def is_preparing(self) -> bool:
        """Its candidates are still being stored in the background (see `candidates_stored`)."""
        return self.candidates_stored is not None and self.status in Status.ACTIVE

    @property
    def wall_time(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def timed_out_units(self) -> models.QuerySet[WorkUnit]:
        """Units stopped by FANOUT_UNIT_TIMEOUT, for the detail page."""
        return WorkUnit.objects.filter(search=self, timed_out=True).order_by("index")


class ScalingStudy(models.Model):
    """The same search (or its first `n_candidates`) run at 1, 2, … processes, one run after another."""

    search = models.ForeignKey(Search, on_delete=models.CASCADE, related_name="studies")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    n_jobs_list = models.JSONField(help_text="process counts to measure, in order")
    n_candidates = models.PositiveIntegerField(help_text="candidates per run (a prefix of the grid)")
    axis = models.CharField(max_length=16, default="processes", help_text="processes (one machine) or machines")
    n_machines_list = models.JSONField(default=list, blank=True, help_text="machine counts to measure, in order")
    serial_fraction = models.FloatField(null=True, blank=True, help_text="Amdahl fit of the measured runs")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "scaling studies"

    def __str__(self) -> str:
        return f"scaling study {self.pk} of search {self.search_id}"


class Candidate(models.Model):
    search = models.ForeignKey(Search, on_delete=models.CASCADE, related_name="candidates")
    index = models.PositiveIntegerField()
    params = models.JSONField()
    round = models.PositiveIntegerField(default=0, help_text="halving round (0 for grid and random search)")
    n_resources = models.PositiveIntegerField(null=True, blank=True, help_text="halving: samples or budget")
    mean_test = models.JSONField(null=True, blank=True)
    std_test = models.JSONField(null=True, blank=True)
    rank_test = models.JSONField(null=True, blank=True)
    mean_train = models.JSONField(null=True, blank=True)
    std_train = models.JSONField(null=True, blank=True)
    mean_fit_time = models.FloatField(null=True, blank=True)
    std_fit_time = models.FloatField(null=True, blank=True)
    mean_score_time = models.FloatField(null=True, blank=True)
    std_score_time = models.FloatField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True, help_text="mean test score of the refit metric")
    rank = models.PositiveIntegerField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["search", "index"]
        constraints = [models.UniqueConstraint(fields=["search", "index"], name="candidate_once_per_search")]

    def __str__(self) -> str:
        return f"#{self.index} {self.params}"


class WorkUnitQuerySet(models.QuerySet["WorkUnit"]):
    def held(self, unit: WorkUnit) -> WorkUnitQuerySet:
        """The unit as long as this attempt still holds it: running, and not claimed again since (attempt
        fencing, docs/traps.md). Every write by the attempt's supervisor goes through this guard."""
        return self.filter(pk=unit.pk, attempt=unit.attempt, status=Status.RUNNING)


class WorkUnit(models.Model):
    """A slice of a search (candidates [start, stop) × every fold) handed to the cluster as one task; or, once
    the best candidate is known, the refit of that candidate (`kind` refit, one candidate, no folds)."""

    class Kind(models.TextChoices):
        CV = "cv", "cross-validation fits"
        REFIT = "refit", "refit of the best candidate"

    search = models.ForeignKey(Search, on_delete=models.CASCADE, related_name="units")
    index = models.PositiveIntegerField()
    candidate_start = models.PositiveIntegerField()
    candidate_stop = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempt = models.PositiveIntegerField(default=0, help_text="claims so far; fences stale duplicates")
    lease_until = models.DateTimeField(null=True, blank=True)
    q_task_id = models.CharField(max_length=64, blank=True)
    host = models.CharField(max_length=255, blank=True)
    worker_pid = models.IntegerField(null=True, blank=True)
    runner_pid = models.IntegerField(null=True, blank=True)
    cpu_count = models.PositiveIntegerField(null=True, blank=True)
    n_jobs_requested = models.IntegerField(null=True, blank=True)
    n_jobs_effective = models.PositiveIntegerField(null=True, blank=True, help_text="what joblib granted")
    processes_used = models.PositiveIntegerField(
        null=True, blank=True, help_text="distinct processes that really ran this unit's fits"
    )
    worker_pids = models.JSONField(default=list, blank=True)
    threads = models.JSONField(default=dict, blank=True, help_text="thread pools per fit process (threadpoolctl)")
    fits_run = models.PositiveIntegerField(default=0, help_text="fits computed by the last attempt")
    round = models.PositiveIntegerField(default=0, help_text="halving round of this unit's candidates")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.CV)
    timed_out = models.BooleanField(default=False, help_text="stopped after FANOUT_UNIT_TIMEOUT seconds")
    error = models.TextField(blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = WorkUnitQuerySet.as_manager()

    class Meta:
        ordering = ["search", "index"]
        constraints = [
            models.UniqueConstraint(fields=["search", "index"], name="unit_once_per_search"),
            models.CheckConstraint(condition=Q(candidate_stop__gt=models.F("candidate_start")), name="unit_not_empty"),
        ]

    def __str__(self) -> str:
        return f"unit {self.index} of search {self.search_id}"

    @property
    def n_fits(self) -> int:
        return (self.candidate_stop - self.candidate_start) * self.search.n_splits


class Result(models.Model):
    """One (candidate, fold) fit. Scores are NULL where the fit or the scorer failed (see `error`)."""

    search = models.ForeignKey(Search, on_delete=models.CASCADE, related_name="results")
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="results")
    fold = models.PositiveIntegerField()
    unit = models.ForeignKey(WorkUnit, null=True, blank=True, on_delete=models.SET_NULL, related_name="results")
    attempt = models.PositiveIntegerField(default=1)
    test_scores = models.JSONField(help_text="{metric: score or null}")
    train_scores = models.JSONField(null=True, blank=True)
    fit_time = models.FloatField()
    score_time = models.FloatField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    n_test_samples = models.PositiveIntegerField()
    error = models.TextField(blank=True)
    fit_key = models.CharField(
        max_length=64, blank=True, db_index=True,
        help_text="sha256 of estimator, params, data content, split, scoring and library versions",
    )  # fmt: skip
    reused_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="an identical earlier fit whose scores were copied",
    )  # fmt: skip
    # A copy stays a copy when its original's search is deleted (reused_from then becomes NULL): accounting,
    # speedup and estimates leave copies out by this flag, not by the link.
    reused = models.BooleanField(default=False, help_text="scores copied from an identical earlier fit")
    path_reused = models.BooleanField(default=False, help_text="scored from a model grown for a larger budget")

    class Meta:
        ordering = ["candidate_id", "fold"]
        constraints = [models.UniqueConstraint(fields=["candidate", "fold"], name="result_once_per_fit")]
        indexes = [models.Index(fields=["search", "finished_at"])]

    def __str__(self) -> str:
        return f"candidate {self.candidate_id} fold {self.fold}"


def model_storage() -> Storage:
    """Where models and prediction files live: the "models" storage (settings.STORAGES, FANOUT_MODEL_STORAGE)."""
    return storages["models"]


class FittedModel(models.Model):
    """The product of a search: its best candidate refitted on every training row, as a skops file (loading it
    runs no pickle), a joblib file (a pickle, downloaded behind a warning) and a JSON card beside them."""

    search = models.OneToOneField(Search, on_delete=models.CASCADE, related_name="model")
    skops_file = models.FileField(storage=model_storage, max_length=300)
    joblib_file = models.FileField(storage=model_storage, max_length=300)
    card_file = models.FileField(storage=model_storage, max_length=300)
    card = models.JSONField(help_text="estimator, parameters, data set and hash, CV and held-out scores, versions")
    size = models.PositiveBigIntegerField(help_text="bytes of the skops file")
    created_at = models.DateTimeField(auto_now_add=True)

    # The files handed out, by format: the field, the name after "search-<id>-", the content type.
    DOWNLOADS = {
        "skops": ("skops_file", "model.skops", "application/octet-stream"),
        "joblib": ("joblib_file", "model.joblib", "application/octet-stream"),
        "json": ("card_file", "card.json", "application/json"),
    }

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"model of search {self.search_id}"

    def download(self, fmt: str) -> tuple[models.fields.files.FieldFile, str, str]:
        """The stored file of a format in DOWNLOADS, its download name and its content type."""
        field, name, content_type = self.DOWNLOADS[fmt]
        return getattr(self, field), f"search-{self.search_id}-{name}", content_type


class Prediction(models.Model):
    """Predictions of a search's model for one uploaded CSV file, made on the cluster."""

    search = models.ForeignKey(Search, on_delete=models.CASCADE, related_name="predictions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    input_name = models.CharField(max_length=200, help_text="the uploaded file's name")
    input_file = models.FileField(storage=model_storage, max_length=300)
    output_file = models.FileField(storage=model_storage, max_length=300, blank=True)
    n_rows = models.PositiveIntegerField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    host = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"prediction {self.pk} of search {self.search_id}"


@receiver(post_delete, sender=FittedModel)
@receiver(post_delete, sender=Prediction)
def _delete_files(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """A deleted model or prediction (deleted with its search too) takes its files with it."""
    for field in instance._meta.get_fields():
        if isinstance(field, models.FileField) and (name := getattr(instance, field.name).name):
            model_storage().delete(name)


class ApiToken(models.Model):
    """A user's token for the REST API (`Authorization: Bearer fanout_…`). Only its sha256 is stored, so the
    token itself is seen once, when it is made (`services.tokens.token_create`); revoking it sets `revoked_at`."""

    NAME_MAX_LENGTH = 100

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True, help_text="the user's label for it")
    prefix = models.CharField(
        max_length=15, db_index=True, help_text="fanout_ and the first 8 characters after it, to tell tokens apart"
    )
    digest = models.CharField(max_length=64, unique=True, help_text="sha256 (hex) of the whole token")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})" if self.name else f"{self.prefix}…"
